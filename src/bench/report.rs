//! The report: figures from sorted samples (no histogram crate: a run holds at most a few
//! million), as JSON or as a table.

use serde::Serialize;

/// The report; these key names are read by other tools.
#[derive(Debug, Serialize)]
pub struct Report {
    pub duration_s: f64,
    /// Router processes the clients posted to, and the events each acknowledged.
    pub routers: usize,
    pub acked_per_router: Vec<u64>,
    pub rules: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub rate: Option<u64>,
    pub acked_events: u64,
    pub acked_events_per_sec: f64,
    pub failed_entries: u64,
    pub failed_requests: u64,
    pub ingest_p50_ms: f64,
    pub ingest_p99_ms: f64,
    pub ingest_p999_ms: f64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub e2e_p999_ms: f64,
    pub sink_requests: u64,
    /// Replayed copies (events with `replay-name`) that arrived; not part of the figures above.
    pub replayed: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// The highest peak resident memory of the routers this started.
    pub router_peak_rss_mib: Option<f64>,
    /// CPU time per acknowledged event from the load's start to the end of the drain (every
    /// delivery of the run included): the routers this started, all together, and this
    /// process (the clients and the sink). Linux only (from /proc).
    pub router_cpu_us_per_event: Option<f64>,
    pub bench_cpu_us_per_event: Option<f64>,
    /// The sink's requests/s with the same clients posting straight to it (`--sink-phase`, run
    /// first), and the router's acknowledged events/s and deliveries/s as ratios to it.
    pub sink_only_requests_per_sec: Option<f64>,
    pub acked_to_sink: Option<f64>,
    pub delivered_to_sink: Option<f64>,
    /// With `--otlp`: the export requests the harness's OTLP receiver took, and their bytes.
    pub otlp_requests: u64,
    pub otlp_bytes: u64,
}

/// The `p`-th percentile (nearest rank) of samples in microseconds, in milliseconds.
pub(super) fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    // Nearest rank; the small epsilon keeps 99.9 % of 1,000 at rank 999 despite binary fractions.
    let rank = (p / 100.0 * sorted_us.len() as f64 - 1e-9).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let otlp = if r.otlp_requests > 0 {
        format!(
            "spans exported   {} OTLP requests, {:.1} MiB\n",
            r.otlp_requests,
            r.otlp_bytes as f64 / 1_048_576.0
        )
    } else {
        String::new()
    };
    let rate = r.rate.map_or("as fast as acknowledged".to_owned(), |r| {
        format!("{r} events/s")
    });
    let rss = r
        .router_peak_rss_mib
        .map_or("n/a (external router)".to_owned(), |m| {
            format!("{m:.0} MiB")
        });
    let beside_sink = match (
        r.sink_only_requests_per_sec,
        r.acked_to_sink,
        r.delivered_to_sink,
    ) {
        (Some(sink), Some(acked), Some(delivered)) => format!(
            "beside the sink  {sink:.0} requests/s alone: acknowledged {acked:.2}×, delivered {delivered:.2}×\n"
        ),
        _ => String::new(),
    };
    let cpu = match (r.router_cpu_us_per_event, r.bench_cpu_us_per_event) {
        (Some(router), Some(bench)) => {
            format!("CPU per event    router {router:.1} µs, clients and sink {bench:.1} µs\n")
        }
        _ => String::new(),
    };
    let routers = match r.routers {
        0 | 1 => String::new(),
        n => format!("{n} routers, "),
    };
    format!(
        "load: {:.1} s, {routers}{} rules, batches of {}, {} clients, {rate}\n\
         acknowledged     {:>10} events  {:>10.0} events/s   ({} entries, {} requests failed)\n\
         ingest latency   p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms\n\
         delivered        {:>10}         {:>10.0} deliveries/s ({} sink requests)\n\
         end to end       p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms\n\
         lost {}, duplicates {}, router peak memory {rss}\n{cpu}{beside_sink}{otlp}",
        r.duration_s,
        r.rules,
        r.batch,
        r.concurrency,
        r.acked_events,
        r.acked_events_per_sec,
        r.failed_entries,
        r.failed_requests,
        r.ingest_p50_ms,
        r.ingest_p99_ms,
        r.ingest_p999_ms,
        r.delivered,
        r.deliveries_per_sec,
        r.sink_requests,
        r.e2e_p50_ms,
        r.e2e_p99_ms,
        r.e2e_p999_ms,
        r.lost,
        r.duplicates,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&samples, 50.0), 500.0);
        assert_eq!(percentile_ms(&samples, 99.0), 990.0);
        assert_eq!(percentile_ms(&samples, 99.9), 999.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
        assert_eq!(percentile_ms(&[7000], 50.0), 7.0);
    }
}
