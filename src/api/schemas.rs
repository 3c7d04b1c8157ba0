//! `/v1/buses/{bus}/schemas…`: the schema registry. Event types (source and detail-type) with
//! their compatibility mode; numbered, immutable versions registered after the compatibility
//! check (structural, and the type's recent stored events validated against the new version);
//! the check alone; a schema inferred from stored events; and the drafts schema discovery keeps
//! ([`crate::discovery`]), accepted (registered like any version) or discarded.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::buses::bus_not_found;
use super::extract::{ApiPath, ApiQuery, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::domain::EventId;
use crate::domain::fields::{FieldError, Fields, check_text};
use crate::schema::compat::{self, Reason};
use crate::schema::infer::Inferrer;
use crate::schema::{Compatibility, Schema, Violation, detail_of};
use crate::state::AppState;
use crate::store::{self, schemas::PutType, schemas::TypeRow, schemas::VersionRow};

/// Stored events a new version is checked against unless the request says otherwise.
pub(crate) const DEFAULT_SAMPLE: i64 = 1000;
const MAX_SAMPLE: i64 = 10_000;
/// Events shown of those a new version would refuse.
const EXAMPLES: usize = 5;
/// `source` and `detail-type` are at most this long, as in events.
const MAX_NAME: usize = 256;
const MAX_DESCRIPTION: usize = 512;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/buses/{bus}/schemas", get(list))
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}",
            get(read).put(put).delete(delete),
        )
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/versions",
            post(register),
        )
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/versions/{version}",
            get(read_version),
        )
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/check",
            post(check),
        )
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/infer",
            get(infer),
        )
        .route("/buses/{bus}/schema-drafts", get(list_drafts))
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/draft",
            get(read_draft).delete(discard_draft),
        )
        .route(
            "/buses/{bus}/schemas/{source}/{detail_type}/draft/accept",
            post(accept_draft),
        )
}

