//! Settings from flags and their environment variables (clap's `env`), validated all at once
//! into typed values. Nothing else reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tracing_subscriber::EnvFilter;

use crate::delivery::DeliveryConfig;
use crate::delivery::policy::Backoff;
use crate::domain::EnvelopeLimits;
use crate::ingest::IngestConfig;
use crate::secrets::KeySource;
use crate::telemetry::LogFormat;

/// EventBridge's entry limit, our default.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The most an entry may be configured to take.
pub const MAX_ENTRY_BYTES_CEILING: usize = 1024 * 1024;
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Ten years.
pub const MAX_RETENTION_HOURS: u64 = 24 * 3650;

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `switchyard=debug,info`).
    #[arg(
        long = "log",
        env = "SWITCHYARD_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub filter: String,
    /// Log line format.
    #[arg(
        long,
        env = "SWITCHYARD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    pub fn validate(&self) -> Result<EnvFilter, String> {
        EnvFilter::try_new(&self.filter)
            .map_err(|e| format!("--log / SWITCHYARD_LOG {:?}: {e}", self.filter))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Postgres to use (`postgres://user:password@host:port/database`). Without it, Switchyard
    /// runs its own Postgres, from the system's binaries, under the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Folder for Switchyard's own files (the local Postgres cluster lives in `pg/`).
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = "./.switchyard")]
    pub data_dir: PathBuf,
    /// The key that seals stored secrets (32 bytes as base64 or 64 hexadecimal digits). Without
    /// it, the key is `secret.key` in the data folder, made at the first start. Every process
    /// of a router needs the same key.
    #[arg(long, env = "SWITCHYARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum Database {
    Url(Box<PgConnectOptions>),
    /// A local cluster in this folder, started by us.
    Embedded {
        cluster_dir: PathBuf,
    },
}

/// The database name Switchyard creates in its own cluster.
pub const EMBEDDED_DATABASE: &str = "switchyard";

impl DatabaseArgs {
    /// Where the key that seals secrets comes from.
    pub fn key_source(&self) -> Result<KeySource, String> {
        match &self.secret_key {
            Some(text) => KeySource::parse_key(text)
                .map(KeySource::Given)
                .map_err(|e| e.to_string()),
            None => Ok(KeySource::File(
                self.data_dir.join(crate::secrets::KEY_FILE),
            )),
        }
    }

