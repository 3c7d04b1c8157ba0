pub mod app;
pub mod binary;
pub mod browser;
pub mod pip;
pub mod postgres;
pub mod sink;

pub use app::{ADMIN_TOKEN, SECRET_KEY, TestApp};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it yields a value or `deadline` passes; the panic names what was awaited.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client for tests. rustls needs its process-wide crypto provider before any client is
/// built; the application installs it too, but a test may build its client first.
pub fn http_client() -> reqwest::Client {
    switchyard::delivery::client::install_crypto_provider();
    reqwest::Client::new()
}
