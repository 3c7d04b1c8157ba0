//! The audit log: who (a token's name and id, or a command) changed what, on which resource,
//! when. Each entry is written in the transaction of the change it records, so a change is never
//! committed without its entry, nor an entry without its change. Reads write nothing; refused
//! requests and changes that changed nothing (a redrive that found no dead letter) write nothing.
//! Signing in to the UI is recorded too (`session.sign-in`): it is how a person starts to act.

use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::auth::Principal;
use crate::store::dead_letters::{self, Selection};
use crate::store::{self, PgConnection};

/// What was done. The names are the API's (`GET /v1/audit?action=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    BusPut,
    BusDelete,
    RulePut,
    RuleDelete,
    ArchivePut,
    ArchiveDelete,
    SchemaTypePut,
    SchemaTypeDelete,
    SchemaRegister,
    SchemaDraftDiscard,
    ReplayStart,
    ReplayCancel,
    TargetEnable,
    TargetRotateSecret,
    DeadLetterRedrive,
    DeadLetterDiscard,
    TokenCreate,
    TokenRevoke,
    SessionSignIn,
    ConnectionPut,
    ConnectionDelete,
    DestinationPut,
    DestinationDelete,
}

impl Action {
    pub const ALL: [Action; 23] = [
        Action::BusPut,
        Action::BusDelete,
        Action::RulePut,
        Action::RuleDelete,
        Action::ArchivePut,
        Action::ArchiveDelete,
        Action::SchemaTypePut,
        Action::SchemaTypeDelete,
        Action::SchemaRegister,
        Action::SchemaDraftDiscard,
        Action::ReplayStart,
        Action::ReplayCancel,
        Action::TargetEnable,
        Action::TargetRotateSecret,
        Action::DeadLetterRedrive,
        Action::DeadLetterDiscard,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::SessionSignIn,
        Action::ConnectionPut,
        Action::ConnectionDelete,
        Action::DestinationPut,
        Action::DestinationDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::BusPut => "bus.put",
            Action::BusDelete => "bus.delete",
            Action::RulePut => "rule.put",
            Action::RuleDelete => "rule.delete",
            Action::ArchivePut => "archive.put",
            Action::ArchiveDelete => "archive.delete",
            Action::SchemaTypePut => "schema.type-put",
            Action::SchemaTypeDelete => "schema.type-delete",
            Action::SchemaRegister => "schema.register",
            Action::SchemaDraftDiscard => "schema.draft-discard",
            Action::ReplayStart => "replay.start",
            Action::ReplayCancel => "replay.cancel",
            Action::TargetEnable => "target.enable",
            Action::TargetRotateSecret => "target.rotate-secret",
            Action::DeadLetterRedrive => "dead-letter.redrive",
            Action::DeadLetterDiscard => "dead-letter.discard",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::SessionSignIn => "session.sign-in",
            Action::ConnectionPut => "connection.put",
            Action::ConnectionDelete => "connection.delete",
            Action::DestinationPut => "api-destination.put",
            Action::DestinationDelete => "api-destination.delete",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Who acted: a token (its name and id; no id for the configured admin token) or a command.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub token_id: Option<Uuid>,
}

impl Actor {
    pub fn of(principal: &Principal) -> Actor {
        Actor {
            name: principal.name.clone(),
            token_id: principal.token_id,
        }
    }

    /// A command run on the database's host (`switchyard rules apply`, say).
    pub fn command(command: &str) -> Actor {
        Actor {
            name: format!("switchyard {command}"),
            token_id: None,
        }
    }
}

/// Appends an entry, in the caller's transaction. `detail` is `Value::Null` when there is none.
pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: Action,
    resource: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    let detail = (!detail.is_null()).then(|| detail.to_string());
    store::audit::insert(
        conn,
        &actor.name,
        actor.token_id,
        action.as_str(),
        resource,
        detail.as_deref(),
    )
    .await
}

/// The resource path of a bus, a rule, a target.
pub fn connection_resource(name: &str) -> String {
    format!("connections/{name}")
}

pub fn destination_resource(name: &str) -> String {
    format!("api-destinations/{name}")
}

pub fn bus_resource(bus: &str) -> String {
    format!("buses/{bus}")
}

pub fn rule_resource(bus: &str, rule: &str) -> String {
    format!("buses/{bus}/rules/{rule}")
}

/// An event type of a bus's schema registry.
pub fn schema_resource(bus: &str, source: &str, detail_type: &str) -> String {
    format!("buses/{bus}/schemas/{source}/{detail_type}")
}

pub fn replay_resource(replay: &str) -> String {
    format!("replays/{replay}")
}

pub fn archive_resource(bus: &str, archive: &str) -> String {
    format!("buses/{bus}/archives/{archive}")
}

pub fn target_resource(bus: &str, rule: &str, target: &str) -> String {
    format!("buses/{bus}/rules/{rule}/targets/{target}")
}

/// Redrives dead letters and records it (when any was dead), in one transaction. The API and
/// the UI both redrive through here.
pub async fn redrive(
    pool: &PgPool,
    actor: &Actor,
    selection: &Selection,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let n = dead_letters::redrive(&mut tx, selection).await?;
    if n > 0 {
        let (resource, mut detail) = selection_detail(selection);
        detail["count"] = n.into();
        record(&mut tx, actor, Action::DeadLetterRedrive, &resource, detail).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Discards dead letters and records it (when any was dead), in one transaction.
pub async fn discard(
    pool: &PgPool,
    actor: &Actor,
    selection: &Selection,
    reason: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let n = dead_letters::discard(&mut tx, selection, reason).await?;
    if n > 0 {
        let (resource, mut detail) = selection_detail(selection);
        detail["count"] = n.into();
        detail["reason"] = reason.into();
        record(&mut tx, actor, Action::DeadLetterDiscard, &resource, detail).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// `dead-letters/{id}` for one, `dead-letters` for several; the ids or the filter as detail.
fn selection_detail(selection: &Selection) -> (String, Value) {
    match selection {
        Selection::Ids(ids) if ids.len() == 1 => (format!("dead-letters/{}", ids[0]), json!({})),
        Selection::Ids(ids) => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            ("dead-letters".into(), json!({ "ids": ids }))
        }
        Selection::Matching(filter) => {
            let time = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
            let filter = json!({
                "bus": filter.bus,
                "rule": filter.rule,
                "target_id": filter.target_id,
                "dead_reason": filter.dead_reason,
                "since": time(filter.since),
                "until": time(filter.until),
            });
            ("dead-letters".into(), json!({ "filter": filter }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_read_back() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("rule.create"), None);
    }
}
