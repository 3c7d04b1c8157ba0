//! Rules and their targets. Every change bumps the bus's `rules_version` and sends NOTIFY in the
//! same transaction, so every process learns of it (at once, or at its next poll).

use std::collections::BTreeMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, notify};
use crate::domain::{
    DestinationRef, Format, InputTransform, OnDead, Ordering, RetryPolicy, Rule, RuleState, Target,
    TargetId, TargetRef,
};

/// What the system keeps about a target besides its definition.
#[derive(Debug, Clone)]
pub struct TargetState {
    pub id: TargetRef,
    pub secret: String,
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
}

/// A stored rule with its targets.
#[derive(Debug, Clone)]
pub struct RuleRecord {
    pub id: Uuid,
    pub bus: String,
    pub name: String,
    pub rule: Rule,
    /// One per target, in the same order.
    pub target_states: Vec<TargetState>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    bus: String,
    name: String,
    description: String,
    event_pattern: String,
    state: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A target's input transformation as its columns store it.
#[derive(sqlx::FromRow)]
pub(super) struct InputColumns {
    input_kind: String,
    input: Option<String>,
    input_path: Option<String>,
    input_paths_map: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    input_template: Option<String>,
}

impl InputColumns {
    /// `None` when the columns contradict each other (the table's CHECKs forbid it).
    pub(super) fn into_transform(self) -> Option<InputTransform> {
        Some(match self.input_kind.as_str() {
            "event" => InputTransform::Event,
            "constant" => InputTransform::Constant(self.input?),
            "path" => InputTransform::Path(self.input_path?),
            "transformer" => InputTransform::Transformer {
                paths_map: self.input_paths_map?.0,
                template: self.input_template?,
            },
            _ => return None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: TargetRef,
    secret: String,
    previous_secret_expires_at: Option<OffsetDateTime>,
    disabled_at: Option<OffsetDateTime>,
    disabled_reason: Option<String>,
    rule_id: Uuid,
    target_id: String,
    url: String,
    method: String,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
    #[sqlx(flatten)]
    input: InputColumns,
    maximum_retry_attempts: i32,
    maximum_event_age_seconds: i32,
    timeout_ms: i32,
    max_concurrency: i32,
    ordering_group_by: Option<String>,
    ordering_on_dead: Option<String>,
    format: String,
    connection: Option<String>,
    rate_limit_per_second: Option<i32>,
    api_destination: Option<String>,
    path_parameters: Option<Vec<String>>,
    query_parameters: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    role_arn: Option<String>,
}

impl TargetRow {
    fn into_target(self) -> Result<(Target, TargetState), StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("target {}: {what}", self.target_id));
        let input = self
            .input
            .into_transform()
            .ok_or_else(|| corrupt("input columns"))?;
        let number = |n: i32, what: &str| u32::try_from(n).map_err(|_| corrupt(what));
        let ordering = match (self.ordering_group_by, self.ordering_on_dead.as_deref()) {
            (Some(group_by), Some(on_dead)) => Some(Ordering {
                group_by,
                on_dead: OnDead::parse(on_dead).ok_or_else(|| corrupt("ordering_on_dead"))?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("ordering columns")),
        };
        let state = TargetState {
            id: self.id,
            secret: self.secret.clone(),
            previous_secret_expires_at: self.previous_secret_expires_at,
            disabled_at: self.disabled_at,
            disabled_reason: self.disabled_reason.clone(),
        };
        let target = Target {
            id: TargetId::parse(&self.target_id).map_err(|e| corrupt(&e.0))?,
            url: self.url,
            method: self.method,
            headers: self.headers.0,
            input,
            retry_policy: RetryPolicy {
                maximum_retry_attempts: number(self.maximum_retry_attempts, "attempts")?,
                maximum_event_age_seconds: number(self.maximum_event_age_seconds, "age")?,
            },
            timeout_ms: number(self.timeout_ms, "timeout")?,
            max_concurrency: number(self.max_concurrency, "concurrency")?,
            ordering,
            format: Format::parse(&self.format).ok_or_else(|| corrupt("format"))?,
            connection: self.connection,
            rate_limit_per_second: self
                .rate_limit_per_second
                .map(|r| number(r, "rate_limit_per_second"))
                .transpose()?,
            api_destination: self.api_destination.map(|name| DestinationRef {
                name,
                path_parameters: self.path_parameters.unwrap_or_default(),
                query_parameters: self.query_parameters.map(|q| q.0).unwrap_or_default(),
            }),
            role_arn: self.role_arn,
        };
        Ok((target, state))
    }
}

const RULE_COLUMNS: &str =
    "id, bus, name, description, event_pattern, state, created_at, updated_at";
const TARGET_COLUMNS: &str = "id, secret, previous_secret_expires_at, disabled_at, \
     disabled_reason, rule_id, target_id, url, method, headers, input_kind, input, \
     input_path, input_paths_map, input_template, maximum_retry_attempts, \
     maximum_event_age_seconds, timeout_ms, max_concurrency, ordering_group_by, ordering_on_dead, \
     format, connection, rate_limit_per_second, api_destination, path_parameters, \
     query_parameters, role_arn";

async fn with_targets(
    conn: &mut PgConnection,
    rows: Vec<RuleRow>,
) -> Result<Vec<RuleRecord>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let targets: Vec<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM targets WHERE rule_id = ANY($1) ORDER BY rule_id, position"
    )))
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut by_rule: BTreeMap<Uuid, Vec<(Target, TargetState)>> = BTreeMap::new();
    for row in targets {
        by_rule
            .entry(row.rule_id)
            .or_default()
            .push(row.into_target()?);
    }
    rows.into_iter()
        .map(|row| {
            let state = RuleState::parse(&row.state).ok_or_else(|| {
                StoreError::Corrupt(format!("rule {}: state {:?}", row.name, row.state))
            })?;
            let (targets, target_states) = by_rule
                .remove(&row.id)
                .unwrap_or_default()
                .into_iter()
                .unzip();
            Ok(RuleRecord {
                id: row.id,
                rule: Rule {
                    description: row.description,
                    event_pattern: row.event_pattern,
                    state,
                    targets,
                },
                target_states,
                bus: row.bus,
                name: row.name,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
        })
        .collect()
}

pub async fn get(
    conn: &mut PgConnection,
    bus: &str,
    name: &str,
) -> Result<Option<RuleRecord>, StoreError> {
    let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM rules WHERE bus = $1 AND name = $2"
    )))
    .bind(bus)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(with_targets(conn, rows).await?.pop())
}

