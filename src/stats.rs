//! Keeps the overview's per-minute counts (and the schema catalog's violations): every `interval` the process's counts since the last
//! time are added to `stats_minutes` in one statement (`store::stats::add`); a write that fails
//! keeps them for the next round. Once an hour, minutes past two days are removed. On shutdown
//! the last counts are written; a crash loses at most one interval of chart counts (never an
//! event: these are only the charts' tallies).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store;
use crate::telemetry::error_chain;

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub async fn run(
    pool: PgPool,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pruned_at: Option<Instant> = None;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        let taken = metrics.take_minutes();
        if let Err(error) = store::stats::add(&pool, &taken).await {
            tracing::warn!(error = %error_chain(&error), "writing the overview's counts failed; they are kept for the next round");
            metrics.restore_minutes(taken);
        }
        let violations = metrics.take_schema_minutes();
        if let Err(error) = store::stats::add_schema(&pool, &violations).await {
            tracing::warn!(error = %error_chain(&error), "writing the schema violation counts failed; they are kept for the next round");
            metrics.restore_schema_minutes(violations);
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            if let Err(error) = store::stats::prune(&pool).await {
                tracing::warn!(error = %error_chain(&error), "pruning old overview counts failed");
            }
        }
        if stopping {
            return;
        }
    }
}
