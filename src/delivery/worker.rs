//! The worker loop of one process: keep the queue's housekeeping done, fill the free slots with
//! claims, start what ingest handed over, and otherwise wait for a reason to look again.
//!
//! ```text
//! loop: rescue expired leases (now and then) → claim up to the free slots → wait for
//!       · a slot to free, when the claim filled every slot (more may be due right now), else
//!       · NOTIFY, the next due time, the poll interval, or a slot when none is free;
//!       handed-over deliveries start at once, without ending the wait
//! on shutdown: stop claiming, let attempts finish for the grace period, record, release the rest
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::outcome::TargetRuntime;
use super::recorder::Finished;
use super::{Engine, Slotted};
use crate::domain::TargetRef;
use crate::store::{self, StoreError};
use crate::telemetry::error_chain;

/// What the loop waits for after a claim.
enum Wait {
    /// Every free slot got a delivery: more may be due, claim again once one frees.
    ForSlot,
    /// The queue had less than the free slots: until NOTIFY, the deadline, or a slot frees
    /// while none is free.
    ForWork(Duration),
}

pub(super) struct Worker {
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
    handed: mpsc::UnboundedReceiver<Slotted>,
    tasks: JoinSet<()>,
    recorder: mpsc::Sender<Finished>,
    listener: Option<PgListener>,
    rescue_every: Duration,
    last_rescue: Option<Instant>,
    targets: TargetCache,
}

/// The targets this worker has read, with their connections, kept while nothing they are made
/// of changes: every write to targets or connections counts a change (migration 0027), each
/// batch of deliveries comes with the count its statement saw, and a count beyond the cache's
/// empties it. So a batch never starts on a target older than its own snapshot, and the
/// statement that read each batch's targets (a join of targets and connections, the router
/// decoding every row) is gone from the path. An entry whose previous secret expires is read
/// again then; a target not found (deleted) is not kept.
#[derive(Default)]
struct TargetCache {
    version: i64,
    entries: HashMap<TargetRef, (Arc<TargetRuntime>, Option<OffsetDateTime>)>,
}

impl TargetCache {
    async fn get(
        &mut self,
        pool: &sqlx::PgPool,
        version: i64,
        ids: &[TargetRef],
    ) -> Result<HashMap<TargetRef, Arc<TargetRuntime>>, StoreError> {
        if version > self.version {
            self.entries.clear();
            self.version = version;
        }
        let now = OffsetDateTime::now_utc();
        let missing: Vec<TargetRef> = ids
            .iter()
            .filter(|id| {
                !self
                    .entries
                    .get(id)
                    .is_some_and(|(_, until)| until.is_none_or(|until| until > now))
            })
            .copied()
            .collect();
        if !missing.is_empty() {
            let read = super::with_tries("reading the targets of deliveries to start", || {
                store::deliveries::targets(pool, &missing)
            })
            .await?;
            for (target, until) in read {
                self.entries.insert(target.id, (Arc::new(target), until));
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, self.entries.get(id)?.0.clone())))
            .collect())
    }
}

