//! What a delivery does before it is sent, for its target's connection and rate limit: the
//! connection's header (Basic, an API key, or an OAuth access token fetched with the client
//! credentials grant and cached per connection until it expires), and a send from the target's
//! rate limit, which holds across every process (one statement per send; [`crate::store::connections::take_rate`]).

use std::time::{Duration, Instant};

use rand::Rng;
use time::OffsetDateTime;

use super::Engine;
use super::client::Outgoing;
use crate::connections::{self, Credentials, OAuthParameters};

/// How long a delivery waits in its worker for its rate limit before it is put back.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);
/// A token this close to its end is fetched again rather than sent.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// An OAuth access token, for the connection as it was when the token was fetched.
pub(super) struct CachedToken {
    token: String,
    expires: Instant,
    version: OffsetDateTime,
}

impl Engine {
    /// Waits for a send of `key`'s rate limit (`per_second`, across every process). `Err` with
    /// how long to put the delivery back for when the wait would be long (the worker is then
    /// free for other targets); a database failure puts it back too, never sends over the rate.
    pub(super) async fn admit(&self, key: &str, per_second: u32) -> Result<(), Duration> {
        let started = Instant::now();
        loop {
            match crate::store::connections::take_rate(&self.pool, key, per_second).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %crate::telemetry::error_chain(&error), key, "the rate limit cannot be read; the delivery waits");
                    return Err(Duration::from_secs(1));
                }
            }
            // The next window starts at the next whole second (the database's clock, which
            // this one is close to); a little jitter spreads the processes that wait.
            let millis = OffsetDateTime::now_utc().millisecond() as u64;
            let jitter = rand::rng().random_range(1..=20);
            let wait = Duration::from_millis(1000 - millis.min(999) + jitter);
            if started.elapsed() + wait > MAX_RATE_WAIT {
                return Err(wait + Duration::from_millis(rand::rng().random_range(0..1000)));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// An access token for the OAuth connection: the cached one unless it is near its end, was
    /// fetched for an earlier version of the connection, or is `refused` (the target answered
    /// 401 to it); else a new one from the token endpoint.
    pub(super) async fn token(
        &self,
        credentials: &Credentials,
        oauth: &OAuthParameters,
        refused: Option<&str>,
    ) -> Result<String, String> {
        let cell = {
            let mut tokens = self
                .tokens
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tokens.entry(credentials.name.clone()).or_default().clone()
        };
        let mut cached = cell.lock().await;
        if let Some(token) = cached.as_ref()
            && token.version == credentials.version
            && token.expires > Instant::now() + TOKEN_MARGIN
            && refused != Some(token.token.as_str())
        {
            return Ok(token.token.clone());
        }
        let (method, url, headers, body) = connections::token_request(oauth, &credentials.secret);
        let answer = self
            .sender
            .send(Outgoing {
                method: &method,
                url: &url,
                headers,
                body,
                timeout: TOKEN_TIMEOUT,
            })
            .await
            .map_err(|e| {
                format!(
                    "the token endpoint of connection {:?}: {e}",
                    credentials.name
                )
            })?;
        if !(200..300).contains(&answer.status) {
            let body: String = answer.body.chars().take(200).collect();
            return Err(format!(
                "the token endpoint of connection {:?} answered {}: {body}",
                credentials.name, answer.status
            ));
        }
        let (token, lifetime) = connections::read_token(&answer.body)
            .map_err(|e| format!("connection {:?}: {e}", credentials.name))?;
        *cached = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + lifetime,
            version: credentials.version,
        });
        Ok(token)
    }
}

/// Replaces (or adds) the `authorization` header.
pub(super) fn set_authorization(headers: &mut Vec<(String, String)>, value: String) {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    headers.push(("authorization".to_owned(), value));
}
