//! `switchyard bench`: the whole router under load, as its users feel it.
//!
//! It starts a router (this same binary's `serve`, as a child process, on its own Postgres or
//! `DATABASE_URL`) or targets a running one, creates a fresh bus with `--rules` rules that each
//! send to a built-in sink, and posts events from `--concurrency` clients in batches of
//! `--batch`, open-loop at `--rate` events/s or as fast as they are acknowledged, for
//! `--duration`. Every event matches exactly one rule. The sink (an HTTP server in this process on
//! 127.0.0.1) answers 200, or 500 for a `--fail-share` of requests, and timestamps what arrives.
//! Before reporting, it waits until every acknowledged event has been delivered (or the drain
//! time is up) and counts what was lost and what arrived twice. Before the router starts, the
//! same clients post straight to the sink for `--sink-phase`, and the report gives the router's
//! figures as ratios to that (one machine, one run). `--routers N` starts N router processes on
//! the one database (a local cluster of the bench's own when there is no `DATABASE_URL`).
//!
//! Latencies come from sorted samples (no histogram crate: a run holds at most a few million).
//! End-to-end latency is measured from the moment the batch was due to be sent (open loop: the
//! schedule, so a slow router cannot hide its queueing) to the moment the sink received it.

mod load;
mod report;
mod router;
mod sink;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub use load::{order, order_schema};
pub use report::{Report, table};

