//! `hookseal portal`: the operator console, rendered on the server (maud),
//! working through the extension's SQL API as a `hookseal_admin` login,
//! never around it. No JavaScript is needed for any page or action; the one
//! stylesheet and the one script (times in the viewer's zone) are served by
//! the binary.
//!
//! - [`auth`]: operator sign-in tokens, the session cookie, CSRF fields
//!   (all [`hookseal::TokenKey`] tokens: the core computes the MACs).
//! - `pages`: the console's pages and actions; `actions`: redrive, replay,
//!   rotate, alter.
//! - `db`: the one PostgreSQL connection, reconnected when it breaks.
//! - `chart`: the attempts-over-time SVG, drawn here.
//!
//! Every response carries a Content-Security-Policy that allows no script
//! but the binary's own file and no framing (`frame-ancestors 'none'`), `nosniff`, `no-referrer` and
//! `no-store`.
//!
//! Not yet here (issue 23 continues): the endpoint-owner portal (links
//! scoped to one app, iframe origins), timestamps in the viewer's zone,
//! the server-time benchmark. `tests/browser.rs` drives headless chromium.

mod actions;
pub mod auth;
mod chart;
mod db;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use hookseal::TokenKey;

pub use auth::{operator_token, OPERATOR_TTL, SESSION_TTL};

/// What the portal needs to run.
pub struct Config {
    /// `postgres://` URL of a `hookseal_admin` login (never shown).
    pub database_url: String,
    /// Signs sign-in tokens, sessions and CSRF fields; keep it in a file
    /// (`hookseal portal-token --new-key`), so sessions survive a restart.
    pub key: TokenKey,
    /// Mark the session cookie `Secure` (the default; browsers treat
    /// `http://127.0.0.1` as secure too).
    pub secure_cookies: bool,
}

/// Why the portal could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        reason: String,
    },
    /// The database refused or could not be reached (SQLSTATE and message;
    /// never the URL).
    #[error("database: {0}")]
    Database(String),
}

/// The shared state of every handler.
pub(crate) struct Inner {
    pub(crate) db: db::Db,
    pub(crate) key: TokenKey,
    pub(crate) secure_cookies: bool,
}

pub(crate) type State = Arc<Inner>;

/// The console's routes, with the security headers on every answer.
pub fn router(config: Config) -> Router {
    let state = Arc::new(Inner {
        db: db::Db::new(config.database_url),
        key: config.key,
        secure_cookies: config.secure_cookies,
    });
    pages::routes()
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves [`router`] on `addr` until `shutdown` completes, through the
/// workspace's one server loop (`hookseal_axum::serve`: a header-read
/// timeout, and at most [`SHUTDOWN_GRACE`] for open connections, so a
/// browser's idle keep-alive does not hold the exit); calls `bound` with
/// the address once listening (port 0 picks one).
pub async fn serve(
    config: Config,
    addr: SocketAddr,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), PortalError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| PortalError::Listen {
            addr,
            reason: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| PortalError::Listen {
        addr,
        reason: e.to_string(),
    })?;
    bound(local);
    hookseal_axum::serve(listener, router(config), shutdown, SHUTDOWN_GRACE)
        .await
        .map_err(|e| PortalError::Listen {
            addr,
            reason: e.to_string(),
        })
}

/// How long open connections get once shutdown starts.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The policy every page is served under: only the binary's own script
/// runs (no inline script, no handler attribute), nothing frames it, forms
/// post only here.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}
