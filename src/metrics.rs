//! What the process has done, and `/metrics` in the OpenMetrics text format, through
//! `prometheus-client` (the Prometheus project's own Rust client: families of labelled counters
//! and histograms, and an encoder that keeps the exposition format right).
//!
//! - Process counters (ingest requests, outcomes, auth failures, …), unlabelled.
//! - EventBridge's CloudWatch metrics with the same meaning, in Prometheus naming and labelled
//!   by `bus`, `rule` and `target` (see [`Delivered`] for how each outcome counts).
//! - Histograms of ingest request duration, attempt duration, ingestion to first invocation
//!   and acknowledgement to delivery.
//! - Gauges read from the database at scrape time, so every process reports the same queue.
//!
//! Labels only ever carry names the database knows (a bus that exists, a rule that matched, a
//! target that was sent to): a client cannot grow the series by sending names. They stay until
//! the process restarts, also for a rule since deleted. Since the labels name things,
//! `/metrics` asks for a bearer token when `SWITCHYARD_METRICS_TOKEN` is set.

use std::collections::HashMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

use crate::store::overview::Overview;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    pub bus: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub bus: String,
    pub rule: String,
}

/// An event type of the schema registry (only registered types become series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SchemaLabels {
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    /// `warn` (accepted and flagged) or `enforce` (refused).
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub bus: String,
    pub rule: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Seconds, from a millisecond to five minutes (a delivery waits out retries that long).
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Seconds, for requests that a timeout ends at tens of seconds.
const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// How one delivery outcome counts, in EventBridge's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The target accepted it: an invocation.
    Accepted,
    /// Retried later: not an invocation until it ends.
    Retrying,
    /// A dead letter after the target was tried (this time or before): a failed invocation, and
    /// an invocation.
    FailedFinally,
    /// A dead letter that never reached the target (its budget ran out while it waited, its
    /// input could not be rendered, its target was deleted): a dead-letter invocation, not an
    /// invocation.
    NeverInvoked,
    /// Held for a disabled target.
    Held,
    /// Put back for a while: the target's rate limit was spent (not tried).
    RateLimited,
}

/// One recorded outcome, as the counters and histograms take it.
pub struct DeliveryRecord<'a> {
    pub labels: &'a TargetLabels,
    pub delivered: Delivered,
    /// The try this outcome made, if one went out: which (1-based), when, and for how long.
    pub sent: Option<SentTry>,
    pub received_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy)]
pub struct SentTry {
    pub attempt: i32,
    pub started_at: OffsetDateTime,
    pub duration_ms: i32,
}

/// Where one minute's counts go: the minute, bus, rule and target ('' for a bus's events in).
pub type MinuteKey = (i64, String, String, String);

/// What a process did in one minute, for the overview's charts ([`crate::store::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    pub events: i64,
    pub delivered: i64,
    pub retried: i64,
    pub dead: i64,
    /// Delivered, by acknowledgement-to-delivery latency: one count per [`LATENCY_BUCKETS`]
    /// bound, then the slower ones.
    pub latency: [i64; LATENCY_BUCKETS.len() + 1],
}

/// A minute (Unix seconds), a bus, a source and a detail-type.
pub type SchemaMinute = (i64, String, String, String);

fn minute_of(time: OffsetDateTime) -> i64 {
    time.unix_timestamp().div_euclid(60) * 60
}

