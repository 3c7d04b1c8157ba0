//! API tokens and what they may do. A token is `sy_` and 64 hex digits of randomness; only its
//! SHA-256 is stored, with a name, a [`Scope`] and optionally the buses it is limited to.
//! `SWITCHYARD_ADMIN_TOKEN`, when set, is accepted as well (an admin of every bus; never
//! stored). A revoked token is refused from the next request on, in every process (tokens are
//! looked up on each request, not cached), and the UI sessions it opened end with it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Action, Actor};
use crate::domain::fields::{Fields, check_text};
use crate::domain::{BusName, FieldError, ValidationErrors};
use crate::metrics::Metrics;
use crate::store::locks::Lock;
use crate::store::tokens::TokenRow;
use crate::store::{self, StoreError};
use crate::throttle::AuthThrottle;

pub const TOKEN_PREFIX: &str = "sy_";

/// The name the configured admin token acts under (in the audit log, say).
pub const CONFIGURED_ADMIN: &str = "SWITCHYARD_ADMIN_TOKEN";

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh random token.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

/// What a token may do: `admin` everything; `publish` post events; `read` read (GET) and test
/// patterns. Neither of the last two implies the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Publish,
    Read,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Admin, Scope::Publish, Scope::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Publish => "publish",
            Scope::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The command line's reading of `--scope`.
    pub fn parse_arg(text: &str) -> Result<Scope, String> {
        Scope::parse(text)
            .ok_or_else(|| format!("{text:?} is not a scope: use admin, publish or read"))
    }
}

/// Who is asking: the token that authenticated the request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The stored token; `None` for the configured admin token.
    pub token_id: Option<Uuid>,
    pub name: String,
    pub scope: Scope,
    /// The only buses this token may use; `None`: every bus.
    pub buses: Option<Vec<String>>,
    /// The token's SHA-256 (a UI session remembers it, so it ends when the token does).
    pub token_sha256: [u8; 32],
}

impl Principal {
    /// Whether this token's scope covers `needed`.
    pub fn may(&self, needed: Scope) -> bool {
        self.scope == Scope::Admin || self.scope == needed
    }

    /// Whether this token may act on `bus`.
    pub fn may_use_bus(&self, bus: &str) -> bool {
        self.buses
            .as_ref()
            .is_none_or(|buses| buses.iter().any(|b| b == bus))
    }

    fn from_row(row: TokenRow, token_sha256: [u8; 32]) -> Result<Principal, StoreError> {
        let scope = Scope::parse(&row.scope)
            .ok_or_else(|| StoreError::Corrupt(format!("token scope {:?}", row.scope)))?;
        Ok(Principal {
            token_id: Some(row.id),
            name: row.name,
            scope,
            buses: row.buses,
            token_sha256,
        })
    }
}

/// A token to create, checked.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub scope: Scope,
    pub buses: Option<Vec<BusName>>,
}

/// Longest token name.
pub const MAX_NAME: usize = 200;

impl NewToken {
    /// A token from its REST body: `name`, `scope`, optional `buses`; every refused field named.
    pub fn parse(text: &str) -> Result<NewToken, ValidationErrors> {
        let mut errors = Vec::new();
        let token = Fields::parse(text, "", &mut errors).and_then(|mut fields| {
            let name = fields.take_string("name", &mut errors);
            if name.is_none() && !fields.had("name") {
                errors.push(FieldError::new("/name", "is required"));
            }
            let scope = fields.take_string("scope", &mut errors);
            if scope.is_none() && !fields.had("scope") {
                errors.push(FieldError::new(
                    "/scope",
                    "is required: admin, publish or read",
                ));
            }
            let buses = match fields.take("buses") {
                Some(raw) => match serde_json::from_str::<Vec<String>>(raw.get()) {
                    Ok(buses) => Some(buses),
                    Err(_) => {
                        errors.push(FieldError::new("/buses", "must be an array of bus names"));
                        return None;
                    }
                },
                None => None,
            };
            fields.refuse_unknown(&mut errors);
            let checked = NewToken::check(name?, scope?.as_str(), buses);
            checked.map_err(|e| errors.extend(e.0)).ok()
        });
        ValidationErrors::finish(token, errors, "token")
    }

    /// A token from its parts (the command line's flags, a parsed body), each checked.
    pub fn check(
        name: String,
        scope: &str,
        buses: Option<Vec<String>>,
    ) -> Result<NewToken, ValidationErrors> {
        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(FieldError::new("/name", "must not be empty"));
        } else if let Err(why) = check_text(&name, MAX_NAME) {
            errors.push(FieldError::new("/name", why));
        }
        let scope = Scope::parse(scope);
        if scope.is_none() {
            errors.push(FieldError::new("/scope", "must be admin, publish or read"));
        }
        let buses = match buses {
            Some(buses) if buses.is_empty() => {
                errors.push(FieldError::new(
                    "/buses",
                    "must name at least one bus; leave it out for every bus",
                ));
                None
            }
            Some(buses) => {
                let mut parsed = Vec::with_capacity(buses.len());
                for (i, bus) in buses.iter().enumerate() {
                    match BusName::parse(bus) {
                        Ok(bus) if !parsed.contains(&bus) => parsed.push(bus),
                        Ok(_) => {
                            errors.push(FieldError::new(format!("/buses/{i}"), "is named twice"))
                        }
                        Err(e) => errors.push(FieldError::new(format!("/buses/{i}"), e.0)),
                    }
                }
                Some(parsed)
            }
            None => None,
        };
        let token = scope.map(|scope| NewToken { name, scope, buses });
        ValidationErrors::finish(token, errors, "token")
    }
}

