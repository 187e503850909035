//! One HTTP attempt: send a claimed row as the database signed it and
//! classify the answer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{redirect, Client};

use crate::egress;
use crate::ssrf::{AddressPolicy, PolicyResolver, UrlRefused};
use crate::Config;

/// A claimed outbox row: what to send and where.
#[derive(Debug, Clone)]
pub struct Job {
    /// `hookseal.outbox.id`.
    pub outbox_id: i64,
    /// The event's id, also the message id in the signed headers.
    pub event_id: String,
    /// The endpoint's id.
    pub endpoint_id: String,
    /// The endpoint's URL.
    pub url: String,
    /// The body, exactly as signed.
    pub body: String,
    /// The signed headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Which attempt this is (1 for the first).
    pub attempt: i32,
    /// Send no sooner than this after the claim (the endpoint's rate-limit
    /// slot; zero for endpoints without a rate limit).
    pub send_after: std::time::Duration,
    /// Whether the claim signed these headers anew (for the attempt log).
    pub resigned: bool,
    /// The endpoint's scheme (a preset name or a description).
    pub scheme: Option<String>,
    /// Portable flavour: the sealed secrets that sign this attempt, newest
    /// first, with `headers` empty; the sender signs ([`crate::sealed`]).
    /// `None` when the database signed (native flavour).
    pub sealed: Option<Vec<String>>,
    /// Native flavour: the database could not sign this attempt (a stored
    /// secret that does not decrypt under its server keys; `headers` empty).
    /// Nothing is sent: the attempt fails, named, on its own endpoint.
    pub unsigned: bool,
    /// The W3C trace context the event kept (`webhook_send`'s), if any.
    pub traceparent: Option<String>,
    /// Its `tracestate`.
    pub tracestate: Option<String>,
    /// The claim's span, parent of the attempt's (the empty context for a
    /// row without a trace context).
    pub trace: hookseal_otel::Context,
}

/// Why an attempt did not deliver, as the attempt log classes it
/// (`hookseal.attempts.error_class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The receiver answered with a status that is not 2xx.
    Http,
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, reset, unreachable, DNS).
    Connect,
    /// The TLS handshake failed (unknown issuer, wrong name, ...).
    Tls,
    /// The address policy refused the destination. Permanent: `fail()`
    /// dead-letters the row and disables the endpoint.
    Policy,
    /// The endpoint's URL cannot be used (does not parse, not http(s), no
    /// host). Permanent, as `Policy`.
    Invalid,
    /// Anything else (a broken answer, a status outside 100–599).
    Other,
}

impl FailureClass {
    /// The name the attempt log stores.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Http => "http",
            FailureClass::Timeout => "timeout",
            FailureClass::Connect => "connect",
            FailureClass::Tls => "tls",
            FailureClass::Policy => "policy",
            FailureClass::Invalid => "invalid",
            FailureClass::Other => "other",
        }
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered {
        /// The status code.
        status: u16,
    },
    /// 410 Gone: the receiver asks never to be called again.
    Gone,
    /// Anything else: retry on the endpoint's schedule.
    Retry {
        /// The status code, when the receiver answered.
        status: Option<u16>,
        /// What went wrong, for `outbox.last_error` (no secret, no URL).
        error: String,
        /// A bounded `Retry-After` from a 429 or 503.
        retry_after: Option<Duration>,
        /// What kind of failure it was.
        class: FailureClass,
    },
}

/// What the receiver answered, as much as the attempt log keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The `Content-Type` header (at most [`MAX_CONTENT_TYPE`] bytes).
    pub content_type: Option<String>,
    /// The body's first [`LOGGED_BODY`] bytes as text (invalid UTF-8
    /// replaced, NUL bytes dropped).
    pub body: Option<String>,
}

/// An attempt's outcome, when it started and how long it took.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The classified result.
    pub outcome: Outcome,
    /// The answer's type and first bytes (empty without an answer).
    pub answer: Answer,
    /// When the request was sent (wall clock, for the attempt log).
    pub started: SystemTime,
    /// From sending the request to the classified answer (monotonic).
    pub elapsed: Duration,
    /// The attempt's span (the request's `traceparent`), for the span of
    /// its recording; `None` for a row without a trace context.
    pub span: Option<hookseal_otel::SpanContext>,
}

