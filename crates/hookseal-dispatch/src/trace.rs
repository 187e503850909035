//! The dispatcher's spans (OpenTelemetry, through `hookseal-otel`): for
//! each row whose event kept a trace context (`webhook_send`'s
//! `traceparent`), the claim that took it, each attempt (whose own span
//! the request's `traceparent` names, so the receiver continues the
//! trace), and the ack or fail that recorded it. Rows without a trace
//! context get no spans and send no `traceparent`.
//!
//! Attributes are ids, counts, statuses and the failure class: never the
//! URL (it can hold a credential), a header, a secret or the body.

use std::time::SystemTime;

use hookseal_otel::{Context, KeyValue, SpanContext, SpanKind, TraceContextExt};

use crate::deliver::{Job, Outcome};

/// The claim's span for `job`, child of its event's trace context, from
/// `started` to `ended`; the empty context for a row without one.
pub(crate) fn claimed(job: &Job, worker: &str, started: SystemTime, ended: SystemTime) -> Context {
    let parent =
        hookseal_otel::from_traceparent(job.traceparent.as_deref(), job.tracestate.as_deref());
    if !parent.span().span_context().is_valid() {
        return Context::new();
    }
    let mut attributes = row(job);
    attributes.push(KeyValue::new("hookseal.worker", worker.to_owned()));
    let kind = SpanKind::Consumer;
    hookseal_otel::record(
        &parent,
        "hookseal.claim",
        kind,
        attributes,
        (started, ended),
    )
}

/// An attempt's span, child of the claim's; its context goes out as the
/// request's `traceparent`. `None` for a row without a trace.
pub(crate) fn attempt(job: &Job) -> Option<Context> {
    if !job.trace.span().span_context().is_valid() {
        return None;
    }
    Some(hookseal_otel::start(
        &job.trace,
        "hookseal.attempt",
        SpanKind::Client,
        row(job),
    ))
}

/// Ends an attempt's span with its outcome.
pub(crate) fn attempt_ended(cx: &Context, outcome: &Outcome) {
    match outcome {
        Outcome::Delivered { status } => hookseal_otel::end(cx, Some(*status), None),
        Outcome::Gone => hookseal_otel::end(cx, Some(410), None),
        Outcome::Retry { status, class, .. } => {
            hookseal_otel::end(cx, *status, Some(class.as_str()))
        }
    }
}

/// The recording's span (`hookseal.ack` or `hookseal.fail`), child of the
/// attempt's, over the statement that recorded it.
pub(crate) fn recorded(
    attempt: &SpanContext,
    name: &'static str,
    started: SystemTime,
    ended: SystemTime,
) {
    if !attempt.is_valid() {
        return;
    }
    let parent = Context::new().with_remote_span_context(attempt.clone());
    hookseal_otel::record(
        &parent,
        name,
        SpanKind::Internal,
        Vec::new(),
        (started, ended),
    );
}

fn row(job: &Job) -> Vec<KeyValue> {
    vec![
        KeyValue::new("hookseal.outbox_id", job.outbox_id),
        KeyValue::new("hookseal.event_id", job.event_id.clone()),
        KeyValue::new("hookseal.endpoint_id", job.endpoint_id.clone()),
        KeyValue::new("hookseal.attempt", i64::from(job.attempt)),
    ]
}