pub struct Auth {
    pool: PgPool,
    admin_sha256: Option<[u8; 32]>,
    throttle: AuthThrottle,
    metrics: Arc<Metrics>,
}

/// What a client's token gets it.
#[derive(Debug)]
pub enum Verdict {
    Accepted(Principal),
    /// Not a valid token (counted against the client's address).
    Refused,
    /// Too many wrong tokens from this address: try again after this long.
    Throttled(Duration),
}

impl Auth {
    /// Tokens checked against the database and `admin_token`; no throttling.
    pub fn new(pool: PgPool, admin_token: Option<&str>) -> Auth {
        Auth {
            pool,
            admin_sha256: admin_token.map(sha256),
            throttle: AuthThrottle::new(0),
            metrics: Arc::default(),
        }
    }

    /// Throttles addresses after `failures_per_minute` wrong tokens (0: never), counting into
    /// `metrics`.
    pub fn throttled(self, failures_per_minute: u32, metrics: Arc<Metrics>) -> Auth {
        Auth {
            throttle: AuthThrottle::new(failures_per_minute),
            metrics,
            ..self
        }
    }

    /// Who presents `token` from `address`, unless the token is wrong or the address is
    /// throttled. Every route and the UI's sign-in come through here.
    pub async fn verdict(
        &self,
        address: Option<IpAddr>,
        token: &str,
    ) -> Result<Verdict, StoreError> {
        if let Some(address) = address
            && let Err(wait) = self.throttle.check(address)
        {
            self.metrics.auth_throttled.inc();
            return Ok(Verdict::Throttled(wait));
        }
        match self.authenticate(token).await? {
            Some(principal) => Ok(Verdict::Accepted(principal)),
            None => {
                self.metrics.auth_failures.inc();
                if let Some(address) = address {
                    self.throttle.failed(address);
                }
                Ok(Verdict::Refused)
            }
        }
    }

    /// Who `token` is, if it is the configured admin token or a stored token not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        self.by_digest(sha256(token)).await
    }

    /// Like [`Auth::authenticate`], from the token's SHA-256. Digests are compared, so the
    /// comparison's timing says nothing about the token.
    pub async fn by_digest(&self, digest: [u8; 32]) -> Result<Option<Principal>, StoreError> {
        if self.admin_sha256 == Some(digest) {
            return Ok(Some(Principal {
                token_id: None,
                name: CONFIGURED_ADMIN.to_owned(),
                scope: Scope::Admin,
                buses: None,
                token_sha256: digest,
            }));
        }
        let mut conn = self.pool.acquire().await?;
        match store::tokens::find_live(&mut conn, &digest).await? {
            Some(row) => Ok(Some(Principal::from_row(row, digest)?)),
            None => Ok(None),
        }
    }
}

/// Creates and stores a token; returns its row and the token (the only time it is visible).
pub async fn create_token(
    conn: &mut store::PgConnection,
    token: &NewToken,
) -> Result<(TokenRow, String), StoreError> {
    let secret = generate_token();
    let buses: Option<Vec<&str>> = token
        .buses
        .as_ref()
        .map(|buses| buses.iter().map(BusName::as_str).collect());
    let row = store::tokens::insert(
        conn,
        &token.name,
        token.scope.as_str(),
        buses.as_deref(),
        &sha256(&secret),
    )
    .await?;
    Ok((row, secret))
}

/// Creates a token and records it in the audit log under `actor`, in one transaction. The API,
/// the UI and `switchyard token create` all create tokens through here.
pub async fn issue_token(
    pool: &PgPool,
    actor: &Actor,
    token: &NewToken,
) -> Result<(TokenRow, String), StoreError> {
    let mut tx = pool.begin().await?;
    let (row, secret) = create_token(&mut tx, token).await?;
    let detail = serde_json::json!({ "name": row.name, "scope": row.scope, "buses": row.buses });
    let resource = format!("tokens/{}", row.id);
    audit::record(&mut tx, actor, Action::TokenCreate, &resource, detail).await?;
    tx.commit().await?;
    Ok((row, secret))
}

/// Revokes a token (ending its UI sessions) and records it, in one transaction. `None`: no
/// such token.
pub async fn revoke_token(
    pool: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<Option<TokenRow>, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(row) = store::tokens::revoke(&mut tx, id).await? else {
        return Ok(None);
    };
    let detail = serde_json::json!({ "name": row.name });
    audit::record(
        &mut tx,
        actor,
        Action::TokenRevoke,
        &format!("tokens/{id}"),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// At first start with no admin token configured and none stored, makes one. Returns it so the
/// caller can print it once. Serialised by an advisory lock so two first starts make one token.
pub async fn ensure_first_token(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let mut tx = pool.begin().await?;
    store::locks::hold(&mut tx, Lock::FirstToken).await?;
    if store::tokens::count(&mut tx).await? > 0 {
        return Ok(None);
    }
    let first = NewToken {
        name: "admin (generated at first start)".into(),
        scope: Scope::Admin,
        buses: None,
    };
    let (_, token) = create_token(&mut tx, &first).await?;
    tx.commit().await?;
    Ok(Some(token))
}
