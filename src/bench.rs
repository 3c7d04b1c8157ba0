//! `switchyard bench`: the whole router under load, as its users feel it.
//!
//! It starts a router (this same binary's `serve`, as a child process, on its own Postgres or
//! `DATABASE_URL`) or targets a running one, creates a fresh bus with `--rules` rules that each
//! send to a built-in sink, and posts events from `--concurrency` clients in batches of
//! `--batch`, open-loop at `--rate` events/s or as fast as they are acknowledged, for
//! `--duration`. Every event matches exactly one rule. The sink (an HTTP server in this process on
//! 127.0.0.1) answers 200, or 500 for a `--fail-share` of requests, and timestamps what arrives.
//! Before reporting, it waits until every acknowledged event has been delivered (or the drain
//! time is up) and counts what was lost and what arrived twice.
//!
//! Latencies come from sorted samples (no histogram crate: a run holds at most a few million).
//! End-to-end latency is measured from the moment the batch was due to be sent (open loop: the
//! schedule, so a slow router cannot hide its queueing) to the moment the sink received it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::DatabaseArgs;

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

/// The report; these key names are read by other tools.
#[derive(Debug, Serialize)]
pub struct Report {
    pub duration_s: f64,
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
    pub lost: u64,
    pub duplicates: u64,
    pub router_peak_rss_mib: Option<f64>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What the sink saw.
#[derive(Default)]
struct Sink {
    requests: AtomicU64,
    /// Requests answered 500 on purpose (`--fail-share`).
    refused: AtomicU64,
    fail_share: f64,
    seen: Mutex<SinkSeen>,
}

#[derive(Default)]
struct SinkSeen {
    event_ids: HashSet<String>,
    webhook_ids: HashSet<String>,
    e2e_us: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    sink.requests.fetch_add(1, Ordering::Relaxed);
    if sink.fail_share > 0.0 && rand::rng().random_bool(sink.fail_share.min(1.0)) {
        sink.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let arrived = now_ns();
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let sent = event["detail"]["sent_ns"].as_u64().unwrap_or(arrived);
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut seen = sink.seen.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    seen.first.get_or_insert(now);
    seen.last = Some(now);
    if seen.webhook_ids.insert(webhook_id) {
        seen.e2e_us.push(arrived.saturating_sub(sent) / 1000);
    }
    if let Some(id) = event["id"].as_str() {
        seen.event_ids.insert(id.to_owned());
    }
    StatusCode::OK
}

/// The router under test: a child process of ours, or one already running.
struct RouterProcess {
    base: String,
    token: String,
    child: Option<Child>,
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn start_router(args: &BenchArgs) -> Result<RouterProcess, BenchError> {
    if let (Some(base), Some(token)) = (&args.router, &args.token) {
        return Ok(RouterProcess {
            base: base.trim_end_matches('/').to_owned(),
            token: token.clone(),
            child: None,
        });
    }
    let token = crate::auth::generate_token();
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log", "warn,switchyard::app=info"])
        .env("SWITCHYARD_ADMIN_TOKEN", &token)
        .env("SWITCHYARD_TARGET_ALLOW_CIDRS", "127.0.0.0/8")
        .env("SWITCHYARD_DATA_DIR", &args.database.data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match &args.database.database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    if let Some(workers) = args.workers {
        command.env("SWITCHYARD_WORKERS", workers.to_string());
    }
    let mut child = command.spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| BenchError::Setup("no stderr from the router".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["message"] == "listening"
            {
                let _ = tx.send(Ok(log["addr"].as_str().unwrap_or_default().to_owned()));
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        let _ = tx.send(Err(tail.join("\n")));
    });
    let mut router = RouterProcess {
        base: String::new(),
        token,
        child: Some(child),
    };
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(addr)) => {
            router.base = format!("http://{addr}");
            Ok(router)
        }
        Ok(Err(tail)) => Err(BenchError::Setup(format!("the router exited:\n{tail}"))),
        Err(_) => Err(BenchError::Setup(
            "the router did not start within 2 minutes".into(),
        )),
    }
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    // Nearest rank; the small epsilon keeps 99.9 % of 1,000 at rank 999 despite binary fractions.
    let rank = (p / 100.0 * sorted_us.len() as f64 - 1e-9).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
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
        return sink_only(&args).await;
    }
    let router = start_router(&args)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;