#[derive(Serialize)]
struct TypeOut {
    source: String,
    detail_type: String,
    description: String,
    /// Its own mode; `null`: the bus's.
    compatibility: Option<String>,
    /// The mode that applies.
    effective_compatibility: String,
    /// 0 before a version is registered.
    latest_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<TypeRow> for TypeOut {
    fn from(row: TypeRow) -> Self {
        TypeOut {
            source: row.source,
            detail_type: row.detail_type,
            description: row.description,
            compatibility: row.compatibility,
            effective_compatibility: row.effective_compatibility,
            latest_version: row.latest_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize)]
struct VersionOut {
    version: i32,
    schema: Box<RawValue>,
    /// The reasons the compatibility check gave, when it was registered with `force`.
    forced: Option<Box<RawValue>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl TryFrom<VersionRow> for VersionOut {
    type Error = ApiError;

    fn try_from(row: VersionRow) -> Result<Self, ApiError> {
        let raw = |text: String| RawValue::from_string(text).map_err(|e| ApiError::internal(&e));
        Ok(VersionOut {
            version: row.version,
            schema: raw(row.schema)?,
            forced: row.forced.map(raw).transpose()?,
            created_at: row.created_at,
        })
    }
}

/// The event type a path names, its texts checked before they reach the database.
pub(crate) struct TypePath {
    bus: String,
    source: String,
    detail_type: String,
}

impl TypePath {
    pub(crate) fn check(
        bus: String,
        source: String,
        detail_type: String,
    ) -> Result<TypePath, ApiError> {
        for (name, value) in [("source", &source), ("detail_type", &detail_type)] {
            if value.is_empty() {
                return Err(ApiError::parameter(name, "must not be empty"));
            }
            check_text(value, MAX_NAME).map_err(|why| ApiError::parameter(name, why))?;
        }
        Ok(TypePath {
            bus,
            source,
            detail_type,
        })
    }

    fn resource(&self) -> String {
        audit::schema_resource(&self.bus, &self.source, &self.detail_type)
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(format!(
            "bus {:?} has no event type with source {:?} and detail-type {:?}",
            self.bus, self.source, self.detail_type
        ))
    }

    fn no_draft(&self) -> ApiError {
        ApiError::not_found(format!(
            "event type {:?} / {:?} of bus {:?} has no draft",
            self.source, self.detail_type, self.bus
        ))
    }
}

type TypeParams = ApiPath<(String, String, String)>;

async fn list(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(bus_not_found(&bus));
    }
    let types: Vec<TypeOut> = store::schemas::list_types(&mut conn, &bus)
        .await?
        .into_iter()
        .map(TypeOut::from)
        .collect();
    Ok(Json(json!({ "event_types": types })).into_response())
}

async fn read(
    State(state): State<AppState>,
    ApiPath((bus, source, detail_type)): TypeParams,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let mut conn = state.pool.acquire().await?;
    let row = store::schemas::get_type(&mut conn, &path.bus, &path.source, &path.detail_type)
        .await?
        .ok_or_else(|| path.not_found())?;
    let versions = store::schemas::versions(&mut conn, &path.bus, &path.source, &path.detail_type)
        .await?
        .into_iter()
        .map(VersionOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "event_type": TypeOut::from(row), "versions": versions })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeIn {
    #[serde(default)]
    description: String,
    /// `null` or absent: the bus's mode.
    #[serde(default)]
    compatibility: Option<String>,
}

async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, source, detail_type)): TypeParams,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let input: TypeIn = super::extract::parse_body(&body)?;
    let mut errors = Vec::new();
    if let Err(why) = check_text(&input.description, MAX_DESCRIPTION) {
        errors.push(FieldError::new("/description", why));
    }
    let compatibility = input.compatibility.as_deref().map(Compatibility::parse);
    if let Some(None) = compatibility {
        errors.push(FieldError::new(
            "/compatibility",
            format!("must be null or one of {}", Compatibility::choices()),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mode = compatibility.flatten().map(Compatibility::as_str);
    let mut tx = state.pool.begin().await?;
    let put = store::schemas::put_type(
        &mut tx,
        &path.bus,
        &path.source,
        &path.detail_type,
        &input.description,
        mode,
    )
    .await?;
    let status = match put {
        PutType::BusNotFound => return Err(bus_not_found(&path.bus)),
        PutType::Created => StatusCode::CREATED,
        PutType::Updated => StatusCode::OK,
    };
    let detail = json!({ "created": status == StatusCode::CREATED, "compatibility": mode });
    audit::record(
        &mut tx,
        &Actor::of(&principal),
        Action::SchemaTypePut,
        &path.resource(),
        detail,
    )
    .await?;
    let row = store::schemas::get_type(&mut tx, &path.bus, &path.source, &path.detail_type)
        .await?
        .ok_or_else(|| path.not_found())?;
    tx.commit().await?;
    state.snapshots.refresh().await?;
    Ok((status, Json(TypeOut::from(row))).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, source, detail_type)): TypeParams,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let mut tx = state.pool.begin().await?;
    if !store::schemas::delete_type(&mut tx, &path.bus, &path.source, &path.detail_type).await? {
        return Err(path.not_found());
    }
    audit::record(
        &mut tx,
        &Actor::of(&principal),
        Action::SchemaTypeDelete,
        &path.resource(),
        Value::Null,
    )
    .await?;
    tx.commit().await?;
    state.snapshots.refresh().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn read_version(
    State(state): State<AppState>,
    ApiPath((bus, source, detail_type, version)): ApiPath<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let wanted = match version.as_str() {
        "latest" => None,
        number => Some(
            number
                .parse::<i32>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| {
                    ApiError::parameter("version", "must be a version number (1, 2, …) or `latest`")
                })?,
        ),
    };
    let mut conn = state.pool.acquire().await?;
    let versions =
        store::schemas::versions(&mut conn, &path.bus, &path.source, &path.detail_type).await?;
    let found = match wanted {
        None => versions.into_iter().next_back(),
        Some(v) => versions.into_iter().find(|row| row.version == v),
    };
    match found {
        Some(row) => Ok(Json(VersionOut::try_from(row)?).into_response()),
        None => Err(ApiError::not_found(format!(
            "event type {:?} / {:?} of bus {:?} has no version {version}",
            path.source, path.detail_type, path.bus
        ))),
    }
}

#[derive(Deserialize)]
struct RegisterQuery {
    /// Register even when the compatibility check refuses (the reasons are kept with it).
    #[serde(default)]
    force: bool,
    /// How many recent stored events to validate against the new version.
    sample: Option<i64>,
}

/// A request body `{"schema": …}`, its schema read and compiled.
fn schema_body(body: &str) -> Result<Schema, ApiError> {
    let mut errors = Vec::new();
    let schema = Fields::parse(body, "", &mut errors).and_then(|mut fields| {
        let raw = fields.take("schema");
        fields.refuse_unknown(&mut errors);
        match raw {
            Some(raw) => Schema::parse(raw.get(), "/schema")
                .map_err(|error| errors.push(error))
                .ok(),
            None => {
                errors.push(FieldError::new("/schema", "is required"));
                None
            }
        }
    });
    match schema {
        Some(schema) if errors.is_empty() => Ok(schema),
        _ => Err(ApiError::validation(errors)),
    }
}

/// What the stored events say of a new version: how many of the most recent ones it would
/// refuse, how many of those the latest version accepts, and a few of them.
#[derive(Serialize)]
struct Samples {
    checked: usize,
    failed: usize,
    /// Refused by the new version although the latest accepts them: the evidence against
    /// backward compatibility (an event that already broke the latest version says nothing of
    /// the new one).
    newly_refused: usize,
    examples: Vec<SampleFailure>,
}

#[derive(Serialize)]
struct SampleFailure {
    event_id: EventId,
    /// Whether the latest version accepts it.
    accepted_by_latest: bool,
    violations: Vec<Violation>,
}

/// The compatibility check's answer.
#[derive(Serialize)]
pub(crate) struct Report {
    mode: &'static str,
    compatible: bool,
    /// Why not, per earlier version and direction.
    reasons: Vec<Reason>,
    samples: Samples,
}

impl Report {
    pub(crate) fn mode(&self) -> &'static str {
        self.mode
    }

    /// One line for the problem's detail.
    pub(crate) fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.reasons.is_empty() {
            let first = &self.reasons[0].difference;
            parts.push(format!(
                "{} difference(s) break {} compatibility (first: {} at `{}`: {})",
                self.reasons.len(),
                self.mode,
                first.kind,
                first.pointer,
                first.message
            ));
        }
        if self.samples.newly_refused > 0 {
            parts.push(format!(
                "it would refuse {} of the last {} stored events that the latest version accepts",
                self.samples.newly_refused, self.samples.checked
            ));
        }
        parts.join("; ")
    }
}

