//! Rules as code: the `.json`, `.yaml` and `.yml` files of a folder (not its subfolders) as the
//! desired state. Each file holds one rule or a list of rules, each with `name`, an optional
//! `bus` (default `default`) and the same fields as the REST API's rule body, checked by the same
//! validation. `apply` makes the database match in one transaction: missing buses and rules are
//! created, changed rules replaced, and with `prune` rules that no file names are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::json;
use serde_json::value::RawValue;
use sqlx::PgPool;

use crate::audit::{self, Action, Actor};
use crate::delivery::signing;
use crate::domain::{self, BusName, Rule, RuleName};
use crate::store::{self, StoreError};

/// One rule read from a file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Where it came from: the file, and the index when the file holds a list.
    pub origin: String,
    pub bus: BusName,
    pub name: RuleName,
    pub rule: Rule,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the rule files are not valid:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RulesError {
    fn from(error: sqlx::Error) -> Self {
        RulesError::Store(error.into())
    }
}

/// Reads and validates every rule file in `dir`; reports every problem of every file at once.
pub fn load_dir(dir: &Path) -> Result<Vec<RuleFile>, RulesError> {
    let read_err = |source| RulesError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("json" | "yaml" | "yml")
                )
        })
        .collect();
    paths.sort();
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| RulesError::Read {
            path: path.clone(),
            source,
        })?;
        match documents(&path, &text) {
            Ok(docs) => {
                for (prefix, json) in docs {
                    let origin = format!(
                        "{}{}",
                        path.display(),
                        prefix
                            .as_deref()
                            .map(|p| format!(" #{p}"))
                            .unwrap_or_default()
                    );
                    match domain::parse_rule_document(&json) {
                        Ok((bus, name, rule)) => rules.push(RuleFile {
                            origin,
                            bus,
                            name,
                            rule,
                        }),
                        Err(errors) => {
                            problems.extend(errors.0.into_iter().map(|e| {
                                format!("{origin}: {}: {}", display(&e.pointer), e.detail)
                            }))
                        }
                    }
                }
            }
            Err(problem) => problems.push(format!("{}: {problem}", path.display())),
        }
    }
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    for file in &rules {
        let key = (file.bus.to_string(), file.name.to_string());
        if let Some(first) = seen.insert(key, &file.origin) {
            problems.push(format!(
                "{}: rule {}/{} is also defined in {first}",
                file.origin, file.bus, file.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(RulesError::Invalid(problems))
    }
}

fn display(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(the rule)"
    } else {
        pointer
    }
}

/// The rule documents of one file as JSON text, each with its list index if the file is a list.
fn documents(path: &Path, text: &str) -> Result<Vec<(Option<String>, String)>, String> {
    let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
    if is_json {
        // JSON keeps the numbers of patterns as written.
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            let items: Vec<Box<RawValue>> =
                serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
            return Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, raw)| (Some(i.to_string()), raw.get().to_owned()))
                .collect());
        }
        serde_json::from_str::<&RawValue>(text).map_err(|e| format!("not valid JSON: {e}"))?;
        return Ok(vec![(None, text.to_owned())]);
    }
    let value: serde_json::Value =
        serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Some(i.to_string()), v.to_string()))
            .collect(),
        other => vec![(None, other.to_string())],
    })
}

/// One step of making the database match the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateBus(String),
    Create { bus: String, name: String },
    Update { bus: String, name: String },
    Delete { bus: String, name: String },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateBus(bus) => write!(f, "create bus {bus}"),
            Change::Create { bus, name } => write!(f, "create rule {bus}/{name}"),
            Change::Update { bus, name } => write!(f, "update rule {bus}/{name}"),
            Change::Delete { bus, name } => write!(f, "delete rule {bus}/{name}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unchanged: usize,
}

/// Makes the database match `files` (or with `dry_run` only says how), in one transaction,
/// recording each change in the audit log under `actor`.
pub async fn apply(
    pool: &PgPool,
    actor: &Actor,
    files: &[RuleFile],
    prune: bool,
    dry_run: bool,
) -> Result<Plan, RulesError> {
    let mut tx = pool.begin().await?;
    store::locks::hold(&mut tx, store::locks::Lock::RulesApply).await?;
    let buses: BTreeSet<String> = store::buses::list(&mut tx)
        .await?
        .into_iter()
        .map(|b| b.name)
        .collect();
    // Destination targets take their endpoint from the destination; connections must exist.
    let mut resolved = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        let mut rule = file.rule.clone();
        for error in crate::connections::resolve_targets(&mut tx, &mut rule).await? {
            problems.push(format!(
                "{}: {}: {}",
                file.origin, error.pointer, error.detail
            ));
        }
        resolved.push(RuleFile {
            rule,
            ..file.clone()
        });
    }
    if !problems.is_empty() {
        return Err(RulesError::Invalid(problems));
    }
    let files = resolved.as_slice();
    let current: BTreeMap<(String, String), Rule> = store::rules::list_all(&mut tx)
        .await?
        .into_iter()
        .map(|r| ((r.bus, r.name), r.rule))
        .collect();
    let mut plan = Plan::default();
    let mut new_buses = BTreeSet::new();
    for file in files {
        let bus = file.bus.to_string();
        if !buses.contains(&bus) && new_buses.insert(bus.clone()) {
            plan.changes.push(Change::CreateBus(bus.clone()));
        }
        let name = file.name.to_string();
        match current.get(&(bus.clone(), name.clone())) {
            None => plan.changes.push(Change::Create { bus, name }),
            Some(rule) if *rule != file.rule => plan.changes.push(Change::Update { bus, name }),
            Some(_) => plan.unchanged += 1,
        }
    }
    if prune {
        let wanted: BTreeSet<(String, String)> = files
            .iter()
            .map(|f| (f.bus.to_string(), f.name.to_string()))
            .collect();
        for (bus, name) in current.keys().filter(|k| !wanted.contains(*k)) {
            plan.changes.push(Change::Delete {
                bus: bus.clone(),
                name: name.clone(),
            });
        }
    }
    if dry_run {
        return Ok(plan);
    }
    let by_key: BTreeMap<(String, String), &RuleFile> = files
        .iter()
        .map(|f| ((f.bus.to_string(), f.name.to_string()), f))
        .collect();
    for change in &plan.changes {
        match change {
            Change::CreateBus(bus) => {
                store::buses::ensure(&mut tx, bus).await?;
                let detail = json!({ "created": true, "from": "rule files" });
                let resource = audit::bus_resource(bus);
                audit::record(&mut tx, actor, Action::BusPut, &resource, detail).await?;
            }
            Change::Create { bus, name } | Change::Update { bus, name } => {
                if let Some(file) = by_key.get(&(bus.clone(), name.clone())) {
                    let secrets = signing::generate_secrets(file.rule.targets.len());
                    store::rules::put(&mut tx, bus, name, &file.rule, &secrets).await?;
                    let created = matches!(change, Change::Create { .. });
                    let detail = json!({ "created": created, "state": file.rule.state.as_str(), "from": "rule files" });
                    let resource = audit::rule_resource(bus, name);
                    audit::record(&mut tx, actor, Action::RulePut, &resource, detail).await?;
                }
            }
            Change::Delete { bus, name } => {
                store::rules::delete(&mut tx, bus, name).await?;
                let detail = json!({ "from": "rule files" });
                let resource = audit::rule_resource(bus, name);
                audit::record(&mut tx, actor, Action::RuleDelete, &resource, detail).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(plan)
}