/// Locks a rule's row until the transaction ends (a read-modify-write of it); whether it exists.
pub async fn lock(conn: &mut PgConnection, bus: &str, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM rules WHERE bus = $1 AND name = $2 FOR UPDATE")
            .bind(bus)
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Rules of a bus in name order: those whose name starts with `prefix`, after `after`, at most `limit`.
pub async fn list(
    conn: &mut PgConnection,
    bus: &str,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<RuleRecord>, StoreError> {
    let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM rules
         WHERE bus = $1 AND starts_with(name, $2) AND ($3::text IS NULL OR name > $3)
         ORDER BY name COLLATE \"C\" LIMIT $4"
    )))
    .bind(bus)
    .bind(prefix)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    with_targets(conn, rows).await
}

/// Every rule of every bus (for `rules apply`).
pub async fn list_all(conn: &mut PgConnection) -> Result<Vec<RuleRecord>, StoreError> {
    let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM rules ORDER BY bus, name"
    )))
    .fetch_all(&mut *conn)
    .await?;
    with_targets(conn, rows).await
}

/// Bumps the bus's rules version and announces the change; `false` if the bus does not exist.
pub(super) async fn touch_bus(conn: &mut PgConnection, bus: &str) -> Result<bool, sqlx::Error> {
    let found = sqlx::query(
        "UPDATE buses SET rules_version = rules_version + 1, updated_at = now() WHERE name = $1",
    )
    .bind(bus)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if found {
        notify::notify(conn, notify::RULES_CHANGED, bus).await?;
    }
    Ok(found)
}

pub enum Put {
    Created,
    Replaced,
    BusNotFound,
}