/// The earlier versions of a type and the mode that applies; `None` when the bus does not
/// exist.
async fn context(
    conn: &mut store::PgConnection,
    path: &TypePath,
) -> Result<Option<(Compatibility, Vec<(i32, Value)>)>, ApiError> {
    let mode =
        match store::schemas::get_type(conn, &path.bus, &path.source, &path.detail_type).await? {
            Some(row) => row.effective_compatibility,
            None => match store::buses::get(conn, &path.bus).await? {
                Some(bus) => bus.schema_compatibility,
                None => return Ok(None),
            },
        };
    let mode = Compatibility::parse(&mode).unwrap_or(Compatibility::Backward);
    let earlier = store::schemas::versions(conn, &path.bus, &path.source, &path.detail_type)
        .await?
        .into_iter()
        .map(|row| {
            serde_json::from_str(&row.schema)
                .map(|value| (row.version, value))
                .map_err(|e| ApiError::internal(&e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((mode, earlier)))
}

/// Checks `schema` against the earlier versions (structurally) and the stored events.
async fn report(
    conn: &mut store::PgConnection,
    path: &TypePath,
    mode: Compatibility,
    earlier: &[(i32, Value)],
    schema: &Schema,
    sample: i64,
) -> Result<Report, ApiError> {
    let compared: Vec<(i32, &Value)> = earlier.iter().map(|(v, s)| (*v, s)).collect();
    let reasons = compat::check(mode, &schema.value, &compared);
    let events =
        store::schemas::recent_events(conn, &path.bus, &path.source, &path.detail_type, sample)
            .await?;
    let latest = match earlier.last() {
        Some((_, value)) => Some(crate::schema::compile(value).map_err(|e| {
            ApiError::internal(&store::StoreError::Corrupt(format!(
                "a stored schema does not compile: {}",
                e.message
            )))
        })?),
        None => None,
    };
    let mut samples = Samples {
        checked: events.len(),
        failed: 0,
        newly_refused: 0,
        examples: Vec::new(),
    };
    for (event_id, body) in events {
        let detail = detail_of(&body);
        let violations = schema.violations(&detail);
        if violations.is_empty() {
            continue;
        }
        samples.failed += 1;
        let accepted_by_latest = latest.as_ref().is_some_and(|l| l.is_valid(&detail));
        samples.newly_refused += usize::from(accepted_by_latest);
        // The evidence first: events the latest version accepts.
        if samples.examples.len() < EXAMPLES {
            samples.examples.push(SampleFailure {
                event_id,
                accepted_by_latest,
                violations,
            });
        } else if accepted_by_latest
            && let Some(weaker) = samples.examples.iter_mut().find(|e| !e.accepted_by_latest)
        {
            *weaker = SampleFailure {
                event_id,
                accepted_by_latest,
                violations,
            };
        }
    }
    // Stored events the latest version accepts and the new one refuses break backward
    // compatibility; before the first version they are only reported.
    let refused_events = mode.backward() && samples.newly_refused > 0;
    let compatible = mode == Compatibility::None || (reasons.is_empty() && !refused_events);
    Ok(Report {
        mode: mode.as_str(),
        compatible,
        reasons,
        samples,
    })
}

fn sample_size(sample: Option<i64>) -> Result<i64, ApiError> {
    super::page_limit(sample, DEFAULT_SAMPLE, MAX_SAMPLE)
        .map_err(|_| ApiError::parameter("sample", format!("must be from 1 to {MAX_SAMPLE}")))
}

async fn check(
    State(state): State<AppState>,
    ApiPath((bus, source, detail_type)): TypeParams,
    ApiQuery(query): ApiQuery<RegisterQuery>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let schema = schema_body(&body)?;
    let sample = sample_size(query.sample)?;
    let mut conn = state.pool.acquire().await?;
    let (mode, earlier) = context(&mut conn, &path)
        .await?
        .ok_or_else(|| bus_not_found(&path.bus))?;
    let report = report(&mut conn, &path, mode, &earlier, &schema, sample).await?;
    Ok(Json(report).into_response())
}

async fn register(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, source, detail_type)): TypeParams,
    ApiQuery(query): ApiQuery<RegisterQuery>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let schema = schema_body(&body)?;
    let sample = sample_size(query.sample)?;
    let actor = Actor::of(&principal);
    let done = register_schema(&state, &actor, &path, schema, query.force, sample, false).await?;
    registration_answer(done)
}

/// What registering a version did.
pub(crate) enum Registration {
    /// The schema is the latest version already: nothing was registered.
    Unchanged(VersionRow),
    /// Not compatible, and not forced.
    Refused(Report),
    Registered {
        version: VersionRow,
        report: Report,
    },
}

/// The API's answer to a registration: 201 with the version and the report, 200 for the
/// latest version again, 409 with the report when it was refused.
fn registration_answer(done: Registration) -> Result<Response, ApiError> {
    match done {
        Registration::Unchanged(row) => Ok(Json(
            json!({ "version": VersionOut::try_from(row)?, "unchanged": true }),
        )
        .into_response()),
        Registration::Refused(report) => {
            let detail = format!(
                "the new version is not {} compatible: {}; pass ?force=true to register it anyway",
                report.mode,
                report.summary()
            );
            let report = serde_json::to_value(&report).map_err(|e| ApiError::internal(&e))?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "incompatible-schema",
                "Incompatible schema",
                detail,
            )
            .with("compatibility", report))
        }
        Registration::Registered { version, report } => Ok((
            StatusCode::CREATED,
            Json(json!({ "version": VersionOut::try_from(version)?, "compatibility": report })),
        )
            .into_response()),
    }
}

