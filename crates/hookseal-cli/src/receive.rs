//! `hookseal receive`: a local endpoint that verifies every webhook it gets,
//! answers as SCHEMES.md's status table says, and writes one JSON line per
//! request — for developing a sender, and for the dispatcher's tests and
//! benchmarks.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Args;
use hookseal::{Scheme, Secret, UnixTime, Verifier};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::{failed, usage, Fail};

#[derive(Args)]
pub struct ReceiveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Replay tolerance in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
    /// Largest body accepted, in bytes (413 above).
    #[arg(long, default_value_t = 256 * 1024)]
    max_body: usize,
    /// Wait this long before answering (to act as a slow receiver).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Answer 500 to this share (0-100) of verified requests, at random, to
    /// test a sender's retries. Such lines say "status":500.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fail_percent: u8,
    /// Append the JSON lines to this file instead of stdout.
    #[arg(long)]
    log: Option<PathBuf>,
}

struct State {
    verifier: Verifier,
    id_header: Option<String>,
    delay: Duration,
    fail_percent: u8,
    /// xorshift64 state for fail_percent (fault injection, not cryptography).
    dice: std::sync::atomic::AtomicU64,
    out: Mutex<Box<dyn Write + Send>>,
}

pub fn run(args: ReceiveArgs, scheme: Scheme, secrets: Vec<Secret>) -> Result<u8, Fail> {
    let id_header = scheme.id_header.clone();
    let verifier = Verifier::new(scheme, &secrets)
        .map_err(|e| usage(e.to_string()))?
        .with_tolerance(Duration::from_secs(args.tolerance))
        .with_max_body(Some(args.max_body));
    let out: Box<dyn Write + Send> = match &args.log {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| usage(format!("cannot open {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let state = Arc::new(State {
        verifier,
        id_header,
        delay: Duration::from_millis(args.delay_ms),
        fail_percent: args.fail_percent,
        dice: std::sync::atomic::AtomicU64::new(now_ms() | 1),
        out: Mutex::new(out),
    });
    let rt = tokio::runtime::Runtime::new().map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(serve(args.listen, args.max_body, state))
}

async fn serve(addr: SocketAddr, max_body: usize, state: Arc<State>) -> Result<u8, Fail> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| failed(e.to_string()))?;
    eprintln!("hookseal receive: listening on http://{bound}/");
    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = state.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
            }
        })
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| failed(e.to_string()))?;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, max_body, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    flusher.abort();
    let _ = state.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
    Ok(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn answer(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    max_body: usize,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() != Method::POST {
        return Ok(answer(405, json!({"error": "method_not_allowed"})));
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            state.log(json!({"t_ms": now_ms(), "ok": false, "code": "body_too_large"}));
            return Ok(answer(413, json!({"error": "body_too_large"})));
        }
    };
    let id = state
        .id_header
        .as_deref()
        .and_then(|h| parts.headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let event = hookseal::json::string_field(&body, "id").ok();
    let verdict =
        state
            .verifier
            .verify_request(&body, &parts.headers, parts.uri.query(), UnixTime::now());
    let received = now_ms();
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    Ok(match verdict {
        Ok(_) if state.roll_fail() => {
            state.log(
                json!({"t_ms": received, "ok": true, "id": id, "event": event, "status": 500}),
            );
            answer(500, json!({"error": "injected_failure"}))
        }
        Ok(v) => {
            state.log(
                json!({"t_ms": received, "ok": true, "id": id, "event": event,
                "ts_ms": v.timestamp.map(UnixTime::as_millis)}),
            );
            answer(200, json!({"ok": true}))
        }
        Err(e) => {
            let status = e.status(state.verifier.scheme());
            state.log(
                json!({"t_ms": received, "ok": false, "id": id, "event": event,
                "code": e.code()}),
            );
            answer(status, json!({"error": e.code()}))
        }
    })
}

impl State {
    /// True for a random fail_percent of calls.
    fn roll_fail(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.fail_percent == 0 {
            return false;
        }
        let mut x = 0;
        let _ = self.dice.fetch_update(Relaxed, Relaxed, |mut v| {
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
            x = v;
            Some(v)
        });
        x % 100 < u64::from(self.fail_percent)
    }

    fn log(&self, line: serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
    }
}
