//! The durable write path: each entry is validated and matched on the bus's snapshot, then every
//! accepted event, all of its deliveries (an ordered target's counted in its group) and its
//! archive memberships are written in one atomic statement, shared with the
//! other requests waiting at that moment (group commit, [`Writer`]). Only after it commits does the
//! caller answer, so an acknowledged event is never lost. Deliveries that find a free worker slot
//! in this process are stored already leased to it and handed to its engine after the commit;
//! the others are announced to every process after it ([`Announcer`]).
//!
//! Bad input fails alone: every text that Postgres could refuse is checked per entry before the
//! group (`Envelope::parse`), and should the database still refuse a group's statement, each
//! request of the group is written on its own, so only the one holding the refused row fails.
//!
//! A request whose entries carry idempotency keys is written in a transaction of its own instead
//! ([`Writer::write_keyed`]): its keys and its events commit together, so a key never names an
//! event that was not stored.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::value::RawValue;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::delivery::{Engine, Grant};
use crate::domain::cloudevent::{self, BinaryEvent};
use crate::domain::trace::{EventSpan, Incoming};
use crate::domain::{DeliveryId, EntryError, Envelope, EnvelopeLimits, EventId};
use crate::metrics::Metrics;
use crate::otel;
use crate::ruleset::{BusRules, Schemas, Snapshots};
use crate::schema::{Unregistered, Validation};
use crate::store::notify::Announcer;
use crate::store::{self, StoreError};

/// Settings of the ingest path.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub limits: EnvelopeLimits,
    /// The largest request body, all entries together.
    pub max_request_bytes: usize,
    /// `account` and `region` written into every event.
    pub account: String,
    pub region: String,
}

/// At most this many entries per request (EventBridge's `PutEvents` limit).
pub const MAX_ENTRIES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no bus named {0:?}")]
    BusNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the events failed")]
    Write(#[source] Arc<sqlx::Error>),
    #[error("the ingest writer has stopped")]
    WriterStopped,
}

impl From<sqlx::Error> for IngestError {
    fn from(error: sqlx::Error) -> Self {
        IngestError::Store(error.into())
    }
}

/// The trace context an ingest request came with (`traceparent`, `tracestate`).
#[derive(Debug, Clone)]
pub struct RequestTrace {
    pub parent: Incoming,
    pub tracestate: Option<String>,
}

/// One entry of an ingest request, as it arrived.
#[derive(Debug)]
pub enum Entry<'a> {
    /// An EventBridge entry (`source`, `detail-type`, `detail`, …).
    EventBridge(&'a RawValue),
    /// A CloudEvent in structured mode (JSON format).
    CloudEvent(&'a RawValue),
    /// A CloudEvent in binary mode.
    CloudBinary(BinaryEvent),
}

impl Entry<'_> {
    fn envelope(
        self,
        limits: &EnvelopeLimits,
        now: OffsetDateTime,
    ) -> Result<Envelope, EntryError> {
        match self {
            Entry::EventBridge(raw) => Envelope::parse(raw.get(), limits, now),
            Entry::CloudEvent(raw) => cloudevent::parse_structured(raw.get(), limits, now),
            Entry::CloudBinary(event) => cloudevent::parse_binary(event, limits, now),
        }
    }
}

/// The result for one entry, in request order.
#[derive(Debug)]
pub enum EntryOutcome {
    Accepted(EventId),
    /// Its `idempotency_key` was accepted before (within the bus's window) for this event:
    /// nothing was created.
    Duplicate(EventId),
    Failed(EntryError),
}

