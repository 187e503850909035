//! The HTTP surface as an ordinary axum `Router`: the same service runs
//! under the Lambda runtime (Function URL events) and as a local server.
//!
//! - `POST <route path>`: verify by the route's scheme; then store (with a
//!   database, under the route's app), relay to `WEBHOOK_URL`, or just
//!   answer (`HOOKSEAL_MODE=verify-only`).
//! - `POST /dispatch` with `Authorization: Bearer <DISPATCH_TOKEN>`: drain
//!   the outbox within the invocation's time budget.
//! - Anything else: 405 on a route path, 404 elsewhere; small JSON bodies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hookseal::{Message, Signer, UnixTime, Verifier};
use hookseal_axum::{json_response as answer, not_found, Receiver, Rejection, Webhook};
use hookseal_dispatch::{AddressPolicy, Dispatcher};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::config::Settings;

struct Relay {
    url: String,
    signer: Signer,
    client: reqwest::Client,
}

struct Store {
    url: Zeroizing<String>,
    client: Mutex<Option<tokio_postgres::Client>>,
}

/// One receiving route: its wing, and the app it stores under.
struct Route {
    receiver: Receiver,
    app: Option<Arc<str>>,
}

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Path -> the shared receive wing (verification, body limit, answers)
    /// and the route's app.
    routes: HashMap<String, Route>,
    relay: Option<Relay>,
    store: Option<Store>,
    dispatcher: Option<Dispatcher>,
    dispatch_token: Option<Zeroizing<String>>,
}

/// Why the app could not be built from valid settings.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A verifier or signer rejected its scheme or secret.
    #[error("route or relay setup: {0}")]
    Setup(#[from] hookseal::SetupError),
    /// The HTTP client or dispatcher could not be built.
    #[error("{0}")]
    Client(String),
    /// With a database, a route has no app to store under.
    #[error("route `{0}` has no app to store under")]
    NoApp(String),
}

impl App {
    /// Prepares verifiers, the relay signer and client, and the dispatcher.
    pub fn new(settings: Settings) -> Result<Arc<App>, AppError> {
        let mut routes = HashMap::new();
        for r in settings.routes {
            if settings.database.is_some() && r.app.is_none() {
                return Err(AppError::NoApp(r.path));
            }
            let verifier = Verifier::new(r.scheme, &r.secrets)?
                .with_tolerance(settings.tolerance)
                .with_max_body(Some(settings.max_body));
            let route = Route {
                receiver: Receiver::new(verifier),
                app: r.app.map(Arc::from),
            };
            routes.insert(r.path, route);
        }
        let relay = match settings.relay {
            None => None,
            Some(r) => Some(Relay {
                signer: Signer::new(r.scheme, &[r.secret])?,
                client: reqwest::Client::builder()
                    .timeout(r.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| AppError::Client(e.to_string()))?,
                url: r.url,
            }),
        };
        let (store, dispatcher) = match settings.database {
            None => (None, None),
            Some(db) => {
                let mut cfg = hookseal_dispatch::Config::new(db.url.as_str());
                cfg.policy = AddressPolicy::new(settings.allow);
                cfg.proxy = settings.proxy;
                cfg.timeout = Duration::from_secs(10);
                cfg.lease = Duration::from_secs(30);
                cfg.shutdown_grace = Duration::from_secs(5);
                cfg.sealing_keys = db.sealing_keys;
                let d = Dispatcher::new(cfg).map_err(|e| AppError::Client(e.to_string()))?;
                (
                    Some(Store {
                        url: db.url,
                        client: Mutex::new(None),
                    }),
                    Some(d),
                )
            }
        };
        Ok(Arc::new(App {
            routes,
            relay,
            store,
            dispatcher,
            dispatch_token: settings.dispatch_token,
        }))
    }

