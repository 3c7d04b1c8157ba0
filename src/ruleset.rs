//! The compiled rule sets every process matches with: one immutable snapshot per bus (its rules,
//! archives and schema validators), rebuilt when the bus's `rules_version` in Postgres moves on
//! and swapped atomically. This is the only I/O around `pattern`, and where ingest's schema
//! validators come from.
//!
//! A process learns of changes three ways, all ending in [`Snapshots::refresh`]: at once when it
//! made the change itself, on NOTIFY from another process, and by polling as a backstop (a
//! notification is lost when the listening connection drops).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::TargetRef;
use crate::pattern::{self, RuleSet};
use crate::schema::{Schema, Unregistered, Validation};
use crate::store::{self, StoreError};
use crate::telemetry::error_chain;
use crate::transform::GroupBy;

/// One enabled rule as the matcher reports it.
#[derive(Debug, Clone)]
pub struct MatchedRule {
    pub name: String,
    /// In the rule's order.
    pub targets: Vec<MatchedTarget>,
}

/// What ingest needs of a target to make its delivery.
#[derive(Debug, Clone)]
pub struct MatchedTarget {
    /// `targets.id`.
    pub target_ref: TargetRef,
    /// The target's id within its rule.
    pub id: String,
    /// For an ordered target, what names a delivery's group.
    pub group_by: Option<GroupBy>,
}

/// The compiled rules of one bus at one version.
#[derive(Debug)]
pub struct BusRules {
    pub version: i64,
    pub rules: RuleSet<MatchedRule>,
    pub archives: Archives,
    pub schemas: Schemas,
}

/// What ingest validates a bus's events with: its settings and the latest schema version of
/// each registered event type (only when validation is on).
#[derive(Debug)]
pub struct Schemas {
    pub validation: Validation,
    pub unregistered: Unregistered,
    /// source → detail-type → schema.
    by_type: HashMap<String, HashMap<String, Arc<Registered>>>,
}

/// One event type's latest schema, compiled.
#[derive(Debug)]
pub struct Registered {
    pub version: i32,
    pub schema: Schema,
}

impl Schemas {
    /// The latest schema of an event type, if it has one (and validation is on).
    pub fn get(&self, source: &str, detail_type: &str) -> Option<&Registered> {
        self.by_type.get(source)?.get(detail_type).map(Arc::as_ref)
    }

    fn shared(&self, source: &str, detail_type: &str, version: i32) -> Option<Arc<Registered>> {
        self.by_type
            .get(source)?
            .get(detail_type)
            .filter(|r| r.version == version)
            .cloned()
    }
}

/// The archives of a bus: which keep an event.
#[derive(Debug)]
pub struct Archives {
    /// Archives without a pattern: every event.
    every: Vec<Uuid>,
    with_pattern: RuleSet<Uuid>,
}

impl Archives {
    pub fn is_empty(&self) -> bool {
        self.every.is_empty() && self.with_pattern.is_empty()
    }

    /// The archives that keep this event (the envelope as stored).
    pub fn keeping(&self, event: &str) -> Vec<Uuid> {
        let mut keep = self.every.clone();
        if !self.with_pattern.is_empty()
            && let Ok(matched) = self.with_pattern.matcher().matches_validated(event)
        {
            let all = self.with_pattern.rules();
            keep.extend(matched.iter().filter_map(|&i| all.get(i as usize)));
        }
        keep
    }
}

pub struct Snapshots {
    pool: PgPool,
    buses: RwLock<HashMap<String, Arc<BusRules>>>,
    /// One refresh at a time; a caller that waited finds the work done.
    refreshing: Mutex<()>,
}

impl Snapshots {
    pub fn new(pool: PgPool) -> Snapshots {
        Snapshots {
            pool,
            buses: RwLock::new(HashMap::new()),
            refreshing: Mutex::new(()),
        }
    }

    fn cached(&self, bus: &str) -> Option<Arc<BusRules>> {
        let buses = self.buses.read().unwrap_or_else(|e| e.into_inner());
        buses.get(bus).cloned()
    }

    /// The bus's rules, or `None` if there is no such bus. A bus not seen yet (created by another
    /// process a moment ago) is looked up in the database before the answer is no.
    pub async fn get(&self, bus: &str) -> Result<Option<Arc<BusRules>>, StoreError> {
        if let Some(rules) = self.cached(bus) {
            return Ok(Some(rules));
        }
        self.refresh().await?;
        Ok(self.cached(bus))
    }

