//! Secrets at rest: what Switchyard must be able to read back (the secret halves of AWS access
//! keys, which a SigV4 signature is checked with) is sealed with AES-256-GCM (the `aes-gcm`
//! crate, RustCrypto) before it reaches Postgres, and never returned by any API or page.
//!
//! The key comes from `SWITCHYARD_SECRET_KEY` (32 bytes, base64 or 64 hexadecimal digits) or,
//! without it, from `secret.key` in the data folder, made at the first start (mode 0600). Every
//! process of a router must use the same key: the database keeps the key's id (a hash, not the
//! key) and a process whose key is another refuses to start rather than fail every signature.
//!
//! A sealed value is `1` (the format), the key's 8-byte id, a random 12-byte nonce, and the
//! ciphertext with its tag. The row it belongs to is the associated data, so a sealed value
//! copied into another row does not open.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use sha2::{Digest, Sha256};

const FORMAT: u8 = 1;
const NONCE: usize = 12;
const KEY_ID: usize = 8;
/// The key file's name in the data folder.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("SWITCHYARD_SECRET_KEY must be 32 bytes as base64 or 64 hexadecimal digits")]
    BadKey,
    #[error("the key file {path} must hold 32 bytes as base64 or 64 hexadecimal digits")]
    BadKeyFile { path: PathBuf },
    #[error("cannot read or make the key file {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Sealed with another key than this process's.
    #[error(
        "a secret was sealed with key {sealed_with} but this process's key is {ours}: every \
         process must use the same SWITCHYARD_SECRET_KEY (or the same key file)"
    )]
    OtherKey { sealed_with: String, ours: String },
    /// The database names the key its secrets were sealed with, and this process has none.
    #[error(
        "the stored secrets are sealed with key {key_id}, and this process has no key: set \
         SWITCHYARD_SECRET_KEY, or start it with the data folder that holds {path}"
    )]
    NoKey { key_id: String, path: PathBuf },
    #[error("the secret key's id cannot be read or recorded")]
    Store(#[from] sqlx::Error),
    /// Not a sealed value, or changed since it was sealed.
    #[error("a sealed secret does not open: it is damaged or belongs to another row")]
    Damaged,
}

/// Where the key comes from (the configuration's reading).
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The key itself (`SWITCHYARD_SECRET_KEY`).
    Given([u8; 32]),
    /// A file, made with a fresh key when it does not exist.
    File(PathBuf),
}

impl KeySource {
    /// Reads `SWITCHYARD_SECRET_KEY`'s text.
    pub fn parse_key(text: &str) -> Result<[u8; 32], SecretError> {
        parse_key(text).ok_or(SecretError::BadKey)
    }

    pub fn describe(&self) -> String {
        match self {
            KeySource::Given(_) => "SWITCHYARD_SECRET_KEY".to_owned(),
            KeySource::File(path) => path.display().to_string(),
        }
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        BASE64.decode(text).ok()?
    };
    bytes.try_into().ok()
}

