//! API tokens and what they may do. A token is `sy_` and 64 hex digits of randomness; only its
//! SHA-256 is stored, with a name, a [`Scope`] and optionally the buses it is limited to. A token
//! may instead be an AWS access key pair (for EventBridge's own API, signed with SigV4): the
//! same name, scope and buses, its secret sealed ([`crate::secrets`]) since a signature is
//! checked with the secret itself.
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
use crate::secrets::{Sealer, SecretError};
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

/// What a token is: a bearer token, or an AWS access key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenKind {
    #[default]
    Bearer,
    AwsAccessKey,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Bearer => "bearer",
            TokenKind::AwsAccessKey => "aws_access_key",
        }
    }

    pub fn parse(text: &str) -> Option<TokenKind> {
        [TokenKind::Bearer, TokenKind::AwsAccessKey]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A token to create, checked.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub scope: Scope,
    pub buses: Option<Vec<BusName>>,
    pub kind: TokenKind,
}

/// What a created token's holder is given, once.
#[derive(Debug, Clone)]
pub enum Issued {
    Bearer(String),
    AccessKey { id: String, secret: String },
}

/// The prefix of the access key ids Switchyard issues (AWS's own start `AKIA`).
pub const ACCESS_KEY_PREFIX: &str = "AKSY";

/// A fresh access key pair: an id of 20 upper-case letters and digits, a secret of 40
/// characters (AWS's shapes).
pub fn generate_access_key() -> (String, String) {
    use base64::Engine;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut id_bytes);
    let id: String = id_bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    let mut secret = [0u8; 30];
    rand::rng().fill_bytes(&mut secret);
    (
        format!("{ACCESS_KEY_PREFIX}{id}"),
        base64::engine::general_purpose::STANDARD.encode(secret),
    )
}

/// Longest token name.
pub const MAX_NAME: usize = 200;

impl NewToken {
    /// A token from its REST body: `name`, `scope`, optional `buses` and `kind`; every refused
    /// field named.
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
            let kind = match fields.take_string("kind", &mut errors) {
                Some(text) => match TokenKind::parse(&text) {
                    Some(kind) => kind,
                    None => {
                        errors.push(FieldError::new(
                            "/kind",
                            format!("must be \"bearer\" or \"aws_access_key\", not {text:?}"),
                        ));
                        return None;
                    }
                },
                None if fields.had("kind") => return None,
                None => TokenKind::Bearer,
            };
            fields.refuse_unknown(&mut errors);
            let checked = NewToken::check(name?, scope?.as_str(), buses, kind);
            checked.map_err(|e| errors.extend(e.0)).ok()
        });
        ValidationErrors::finish(token, errors, "token")
    }

    /// A token from its parts (the command line's flags, a parsed body), each checked.
    pub fn check(
        name: String,
        scope: &str,
        buses: Option<Vec<String>>,
        kind: TokenKind,
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
        let token = scope.map(|scope| NewToken {
            name,
            scope,
            buses,
            kind,
        });
        ValidationErrors::finish(token, errors, "token")
    }
}

pub struct Auth {
    pool: PgPool,
    admin_sha256: Option<[u8; 32]>,
    throttle: AuthThrottle,
    metrics: Arc<Metrics>,
    sealer: Option<Arc<Sealer>>,
}

