//! `POST /v1/buses/{bus}/events` (ingest), `GET /v1/events` (search) and `GET /v1/events/{id}`
//! (the event trace).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;

use super::buses::bus_not_found;
use super::extract::{ApiPath, ApiQuery, RawBody, unsupported_media_type};
use super::problem::ApiError;
use crate::domain::cloudevent::{self, BinaryEvent};
use crate::domain::fields::check_text;
use crate::domain::{BusName, DeliveryId, EventId, FieldError, MAX_DETAIL_TYPE, MAX_SOURCE};
use crate::ingest::{self, Entry, EntryOutcome, IngestError, MAX_ENTRIES};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::event_search::{EventCursor, EventFilter, EventSummary};
use crate::store::{self, events::StoredAttempt, events::StoredDelivery};

pub fn routes(max_request_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/buses/{bus}/events",
            post(put_events).layer(DefaultBodyLimit::max(max_request_bytes)),
        )
        .route("/events", get(search))
        .route("/events/{id}", get(trace))
}

#[derive(Serialize)]
#[serde(untagged)]
enum EntryOut {
    Accepted {
        event_id: EventId,
    },
    Duplicate {
        event_id: EventId,
        /// Always true: the entry's idempotency key was accepted before, for this event.
        duplicate: bool,
    },
    Failed {
        error_code: &'static str,
        error_message: String,
        /// For `SchemaViolation`: every violation, each at its pointer with its keyword.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        violations: Vec<crate::schema::Violation>,
    },
}

#[derive(Serialize)]
struct PutEventsOut {
    failed_entry_count: usize,
    entries: Vec<EntryOut>,
}

async fn put_events(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let clock = std::time::Instant::now();
    // W3C Trace Context: a header that does not parse starts a new trace, as the spec asks.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let context = header("traceparent")
        .and_then(crate::domain::trace::parse_traceparent)
        .map(|parent| ingest::RequestTrace {
            parent,
            tracestate: header("tracestate").map(str::to_owned),
        });
    let content_type = header("content-type").unwrap_or("").to_owned();
    let essence = cloudevent::essence(&content_type);
    // Owners of the texts that the entries borrow.
    let text: String;
    let parsed: Vec<&RawValue>;
    let entries: Vec<Entry<'_>> = if headers.contains_key("ce-specversion") {
        // CloudEvents binary mode: the attributes in `ce-` headers, the body is the data.
        let mut attributes = Vec::new();
        for (name, value) in &headers {
            if let Some(attribute) = name.as_str().strip_prefix("ce-") {
                let value = value.to_str().map_err(|_| {
                    ApiError::bad_body(format!("the header {name} is not visible ASCII"))
                })?;
                attributes.push((attribute.to_owned(), value.to_owned()));
            }
        }
        vec![Entry::CloudBinary(BinaryEvent {
            attributes,
            content_type: (!content_type.is_empty()).then_some(content_type),
            body: body.to_vec(),
        })]
    } else {
        text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_body("the body is not valid UTF-8"))?;
        match essence.as_str() {
            cloudevent::STRUCTURED => {
                let one: &RawValue = serde_json::from_str(&text)
                    .map_err(|e| ApiError::bad_body(format!("the body is not valid JSON: {e}")))?;
                if !one.get().starts_with('{') {
                    return Err(ApiError::bad_body(
                        "a structured-mode CloudEvent is a JSON object",
                    ));
                }
                vec![Entry::CloudEvent(one)]
            }
            cloudevent::BATCH => {
                parsed = serde_json::from_str(&text).map_err(|e| {
                    ApiError::bad_body(format!(
                        "a CloudEvents batch is a JSON array of events: {e}"
                    ))
                })?;
                if parsed.len() > MAX_ENTRIES {
                    return Err(ApiError::bad_body(format!(
                        "a batch holds at most {MAX_ENTRIES} CloudEvents; found {}",
                        parsed.len()
                    )));
                }
                parsed.iter().map(|raw| Entry::CloudEvent(raw)).collect()
            }
            json if json == "application/json" || json.ends_with("+json") => {
                parsed = eventbridge_entries(&text)?;
                parsed.iter().map(|raw| Entry::EventBridge(raw)).collect()
            }
            _ => {
                return Err(unsupported_media_type(format!(
                    "events are sent as `application/json`, CloudEvents as `{}` or `{}`, or in \
                     binary mode with `ce-` headers; got {content_type:?}",
                    cloudevent::STRUCTURED,
                    cloudevent::BATCH
                )));
            }
        }
    };
    let outcomes = ingest::ingest(
        &state.writer,
        &state.snapshots,
        &state.ingest,
        &bus,
        entries,
        context.as_ref(),
        &state.metrics,
    )
    .instrument(request_span(&bus, context.as_ref()))
    .await
    .map_err(|error| match error {
        IngestError::BusNotFound(bus) => bus_not_found(&bus),
        IngestError::Store(error) => ApiError::from(error),
        other @ (IngestError::Write(_) | IngestError::WriterStopped) => {
            ApiError::from_failure(&other)
        }
    })?;
    let failed = count_outcomes(&state.metrics, &bus, &outcomes);
    let metrics = &state.metrics;
    let entries: Vec<EntryOut> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            EntryOutcome::Accepted(event_id) => EntryOut::Accepted { event_id },
            EntryOutcome::Duplicate(event_id) => EntryOut::Duplicate {
                event_id,
                duplicate: true,
            },
            EntryOutcome::Failed(error) => EntryOut::Failed {
                error_code: error.code,
                error_message: error.message,
                violations: error.violations,
            },
        })
        .collect();
    let response = Json(PutEventsOut {
        failed_entry_count: failed,
        entries,
    })
    .into_response();
    metrics.ingest_answered(&bus, clock.elapsed().as_secs_f64());
    Ok(response)
}

