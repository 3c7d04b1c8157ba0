//! The delivery engine: a pool of concurrent attempts per process that claims due deliveries
//! with a lease, sends each to its target, and records the outcome.
//!
//! - [`worker`]: the loop — claims at most as many deliveries as it has free slots, in one
//!   statement that commits before any HTTP call; wakes on NOTIFY, at the next due time and at
//!   the poll interval; on shutdown lets attempts finish for the grace period and releases the
//!   rest. Every process's loop also returns expired leases (a worker or process that died).
//! - [`attempt`]: one attempt as typed steps, prepare → send → decide.
//! - [`policy`]: pure decisions (what a status or a send error means, backoff, budget).
//! - [`recorder`]: outcomes written in batches, each transition guarded by the lease.
//! - [`outcome`]: the state machine's values, which `store::deliveries` takes and returns.
//! - [`client`], [`signing`]: the HTTP client with its SSRF guard; Standard Webhooks headers.
//!
//! Ingest meets the engine at one seam, a [`Grant`]: before its statement it asks for free slots,
//! hands that many new deliveries to this process, and after the commit hands the grant back
//! with them ([`Engine::hand_over`]), so they start without a claim. Under this process's
//! hand-over lease ([`handover`]) they get no row until their outcome; without it (before the
//! lease is registered) they are stored leased, in flight. A crash in between is covered by
//! the lease like any claim.

mod attempt;
mod auth;
pub mod client;
mod format;
mod handover;
mod outcome;
pub mod policy;
mod recorder;
pub mod signing;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

pub use outcome::{AttemptRecord, Claim, DeadReason, Outcome, TargetRuntime, Transition};

use crate::domain::TargetRef;
use crate::store;
use crate::store::events::{LeasedTo, NewDelivery, NewEvent};
use crate::telemetry::error_chain;
use client::{AddressGuard, SendError, Sender};
use policy::Backoff;
use recorder::Finished;

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

/// Claims this process holds the leases of, each with the worker slot it will run in, and the
/// count of target changes the statement that gave them saw (for the worker's cache of targets).
struct Slotted {
    targets_version: i64,
    claims: Vec<(Claim, OwnedSemaphorePermit)>,
}

/// The waits before each try of a store call whose failure would leave deliveries to their
/// leases (minutes): a database that is briefly out of connections should not cost that.
const STORE_TRIES_MS: [u64; 4] = [0, 100, 400, 1600];

/// Runs `call` until it succeeds or [`STORE_TRIES_MS`] is spent; the last error otherwise.
async fn with_tries<T, E, F>(what: &str, mut call: impl FnMut() -> F) -> Result<T, E>
where
    E: std::error::Error + 'static,
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut last = None;
    for wait_ms in STORE_TRIES_MS {
        // Even a zero sleep waits for the timer's next tick (a millisecond): the first try
        // goes at once.
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "{what} failed; trying again");
                last = Some(error);
            }
        }
    }
    match last {
        Some(error) => Err(error),
        None => call().await,
    }
}