/// Sends jobs with one pooled keep-alive client.
#[derive(Clone)]
pub struct Deliverer {
    transport: Transport,
    policy: Arc<AddressPolicy>,
    max_retry_after: Duration,
    timeout: Duration,
}

/// How requests leave: straight to the destination (reqwest, its resolver
/// the policy's), or through the configured proxy to the checked address
/// ([`crate::egress`]). Both hand their answer to [`Deliverer::judge_answer`].
#[derive(Clone)]
enum Transport {
    Direct(Client),
    Proxied(egress::ProxiedClient),
}

const USER_AGENT: &str = concat!("hookseal/", env!("CARGO_PKG_VERSION"));

/// How much of an error answer's body goes into `last_error`.
const ERROR_SNIPPET: usize = 200;
/// How much of any answer's body the attempt log keeps.
pub const LOGGED_BODY: usize = 1024;
/// How much of the answer's `Content-Type` the attempt log keeps.
pub const MAX_CONTENT_TYPE: usize = 200;
/// How much of any answer's body is read (the rest is dropped with the
/// connection).
const MAX_ANSWER: usize = 64 * 1024;

impl Deliverer {
    /// A client with the configured timeouts, no redirects, the address
    /// policy applied to every resolved name, and the configured proxy (no
    /// other: `HTTPS_PROXY` and the like are not read).
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(config.policy.clone());
        let transport = match &config.proxy {
            Some(proxy) => Transport::Proxied({
                tracing::info!(proxy = proxy.shown(), "deliveries go through the proxy");
                egress::client(
                    policy.clone(),
                    proxy.clone(),
                    config.connect_timeout,
                    config.per_endpoint.max(1),
                )
            }),
            None => Transport::Direct(Self::direct_client(config, policy.clone())?),
        };
        Ok(Deliverer {
            transport,
            policy,
            max_retry_after: config.max_retry_after,
            timeout: config.timeout,
        })
    }

    fn direct_client(
        config: &Config,
        policy: Arc<AddressPolicy>,
    ) -> Result<Client, reqwest::Error> {
        Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver::new(policy)))
            .pool_max_idle_per_host(config.per_endpoint.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .build()
    }

    /// Sends one job and classifies the answer. Never panics, never
    /// returns an error: a failure is an [`Outcome::Retry`].
    pub async fn deliver(&self, job: &Job) -> Attempt {
        let started = SystemTime::now();
        let start = Instant::now();
        let mut answer = Answer::default();
        let cx = crate::trace::attempt(job);
        let outcome = self.attempt(job, &mut answer, cx.as_ref()).await;
        let span = cx.map(|cx| {
            crate::trace::attempt_ended(&cx, &outcome);
            use hookseal_otel::TraceContextExt;
            cx.span().span_context().clone()
        });
        Attempt {
            outcome,
            answer,
            started,
            elapsed: start.elapsed(),
            span,
        }
    }

    /// One attempt: the request, its answer read (a bounded part), the
    /// answer judged.
    async fn attempt(
        &self,
        job: &Job,
        answer: &mut Answer,
        trace: Option<&hookseal_otel::Context>,
    ) -> Outcome {
        let (url, headers) = match self.request(job, trace) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        match &self.transport {
            Transport::Direct(client) => {
                let sent = client.post(url).headers(headers).body(job.body.clone());
                match sent.send().await {
                    Ok(mut r) => {
                        let head = self.head(r.status().as_u16(), r.headers());
                        self.judge_answer(head, &mut r, answer).await
                    }
                    Err(e) => no_answer(describe(&e), classify(&e)),
                }
            }
            Transport::Proxied(client) => {
                let run = self.attempt_proxied(client, url, headers, job, answer);
                match tokio::time::timeout(self.timeout, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => no_answer(
                        format!("timeout: no answer within {:?}", self.timeout),
                        FailureClass::Timeout,
                    ),
                }
            }
        }
    }

    /// The attempt through the proxy (its whole-attempt timeout is the
    /// caller's, as reqwest's is for a direct one).
    async fn attempt_proxied(
        &self,
        client: &egress::ProxiedClient,
        url: url::Url,
        mut headers: HeaderMap,
        job: &Job,
        answer: &mut Answer,
    ) -> Outcome {
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        let body = http_body_util::Full::new(bytes::Bytes::from(job.body.clone()));
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::POST;
        *req.headers_mut() = headers;
        *req.uri_mut() = match url.as_str().parse() {
            Ok(u) => u,
            Err(e) => return no_answer(format!("invalid URL: {e}"), FailureClass::Invalid),
        };
        match client.request(req).await {
            Ok(r) => {
                let (parts, body) = r.into_parts();
                let head = self.head(parts.status.as_u16(), &parts.headers);
                self.judge_answer(head, &mut Incoming(body), answer).await
            }
            Err(e) => {
                let kind = if e.is_connect() { "connect" } else { "request" };
                let class = classify_chain(&e).unwrap_or(if e.is_connect() {
                    FailureClass::Connect
                } else {
                    FailureClass::Other
                });
                no_answer(chain(kind, &e), class)
            }
        }
    }

    /// What the answer's status line and headers say, before its body.
    fn head(&self, status: u16, headers: &HeaderMap) -> Head {
        let retry_after = match status {
            429 | 503 => headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .map(|d| d.min(self.max_retry_after)),
            _ => None,
        };
        Head {
            status,
            retry_after,
            content_type: headers
                .get(CONTENT_TYPE)
                .map(|v| truncate_text(v.as_bytes(), MAX_CONTENT_TYPE)),
            location: headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(ERROR_SNIPPET).collect::<String>()),
        }
    }

    /// What the receiver's answer means, its type and first bytes kept in
    /// `answer`: the one judge of both transports.
    async fn judge_answer(
        &self,
        head: Head,
        body: &mut impl AnswerBody,
        answer: &mut Answer,
    ) -> Outcome {
        let status = head.status;
        if !(100..=599).contains(&status) {
            // HTTP defines 1xx–5xx; `fail()` refuses anything else.
            return no_answer(
                format!("invalid HTTP status {status} in the answer"),
                FailureClass::Other,
            );
        }
        answer.content_type = head.content_type;
        let (mut snippet, broken) = read_bounded(body).await;
        if !snippet.is_empty() {
            answer.body = Some(truncate_text(&snippet, LOGGED_BODY));
        }
        if let Some(e) = broken {
            if !(200..300).contains(&status) {
                return Outcome::Retry {
                    status: Some(status),
                    error: format!("HTTP {status}, then {e}"),
                    retry_after: None,
                    class: FailureClass::Http,
                };
            }
            // The status line is the receiver's decision; a broken body
            // after a 2xx still counts as delivered.
            tracing::debug!(error = %e, "answer body unreadable");
        }
        snippet.truncate(ERROR_SNIPPET);
        judge(status, &snippet, head.location.as_deref(), head.retry_after)
    }

    /// The POST of `job`: its URL through the address policy, its signed
    /// headers as HTTP headers. Refused (as the attempt's outcome, nothing
    /// sent) when a check fails.
    fn request(
        &self,
        job: &Job,
        trace: Option<&hookseal_otel::Context>,
    ) -> Result<(url::Url, HeaderMap), Outcome> {
        if job.headers.is_empty() {
            // The extension always signs; never send an unsigned body.
            return Err(no_answer(
                "claim returned no signed headers; not sent".into(),
                FailureClass::Other,
            ));
        }
        let url = match self.policy.check_url(&job.url) {
            Ok(u) => u,
            Err(e @ UrlRefused::Invalid(_)) => {
                return Err(no_answer(e.to_string(), FailureClass::Invalid))
            }
            Err(e @ UrlRefused::Policy(_)) => {
                return Err(no_answer(e.to_string(), FailureClass::Policy))
            }
        };
        let mut headers = HeaderMap::with_capacity(job.headers.len() + 1);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &job.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.insert(n, v);
                }
                _ => {
                    return Err(no_answer(
                        format!("signed header `{name}` is not a valid HTTP header"),
                        FailureClass::Other,
                    ))
                }
            }
        }
        if let Some(cx) = trace {
            hookseal_otel::inject(cx, &mut headers);
        }
        Ok((url, headers))
    }
}

