//! The HTTP client for targets: one reqwest client (one connection pool) for the process, no
//! redirects, connect and total timeouts, bounded reads of the response, and an SSRF guard that
//! refuses non-public addresses after DNS resolution unless an allow-list permits them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Response headers and body kept per attempt, at most.
pub const MAX_RESPONSE_BODY: usize = 4096;
pub const MAX_RESPONSE_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 512;

/// Ranges a webhook sender must not reach unless allowed (RFC 6890 special-purpose addresses).
const BLOCKED: [&str; 21] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
];
const BLOCKED_MULTICAST_V6: &str = "ff00::/8";

/// Which addresses targets may resolve to.
#[derive(Debug, Clone)]
pub struct AddressGuard {
    allow: Vec<IpNet>,
    blocked: Vec<IpNet>,
}

impl AddressGuard {
    pub fn new(allow: Vec<IpNet>) -> AddressGuard {
        let blocked = BLOCKED
            .iter()
            .chain([&BLOCKED_MULTICAST_V6])
            .filter_map(|net| net.parse().ok())
            .collect();
        AddressGuard { allow, blocked }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
            || !self.blocked.iter().any(|net| net.contains(&ip))
    }
}

/// A resolved address was refused by the guard.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{host} resolves only to non-public addresses ({address}); allow them with SWITCHYARD_TARGET_ALLOW_CIDRS"
)]
pub struct Blocked {
    pub host: String,
    pub address: IpAddr,
}

struct GuardedResolver {
    guard: Arc<AddressGuard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| guard.permits(a.ip()));
            match (allowed.is_empty(), refused.first()) {
                (true, Some(first)) => Err(Box::new(Blocked {
                    host,
                    address: first.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error("timed out after {0} ms")]
    Timeout(u128),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("the request could not be made: {0}")]
    Request(String),
    #[error("the request failed: {0}")]
    Transport(String),
    /// The target's connection could not authenticate the request (its token endpoint failed,
    /// say): tried again like a failed connection.
    #[error("authenticating failed: {0}")]
    Auth(String),
}

/// A response, bounded.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The `Retry-After` header as sent (`policy::retry_after` reads it).
    pub retry_after: Option<String>,
}

pub struct Sender {
    client: reqwest::Client,
    guard: Arc<AddressGuard>,
}

/// One request to send.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout: Duration,
}

impl Sender {
    pub fn new(guard: AddressGuard, user_agent: &str) -> Result<Sender, SendError> {
        install_crypto_provider();
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(user_agent)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .build()
            .map_err(|e| SendError::Request(crate::telemetry::error_chain(&e)))?;
        Ok(Sender { client, guard })
    }

    pub async fn send(&self, outgoing: Outgoing<'_>) -> Result<Answer, SendError> {
        let url =
            reqwest::Url::parse(outgoing.url).map_err(|e| SendError::Request(e.to_string()))?;
        // Literal addresses never reach the resolver: judge them here.
        let literal = url.host_str().and_then(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        });
        if let Some(ip) = literal
            && !self.guard.permits(ip)
        {
            return Err(SendError::Blocked(Blocked {
                host: ip.to_string(),
                address: ip,
            }));
        }
        let method = reqwest::Method::from_bytes(outgoing.method.as_bytes())
            .map_err(|e| SendError::Request(e.to_string()))?;
        let mut request = self.client.request(method, url).timeout(outgoing.timeout);
        for (name, value) in &outgoing.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let started = Instant::now();
        let classify = |e: reqwest::Error| classify_error(e, started);
        let mut response = request.body(outgoing.body).send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = response
            .headers()
            .iter()
            .take(MAX_RESPONSE_HEADERS)
            .map(|(name, value)| {
                let text = String::from_utf8_lossy(value.as_bytes());
                (name.to_string(), truncate(&text, MAX_HEADER_VALUE))
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is what counts; a body cut short is recorded as far as it came.
                Err(_) => break,
            }
        }
        body.truncate(MAX_RESPONSE_BODY);
        Ok(Answer {
            status,
            headers,
            // Kept as text Postgres can store: a NUL (valid UTF-8, refused by `text`) becomes
            // U+FFFD like any other byte that is not text, or the outcome's write would fail
            // with every other outcome of its batch.
            body: String::from_utf8_lossy(&body).replace('\0', "\u{FFFD}"),
            retry_after,
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn classify_error(error: reqwest::Error, started: Instant) -> SendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return SendError::Blocked(blocked.clone());
        }
        source = cause.source();
    }
    let chain = crate::telemetry::error_chain(&error);
    if error.is_timeout() {
        SendError::Timeout(started.elapsed().as_millis())
    } else if error.is_connect() {
        SendError::Connect(chain)
    } else if error.is_builder() {
        SendError::Request(chain)
    } else {
        SendError::Transport(chain)
    }
}

/// rustls needs one process-wide crypto provider; ring is the one sqlx builds too.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused_unless_allowed() {
        let guard = AddressGuard::new(vec![]);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(
                !guard.permits(ip.parse().unwrap()),
                "{ip} should be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(guard.permits(ip.parse().unwrap()), "{ip} should be allowed");
        }
        let loopback = AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(loopback.permits("127.0.0.1".parse().unwrap()));
        assert!(!loopback.permits("10.0.0.1".parse().unwrap()));
    }
}
