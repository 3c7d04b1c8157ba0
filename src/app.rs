//! The application: connect and migrate, load the rule snapshots, bind, serve until told to stop.
//! `build` binds the listener itself (port 0 allowed), so tests run many side by side.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::auth::{self, Auth};
use crate::config::Config;
use crate::delivery::Engine;
use crate::rules_files::{self, RulesError};
use crate::ruleset::Snapshots;
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach the database")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("applying the rule files failed")]
    Rules(#[from] RulesError),
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("the HTTP client for targets cannot be built")]
    Client(#[from] crate::delivery::client::SendError),
    #[error("the key that seals secrets cannot be used")]
    SecretKey(#[from] crate::secrets::SecretError),
}

pub struct Application {
    listener: tokio::net::TcpListener,
    listen_pool: PgPool,
    engine: Arc<Engine>,
    state: AppState,
    config: Config,
    generated_token: Option<String>,
}

impl Application {
    pub async fn build(
        config: Config,
        database: PgConnectOptions,
    ) -> Result<Application, StartError> {
        // Migrations may run long (a backfill): on a connection of their own, exempt from the
        // statement timeout that every connection of the router's pool has.
        let migrating = store::connect(database.clone(), 1).await?;
        store::migrate(&migrating).await?;
        migrating.close().await;
        let timeouts = store::Timeouts {
            acquire: config.db_acquire_timeout,
            statement: config.db_statement_timeout,
        };
        let pool = store::connect_serving(database.clone(), config.db_pool_size, timeouts).await?;
        let sealer = Arc::new(crate::secrets::open_sealer(&pool, &config.secret_key).await?);
        let generated_token = match config.admin_token {
            Some(_) => None,
            None => auth::ensure_first_token(&pool, &sealer).await?,
        };
        if let Some(dir) = &config.rules_dir {
            let files = rules_files::load_dir(dir)?;
            let actor = crate::audit::Actor::command("serve --rules");
            let plan = rules_files::apply(&pool, &actor, &files, false, false).await?;
            for change in &plan.changes {
                tracing::info!(%change, dir = %dir.display(), "rule files applied");
            }
        }
        let snapshots = Arc::new(Snapshots::new(pool.clone()));
        snapshots.refresh().await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let longest_timeout =
            std::time::Duration::from_millis(u64::from(crate::domain::TIMEOUT_MS_RANGE.1));
        if config.delivery.workers > 0 && config.delivery.lease <= longest_timeout {
            tracing::warn!(
                lease_ms = config.delivery.lease.as_millis() as u64,
                longest_timeout_ms = longest_timeout.as_millis() as u64,
                "the lease is not longer than the longest target timeout: a slow target may get a delivery twice"
            );
        }
        // LISTEN holds its connection for good (the delivery worker's, the rule snapshots'), and
        // the announcer of due deliveries keeps one busy: three of their own, so work never
        // waits for them.
        let listen_pool = store::connect(database.clone(), 3).await?;
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let engine = Arc::new(Engine::new(
            pool.clone(),
            listen_pool.clone(),
            config.delivery.clone(),
            metrics.clone(),
            sealer.clone(),
        )?);
        let state = AppState {
            auth: Arc::new(
                Auth::new(pool.clone(), config.admin_token.as_deref())
                    .throttled(config.auth_failures_per_minute, metrics.clone())
                    .with_sealer(sealer.clone()),
            ),
            sealer,
            ingest: Arc::new(config.ingest.clone()),
            metrics,
            metrics_token: config.metrics_token.as_deref().map(crate::auth::sha256),
            writer: Arc::new(crate::ingest::Writer::start(
                pool.clone(),
                (config.delivery.workers > 0).then(|| engine.clone()),
                store::notify::Announcer::start(listen_pool.clone()),
            )),
            pool,
            snapshots,
            request_timeout: config.request_timeout,
            http: config.http,
            behind_tls: config.behind_tls,
            retention: config.retention,
        };
        Ok(Application {
            listener,
            listen_pool,
            engine,
            state,
            config,
            generated_token,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// The admin token made at first start, if this start made one (shown once).
    pub fn take_generated_token(&mut self) -> Option<String> {
        self.generated_token.take()
    }

    /// Serves and delivers until `shutdown` completes, then finishes the requests in progress and
    /// drains the delivery engine. Dropping the future stops everything at once (as a crash
    /// would, for tests): background tasks are aborted with it.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let _follower = AbortOnDrop(tokio::spawn(
            self.state
                .snapshots
                .clone()
                .follow(self.listen_pool.clone(), self.config.rules_refresh),
        ));
        let engine = AbortOnDrop(tokio::spawn(self.engine.clone().run(stop_rx.clone())));
        let _pruner = self.config.retention.map(|retention| {
            AbortOnDrop(tokio::spawn(crate::retention::run(
                self.state.pool.clone(),
                retention,
                self.config.prune_interval,
                self.state.metrics.clone(),
                stop_rx.clone(),
            )))
        });
        let stats = AbortOnDrop(tokio::spawn(crate::stats::run(
            self.state.pool.clone(),
            self.state.metrics.clone(),
            self.config.stats_interval,
            stop_rx.clone(),
        )));
        let _discovery = AbortOnDrop(tokio::spawn(crate::discovery::run(
            self.state.pool.clone(),
            self.config.discovery_interval,
            stop_rx.clone(),
        )));
        // Replays are background work like delivery: an API-only process leaves them to others.
        let _replays = (self.config.delivery.workers > 0).then(|| {
            AbortOnDrop(tokio::spawn(crate::replay::run(
                self.state.pool.clone(),
                self.state.snapshots.clone(),
                crate::replay::ReplayConfig {
                    lease: self.config.delivery.lease,
                    poll: self.config.delivery.poll,
                },
                stop_rx.clone(),
            )))
        });
        let stop_on_exit = stop_tx.clone();
        let _signal = AbortOnDrop(tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        }));
        let router = crate::api::router(self.state);
        tracing::info!(addr = %self.listener.local_addr().map_err(StartError::Serve)?, "listening");
        let mut stopped = stop_rx;
        crate::server::serve(self.listener, router, self.config.http, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await;
        let _ = stop_on_exit.send(true);
        let _ = engine.join().await;
        // The last counts, including the outcomes the engine recorded while draining.
        let _ = stats.join().await;
        Ok(())
    }
}

/// A task that is aborted when its handle is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    pub(crate) async fn join(mut self) -> Result<(), tokio::task::JoinError> {
        let handle = std::mem::replace(&mut self.0, tokio::spawn(async {}));
        handle.await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
