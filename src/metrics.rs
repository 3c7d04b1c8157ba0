//! Counters of what the process has done, and `/metrics` in Prometheus's text format
//! (hand-written: a handful of counters and gauges do not need a metrics crate). Counters are
//! per process; gauges come from the database, so every process reports the same queue.
//! No labels carry bus, rule or target names: the endpoint is open, like `/healthz`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::overview::Overview;

#[derive(Debug, Default)]
pub struct Metrics {
    pub ingest_requests: AtomicU64,
    pub events_accepted: AtomicU64,
    pub entries_refused: AtomicU64,
    pub entries_deduplicated: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub held: AtomicU64,
    pub leases_lost: AtomicU64,
    pub events_pruned: AtomicU64,
    pub auth_failures: AtomicU64,
    pub auth_throttled: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition format, version 0.0.4.
    pub fn render(&self, queue: &Overview) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "switchyard_ingest_requests_total",
            "counter",
            "Ingest requests answered 200 by this process.",
            &[("", get(&self.ingest_requests))],
        );
        metric(
            "switchyard_events_accepted_total",
            "counter",
            "Events acknowledged (durably stored) by this process.",
            &[("", get(&self.events_accepted))],
        );
        metric(
            "switchyard_entries_refused_total",
            "counter",
            "Malformed entries refused by this process.",
            &[("", get(&self.entries_refused))],
        );
        metric(
            "switchyard_entries_deduplicated_total",
            "counter",
            "Entries answered with the event their idempotency key already names (nothing created), by this process.",
            &[("", get(&self.entries_deduplicated))],
        );
        metric(
            "switchyard_delivery_outcomes_total",
            "counter",
            "Delivery outcomes recorded by this process.",
            &[
                ("{outcome=\"delivered\"}", get(&self.delivered)),
                ("{outcome=\"retried\"}", get(&self.retried)),
                ("{outcome=\"dead_lettered\"}", get(&self.dead_lettered)),
                ("{outcome=\"held\"}", get(&self.held)),
                ("{outcome=\"lease_lost\"}", get(&self.leases_lost)),
            ],
        );
        metric(
            "switchyard_events_pruned_total",
            "counter",
            "Events removed with their deliveries and attempts, past retention, by this process.",
            &[("", get(&self.events_pruned))],
        );
        metric(
            "switchyard_auth_failures_total",
            "counter",
            "Requests and sign-ins with a token that is not valid, seen by this process.",
            &[("", get(&self.auth_failures))],
        );
        metric(
            "switchyard_auth_throttled_total",
            "counter",
            "Requests and sign-ins refused by this process because their address sent too many wrong tokens.",
            &[("", get(&self.auth_throttled))],
        );
        metric(
            "switchyard_deliveries_pending",
            "gauge",
            "Deliveries waiting (queued in an ordered group or due), in flight or held (all processes).",
            &[("", queue.deliveries_pending.max(0) as u64)],
        );
        metric(
            "switchyard_dead_letters",
            "gauge",
            "Dead letters waiting for an operator (all processes).",
            &[("", queue.dead_letters.max(0) as u64)],
        );
        metric(
            "switchyard_delivery_groups_blocked",
            "gauge",
            "Ordered delivery groups held by a dead letter until it is redriven or discarded (all processes).",
            &[("", queue.groups_blocked.max(0) as u64)],
        );
        metric(
            "switchyard_replays_active",
            "gauge",
            "Replays starting or running (all processes).",
            &[("", queue.replays_active.max(0) as u64)],
        );
        metric(
            "switchyard_events_last_hour",
            "gauge",
            "Events accepted in the last hour (all processes).",
            &[("", queue.events_last_hour.max(0) as u64)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::default();
        Metrics::add(&metrics.delivered, 3);
        let text = metrics.render(&Overview {
            events_last_hour: 7,
            deliveries_pending: 2,
            dead_letters: 1,
            groups_blocked: 4,
            replays_active: 5,
        });
        assert!(text.contains("# TYPE switchyard_delivery_outcomes_total counter\n"));
        assert!(text.contains("switchyard_delivery_outcomes_total{outcome=\"delivered\"} 3\n"));
        assert!(text.contains("switchyard_deliveries_pending 2\n"));
        assert!(text.contains("switchyard_dead_letters 1\n"));
        assert!(text.contains("switchyard_delivery_groups_blocked 4\n"));
        assert!(text.contains("switchyard_replays_active 5\n"));
        assert!(text.ends_with("switchyard_events_last_hour 7\n"));
    }
}
