//! What every handler can reach; cheap to clone.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::Auth;
use crate::ingest::{IngestConfig, Writer};
use crate::metrics::Metrics;
use crate::ruleset::Snapshots;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub snapshots: Arc<Snapshots>,
    pub ingest: Arc<IngestConfig>,
    pub auth: Arc<Auth>,
    /// Seals and opens stored secrets (access keys' secret halves).
    pub sealer: Arc<crate::secrets::Sealer>,
    pub metrics: Arc<Metrics>,
    /// The SHA-256 of the token `/metrics` asks for, when one is configured.
    pub metrics_token: Option<[u8; 32]>,
    /// Group commit of ingested events.
    pub writer: Arc<Writer>,
    /// A request that takes longer is answered 503 with Retry-After.
    pub request_timeout: std::time::Duration,
    /// What a client may take of the HTTP server (the body-read deadline is applied per route).
    pub http: crate::config::HttpLimits,
    /// Reached through HTTPS: the UI's cookie is `Secure`.
    pub behind_tls: bool,
    /// History older than this is removed (`None`: kept); a bus's de-duplication window is at
    /// most this long.
    pub retention: Option<std::time::Duration>,
}
