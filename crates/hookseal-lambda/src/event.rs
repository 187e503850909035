//! Lambda invocations: Function URL (API Gateway v2 format) events go
//! through the router; scheduled invocations drain the outbox.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use futures_util::FutureExt;
use lambda_http::request::LambdaRequest;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::app::App;

/// Whether `payload` is a scheduled invocation rather than an HTTP event:
/// an EventBridge Scheduler target input `{"hookseal": "dispatch"}`, or an
/// EventBridge rule's `Scheduled Event`. HTTP events always carry a
/// `requestContext`, and their caller controls only what is inside `body`
/// and `headers`, so a Function URL request cannot pose as a schedule.
pub fn is_schedule(payload: &Value) -> bool {
    if payload.get("requestContext").is_some() {
        return false;
    }
    payload.get("hookseal").and_then(Value::as_str) == Some("dispatch")
        || payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// Handles one invocation, from the event JSON to the response JSON.
pub async fn handle(
    app: &Arc<App>,
    router: &Router,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let LambdaEvent { payload, context } = event;
    if is_schedule(&payload) {
        let budget = crate::app::budget_until(context.deadline);
        return Ok(match app.drain(budget).await {
            Some(summary) => {
                tracing::info!(%summary, "scheduled dispatch");
                summary
            }
            None => {
                tracing::warn!("scheduled invocation without DATABASE_URL: nothing to dispatch");
                json!({"error": "dispatch needs DATABASE_URL"})
            }
        });
    }
    if !builds_a_uri(&payload) {
        tracing::warn!("malformed HTTP event (path, query, host or scheme is not a valid URI)");
        return Ok(malformed_event());
    }
    let request: LambdaRequest = serde_json::from_value(payload)
        .map_err(|e| format!("not a Function URL / API Gateway v2 event: {e}"))?;
    let adapter = lambda_http::Adapter::from(router.clone());
    // lambda_http 1.3 panics (`expect("failed to build request")`) on an
    // event whose path, query or host is not a valid URI (found by the
    // `lambda_event` fuzz target): such an event gets a 400, not a panic.
    let answered = AssertUnwindSafe(adapter.oneshot(LambdaEvent::new(request, context)))
        .catch_unwind()
        .await;
    let response = match answered {
        Ok(Ok(r)) => r,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::warn!("malformed HTTP event (path, query or host is not a valid URI)");
            return Ok(malformed_event());
        }
    };
    Ok(serde_json::to_value(response)?)
}

/// Whether lambda_http 1.3 can build the request URI of an API Gateway v2
/// event without panicking: the steps of its `into_api_gateway_v2_request`
/// (stage prefix, `x-forwarded-proto`, host header or domain name, raw
/// query), each checked instead of unwrapped.
fn builds_a_uri(payload: &Value) -> bool {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
    }
    let header = |name: &str| {
        payload
            .get("headers")
            .and_then(Value::as_object)
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .filter(|v| http::HeaderValue::from_str(v).is_ok())
    };
    let context = payload.get("requestContext");
    let raw_path = text(payload.get("rawPath")).unwrap_or("");
    let path = match text(context.and_then(|c| c.get("stage"))) {
        Some(stage)
            if stage != "$default"
                && std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_none()
                && !raw_path.starts_with(&format!("/{stage}/")) =>
        {
            format!("/{stage}{raw_path}")
        }
        _ => raw_path.to_owned(),
    };
    let host = header("host").or_else(|| text(context.and_then(|c| c.get("domainName"))));
    let mut uri = match host {
        None => match reqwest::Url::parse(&format!("http://localhost{path}")) {
            Ok(u) => u.path().to_owned(),
            Err(_) => return false,
        },
        Some(host) => {
            let scheme = header("x-forwarded-proto").unwrap_or("https");
            match reqwest::Url::parse(&format!("{scheme}://{host}{path}")) {
                Ok(u) => u.to_string(),
                Err(_) => return false,
            }
        }
    };
    if let Some(query) = text(payload.get("rawQueryString")).filter(|q| !q.is_empty()) {
        uri.push('?');
        uri.push_str(query);
    }
    http::Uri::try_from(uri).is_ok()
}

/// The 400 answer to an HTTP event that cannot become a request.
fn malformed_event() -> Value {
    json!({
        "statusCode": 400,
        "headers": {"content-type": "application/json"},
        "body": json!({"error": "malformed_event",
                       "message": "the event's path, query, host or scheme is not a valid URI"}).to_string(),
        "isBase64Encoded": false,
    })
}