/// Counts an ingest request's outcomes for `bus` into the metrics; returns how many failed.
/// Every ingest route (this API's and EventBridge's) counts through here.
pub(crate) fn count_outcomes(metrics: &Metrics, bus: &str, outcomes: &[EntryOutcome]) -> usize {
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, EntryOutcome::Failed(_)))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, EntryOutcome::Duplicate(_)))
        .count();
    metrics.ingest_requests.inc();
    metrics.entries_refused.inc_by(failed as u64);
    metrics.entries_deduplicated.inc_by(duplicates as u64);
    let accepted = (outcomes.len() - failed - duplicates) as u64;
    metrics.events_accepted.inc_by(accepted);
    metrics.events_in(bus, accepted);
    failed
}

/// The ingest request's exported span (HTTP server conventions), a child of the producer's
/// `traceparent`; none when spans are not exported.
fn request_span(bus: &str, context: Option<&ingest::RequestTrace>) -> tracing::Span {
    if !crate::otel::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: "switchyard::otel",
        "POST /v1/buses/{bus}/events",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/v1/buses/{bus}/events",
        switchyard.bus = bus,
    );
    if let Some(context) = context {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let parent = crate::otel::remote_context(&context.parent, context.tracestate.as_deref());
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(error = %error, "the request's span keeps no parent");
        }
    }
    span
}

/// One event object, or `{"entries": [...]}` with 1 to [`MAX_ENTRIES`].
fn eventbridge_entries(body: &str) -> Result<Vec<&RawValue>, ApiError> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_body("the body must be an event object or {\"entries\": [...]}")
        } else {
            ApiError::bad_body(format!("the body is not valid JSON: {e}"))
        }
    })?;
    let Some(raw) = top.get("entries") else {
        let single: &RawValue =
            serde_json::from_str(body).map_err(|e| ApiError::bad_body(e.to_string()))?;
        return Ok(vec![single]);
    };
    if let Some(other) = top.keys().find(|k| *k != "entries") {
        return Err(ApiError::validation(vec![FieldError::new(
            crate::domain::fields::pointer("", other),
            "a batch has only `entries`",
        )]));
    }
    let entries: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "/entries",
            "must be an array of events",
        )])
    })?;
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(ApiError::validation(vec![FieldError::new(
            "/entries",
            format!(
                "must hold 1 to {MAX_ENTRIES} entries; found {}",
                entries.len()
            ),
        )]));
    }
    Ok(entries)
}

/// One try, on the wire (the trace's and the dead letter's `attempt_log`).
#[derive(Serialize)]
pub(super) struct AttemptOut {
    attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    duration_ms: i32,
    status: Option<i32>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<String>,
    error: Option<String>,
}

