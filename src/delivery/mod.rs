//! The delivery engine: a pool of concurrent attempts per process that claims due deliveries
//! with a lease, sends each to its target, and records the outcome.
//!
//! The loop claims at most as many deliveries as it has free slots, in one statement that
//! commits before any HTTP call. It wakes on NOTIFY from ingest, at the next due time, and at the
//! poll interval; an idle process waits, it does not spin. Ingest in the same process skips the
//! claim for as many new deliveries as there are free slots: it reserves the slots, stores those
//! deliveries already leased to this process (same statement as the events) and hands them over
//! once committed ([`Engine::reserve`], [`Engine::hand_off`]); a crash before they are sent is
//! covered by the lease like any claim. Expired leases (a worker or process
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::store::deliveries::Claimed;
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

/// Deliveries this process holds the leases of, each with the worker slot it will run in.
pub type Leased = Vec<(Claimed, OwnedSemaphorePermit)>;

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
    /// One permit per attempt in flight (`workers` in all); closed when the engine stops.
    slots: Arc<Semaphore>,
    /// Deliveries that ingest stored leased to this process, each with its reserved slot.
    handoffs: mpsc::UnboundedSender<Leased>,
    handed: Mutex<Option<mpsc::UnboundedReceiver<Leased>>>,
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
        let (handoffs, handed) = mpsc::unbounded_channel();
        Ok(Engine {
            slots: Arc::new(Semaphore::new(config.workers)),
            handoffs,
            handed: Mutex::new(Some(handed)),
            pool,
            metrics,
            listen_pool,
            config,
            sender,
            owner: Uuid::now_v7(),
            limits: Mutex::new(HashMap::new()),
        })
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    /// Up to `n` free slots, taken now (none when the engine is off or stopping).
    pub fn reserve(&self, n: usize) -> Vec<OwnedSemaphorePermit> {
        std::iter::from_fn(|| self.slots.clone().try_acquire_owned().ok())
            .take(n)
            .collect()
    }

    /// Starts attempts for deliveries stored leased to this process, each in its reserved slot.
    /// If the engine has stopped they are dropped: their leases expire (or shutdown released
    /// them) and any process sends them.
    pub fn hand_off(&self, leased: Leased) {
        if !leased.is_empty() && self.handoffs.send(leased).is_err() {
            tracing::debug!("delivery engine stopped; leased deliveries wait for their lease");
        }
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
        let Some(mut handed) = self.handed.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            tracing::error!("the delivery engine runs once");
            return;
        };
        let slots = self.slots.clone();
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
            let free = self.reserve(usize::MAX);
            let mut claimed_all = false;
            if !free.is_empty() {
                let n = free.len();
                match self.claim(free, &mut tasks, &recorder).await {
                    Ok(claimed) => claimed_all = claimed == n,
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "claiming deliveries failed");
                    }
                }
            }
            if claimed_all {
                // More may be due right now; claim again once a slot frees.
                loop {
                    tokio::select! {
                        Some(leased) = handed.recv() => {
                            self.start_handed(leased, &mut tasks, &recorder).await;
                            continue;
                        }
                        _ = tasks.join_next() => {}
                        _ = shutdown.changed() => {}
                    }
                    break;
                }
                continue;
            }
            let mut wait = self.config.poll.min(rescue_every);
            if slots.available_permits() > 0
                && let Ok(Some(due)) = store::deliveries::next_due_in(&self.pool).await
            {
                wait = wait.min(due.max(Duration::from_millis(5)));
            }
            let mut listener_failed = false;
            let deadline = tokio::time::sleep(wait);
            tokio::pin!(deadline);
            loop {
                let notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // Handed-off deliveries start at once, without ending the wait.
                    Some(leased) = handed.recv() => {
                        self.start_handed(leased, &mut tasks, &recorder).await;
                        continue;
                    }
                    ok = notified => listener_failed = !ok,
                    _ = &mut deadline => {}
                    _ = shutdown.changed() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() && slots.available_permits() == 0 => {}
                }
                break;
            }
            if listener_failed {
                listener = None;
            }
        }
        // No new reservations; what was handed over but not started is released with the rest.
        self.slots.close();
        handed.close();
        while handed.try_recv().is_ok() {}
        self.drain(tasks, recorder, recording).await;
    }

    /// Claims a due delivery for each of the `free` slots it holds and starts them; how many
    /// were claimed (unused slots are given back).
    async fn claim(
        self: &Arc<Self>,
        mut free: Vec<OwnedSemaphorePermit>,
        tasks: &mut JoinSet<()>,
        recorder: &mpsc::Sender<dispatch::Finished>,
    ) -> Result<usize, StoreError> {
        let claimed = store::deliveries::claim_due(
            &self.pool,
            self.owner,
            free.len() as i64,
            self.config.lease,
        )
        .await?;
        free.truncate(claimed.len());
        let count = claimed.len();
        self.start(claimed.into_iter().zip(free).collect(), tasks, recorder)
            .await?;
        Ok(count)
    }

    /// Starts what ingest handed over; on failure the leases expire and any process retries.
    async fn start_handed(
        self: &Arc<Self>,
        leased: Leased,
        tasks: &mut JoinSet<()>,
        recorder: &mpsc::Sender<dispatch::Finished>,
    ) {
        let n = leased.len();
        if let Err(error) = self.start(leased, tasks, recorder).await {
            tracing::warn!(
                error = %error_chain(&error),
                deliveries = n,
                "starting handed-over deliveries failed; they are retried when their leases expire"
            );
        }
    }

    /// Starts an attempt for each delivery this process holds the lease of, in its slot. When
    /// the targets cannot be read, nothing starts: the deliveries wait for their leases to expire.
    async fn start(
        self: &Arc<Self>,
        leased: Leased,
        tasks: &mut JoinSet<()>,
        recorder: &mpsc::Sender<dispatch::Finished>,
    ) -> Result<(), StoreError> {
        if leased.is_empty() {
            return Ok(());
        }
        let mut refs: Vec<Uuid> = leased.iter().map(|(c, _)| c.target_ref).collect();
        refs.sort_unstable();
        refs.dedup();
        let targets: HashMap<Uuid, Arc<store::deliveries::TargetRuntime>> =
            store::deliveries::targets(&self.pool, &refs)
                .await?
                .into_iter()
                .map(|t| (t.id, Arc::new(t)))
                .collect();
        for (delivery, slot) in leased {
            let target = targets.get(&delivery.target_ref).cloned();
            let engine = self.clone();
            let recorder = recorder.clone();
            tasks.spawn(async move {
                engine.attempt(delivery, target, recorder).await;
                drop(slot);
            });
        }
        Ok(())
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
