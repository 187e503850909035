//! `hookseal portal`: the operator console and the endpoint-owner portal,
//! rendered on the server (maud),
//! working through the extension's SQL API as a `hookseal_admin` login,
//! never around it. No JavaScript is needed for any page or action; the one
//! stylesheet and the one script (times in the viewer's zone) are served by
//! the binary.
//!
//! - [`auth`]: operator sign-in tokens, the session cookie, CSRF fields
//!   (all [`hookseal::TokenKey`] tokens: the core computes the MACs).
//! - `pages`: the console's pages and actions; `actions`: redrive, replay,
//!   rotate, alter.
//! - `owner`: the endpoint-owner portal under `/o/`, opened by a link
//!   `hookseal.portal_link(app, ttl)` makes, scoped to that app, framed
//!   only by [`Config::frame_ancestors`]; URLs checked by the dispatcher's
//!   [`AddressPolicy`].
//! - `db`: the one PostgreSQL connection, reconnected when it breaks.
//! - `chart`: the attempts-over-time SVG, drawn here.
//!
//! Every response carries a Content-Security-Policy that allows no script
//! but the binary's own file, `nosniff`, `no-referrer` and `no-store`; the
//! console is never framed (`frame-ancestors 'none'`), the owner pages only
//! by the configured origins. `tests/browser.rs` drives headless chromium.

mod actions;
pub mod auth;
mod chart;
mod db;
mod owner;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use hookseal::TokenKey;
pub use hookseal_dispatch::AddressPolicy;

pub use auth::{operator_token, OPERATOR_TTL, OWNER_SESSION_TTL, SESSION_TTL};

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
    /// Which endpoint URLs an owner may enter: the dispatchers' policy
    /// (give the portal the same `--allow` networks).
    pub policy: AddressPolicy,
    /// The origins whose pages may frame the owner portal (each as
    /// [`frame_ancestor`] checked it); none: it is never framed.
    pub frame_ancestors: Vec<String>,
}

/// `origin` as a CSP `frame-ancestors` source: `http(s)://host[:port]`
/// (a `*.` subdomain wildcard as CSP allows it) and nothing else: no path,
/// query or credentials, and only letters, digits and `.-:/*[]`, so no
/// origin can end the directive (`;`, `,`, space) or add another.
pub fn frame_ancestor(origin: &str) -> Result<String, String> {
    let bad =
        || format!("{origin:?} is not an origin (https://host or https://host:port, no path)");
    let u = url::Url::parse(origin.trim()).map_err(|_| bad())?;
    let bare = u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.password().is_none();
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() || !bare {
        return Err(bad());
    }
    let text = u.origin().ascii_serialization();
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:/*[]".contains(c);
    if !text.chars().all(plain) {
        return Err(bad());
    }
    Ok(text)
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
    pub(crate) policy: AddressPolicy,
    /// The owner pages' Content-Security-Policy (their frame-ancestors).
    pub(crate) owner_csp: HeaderValue,
}

pub(crate) type State = Arc<Inner>;

/// The console's and the owner portal's routes, with the security headers
/// on every answer.
pub fn router(config: Config) -> Router {
    let ancestors = if config.frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        config.frame_ancestors.join(" ")
    };
    let owner_csp = CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {ancestors}"),
    );
    let state = Arc::new(Inner {
        db: db::Db::new(config.database_url),
        key: config.key,
        secure_cookies: config.secure_cookies,
        policy: config.policy,
        // Checked origins: ASCII without ';' or ',', so a valid header.
        owner_csp: HeaderValue::from_str(&owner_csp)
            .unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
    });
    let owner = owner::routes().layer(axum::middleware::map_response_with_state(
        state.clone(),
        owner_headers,
    ));
    pages::routes()
        .layer(axum::middleware::map_response(security_headers))
        .merge(owner)
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(state)
}

/// `Server-Timing: db;dur=…, total;dur=…` (milliseconds) on every answer:
/// the time its queries took (waiting for the one connection included)
/// and the time the portal took, as a browser's
/// developer tools show them and `bench/portal.sh` reads them.
async fn server_timing(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let start = std::time::Instant::now();
    let (mut r, db) = db::timed(next.run(req)).await;
    let total = start.elapsed();
    let value = format!(
        "db;dur={:.2}, total;dur={:.2}",
        db.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert("server-timing", v);
    }
    r
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
    common_headers(&mut r);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The owner pages: framed by the configured origins only (CSP
/// frame-ancestors; no X-Frame-Options, which cannot name them).
async fn owner_headers(
    axum::extract::State(state): axum::extract::State<State>,
    mut r: Response,
) -> Response {
    common_headers(&mut r);
    r.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, state.owner_csp.clone());
    r
}

fn common_headers(r: &mut Response) {
    let h = r.headers_mut();
    let set = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
}