    /// The service: an axum `Router` with this app as its state.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut router = Router::new().route("/dispatch", any(dispatch));
        // Paths were checked by config (a leading `/`, URL-safe characters,
        // no duplicates, not /dispatch), so `route` cannot panic on them.
        for (path, route) in &self.routes {
            let app = route.app.clone();
            let handler = move |state: State<Arc<App>>,
                                uri: Uri,
                                headers: HeaderMap,
                                trace: Option<axum::Extension<hookseal_otel::Context>>,
                                hook: Webhook| {
                receive(state, app, uri, headers, trace, hook)
            };
            router = router.route(path, route.receiver.post(handler));
        }
        router.fallback(not_found).with_state(self.clone())
    }

    /// With a database: checks once that it has the extension at the
    /// version this build speaks. Missing or another version: an error
    /// (the process should not start); unreachable: a warning only, as a
    /// database may come up after the function.
    pub async fn check_database(&self) -> Result<(), hookseal_postgres::ExtensionError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let root_cert = hookseal_postgres::root_cert_from_env();
        // Within the init phase's 10 s: a database that does not answer is
        // a warning, not a failed start.
        let limit = Duration::from_secs(5);
        match hookseal_postgres::check_url(&store.url, root_cert.as_deref(), limit).await {
            Err(e) if !e.is_fatal() => {
                tracing::warn!(error = %e, "database not reachable at start");
                Ok(())
            }
            Err(e) => Err(e),
            // The drain signs the portable flavour's rows: it needs the key.
            Ok(hookseal_postgres::Flavour::Portable)
                if self.dispatcher.as_ref().is_some_and(|d| !d.can_sign()) =>
            {
                Err(hookseal_postgres::ExtensionError::NoSealingKey)
            }
            Ok(flavour) => {
                tracing::info!(%flavour, "database checked");
                Ok(())
            }
        }
    }

    /// Drains the outbox for at most `budget`; `None` without a database.
    pub async fn drain(&self, budget: Duration) -> Option<serde_json::Value> {
        let d = self.dispatcher.as_ref()?;
        let before = d.summary();
        let s = d.drain(budget).await.since(before);
        Some(json!({
            "claimed": s.claimed, "delivered": s.delivered, "retried": s.retried, "dead": s.dead,
        }))
    }
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    Rejection::new(status, code, message).into_response()
}

/// A verified request (the layer has checked it): store under the route's
/// `store_app`, relay or answer.
async fn receive(
    State(app): State<Arc<App>>,
    store_app: Option<Arc<str>>,
    uri: Uri,
    headers: HeaderMap,
    trace: Option<axum::Extension<hookseal_otel::Context>>,
    hook: Webhook,
) -> Response {
    let path = uri.path();
    let Webhook { id, body, .. } = hook;
    let trace = trace.map(|t| t.0).unwrap_or_default();
    if let (Some(store), Some(store_app)) = (&app.store, &store_app) {
        let span = hookseal_otel::start(
            &trace,
            "hookseal.store",
            hookseal_otel::SpanKind::Client,
            Vec::new(),
        );
        let stored = store_event(store, store_app, &id, &body, &span).await;
        hookseal_otel::end(&span, None, stored.as_ref().err().map(|_| "store_failed"));
        return match stored {
            Ok(()) => {
                tracing::info!(path, id, app = %store_app, "verified and stored");
                answer(
                    StatusCode::OK,
                    json!({"ok": true, "id": id, "stored": true}),
                )
            }
            Err(e) if e.needs_operator() => {
                tracing::error!(path, id, error = %e, "verified but not stored");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_failed",
                    "the event could not be stored; retry",
                )
            }
            Err(e) => {
                tracing::warn!(path, id, error = %e, "verified but not stored");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_failed",
                    "the event could not be stored; retry",
                )
            }
        };
    }
    if let Some(relay) = &app.relay {
        let span = hookseal_otel::start(
            &trace,
            "hookseal.relay",
            hookseal_otel::SpanKind::Client,
            Vec::new(),
        );
        let answer = relay_message(relay, &headers, &id, body, path, &span).await;
        let failed = (!answer.status().is_success()).then_some("relay_failed");
        hookseal_otel::end(&span, None, failed);
        return answer;
    }
    tracing::info!(path, id, "verified");
    answer(StatusCode::OK, json!({"ok": true, "id": id}))
}

async fn relay_message(
    relay: &Relay,
    inbound: &HeaderMap,
    id: &str,
    body: Bytes,
    path: &str,
    trace: &hookseal_otel::Context,
) -> Response {
    let signed = match relay.signer.sign(&Message {
        body: &body,
        id: Some(id),
        timestamp: None,
    }) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(path, id, error = %e, "cannot sign the relay");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "relay_failed",
                "the message could not be signed for relay",
            );
        }
    };
    let content_type = inbound
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let mut req = relay
        .client
        .post(&relay.url)
        .header(header::CONTENT_TYPE, content_type)
        .header("idempotency-key", id);
    for (name, value) in &signed.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let mut traced = HeaderMap::new();
    hookseal_otel::inject(trace, &mut traced);
    req = req.headers(traced);
    // A re-serializing relay scheme (x-signature, fincra) signed the compact
    // JSON form: that is what goes out.
    let body = match signed.body {
        Some(compact) => Bytes::from(compact),
        None => body,
    };
    match req.body(body).send().await {
        Ok(resp) if resp.status().is_success() => {
            let status = resp.status().as_u16();
            tracing::info!(path, id, downstream = status, "verified and relayed");
            answer(
                StatusCode::OK,
                json!({"ok": true, "id": id, "relayed": status}),
            )
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            tracing::warn!(path, id, downstream = status, "relay refused");
            answer(
                StatusCode::BAD_GATEWAY,
                json!({"error": "relay_failed", "message": "WEBHOOK_URL did not accept the message", "status": status}),
            )
        }
        Err(e) => {
            let timeout = e.is_timeout();
            tracing::warn!(path, id, error = %e.without_url(), "relay unreachable");
            if timeout {
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "relay_timeout",
                    "WEBHOOK_URL did not answer in time",
                )
            } else {
                error(
                    StatusCode::BAD_GATEWAY,
                    "relay_unreachable",
                    "WEBHOOK_URL could not be reached",
                )
            }
        }
    }
}