/// Creates or replaces a rule with its targets. Run it in a transaction. A target keeps its
/// identity, its secret (and its pending deliveries their target) across edits as long as its id
/// stays; a new target signs with `new_secrets[i]` (one per target of the rule, made by the
/// caller).
pub async fn put(
    conn: &mut PgConnection,
    bus: &str,
    name: &str,
    rule: &Rule,
    new_secrets: &[String],
) -> Result<Put, StoreError> {
    if new_secrets.len() != rule.targets.len() {
        return Err(StoreError::Corrupt(format!(
            "{} new secrets for {} targets",
            new_secrets.len(),
            rule.targets.len()
        )));
    }
    if !touch_bus(conn, bus).await? {
        return Ok(Put::BusNotFound);
    }
    let (rule_id, created): (Uuid, bool) = sqlx::query_as(
        "INSERT INTO rules (id, bus, name, description, event_pattern, state)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (bus, name) DO UPDATE SET description = EXCLUDED.description,
             event_pattern = EXCLUDED.event_pattern, state = EXCLUDED.state, updated_at = now()
         RETURNING id, (xmax = 0)",
    )
    .bind(Uuid::now_v7())
    .bind(bus)
    .bind(name)
    .bind(&rule.description)
    .bind(&rule.event_pattern)
    .bind(rule.state.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let keep: Vec<&str> = rule.targets.iter().map(|t| t.id.as_str()).collect();
    sqlx::query("DELETE FROM targets WHERE rule_id = $1 AND NOT (target_id = ANY($2))")
        .bind(rule_id)
        .bind(&keep)
        .execute(&mut *conn)
        .await?;
    for (position, (target, new_secret)) in rule.targets.iter().zip(new_secrets).enumerate() {
        let (kind, input, path, paths_map, template) = match &target.input {
            InputTransform::Event => ("event", None, None, None, None),
            InputTransform::Constant(text) => ("constant", Some(text.as_str()), None, None, None),
            InputTransform::Path(path) => ("path", None, Some(path.as_str()), None, None),
            InputTransform::Transformer {
                paths_map,
                template,
            } => (
                "transformer",
                None,
                None,
                Some(sqlx::types::Json(paths_map)),
                Some(template.as_str()),
            ),
        };
        sqlx::query(
            "INSERT INTO targets (id, rule_id, target_id, position, url, method, headers, input_kind,
                 input, input_path, input_paths_map, input_template, maximum_retry_attempts,
                 maximum_event_age_seconds, timeout_ms, max_concurrency, secret, ordering_group_by,
                 ordering_on_dead, format, connection, rate_limit_per_second, api_destination,
                 path_parameters, query_parameters, role_arn)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     $18, $19, $20, $21, $22, $23, $24, $25, $26)
             ON CONFLICT (rule_id, target_id) DO UPDATE SET position = EXCLUDED.position,
                 url = EXCLUDED.url, method = EXCLUDED.method, headers = EXCLUDED.headers,
                 input_kind = EXCLUDED.input_kind, input = EXCLUDED.input,
                 input_path = EXCLUDED.input_path, input_paths_map = EXCLUDED.input_paths_map,
                 input_template = EXCLUDED.input_template,
                 maximum_retry_attempts = EXCLUDED.maximum_retry_attempts,
                 maximum_event_age_seconds = EXCLUDED.maximum_event_age_seconds,
                 timeout_ms = EXCLUDED.timeout_ms, max_concurrency = EXCLUDED.max_concurrency,
                 ordering_group_by = EXCLUDED.ordering_group_by,
                 ordering_on_dead = EXCLUDED.ordering_on_dead, format = EXCLUDED.format,
                 connection = EXCLUDED.connection,
                 rate_limit_per_second = EXCLUDED.rate_limit_per_second,
                 api_destination = EXCLUDED.api_destination,
                 path_parameters = EXCLUDED.path_parameters,
                 query_parameters = EXCLUDED.query_parameters, role_arn = EXCLUDED.role_arn",
        )
        .bind(Uuid::now_v7())
        .bind(rule_id)
        .bind(target.id.as_str())
        .bind(position as i16)
        .bind(&target.url)
        .bind(&target.method)
        .bind(sqlx::types::Json(&target.headers))
        .bind(kind)
        .bind(input)
        .bind(path)
        .bind(paths_map)
        .bind(template)
        .bind(target.retry_policy.maximum_retry_attempts as i32)
        .bind(target.retry_policy.maximum_event_age_seconds as i32)
        .bind(target.timeout_ms as i32)
        .bind(target.max_concurrency as i32)
        .bind(new_secret)
        .bind(target.ordering.as_ref().map(|o| o.group_by.as_str()))
        .bind(target.ordering.as_ref().map(|o| o.on_dead.as_str()))
        .bind(target.format.as_str())
        .bind(target.connection.as_deref())
        .bind(target.rate_limit_per_second.map(|r| r as i32))
        .bind(target.api_destination.as_ref().map(|d| d.name.as_str()))
        .bind(target.api_destination.as_ref().map(|d| &d.path_parameters))
        .bind(
            target
                .api_destination
                .as_ref()
                .map(|d| sqlx::types::Json(&d.query_parameters)),
        )
        .bind(target.role_arn.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(if created { Put::Created } else { Put::Replaced })
}

/// Deletes a rule and its targets; `false` if there was no such rule. Run it in a transaction.
pub async fn delete(conn: &mut PgConnection, bus: &str, name: &str) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM rules WHERE bus = $1 AND name = $2")
        .bind(bus)
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if deleted {
        touch_bus(conn, bus).await?;
    }
    Ok(deleted)
}