    let (sink, sink_url, server) = start_sink(args.fail_share).await?;

    // A fresh bus, so earlier runs' rules and events do not count.
    let bus = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let auth = format!("Bearer {}", router.token);
    let put = |path: String, body: Value| {
        client
            .put(format!("{}{path}", router.base))
            .header("authorization", &auth)
            .json(&body)
            .send()
    };
    let created = put(
        format!("/v1/buses/{bus}"),
        json!({"description": "switchyard bench"}),
    )
    .await?;
    if !created.status().is_success() {
        return Err(BenchError::Setup(format!(
            "creating the bus: {}",
            created.text().await?
        )));
    }
    for i in 0..args.rules {
        let rule = json!({
            "event_pattern": {"source": ["bench"], "detail": {"kind": [i]}},
            "targets": [{"id": "sink", "url": sink_url, "retry_policy": {"maximum_retry_attempts": 185}}]
        });
        let answer = put(format!("/v1/buses/{bus}/rules/rule-{i}"), rule).await?;
        if !answer.status().is_success() {
            return Err(BenchError::Setup(format!(
                "creating rule {i}: {}",
                answer.text().await?
            )));
        }
    }

    let loader = Arc::new(Loader {
        client: client.clone(),
        auth: auth.clone(),
        events_url: format!("{}/v1/buses/{bus}/events", router.base),
        batch: args.batch,
        rules: args.rules as u64,
        seq: AtomicU64::new(0),
        failed_entries: AtomicU64::new(0),
        failed_requests: AtomicU64::new(0),
        tally: Mutex::default(),
    });

