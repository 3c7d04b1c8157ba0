//! Schema discovery: on the buses with `schema_discovery` on, every interval one process (an
//! advisory lock) looks at the event types that received events since its last look. For each,
//! it reads the type's most recent stored events; when the latest registered version accepts
//! them all, there is nothing new. Otherwise (or when the type has no version yet) it infers a
//! schema from those events ([`crate::schema::infer`]) and keeps it as the type's draft, which
//! an operator accepts (it is registered as the next version, through the compatibility check)
//! or discards, in the API or the UI. Nothing is ever registered without an operator.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::schema::detail_of;
use crate::schema::infer::Inferrer;
use crate::store::{self, StoreError, locks};
use crate::telemetry::error_chain;

/// How many of a type's most recent events a draft is inferred from.
pub const SAMPLE: i64 = 200;

pub async fn run(pool: PgPool, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut since = OffsetDateTime::now_utc() - interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // Looks a little further back than the last pass: an event committed late is not missed.
        let started = OffsetDateTime::now_utc();
        match discover(&pool, since - interval).await {
            Ok(drafts) => {
                since = started;
                if drafts > 0 {
                    tracing::info!(drafts, "schema discovery kept new drafts");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "schema discovery failed; it tries again");
            }
        }
    }
}

/// One pass over the event types seen since `since`; returns how many drafts it wrote. Another
/// process's pass in progress makes this one do nothing.
pub async fn discover(pool: &PgPool, since: OffsetDateTime) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    if !locks::try_hold(&mut tx, locks::Lock::Discovery).await? {
        return Ok(0);
    }
    let mut written = 0;
    for bus in store::schemas::discovering(&mut tx).await? {
        for (source, detail_type) in store::schemas::types_seen_since(&mut tx, &bus, since).await? {
            let events =
                store::schemas::recent_events(&mut tx, &bus, &source, &detail_type, SAMPLE).await?;
            let details: Vec<Value> = events.iter().map(|(_, body)| detail_of(body)).collect();
            let latest = store::schemas::versions(&mut tx, &bus, &source, &detail_type)
                .await?
                .pop()
                .and_then(|row| crate::schema::Schema::parse(&row.schema, "").ok());
            let refused = match &latest {
                Some(schema) => details
                    .iter()
                    .filter(|d| !schema.validator.is_valid(d))
                    .count(),
                None => details.len(),
            };
            if refused == 0 {
                continue;
            }
            let mut inferrer = Inferrer::default();
            for detail in &details {
                inferrer.add(detail);
            }
            let schema = inferrer.schema().to_string();
            store::schemas::put_draft(
                &mut tx,
                &bus,
                &source,
                &detail_type,
                &schema,
                details.len() as i32,
                refused as i32,
            )
            .await?;
            written += 1;
        }
    }
    tx.commit().await?;
    Ok(written)
}