    pub fn validate(&self) -> Result<Database, String> {
        match &self.database_url {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                Err("DATABASE_URL must start with postgres:// or postgresql://".to_owned())
            }
            Some(url) => PgConnectOptions::from_str(url)
                .map(|options| Database::Url(Box::new(options)))
                .map_err(|e| format!("DATABASE_URL is not a valid Postgres URL: {e}")),
            None => Ok(Database::Embedded {
                cluster_dir: self.data_dir.join("pg"),
            }),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// An admin API token (at least 16 characters). When unset, a token is generated at the
    /// first start and printed once.
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A bearer token that `/metrics` asks for (at least 16 characters); unset, `/metrics` is
    /// open like `/healthz`. Its labels name buses, rules and targets.
    #[arg(long, env = "SWITCHYARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Largest event entry in bytes (EventBridge's 256 KiB by default; at most 1 MiB).
    #[arg(long, env = "SWITCHYARD_MAX_ENTRY_BYTES", default_value_t = DEFAULT_MAX_ENTRY_BYTES)]
    pub max_entry_bytes: usize,
    /// Largest ingest request body in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// The `account` written into every event.
    #[arg(long, env = "SWITCHYARD_ACCOUNT", default_value = "000000000000")]
    pub account: String,
    /// The `region` written into every event.
    #[arg(long, env = "SWITCHYARD_REGION", default_value = "local")]
    pub region: String,
    /// How often to look for rule changes made by other processes, in milliseconds, in case a
    /// notification was missed.
    #[arg(long, env = "SWITCHYARD_RULES_REFRESH_MS", default_value_t = 5000)]
    pub rules_refresh_ms: u64,
    /// Database connections per process.
    #[arg(long, env = "SWITCHYARD_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// How long work waits for a database connection, in milliseconds; a request that waits that
    /// long is answered 503 with Retry-After.
    #[arg(long, env = "SWITCHYARD_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
    /// The longest one database statement may run, in milliseconds (Postgres's
    /// `statement_timeout` on every connection of the router; migrations are exempt).
    #[arg(
        long,
        env = "SWITCHYARD_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub db_statement_timeout_ms: u64,
    /// The longest a request may take, in milliseconds; past it the answer is 503 with
    /// Retry-After (a database that accepted the connection and then hung, say).
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,
    /// How long a client may take to send a request's head, in milliseconds; then the
    /// connection is closed.
    #[arg(
        long,
        env = "SWITCHYARD_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's whole body, in milliseconds; then the
    /// answer is 408.
    #[arg(
        long,
        env = "SWITCHYARD_BODY_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Wrong tokens allowed per client address per minute; past it, that address is answered
    /// 429 until the minute is over. 0: no throttling.
    #[arg(
        long,
        env = "SWITCHYARD_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 20
    )]
    pub auth_failures_per_minute: u32,
    /// The router is reached through HTTPS (a proxy terminates TLS): the UI's session cookie is
    /// marked `Secure`.
    #[arg(long, env = "SWITCHYARD_BEHIND_TLS")]
    pub behind_tls: bool,
    /// Apply the rule files in this folder at start (like `switchyard rules apply`, without pruning).
    #[arg(long, env = "SWITCHYARD_RULES")]
    pub rules: Option<PathBuf>,
    /// Deliveries in flight at once in this process (default: 512 per CPU core; 0: this process
    /// only serves the API and ingests, others deliver).
    #[arg(long, env = "SWITCHYARD_WORKERS")]
    pub workers: Option<usize>,
    /// How long a claimed delivery is leased, in milliseconds; a delivery whose worker died is
    /// retried after it expires. Keep it above the longest target timeout.
    #[arg(long, env = "SWITCHYARD_LEASE_MS", default_value_t = 90_000)]
    pub lease_ms: u64,
    /// The longest wait between looks at the delivery queue, in milliseconds.
    #[arg(long, env = "SWITCHYARD_DELIVERY_POLL_MS", default_value_t = 1000)]
    pub delivery_poll_ms: u64,
    /// The first retry waits up to this long, in milliseconds (then doubling, with full jitter).
    #[arg(long, env = "SWITCHYARD_BACKOFF_BASE_MS", default_value_t = 1000)]
    pub backoff_base_ms: u64,
    /// No retry waits longer than this, in milliseconds (Retry-After included).
    #[arg(long, env = "SWITCHYARD_BACKOFF_MAX_MS", default_value_t = 300_000)]
    pub backoff_max_ms: u64,
    /// Non-public address ranges targets may reach anyway, comma-separated (e.g. `127.0.0.0/8`).
    #[arg(long, env = "SWITCHYARD_TARGET_ALLOW_CIDRS", value_delimiter = ',')]
    pub target_allow_cidrs: Vec<String>,
    /// How long shutdown waits for deliveries in flight, in milliseconds.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Events received longer ago than this many hours are removed with their deliveries and
    /// attempts, once all of those are delivered or discarded (dead letters stay until an
    /// operator ends them). 0 keeps everything.
    #[arg(long, env = "SWITCHYARD_RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,
    /// How often to look for history past retention, in milliseconds.
    #[arg(long, env = "SWITCHYARD_PRUNE_INTERVAL_MS", default_value_t = 60_000)]
    pub prune_interval_ms: u64,
    /// How often this process adds its counts to the overview's per-minute charts.
    #[arg(long, env = "SWITCHYARD_STATS_INTERVAL_MS", default_value_t = 5_000)]
    pub stats_interval_ms: u64,
    /// How often schema discovery looks at the event types of buses with discovery on.
    #[arg(
        long,
        env = "SWITCHYARD_DISCOVERY_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub discovery_interval_ms: u64,
}

/// Validated settings of `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    /// The key that seals stored secrets.
    pub secret_key: KeySource,
    pub admin_token: Option<String>,
    pub metrics_token: Option<String>,
    pub ingest: IngestConfig,
    pub rules_refresh: Duration,
    pub db_pool_size: u32,
    pub db_acquire_timeout: Duration,
    pub db_statement_timeout: Duration,
    pub request_timeout: Duration,
    pub http: HttpLimits,
    pub behind_tls: bool,
    pub auth_failures_per_minute: u32,
    pub rules_dir: Option<PathBuf>,
    pub delivery: DeliveryConfig,
    /// History older than this is removed; `None` keeps everything.
    pub retention: Option<Duration>,
    pub prune_interval: Duration,
    pub stats_interval: Duration,
    pub discovery_interval: Duration,
}

/// What a client may take of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
}

