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

use hookseal_otel::{Context, KeyValue, Span, SpanKind, Status, TraceContextExt, Tracer};

use crate::deliver::{Job, Outcome};

/// The claim's span for `job`, child of its event's trace context, from
/// `started` to `ended`; the empty context for a row without one.
pub(crate) fn claimed(job: &Job, worker: &str, started: SystemTime, ended: SystemTime) -> Context {
    let parent =
        hookseal_otel::from_traceparent(job.traceparent.as_deref(), job.tracestate.as_deref());
    if !parent.span().span_context().is_valid() {
        return Context::new();
    }
    let tracer = hookseal_otel::tracer();
    let mut span = tracer
        .span_builder("hookseal.claim")
        .with_kind(SpanKind::Consumer)
        .with_start_time(started)
        .with_attributes(row(job))
        .start_with_context(&tracer, &parent);
    span.set_attribute(KeyValue::new("hookseal.worker", worker.to_owned()));
    span.end_with_timestamp(ended);
    parent.with_remote_span_context(span.span_context().clone())
}

/// An attempt's span, child of the claim's; its context goes out as the
/// request's `traceparent`. `None` for a row without a trace.
pub(crate) fn attempt(job: &Job) -> Option<hookseal_otel::Context> {
    if !job.trace.span().span_context().is_valid() {
        return None;
    }
    let tracer = hookseal_otel::tracer();
    let span = tracer
        .span_builder("hookseal.attempt")
        .with_kind(SpanKind::Client)
        .with_attributes(row(job))
        .start_with_context(&tracer, &job.trace);
    Some(job.trace.with_span(span))
}

/// Ends an attempt's span with its outcome.
pub(crate) fn attempt_ended(cx: &Context, outcome: &Outcome) {
    let span = cx.span();
    match outcome {
        Outcome::Delivered { status } => {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(*status),
            ));
        }
        Outcome::Gone => {
            span.set_attribute(KeyValue::new("http.response.status_code", 410));
        }
        Outcome::Retry { status, class, .. } => {
            if let Some(s) = status {
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(*s)));
            }
            span.set_attribute(KeyValue::new("error.type", class.as_str()));
            span.set_status(Status::error(class.as_str()));
        }
    }
    span.end();
}

/// The recording's span (`hookseal.ack` or `hookseal.fail`), child of the
/// attempt's, over the statement that recorded it.
pub(crate) fn recorded(
    attempt: &hookseal_otel::SpanContext,
    name: &'static str,
    started: SystemTime,
    ended: SystemTime,
) {
    if !attempt.is_valid() {
        return;
    }
    let parent = Context::new().with_remote_span_context(attempt.clone());
    let tracer = hookseal_otel::tracer();
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(started)
        .start_with_context(&tracer, &parent);
    span.end_with_timestamp(ended);
}

fn row(job: &Job) -> Vec<KeyValue> {
    vec![
        KeyValue::new("hookseal.outbox_id", job.outbox_id),
        KeyValue::new("hookseal.event_id", job.event_id.clone()),
        KeyValue::new("hookseal.endpoint_id", job.endpoint_id.clone()),
        KeyValue::new("hookseal.attempt", i64::from(job.attempt)),
    ]
}
