//! The delivery engine: a pool of concurrent attempts per process that claims due deliveries
//! with a lease, sends each to its target, and records the outcome.
//!
//! The loop claims at most as many deliveries as it has free slots, in one statement that
//! commits before any HTTP call. It wakes on NOTIFY from ingest, at the next due time, and at the
//! poll interval; an idle process waits, it does not spin. Expired leases (a worker or process
//! that died) are returned to the queue by every process's rescuer. On shutdown it stops claiming,
//! lets attempts in flight finish until the grace period ends, and releases the rest.

pub mod client;
mod dispatch;
pub mod policy;
pub mod signing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::store::{self, StoreError};
use crate::telemetry::error_chain;
use client::{AddressGuard, SendError, Sender};
use policy::Backoff;

/// Settings of the delivery engine.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts in flight at once in this process.
    pub workers: usize,
    /// How long a claim is valid; a delivery whose worker died is retried after it.
    pub lease: Duration,
    /// The longest wait between looks at the queue when nothing announces work.
    pub poll: Duration,
    pub backoff: Backoff,
    /// Non-public address ranges targets may still reach (e.g. `127.0.0.0/8` in tests).
    pub allow_cidrs: Vec<IpNet>,
    /// How long shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
}

pub struct Engine {
    pool: PgPool,
    metrics: Arc<crate::metrics::Metrics>,
    /// Connections for LISTEN only.
    listen_pool: PgPool,
    config: DeliveryConfig,
    sender: Sender,
    /// This process's lease owner id.
    owner: Uuid,
    /// Per-target limits of deliveries in flight.
    limits: Mutex<HashMap<Uuid, (u32, Arc<Semaphore>)>>,
}

impl Engine {
    pub fn new(
        pool: PgPool,
        listen_pool: PgPool,
        config: DeliveryConfig,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Engine, SendError> {
        let user_agent = format!("Switchyard/{} (webhooks)", env!("CARGO_PKG_VERSION"));
        let sender = Sender::new(AddressGuard::new(config.allow_cidrs.clone()), &user_agent)?;
        Ok(Engine {
            pool,
            metrics,
            listen_pool,
            config,
            sender,
            owner: Uuid::now_v7(),
            limits: Mutex::new(HashMap::new()),
        })
    }

    fn limit_for(&self, target: Uuid, max: u32) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        let entry = limits
            .entry(target)
            .or_insert_with(|| (max, Arc::new(Semaphore::new(max as usize))));
        if entry.0 != max {
            *entry = (max, Arc::new(Semaphore::new(max as usize)));
        }
        entry.1.clone()
    }

    /// Runs until `shutdown` turns true, then drains.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.config.workers == 0 {
            tracing::info!("delivery engine off (SWITCHYARD_WORKERS=0)");
            return;
        }
        let slots = Arc::new(Semaphore::new(self.config.workers));
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Attempts hand their outcomes to one recorder that writes them in batches.
        let (recorder, finished) = mpsc::channel(self.config.workers * 2);
        let recording = tokio::spawn(self.clone().record(finished));
        let mut listener: Option<PgListener> = None;
        let rescue_every =
            (self.config.lease / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut last_rescue = Instant::now() - rescue_every;
        tracing::info!(owner = %self.owner, workers = self.config.workers, "delivery engine started");
        while !*shutdown.borrow() {
            while tasks.try_join_next().is_some() {}
            if listener.is_none() {
                listener =
                    store::notify::listen(&self.listen_pool, store::notify::DELIVERIES_DUE).await;
            }
            if last_rescue.elapsed() >= rescue_every {
                last_rescue = Instant::now();
                match store::deliveries::rescue_expired(&self.pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        deliveries = n,
                        "returned deliveries with expired leases to the queue"
                    ),
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "rescuing expired leases failed")
                    }
                }
            }
            let free = slots.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                match self.claim(free, &slots, &mut tasks, &recorder).await {
                    Ok(n) => claimed_all = n == free,
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "claiming deliveries failed");
                    }
                }
            }
            if claimed_all {
                // More may be due right now; claim again once a slot frees.
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut wait = self.config.poll.min(rescue_every);
            if slots.available_permits() > 0
                && let Ok(Some(due)) = store::deliveries::next_due_in(&self.pool).await
            {
                wait = wait.min(due.max(Duration::from_millis(5)));
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let mut listener_failed = false;
            tokio::select! {
                ok = notified => listener_failed = !ok,
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() && slots.available_permits() == 0 => {}
            }
            if listener_failed {
                listener = None;
            }
        }
        self.drain(tasks, recorder, recording).await;
    }

    /// Claims up to `free` deliveries and starts an attempt for each; how many were claimed.
    async fn claim(
        self: &Arc<Self>,
        free: usize,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        recorder: &mpsc::Sender<dispatch::Finished>,
    ) -> Result<usize, StoreError> {
        let claimed =
            store::deliveries::claim_due(&self.pool, self.owner, free as i64, self.config.lease)
                .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut refs: Vec<Uuid> = claimed.iter().map(|c| c.target_ref).collect();
        refs.sort_unstable();
        refs.dedup();
        let targets: HashMap<Uuid, Arc<store::deliveries::TargetRuntime>> =
            store::deliveries::targets(&self.pool, &refs)
                .await?
                .into_iter()
                .map(|t| (t.id, Arc::new(t)))
                .collect();
        let count = claimed.len();
        for delivery in claimed {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let target = targets.get(&delivery.target_ref).cloned();
            let engine = self.clone();
            let recorder = recorder.clone();
            tasks.spawn(async move {
                engine.attempt(delivery, target, recorder).await;
                drop(slot);
            });
        }
        Ok(count)
    }

    async fn drain(
        &self,
        mut tasks: JoinSet<()>,
        recorder: mpsc::Sender<dispatch::Finished>,
        recording: tokio::task::JoinHandle<()>,
    ) {
        let in_flight = tasks.len();
        tracing::info!(in_flight, "delivery engine stopping");
        let finished = tokio::time::timeout(self.config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Every outcome reached the recorder; let it write them before releasing the rest.
        drop(recorder);
        let _ = recording.await;
        match store::deliveries::release(&self.pool, self.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "released unfinished deliveries"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "releasing deliveries failed; their leases will expire")
            }
        }
        tracing::info!("delivery engine stopped");
    }
}
