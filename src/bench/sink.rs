//! The built-in sink: an HTTP server on 127.0.0.1 that answers 200 (or 500 for a share of
//! requests), timestamps what arrives and counts distinct events and webhook ids; and
//! `--sink-only`, the same clients straight to it, to show what the machine manages alone.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::Rng;
use serde_json::{Value, json};

use super::report::{Report, percentile_ms};
use super::{BenchArgs, BenchError, now_ns};

/// What the sink saw.
#[derive(Default)]
pub(super) struct Sink {
    pub(super) requests: AtomicU64,
    /// Requests answered 500 on purpose (`--fail-share`).
    pub(super) refused: AtomicU64,
    /// Replayed copies (a replay running beside the load): counted apart, nothing else.
    pub(super) replayed: AtomicU64,
    pub(super) fail_share: f64,
    pub(super) seen: Mutex<SinkSeen>,
}

#[derive(Default)]
pub(super) struct SinkSeen {
    pub(super) event_ids: HashSet<String>,
    pub(super) webhook_ids: HashSet<String>,
    pub(super) e2e_us: Vec<u64>,
    pub(super) first: Option<Instant>,
    pub(super) last: Option<Instant>,
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
    if event.get("replay-name").is_some() {
        sink.replayed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
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

/// The built-in sink on 127.0.0.1: what it saw, its URL, its server task.
pub(super) async fn start(
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

/// What the harness's OTLP receiver took.
#[derive(Debug, Default)]
pub(super) struct OtlpSeen {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// `--otlp`: an OTLP/HTTP receiver on 127.0.0.1 that counts what it is sent and answers 200;
/// its base URL (the exporter adds `/v1/traces`).
pub(super) async fn otlp_receiver() -> Result<(Arc<OtlpSeen>, String), BenchError> {
    let seen = Arc::new(OtlpSeen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let counting = seen.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let counting = counting.clone();
            async move {
                counting.requests.fetch_add(1, Ordering::Relaxed);
                counting
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((seen, url))
}

/// `--sink-only`: the same clients post one event-sized webhook per request straight to the sink.
pub(super) async fn sink_only(
    args: &BenchArgs,
    duration: std::time::Duration,
) -> Result<Report, BenchError> {
    let (sink, url, server) = start(0.0).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let cpu_before = super::cpu_seconds("self");
    let started = Instant::now();
    let deadline = started + duration;
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
    let cpu_after = super::cpu_seconds("self");
    server.abort();
    let seen = sink.seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut e2e = seen.e2e_us.clone();
    e2e.sort_unstable();
    let delivered = seen.webhook_ids.len() as u64;
    Ok(Report {
        duration_s: elapsed,
        routers: 0,
        acked_per_router: Vec::new(),
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
        replayed: 0,
        lost: 0,
        duplicates: 0,
        router_peak_rss_mib: None,
        router_cpu_us_per_event: None,
        // Here per request: what the clients and the sink cost alone.
        bench_cpu_us_per_event: super::per_event(cpu_before, cpu_after, delivered),
        sink_only_requests_per_sec: None,
        acked_to_sink: None,
        delivered_to_sink: None,
        otlp_requests: 0,
        otlp_bytes: 0,
    })
}