/// Registers `schema` as the next version of a type after the compatibility check (refused
/// unless `force`), audited in the same transaction, and answers once this process validates
/// with it: the one way the API and an accepted draft (`from_draft`: the type's draft is removed
/// in that transaction) register a version. `Err` 404 when the bus does not exist.
pub(crate) async fn register_schema(
    state: &AppState,
    actor: &Actor,
    path: &TypePath,
    schema: Schema,
    force: bool,
    sample: i64,
    from_draft: bool,
) -> Result<Registration, ApiError> {
    let mut tx = state.pool.begin().await?;
    if !store::schemas::lock_type(&mut tx, &path.bus, &path.source, &path.detail_type).await? {
        return Err(bus_not_found(&path.bus));
    }
    let (mode, earlier) = context(&mut tx, path)
        .await?
        .ok_or_else(|| bus_not_found(&path.bus))?;
    // The latest version again: nothing new is registered (as Confluent's registry answers).
    if let Some((version, latest)) = earlier.last()
        && *latest == schema.value
    {
        let version = *version;
        let stored = store::schemas::versions(&mut tx, &path.bus, &path.source, &path.detail_type)
            .await?
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| ApiError::not_found("the version was deleted meanwhile"))?;
        if from_draft {
            store::schemas::delete_draft(&mut tx, &path.bus, &path.source, &path.detail_type)
                .await?;
            tx.commit().await?;
        }
        return Ok(Registration::Unchanged(stored));
    }
    let report = report(&mut tx, path, mode, &earlier, &schema, sample).await?;
    if !report.compatible && !force {
        return Ok(Registration::Refused(report));
    }
    let forced = (!report.compatible)
        .then(|| serde_json::to_value(&report))
        .transpose()
        .map_err(|e| ApiError::internal(&e))?;
    let version = store::schemas::add_version(
        &mut tx,
        &path.bus,
        &path.source,
        &path.detail_type,
        &schema.text,
        forced.as_ref(),
    )
    .await?;
    if from_draft {
        store::schemas::delete_draft(&mut tx, &path.bus, &path.source, &path.detail_type).await?;
    }
    let detail =
        json!({ "version": version, "forced": forced.is_some(), "from_draft": from_draft });
    audit::record(
        &mut tx,
        actor,
        Action::SchemaRegister,
        &path.resource(),
        detail,
    )
    .await?;
    tx.commit().await?;
    // Read your writes: this process validates with the new version before it answers.
    state.snapshots.refresh().await?;
    Ok(Registration::Registered {
        version: VersionRow {
            version,
            schema: schema.text,
            forced: forced.map(|f| f.to_string()),
            created_at: OffsetDateTime::now_utc(),
        },
        report,
    })
}