/// Validates, matches and durably stores a batch of entries for `bus`.
#[tracing::instrument(skip_all, fields(bus, entries = entries.len()))]
pub async fn ingest(
    writer: &Writer,
    snapshots: &Snapshots,
    config: &IngestConfig,
    bus: &str,
    entries: Vec<Entry<'_>>,
    context: Option<&RequestTrace>,
    metrics: &Metrics,
) -> Result<Vec<EntryOutcome>, IngestError> {
    let rules = snapshots
        .get(bus)
        .await?
        .ok_or_else(|| IngestError::BusNotFound(bus.to_owned()))?;
    let now = OffsetDateTime::now_utc();
    let mut matcher = rules.rules.matcher();
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut events = Vec::with_capacity(entries.len());
    let mut deliveries = Vec::new();
    // Per event, its idempotency key; the first entry of each key in this request.
    let mut keys: Vec<Option<String>> = Vec::with_capacity(entries.len());
    let mut firsts: HashMap<String, EventId> = HashMap::new();
    // Each stored event with the index of each rule it matched, for the metrics once committed.
    let mut hits: Vec<(EventId, u32)> = Vec::new();
    // What the exported event spans say, when spans are exported.
    let mut exported: Vec<ExportedEvent> = Vec::new();
    let started = std::time::SystemTime::now();
    let matching = exported_span("match");
    let entered = matching.enter();
    for entry in entries {
        let envelope = match entry.envelope(&config.limits, now) {
            Ok(envelope) => envelope,
            Err(error) => {
                outcomes.push(EntryOutcome::Failed(error));
                continue;
            }
        };
        let schema_violations = match validate(&rules.schemas, &envelope, bus, metrics) {
            Ok(flag) => flag,
            Err(error) => {
                outcomes.push(EntryOutcome::Failed(error));
                continue;
            }
        };
        if let Some(first) = envelope
            .idempotency_key
            .as_ref()
            .and_then(|k| firsts.get(k))
        {
            outcomes.push(EntryOutcome::Duplicate(*first));
            continue;
        }
        let id = EventId::new();
        let body = envelope.to_event_json(id, &config.account, &config.region);
        // The body is written from parts serde_json has read, so the matcher passes over what
        // no rule names without checking it again.
        let matched = match matcher.matches_validated(&body) {
            Ok(matched) => matched,
            Err(error) => {
                outcomes.push(EntryOutcome::Failed(EntryError::malformed_detail(format!(
                    "detail: {error}"
                ))));
                continue;
            }
        };
        let routed = route(&rules, matched, bus, id, &body, |_| true, &mut deliveries);
        hits.extend(matched.iter().map(|&rule| (id, rule)));
        // An entry's own TraceHeader names its producer's span; else the request's context.
        let span = match (&envelope.trace_header, context) {
            (Some(own), _) => EventSpan::child_of(id, Some(own), None),
            (None, request) => EventSpan::child_of(
                id,
                request.map(|r| &r.parent),
                request.and_then(|r| r.tracestate.as_deref()),
            ),
        };
        if let Some(key) = &envelope.idempotency_key {
            firsts.insert(key.clone(), id);
        }
        keys.push(envelope.idempotency_key);
        let archives = if rules.archives.is_empty() {
            Vec::new()
        } else {
            rules.archives.keeping(&body)
        };
        if otel::enabled() {
            exported.push(ExportedEvent {
                span: span.clone(),
                id,
                source: envelope.source.clone(),
                detail_type: envelope.detail_type.clone(),
                matched_rules: matched.len(),
                deliveries: routed.delivery_ids.len(),
            });
        }
        events.push(store::events::NewEvent {
            id,
            bus: bus.to_owned(),
            matched_rules: routed.matched_rules,
            delivery_ids: routed.delivery_ids,
            span,
            archives,
            schema_violations,
            body,
            source: envelope.source,
            detail_type: envelope.detail_type,
            time: envelope.time,
        });
        outcomes.push(EntryOutcome::Accepted(id));
    }
    drop(entered);
    drop(matching);
    let (accepted, matched) = (events.len(), deliveries.len());
    let commit = exported_span("commit");
    if keys.iter().any(Option::is_some) {
        let held = writer
            .write_keyed(bus, events, deliveries, keys)
            .instrument(commit.clone())
            .await?;
        hits.retain(|(id, _)| !held.contains_key(id));
        exported.retain(|e| !held.contains_key(&e.id));
        for outcome in &mut outcomes {
            if let EntryOutcome::Accepted(id) | EntryOutcome::Duplicate(id) = *outcome
                && let Some(holder) = held.get(&id)
            {
                *outcome = EntryOutcome::Duplicate(*holder);
            }
        }
    } else if accepted > 0 {
        writer
            .write(events, deliveries)
            .instrument(commit.clone())
            .await?;
    }
    tracing::debug!(accepted, deliveries = matched, "events stored");
    count_matches(metrics, bus, &rules, &hits);
    if !exported.is_empty() {
        export_events(bus, &exported, started, &commit);
    }
    Ok(outcomes)
}