    let started = Instant::now();
    let deadline = started + args.duration;
    match args.rate {
        Some(rate) => {
            // Open loop: batches are due on a fixed schedule whatever the router does.
            let interval = Duration::from_secs_f64(args.batch as f64 / rate.max(1) as f64);
            let slots = Arc::new(Semaphore::new(args.concurrency));
            let mut tasks = tokio::task::JoinSet::new();
            let mut due = started;
            while due < deadline {
                tokio::time::sleep_until(due.into()).await;
                let due_ns = now_ns();
                let send = loader.clone().send_batch(due, due_ns);
                let slots = slots.clone();
                tasks.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    send.await;
                });
                due += interval;
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
        None => {
            let mut clients = tokio::task::JoinSet::new();
            for _ in 0..args.concurrency {
                let loader = loader.clone();
                clients.spawn(async move {
                    while Instant::now() < deadline {
                        loader.clone().send_batch(Instant::now(), now_ns()).await;
                    }
                });
            }
            while clients.join_next().await.is_some() {}
        }
    }
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
    let peak = router.child.as_ref().and_then(|c| peak_rss_mib(c.id()));
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
    // A request answered 200 for a webhook-id that already had one is a duplicate.
    let answered = requests.saturating_sub(sink.refused.load(Ordering::Relaxed));
    let duplicates = answered.saturating_sub(delivered);
    let delivery_window = match (seen.first, seen.last) {
        (Some(first), Some(last)) if last > first => (last - started).as_secs_f64(),
        _ => load_time.as_secs_f64(),
    };
    Ok(Report {
        duration_s: load_time.as_secs_f64(),
        rules: args.rules,
        batch: args.batch,
        concurrency: args.concurrency,
        rate: args.rate,
        acked_events: expected,
        acked_events_per_sec: expected as f64 / load_time.as_secs_f64(),
        failed_entries: loader.failed_entries.load(Ordering::Relaxed),
        failed_requests: loader.failed_requests.load(Ordering::Relaxed),
        ingest_p50_ms: percentile_ms(&ingest, 50.0),
        ingest_p99_ms: percentile_ms(&ingest, 99.0),
        ingest_p999_ms: percentile_ms(&ingest, 99.9),
        delivered,
        deliveries_per_sec: delivered as f64 / delivery_window,
        e2e_p50_ms: percentile_ms(&e2e, 50.0),
        e2e_p99_ms: percentile_ms(&e2e, 99.0),
        e2e_p999_ms: percentile_ms(&e2e, 99.9),
        sink_requests: requests,
        lost,
        duplicates,
        router_peak_rss_mib: peak,
    })
}

/// The clients' side: what they send and what the router answered.
struct Loader {
    client: reqwest::Client,
    auth: String,
    events_url: String,
    batch: usize,
    rules: u64,
    seq: AtomicU64,
    failed_entries: AtomicU64,
    failed_requests: AtomicU64,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    /// Every acknowledged event id (their count is the number acknowledged).
    acked_ids: Vec<String>,
    ingest_us: Vec<u64>,
}

impl Loader {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts one batch due at `due` (`due_ns` on the wall clock, carried in each event).
    async fn send_batch(self: Arc<Self>, due: Instant, due_ns: u64) {
        let entries: Vec<Value> = (0..self.batch)
            .map(|_| {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                json!({"source": "bench", "detail-type": "bench", "detail": {"kind": n % self.rules, "seq": n, "sent_ns": due_ns}})
            })
            .collect();
        let sent = self
            .client
            .post(&self.events_url)
            .header("authorization", &self.auth)
            .json(&json!({"entries": entries}))
            .send()
            .await;
        let body = match sent {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(body) = body else {
            self.failed_requests.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let latency = due.elapsed().as_micros() as u64;
        let mut ids = Vec::with_capacity(self.batch);
        for entry in body["entries"].as_array().into_iter().flatten() {
            match entry["event_id"].as_str() {
                Some(id) => ids.push(id.to_owned()),
                None => {
                    self.failed_entries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let mut tally = self.tally();
        tally.ingest_us.push(latency);
        tally.acked_ids.extend(ids);
    }
}

/// The built-in sink on 127.0.0.1: what it saw, its URL, its server task.
async fn start_sink(
    fail_share: f64,
) -> Result<(Arc<Sink>, String, tokio::task::JoinHandle<()>), BenchError> {
    let sink = Arc::new(Sink {
        fail_share,
        ..Sink::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(sink.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((sink, url, server))
}

/// `--sink-only`: the same clients post one event-sized webhook per request straight to the sink.
async fn sink_only(args: &BenchArgs) -> Result<Report, BenchError> {
    let (sink, url, server) = start_sink(0.0).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url) = (client.clone(), url.clone());
        clients.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let event = json!({"version": "0", "id": uuid::Uuid::now_v7(), "detail-type": "bench",
                    "source": "bench", "account": "000000000000", "time": "2026-01-01T00:00:00Z",
                    "region": "local", "resources": [], "detail": {"kind": n % 100, "seq": n, "sent_ns": now_ns()}});
                let _ = client
                    .post(&url)
                    .header("webhook-id", uuid::Uuid::now_v7().to_string())
                    .json(&event)
                    .send()
                    .await;
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    server.abort();
    let seen = sink.seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut e2e = seen.e2e_us.clone();
    e2e.sort_unstable();
    let delivered = seen.webhook_ids.len() as u64;
    Ok(Report {
        duration_s: elapsed,
        rules: 0,
        batch: 1,
        concurrency: args.concurrency,
        rate: None,
        acked_events: 0,
        acked_events_per_sec: 0.0,
        failed_entries: 0,
        failed_requests: 0,
        ingest_p50_ms: 0.0,
        ingest_p99_ms: 0.0,
        ingest_p999_ms: 0.0,
        delivered,
        deliveries_per_sec: delivered as f64 / elapsed,
        e2e_p50_ms: percentile_ms(&e2e, 50.0),
        e2e_p99_ms: percentile_ms(&e2e, 99.0),
        e2e_p999_ms: percentile_ms(&e2e, 99.9),
        sink_requests: sink.requests.load(Ordering::Relaxed),
        lost: 0,
        duplicates: 0,
        router_peak_rss_mib: None,
    })
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let rate = r.rate.map_or("as fast as acknowledged".to_owned(), |r| {
        format!("{r} events/s")
    });
    let rss = r
        .router_peak_rss_mib
        .map_or("n/a (external router)".to_owned(), |m| {
            format!("{m:.0} MiB")
        });
    format!(
        "load: {:.1} s, {} rules, batches of {}, {} clients, {rate}\n\
         acknowledged     {:>10} events  {:>10.0} events/s   ({} entries, {} requests failed)\n\
         ingest latency   p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms\n\
         delivered        {:>10}         {:>10.0} deliveries/s ({} sink requests)\n\
         end to end       p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms\n\
         lost {}, duplicates {}, router peak memory {rss}\n",
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