/// Stores a verified message as an event whose trace context is `trace`'s
/// (so its deliveries continue the trace).
async fn store_event(
    store: &Store,
    app: &str,
    id: &str,
    body: &[u8],
    trace: &hookseal_otel::Context,
) -> Result<(), StoreError> {
    let traceparent = hookseal_otel::traceparent(trace);
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .unwrap_or("webhook.received")
        .to_owned();
    let data = match parsed {
        Some(v) => v.to_string(),
        None => match std::str::from_utf8(body) {
            Ok(text) => serde_json::Value::String(text.to_owned()).to_string(),
            Err(_) => json!({"base64": hookseal::Encoding::Base64.encode(body)}).to_string(),
        },
    };
    let mut guard = store.client.lock().await;
    let client = match guard.take() {
        Some(c) if !c.is_closed() => c,
        _ => connect(&store.url).await?,
    };
    let event = (
        app,
        kind.as_str(),
        data.as_str(),
        id,
        traceparent.as_deref(),
    );
    match insert(&client, event).await {
        // A connection that broke between invocations: once more, fresh.
        Err(e) if client.is_closed() => {
            tracing::warn!(error = %hookseal_postgres::Described(&e), "database connection lost; reconnecting");
            let fresh = connect(&store.url).await?;
            let r = insert(&fresh, event).await;
            *guard = Some(fresh);
            r.map(drop).map_err(StoreError::from)
        }
        r => {
            *guard = Some(client);
            r.map(drop).map_err(StoreError::from)
        }
    }
}

/// `webhook_send(app, type, data, id, traceparent)`.
async fn insert(
    client: &tokio_postgres::Client,
    (app, kind, data, id, traceparent): (&str, &str, &str, &str, Option<&str>),
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "SELECT hookseal.webhook_send($1, $2, $3::text::jsonb, $4, $5)",
            &[&app, &kind, &data, &id, &traceparent],
        )
        .await
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let root_cert = hookseal_postgres::root_cert_from_env();
    Ok(hookseal_postgres::connect(url, root_cert.as_deref(), None).await?)
}

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Connect(#[from] hookseal_postgres::ConnectError),
    #[error("{}", hookseal_postgres::Described(.0))]
    Db(#[from] tokio_postgres::Error),
}

impl StoreError {
    /// A refusal that will repeat on every request (no such function, no
    /// privilege, a bad app id): an operator must act.
    fn needs_operator(&self) -> bool {
        match self {
            StoreError::Db(e) => !hookseal_postgres::is_transient(e),
            StoreError::Connect(e) => !e.is_transient(),
        }
    }
}

async fn dispatch(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    if req.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "POST /dispatch",
        );
    }
    let Some(expected) = &app.dispatch_token else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "dispatch is not configured (DISPATCH_TOKEN)",
        );
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool =
        given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        );
    }
    let budget = remaining_budget(&req);
    match app.drain(budget).await {
        Some(summary) => {
            tracing::info!(%summary, "dispatched");
            answer(StatusCode::OK, summary)
        }
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "dispatch needs DATABASE_URL",
        ),
    }
}

/// The invocation's remaining time minus a margin (25 s outside Lambda).
fn remaining_budget(req: &Request<Body>) -> Duration {
    use lambda_http::RequestExt;
    budget_until(req.lambda_context_ref().map(|c| c.deadline).unwrap_or(0))
}

/// Time left before `deadline` (Unix ms, as in the Lambda context) minus a
/// 2 s margin; 25 s when there is no deadline (outside Lambda).
pub fn budget_until(deadline: u64) -> Duration {
    if deadline == 0 {
        return Duration::from_secs(25);
    }
    let now = UnixTime::now().as_millis().max(0) as u64;
    Duration::from_millis(deadline.saturating_sub(now)).saturating_sub(Duration::from_secs(2))
}