/// Validates an event's detail with the latest schema of its type, as its bus says: `Ok(None)`
/// when valid or not validated; in `warn` mode, `Ok` with what it broke (JSON text, kept with
/// the event); in `enforce` mode, or for a type without a schema on a bus that refuses those,
/// the entry's error. Never changes the event.
fn validate(
    schemas: &Schemas,
    envelope: &Envelope,
    bus: &str,
    metrics: &Metrics,
) -> Result<Option<String>, EntryError> {
    if schemas.validation == Validation::Off {
        return Ok(None);
    }
    let Some(registered) = schemas.get(&envelope.source, &envelope.detail_type) else {
        if schemas.unregistered == Unregistered::Refuse {
            metrics.schema_refused_unregistered(bus);
            return Err(EntryError::new(
                "SchemaNotFound",
                format!(
                    "no schema is registered for source {:?} and detail-type {:?}, and bus {bus:?} \
                     refuses event types without one",
                    envelope.source, envelope.detail_type
                ),
            ));
        }
        return Ok(None);
    };
    let detail: serde_json::Value = serde_json::from_str(&envelope.detail)
        .map_err(|error| EntryError::malformed_detail(format!("detail: {error}")))?;
    let violations = registered.schema.violations(&detail);
    let Some(first) = violations.first() else {
        return Ok(None);
    };
    metrics.schema_violation(
        bus,
        &envelope.source,
        &envelope.detail_type,
        schemas.validation,
    );
    if schemas.validation == Validation::Warn {
        let flag = serde_json::json!({ "version": registered.version, "violations": violations });
        return Ok(Some(flag.to_string()));
    }
    Err(EntryError {
        code: "SchemaViolation",
        message: format!(
            "{}: {} (keyword `{}` of schema version {} of {:?} / {:?})",
            first.pointer,
            first.message,
            first.keyword,
            registered.version,
            envelope.source,
            envelope.detail_type
        ),
        violations,
    })
}

/// A span of the ingest request's steps, exported when spans are (else none at all).
fn exported_span(name: &'static str) -> tracing::Span {
    if !otel::enabled() {
        return tracing::Span::none();
    }
    match name {
        "match" => tracing::info_span!(target: "switchyard::otel", "match"),
        _ => tracing::info_span!(target: "switchyard::otel", "commit"),
    }
}

/// What an event's exported span says.
struct ExportedEvent {
    span: EventSpan,
    id: EventId,
    source: String,
    detail_type: String,
    matched_rules: usize,
    deliveries: usize,
}

/// The spans of the events just committed, each linked to the span of the commit that stored
/// it.
fn export_events(
    bus: &str,
    events: &[ExportedEvent],
    started: std::time::SystemTime,
    commit: &tracing::Span,
) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let commit = commit.context().span().span_context().clone();
    let records: Vec<otel::EventRecord<'_>> = events
        .iter()
        .map(|e| otel::EventRecord {
            span: &e.span,
            event_id: e.id.to_string(),
            bus,
            source: &e.source,
            detail_type: &e.detail_type,
            matched_rules: e.matched_rules,
            deliveries: e.deliveries,
        })
        .collect();
    otel::events_stored(&records, started, Some(commit));
}

/// Counts committed events that matched (`hits`: each event's id with the index of each rule
/// it matched, an event's hits together) and, per rule, the events it matched.
fn count_matches(metrics: &Metrics, bus: &str, rules: &BusRules, hits: &[(EventId, u32)]) {
    if hits.is_empty() {
        return;
    }
    let events = 1 + hits.windows(2).filter(|w| w[0].0 != w[1].0).count() as u64;
    let mut per_rule: Vec<u32> = hits.iter().map(|&(_, rule)| rule).collect();
    per_rule.sort_unstable();
    let all = rules.rules.rules();
    let triggered = per_rule
        .chunk_by(|a, b| a == b)
        .filter_map(|run| Some((all.get(run[0] as usize)?.name.as_str(), run.len() as u64)));
    metrics.matched(bus, events, triggered);
}