/// What the matcher needs of one enabled rule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MatchableRule {
    pub name: String,
    pub event_pattern: String,
    /// `(targets.id, target id, ordering's group_by)` in the rule's order.
    pub targets: sqlx::types::Json<Vec<(TargetRef, String, Option<String>)>>,
}

/// What a bus matches events with, at one rules version.
pub struct Matchable {
    pub version: i64,
    pub rules: Vec<MatchableRule>,
    pub archives: Vec<super::archives::MatchableArchive>,
    pub schemas: super::schemas::Validating,
}

/// The enabled rules, the archives and the schemas of a bus and the rules version they belong
/// to, read in one snapshot. `None` when the bus does not exist.
pub async fn load_for_matching(
    pool: &sqlx::PgPool,
    bus: &str,
) -> Result<Option<Matchable>, sqlx::Error> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let version: Option<i64> =
        sqlx::query_scalar("SELECT rules_version FROM buses WHERE name = $1")
            .bind(bus)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(version) = version else {
        return Ok(None);
    };
    let rules: Vec<MatchableRule> = sqlx::query_as(
        "SELECT r.name, r.event_pattern,
                COALESCE((SELECT jsonb_agg(jsonb_build_array(t.id, t.target_id, t.ordering_group_by) ORDER BY t.position)
                          FROM targets t WHERE t.rule_id = r.id), '[]') AS targets
         FROM rules r WHERE r.bus = $1 AND r.state = 'enabled' ORDER BY r.name",
    )
    .bind(bus)
    .fetch_all(&mut *tx)
    .await?;
    let archives =
        sqlx::query_as("SELECT id, name, event_pattern FROM archives WHERE bus = $1 ORDER BY name")
            .bind(bus)
            .fetch_all(&mut *tx)
            .await?;
    let schemas = super::schemas::load_for_validating(&mut tx, bus).await?;
    tx.commit().await?;
    Ok(Some(Matchable {
        version,
        rules,
        archives,
        schemas,
    }))
}

/// The `targets.id` of a rule's target, if the bus, rule and target exist.
pub async fn target_ref(
    conn: &mut PgConnection,
    bus: &str,
    rule: &str,
    target_id: &str,
) -> Result<Option<TargetRef>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t.id FROM targets t JOIN rules r ON r.id = t.rule_id
         WHERE r.bus = $1 AND r.name = $2 AND t.target_id = $3",
    )
    .bind(bus)
    .bind(rule)
    .bind(target_id)
    .fetch_optional(conn)
    .await
}

/// Gives a target a new signing secret; the old one keeps signing until `overlap` has passed.
/// Returns when the old one stops.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    target: TargetRef,
    secret: &str,
    overlap: std::time::Duration,
) -> Result<OffsetDateTime, sqlx::Error> {
    let expires: OffsetDateTime = sqlx::query_scalar(
        "UPDATE targets SET previous_secret = secret, secret = $2,
             previous_secret_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 RETURNING previous_secret_expires_at",
    )
    .bind(target)
    .bind(secret)
    .bind(overlap.as_secs_f64())
    .fetch_one(conn)
    .await?;
    Ok(expires)
}