/// Every configuration problem, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl ServeArgs {
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| {
                errors.push(format!(
                    "--listen / SWITCHYARD_LISTEN {:?}: {e} (expected address:port)",
                    self.listen
                ))
            })
            .ok();
        let database = self.database.validate().map_err(|e| errors.push(e)).ok();
        let secret_key = self.database.key_source().map_err(|e| errors.push(e)).ok();
        if let Some(token) = &self.admin_token
            && (token.chars().count() < MIN_ADMIN_TOKEN_CHARS
                || token.chars().any(char::is_whitespace))
        {
            errors.push(format!(
                    "SWITCHYARD_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters without spaces"
                ));
        }
        if let Some(token) = &self.metrics_token
            && (token.chars().count() < MIN_ADMIN_TOKEN_CHARS
                || token.chars().any(char::is_whitespace))
        {
            errors.push(format!(
                "SWITCHYARD_METRICS_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters without spaces"
            ));
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > MAX_ENTRY_BYTES_CEILING {
            errors.push(format!(
                "SWITCHYARD_MAX_ENTRY_BYTES must be from 1 to {MAX_ENTRY_BYTES_CEILING}; got {}",
                self.max_entry_bytes
            ));
        }
        if self.max_request_bytes < self.max_entry_bytes {
            errors.push(format!(
                "SWITCHYARD_MAX_REQUEST_BYTES ({}) must be at least SWITCHYARD_MAX_ENTRY_BYTES ({})",
                self.max_request_bytes, self.max_entry_bytes
            ));
        }
        if self.account.is_empty() || self.account.len() > 64 {
            errors.push("SWITCHYARD_ACCOUNT must be 1 to 64 characters".to_owned());
        }
        if self.region.is_empty() || self.region.len() > 64 {
            errors.push("SWITCHYARD_REGION must be 1 to 64 characters".to_owned());
        }
        if self.rules_refresh_ms < 10 {
            errors.push("SWITCHYARD_RULES_REFRESH_MS must be at least 10".to_owned());
        }
        if self.db_pool_size < 2 {
            errors.push("SWITCHYARD_DB_POOL_SIZE must be at least 2".to_owned());
        }
        if !(50..=60_000).contains(&self.db_acquire_timeout_ms) {
            errors.push(format!(
                "SWITCHYARD_DB_ACQUIRE_TIMEOUT_MS must be from 50 to 60000; got {}",
                self.db_acquire_timeout_ms
            ));
        }
        if !(100..=3_600_000).contains(&self.db_statement_timeout_ms) {
            errors.push(format!(
                "SWITCHYARD_DB_STATEMENT_TIMEOUT_MS must be from 100 to 3600000; got {}",
                self.db_statement_timeout_ms
            ));
        }
        for (name, value) in [
            (
                "SWITCHYARD_HEADER_READ_TIMEOUT_MS",
                self.header_read_timeout_ms,
            ),
            ("SWITCHYARD_BODY_READ_TIMEOUT_MS", self.body_read_timeout_ms),
        ] {
            if !(100..=600_000).contains(&value) {
                errors.push(format!("{name} must be from 100 to 600000; got {value}"));
            }
        }
        if !(1..=100_000).contains(&self.max_connections) {
            errors.push(format!(
                "SWITCHYARD_MAX_CONNECTIONS must be from 1 to 100000; got {}",
                self.max_connections
            ));
        }
        if self.request_timeout_ms <= self.db_acquire_timeout_ms {
            errors.push(format!(
                "SWITCHYARD_REQUEST_TIMEOUT_MS ({}) must be longer than SWITCHYARD_DB_ACQUIRE_TIMEOUT_MS ({})",
                self.request_timeout_ms, self.db_acquire_timeout_ms
            ));
        }
        if let Some(dir) = &self.rules
            && !dir.is_dir()
        {
            errors.push(format!("--rules {}: not a folder", dir.display()));
        }
        // An attempt in flight is a task waiting on the network, not a thread: 32 per core capped
        // a 2-core machine at ~10K deliveries/s with its cores not busy; with 128 a busy one
        // found no free slot at ingest, so most deliveries were queued and claimed (a statement
        // more each) and a closed loop grew a backlog; with 512, new deliveries start without a
        // claim: Postgres CPU per event 0.70×, deliveries/s 1.2× (BENCHMARKS.md).
        let workers = self.workers.unwrap_or_else(|| {
            512 * std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        });
        if workers > 10_000 {
            errors.push(format!(
                "SWITCHYARD_WORKERS must be from 0 to 10000; got {workers}"
            ));
        }
        if self.lease_ms < 1000 {
            errors.push("SWITCHYARD_LEASE_MS must be at least 1000".to_owned());
        }
        if self.delivery_poll_ms < 10 {
            errors.push("SWITCHYARD_DELIVERY_POLL_MS must be at least 10".to_owned());
        }
        if self.backoff_base_ms == 0 || self.backoff_base_ms > self.backoff_max_ms {
            errors.push(format!(
                "SWITCHYARD_BACKOFF_BASE_MS ({}) must be at least 1 and at most SWITCHYARD_BACKOFF_MAX_MS ({})",
                self.backoff_base_ms, self.backoff_max_ms
            ));
        }
        if self.retention_hours > MAX_RETENTION_HOURS {
            errors.push(format!(
                "SWITCHYARD_RETENTION_HOURS must be from 0 (keep everything) to {MAX_RETENTION_HOURS}; got {}",
                self.retention_hours
            ));
        }
        if self.stats_interval_ms < 10 {
            errors.push("SWITCHYARD_STATS_INTERVAL_MS must be at least 10".to_owned());
        }
        if self.discovery_interval_ms < 10 {
            errors.push("SWITCHYARD_DISCOVERY_INTERVAL_MS must be at least 10".to_owned());
        }
        if self.prune_interval_ms < 10 {
            errors.push("SWITCHYARD_PRUNE_INTERVAL_MS must be at least 10".to_owned());
        }
        let mut allow_cidrs = Vec::new();
        for cidr in self
            .target_allow_cidrs
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            match cidr.parse::<ipnet::IpNet>() {
                Ok(net) => allow_cidrs.push(net),
                Err(_) => errors.push(format!(
                    "SWITCHYARD_TARGET_ALLOW_CIDRS: {cidr:?} is not a CIDR range like 127.0.0.0/8"
                )),
            }
        }
        match (listen, database, secret_key) {
            (Some(listen), Some(database), Some(secret_key)) if errors.is_empty() => Ok(Config {
                listen,
                database,
                secret_key,
                admin_token: self.admin_token.clone(),
                metrics_token: self.metrics_token.clone(),
                ingest: IngestConfig {
                    limits: EnvelopeLimits {
                        max_entry_bytes: self.max_entry_bytes,
                    },
                    max_request_bytes: self.max_request_bytes,
                    account: self.account.clone(),
                    region: self.region.clone(),
                },
                rules_refresh: Duration::from_millis(self.rules_refresh_ms),
                db_pool_size: self.db_pool_size,
                db_acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
                db_statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
                request_timeout: Duration::from_millis(self.request_timeout_ms),
                http: HttpLimits {
                    header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
                    body_read_timeout: Duration::from_millis(self.body_read_timeout_ms),
                    max_connections: self.max_connections,
                },
                behind_tls: self.behind_tls,
                auth_failures_per_minute: self.auth_failures_per_minute,
                rules_dir: self.rules.clone(),
                delivery: DeliveryConfig {
                    workers,
                    lease: Duration::from_millis(self.lease_ms),
                    poll: Duration::from_millis(self.delivery_poll_ms),
                    backoff: Backoff {
                        base: Duration::from_millis(self.backoff_base_ms),
                        max: Duration::from_millis(self.backoff_max_ms),
                    },
                    allow_cidrs,
                    shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
                },
                retention: (self.retention_hours > 0)
                    .then(|| Duration::from_secs(self.retention_hours * 3600)),
                prune_interval: Duration::from_millis(self.prune_interval_ms),
                stats_interval: Duration::from_millis(self.stats_interval_ms),
                discovery_interval: Duration::from_millis(self.discovery_interval_ms),
            }),
            _ => Err(ConfigError(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let args = Wrapper::parse_from([
            "x",
            "--listen",
            "nowhere",
            "--database-url",
            "mysql://x",
            "--admin-token",
            "short",
            "--max-entry-bytes",
            "2000000",
            "--db-pool-size",
            "1",
            "--retention-hours",
            "100000",
        ]);
        let err = args.serve.validate().unwrap_err();
        assert_eq!(err.0.len(), 6, "{err}");
        assert!(err.0[5].contains("SWITCHYARD_RETENTION_HOURS"), "{err}");
        assert!(err.0[0].contains("SWITCHYARD_LISTEN"));
        assert!(err.0[1].contains("DATABASE_URL"));
    }
}