/// What routing an event gave: the rules it matched and the deliveries made for it.
pub(crate) struct Routed {
    /// The names of the rules, sorted (JSON array text, as the event row keeps them).
    pub matched_rules: String,
    pub delivery_ids: Vec<DeliveryId>,
}

/// The deliveries of an event whose envelope (`body`) matched these rules of `bus` (`matched`
/// indexes them): one per target of each rule that `admit` lets through (every rule for ingest,
/// a replay's subset), appended to `deliveries`.
pub(crate) fn route(
    rules: &BusRules,
    matched: &[u32],
    bus: &str,
    id: EventId,
    body: &str,
    admit: impl Fn(&str) -> bool,
    deliveries: &mut Vec<store::events::NewDelivery>,
) -> Routed {
    let first = deliveries.len();
    let mut names = Vec::with_capacity(matched.len());
    // Parsed once, only when an ordered target needs a group key.
    let mut value: Option<serde_json::Value> = None;
    for &index in matched {
        let Some(rule) = rules.rules.rules().get(index as usize) else {
            continue;
        };
        if !admit(&rule.name) {
            continue;
        }
        names.push(rule.name.as_str());
        for target in &rule.targets {
            let group = target.group_by.as_ref().map(|group_by| {
                let event = value.get_or_insert_with(|| {
                    // The matcher just read this text as JSON; should serde_json still refuse
                    // it (nested deeper than it reads), the key is the empty one.
                    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
                });
                group_by.key(event)
            });
            deliveries.push(store::events::NewDelivery {
                id: DeliveryId::new(),
                bus: bus.to_owned(),
                event_id: id,
                rule_name: rule.name.clone(),
                target_id: target.id.clone(),
                target_ref: target.target_ref,
                group,
            });
        }
    }
    names.sort_unstable();
    Routed {
        matched_rules: serde_json::Value::from(names).to_string(),
        delivery_ids: deliveries[first..].iter().map(|d| d.id).collect(),
    }
}

/// Group commit: concurrent requests hand their events to one writer task, which stores
/// everything that is waiting in one statement (up to [`GROUP_EVENTS`] events) and then answers
/// each request. A request is answered only after the statement that holds its events committed.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// For requests with idempotency keys, written in a transaction of their own.
    pool: PgPool,
    engine: Option<Arc<Engine>>,
    announcer: Announcer,
}

struct Job {
    events: Vec<store::events::NewEvent>,
    deliveries: Vec<store::events::NewDelivery>,
    done: Answer,
}

/// The most events one group-commit statement stores.
pub const GROUP_EVENTS: usize = 1000;

