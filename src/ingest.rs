//! The durable write path: each entry is validated and matched on the bus's snapshot, then every
//! accepted event and all of its deliveries are written in one atomic statement. Only after it commits
//! does the caller answer, so an acknowledged event is never lost.

use serde_json::value::RawValue;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{EntryError, Envelope, EnvelopeLimits};
use crate::ruleset::Snapshots;
use crate::store::{self, StoreError};

/// Settings of the ingest path.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub limits: EnvelopeLimits,
    /// The largest request body, all entries together.
    pub max_request_bytes: usize,
    /// `account` and `region` written into every event.
    pub account: String,
    pub region: String,
}

/// At most this many entries per request (EventBridge's `PutEvents` limit).
pub const MAX_ENTRIES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no bus named {0:?}")]
    BusNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IngestError {
    fn from(error: sqlx::Error) -> Self {
        IngestError::Store(error.into())
    }
}

/// The result for one entry, in request order.
#[derive(Debug)]
pub enum EntryOutcome {
    Accepted(Uuid),
    Failed(EntryError),
}

/// Validates, matches and durably stores a batch of entries for `bus`.
#[tracing::instrument(skip_all, fields(bus, entries = entries.len()))]
pub async fn ingest(
    pool: &PgPool,
    snapshots: &Snapshots,
    config: &IngestConfig,
    bus: &str,
    entries: &[&RawValue],
) -> Result<Vec<EntryOutcome>, IngestError> {
    let rules = snapshots
        .get(bus)
        .await?
        .ok_or_else(|| IngestError::BusNotFound(bus.to_owned()))?;
    let now = OffsetDateTime::now_utc();
    let mut matcher = rules.rules.matcher();
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut events = Vec::with_capacity(entries.len());
    let mut deliveries = Vec::new();
    for entry in entries {
        let envelope = match Envelope::parse(entry.get(), &config.limits, now) {
            Ok(envelope) => envelope,
            Err(error) => {
                outcomes.push(EntryOutcome::Failed(error));
                continue;
            }
        };
        let id = Uuid::now_v7();
        let body = envelope.to_event_json(id, &config.account, &config.region);
        let matched = match matcher.matches_str(&body) {
            Ok(matched) => matched,
            Err(error) => {
                outcomes.push(EntryOutcome::Failed(EntryError {
                    code: "MalformedDetail",
                    message: format!("detail: {error}"),
                }));
                continue;
            }
        };
        let mut names = Vec::with_capacity(matched.len());
        for &index in matched {
            let Some(rule) = rules.rules.rules().get(index as usize) else {
                continue;
            };
            names.push(rule.name.as_str());
            for (target_ref, target_id) in &rule.targets {
                deliveries.push(store::events::NewDelivery {
                    id: Uuid::now_v7(),
                    event_id: id,
                    rule_name: rule.name.clone(),
                    target_id: target_id.clone(),
                    target_ref: *target_ref,
                });
            }
        }
        names.sort_unstable();
        events.push(store::events::NewEvent {
            id,
            matched_rules: serde_json::Value::from(names).to_string(),
            body,
            source: envelope.source,
            detail_type: envelope.detail_type,
            time: envelope.time,
        });
        outcomes.push(EntryOutcome::Accepted(id));
    }
    if !events.is_empty() {
        let mut conn = pool.acquire().await?;
        store::events::insert(&mut conn, bus, &events, &deliveries).await?;
    }
    tracing::debug!(
        accepted = events.len(),
        deliveries = deliveries.len(),
        "events stored"
    );
    Ok(outcomes)
}
