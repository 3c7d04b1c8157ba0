//! OpenTelemetry export: spans over OTLP (HTTP, protobuf) when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (with the other
//! `OTEL_*` variables the SDK reads: headers, timeout, service name, sampler, batch sizes);
//! nothing at all when neither is set.
//!
//! Two kinds of spans, from the `opentelemetry` crates:
//!
//! - the ingest request and its steps (matching, the commit) are `tracing` spans, exported
//!   through `tracing-opentelemetry`; the request's span is a child of the producer's
//!   `traceparent`;
//! - an event's span and each delivery attempt's span are made here, after the fact, with the
//!   ids Switchyard already gave them: the event's span id is stored with the event, and an
//!   attempt's is what its `traceparent` header told the receiver. The SDK's span builder
//!   takes no ids, so the provider's [`IdGenerator`] hands out the one set for the span being
//!   built on this thread ([`Given`]), and random ones otherwise. An attempt's span id is derived
//!   from its delivery and its number ([`crate::domain::trace::attempt_span_id`]), so a retry
//!   links to the try before it without storing anything.
//!
//! The exporter is the OTLP crate's own HTTP client on the blocking `reqwest` (the batch
//! processor runs on a thread of its own, without an async runtime: the async client panics
//! there).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};

use crate::domain::trace::{EventSpan, Incoming};

/// The tracer of this process's exported spans (unset: nothing is exported).
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

thread_local! {
    /// The ids the next span built on this thread must have.
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Random ids, except for the span whose ids were given ([`with_ids`]).
#[derive(Debug, Default)]
struct Given(RandomIdGenerator);

impl IdGenerator for Given {
    fn new_trace_id(&self) -> TraceId {
        match NEXT_IDS.with(Cell::get) {
            Some((trace_id, _)) => trace_id,
            None => self.0.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match NEXT_IDS.with(Cell::get) {
            Some((_, span_id)) => span_id,
            None => self.0.new_span_id(),
        }
    }
}

/// Builds a span with these ids: the generator reads them while `build` runs on this thread.
fn with_ids<T>(trace_id: TraceId, span_id: SpanId, build: impl FnOnce() -> T) -> T {
    NEXT_IDS.with(|next| next.set(Some((trace_id, span_id))));
    let built = build();
    NEXT_IDS.with(|next| next.set(None));
    built
}

/// Whether spans are exported (an OTLP endpoint is configured).
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// The endpoint variables that turn export on.
fn configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

#[derive(Debug, thiserror::Error)]
#[error("setting up the OTLP span exporter failed: {0}")]
pub struct OtelError(String);

/// The provider, when an endpoint is configured; keep it and [`shutdown`] it on exit so the
/// last spans go out.
pub fn init() -> Result<Option<SdkTracerProvider>, OtelError> {
    if !configured() {
        return Ok(None);
    }
    // The exporter's client speaks TLS to an https:// endpoint with the process's provider.
    crate::delivery::client::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| OtelError(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "switchyard".to_owned()),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(Given::default())
        .with_resource(resource)
        .build();
    let _ = TRACER.set(provider.tracer("switchyard"));
    Ok(Some(provider))
}

/// Sends what is still buffered and stops the exporter.
pub fn shutdown(provider: &SdkTracerProvider) {
    if let Err(error) = provider.shutdown() {
        tracing::warn!(error = %error, "shutting the span exporter down failed");
    }
}

/// The tracer `tracing-opentelemetry` exports `tracing` spans with.
pub fn tracer() -> Option<SdkTracer> {
    TRACER.get().cloned()
}

fn trace_id(hex: &str) -> TraceId {
    TraceId::from_hex(hex).unwrap_or(TraceId::INVALID)
}

fn span_id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap_or(SpanId::INVALID)
}

fn flags(sampled: bool) -> TraceFlags {
    if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    }
}

/// A remote parent: the producer's span.
pub fn remote_context(incoming: &Incoming, tracestate: Option<&str>) -> Context {
    let state = tracestate
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id(&incoming.trace_id),
        span_id(&incoming.parent_id),
        flags(incoming.sampled),
        true,
        state,
    ))
}

/// The parent context of a span whose parent is `span`'s producer (or none: a new trace).
fn producer_context(span: &EventSpan) -> Context {
    match &span.parent_id {
        Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
            trace_id(&span.trace_id),
            span_id(parent),
            flags(span.sampled),
            true,
            TraceState::default(),
        )),
        None => Context::new(),
    }
}

