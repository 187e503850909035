//! `Receiver`: verify, guard against replays, hand the handler a
//! [`Webhook`]; as a tower layer on one axum route.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use hookseal::{inbound_id, UnixTime, Verified, Verifier, DEFAULT_MAX_BODY};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::rejection::{method_not_allowed, Rejection};
use crate::replay::{BoxFuture, ReplayStore};

/// A verified webhook, as the handler receives it.
///
/// Extract it in a handler on a route that has the receiver's layer
/// ([`Receiver::post`] or [`Receiver::layer`]); the request's body is the
/// same verified bytes, so `Bytes` or `Json` extractors work after it too.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The message id: the scheme's id header, else the JSON body's `"id"`,
    /// else a content hash ([`hookseal::inbound_id`]).
    pub id: String,
    /// The body exactly as received (what the signature covered, or
    /// JSON-equal to it for re-serializing schemes).
    pub body: Bytes,
    /// Which secret matched, the request's timestamp, the bytes signed.
    pub verified: Verified,
}

impl<S: Send + Sync> FromRequestParts<S> for Webhook {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        parts.extensions.get::<Webhook>().cloned().ok_or_else(|| {
            Rejection::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "receiver_not_configured",
                "this route has no webhook receiver layer",
            )
        })
    }
}

/// Verifies the requests of one route: a [`Verifier`] (scheme, rotating
/// secrets, tolerance, body limit) and optionally a replay guard.
///
/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    verifier: Verifier,
    max_body: usize,
    replay: Option<Arc<dyn ReplayStore>>,
    window: Duration,
    scope: String,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.inner.verifier)
            .field("replay_guard", &self.inner.replay.is_some())
            .field("scope", &self.inner.scope)
            .finish()
    }
}

impl Receiver {
    /// A receiver for `verifier`; its body limit is the verifier's (256 KiB
    /// by default), no replay guard.
    pub fn new(verifier: Verifier) -> Self {
        let max_body = verifier.max_body().unwrap_or(DEFAULT_MAX_BODY);
        let window = verifier.tolerance();
        let scope = verifier.scheme().name.clone();
        Receiver {
            inner: Arc::new(Inner {
                verifier,
                max_body,
                replay: None,
                window,
                scope,
            }),
        }
    }

    fn edit(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Receiver {
            inner: Arc::new(inner),
        }
    }

    /// Refuses (409 `replayed`) a message id already accepted within the
    /// replay window. An id counts as accepted when the handler answered
    /// 2xx; a failed handler's id is forgotten so the sender's retry goes
    /// through.
    pub fn replay_guard(self, store: impl ReplayStore) -> Self {
        self.shared_replay_guard(Arc::new(store))
    }

    /// [`Receiver::replay_guard`] with a store shared by several routes.
    pub fn shared_replay_guard(self, store: Arc<dyn ReplayStore>) -> Self {
        self.edit(|i| i.replay = Some(store))
    }

    /// How long an id is remembered for schemes without a timestamp (after
    /// receipt; default: the verifier's tolerance). With a timestamp it is
    /// remembered until the timestamp plus the tolerance, when the request
    /// stops verifying anyway.
    pub fn replay_window(self, window: Duration) -> Self {
        self.edit(|i| i.window = window)
    }

    /// The replay guard's namespace (default: the scheme's name); give two
    /// routes of one scheme different scopes if their ids may collide.
    pub fn scope(self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        self.edit(|i| i.scope = scope)
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The layer to put on a route (`MethodRouter::route_layer`).
    pub fn layer(&self) -> VerifyLayer {
        VerifyLayer {
            receiver: self.clone(),
        }
    }

    /// `post(handler)` behind this receiver, answering any other method
    /// with 405, `Allow: POST` and the JSON body.
    pub fn post<H, T, S>(&self, handler: H) -> MethodRouter<S, Infallible>
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        post(handler)
            .route_layer(self.layer())
            .fallback(method_not_allowed)
    }