impl From<StoredAttempt> for AttemptOut {
    fn from(a: StoredAttempt) -> Self {
        AttemptOut {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status: a.status,
            response_headers: a.response_headers,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

#[derive(Serialize)]
struct DeliveryOut {
    id: DeliveryId,
    rule: String,
    target_id: String,
    state: String,
    attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    next_attempt_at: OffsetDateTime,
    last_status: Option<i32>,
    last_error: Option<String>,
    dead_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    finalized_at: Option<OffsetDateTime>,
    /// For an ordered target: the group the delivery waits its turn in.
    #[serde(skip_serializing_if = "Option::is_none")]
    group_key: Option<String>,
    attempt_log: Vec<AttemptOut>,
}

impl DeliveryOut {
    fn new(d: StoredDelivery, attempts: Vec<StoredAttempt>) -> Self {
        DeliveryOut {
            id: d.id,
            rule: d.rule_name,
            target_id: d.target_id,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            dead_reason: d.dead_reason,
            created_at: d.created_at,
            finalized_at: d.finalized_at,
            group_key: d.group_key,
            attempt_log: attempts.into_iter().map(AttemptOut::from).collect(),
        }
    }
}

#[derive(Serialize)]
struct TraceOut {
    event: Box<RawValue>,
    bus: String,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    matched_rules: Vec<String>,
    /// The event's place in a W3C trace (absent for events stored before trace context).
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<TraceContextOut>,
    /// What the detail broke, when its bus validated schemas in `warn` mode: the schema version
    /// and the violations.
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_violations: Option<Box<RawValue>>,
    deliveries: Vec<DeliveryOut>,
}

#[derive(Serialize)]
struct TraceContextOut {
    trace_id: String,
    /// The event's own span; each delivery attempt sends a child of it.
    span_id: String,
    /// The producer's span; null when the event started the trace.
    parent_span_id: Option<String>,
    traceparent: String,
    tracestate: Option<String>,
}

async fn trace(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no event with id {id:?}"));
    let event_id: EventId = id.parse().map_err(|_| not_found())?;
    let mut conn = state.pool.acquire().await?;
    let trace = store::events::trace(&mut conn, event_id)
        .await?
        .ok_or_else(not_found)?;
    let trace_context = trace.event.span().map(|span| TraceContextOut {
        traceparent: span.traceparent(),
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_id,
        tracestate: span.tracestate,
    });
    let event = RawValue::from_string(trace.event.body).map_err(|e| ApiError::internal(&e))?;
    let schema_violations = trace
        .event
        .schema_violations
        .map(RawValue::from_string)
        .transpose()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(TraceOut {
        trace: trace_context,
        schema_violations,
        event,
        bus: trace.event.bus,
        received_at: trace.event.received_at,
        matched_rules: trace.event.matched_rules,
        deliveries: trace
            .deliveries
            .into_iter()
            .map(|(delivery, attempts)| DeliveryOut::new(delivery, attempts))
            .collect(),
    })
    .into_response())
}

/// What a search asks for, as text (the API's query and the UI's form alike).
#[derive(Debug, Default)]
pub(crate) struct SearchIn {
    pub bus: Option<String>,
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub trace_id: Option<String>,
    pub matched: Option<bool>,
}

impl SearchIn {
    /// The store's filter, or the first parameter that is wrong (its name as the pointer). An
    /// empty name, source, detail-type or trace id filters nothing (a form's blank field); an
    /// empty time is not a time.
    pub(crate) fn parse(self) -> Result<EventFilter, FieldError> {
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        let SearchIn {
            bus,
            source,
            detail_type,
            since,
            until,
            trace_id,
            matched,
        } = self;
        let (bus, source, detail_type) = (given(bus), given(source), given(detail_type));
        let trace_id = given(trace_id);
        let time = |name: &str, value: Option<String>| match value {
            None => Ok(None),
            Some(text) => OffsetDateTime::parse(&text, &Rfc3339)
                .map(Some)
                .map_err(|_| {
                    FieldError::new(name, format!("{text:?} is not an RFC 3339 timestamp"))
                }),
        };
        let text = |name: &str, value: Option<String>, max: usize| match value {
            None => Ok(None),
            Some(text) => check_text(&text, max)
                .map(|()| Some(text))
                .map_err(|why| FieldError::new(name, why)),
        };
        if let Some(bus) = &bus {
            BusName::parse(bus).map_err(|e| FieldError::new("bus", e.0))?;
        }
        let trace_id = match trace_id {
            None => None,
            Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(id.to_ascii_lowercase())
            }
            Some(id) => {
                return Err(FieldError::new(
                    "trace_id",
                    format!(
                        "{:?} is not a trace id (32 hex digits)",
                        id.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        Ok(EventFilter {
            bus,
            source: text("source", source, MAX_SOURCE)?,
            detail_type: text("detail_type", detail_type, MAX_DETAIL_TYPE)?,
            since: time("since", since)?,
            until: time("until", until)?,
            trace_id,
            matched,
        })
    }
}

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    bus: Option<String>,
    source: Option<String>,
    detail_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    trace_id: Option<String>,
    matched: Option<bool>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct SearchOut {
    items: Vec<EventSummaryOut>,
    next_cursor: Option<String>,
}

/// An event as a search lists it; `GET /v1/events/{id}` has the rest.
#[derive(Serialize)]
struct EventSummaryOut {
    event_id: EventId,
    bus: String,
    source: String,
    detail_type: String,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    matched_rules: Vec<String>,
    deliveries: i32,
    trace_id: Option<String>,
}

impl From<EventSummary> for EventSummaryOut {
    fn from(e: EventSummary) -> Self {
        EventSummaryOut {
            event_id: e.id,
            bus: e.bus,
            source: e.source,
            detail_type: e.detail_type,
            time: e.event_time,
            received_at: e.received_at,
            matched_rules: e.matched_rules,
            deliveries: e.deliveries,
            trace_id: e.trace_id,
        }
    }
}

/// Events by bus, source, detail-type, time, trace id and matched or not, newest first.
async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after = super::page_cursor(query.cursor.as_deref(), EventCursor::decode)?;
    let filter = SearchIn {
        bus: query.bus,
        source: query.source,
        detail_type: query.detail_type,
        since: query.since,
        until: query.until,
        trace_id: query.trace_id,
        matched: query.matched,
    }
    .parse()
    .map_err(|e| ApiError::parameter(&e.pointer, &e.detail))?;
    let mut conn = state.pool.acquire().await?;
    let mut items = store::event_search::search(&mut conn, &filter, after, limit + 1).await?;
    let next_cursor = store::page_end(&mut items, limit as usize)
        .map(EventCursor::after)
        .map(|c| c.encode());
    Ok(Json(SearchOut {
        items: items.into_iter().map(EventSummaryOut::from).collect(),
        next_cursor,
    })
    .into_response())
}
