//! NOTIFY channels. Payloads are tiny: the bus name.

/// A rule or bus changed; payload: the bus.
pub const RULES_CHANGED: &str = "switchyard_rules_changed";
/// New deliveries are due; payload: the bus.
pub const DELIVERIES_DUE: &str = "switchyard_deliveries_due";

/// Sends a notification inside the caller's transaction (delivered when it commits).
pub async fn notify(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Announces on [`DELIVERIES_DUE`], inside the caller's transaction, that `made` deliveries
/// were made due, if any were.
pub async fn deliveries_made_due(
    conn: &mut sqlx::PgConnection,
    made: u64,
) -> Result<(), sqlx::Error> {
    if made > 0 {
        notify(conn, DELIVERIES_DUE, "").await?;
    }
    Ok(())
}

/// Announces due deliveries on [`DELIVERIES_DUE`] once the statement that stored them has
/// committed, from a background task: requests made while one announcement is under way make
/// one more after it, however many they are.
///
/// Why not NOTIFY inside the storing statement: Postgres serialises the commits of every
/// transaction that notifies (a database-wide lock, held until the commit is flushed), so two
/// router processes' ingest commits could never share a WAL flush. An announcement is a
/// transaction of its own that waits for no flush (`synchronous_commit` off: a lost one costs a
/// poll interval, nothing stored).
#[derive(Clone)]
pub struct Announcer {
    due: tokio::sync::mpsc::Sender<()>,
}

impl Announcer {
    /// Starts the announcing task on a connection of `pool` (give it a pool of its own, as for
    /// [`listen`]); it ends when the last handle is dropped.
    pub fn start(pool: sqlx::PgPool) -> Announcer {
        let (due, mut requests) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while requests.recv().await.is_some() {
                let announced = sqlx::query(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')",
                )
                .bind(DELIVERIES_DUE)
                .execute(&pool)
                .await;
                if let Err(error) = announced {
                    tracing::warn!(error = %crate::telemetry::error_chain(&error), "announcing due deliveries failed; processes find them at their next poll");
                }
            }
        });
        Announcer { due }
    }

    /// Announces due deliveries (committed before this call).
    pub fn deliveries_due(&self) {
        // Full: an announcement is already requested, and it comes after this call.
        let _ = self.due.try_send(());
    }
}

/// A listener on `channel`, on a connection of `pool` that it keeps (give it a pool of its own,
/// so listening never takes connections from work). `None`, logged, when it cannot listen: the
/// caller polls instead.
pub async fn listen(pool: &sqlx::PgPool, channel: &str) -> Option<sqlx::postgres::PgListener> {
    let listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(mut listener) => listener.listen(channel).await.map(|()| listener),
        Err(error) => Err(error),
    };
    match listener {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(channel, error = %crate::telemetry::error_chain(&error), "cannot LISTEN; polling only");
            None
        }
    }
}
