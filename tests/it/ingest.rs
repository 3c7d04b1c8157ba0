use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

async fn with_order_rule(flags: &[&str]) -> TestApp {
    let app = TestApp::spawn_with(flags).await;
    app.put_rule(
        "default",
        "big-orders",
        json!({
            "event_pattern": {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}},
            "targets": [{"id": "billing", "url": "http://127.0.0.1:9/a"}, {"id": "audit", "url": "http://127.0.0.1:9/b"}]
        }),
    )
    .await;
    app
}

fn order(total: u32) -> Value {
    json!({"source": "shop", "detail-type": "Order Placed", "detail": {"total": total}})
}

#[tokio::test]
async fn an_accepted_event_is_stored_with_a_delivery_per_target_of_each_matching_rule() {
    let app = with_order_rule(&[]).await;
    // A rule made a moment ago matches at once, and a rule without targets is still recorded.
    app.put_rule(
        "default",
        "all-shop",
        json!({"event_pattern": {"source": ["shop"]}}),
    )
    .await;
    let answer = app.post_events("default", order(150)).await;
    assert_eq!(answer["failed_entry_count"], 0);
    let id = answer["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let trace = app.get(&format!("/v1/events/{id}")).await;
    assert_eq!(trace.status, StatusCode::OK, "{trace:?}");
    let event = &trace.body["event"];
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["version"], "0");
    assert_eq!(event["source"], "shop");
    assert_eq!(event["detail-type"], "Order Placed");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["region"], "local");
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["detail"], json!({"total": 150}));
    assert_eq!(
        trace.body["matched_rules"],
        json!(["all-shop", "big-orders"])
    );
    let deliveries = trace.body["deliveries"].as_array().unwrap();
    let targets: Vec<(&str, &str, &str)> = deliveries
        .iter()
        .map(|d| {
            (
                d["rule"].as_str().unwrap(),
                d["target_id"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("big-orders", "audit", "pending"),
            ("big-orders", "billing", "pending")
        ]
    );
    assert_eq!(deliveries[0]["attempts"], 0);
    assert_eq!(deliveries[0]["attempt_log"], json!([]));
}

#[tokio::test]
async fn a_batch_answers_each_entry_in_order_and_stores_only_the_valid_ones() {
    let app = with_order_rule(&[]).await;
    let body = json!({"entries": [
        order(150),
        {"source": "shop", "detail": {}},
        order(5),
        {"source": "shop", "detail-type": "x", "detail": [1]},
        {"source": "shop", "detail-type": "x", "detail": "{\"total\": 500}", "time": "2026-01-02T03:04:05Z", "resources": ["r1"]},
        "not an object",
    ]});
    let answer = app.post_events("default", body).await;
    assert_eq!(answer["failed_entry_count"], 3, "{answer}");
    let entries = answer["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    for i in [0, 2, 4] {
        assert!(
            entries[i]["event_id"].is_string(),
            "entry {i}: {}",
            entries[i]
        );
    }
    assert_eq!(
        entries[1],
        json!({"error_code": "InvalidArgument", "error_message": "detail-type: is required"})
    );
    assert_eq!(entries[3]["error_code"], "MalformedDetail");
    assert_eq!(entries[5]["error_code"], "InvalidArgument");

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 3);
    let deliveries: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.id::text, d.target_id FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY 1, 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let expected: Vec<(String, String)> = [0, 4]
        .iter()
        .flat_map(|&i| {
            let id = entries[i]["event_id"].as_str().unwrap().to_owned();
            [(id.clone(), "audit".to_owned()), (id, "billing".to_owned())]
        })
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(deliveries, expected);

    let detail_string = app
        .get(&format!(
            "/v1/events/{}",
            entries[4]["event_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail_string.body["event"]["time"], "2026-01-02T03:04:05Z");
    assert_eq!(detail_string.body["event"]["resources"], json!(["r1"]));
}

/// Ingest matches each event without reading again the parts no rule names (serde_json read
/// them); the answers are those of reading everything: brackets, quotes and escapes inside
/// skipped parts do not confuse where the parts end, and an escape the matcher's reader refuses
/// in a part a rule reads (a lone UTF-16 surrogate) fails its entry alone.
#[tokio::test]
async fn parts_no_rule_names_are_skipped_with_the_answers_of_reading_everything() {
    let app = with_order_rule(&[]).await;
    // Raw text: serde_json's `json!` cannot hold a lone surrogate.
    let filler =
        r#""skip": {"s": ["}]\"{[", "\\", "é\u00e9", {"deep": [[[1, "]]]"]]]}], "n": 1e3}"#;
    let long = "x".repeat(200);
    let body = format!(
        r#"{{"entries": [
            {{"source": "shop", "detail-type": "x", "detail": {{{filler}, "total": 150, "after": "}}"}}}},
            {{"source": "shop", "detail-type": "x", "detail": {{"skip": ["{long}"], "total": "\ud800"}}}},
            {{"source": "shop", "detail-type": "x", "detail": {{"skip": "{long}]}}]}}", "total": 5}}}},
            {{"source": "shop", "detail-type": "x", "detail": {{"skip": "\ud83d\ude80", "total": 101}}}}
        ]}}"#
    );
    let answer = app
        .call_raw(
            Method::POST,
            "/v1/buses/default/events",
            "application/json",
            body.into_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let entries = answer.body["entries"].as_array().unwrap();
    assert_eq!(answer.body["failed_entry_count"], 1, "{}", answer.body);
    assert_eq!(entries[1]["error_code"], "MalformedDetail");
    assert!(
        entries[1]["error_message"]
            .as_str()
            .unwrap()
            .contains("Unpaired UTF-16 surrogate"),
        "{}",
        entries[1]
    );
    // Which stored events matched the rule: the first and the last.
    let mut matched = Vec::new();
    for i in [0, 2, 3] {
        let id = entries[i]["event_id"].as_str().expect("accepted");
        let trace = app.get(&format!("/v1/events/{id}")).await;
        matched.push(trace.body["matched_rules"].clone());
    }
    assert_eq!(
        matched,
        [json!(["big-orders"]), json!([]), json!(["big-orders"])]
    );
}

#[tokio::test]
async fn the_stored_event_keeps_numbers_as_written() {
    let app = TestApp::spawn().await;
    let body = br#"{"source": "s", "detail-type": "t", "detail": {"price": 1.50, "big": 12345678901234567890, "e": 1e3}}"#;
    let answer = app
        .call_raw(
            Method::POST,
            "/v1/buses/default/events",
            "application/json",
            body.to_vec(),
        )
        .await;
    let id: uuid::Uuid = answer.body["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT body FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        stored.ends_with(r#""detail":{"price": 1.50, "big": 12345678901234567890, "e": 1e3}}"#),
        "{stored}"
    );
}