/// A failed attempt without an HTTP status (nothing sent, or no answer).
pub(crate) fn no_answer(error: String, class: FailureClass) -> Outcome {
    Outcome::Retry {
        status: None,
        error,
        retry_after: None,
        class,
    }
}

/// An answer's status line and headers, as [`Deliverer::judge_answer`]
/// reads them.
struct Head {
    status: u16,
    retry_after: Option<Duration>,
    content_type: Option<String>,
    location: Option<String>,
}

/// An answer's body, chunk by chunk: reqwest's own reader for a direct
/// attempt (its `chunk()`, under reqwest's whole-attempt timeout), hyper's
/// body through the proxy (under the caller's timeout).
trait AnswerBody {
    /// The next chunk; `None` at the end; the error worded for logs.
    fn next_chunk(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<bytes::Bytes>, String>> + Send;
}

impl AnswerBody for reqwest::Response {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        self.chunk().await.map_err(|e| describe(&e))
    }
}

/// A proxied answer's body.
struct Incoming(hyper::body::Incoming);

impl AnswerBody for Incoming {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        use http_body_util::BodyExt;
        loop {
            match self.0.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(chain("body", &e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    } // trailers: skipped
                }
            }
        }
    }
}

/// Reads the answer's body so the connection can be reused: all of it up
/// to [`MAX_ANSWER`] bytes, keeping the first [`LOGGED_BODY`]; and the
/// error that broke the read, if one did.
async fn read_bounded(body: &mut impl AnswerBody) -> (Vec<u8>, Option<String>) {
    let mut snippet = Vec::new();
    let mut read = 0usize;
    loop {
        match body.next_chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if snippet.len() < LOGGED_BODY {
                    let take = (LOGGED_BODY - snippet.len()).min(chunk.len());
                    snippet.extend_from_slice(&chunk[..take]);
                }
                if read > MAX_ANSWER {
                    return (snippet, None);
                }
            }
            Ok(None) => return (snippet, None),
            Err(e) => return (snippet, Some(e)),
        }
    }
}