#[derive(Debug)]
pub struct Metrics {
    /// This process's per-minute counts since they were last taken.
    /// By minute, then by bus, rule and target: a hit needs no allocation.
    minutes: std::sync::Mutex<HashMap<i64, HashMap<TargetLabels, MinuteCounts>>>,
    /// Schema violations per minute, bus, source and detail-type since they were last taken.
    schema_minutes: std::sync::Mutex<HashMap<SchemaMinute, i64>>,
    registry: Registry,
    pub ingest_requests: Counter,
    pub events_accepted: Counter,
    pub entries_refused: Counter,
    pub entries_deduplicated: Counter,
    outcomes: Family<OutcomeLabels, Counter>,
    pub leases_lost: Counter,
    pub events_pruned: Counter,
    pub auth_failures: Counter,
    pub auth_throttled: Counter,
    invocations: Family<TargetLabels, Counter>,
    failed_invocations: Family<TargetLabels, Counter>,
    dead_letter_invocations: Family<TargetLabels, Counter>,
    retry_invocation_attempts: Family<TargetLabels, Counter>,
    triggered_rules: Family<RuleLabels, Counter>,
    matched_events: Family<BusLabels, Counter>,
    schema_violations: Family<SchemaLabels, Counter>,
    schema_unregistered_refused: Family<BusLabels, Counter>,
    ingest_duration: Histograms<BusLabels>,
    attempt_duration: Histograms<TargetLabels>,
    ingestion_to_invocation_start: Histograms<TargetLabels>,
    ingestion_to_delivery: Histograms<TargetLabels>,
    deliveries_pending: Gauge,
    dead_letters: Gauge,
    groups_blocked: Gauge,
    replays_active: Gauge,
    events_last_hour: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchyard");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let ingest_requests = counter(
            &mut registry,
            "ingest_requests",
            "Ingest requests answered 200 by this process.",
        );
        let events_accepted = counter(
            &mut registry,
            "events_accepted",
            "Events acknowledged (durably stored) by this process.",
        );
        let entries_refused = counter(
            &mut registry,
            "entries_refused",
            "Malformed entries refused by this process.",
        );
        let entries_deduplicated = counter(
            &mut registry,
            "entries_deduplicated",
            "Entries answered with the event their idempotency key already names (nothing created), by this process.",
        );
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "delivery_outcomes",
            "Delivery outcomes recorded by this process (delivered, retried, dead_lettered, held, lease_lost).",
            outcomes.clone(),
        );
        // A lost lease is an outcome of its own: the series exists from the start.
        let leases_lost = outcomes
            .get_or_create_owned(&OutcomeLabels {
                outcome: "lease_lost",
            })
            .clone();
        let events_pruned = counter(
            &mut registry,
            "events_pruned",
            "Events removed with their deliveries and attempts, past retention, by this process.",
        );
        let auth_failures = counter(
            &mut registry,
            "auth_failures",
            "Requests and sign-ins with a token that is not valid, seen by this process.",
        );
        let auth_throttled = counter(
            &mut registry,
            "auth_throttled",
            "Requests and sign-ins refused by this process because their address sent too many wrong tokens.",
        );
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<TargetLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let invocations = family(
            &mut registry,
            "invocations",
            "EventBridge's Invocations: deliveries whose target was invoked, ending delivered or failed for good (retries count once, when they end).",
        );
        let failed_invocations = family(
            &mut registry,
            "failed_invocations",
            "EventBridge's FailedInvocations: deliveries dead-lettered after their target was tried.",
        );
        let dead_letter_invocations = family(
            &mut registry,
            "dead_letter_invocations",
            "EventBridge's DeadLetterInvocations: deliveries dead-lettered without their target being invoked (budget spent while waiting, input not renderable, target deleted).",
        );
        let retry_invocation_attempts = family(
            &mut registry,
            "retry_invocation_attempts",
            "EventBridge's RetryInvocationAttempts: tries after a delivery's first.",
        );
        let triggered_rules = Family::<RuleLabels, Counter>::default();
        registry.register(
            "triggered_rules",
            "EventBridge's TriggeredRules: acknowledged events each rule matched.",
            triggered_rules.clone(),
        );
        let matched_events = Family::<BusLabels, Counter>::default();
        registry.register(
            "matched_events",
            "EventBridge's MatchedEvents: acknowledged events that matched at least one rule.",
            matched_events.clone(),
        );
        let schema_violations = Family::<SchemaLabels, Counter>::default();
        registry.register(
            "schema_violations",
            "Events whose detail broke the latest schema of their type: accepted and flagged (mode warn) or refused (mode enforce).",
            schema_violations.clone(),
        );
        let schema_unregistered_refused = Family::<BusLabels, Counter>::default();
        registry.register(
            "schema_unregistered_refused",
            "Events refused because their type has no schema on a bus that refuses unregistered types.",
            schema_unregistered_refused.clone(),
        );
        let ingest_duration: Histograms<BusLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "ingest_request_duration",
            "Ingest requests answered 200, from the body read to the answer.",
            Unit::Seconds,
            ingest_duration.clone(),
        );
        let histograms = |registry: &mut Registry, name: &str, help: &str| {
            let family: Histograms<TargetLabels> = Family::new_with_constructor(latency_histogram);
            registry.register_with_unit(name, help, Unit::Seconds, family.clone());
            family
        };
        let attempt_duration = histograms(
            &mut registry,
            "attempt_duration",
            "Tries sent to targets, from the request to the answer or the error.",
        );
        let ingestion_to_invocation_start = histograms(
            &mut registry,
            "ingestion_to_invocation_start_latency",
            "EventBridge's IngestionToInvocationStartLatency: from the event's acknowledgement to its delivery's first try.",
        );
        let ingestion_to_delivery = histograms(
            &mut registry,
            "ingestion_to_delivery_latency",
            "From the event's acknowledgement to the answer that delivered it (retries included).",
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let deliveries_pending = gauge(
            &mut registry,
            "deliveries_pending",
            "Deliveries waiting (queued in an ordered group or due), in flight or held (all processes).",
        );
        let dead_letters = gauge(
            &mut registry,
            "dead_letters",
            "Dead letters waiting for an operator (all processes).",
        );
        let groups_blocked = gauge(
            &mut registry,
            "delivery_groups_blocked",
            "Ordered delivery groups held by a dead letter until it is redriven or discarded (all processes).",
        );
        let replays_active = gauge(
            &mut registry,
            "replays_active",
            "Replays starting or running (all processes).",
        );
        let events_last_hour = gauge(
            &mut registry,
            "events_last_hour",
            "Events accepted in the last hour (all processes), from the per-minute counts: it lags by up to SWITCHYARD_STATS_INTERVAL_MS.",
        );
        Metrics {
            minutes: Default::default(),
            schema_minutes: Default::default(),
            registry,
            ingest_requests,
            events_accepted,
            entries_refused,
            entries_deduplicated,
            outcomes,
            leases_lost,
            events_pruned,
            auth_failures,
            auth_throttled,
            invocations,
            failed_invocations,
            dead_letter_invocations,
            retry_invocation_attempts,
            triggered_rules,
            matched_events,
            schema_violations,
            schema_unregistered_refused,
            ingest_duration,
            attempt_duration,
            ingestion_to_invocation_start,
            ingestion_to_delivery,
            deliveries_pending,
            dead_letters,
            groups_blocked,
            replays_active,
            events_last_hour,
        }
    }

    /// The per-minute counts gathered since the last call (for [`crate::store::stats::add`]).
    pub fn take_minutes(&self) -> Vec<(MinuteKey, MinuteCounts)> {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *minutes)
            .into_iter()
            .flat_map(|(minute, targets)| {
                targets
                    .into_iter()
                    .map(move |(l, counts)| ((minute, l.bus, l.rule, l.target), counts))
            })
            .collect()
    }

    /// Puts counts back that could not be written (they are added to what came since).
    pub fn restore_minutes(&self, taken: Vec<(MinuteKey, MinuteCounts)>) {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        for ((minute, bus, rule, target), counts) in taken {
            let into = minutes
                .entry(minute)
                .or_default()
                .entry(TargetLabels { bus, rule, target })
                .or_default();
            into.events += counts.events;
            into.delivered += counts.delivered;
            into.retried += counts.retried;
            into.dead += counts.dead;
            for (into, n) in into.latency.iter_mut().zip(counts.latency) {
                *into += n;
            }
        }
    }

    /// The schema violations counted since the last call (for [`crate::store::stats::add_schema`]).
    pub fn take_schema_minutes(&self) -> Vec<(SchemaMinute, i64)> {
        let mut minutes = self
            .schema_minutes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *minutes).into_iter().collect()
    }

    /// Puts violation counts back that could not be written.
    pub fn restore_schema_minutes(&self, taken: Vec<(SchemaMinute, i64)>) {
        let mut minutes = self
            .schema_minutes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (key, n) in taken {
            *minutes.entry(key).or_default() += n;
        }
    }

    /// Adds to the counts of `labels` in the minute of `at`.
    fn minute(
        &self,
        at: OffsetDateTime,
        labels: &TargetLabels,
        add: impl FnOnce(&mut MinuteCounts),
    ) {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let targets = minutes.entry(minute_of(at)).or_default();
        match targets.get_mut(labels) {
            Some(counts) => add(counts),
            None => add(targets.entry(labels.clone()).or_default()),
        }
    }

    /// Events of `bus` acknowledged now.
    pub fn events_in(&self, bus: &str, n: u64) {
        if n == 0 {
            return;
        }
        let labels = TargetLabels {
            bus: bus.to_owned(),
            rule: String::new(),
            target: String::new(),
        };
        self.minute(OffsetDateTime::now_utc(), &labels, |c| c.events += n as i64);
    }

    /// One answered ingest request of `bus`, which took `seconds`.
    pub fn ingest_answered(&self, bus: &str, seconds: f64) {
        self.ingest_duration
            .get_or_create(&BusLabels {
                bus: bus.to_owned(),
            })
            .observe(seconds);
    }

    /// Acknowledged events of `bus`: `matched` of them matched a rule; `triggered` says how many
    /// each rule matched.
    pub fn matched<'a>(
        &self,
        bus: &str,
        matched: u64,
        triggered: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        if matched == 0 {
            return;
        }
        self.matched_events
            .get_or_create(&BusLabels {
                bus: bus.to_owned(),
            })
            .inc_by(matched);
        for (rule, count) in triggered {
            self.triggered_rules
                .get_or_create(&RuleLabels {
                    bus: bus.to_owned(),
                    rule: rule.to_owned(),
                })
                .inc_by(count);
        }
    }

    /// An event whose detail broke its type's schema (`mode`: what the bus did about it).
    pub fn schema_violation(
        &self,
        bus: &str,
        source: &str,
        detail_type: &str,
        mode: crate::schema::Validation,
    ) {
        self.schema_violations
            .get_or_create(&SchemaLabels {
                bus: bus.to_owned(),
                source: source.to_owned(),
                detail_type: detail_type.to_owned(),
                mode: mode.as_str(),
            })
            .inc();
        let key = (
            minute_of(OffsetDateTime::now_utc()),
            bus.to_owned(),
            source.to_owned(),
            detail_type.to_owned(),
        );
        let mut minutes = self
            .schema_minutes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *minutes.entry(key).or_default() += 1;
    }

    /// An event refused because its type has no schema.
    pub fn schema_refused_unregistered(&self, bus: &str) {
        self.schema_unregistered_refused
            .get_or_create(&BusLabels {
                bus: bus.to_owned(),
            })
            .inc();
    }

    /// One delivery outcome that was recorded (its lease held).
    pub fn delivery(&self, record: DeliveryRecord<'_>) {
        let labels = record.labels;
        let outcome = match record.delivered {
            Delivered::Accepted => "delivered",
            Delivered::Retrying => "retried",
            Delivered::FailedFinally | Delivered::NeverInvoked => "dead_lettered",
            Delivered::Held => "held",
            Delivered::RateLimited => "rate_limited",
        };
        self.outcomes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        match record.delivered {
            Delivered::Accepted | Delivered::FailedFinally => {
                self.invocations.get_or_create(labels).inc();
            }
            Delivered::Retrying
            | Delivered::Held
            | Delivered::NeverInvoked
            | Delivered::RateLimited => {}
        }
        let now = OffsetDateTime::now_utc();
        match record.delivered {
            // With its latency, below.
            Delivered::Accepted | Delivered::Held | Delivered::RateLimited => {}
            Delivered::Retrying => self.minute(now, labels, |c| c.retried += 1),
            Delivered::FailedFinally | Delivered::NeverInvoked => {
                self.minute(now, labels, |c| c.dead += 1)
            }
        }
        match record.delivered {
            Delivered::FailedFinally => {
                self.failed_invocations.get_or_create(labels).inc();
            }
            Delivered::NeverInvoked => {
                self.dead_letter_invocations.get_or_create(labels).inc();
            }
            _ => {}
        }
        let Some(sent) = record.sent else {
            return;
        };
        let seconds = |d: time::Duration| d.as_seconds_f64().max(0.0);
        let took = time::Duration::milliseconds(i64::from(sent.duration_ms));
        self.attempt_duration
            .get_or_create(labels)
            .observe(seconds(took));
        if sent.attempt <= 1 {
            self.ingestion_to_invocation_start
                .get_or_create(labels)
                .observe(seconds(sent.started_at - record.received_at));
        } else {
            self.retry_invocation_attempts.get_or_create(labels).inc();
        }
        if record.delivered == Delivered::Accepted {
            let latency = seconds(sent.started_at + took - record.received_at);
            self.ingestion_to_delivery
                .get_or_create(labels)
                .observe(latency);
            let bucket = LATENCY_BUCKETS
                .iter()
                .position(|bound| latency <= *bound)
                .unwrap_or(LATENCY_BUCKETS.len());
            self.minute(now, labels, |c| {
                c.delivered += 1;
                c.latency[bucket] += 1;
            });
        }
    }

    /// The OpenMetrics text, with the gauges set from `queue`.
    pub fn render(&self, queue: &Overview) -> String {
        self.deliveries_pending.set(queue.deliveries_pending);
        self.dead_letters.set(queue.dead_letters);
        self.groups_blocked.set(queue.groups_blocked);
        self.replays_active.set(queue.replays_active);
        self.events_last_hour.set(queue.events_last_hour);
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> TargetLabels {
        TargetLabels {
            bus: "orders".into(),
            rule: "paid".into(),
            target: "hook".into(),
        }
    }

    #[test]
    fn renders_the_openmetrics_text() {
        let metrics = Metrics::new();
        metrics.ingest_requests.inc_by(3);
        let text = metrics.render(&Overview {
            events_last_hour: 7,
            deliveries_pending: 2,
            dead_letters: 1,
            groups_blocked: 4,
            replays_active: 5,
        });
        assert!(text.contains("# TYPE switchyard_ingest_requests counter\n"));
        assert!(text.contains("switchyard_ingest_requests_total 3\n"));
        assert!(text.contains("switchyard_delivery_outcomes_total{outcome=\"lease_lost\"} 0\n"));
        assert!(text.contains("switchyard_deliveries_pending 2\n"));
        assert!(text.contains("switchyard_dead_letters 1\n"));
        assert!(text.contains("switchyard_delivery_groups_blocked 4\n"));
        assert!(text.contains("switchyard_replays_active 5\n"));
        assert!(text.contains("switchyard_events_last_hour 7\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// EventBridge's meanings: a retry is not an invocation until it ends; a dead letter that
    /// was tried is a failed invocation; one that never reached its target is a dead-letter
    /// invocation only.
    #[test]
    fn outcomes_count_as_eventbridge_counts_them() {
        let metrics = Metrics::new();
        let labels = labels();
        let received_at = OffsetDateTime::now_utc();
        let sent = |attempt| {
            Some(SentTry {
                attempt,
                started_at: received_at + time::Duration::milliseconds(40),
                duration_ms: 10,
            })
        };
        for (delivered, sent) in [
            (Delivered::Retrying, sent(1)),
            (Delivered::Accepted, sent(2)),
            (Delivered::FailedFinally, sent(1)),
            (Delivered::NeverInvoked, None),
        ] {
            metrics.delivery(DeliveryRecord {
                labels: &labels,
                delivered,
                sent,
                received_at,
            });
        }
        let text = metrics.render(&Overview::default());
        let l = r#"{bus="orders",rule="paid",target="hook"}"#;
        let inner = &l[1..];
        for line in [
            format!("switchyard_invocations_total{l} 2"),
            format!("switchyard_failed_invocations_total{l} 1"),
            format!("switchyard_dead_letter_invocations_total{l} 1"),
            format!("switchyard_retry_invocation_attempts_total{l} 1"),
            format!("switchyard_ingestion_to_invocation_start_latency_seconds_count{l} 2"),
            format!("switchyard_ingestion_to_delivery_latency_seconds_count{l} 1"),
            // 40 ms to the try and 10 ms of answer: in the 50 ms bucket, not the 25 ms one.
            format!(
                "switchyard_ingestion_to_delivery_latency_seconds_bucket{{le=\"0.025\",{inner} 0"
            ),
            format!(
                "switchyard_ingestion_to_delivery_latency_seconds_bucket{{le=\"0.05\",{inner} 1"
            ),
            format!("switchyard_attempt_duration_seconds_count{l} 3"),
            "switchyard_delivery_outcomes_total{outcome=\"dead_lettered\"} 2".to_owned(),
        ] {
            assert!(text.lines().any(|t| t == line), "{line} in\n{text}");
        }
    }

    /// The Grafana dashboard in `docs/` asks only for series that `/metrics` has.
    #[test]
    fn the_dashboard_queries_series_that_exist() {
        let metrics = Metrics::new();
        let labels = labels();
        let received_at = OffsetDateTime::now_utc();
        metrics.ingest_answered("orders", 0.002);
        metrics.matched("orders", 1, [("paid", 1)]);
        for (delivered, attempt) in [
            (Delivered::Accepted, 2),
            (Delivered::FailedFinally, 1),
            (Delivered::NeverInvoked, 1),
        ] {
            metrics.delivery(DeliveryRecord {
                labels: &labels,
                delivered,
                sent: Some(SentTry {
                    attempt,
                    started_at: received_at,
                    duration_ms: 3,
                }),
                received_at,
            });
        }
        let text = metrics.render(&Overview::default());
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../docs/grafana-dashboard.json"))
                .expect("the dashboard is JSON");
        let mut names = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                let mut rest = expr;
                while let Some(at) = rest.find("switchyard_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[at + name.len()..];
                    names.push(name);
                }
            }
        }
        assert!(names.len() >= 10, "{names:?}");
        for name in names {
            assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("{name}{{"))
                        || line.starts_with(&format!("{name} "))),
                "the dashboard asks for {name}, which /metrics does not have:\n{text}"
            );
        }
    }
}
