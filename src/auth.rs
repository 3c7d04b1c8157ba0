//! API tokens. A token is `sy_` and 64 hex digits of randomness; only its SHA-256 is stored.
//! `SWITCHYARD_ADMIN_TOKEN`, when set, is accepted as well (it is never stored).

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::store::locks::Lock;
use crate::store::{self, StoreError};

pub const TOKEN_PREFIX: &str = "sy_";

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

pub struct Auth {
    pool: PgPool,
    admin_sha256: Option<[u8; 32]>,
}

impl Auth {
    pub fn new(pool: PgPool, admin_token: Option<&str>) -> Auth {
        Auth {
            pool,
            admin_sha256: admin_token.map(sha256),
        }
    }

    /// Whether `token` is the configured admin token or a stored one. Digests are compared, so
    /// the comparison's timing says nothing about the token.
    pub async fn accepts(&self, token: &str) -> Result<bool, StoreError> {
        let digest = sha256(token);
        if self.admin_sha256 == Some(digest) {
            return Ok(true);
        }
        let mut conn = self.pool.acquire().await?;
        Ok(store::tokens::exists(&mut conn, &digest).await?)
    }
}

/// Creates and stores a token; returns it (the only time it is visible).
pub async fn create_token(pool: &PgPool, name: &str) -> Result<String, StoreError> {
    let token = generate_token();
    let mut conn = pool.acquire().await?;
    store::tokens::insert(&mut conn, name, &sha256(&token)).await?;
    Ok(token)
}

/// At first start with no admin token configured and none stored, makes one. Returns it so the
/// caller can print it once. Serialised by an advisory lock so two first starts make one token.
pub async fn ensure_first_token(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let mut tx = pool.begin().await?;
    store::locks::hold(&mut tx, Lock::FirstToken).await?;
    if store::tokens::count(&mut tx).await? > 0 {
        return Ok(None);
    }
    let token = generate_token();
    store::tokens::insert(&mut tx, "admin (generated at first start)", &sha256(&token)).await?;
    tx.commit().await?;
    Ok(Some(token))
}