    /// Reads, verifies and (with a guard) reserves one request's message:
    /// what the layer does before the handler runs.
    async fn admit(&self, parts: &Parts, body: Body) -> Result<Admitted, Rejection> {
        let i = &self.inner;
        let header = |name: Option<&str>| {
            name.and_then(|h| parts.headers.get(h))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        check_header_size(&parts.headers)?;
        let body = read_body(parts, body, i.max_body).await?;
        let now = UnixTime::now();
        let verified = i
            .verifier
            .verify_request(&body, &parts.headers, parts.uri.query(), now)
            .map_err(|e| {
                // For logs only: the id the request claims, unverified.
                let claimed = header(i.verifier.scheme().id_header.as_deref());
                Rejection::verify(&e, i.verifier.scheme()).with_message_id(claimed)
            })?;
        // The id the verifier read and the signature covered (from the
        // spelling the request used: `webhook-id` or `svix-id`), so a stray
        // second id header cannot change what the replay guard sees.
        let id = inbound_id(header(i.verifier.id_header_of(&verified)).as_deref(), &body);
        let reservation = match &i.replay {
            None => None,
            Some(store) => {
                let until = match verified.timestamp {
                    Some(t) => t.as_millis().saturating_add(millis(i.verifier.tolerance())),
                    None => now.as_millis().saturating_add(millis(i.window)),
                };
                match store
                    .reserve(&i.scope, &id, UnixTime::from_millis(until), now)
                    .await
                {
                    Ok(true) => Some(Reservation {
                        store: store.clone(),
                        scope: i.scope.clone(),
                        id: id.clone(),
                        keep: false,
                    }),
                    Ok(false) => return Err(Rejection::replayed(&id)),
                    Err(e) => {
                        tracing::warn!(error = %e, "replay store unavailable");
                        return Err(Rejection::replay_store_unavailable());
                    }
                }
            }
        };
        Ok(Admitted {
            webhook: Webhook { id, body, verified },
            reservation,
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// 431 beyond [`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES) (names, values
/// and `: ` plus CRLF per field, as on the wire) or
/// [`MAX_HEADERS`](crate::MAX_HEADERS) fields.
fn check_header_size(headers: &http::HeaderMap) -> Result<(), Rejection> {
    let fields = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if bytes > crate::MAX_HEADER_BYTES || fields > crate::MAX_HEADERS {
        return Err(Rejection::headers_too_large(bytes, fields));
    }
    Ok(())
}

/// The body, at most `limit` bytes (413 beyond, before reading when
/// `Content-Length` says so).
async fn read_body(parts: &Parts, body: Body, limit: usize) -> Result<Bytes, Rejection> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::body_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Rejection::body_too_large(limit)),
        Err(_) => Err(Rejection::new(
            axum::http::StatusCode::BAD_REQUEST,
            "body_unreadable",
            "the request body could not be read",
        )),
    }
}

struct Admitted {
    webhook: Webhook,
    reservation: Option<Reservation>,
}

/// A reserved id: forgotten on drop unless the handler accepted it (so a
/// cancelled or failed request never blocks the sender's retry).
struct Reservation {
    store: Arc<dyn ReplayStore>,
    scope: String,
    id: String,
    keep: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.keep {
            self.store.forget(&self.scope, &self.id);
        }
    }
}

/// The tower layer of a [`Receiver`].
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    receiver: Receiver,
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            receiver: self.receiver.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps a route in.
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    receiver: Receiver,
}

impl<S> Service<Request<Body>> for VerifyService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one called.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let receiver = self.receiver.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let trace = receive_span(&parts);
            let verify = verify_span(&trace);
            let admitted = receiver.admit(&parts, body).await;
            let refused = admitted.as_ref().err().map(|r| r.code());
            hookseal_otel::end(&verify, None, refused);
            let admitted = match admitted {
                Ok(a) => a,
                Err(rejection) => {
                    tracing::info!(
                        path = parts.uri.path(),
                        status = rejection.status().as_u16(),
                        code = rejection.code(),
                        "webhook rejected"
                    );
                    hookseal_otel::end(&trace, Some(rejection.status().as_u16()), refused);
                    return Ok(rejection.into_response());
                }
            };
            let Admitted {
                webhook,
                mut reservation,
            } = admitted;
            let mut req = Request::from_parts(parts, Body::from(webhook.body.clone()));
            req.extensions_mut().insert(webhook);
            // The handler continues the trace: its spans are children of
            // the request's (`Extension<hookseal_otel::Context>`).
            req.extensions_mut().insert(trace.clone());
            let response = inner.call(req).await?;
            hookseal_otel::end(&trace, Some(response.status().as_u16()), None);
            if let Some(r) = reservation.as_mut() {
                r.keep = response.status().is_success();
            }
            Ok(response)
        })
    }
}

/// The request's span (`hookseal.receive`, a server span), child of its
/// `traceparent` when it has one, and inside it the verification's
/// (`hookseal.verify`, over reading, verifying and reserving). Attributes:
/// the route's path and, at the end, the status and refusal code; never a
/// header, the body or a signature.
fn receive_span(parts: &Parts) -> hookseal_otel::Context {
    let parent = hookseal_otel::extract(&parts.headers);
    let path = hookseal_otel::KeyValue::new("url.path", parts.uri.path().to_owned());
    hookseal_otel::start(
        &parent,
        "hookseal.receive",
        hookseal_otel::SpanKind::Server,
        vec![path],
    )
}

fn verify_span(receive: &hookseal_otel::Context) -> hookseal_otel::Context {
    hookseal_otel::start(
        receive,
        "hookseal.verify",
        hookseal_otel::SpanKind::Internal,
        Vec::new(),
    )
}