/// Asks every few seconds, until it is so, whether Postgres has statistics of the hot tables,
/// and gives it their first once they have grown ([`store::deliveries::first_statistics`]). On a
/// database in use the first look finds them and the task ends.
async fn first_statistics(pool: PgPool) {
    /// Rows written before the first statistics: a primary-key lookup per outcome is then
    /// plainly cheaper than reading the table, and stays so as it grows.
    const MIN_CHANGES: i64 = 5_000;
    loop {
        match store::deliveries::first_statistics(&pool, MIN_CHANGES).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "reading the tables' statistics failed")
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The deliveries a grant of `n` slots covers: the first `n` leasable ones.
fn granted(deliveries: &[NewDelivery], n: usize) -> impl Iterator<Item = &NewDelivery> {
    deliveries.iter().filter(|d| d.leasable()).take(n)
}

pub struct Engine {
    pool: PgPool,
    /// This process's hand-over lease.
    handover: Arc<handover::Handover>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Connections for LISTEN only.
    listen_pool: PgPool,
    config: DeliveryConfig,
    sender: Sender,
    /// This process's lease owner id.
    owner: Uuid,
    /// Per-target limits of deliveries in flight.
    limits: Mutex<HashMap<TargetRef, (u32, Arc<Semaphore>)>>,
    /// One permit per attempt in flight (`workers` in all); closed when the engine stops.
    slots: Arc<Semaphore>,
    /// Deliveries that ingest stored leased to this process, each with its granted slot.
    handoffs: mpsc::UnboundedSender<Slotted>,
    handed: Mutex<Option<mpsc::UnboundedReceiver<Slotted>>>,
    /// Opens connections' secrets.
    sealer: Arc<crate::secrets::Sealer>,
    /// OAuth connections' access tokens, per connection (one fetch at a time each).
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<auth::CachedToken>>>>>,
}

/// Free worker slots of this process, reserved for new deliveries that ingest stores already
/// leased to it. Ingest stores the first [`Grant::len`] of its new leasable deliveries
/// ([`NewDelivery::leasable`]) on the terms of
/// [`Grant::leased_to`] and, once committed, gives the grant back with them
/// ([`Engine::hand_over`]). A grant dropped unused returns its slots.
pub struct Grant {
    slots: Vec<OwnedSemaphorePermit>,
    owner: Uuid,
    lease: Duration,
    /// The hand-over lease the deliveries go under, if it is held.
    ticket: Option<handover::Ticket>,
}

impl Grant {
    /// How many of the new deliveries, from the first, are stored leased.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The terms the store writes those deliveries on.
    pub fn leased_to(&self) -> LeasedTo {
        LeasedTo {
            owner: self.owner,
            lease: self.lease,
            first: self.slots.len(),
            handover: self.ticket.as_ref().map(|t| t.lease),
        }
    }
}

impl Engine {
    pub fn new(
        pool: PgPool,
        listen_pool: PgPool,
        config: DeliveryConfig,
        metrics: Arc<crate::metrics::Metrics>,
        sealer: Arc<crate::secrets::Sealer>,
    ) -> Result<Engine, SendError> {
        let user_agent = format!("Switchyard/{} (webhooks)", env!("CARGO_PKG_VERSION"));
        let sender = Sender::new(AddressGuard::new(config.allow_cidrs.clone()), &user_agent)?;
        let (handoffs, handed) = mpsc::unbounded_channel();
        Ok(Engine {
            slots: Arc::new(Semaphore::new(config.workers)),
            handover: Arc::new(handover::Handover::new(config.lease)),
            handoffs,
            handed: Mutex::new(Some(handed)),
            pool,
            metrics,
            listen_pool,
            config,
            sender,
            owner: Uuid::now_v7(),
            limits: Mutex::new(HashMap::new()),
            sealer,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Up to `n` free slots, taken now (none when the engine is off or stopping).
    fn reserve(&self, n: usize) -> Vec<OwnedSemaphorePermit> {
        std::iter::from_fn(|| self.slots.clone().try_acquire_owned().ok())
            .take(n)
            .collect()
    }

    /// A grant of up to `n` free slots for deliveries ingest is about to store.
    pub fn grant(&self, n: usize) -> Grant {
        let slots = self.reserve(n);
        let ticket = (!slots.is_empty())
            .then(|| self.handover.ticket())
            .flatten();
        Grant {
            slots,
            owner: self.owner,
            lease: self.config.lease,
            ticket,
        }
    }

    /// The ingest statement of `grant` failed, perhaps after its commit: the deliveries it would
    /// have handed over are kept as outstanding from when it was sent, so that each gets its row
    /// a lease later if its event was stored after all (`store::handover::make_pending` makes
    /// none for an event that is not).
    pub fn unsure(&self, grant: Grant, deliveries: &[NewDelivery]) {
        if let Some(ticket) = &grant.ticket {
            self.handover.handed(
                ticket.lease,
                ticket.sent_at,
                granted(deliveries, grant.len()).map(|d| d.handed(ticket.sent_at)),
            );
        }
    }

    /// After the commit of `events` and their `deliveries`: starts the first `grant.len()`
    /// leasable deliveries (stored leased to this process) in the granted slots. If the engine has
    /// stopped they wait for their leases (or shutdown released them) like any claim.
    pub fn hand_over(
        &self,
        grant: Grant,
        inserted: &store::events::Inserted,
        events: &[NewEvent],
        deliveries: Vec<NewDelivery>,
    ) {
        if grant.is_empty() {
            return;
        }
        let Grant { slots, ticket, .. } = grant;
        // Outstanding before the ticket ends, so the checkpoint never passes them.
        let handed_at = match &ticket {
            Some(ticket) if inserted.handed => {
                self.handover.handed(
                    ticket.lease,
                    inserted.received_at,
                    granted(&deliveries, slots.len()).map(|d| d.handed(inserted.received_at)),
                );
                Some(inserted.received_at)
            }
            _ => None,
        };
        drop(ticket);
        let targets_version = inserted.targets_version;
        let bodies: HashMap<_, &NewEvent> = events.iter().map(|e| (e.id, e)).collect();
        // The stored rows take the database's clock at the same moment, give or take the round
        // trip and any skew: the attempt uses this for the age budget and the ingestion time.
        let now = OffsetDateTime::now_utc();
        let claims = deliveries
            .into_iter()
            .filter(NewDelivery::leasable)
            .zip(slots)
            .filter_map(|(d, slot)| {
                // Always found: each delivery was made from one of these events.
                let event = *bodies.get(&d.event_id)?;
                let claim = Claim {
                    id: d.id,
                    event_id: d.event_id,
                    bus: d.bus,
                    rule_name: d.rule_name,
                    target_id: d.target_id,
                    target_ref: d.target_ref,
                    attempts: 1,
                    budget_started_at: now,
                    body: event.body.clone(),
                    received_at: now,
                    span: Some(event.span.clone()),
                    // Ordered deliveries are never handed over (`NewDelivery::leasable`).
                    holds_group: false,
                    handed_at,
                };
                Some((claim, slot))
            })
            .collect();
        let slotted = Slotted {
            targets_version,
            claims,
        };
        if self.handoffs.send(slotted).is_err() {
            tracing::debug!("delivery engine stopped; leased deliveries wait for their lease");
        }
    }

    fn limit_for(&self, target: TargetRef, max: u32) -> Arc<Semaphore> {
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
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        if self.config.workers == 0 {
            tracing::info!("delivery engine off (SWITCHYARD_WORKERS=0)");
            return;
        }
        let Some(handed) = self.handed.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            tracing::error!("the delivery engine runs once");
            return;
        };
        // Attempts hand their outcomes to one recorder that writes them in batches.
        let (recorder, finished) = mpsc::channel(self.config.workers * 2);
        let recording = tokio::spawn(self.clone().record(finished));
        let statistics = tokio::spawn(first_statistics(self.pool.clone()));
        // Kept until the drain has recorded every outcome it can; it dies with the engine (a
        // crash leaves the lease to expire).
        let (stop_keeping, keeping) = watch::channel(false);
        let keeper = crate::app::AbortOnDrop(tokio::spawn(
            self.handover.clone().keep(self.pool.clone(), keeping),
        ));
        tracing::info!(owner = %self.owner, workers = self.config.workers, "delivery engine started");
        let worker = worker::Worker::new(self.clone(), shutdown, handed, recorder);
        let (tasks, recorder) = worker.run().await;
        statistics.abort();
        self.drain(tasks, recorder, recording, (stop_keeping, keeper))
            .await;
    }

    async fn drain(
        &self,
        mut tasks: JoinSet<()>,
        recorder: mpsc::Sender<Finished>,
        recording: tokio::task::JoinHandle<()>,
        (stop_keeping, keeper): (watch::Sender<bool>, crate::app::AbortOnDrop),
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
        let _ = stop_keeping.send(true);
        let _ = keeper.join().await;
        match self.handover.release(&self.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "released unfinished handed-over deliveries"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "releasing handed-over deliveries failed; their lease will expire")
            }
        }
        tracing::info!("delivery engine stopped");
    }
}
