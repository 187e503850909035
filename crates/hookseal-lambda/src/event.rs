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
    let request: LambdaRequest = serde_json::from_value(payload)
        .map_err(|e| format!("not a Function URL / API Gateway v2 event: {e}"))?;
    let adapter = lambda_http::Adapter::from(router.clone());
    // lambda_http 1.3 panics (`expect("failed to build request")`,
    // `Url::parse(..).unwrap()`) converting an event whose path, query, host,
    // stage or forwarded scheme does not make a valid URI (found by the
    // `lambda_event` fuzz target, in several shapes). Its conversion is not
    // ours to fix; the panic is stopped here and the event gets a 400.
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