impl Writer {
    /// Starts the writer task (on the current runtime); it ends when the writer is dropped.
    /// With this process's delivery `engine`, new deliveries that find a free worker slot are
    /// stored leased to it and handed over after the commit, skipping the claim; the others
    /// are announced to every process by `announcer`.
    pub fn start(pool: PgPool, engine: Option<Arc<Engine>>, announcer: Announcer) -> Writer {
        let (jobs, mut queue) = mpsc::channel::<Job>(1024);
        let (task_pool, task_engine, task_announcer) =
            (pool.clone(), engine.clone(), announcer.clone());
        tokio::spawn(async move {
            let (pool, engine, announcer) = (task_pool, task_engine, task_announcer);
            let mut pending: Option<Job> = None;
            loop {
                let first = match pending.take() {
                    Some(job) => job,
                    None => match queue.recv().await {
                        Some(job) => job,
                        None => return,
                    },
                };
                // A request that was answered already (its deadline passed while it queued)
                // has nobody to tell: nothing of it is stored.
                if first.done.is_closed() {
                    tracing::debug!("dropping the events of a request that timed out");
                    continue;
                }
                let mut group = vec![first];
                let mut size = group[0].events.len();
                while size < GROUP_EVENTS {
                    match queue.try_recv() {
                        Ok(job) if job.done.is_closed() => {
                            tracing::debug!("dropping the events of a request that timed out");
                        }
                        Ok(job) if size + job.events.len() <= GROUP_EVENTS => {
                            size += job.events.len();
                            group.push(job);
                        }
                        Ok(job) => {
                            pending = Some(job);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_group(&pool, engine.as_deref(), &announcer, group).await;
            }
        });
        Writer {
            jobs,
            pool,
            engine,
            announcer,
        }
    }

    /// Stores the events and deliveries; returns once they are committed.
    pub async fn write(
        &self,
        events: Vec<store::events::NewEvent>,
        deliveries: Vec<store::events::NewDelivery>,
    ) -> Result<(), IngestError> {
        let (done, committed) = oneshot::channel();
        let job = Job {
            events,
            deliveries,
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| IngestError::WriterStopped)?;
        match committed.await {
            Ok(result) => result.map_err(IngestError::Write),
            Err(_) => Err(IngestError::WriterStopped),
        }
    }
}

impl Writer {
    /// Stores the events of one request whose entries carry idempotency keys (`keys[i]` is
    /// event i's), in a transaction of its own: the keys are taken, and only the events whose
    /// key was free (or that have none) are stored, with their deliveries. Returns, for each
    /// event not stored, the event that holds its key. Group commit is for requests without
    /// keys; these pay a transaction of their own (two round trips more).
    pub async fn write_keyed(
        &self,
        bus: &str,
        events: Vec<store::events::NewEvent>,
        deliveries: Vec<store::events::NewDelivery>,
        keys: Vec<Option<String>>,
    ) -> Result<HashMap<EventId, EventId>, IngestError> {
        let mut keyed: Vec<(&str, EventId)> = keys
            .iter()
            .zip(&events)
            .filter_map(|(key, event)| key.as_deref().map(|k| (k, event.id)))
            .collect();
        keyed.sort_unstable();
        let (names, ids): (Vec<&str>, Vec<EventId>) = keyed.iter().copied().unzip();
        let mut tx = self.pool.begin().await?;
        let taken: HashSet<String> = store::idempotency::claim(&mut tx, bus, &names, &ids)
            .await?
            .into_iter()
            .collect();
        let lost: HashMap<EventId, &str> = keyed
            .iter()
            .filter(|(key, _)| !taken.contains(*key))
            .map(|(key, id)| (*id, *key))
            .collect();
        let (events, deliveries): (Vec<_>, Vec<_>) = (
            events
                .into_iter()
                .filter(|e| !lost.contains_key(&e.id))
                .collect(),
            deliveries
                .into_iter()
                .filter(|d| !lost.contains_key(&d.event_id))
                .collect(),
        );
        let engine = self.engine.as_deref();
        let stored = insert_leased(&mut tx, engine, &events, &deliveries)
            .await
            .map_err(|e| IngestError::Write(Arc::new(e)))?;
        tx.commit()
            .await
            .map_err(|e| IngestError::Write(Arc::new(e)))?;
        after_commit(engine, &self.announcer, stored, &events, deliveries);
        if lost.is_empty() {
            return Ok(HashMap::new());
        }
        // A new statement sees the holders that made these keys wait.
        let mut conn = self.pool.acquire().await?;
        let names: Vec<&str> = lost.values().copied().collect();
        let holders: HashMap<String, EventId> = store::idempotency::holders(&mut conn, bus, &names)
            .await?
            .into_iter()
            .collect();
        lost.into_iter()
            .map(|(mine, key)| match holders.get(key) {
                Some(holder) => Ok((mine, *holder)),
                // Removed in between (its window ended and retention ran): nothing to point to.
                None => Err(IngestError::Store(StoreError::Corrupt(format!(
                    "idempotency key {key:?} lost its event while this request waited"
                )))),
            })
            .collect()
    }
}

/// Stores a group in one statement and answers each request. If the database refuses the
/// statement (a row it would not take), nothing of it was stored: each request is then written
/// alone, so only the request that holds the refused row fails. Other failures (the database
/// unreachable) fail the whole group.
async fn write_group(
    pool: &PgPool,
    engine: Option<&Engine>,
    announcer: &Announcer,
    group: Vec<Job>,
) {
    let mut answers = Vec::with_capacity(group.len());
    let mut events = Vec::new();
    let mut deliveries = Vec::new();
    let mut bounds = Vec::with_capacity(group.len());
    for job in group {
        bounds.push((job.events.len(), job.deliveries.len()));
        events.extend(job.events);
        deliveries.extend(job.deliveries);
        answers.push(job.done);
    }
    let refused = match store_rows(pool, engine, announcer, &events, deliveries).await {
        Ok(()) => return answer_all(answers, &Ok(())),
        Err((error, _)) if answers.len() == 1 || !refused_by_database(&error) => {
            return answer_all(answers, &Err(error));
        }
        Err((error, deliveries)) => {
            tracing::warn!(
                error = %crate::telemetry::error_chain(&*error),
                requests = answers.len(),
                "the database refused a group commit; writing its requests one by one"
            );
            deliveries
        }
    };
    let mut events = events.into_iter();
    let mut deliveries = refused.into_iter();
    for ((event_count, delivery_count), done) in bounds.into_iter().zip(answers) {
        let mine: Vec<_> = events.by_ref().take(event_count).collect();
        let theirs: Vec<_> = deliveries.by_ref().take(delivery_count).collect();
        let result = store_rows(pool, engine, announcer, &mine, theirs)
            .await
            .map_err(|(error, _)| error);
        let _ = done.send(result);
    }
}

type Answer = oneshot::Sender<Result<(), Arc<sqlx::Error>>>;

fn answer_all(answers: Vec<Answer>, result: &Result<(), Arc<sqlx::Error>>) {
    for done in answers {
        let _ = done.send(result.clone());
    }
}

/// Whether Postgres itself refused the statement (as opposed to never getting it).
fn refused_by_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

/// One statement for these events and deliveries; the deliveries come back when it failed.
async fn store_rows(
    pool: &PgPool,
    engine: Option<&Engine>,
    announcer: &Announcer,
    events: &[store::events::NewEvent],
    deliveries: Vec<store::events::NewDelivery>,
) -> Result<(), (Arc<sqlx::Error>, Vec<store::events::NewDelivery>)> {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => return Err((Arc::new(error), deliveries)),
    };
    match insert_leased(&mut conn, engine, events, &deliveries).await {
        Ok(stored) => {
            after_commit(engine, announcer, stored, events, deliveries);
            Ok(())
        }
        Err(error) => Err((Arc::new(error), deliveries)),
    }
}

/// What [`insert_leased`] stored, for [`after_commit`].
struct Stored {
    grant: Option<Grant>,
    inserted: store::events::Inserted,
}

/// Inserts events and their deliveries, the first of them leased to this process's free
/// workers (as many as the engine grants). Hand what it returns to [`after_commit`] once
/// committed.
async fn insert_leased(
    conn: &mut store::PgConnection,
    engine: Option<&Engine>,
    events: &[store::events::NewEvent],
    deliveries: &[store::events::NewDelivery],
) -> Result<Stored, sqlx::Error> {
    let leasable = deliveries.iter().filter(|d| d.leasable()).count();
    let grant = engine.map(|e| e.grant(leasable));
    let inserted = store::events::insert(
        conn,
        events,
        deliveries,
        grant.as_ref().map(Grant::leased_to),
        std::time::Duration::ZERO,
    )
    .await;
    match inserted {
        Ok(inserted) => Ok(Stored { grant, inserted }),
        Err(error) => {
            // Refused by Postgres, nothing of it is stored; otherwise (the connection lost) it
            // may have committed all the same.
            if let (Some(engine), Some(grant)) = (engine, grant)
                && !refused_by_database(&error)
            {
                engine.unsure(grant, deliveries);
            }
            Err(error)
        }
    }
}

/// After the commit: the leased deliveries start on this process's workers, and the others are
/// announced to every process.
fn after_commit(
    engine: Option<&Engine>,
    announcer: &Announcer,
    stored: Stored,
    events: &[store::events::NewEvent],
    deliveries: Vec<store::events::NewDelivery>,
) {
    if stored.inserted.due {
        announcer.deliveries_due();
    }
    if let (Some(engine), Some(grant)) = (engine, stored.grant) {
        engine.hand_over(grant, &stored.inserted, events, deliveries);
    }
}