    /// Compares every bus's rules version with the snapshot's, rebuilds the buses that moved
    /// on, and drops the buses that are gone.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let mut conn = self.pool.acquire().await?;
        let versions = store::buses::versions(&mut conn).await?;
        drop(conn);
        let stale: Vec<&String> = {
            let buses = self.buses.read().unwrap_or_else(|e| e.into_inner());
            versions
                .iter()
                .filter(|(bus, version)| buses.get(bus).is_none_or(|r| r.version != *version))
                .map(|(bus, _)| bus)
                .collect()
        };
        let mut rebuilt = Vec::with_capacity(stale.len());
        for bus in stale {
            if let Some(matchable) = store::rules::load_for_matching(&self.pool, bus).await? {
                let before = self.cached(bus);
                let schemas = before.as_ref().map(|b| &b.schemas);
                rebuilt.push((bus.clone(), Arc::new(compile(bus, matchable, schemas))));
            }
        }
        let mut buses = self.buses.write().unwrap_or_else(|e| e.into_inner());
        buses.retain(|bus, _| versions.iter().any(|(b, _)| b == bus));
        buses.extend(rebuilt);
        Ok(())
    }

    /// Keeps the snapshots fresh until the task is dropped: refreshes on NOTIFY (listening on a
    /// connection of `listen_pool`) and every `poll` interval.
    pub async fn follow(self: Arc<Self>, listen_pool: PgPool, poll: Duration) {
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                listener = store::notify::listen(&listen_pool, store::notify::RULES_CHANGED).await;
            }
            let woken = match listener.as_mut() {
                Some(l) => match tokio::time::timeout(poll, l.recv()).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error_chain(&error), "rule-change listener failed; reconnecting");
                        listener = None;
                        false
                    }
                    Err(_elapsed) => false,
                },
                None => {
                    tokio::time::sleep(poll).await;
                    false
                }
            };
            if let Err(error) = self.refresh().await {
                tracing::warn!(error = %error_chain(&error), woken, "refreshing rule snapshots failed");
            }
        }
    }
}

/// Compiles a bus's snapshot; the validators of schema versions the `previous` snapshot had
/// are shared, not compiled again.
fn compile(bus: &str, matchable: store::rules::Matchable, previous: Option<&Schemas>) -> BusRules {
    let store::rules::Matchable {
        version,
        rules: rows,
        archives,
        schemas,
    } = matchable;
    let limits = pattern::Limits::default();
    let mut parsed = Vec::with_capacity(rows.len());
    for row in rows {
        match pattern::parse_with(&row.event_pattern, &limits) {
            Ok(p) => {
                let targets = row
                    .targets
                    .0
                    .into_iter()
                    .map(|(target_ref, id, group_by)| MatchedTarget {
                        group_by: group_by.and_then(|path| match GroupBy::compile(&path) {
                            Ok(group_by) => Some(group_by),
                            // Checked when saved, like patterns: sent unordered, loudly.
                            Err(error) => {
                                tracing::error!(bus, rule = row.name, target = id, %error, "stored ordering.group_by does not compile; delivering unordered");
                                None
                            }
                        }),
                        target_ref,
                        id,
                    })
                    .collect();
                parsed.push((
                    MatchedRule {
                        name: row.name,
                        targets,
                    },
                    p,
                ))
            }
            // Patterns are validated when saved; a stored one that no longer parses is skipped
            // loudly rather than taking the whole bus down.
            Err(error) => {
                tracing::error!(bus, rule = row.name, %error, "stored pattern does not parse; rule skipped")
            }
        }
    }
    let rules = RuleSet::compile(parsed.iter().map(|(rule, p)| (rule.clone(), p)));
    let mut every = Vec::new();
    let mut patterned = Vec::new();
    for archive in archives {
        match archive
            .event_pattern
            .as_deref()
            .map(|p| pattern::parse_with(p, &limits))
        {
            None => every.push(archive.id),
            Some(Ok(p)) => patterned.push((archive.id, p)),
            Some(Err(error)) => {
                tracing::error!(bus, archive = archive.name, %error, "stored archive pattern does not parse; archive skipped")
            }
        }
    }
    let archives = Archives {
        every,
        with_pattern: RuleSet::compile(patterned.iter().map(|(id, p)| (*id, p))),
    };
    tracing::debug!(bus, version, rules = rules.len(), "compiled rule snapshot");
    BusRules {
        version,
        rules,
        archives,
        schemas: compile_schemas(bus, schemas, previous),
    }
}

fn compile_schemas(
    bus: &str,
    stored: store::schemas::Validating,
    previous: Option<&Schemas>,
) -> Schemas {
    let validation = Validation::parse(&stored.validation).unwrap_or_else(|| {
        tracing::error!(
            bus,
            setting = stored.validation,
            "stored schema_validation is not known; validating off"
        );
        Validation::Off
    });
    let unregistered = Unregistered::parse(&stored.unregistered).unwrap_or(Unregistered::Accept);
    let mut by_type: HashMap<String, HashMap<String, Arc<Registered>>> = HashMap::new();
    for latest in stored.latest {
        let shared =
            previous.and_then(|p| p.shared(&latest.source, &latest.detail_type, latest.version));
        let registered = match shared {
            Some(registered) => registered,
            None => match Schema::parse(&latest.schema, "") {
                Ok(schema) => Arc::new(Registered {
                    version: latest.version,
                    schema,
                }),
                // Checked when registered, like patterns: a stored schema that no longer
                // compiles validates nothing, loudly.
                Err(error) => {
                    tracing::error!(
                        bus,
                        source = latest.source,
                        detail_type = latest.detail_type,
                        version = latest.version,
                        error = error.detail,
                        "stored schema does not compile; its type is not validated"
                    );
                    continue;
                }
            },
        };
        by_type
            .entry(latest.source)
            .or_default()
            .insert(latest.detail_type, registered);
    }
    Schemas {
        validation,
        unregistered,
        by_type,
    }
}