/// The event's context as a parent of its attempts.
fn event_context(span: &EventSpan) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id(&span.trace_id),
        span_id(&span.span_id),
        flags(span.sampled),
        true,
        TraceState::default(),
    ))
}

/// One stored event, for its span.
pub struct EventRecord<'a> {
    pub span: &'a EventSpan,
    pub event_id: String,
    pub bus: &'a str,
    pub source: &'a str,
    pub detail_type: &'a str,
    pub matched_rules: usize,
    pub deliveries: usize,
}

/// The spans of events just committed: from `started` (the request's arrival) to now, each a
/// child of its producer's span, linked to the span of the commit that stored it.
pub fn events_stored(events: &[EventRecord<'_>], started: SystemTime, commit: Option<SpanContext>) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let now = SystemTime::now();
    for event in events {
        let parent = producer_context(event.span);
        let mut builder = tracer
            .span_builder("event stored")
            .with_kind(SpanKind::Producer)
            .with_start_time(started)
            .with_attributes([
                KeyValue::new("switchyard.event.id", event.event_id.clone()),
                KeyValue::new("switchyard.bus", event.bus.to_owned()),
                KeyValue::new("switchyard.event.source", event.source.to_owned()),
                KeyValue::new("switchyard.event.detail_type", event.detail_type.to_owned()),
                KeyValue::new("switchyard.matched_rules", event.matched_rules as i64),
                KeyValue::new("switchyard.deliveries", event.deliveries as i64),
            ]);
        if let Some(commit) = commit.clone().filter(SpanContext::is_valid) {
            builder = builder.with_links(vec![Link::with_context(commit)]);
        }
        let mut span = with_ids(
            trace_id(&event.span.trace_id),
            span_id(&event.span.span_id),
            || builder.start_with_context(tracer, &parent),
        );
        span.end_with_timestamp(now);
    }
}

/// One delivery attempt that went out, for its span.
pub struct AttemptRecord<'a> {
    pub span: &'a EventSpan,
    pub delivery_id: String,
    /// 1-based.
    pub attempt: u32,
    pub method: &'a str,
    pub url: &'a str,
    pub rule: &'a str,
    pub target: &'a str,
    pub started: SystemTime,
    pub duration: Duration,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
}

/// The span of one attempt (HTTP client conventions), a child of its event's span, with the
/// id its `traceparent` gave the receiver; a retry links to the try before it.
pub fn attempt_sent(attempt: &AttemptRecord<'_>) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let span = attempt.span;
    let mut attributes = vec![
        KeyValue::new("http.request.method", attempt.method.to_owned()),
        KeyValue::new("url.full", attempt.url.to_owned()),
        KeyValue::new("switchyard.delivery.id", attempt.delivery_id.clone()),
        KeyValue::new("switchyard.rule", attempt.rule.to_owned()),
        KeyValue::new("switchyard.target", attempt.target.to_owned()),
    ];
    if let Some(host) = reqwest::Url::parse(attempt.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        attributes.push(KeyValue::new("server.address", host));
    }
    if attempt.attempt > 1 {
        attributes.push(KeyValue::new(
            "http.request.resend_count",
            i64::from(attempt.attempt - 1),
        ));
    }
    let failed = match (attempt.status, attempt.error) {
        (Some(status), _) => {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            (status >= 400).then(|| status.to_string())
        }
        (None, Some(_)) => Some("connection".to_owned()),
        (None, None) => None,
    };
    if let Some(kind) = &failed {
        attributes.push(KeyValue::new("error.type", kind.clone()));
    }
    let mut builder = tracer
        .span_builder(attempt.method.to_owned())
        .with_kind(SpanKind::Client)
        .with_start_time(attempt.started)
        .with_attributes(attributes);
    if attempt.attempt > 1 {
        let previous =
            crate::domain::trace::attempt_span_id(&attempt.delivery_id, attempt.attempt - 1);
        builder = builder.with_links(vec![Link::with_context(SpanContext::new(
            trace_id(&span.trace_id),
            span_id(&previous),
            flags(span.sampled),
            false,
            TraceState::default(),
        ))]);
    }
    let own = crate::domain::trace::attempt_span_id(&attempt.delivery_id, attempt.attempt);
    let mut otel = with_ids(trace_id(&span.trace_id), span_id(&own), || {
        builder.start_with_context(tracer, &event_context(span))
    });
    if let Some(kind) = failed {
        otel.set_status(Status::error(
            attempt.error.map(str::to_owned).unwrap_or(kind),
        ));
    }
    otel.end_with_timestamp(attempt.started + attempt.duration);
}
