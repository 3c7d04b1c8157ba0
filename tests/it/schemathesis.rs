//! Schemathesis (v4, every check) against the real router: generated requests, valid and not,
//! to every operation in openapi.yaml, and every answer checked against it (status codes,
//! bodies, headers, content types, refusal of invalid input, acceptance of valid input,
//! authentication). Any difference fails the test with schemathesis's report.
//!
//! Schemathesis is a Python tool: the test installs the pinned version from PyPI into
//! `target/schemathesis/` (once per machine, [`crate::support::pip`]); without Python the test
//! fails, it does not skip. `schemathesis.toml` at the top of the repository says which
//! resources the operations address and why two operations may answer 400 to schema-valid data.
//! `SWITCHYARD_SCHEMATHESIS_EXAMPLES` (default 30 per operation and phase) runs more.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::sink::{Reply, Sink};
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const VERSION: &str = "4.32.5";

/// The `st` command of the pinned schemathesis.
fn schemathesis() -> PathBuf {
    crate::support::pip::tool("schemathesis", VERSION, "st")
}

#[tokio::test]
async fn schemathesis_finds_no_difference_between_openapi_yaml_and_the_router() {
    let st = tokio::task::spawn_blocking(schemathesis)
        .await
        .expect("install schemathesis");
    // Every operation gets wrong tokens: more than the throttle allows one address.
    let app = TestApp::delivering(&["--auth-failures-per-minute", "0"]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(400));
    app.put_rule(
        "default",
        "orders",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url, "retry_policy": {"maximum_retry_attempts": 0}}]}),
    )
    .await;
    // Its own rule, which the operations on `orders` (PUT, DELETE) leave alone: a group blocked
    // by the event's dead letter.
    app.put_rule(
        "default",
        "ordered",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url, "retry_policy": {"maximum_retry_attempts": 0}, "ordering": {"group_by": "$.detail.n", "on_dead": "block"}}]}),
    )
    .await;
    // A connection and an API destination for the operations that address one.
    app.put(
        "/v1/connections/seeded",
        json!({"authorization_type": "basic", "basic": {"username": "u", "password": "p"}}),
    )
    .await;
    app.put(
        "/v1/api-destinations/seeded",
        json!({"connection": "seeded", "endpoint": sink.url, "method": "POST"}),
    )
    .await;
    let posted = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "placed", "detail": {"n": 1}}),
        )
        .await;
    let event = posted["entries"][0]["event_id"]
        .as_str()
        .expect("an event id")
        .to_owned();
    // An event type with a schema, for the operations on one (the event above is of it).
    let registered = app
        .post(
            "/v1/buses/default/schemas/shop/placed/versions",
            json!({"schema": {"type": "object"}}),
        )
        .await;
    assert!(registered.status.is_success(), "{registered:?}");
    // An archive and a replay of it, for the operations on one of each.
    let kept = app.put("/v1/buses/default/archives/kept", json!({})).await;
    assert!(kept.status.is_success(), "{kept:?}");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let seeded = app
        .post(
            "/v1/replays",
            json!({"name": "seeded", "bus": "default", "archive": "kept", "from": "2026-01-01T00:00:00Z", "to": now}),
        )
        .await;
    assert!(seeded.status.is_success(), "{seeded:?}");
    let dead: String = wait_for("the dead letter", Duration::from_secs(15), || async {
        let page = app.get("/v1/dead-letters").await;
        page.body["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await;

    let examples =
        std::env::var("SWITCHYARD_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "30".into());
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--no-color", "run", "openapi.yaml", "--url", &base])
            .args(["--checks", "all", "--max-examples", &examples])
            .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .env("SWITCHYARD_ST_EVENT", &event)
            .env("SWITCHYARD_ST_DEAD_LETTER", &dead)
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("schemathesis ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found differences:\n{report}"
    );
    // It ran every operation, not none.
    let operations = crate::openapi::operations(&crate::openapi::spec()).len();
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "expected all {operations} operations tested:\n{report}"
    );
}

/// What schemathesis found, each as its own quick case (no Python needed), so a regression names
/// itself.
#[tokio::test]
async fn what_schemathesis_found_stays_fixed() {
    let app = TestApp::spawn().await;
    app.put_rule(
        "default",
        "orders",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": "http://10.255.255.1/", "timeout_ms": 5000.0}]}),
    )
    .await;
    // JSON Schema's integers include 262.0.
    let rotated = app
        .post(
            "/v1/buses/default/rules/orders/targets/hook/rotate-secret",
            json!({"overlap_seconds": 262.0}),
        )
        .await;
    assert_eq!(rotated.status, reqwest::StatusCode::OK, "{rotated:?}");
    for (method, path, body, why) in [
        (
            "POST",
            "/v1/buses/default/rules/orders/targets/hook/rotate-secret",
            json!({"overlap_seconds": 1.5}),
            "a fraction",
        ),
        (
            "POST",
            "/v1/buses/default/rules/orders/targets/hook/rotate-secret",
            json!({"overlap_seconds": null}),
            "null",
        ),
        (
            "POST",
            "/v1/dead-letters/redrive",
            json!({}),
            "neither ids nor filter",
        ),
        (
            "POST",
            "/v1/dead-letters/discard",
            json!({"filter": {}, "reason": null}),
            "a null reason",
        ),
        (
            "POST",
            "/v1/dead-letters/redrive",
            json!({"filter": {"until": null}}),
            "a null time",
        ),
        (
            "POST",
            "/v1/dead-letters/redrive",
            json!({"filter": ["default"]}),
            "a filter that is an array",
        ),
        (
            "PUT",
            "/v1/buses/extra",
            json!([]),
            "a body that is an array",
        ),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let got = app.call(method, path, Some(body)).await;
        assert_eq!(
            got.status,
            reqwest::StatusCode::BAD_REQUEST,
            "{why}: {got:?}"
        );
    }
    for path in [
        "/v1/dead-letters?cursor=",
        "/v1/audit?cursor=",
        "/v1/audit?until=",
        "/v1/buses/default/rules?next_token=%5BFiltered%5D",
    ] {
        let got = app.get(path).await;
        assert_eq!(
            got.status,
            reqwest::StatusCode::BAD_REQUEST,
            "{path}: {got:?}"
        );
    }
    let unknown = app.delete("/v1/tokens/None").await;
    assert_eq!(unknown.status, reqwest::StatusCode::NOT_FOUND);
    // A body sent without its content type is a documented 415.
    let untyped = app
        .call_raw(
            reqwest::Method::POST,
            "/v1/dead-letters/redrive",
            "",
            Vec::new(),
        )
        .await;
    assert_eq!(untyped.status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A vertical tab is not JSON's whitespace: such a body is not the empty bus.
    let tabbed = app
        .call_raw(
            reqwest::Method::PUT,
            "/v1/buses/default",
            "application/json",
            b"\x0b".to_vec(),
        )
        .await;
    assert_eq!(
        tabbed.status,
        reqwest::StatusCode::BAD_REQUEST,
        "{tabbed:?}"
    );
    // Nor is JSON's own whitespace alone: a body sent as JSON must be a JSON value (the
    // fuzzer sent a lone newline and expected a 400). Only no body at all is the empty bus.
    let blank = app
        .call_raw(
            reqwest::Method::PUT,
            "/v1/buses/default",
            "application/json",
            b" \r\n".to_vec(),
        )
        .await;
    assert_eq!(blank.status, reqwest::StatusCode::BAD_REQUEST, "{blank:?}");
    let empty = app
        .call_raw(
            reqwest::Method::PUT,
            "/v1/buses/default",
            "application/json",
            Vec::new(),
        )
        .await;
    assert!(empty.status.is_success(), "{empty:?}");
}
