use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

fn order_rule() -> Value {
    json!({
        "description": "orders over 100 go to billing",
        "event_pattern": {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}},
        "targets": [
            {"id": "billing", "url": "https://billing.example.com/hooks/orders"},
            {"id": "audit", "url": "http://audit.internal:8080/in", "method": "PUT",
             "headers": {"Authorization": "Bearer abc"}, "input_path": "$.detail",
             "retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age_seconds": 600},
             "timeout_ms": 1500}
        ]
    })
}

#[tokio::test]
async fn a_rule_is_created_read_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .put("/v1/buses/default/rules/big-orders", order_rule())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let rule = app.get("/v1/buses/default/rules/big-orders").await;
    assert_eq!(rule.status, StatusCode::OK);
    assert_eq!(rule.body["name"], "big-orders");
    assert_eq!(rule.body["bus"], "default");
    assert_eq!(rule.body["state"], "enabled");
    assert_eq!(rule.body["event_pattern"], order_rule()["event_pattern"]);
    let billing = &rule.body["targets"][0];
    assert_eq!(billing["method"], "POST");
    assert_eq!(billing["timeout_ms"], 5000);
    assert_eq!(
        billing["retry_policy"],
        json!({"maximum_retry_attempts": 185, "maximum_event_age_seconds": 86400})
    );
    let audit = &rule.body["targets"][1];
    assert_eq!(audit["method"], "PUT");
    assert_eq!(audit["input_path"], "$.detail");
    assert_eq!(audit["headers"]["Authorization"], "Bearer abc");

    let mut replacement = order_rule();
    replacement["state"] = json!("disabled");
    replacement["targets"] = json!([{"id": "audit", "url": "http://audit.internal:8080/v2"}]);
    let replaced = app
        .put("/v1/buses/default/rules/big-orders", replacement)
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["state"], "disabled");
    assert_eq!(replaced.body["targets"].as_array().unwrap().len(), 1);
    assert_eq!(replaced.body["created_at"], created.body["created_at"]);

    assert_eq!(
        app.delete("/v1/buses/default/rules/big-orders")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = app.get("/v1/buses/default/rules/big-orders").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body["detail"],
        "no rule named \"big-orders\" on bus \"default\""
    );
    assert_eq!(
        app.delete("/v1/buses/default/rules/big-orders")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_target_keeps_its_identity_while_its_id_stays() {
    let app = TestApp::spawn().await;
    app.put_rule("default", "r", order_rule()).await;
    let before: Vec<(String, uuid::Uuid)> =
        sqlx::query_as("SELECT target_id, id FROM targets ORDER BY target_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut edited = order_rule();
    edited["targets"][0]["url"] = json!("https://billing.example.com/v2");
    app.put_rule("default", "r", edited).await;
    let after: Vec<(String, uuid::Uuid)> =
        sqlx::query_as("SELECT target_id, id FROM targets ORDER BY target_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn rules_are_listed_by_prefix_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    for name in ["a-1", "a-2", "a-3", "b-1"] {
        app.put_rule(
            "default",
            name,
            json!({"event_pattern": {"source": [name]}}),
        )
        .await;
    }
    let page = app.get("/v1/buses/default/rules?prefix=a-&limit=2").await;
    let names = |body: &Value| -> Vec<String> {
        body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page.body), ["a-1", "a-2"]);
    let token = page.body["next_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = app
        .get(&format!(
            "/v1/buses/default/rules?prefix=a-&limit=2&next_token={token}"
        ))
        .await;
    assert_eq!(names(&next.body), ["a-3"]);
    assert_eq!(next.body["next_token"], Value::Null);
    let all = app.get("/v1/buses/default/rules").await;
    assert_eq!(names(&all.body), ["a-1", "a-2", "a-3", "b-1"]);
    assert_eq!(
        app.get("/v1/buses/default/rules?limit=0").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/v1/buses/nope/rules").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invalid_rules_are_refused_field_by_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    app.put_rule("default", "keep", order_rule()).await;
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "missing pattern",
            json!({"targets": []}),
            vec!["/event_pattern"],
        ),
        (
            "pattern not an object",
            json!({"event_pattern": [1]}),
            vec!["/event_pattern"],
        ),
        (
            "engine error carries its pointer",
            json!({"event_pattern": {"detail": {"n": [{"numeric": [">", "x"]}]}}}),
            vec!["/event_pattern/detail/n/0/numeric/1"],
        ),
        (
            "six targets",
            json!({"event_pattern": {"source": ["a"]}, "targets": (0..6).map(|i| json!({"id": format!("t{i}"), "url": "http://x"})).collect::<Vec<_>>()}),
            vec!["/targets"],
        ),
        (
            "bad target fields",
            json!({"event_pattern": {"source": ["a"]}, "targets": [{"id": "", "url": "mailto:x", "method": "GET", "timeout_ms": 0}]}),
            vec![
                "/targets/0/id",
                "/targets/0/url",
                "/targets/0/method",
                "/targets/0/timeout_ms",
            ],
        ),
        (
            "two input kinds",
            json!({"event_pattern": {"source": ["a"]}, "targets": [{"id": "t", "url": "http://x", "input": {}, "input_path": "$"}]}),
            vec!["/targets/0/input_path"],
        ),
        (
            "bad state and unknown field",
            json!({"event_pattern": {"source": ["a"]}, "state": "on", "owner": "me"}),
            vec!["/state", "/owner"],
        ),
    ];
    for (name, body, pointers) in cases {
        let answer = app.put("/v1/buses/default/rules/keep", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}: {answer:?}");
        assert_eq!(answer.content_type, "application/problem+json", "{name}");
        let got: Vec<&str> = answer.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no errors list: {answer:?}"))
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert_eq!(got, pointers, "{name}: {answer:?}");
    }
    let engine = app
        .put(
            "/v1/buses/default/rules/keep",
            json!({"event_pattern": {"detail": {"n": [{"numeric": [">", "x"]}]}}}),
        )
        .await;
    assert_eq!(
        engine.body["errors"][0]["detail"],
        "Event pattern is not valid. Reason: Value of > must be numeric"
    );
    let kept = app.get("/v1/buses/default/rules/keep").await;
    assert_eq!(kept.body["event_pattern"], order_rule()["event_pattern"]);
    assert_eq!(kept.body["targets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_requests_get_problem_answers() {
    let app = TestApp::spawn_with(&[]).await;
    let path = "/v1/buses/default/rules/r";
    let not_json = app
        .call_raw(Method::PUT, path, "application/json", b"{nope".to_vec())
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.content_type, "application/problem+json");
    let wrong_type = app
        .call_raw(Method::PUT, path, "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!(r#"{{"description": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let too_large = app
        .call_raw(Method::PUT, path, "application/json", huge.into_bytes())
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.content_type, "application/problem+json");
    let bad_name = app
        .put(
            "/v1/buses/default/rules/a%2Fb",
            json!({"event_pattern": {"source": ["a"]}}),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_name.body["detail"]
            .as_str()
            .unwrap()
            .contains("parameter `rule`")
    );
    let no_bus = app
        .put(
            "/v1/buses/nope/rules/r",
            json!({"event_pattern": {"source": ["a"]}}),
        )
        .await;
    assert_eq!(no_bus.status, StatusCode::NOT_FOUND);
    assert_eq!(no_bus.body["detail"], "no bus named \"nope\"");
}
