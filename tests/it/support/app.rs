//! The real application on port 0 against a test database, with typed calls.

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use switchyard::app::Application;
use switchyard::config::ServeArgs;
use tokio::sync::oneshot;

use super::postgres::{self, TestDb};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The key that seals secrets in every test application (64 hexadecimal digits), so that no
/// test writes a key file into the checkout.
pub const SECRET_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    /// A pool on the test database for read-only checks.
    pub pool: PgPool,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A response: status, content type and the body as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The JSON pointers of a validation problem's errors, in order.
    pub fn pointers(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["pointer"].as_str())
            .collect()
    }
}

impl TestApp {
    /// The application on a fresh database.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// The application on a fresh database with extra `serve` flags. Unless the flags say how
    /// many workers to run, it delivers nothing (`--workers 0`), so queued state stays put.
    pub async fn spawn_with(flags: &[&str]) -> TestApp {
        let db = postgres::fresh_database().await;
        TestApp::spawn_on(db, flags).await
    }

    /// The application delivering to targets on 127.0.0.1, retrying within milliseconds.
    pub async fn delivering(flags: &[&str]) -> TestApp {
        let db = postgres::fresh_database().await;
        TestApp::spawn_on(db, &delivering_flags(flags)).await
    }

    /// Another application process on the same database as `self`.
    pub async fn another(&self, flags: &[&str]) -> TestApp {
        let db = TestDb {
            name: self.db.name.clone(),
            options: self.db.options.clone(),
            url: self.db.url.clone(),
        };
        TestApp::spawn_on(db, flags).await
    }

    /// The application on a database of the caller's (a cluster of the test's own).
    pub async fn spawn_on(db: TestDb, flags: &[&str]) -> TestApp {
        init_logs();
        let mut argv = vec![
            "switchyard",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
            "--db-pool-size",
            "4",
        ];
        if !flags.contains(&"--workers") {
            argv.extend_from_slice(&["--workers", "0"]);
        }
        if !flags.contains(&"--secret-key") {
            argv.extend_from_slice(&["--secret-key", SECRET_KEY]);
        }
        // Dozens of applications share one Postgres and two cores during a run: waits for a
        // connection are longer than a production router's defaults allow for.
        if !flags.contains(&"--db-acquire-timeout-ms") {
            argv.extend_from_slice(&[
                "--db-acquire-timeout-ms",
                "10000",
                "--request-timeout-ms",
                "30000",
            ]);
        }
        argv.extend_from_slice(flags);
        let config = Args::parse_from(argv)
            .serve
            .validate()
            .expect("test configuration is valid");
        let app = Application::build(config, db.options.clone())
            .await
            .expect("the application starts");
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
        });
        let pool = switchyard::store::connect(db.options.clone(), 2)
            .await
            .expect("a pool for checks");
        TestApp {
            base,
            client: crate::support::http_client(),
            db,
            pool,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Ends the application abruptly, as a crash would: its tasks are aborted, its leases stay.
    pub async fn crash(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.drain().await;
    }

    /// Stops the server gracefully (its workers finish or release what they hold) and waits for
    /// it, keeping the database for checks: after this nothing more is sent, so what the
    /// database and the targets show is final.
    pub async fn drain(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Sends a request with the admin token; `body` as JSON when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(ADMIN_TOKEN, method, path, body).await
    }

    /// Sends a request with `token`; `body` as JSON when given.
    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the request is answered")).await
    }

    /// Sends raw bytes with a content type (for malformed-input tests).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", content_type)
            .body(body);
        answer(request.send().await.expect("the request is answered")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Signs in to the admin UI over plain HTTP: a client that does not follow redirects, and
    /// the session cookie (`sy_session=…`) with the full `Set-Cookie` value it came in.
    pub async fn ui_session(&self) -> (reqwest::Client, String, String) {
        self.ui_session_as(ADMIN_TOKEN).await
    }

    /// Signs in to the UI with `token`, asserting that the sign-in is accepted.
    pub async fn ui_session_as(&self, token: &str) -> (reqwest::Client, String, String) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let login = client
            .post(format!("{}/ui/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&next=%2Fui"))
            .send()
            .await
            .expect("the login is answered");
        let set_cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
        (client, cookie, set_cookie)
    }

    /// The HTML of a UI page (`path` from `/ui`), read in a new admin session.
    pub async fn ui_page(&self, path: &str) -> String {
        let (client, cookie, _) = self.ui_session().await;
        client
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .expect("the page is answered")
            .text()
            .await
            .expect("the page's text")
    }

    /// The `/metrics` text (open, no token).
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text")
    }

    pub async fn put_rule(&self, bus: &str, name: &str, rule: Value) -> Value {
        let answer = self
            .put(&format!("/v1/buses/{bus}/rules/{name}"), rule)
            .await;
        assert!(
            answer.status.is_success(),
            "PUT rule {bus}/{name}: {answer:?}"
        );
        answer.body
    }

    /// Posts events, asserting a 200; returns the body.
    pub async fn post_events(&self, bus: &str, body: Value) -> Value {
        let answer = self.post(&format!("/v1/buses/{bus}/events"), body).await;
        assert_eq!(answer.status, StatusCode::OK, "POST events: {answer:?}");
        answer.body
    }
}

/// Flags for a delivering test application; a flag in `extra` replaces its default.
pub fn delivering_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let defaults = [
        ("--workers", "16"),
        ("--target-allow-cidrs", "127.0.0.0/8"),
        ("--backoff-base-ms", "20"),
        ("--backoff-max-ms", "100"),
        ("--delivery-poll-ms", "50"),
        ("--shutdown-grace-ms", "3000"),
    ];
    let mut flags = Vec::new();
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            flags.extend([flag, value]);
        }
    }
    flags.extend_from_slice(extra);
    flags
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.expect("the body arrives");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        content_type,
        body,
        headers,
    }
}

/// Logs show only with `TEST_LOG` set (its value is the filter).
fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG")
        && let Ok(filter) = tracing_subscriber::EnvFilter::try_new(filter)
    {
        switchyard::telemetry::init(filter, switchyard::telemetry::LogFormat::Text, None);
    }
}