/// What an access key id gets a SigV4 request.
#[derive(Debug)]
pub enum KeyVerdict {
    /// A live key: who it is and the secret to check the signature with.
    Found(Principal, String),
    /// No such key, or revoked (counted against the client's address).
    Unknown,
    Throttled(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
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
            sealer: None,
        }
    }

    /// Opens access keys' secrets with `sealer` (without it, every access key is unknown).
    pub fn with_sealer(self, sealer: Arc<Sealer>) -> Auth {
        Auth {
            sealer: Some(sealer),
            ..self
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
                self.failed(address);
                Ok(Verdict::Refused)
            }
        }
    }

    /// Counts a failed authentication against `address` (a wrong token, an unknown access key,
    /// a bad signature).
    pub fn failed(&self, address: Option<IpAddr>) {
        self.metrics.auth_failures.inc();
        if let Some(address) = address {
            self.throttle.failed(address);
        }
    }

    /// Who holds the access key `access_key_id`, with its secret, unless the key is unknown or
    /// revoked or the address is throttled. The caller checks the signature, and calls
    /// [`Auth::failed`] when it is wrong.
    pub async fn access_key(
        &self,
        address: Option<IpAddr>,
        access_key_id: &str,
    ) -> Result<KeyVerdict, KeyError> {
        if let Some(address) = address
            && let Err(wait) = self.throttle.check(address)
        {
            self.metrics.auth_throttled.inc();
            return Ok(KeyVerdict::Throttled(wait));
        }
        let found = match &self.sealer {
            Some(sealer) if is_access_key_id(access_key_id) => {
                let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
                store::tokens::find_access_key(&mut conn, access_key_id)
                    .await
                    .map_err(StoreError::from)?
                    .map(|(row, sealed)| (sealer, row, sealed))
            }
            _ => None,
        };
        let Some((sealer, row, sealed)) = found else {
            self.failed(address);
            return Ok(KeyVerdict::Unknown);
        };
        let secret = sealer.open(&sealed, access_key_id)?;
        let secret = String::from_utf8(secret).map_err(|_| SecretError::Damaged)?;
        let digest = sha256(access_key_id);
        Ok(KeyVerdict::Found(Principal::from_row(row, digest)?, secret))
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

/// Whether `text` could be an access key id (checked before it reaches the database).
fn is_access_key_id(text: &str) -> bool {
    (16..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Creates and stores a token; returns its row and what its holder is given (the only time it
/// is visible). An access key's secret is sealed with `sealer`.
pub async fn create_token(
    conn: &mut store::PgConnection,
    sealer: &Sealer,
    token: &NewToken,
) -> Result<(TokenRow, Issued), StoreError> {
    let buses: Option<Vec<&str>> = token
        .buses
        .as_ref()
        .map(|buses| buses.iter().map(BusName::as_str).collect());
    let (digest, issued, sealed) = match token.kind {
        TokenKind::Bearer => {
            let secret = generate_token();
            (sha256(&secret), Issued::Bearer(secret), None)
        }
        TokenKind::AwsAccessKey => {
            let (id, secret) = generate_access_key();
            let sealed = sealer.seal(secret.as_bytes(), &id);
            (
                sha256(&id),
                Issued::AccessKey {
                    id: id.clone(),
                    secret,
                },
                Some((id, sealed)),
            )
        }
    };
    let access_key = sealed
        .as_ref()
        .map(|(id, sealed)| store::tokens::AccessKey {
            id,
            secret_sealed: sealed,
        });
    let row = store::tokens::insert(
        conn,
        &token.name,
        token.scope.as_str(),
        buses.as_deref(),
        &digest,
        access_key,
    )
    .await?;
    Ok((row, issued))
}

/// Creates a token and records it in the audit log under `actor`, in one transaction. The API,
/// the UI and `switchyard token create` all create tokens through here.
pub async fn issue_token(
    pool: &PgPool,
    sealer: &Sealer,
    actor: &Actor,
    token: &NewToken,
) -> Result<(TokenRow, Issued), StoreError> {
    let mut tx = pool.begin().await?;
    let (row, secret) = create_token(&mut tx, sealer, token).await?;
    let detail = serde_json::json!({
        "name": row.name,
        "scope": row.scope,
        "buses": row.buses,
        "kind": token.kind.as_str(),
        "access_key_id": row.access_key_id,
    });
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
pub async fn ensure_first_token(
    pool: &PgPool,
    sealer: &Sealer,
) -> Result<Option<String>, StoreError> {
    let mut tx = pool.begin().await?;
    store::locks::hold(&mut tx, Lock::FirstToken).await?;
    if store::tokens::count(&mut tx).await? > 0 {
        return Ok(None);
    }
    let first = NewToken {
        name: "admin (generated at first start)".into(),
        scope: Scope::Admin,
        buses: None,
        kind: TokenKind::Bearer,
    };
    let (_, issued) = create_token(&mut tx, sealer, &first).await?;
    tx.commit().await?;
    match issued {
        Issued::Bearer(token) => Ok(Some(token)),
        Issued::AccessKey { .. } => Err(StoreError::Corrupt(
            "the first token was made as an access key".to_owned(),
        )),
    }
}
