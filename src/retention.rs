//! The retention task: every `interval`, removes history older than the retention period in
//! batches until none is left (see `store::retention::prune` for what is kept), so the tables
//! stay the size of the retention window instead of growing with every event ever received.
//! Every process runs it; an advisory lock lets one prune at a time. After each batch it pauses as
//! long as the batch took, so a backlog (retention just shortened, or first enabled) is worked
//! off with at most half of one core while live traffic goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store;
use crate::telemetry::error_chain;

/// Events removed per statement: large enough to amortise a round trip, small enough that a
/// batch is a short transaction next to live traffic.
const BATCH: i64 = 2_000;

pub async fn run(
    pool: PgPool,
    retention: Duration,
    interval: Duration,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(
        retention_hours = retention.as_secs() / 3600,
        "pruning history past retention"
    );
    while !*shutdown.borrow() {
        let mut round = store::retention::Pruned::default();
        loop {
            let started = Instant::now();
            match store::retention::prune(&pool, retention, BATCH).await {
                Ok(Some(batch)) => {
                    metrics.events_pruned.inc_by(batch.events.max(0) as u64);
                    round.events += batch.events;
                    round.deliveries += batch.deliveries;
                    round.attempts += batch.attempts;
                    round.keys += batch.keys;
                    round.archived += batch.archived;
                    if (batch.events < BATCH && batch.keys < BATCH && batch.archived < BATCH)
                        || *shutdown.borrow()
                    {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(started.elapsed()) => {}
                        _ = shutdown.changed() => break,
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "pruning old history failed");
                    break;
                }
            }
        }
        if round.events > 0 || round.keys > 0 || round.archived > 0 {
            tracing::info!(
                events = round.events,
                deliveries = round.deliveries,
                attempts = round.attempts,
                idempotency_keys = round.keys,
                archive_members = round.archived,
                "pruned history past retention"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
