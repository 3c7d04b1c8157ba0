//! A database outage: requests answer 503 with Retry-After within the configured timeouts instead
//! of hanging, `/readyz` answers within a second either way, and everything recovers when the
//! database does. The database is a cluster of the test's own, frozen with SIGSTOP (a hung
//! server: connections stay open, nothing answers).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::postgres::OwnCluster;
use crate::support::{TestApp, wait_for};

/// The settings under test: a pool that gives up on a connection after 500 ms, and requests that
/// give up after 2 s.
const FLAGS: [&str; 6] = [
    "--db-acquire-timeout-ms",
    "500",
    "--db-statement-timeout-ms",
    "1000",
    "--request-timeout-ms",
    "2000",
];

/// A request that does not answer within 10 s fails the test instead of hanging it.
async fn bounded<T>(request: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("an answer within 10 s")
}

#[tokio::test]
async fn a_frozen_database_answers_503_quickly_and_recovers() {
    let cluster = OwnCluster::start();
    let mut flags = FLAGS.to_vec();
    flags.extend(["--workers", "0"]);
    let app = TestApp::spawn_on(
        crate::support::postgres::TestDb {
            name: cluster.db.name.clone(),
            options: cluster.db.options.clone(),
            url: cluster.db.url.clone(),
        },
        &flags,
    )
    .await;
    let event = json!({"source": "shop", "detail-type": "x", "detail": {}});
    assert_eq!(app.get("/v1/buses").await.status, StatusCode::OK);
    let spec = crate::openapi::spec();
    let key = crate::aws::access_key(&app, "sdk", "admin", None).await;
    let sdk = crate::aws::client(&app, &key);

    cluster.freeze();
    // EventBridge's API answers in its own shape, as quickly (the SDKs retry a 503).
    let started = Instant::now();
    let refused = bounded(sdk.list_rules().send()).await.expect_err("refused");
    assert_eq!(
        aws_sdk_eventbridge::error::ProvideErrorMetadata::code(&refused),
        Some("ServiceUnavailableException"),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    let calls = [
        (Method::GET, "/v1/buses", "/v1/buses", None),
        (
            Method::POST,
            "/v1/buses/{bus}/events",
            "/v1/buses/default/events",
            Some(event.clone()),
        ),
        (
            Method::GET,
            "/v1/buses/{bus}/rules",
            "/v1/buses/default/rules",
            None,
        ),
        (Method::GET, "/v1/dead-letters", "/v1/dead-letters", None),
    ];
    for (method, template, path, body) in calls {
        let started = Instant::now();
        let got = bounded(app.call(method.clone(), path, body)).await;
        let took = started.elapsed();
        assert_eq!(
            got.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {got:?}"
        );
        assert_eq!(got.content_type, "application/problem+json");
        assert!(
            took < Duration::from_millis(3000),
            "{method} {path} took {took:?} to answer"
        );
        let retry_after: u64 = got
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: no Retry-After"));
        assert!((1..=60).contains(&retry_after));
        let documented =
            &spec["paths"][template][method.as_str().to_lowercase()]["responses"]["503"];
        assert!(
            documented.is_object(),
            "{method} {template}: 503 not in openapi.yaml"
        );
    }
    let started = Instant::now();
    let ready = bounded(app.get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(bounded(app.get("/healthz")).await.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(500));

    cluster.thaw();
    wait_for(
        "the API to answer again",
        Duration::from_secs(20),
        || async { (app.get("/v1/buses").await.status == StatusCode::OK).then_some(()) },
    )
    .await;
    let accepted = app.post_events("default", event).await;
    assert_eq!(accepted["failed_entry_count"], 0);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    app.stop().await;
    drop(cluster);
}

#[tokio::test]
async fn no_request_outlives_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&FLAGS).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // A body announced as 100 bytes of which 10 arrive: the request never completes by itself.
    let head = format!(
        "POST /v1/buses/default/events HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"source\":",
        crate::support::ADMIN_TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let took = started.elapsed();
    let status = String::from_utf8_lossy(&answer);
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3000),
        "answered after {took:?}; the request timeout is 2 s"
    );
}