#[derive(Deserialize)]
struct InferQuery {
    sample: Option<i64>,
}

/// A schema inferred from the type's most recent stored events, with how it compares with the
/// latest registered version.
async fn infer(
    State(state): State<AppState>,
    ApiPath((bus, source, detail_type)): TypeParams,
    ApiQuery(query): ApiQuery<InferQuery>,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let sample = sample_size(query.sample)?;
    let mut conn = state.pool.acquire().await?;
    let (mode, earlier) = context(&mut conn, &path)
        .await?
        .ok_or_else(|| bus_not_found(&path.bus))?;
    let events = store::schemas::recent_events(
        &mut conn,
        &path.bus,
        &path.source,
        &path.detail_type,
        sample,
    )
    .await?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!(
            "bus {:?} has no stored events with source {:?} and detail-type {:?} to infer from",
            path.bus, path.source, path.detail_type
        )));
    }
    let mut inferrer = Inferrer::default();
    for (_, body) in &events {
        inferrer.add(&detail_of(body));
    }
    let inferred = inferrer.schema();
    let compared: Vec<(i32, &Value)> = earlier.iter().map(|(v, s)| (*v, s)).collect();
    let reasons = compat::check(mode, &inferred, &compared);
    let latest = earlier.last().map(|(v, _)| *v);
    let unchanged = earlier.last().is_some_and(|(_, s)| *s == inferred);
    Ok(Json(json!({
        "samples": inferrer.samples(),
        "schema": inferred,
        "latest_version": latest,
        "unchanged": unchanged,
        "mode": mode.as_str(),
        "reasons": reasons,
    }))
    .into_response())
}

