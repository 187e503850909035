//! An HTTP/1 server for a receiver `Router`.
//!
//! `axum::serve` keeps hyper's parser limits (100 header fields, about
//! 400 KiB of buffer), and hyper answers a request beyond them itself with
//! a bare 431 and no body. This server lets the parser read up to
//! [`PARSER_MAX_HEADERS`] fields and [`PARSER_MAX_BUF`] bytes, so a request
//! over the receiver's own limits ([`MAX_HEADERS`](crate::MAX_HEADERS),
//! [`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES)) reaches the layer and gets
//! the JSON 431. Only a request beyond the parser's limits still gets
//! hyper's bare 431.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Most header fields hyper's parser reads before answering 431 itself.
pub const PARSER_MAX_HEADERS: usize = 1000;
/// hyper's read buffer (the request head must fit in it).
pub const PARSER_MAX_BUF: usize = 1024 * 1024;
/// How long a client has to send a request head (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting and waits at most `grace` for open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .max_headers(PARSER_MAX_HEADERS)
            .max_buf_size(PARSER_MAX_BUF)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    Ok(())
}