#[tokio::test]
async fn disabled_rules_do_not_match() {
    let app = TestApp::spawn().await;
    app.put_rule("default", "off", json!({"event_pattern": {"source": ["shop"]}, "state": "disabled", "targets": [{"id": "t", "url": "http://x"}]})).await;
    let answer = app.post_events("default", order(1)).await;
    let id = answer["entries"][0]["event_id"].as_str().unwrap();
    let trace = app.get(&format!("/v1/events/{id}")).await;
    assert_eq!(trace.body["matched_rules"], json!([]));
    assert_eq!(trace.body["deliveries"], json!([]));
}

#[tokio::test]
async fn size_and_count_limits_are_enforced() {
    let app =
        TestApp::spawn_with(&["--max-entry-bytes", "1024", "--max-request-bytes", "4096"]).await;
    let big = json!({"source": "s", "detail-type": "t", "detail": {"x": "a".repeat(1100)}});
    let answer = app
        .post_events("default", json!({"entries": [big, order(1)]}))
        .await;
    assert_eq!(answer["failed_entry_count"], 1);
    assert_eq!(answer["entries"][0]["error_code"], "EntryTooLarge");
    assert!(answer["entries"][1]["event_id"].is_string());

    let many: Vec<Value> = (0..5)
        .map(|_| json!({"source": "s", "detail-type": "t", "detail": {"x": "a".repeat(900)}}))
        .collect();
    let too_large = app
        .post("/v1/buses/default/events", json!({"entries": many}))
        .await;
    assert_eq!(
        too_large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{too_large:?}"
    );

    let app = TestApp::spawn().await;
    let entries: Vec<Value> = (0..101).map(|_| order(1)).collect();
    let too_many = app
        .post("/v1/buses/default/events", json!({"entries": entries}))
        .await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_many.body["errors"][0]["pointer"], "/entries");
    let empty = app
        .post("/v1/buses/default/events", json!({"entries": []}))
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn bad_requests_to_ingest_are_refused_whole() {
    let app = TestApp::spawn().await;
    let unknown_bus = app.post("/v1/buses/nope/events", order(1)).await;
    assert_eq!(unknown_bus.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_bus.content_type, "application/problem+json");
    let not_json = app
        .call_raw(
            Method::POST,
            "/v1/buses/default/events",
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let array = app
        .call_raw(
            Method::POST,
            "/v1/buses/default/events",
            "application/json",
            b"[]".to_vec(),
        )
        .await;
    assert_eq!(array.status, StatusCode::BAD_REQUEST);
    let form = app
        .call_raw(
            Method::POST,
            "/v1/buses/default/events",
            "application/x-www-form-urlencoded",
            b"a=1".to_vec(),
        )
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let extra = app
        .post(
            "/v1/buses/default/events",
            json!({"entries": [order(1)], "bus": "x"}),
        )
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
    assert_eq!(extra.body["errors"][0]["pointer"], "/bus");
}

#[tokio::test]
async fn a_bus_made_by_another_process_is_found_at_once() {
    let app = TestApp::spawn_with(&["--rules-refresh-ms", "600000"]).await;
    sqlx::query("INSERT INTO buses (name) VALUES ('fresh')")
        .execute(&app.pool)
        .await
        .unwrap();
    let answer = app.post_events("fresh", order(1)).await;
    assert_eq!(answer["failed_entry_count"], 0);
}

#[tokio::test]
async fn event_traces_of_unknown_events_are_not_found() {
    let app = TestApp::spawn().await;
    for id in ["0191b1f4-0000-7000-8000-000000000000", "not-a-uuid"] {
        let answer = app.get(&format!("/v1/events/{id}")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(answer.content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn test_event_pattern_answers_match_no_match_and_the_error_location() {
    let app = TestApp::spawn().await;
    let pattern = json!({"detail": {"total": [{"numeric": [">", 100]}]}});
    let yes = app
        .post(
            "/v1/test-event-pattern",
            json!({"event_pattern": pattern, "event": {"detail": {"total": 101}}}),
        )
        .await;
    assert_eq!(yes.body, json!({"result": true}));
    let no = app
        .post(
            "/v1/test-event-pattern",
            json!({"event_pattern": pattern, "event": {"detail": {"total": 100}}}),
        )
        .await;
    assert_eq!(no.body, json!({"result": false}));
    let as_strings = app
        .post("/v1/test-event-pattern", json!({"event_pattern": pattern.to_string(), "event": json!({"detail": {"total": 101}}).to_string()}))
        .await;
    assert_eq!(as_strings.body, json!({"result": true}));
    let invalid = app
        .post(
            "/v1/test-event-pattern",
            json!({"event_pattern": {"detail": {"total": [{"prefix": 5}]}}, "event": {}}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.body["errors"][0]["pointer"],
        "/event_pattern/detail/total/0/prefix"
    );
    assert!(
        invalid.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Event pattern is not valid. Reason: ")
    );
    let missing = app.post("/v1/test-event-pattern", json!({})).await;
    let pointers: Vec<&str> = missing.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/event_pattern", "/event"]);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_request_may_be_larger_than_other_routes_allow_up_to_the_ingest_limit() {
    let app = TestApp::spawn().await;
    // Ten entries of 200 KB: 2 MB, over the 1 MiB limit of other routes, under the 4 MiB default.
    let entries: Vec<Value> = (0..10)
        .map(|_| json!({"source": "s", "detail-type": "t", "detail": {"x": "a".repeat(200_000)}}))
        .collect();
    let answer = app
        .post_events("default", json!({"entries": entries}))
        .await;
    assert_eq!(answer["failed_entry_count"], 0);
}

#[tokio::test]
async fn serve_applies_rule_files_at_start() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let app = TestApp::spawn_with(&["--rules", rules.to_str().unwrap()]).await;
    let rule = app
        .get("/v1/buses/default/rules/big-orders-to-billing")
        .await;
    assert_eq!(rule.status, StatusCode::OK, "{rule:?}");
    assert_eq!(app.get("/v1/buses/security").await.status, StatusCode::OK);
    let answer = app
        .post_events("default", json!({"source": "shop", "detail-type": "Order Placed", "detail": {"currency": "EUR", "total": 120}}))
        .await;
    let id = answer["entries"][0]["event_id"].as_str().unwrap();
    let trace = app.get(&format!("/v1/events/{id}")).await;
    assert_eq!(
        trace.body["matched_rules"],
        json!(["big-orders-to-billing"])
    );
}