/// The warnings for a rule of `bus` with this pattern, against the latest schemas of the event
/// types it selects by their exact `detail-type`.
pub(crate) async fn rule_warnings(
    conn: &mut store::PgConnection,
    bus: &str,
    pattern: &crate::pattern::Pattern,
) -> Result<Vec<crate::schema::rules::RuleWarning>, store::StoreError> {
    let Some(detail_types) = pattern.exact_values("detail-type") else {
        return Ok(Vec::new());
    };
    let sources = pattern.exact_values("source");
    let rows =
        store::schemas::latest_of_types(conn, bus, &detail_types, sources.as_deref()).await?;
    let parsed: Vec<(store::schemas::LatestSchema, Value)> = rows
        .into_iter()
        .filter_map(|row| {
            let value = serde_json::from_str(&row.schema).ok()?;
            Some((row, value))
        })
        .collect();
    let types: Vec<crate::schema::rules::TypeSchema<'_>> = parsed
        .iter()
        .map(|(row, value)| crate::schema::rules::TypeSchema {
            source: &row.source,
            detail_type: &row.detail_type,
            version: row.version,
            schema: value,
        })
        .collect();
    Ok(crate::schema::rules::rule_warnings(
        &pattern.field_uses(),
        &types,
    ))
}

#[derive(Serialize)]
struct DraftOut {
    source: String,
    detail_type: String,
    schema: Box<RawValue>,
    /// How many recent events it was inferred from, and how many of them the latest version
    /// refused (all of them when the type has no version).
    samples: i32,
    refused: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl TryFrom<store::schemas::DraftRow> for DraftOut {
    type Error = ApiError;

    fn try_from(row: store::schemas::DraftRow) -> Result<Self, ApiError> {
        Ok(DraftOut {
            schema: RawValue::from_string(row.schema).map_err(|e| ApiError::internal(&e))?,
            source: row.source,
            detail_type: row.detail_type,
            samples: row.samples,
            refused: row.refused,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

async fn list_drafts(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(bus_not_found(&bus));
    }
    let drafts = store::schemas::drafts(&mut conn, &bus)
        .await?
        .into_iter()
        .map(DraftOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "drafts": drafts })).into_response())
}

async fn read_draft(
    State(state): State<AppState>,
    ApiPath((bus, source, detail_type)): TypeParams,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let mut conn = state.pool.acquire().await?;
    let draft = store::schemas::get_draft(&mut conn, &path.bus, &path.source, &path.detail_type)
        .await?
        .ok_or_else(|| path.no_draft())?;
    Ok(Json(DraftOut::try_from(draft)?).into_response())
}

async fn discard_draft(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, source, detail_type)): TypeParams,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    if !discard(&state, &Actor::of(&principal), &path).await? {
        return Err(path.no_draft());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Discards a type's draft (audited); `false` when it had none. (Discovery proposes one again
/// if the shapes it saw are still not accepted by the latest version.)
pub(crate) async fn discard(
    state: &AppState,
    actor: &Actor,
    path: &TypePath,
) -> Result<bool, store::StoreError> {
    let mut tx = state.pool.begin().await?;
    if !store::schemas::delete_draft(&mut tx, &path.bus, &path.source, &path.detail_type).await? {
        return Ok(false);
    }
    audit::record(
        &mut tx,
        actor,
        Action::SchemaDraftDiscard,
        &path.resource(),
        Value::Null,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn accept_draft(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, source, detail_type)): TypeParams,
    ApiQuery(query): ApiQuery<RegisterQuery>,
) -> Result<Response, ApiError> {
    let path = TypePath::check(bus, source, detail_type)?;
    let sample = sample_size(query.sample)?;
    let done = accept(&state, &Actor::of(&principal), &path, query.force, sample).await?;
    registration_answer(done)
}

/// Registers a type's draft as its next version (the draft goes with it), as the API and the UI
/// accept one.
pub(crate) async fn accept(
    state: &AppState,
    actor: &Actor,
    path: &TypePath,
    force: bool,
    sample: i64,
) -> Result<Registration, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let draft = store::schemas::get_draft(&mut conn, &path.bus, &path.source, &path.detail_type)
        .await?
        .ok_or_else(|| path.no_draft())?;
    drop(conn);
    let schema =
        Schema::parse(&draft.schema, "/schema").map_err(|e| ApiError::validation(vec![e]))?;
    register_schema(state, actor, path, schema, force, sample, true).await
}
