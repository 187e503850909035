//! The one answer every refused webhook gets: a status from the contract's
//! table and a small JSON body, `{"error": code, "message": text}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookseal::{Scheme, VerifyError};
use serde_json::json;

/// One row of the refusal table: a status, the codes answered with it, and
/// when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status; `None` for the scheme's own mismatch status
    /// (`Scheme::mismatch_status`: 401, 403 or 400).
    pub status: Option<u16>,
    /// Said after the status in the docs (`Allow: POST` for 405).
    pub note: &'static str,
    /// The `error` codes of the JSON body.
    pub codes: &'static [&'static str],
    /// When they are answered.
    pub when: &'static str,
}

/// Every answer a refused request gets from the receive wing (the axum
/// layer, the Lambda's routes, `hookseal receive`): the one table. The
/// crate docs and the README show [`refusal_table`]'s text, and the tests
/// hold them, every [`Rejection`] constructor and every [`VerifyError`]
/// code to it.
pub const REFUSALS: &[Refusal] = &[
    Refusal {
        status: Some(400),
        note: "",
        codes: &[
            "missing_header",
            "malformed_header",
            "missing_signed_header",
            "missing_query_parameter",
            "malformed_query_parameter",
            "body_not_json",
            "body_unreadable",
        ],
        when: "the request cannot be checked",
    },
    Refusal {
        status: None,
        note: "",
        codes: &[
            "no_matching_signature",
            "timestamp_too_old",
            "timestamp_too_new",
        ],
        when: "it was checked and is not authentic or not fresh",
    },
    Refusal {
        status: Some(404),
        note: "",
        codes: &["not_found"],
        when: "no route for the path (the Lambda's and `hookseal receive`'s routers)",
    },
    Refusal {
        status: Some(405),
        note: "(`Allow: POST`)",
        codes: &["method_not_allowed"],
        when: "not a POST",
    },
    Refusal {
        status: Some(409),
        note: "",
        codes: &["replayed"],
        when: "the message id was accepted within the replay window",
    },
    Refusal {
        status: Some(413),
        note: "",
        codes: &["body_too_large"],
        when: "the body exceeds the limit (256 KiB by default)",
    },
    Refusal {
        status: Some(431),
        note: "",
        codes: &["headers_too_large"],
        when: "the headers exceed 64 KiB or 100 fields (read that far by `serve`, feature `serve`)",
    },
    Refusal {
        status: Some(500),
        note: "",
        codes: &["receiver_not_configured"],
        when: "a `Webhook` extractor on a route without the receiver layer (a bug in the service)",
    },
    Refusal {
        status: Some(503),
        note: "",
        codes: &["replay_store_unavailable"],
        when: "the replay guard could not be asked; the request is refused, not let through",
    },
];

/// [`REFUSALS`] as the Markdown table the docs show.
pub fn refusal_table() -> String {
    let mut out = String::from("| status | code | when |\n|---|---|---|\n");
    for r in REFUSALS {
        let status = match r.status {
            Some(s) => s.to_string(),
            None => "the scheme's (401, 403 or 400)".to_owned(),
        };
        let status = match r.note {
            "" => status,
            note => format!("{status} {note}"),
        };
        let codes: Vec<String> = r.codes.iter().map(|c| format!("`{c}`")).collect();
        out.push_str(&format!(
            "| {status} | {} | {} |\n",
            codes.join(", "),
            r.when
        ));
    }
    out
}

/// Why a request was refused, as an HTTP answer.
///
/// The response carries a clone of this value in its extensions, so an
/// outer middleware (a request log, metrics) can read the reason without
/// parsing the body. Neither the code nor the message ever holds a secret or
/// an expected signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
    message_id: Option<String>,
}

impl Rejection {
    /// A rejection with any status, machine code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status,
            code,
            message: message.into(),
            message_id: None,
        }
    }

    /// A verification failure, with the status the scheme's table gives it.
    pub fn verify(error: &VerifyError, scheme: &Scheme) -> Self {
        let status = StatusCode::from_u16(error.status(scheme)).unwrap_or(StatusCode::BAD_REQUEST);
        Rejection::new(status, error.code(), error.to_string())
    }

    /// 413: the body is larger than the receiver's limit.
    pub fn body_too_large(limit: usize) -> Self {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds {limit} bytes"),
        )
    }

    /// 431: the request's headers exceed the receiver's limits
    /// ([`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES) in all,
    /// [`MAX_HEADERS`](crate::MAX_HEADERS) fields).
    pub fn headers_too_large(bytes: usize, fields: usize) -> Self {
        Rejection::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {bytes} bytes in {fields} fields; at most {} bytes in {} fields are read",
                crate::MAX_HEADER_BYTES,
                crate::MAX_HEADERS
            ),
        )
    }

    /// 409: the message id was already accepted within the replay window.
    pub fn replayed(id: &str) -> Self {
        Rejection::new(
            StatusCode::CONFLICT,
            "replayed",
            "this message id was already received within the replay window",
        )
        .with_message_id(Some(id.to_owned()))
    }

    /// 503: the replay store could not be asked (the request is refused
    /// rather than let through unchecked; the sender retries).
    pub fn replay_store_unavailable() -> Self {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "replay_store_unavailable",
            "the replay guard is unavailable; retry",
        )
    }

    /// 405 with the JSON body (axum's method router adds `Allow`).
    pub fn method_not_allowed() -> Self {
        Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "webhooks are POSTed",
        )
    }

    /// 404: no webhook route at this path.
    pub fn not_found() -> Self {
        Rejection::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no webhook route at this path",
        )
    }

    /// Attaches the message id the request claimed (its id header, not
    /// verified), for logs.
    pub fn with_message_id(mut self, id: Option<String>) -> Self {
        self.message_id = id;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable reason (`no_matching_signature`, `replayed`, …).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message id the request claimed, if it got that far.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message});
        let mut r = json_response(self.status, body);
        r.extensions_mut().insert(self);
        r
    }
}

/// A JSON answer with `Content-Type: application/json`: the one shape the
/// receivers built on this crate answer in (`{"ok": true, …}` on success).
pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `405 method_not_allowed` as a handler, for `MethodRouter::fallback`.
pub async fn method_not_allowed() -> Rejection {
    Rejection::method_not_allowed()
}

/// `404 not_found` as a handler, for `Router::fallback`.
pub async fn not_found() -> Rejection {
    Rejection::not_found()
}