/// What an answer's status means: 2xx delivered, 410 gone, a redirect
/// (not followed) or any other status retried, with the receiver's
/// `Retry-After` for 429 and 503.
fn judge(
    status: u16,
    snippet: &[u8],
    location: Option<&str>,
    retry_after: Option<Duration>,
) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { status },
        410 => Outcome::Gone,
        300..=399 => Outcome::Retry {
            status: Some(status),
            error: format!(
                "HTTP {status}: redirect not followed (Location: {})",
                location.unwrap_or("none")
            ),
            retry_after: None,
            class: FailureClass::Http,
        },
        _ => Outcome::Retry {
            status: Some(status),
            error: format!("HTTP {status}: {}", String::from_utf8_lossy(snippet).trim()),
            retry_after,
            class: FailureClass::Http,
        },
    }
}

/// A reqwest error without its URL (which may carry a credential) but with
/// its cause chain.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    chain(kind, e)
}

/// `kind`, then the texts of `e`'s causes (not `e`'s own, which for a
/// reqwest error names the URL), each once.
fn chain(kind: &str, e: &dyn std::error::Error) -> String {
    let mut out = kind.to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The failure class of a request that got no answer: the policy's refusal
/// or a TLS error anywhere in the cause chain (also inside nested
/// `io::Error`s, whose `source()` skips the error they wrap), else timeout
/// or connect.
fn classify(e: &reqwest::Error) -> FailureClass {
    if e.is_timeout() {
        return FailureClass::Timeout;
    }
    if let Some(class) = classify_chain(e) {
        return class;
    }
    if e.is_connect() {
        FailureClass::Connect
    } else {
        FailureClass::Other
    }
}

/// The policy's refusal or a TLS error in `e`'s cause chain (also inside
/// nested `io::Error`s, whose `source()` skips the error they wrap).
fn classify_chain(e: &(dyn std::error::Error + 'static)) -> Option<FailureClass> {
    fn class_of(s: &(dyn std::error::Error + 'static)) -> Option<FailureClass> {
        if s.is::<crate::ssrf::Refused>() {
            Some(FailureClass::Policy)
        } else if s.is::<rustls::Error>() {
            Some(FailureClass::Tls)
        } else {
            let inner = s.downcast_ref::<std::io::Error>()?.get_ref()?;
            class_of(inner)
        }
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(class) = class_of(s) {
            return Some(class);
        }
        source = s.source();
    }
    None
}

/// At most `max` bytes of `bytes` as text: cut on a character boundary,
/// invalid UTF-8 replaced, NUL bytes (which PostgreSQL text refuses) dropped.
fn truncate_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text.chars().filter(|&c| c != '\0').collect();
    while out.len() > max {
        out.pop();
    }
    out
}

/// `Retry-After` as delta-seconds or an HTTP date; `None` when malformed.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "12 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