use crate::config::DatabaseArgs;
use load::Loader;
use report::percentile_ms;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How long to post events (e.g. `15s`, `2m`).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Events per second, open loop; without it, as fast as they are acknowledged.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Concurrent clients (in flight requests).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Events per request.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Rules on the bus; each event matches exactly one of them.
    #[arg(long, default_value_t = 100)]
    pub rules: usize,
    /// Share of sink answers that are 500 (retried by the router), from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub fail_share: f64,
    /// How long to wait after the load for deliveries still under way.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Give every entry a unique `idempotency_key`, to measure the keyed write path.
    #[arg(long)]
    pub idempotency_keys: bool,
    /// Post the events as CloudEvents batches (`application/cloudevents-batch+json`) instead of
    /// EventBridge entries, to measure the CloudEvents ingest path.
    #[arg(long, conflicts_with = "idempotency_keys")]
    pub cloudevents: bool,
    /// Give every event an order-like detail (nested objects, an array, a uuid, a timestamp)
    /// with a schema registered for it, and set the bus's schema validation to this mode:
    /// `--schema off` and `--schema enforce` post the same events, to measure what validating
    /// costs.
    #[arg(long, value_parser = ["off", "warn", "enforce"])]
    pub schema: Option<String>,
    /// Export the router's spans over OTLP to a receiver in the harness (it counts requests and
    /// bytes), to measure what exporting costs.
    #[arg(long, conflicts_with = "router")]
    pub otlp: bool,
    /// Make every target ordered (`ordering.group_by`), with the events spread over this many
    /// groups, to measure ordered delivery against unordered.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ordered_groups: Option<u64>,
    /// After every acknowledged event has arrived, keep the sink listening this long to count
    /// deliveries that come again (those a killed router sent but could not record are sent
    /// again when their lease expires).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Use a running router at this URL (with --token) instead of starting one.
    #[arg(long, requires = "token")]
    pub router: Option<String>,
    /// The API token for --router.
    #[arg(long)]
    pub token: Option<String>,
    /// Delivery workers of the router this starts (default: the router's default).
    #[arg(long)]
    pub workers: Option<usize>,
    /// No router: the clients post event-sized webhooks straight to the sink, to show what the
    /// sink and this machine manage without the router in between.
    #[arg(long)]
    pub sink_only: bool,
    /// Before the router is started, the `--sink-only` phase for this long (`0s`: none); the
    /// report gives the router's figures as ratios to the sink's requests/s of this run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub sink_phase: Duration,
    /// Router processes to start on the one database; the clients spread their batches over
    /// them (each batch to the next).
    #[arg(long, default_value_t = 1, conflicts_with = "router", value_parser = clap::value_parser!(u64).range(1..=16))]
    pub routers: u64,
    /// Creates this file when the load starts (setup done), so a tool watching the database
    /// can take its measurements from there (`benches/postgres-cost.sh` does).
    #[arg(long)]
    pub load_started_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("a request to the router failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the sink cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// The wall clock in nanoseconds (events carry it to the sink).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// CPU time (user and system) a process has used so far, from /proc (`None` elsewhere).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, in parentheses): the state is the
    // first, utime the 12th and stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

/// CPU microseconds per event between two readings of CPU seconds.
fn per_event(before: Option<f64>, after: Option<f64>, events: u64) -> Option<f64> {
    Some((after? - before?) * 1e6 / events.max(1) as f64)
}

/// A setup request's answer: fine, or what went wrong `doing` it, with the router's words.
async fn succeeded(answer: reqwest::Response, doing: &str) -> Result<(), BenchError> {
    if answer.status().is_success() {
        return Ok(());
    }
    Err(BenchError::Setup(format!(
        "{doing}: {}",
        answer.text().await?
    )))
}

/// Runs the benchmark and returns its report.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    crate::delivery::client::install_crypto_provider();
    if !(0.0..=1.0).contains(&args.fail_share)
        || args.batch == 0
        || args.concurrency == 0
        || args.rules == 0
    {
        return Err(BenchError::Setup(
            "--fail-share must be within 0..=1, and --batch, --concurrency and --rules at least 1"
                .into(),
        ));
    }
    if args.sink_only {
        return sink::sink_only(&args, args.duration).await;
    }
    // The yardstick first, while nothing else runs: the same clients straight to the sink.
    let beside_sink = match args.sink_phase.is_zero() {
        true => None,
        false => Some(
            sink::sink_only(&args, args.sink_phase)
                .await?
                .deliveries_per_sec,
        ),
    };
    let otlp = match args.otlp {
        true => Some(sink::otlp_receiver().await?),
        false => None,
    };
    let routers = router::start_all(&args, otlp.as_ref().map(|(_, url)| url.as_str()))?;
    let router = &routers[0];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;

    let (sink, sink_url, server) = sink::start(args.fail_share).await?;

    // A fresh bus, so earlier runs' rules and events do not count.
    let bus = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let auth = format!("Bearer {}", router.token);
    // A setup request to one of the routers (the future owns its request: it can be spawned).
    let put = |base: &str, path: String, body: &Value| {
        client
            .put(format!("{base}{path}"))
            .header("authorization", &auth)
            .json(body)
            .send()
    };
    let mut settings = json!({"description": "switchyard bench"});
    if let Some(mode) = &args.schema {
        settings["schema_validation"] = mode.as_str().into();
    }
    let created = put(&router.base, format!("/v1/buses/{bus}"), &settings).await?;
    succeeded(created, "creating the bus").await?;
    if args.schema.is_some() {
        let registered = client
            .post(format!(
                "{}/v1/buses/{bus}/schemas/bench/bench/versions",
                router.base
            ))
            .header("authorization", &auth)
            .json(&json!({"schema": load::order_schema()}))
            .send()
            .await?;
        succeeded(registered, "registering the schema").await?;
    }
    // Rules are made by 16 requests at a time: each change rebuilds the bus's snapshot, and
    // changes that wait for one rebuild share the next (10,000 rules one by one would be
    // quadratic).
    let made = Arc::new(tokio::sync::Semaphore::new(16));
    let mut making = tokio::task::JoinSet::new();
    for i in 0..args.rules {
        let mut rule = json!({
            "event_pattern": {"source": ["bench"], "detail": {"kind": [i]}},
            "targets": [{"id": "sink", "url": sink_url, "retry_policy": {"maximum_retry_attempts": 185}}]
        });
        if args.ordered_groups.is_some() {
            rule["targets"][0]["ordering"] = json!({"group_by": "$.detail.group"});
        }
        let slot = made.clone().acquire_owned().await;
        let sent = put(
            &router.base,
            format!("/v1/buses/{bus}/rules/rule-{i}"),
            &rule,
        );
        making.spawn(async move {
            let _slot = slot;
            succeeded(sent.await?, &format!("creating rule {i}")).await
        });
    }
    while let Some(done) = making.join_next().await {
        done.map_err(|e| BenchError::Setup(format!("creating a rule: {e}")))??;
    }

    // The other routers learn of the rules by NOTIFY, a moment later; saving the bus through
    // each of them rebuilds its snapshot before it answers, so no event meets an older one.
    for other in &routers[1..] {
        let saved = put(&other.base, format!("/v1/buses/{bus}"), &settings).await?;
        succeeded(saved, "refreshing a router's rules").await?;
    }

    let loader = Arc::new(Loader {
        client: client.clone(),
        auth: auth.clone(),
        events_urls: routers
            .iter()
            .map(|r| format!("{}/v1/buses/{bus}/events", r.base))
            .collect(),
        batch: args.batch,
        rules: args.rules as u64,
        keyed: args.idempotency_keys,
        cloudevents: args.cloudevents,
        orders: args.schema.is_some(),
        groups: args.ordered_groups,
        seq: AtomicU64::new(0),
        turn: AtomicU64::new(0),
        failed_entries: AtomicU64::new(0),
        failed_requests: AtomicU64::new(0),
        tally: Mutex::default(),
    });

    // CPU from here to the end of the drain: every router's, and this process's.
    let routers_cpu =
        || -> Option<f64> { routers.iter().map(router::RouterProcess::cpu_seconds).sum() };
    if let Some(file) = &args.load_started_file {
        std::fs::write(file, b"")?;
    }
    let cpu_before = (routers_cpu(), cpu_seconds("self"));
    let started = Instant::now();
    loader.clone().drive(&args, started).await;
    let load_time = started.elapsed();

    // Drain: every acknowledged event must arrive.
    let expected = loader.tally().acked_ids.len() as u64;
    let drain_end = Instant::now() + args.drain;
    loop {
        let seen = sink
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_ids
            .len() as u64;
        if seen >= expected || Instant::now() > drain_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu_after = (routers_cpu(), cpu_seconds("self"));
    tokio::time::sleep(args.settle).await;
    let peak = routers
        .iter()
        .filter_map(router::RouterProcess::peak_rss_mib)
        .reduce(f64::max);
    server.abort();

    let mut tally = std::mem::take(&mut *loader.tally());
    let mut ingest = std::mem::take(&mut tally.ingest_us);
    ingest.sort_unstable();
    let seen = sink.seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut e2e = seen.e2e_us.clone();
    e2e.sort_unstable();
    let ids = &tally.acked_ids;
    let lost = ids
        .iter()
        .filter(|id| !seen.event_ids.contains(*id))
        .count() as u64;
    let requests = sink.requests.load(Ordering::Relaxed);
    let delivered = seen.webhook_ids.len() as u64;
    // A request answered 200 for a webhook-id that already had one is a duplicate (replayed
    // copies are counted apart).
    let replayed = sink.replayed.load(Ordering::Relaxed);
    let answered = requests
        .saturating_sub(sink.refused.load(Ordering::Relaxed))
        .saturating_sub(replayed);
    let duplicates = answered.saturating_sub(delivered);
    let delivery_window = match (seen.first, seen.last) {
        (Some(first), Some(last)) if last > first => (last - started).as_secs_f64(),
        _ => load_time.as_secs_f64(),
    };
    let acked_events_per_sec = expected as f64 / load_time.as_secs_f64();
    let deliveries_per_sec = delivered as f64 / delivery_window;
    Ok(Report {
        duration_s: load_time.as_secs_f64(),
        routers: routers.len(),
        acked_per_router: std::mem::take(&mut tally.acked_per_router),
        rules: args.rules,
        batch: args.batch,
        concurrency: args.concurrency,
        rate: args.rate,
        acked_events: expected,
        acked_events_per_sec,
        failed_entries: loader.failed_entries.load(Ordering::Relaxed),
        failed_requests: loader.failed_requests.load(Ordering::Relaxed),
        ingest_p50_ms: percentile_ms(&ingest, 50.0),
        ingest_p99_ms: percentile_ms(&ingest, 99.0),
        ingest_p999_ms: percentile_ms(&ingest, 99.9),
        delivered,
        deliveries_per_sec,
        e2e_p50_ms: percentile_ms(&e2e, 50.0),
        e2e_p99_ms: percentile_ms(&e2e, 99.0),
        e2e_p999_ms: percentile_ms(&e2e, 99.9),
        sink_requests: requests,
        replayed,
        lost,
        duplicates,
        router_peak_rss_mib: peak,
        router_cpu_us_per_event: per_event(cpu_before.0, cpu_after.0, expected),
        bench_cpu_us_per_event: per_event(cpu_before.1, cpu_after.1, expected),
        sink_only_requests_per_sec: beside_sink,
        acked_to_sink: beside_sink.map(|sink| acked_events_per_sec / sink),
        delivered_to_sink: beside_sink.map(|sink| deliveries_per_sec / sink),
        otlp_requests: otlp
            .as_ref()
            .map_or(0, |(seen, _)| seen.requests.load(Ordering::Relaxed)),
        otlp_bytes: otlp
            .as_ref()
            .map_or(0, |(seen, _)| seen.bytes.load(Ordering::Relaxed)),
    })
}
