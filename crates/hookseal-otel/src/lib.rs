//! # hookseal-otel
//!
//! OpenTelemetry for hookseal's binaries (`hookseal dispatch`, `hookseal
//! receive`, the Lambda), in one place:
//!
//! - [`Telemetry::init`] installs a tracer provider and the W3C Trace
//!   Context propagator. Spans are exported over OTLP (HTTP/protobuf) when
//!   the standard variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   as the SDK reads them), and nowhere otherwise: spans still get ids, so
//!   a delivery's `traceparent` names a span of its own, but nothing leaves
//!   the process. `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
//!   turn export off.
//! - [`from_traceparent`], [`extract`] and [`inject`]: trace context from a
//!   stored `traceparent`/`tracestate` or incoming headers, and into
//!   outgoing ones.
//!
//! What a span may carry is the callers' rule (ARCHITECTURE.md): ids,
//! names, statuses, timings; never a secret, a signature, a body or a URL
//! (which can hold a credential).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

pub use opentelemetry::trace::{Span, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
pub use opentelemetry::{Context, KeyValue};

/// The installed provider; dropping it flushes and shuts the export down.
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

/// Whether the environment asks for OTLP export.
pub fn export_requested() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|x| !x.trim().is_empty());
    let is =
        |v: &str, want: &str| std::env::var(v).is_ok_and(|x| x.trim().eq_ignore_ascii_case(want));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

impl Telemetry {
    /// Installs the global tracer provider (OTLP export when
    /// [`export_requested`]) for `service` (unless `OTEL_SERVICE_NAME`
    /// names it) and the W3C Trace Context propagator. An exporter that
    /// cannot be built is an error that names why.
    pub fn init(service: &'static str) -> Result<Telemetry, String> {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(
                std::env::var("OTEL_SERVICE_NAME")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| service.to_owned()),
            )
            .build();
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let exporting = export_requested();
        let builder = if exporting {
            with_otlp(builder)?
        } else {
            builder
        };
        let provider = builder.build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(Telemetry {
            provider,
            exporting,
        })
    }

    /// Whether spans leave the process.
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Exports what has ended so far (the Lambda calls it before it
    /// answers, since a frozen function exports nothing).
    pub fn flush(&self) {
        if self.exporting {
            let _ = self.provider.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // The batch processor's shutdown blocks on its own thread; done from
        // a plain thread so that an async caller's runtime is never blocked
        // in place.
        let provider = self.provider.clone();
        let _ = std::thread::spawn(move || provider.shutdown()).join();
    }
}

/// The provider with a batch exporter over OTLP (HTTP/protobuf), its
/// endpoint, headers and timeout from the `OTEL_EXPORTER_OTLP_*` variables.
#[cfg(feature = "otlp")]
fn with_otlp(
    builder: opentelemetry_sdk::trace::TracerProviderBuilder,
) -> Result<opentelemetry_sdk::trace::TracerProviderBuilder, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("OpenTelemetry: cannot export spans: {e}"))?;
    Ok(builder.with_batch_exporter(exporter))
}

#[cfg(not(feature = "otlp"))]
fn with_otlp(
    _: opentelemetry_sdk::trace::TracerProviderBuilder,
) -> Result<opentelemetry_sdk::trace::TracerProviderBuilder, String> {
    Err("OpenTelemetry: this build has no OTLP exporter (feature `otlp`)".into())
}

/// hookseal's tracer (a no-op one until [`Telemetry::init`]).
pub fn tracer() -> opentelemetry::global::BoxedTracer {
    opentelemetry::global::tracer_provider().tracer("hookseal")
}

/// A span named `name` under `parent`, started now; the context returned
/// holds it (end it with [`end`]). The one way the binaries start a span.
pub fn start(
    parent: &Context,
    name: &'static str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let tracer = tracer();
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends the span `cx` holds: the answer's HTTP status, if there was one,
/// and for a failure its code (`error.type`, and an error status).
pub fn end(cx: &Context, status: Option<u16>, error: Option<&'static str>) {
    let span = cx.span();
    if let Some(s) = status {
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    if let Some(code) = error {
        span.set_attribute(KeyValue::new("error.type", code));
        span.set_status(Status::error(code));
    }
    span.end();
}

/// A span under `parent` that ran from `started` to `ended`, written after
/// the fact (a claim or a recording that served several rows at once);
/// the context returned names it (a parent for what followed).
pub fn record(
    parent: &Context,
    name: &'static str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    (started, ended): (std::time::SystemTime, std::time::SystemTime),
) -> Context {
    let tracer = tracer();
    let mut span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    span.end_with_timestamp(ended);
    parent.with_remote_span_context(span.span_context().clone())
}

/// The context a stored `traceparent` (and `tracestate`) names; the empty
/// context when there is none or it does not parse.
pub fn from_traceparent(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let Some(tp) = traceparent else {
        return Context::new();
    };
    let mut carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    if let Some(ts) = tracestate {
        carrier.insert("tracestate".to_owned(), ts.to_owned());
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// The context of incoming `traceparent`/`tracestate` headers (the empty
/// context without them).
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Writes `cx`'s span as `traceparent` (and `tracestate`) into `headers`;
/// nothing for a context without a valid span.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeadersMut(headers));
}

/// The `traceparent` of `cx`'s span, if it has a valid one.
pub fn traceparent(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_stored_traceparent_round_trips_and_a_bad_one_is_no_context() {
        let cx = from_traceparent(Some(TP), Some("vendor=x"));
        assert!(cx.span().span_context().is_valid());
        assert_eq!(traceparent(&cx).as_deref(), Some(TP));
        let mut h = http::HeaderMap::new();
        inject(&cx, &mut h);
        assert_eq!(h["traceparent"], TP);
        assert_eq!(h["tracestate"], "vendor=x");
        assert_eq!(traceparent(&extract(&h)).as_deref(), Some(TP));
        for bad in [
            "",
            "00-0000-00",
            "xx-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(!from_traceparent(Some(bad), None)
                .span()
                .span_context()
                .is_valid());
        }
        assert!(traceparent(&from_traceparent(None, None)).is_none());
    }
}
