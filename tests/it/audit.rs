//! The audit log (issue 16, item 5): every change an operator makes, over the API, in the UI or
//! from the command line, is recorded with who (the token's name and id), what, on which
//! resource and when; reads, refused requests and changes that changed nothing are not.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::sink::{Reply, Sink};

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn dead_letter(app: &TestApp) -> String {
    crate::support::wait_for("a dead letter", Duration::from_secs(15), || async {
        let page = app.get("/v1/dead-letters").await;
        page.body["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

#[tokio::test]
async fn every_change_is_recorded_with_who_what_and_when() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(400));
    let made = app
        .post("/v1/tokens", json!({"name": "operator", "scope": "admin"}))
        .await;
    let operator = made.body["token"].as_str().unwrap().to_owned();
    let operator_id = made.body["id"].as_str().unwrap().to_owned();
    let as_operator = |method: Method, path: &str, body: Option<Value>| {
        let path = path.to_owned();
        let token = operator.clone();
        let app = &app;
        async move { app.call_as(&token, method, &path, body).await }
    };

    let bus = as_operator(
        Method::PUT,
        "/v1/buses/orders",
        Some(json!({"description": "o"})),
    )
    .await;
    assert_eq!(bus.status, StatusCode::CREATED);
    let rule = json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url, "retry_policy": {"maximum_retry_attempts": 0}}]});
    let put = as_operator(Method::PUT, "/v1/buses/default/rules/orders", Some(rule)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
    let rotated = as_operator(
        Method::POST,
        "/v1/buses/default/rules/orders/targets/hook/rotate-secret",
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    // Refused, unchanged or read: nothing recorded.
    let refused = as_operator(
        Method::PUT,
        "/v1/buses/default/rules/bad",
        Some(json!({"event_pattern": {"source": "shop"}})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let nothing = as_operator(
        Method::POST,
        "/v1/dead-letters/redrive",
        Some(json!({"filter": {"bus": "orders"}})),
    )
    .await;
    assert_eq!(nothing.body["redriven"], 0);
    as_operator(Method::GET, "/v1/buses/default/rules/orders", None).await;

    app.post_events(
        "default",
        json!({"source": "shop", "detail-type": "placed", "detail": {}}),
    )
    .await;
    let dead = dead_letter(&app).await;
    let redriven = as_operator(
        Method::POST,
        &format!("/v1/dead-letters/{dead}/redrive"),
        None,
    )
    .await;
    assert_eq!(redriven.status, StatusCode::OK, "{redriven:?}");
    let dead = dead_letter(&app).await;
    let discarded = as_operator(
        Method::DELETE,
        &format!("/v1/dead-letters/{dead}?reason=known%20bad"),
        None,
    )
    .await;
    assert_eq!(discarded.status, StatusCode::NO_CONTENT, "{discarded:?}");
    let deleted = as_operator(Method::DELETE, "/v1/buses/default/rules/orders", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let revoked = app.delete(&format!("/v1/tokens/{operator_id}")).await;
    assert_eq!(revoked.status, StatusCode::OK);

    let log = app.get("/v1/audit").await;
    assert_eq!(log.status, StatusCode::OK, "{log:?}");
    assert_eq!(
        actions(&log.body),
        [
            "token.revoke",
            "rule.delete",
            "dead-letter.discard",
            "dead-letter.redrive",
            "target.rotate-secret",
            "rule.put",
            "bus.put",
            "token.create",
        ],
        "{}",
        log.body
    );
    let items = log.body["items"].as_array().unwrap();
    for entry in &items[1..7] {
        assert_eq!(entry["actor"], "operator", "{entry}");
        assert_eq!(entry["token_id"], operator_id.as_str(), "{entry}");
        assert!(entry["at"].is_string());
    }
    for entry in [&items[0], &items[7]] {
        assert_eq!(entry["actor"], "SWITCHYARD_ADMIN_TOKEN", "{entry}");
        assert_eq!(entry["token_id"], Value::Null);
    }
    assert_eq!(items[7]["resource"], format!("tokens/{operator_id}"));
    assert_eq!(items[7]["detail"]["scope"], "admin");
    assert_eq!(items[2]["resource"], format!("dead-letters/{dead}"));
    assert_eq!(items[2]["detail"]["reason"], "known bad");
    assert_eq!(items[5]["resource"], "buses/default/rules/orders");
    assert_eq!(items[5]["detail"]["created"], true);
    assert_eq!(items[4]["detail"]["overlap_seconds"], 60);
    assert!(!log.body.to_string().contains(&operator[3..]), "no secret");

    // Filters and pages.
    let puts = app.get("/v1/audit?action=rule.put").await;
    assert_eq!(actions(&puts.body), ["rule.put"]);
    let on_rule = app.get("/v1/audit?resource=buses/default/").await;
    assert_eq!(
        actions(&on_rule.body),
        ["rule.delete", "target.rotate-secret", "rule.put"]
    );
    let by_token = app.get(&format!("/v1/audit?token_id={operator_id}")).await;
    assert_eq!(by_token.body["items"].as_array().unwrap().len(), 6);
    let first = app.get("/v1/audit?limit=3").await;
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app.get(&format!("/v1/audit?limit=3&cursor={cursor}")).await;
    assert_eq!(
        [actions(&first.body), actions(&second.body)].concat(),
        actions(&log.body)[..6]
    );
    let empty_cursor = app.get("/v1/audit?cursor=").await;
    assert_eq!(
        empty_cursor.status,
        StatusCode::BAD_REQUEST,
        "not a cursor given out"
    );
    let bad = app.get("/v1/audit?action=rule.create").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["detail"].as_str().unwrap().contains("rule.put"),
        "{bad:?}"
    );
    let later = app.get("/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert_eq!(later.body["items"], json!([]));
}

#[tokio::test]
async fn the_ui_and_the_command_line_are_recorded_too() {
    let app = TestApp::spawn().await;
    let made = app
        .post(
            "/v1/tokens",
            json!({"name": "night shift", "scope": "admin"}),
        )
        .await;
    let token = made.body["token"].as_str().unwrap().to_owned();
    app.ui_session_as(&token).await;

    let dir = std::env::temp_dir().join(format!(
        "switchyard-audit-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("r.yaml"),
        "- name: from-file\n  bus: filed\n  event_pattern: {source: [a]}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["rules", "apply"])
        .arg(&dir)
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{out:?}");

    let log = app.get("/v1/audit").await;
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(
        actions(&log.body),
        ["rule.put", "bus.put", "session.sign-in", "token.create"]
    );
    assert_eq!(items[0]["actor"], "switchyard rules apply");
    assert_eq!(items[0]["resource"], "buses/filed/rules/from-file");
    assert_eq!(items[1]["resource"], "buses/filed");
    assert_eq!(items[2]["actor"], "night shift");
    assert_eq!(items[2]["token_id"], made.body["id"]);
}