impl Worker {
    pub(super) fn new(
        engine: Arc<Engine>,
        shutdown: watch::Receiver<bool>,
        handed: mpsc::UnboundedReceiver<Slotted>,
        recorder: mpsc::Sender<Finished>,
    ) -> Worker {
        let rescue_every =
            (engine.config.lease / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        Worker {
            engine,
            shutdown,
            handed,
            tasks: JoinSet::new(),
            recorder,
            listener: None,
            rescue_every,
            last_rescue: None,
            targets: TargetCache::default(),
        }
    }

    /// Runs until shutdown, then drains: what was handed over but not started is released with
    /// the rest. Returns the attempts still running, for [`Engine::drain`].
    pub(super) async fn run(mut self) -> (JoinSet<()>, mpsc::Sender<Finished>) {
        while !*self.shutdown.borrow() {
            while self.tasks.try_join_next().is_some() {}
            self.housekeep().await;
            let wait = self.claim().await;
            self.wait(wait).await;
        }
        self.engine.slots.close();
        self.handed.close();
        while self.handed.try_recv().is_ok() {}
        (self.tasks, self.recorder)
    }

    /// LISTEN (again, if it failed) and return expired leases to the queue now and then.
    async fn housekeep(&mut self) {
        if self.listener.is_none() {
            self.listener =
                store::notify::listen(&self.engine.listen_pool, store::notify::DELIVERIES_DUE)
                    .await;
        }
        if self
            .last_rescue
            .is_some_and(|at| at.elapsed() < self.rescue_every)
        {
            return;
        }
        self.last_rescue = Some(Instant::now());
        match store::deliveries::rescue_expired(&self.engine.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                deliveries = n,
                "returned deliveries with expired leases to the queue"
            ),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "rescuing expired leases failed")
            }
        }
        // The hand-over leases of processes gone, one at a time (each waits for the ingest
        // statements under way under it).
        for _ in 0..16 {
            match store::handover::rescue_one(&self.engine.pool).await {
                Ok(None) => break,
                Ok(Some(n)) => tracing::warn!(
                    deliveries = n,
                    "rescued the handed-over deliveries of an expired hand-over lease"
                ),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "rescuing an expired hand-over lease failed");
                    break;
                }
            }
        }
    }

    /// Claims a due delivery for each free slot and starts them; says how to wait next.
    async fn claim(&mut self) -> Wait {
        let mut free = self.engine.reserve(usize::MAX);
        let n = free.len();
        if n > 0 {
            let claimed = store::deliveries::claim_due(
                &self.engine.pool,
                self.engine.owner,
                n as i64,
                self.engine.config.lease,
            )
            .await;
            match claimed {
                Ok((targets_version, claims)) => {
                    free.truncate(claims.len());
                    let count = claims.len();
                    let slotted = Slotted {
                        targets_version: targets_version.unwrap_or(0),
                        claims: claims.into_iter().zip(free).collect(),
                    };
                    match self.start(slotted).await {
                        Ok(()) if count == n => return Wait::ForSlot,
                        Ok(()) => {}
                        Err(error) => {
                            tracing::warn!(error = %error_chain(&error), "starting claimed deliveries failed; they are retried when their leases expire")
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "claiming deliveries failed")
                }
            }
        }
        let mut wait = self.engine.config.poll.min(self.rescue_every);
        if self.engine.slots.available_permits() > 0
            && let Ok(Some(due)) = store::deliveries::next_due_in(&self.engine.pool).await
        {
            wait = wait.min(due.max(Duration::from_millis(5)));
        }
        Wait::ForWork(wait)
    }

    /// Waits as `wait` says; deliveries handed over meanwhile start at once.
    async fn wait(&mut self, wait: Wait) {
        let (deadline, slot_ends_wait) = match wait {
            Wait::ForSlot => (None, true),
            Wait::ForWork(after) => (Some(after), false),
        };
        let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::MAX));
        tokio::pin!(sleep);
        loop {
            let no_slot_free = self.engine.slots.available_permits() == 0;
            tokio::select! {
                Some(slotted) = self.handed.recv() => {
                    if let Err(error) = self.start(slotted).await {
                        tracing::warn!(error = %error_chain(&error), "starting handed-over deliveries failed; they are retried when their leases expire");
                    }
                    continue;
                }
                ok = async {
                    match (&mut self.listener, deadline) {
                        (Some(listener), Some(_)) => listener.recv().await.is_ok(),
                        _ => std::future::pending().await,
                    }
                } => if !ok {
                    self.listener = None;
                },
                _ = &mut sleep, if deadline.is_some() => {}
                _ = self.shutdown.changed() => {}
                Some(_) = self.tasks.join_next(), if slot_ends_wait || no_slot_free => {}
            }
            return;
        }
    }

    /// Starts an attempt for each delivery this process holds the lease of, in its slot. When
    /// the targets cannot be read, nothing starts: the deliveries wait for their leases.
    async fn start(&mut self, slotted: Slotted) -> Result<(), StoreError> {
        if slotted.claims.is_empty() {
            return Ok(());
        }
        let mut refs: Vec<TargetRef> = slotted.claims.iter().map(|(c, _)| c.target_ref).collect();
        refs.sort_unstable();
        refs.dedup();
        let targets = self
            .targets
            .get(&self.engine.pool, slotted.targets_version, &refs)
            .await?;
        for (claim, slot) in slotted.claims {
            let target = targets.get(&claim.target_ref).cloned();
            let engine = self.engine.clone();
            let recorder = self.recorder.clone();
            self.tasks.spawn(async move {
                engine.attempt(claim, target, recorder).await;
                drop(slot);
            });
        }
        Ok(())
    }
}