/// Seals and opens secrets with one key.
pub struct Sealer {
    cipher: Aes256Gcm,
    key_id: [u8; KEY_ID],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        let digest = Sha256::new()
            .chain_update(b"switchyard secret key id\0")
            .chain_update(key)
            .finalize();
        let mut key_id = [0u8; KEY_ID];
        key_id.copy_from_slice(&digest[..KEY_ID]);
        Sealer {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
            key_id,
        }
    }

    /// The key from `source`; a missing key file is made with a fresh random key (only when
    /// `may_create`: a database that already holds sealed secrets needs the key that sealed
    /// them, not a new one).
    pub fn load(source: &KeySource, may_create: bool) -> Result<Sealer, SecretError> {
        match source {
            KeySource::Given(key) => Ok(Sealer::new(key)),
            KeySource::File(path) => Ok(Sealer::new(&read_or_make(path, may_create)?)),
        }
    }

    /// The key's id as the database keeps it and messages show it: 16 hexadecimal digits.
    pub fn key_id(&self) -> String {
        self.key_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Seals `plain` for the row named by `row` (any stable text: the row's key).
    pub fn seal(&self, plain: &[u8], row: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain,
                    aad: row.as_bytes(),
                },
            )
            // Only a plaintext over 64 GiB fails.
            .unwrap_or_else(|_| unreachable!("AES-GCM refused a short plaintext"));
        let mut out = Vec::with_capacity(1 + KEY_ID + NONCE + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Sealer::seal`] sealed for the same `row`.
    pub fn open(&self, sealed: &[u8], row: &str) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + KEY_ID + NONCE + 16 || sealed[0] != FORMAT {
            return Err(SecretError::Damaged);
        }
        let key_id = &sealed[1..1 + KEY_ID];
        if key_id != self.key_id {
            return Err(SecretError::OtherKey {
                sealed_with: key_id.iter().map(|b| format!("{b:02x}")).collect(),
                ours: self.key_id(),
            });
        }
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&sealed[1 + KEY_ID..1 + KEY_ID + NONCE]);
        self.cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &sealed[1 + KEY_ID + NONCE..],
                    aad: row.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Damaged)
    }
}

/// This process's sealer, checked against the key the database's secrets are sealed with (the
/// first process records its key's id; a missing key file is made only then).
pub async fn open_sealer(pool: &sqlx::PgPool, source: &KeySource) -> Result<Sealer, SecretError> {
    let mut tx = pool.begin().await?;
    crate::store::locks::hold(&mut tx, crate::store::locks::Lock::SecretKey).await?;
    let recorded = crate::store::tokens::secret_key_id(&mut tx).await?;
    let sealer = match (&recorded, source) {
        (Some(key_id), KeySource::File(path)) if !path.exists() => {
            return Err(SecretError::NoKey {
                key_id: key_id.clone(),
                path: path.clone(),
            });
        }
        _ => Sealer::load(source, recorded.is_none())?,
    };
    match recorded {
        Some(key_id) if key_id != sealer.key_id() => {
            return Err(SecretError::OtherKey {
                sealed_with: key_id,
                ours: sealer.key_id(),
            });
        }
        Some(_) => {}
        None => crate::store::tokens::set_secret_key_id(&mut tx, &sealer.key_id()).await?,
    }
    tx.commit().await?;
    Ok(sealer)
}

/// Seals every stored secret anew with `next` (opened with `current`) and records `next` as the
/// key, in one transaction; returns how many secrets were resealed. Processes still running with
/// the old key must be restarted with the new one.
pub async fn rotate(
    pool: &sqlx::PgPool,
    current: &Sealer,
    next: &Sealer,
) -> Result<usize, SecretError> {
    let mut tx = pool.begin().await?;
    crate::store::locks::hold(&mut tx, crate::store::locks::Lock::SecretKey).await?;
    if let Some(key_id) = crate::store::tokens::secret_key_id(&mut tx).await?
        && key_id != current.key_id()
    {
        return Err(SecretError::OtherKey {
            sealed_with: key_id,
            ours: current.key_id(),
        });
    }
    let sealed = crate::store::tokens::sealed_secrets(&mut tx).await?;
    for (id, access_key_id, secret) in &sealed {
        let plain = current.open(secret, access_key_id)?;
        crate::store::tokens::reseal(&mut tx, *id, &next.seal(&plain, access_key_id)).await?;
    }
    crate::store::tokens::set_secret_key_id(&mut tx, &next.key_id()).await?;
    tx.commit().await?;
    Ok(sealed.len())
}

/// A fresh random key as `SWITCHYARD_SECRET_KEY` and the key file take it.
pub fn new_key_text() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    BASE64.encode(key)
}

fn read_or_make(path: &Path, may_create: bool) -> Result<[u8; 32], SecretError> {
    let io = |source| SecretError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text).ok_or_else(|| SecretError::BadKeyFile {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
            write_key_file(path, &new_key_text()).map_err(io)?;
            // Another process may have made it first: the file that stands is the key.
            read_or_make(path, false)
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes a key file whole or not at all (a temporary file linked into place), readable by its
/// owner only; an existing file stays as it is.
pub fn write_key_file(path: &Path, key: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        writeln!(file, "{key}")?;
        file.sync_all()?;
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_row() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"wJalrXUtnFEMI", "AKIA1");
        assert!(!sealed.windows(5).any(|w| w == b"wJalr"), "not in clear");
        assert_eq!(sealer.open(&sealed, "AKIA1").unwrap(), b"wJalrXUtnFEMI");
        assert!(matches!(
            sealer.open(&sealed, "AKIA2"),
            Err(SecretError::Damaged)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            sealer.open(&flipped, "AKIA1"),
            Err(SecretError::Damaged)
        ));
        assert!(matches!(
            Sealer::new(&[8; 32]).open(&sealed, "AKIA1"),
            Err(SecretError::OtherKey { .. })
        ));
        // Two seals of one secret differ (a fresh nonce each time).
        assert_ne!(sealer.seal(b"x", "r"), sealer.seal(b"x", "r"));
    }

    #[test]
    fn keys_are_read_as_base64_or_hex_and_anything_else_is_refused() {
        let hex = "07".repeat(32);
        assert_eq!(KeySource::parse_key(&hex).unwrap(), [7; 32]);
        assert_eq!(
            KeySource::parse_key(&BASE64.encode([7u8; 32])).unwrap(),
            [7; 32]
        );
        for bad in ["", "short", &"07".repeat(31), &BASE64.encode([1u8; 31])] {
            assert!(KeySource::parse_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_file_is_made_once_private_and_then_read() {
        let dir = std::env::temp_dir().join(format!("sy-key-{}", uuid::Uuid::now_v7()));
        let path = dir.join(KEY_FILE);
        assert!(Sealer::load(&KeySource::File(path.clone()), false).is_err());
        let first = Sealer::load(&KeySource::File(path.clone()), true).unwrap();
        let again = Sealer::load(&KeySource::File(path.clone()), true).unwrap();
        assert_eq!(first.key_id(), again.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
