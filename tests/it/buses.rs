use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

const PROBLEM: &str = "application/problem+json";

#[tokio::test]
async fn buses_are_created_updated_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app
        .put("/v1/buses/orders", json!({"description": "shop orders"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["name"], "orders");
    assert_eq!(created.body["description"], "shop orders");
    assert_eq!(created.body["rule_count"], 0);

    let updated = app
        .put("/v1/buses/orders", json!({"description": "all orders"}))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["description"], "all orders");
    assert_eq!(updated.body["created_at"], created.body["created_at"]);

    let listed = app.get("/v1/buses").await;
    let names: Vec<&str> = listed.body["buses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "orders"]);

    assert_eq!(
        app.delete("/v1/buses/orders").await.status,
        StatusCode::NO_CONTENT
    );
    let gone = app.get("/v1/buses/orders").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.content_type, PROBLEM);
    assert_eq!(gone.body["detail"], "no bus named \"orders\"");
}

#[tokio::test]
async fn a_bus_may_be_created_without_a_body() {
    let app = TestApp::spawn().await;
    let answer = app.call(reqwest::Method::PUT, "/v1/buses/bare", None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    assert_eq!(answer.body["description"], "");
}

#[tokio::test]
async fn the_default_bus_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let answer = app.delete("/v1/buses/default").await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.content_type, PROBLEM);
    assert_eq!(app.get("/v1/buses/default").await.status, StatusCode::OK);
}

#[tokio::test]
async fn deleting_a_bus_with_rules_needs_force_and_takes_its_rules() {
    let app = TestApp::spawn().await;
    app.put("/v1/buses/b1", json!({})).await;
    app.put_rule("b1", "r1", json!({"event_pattern": {"source": ["a"]}}))
        .await;

    let refused = app.delete("/v1/buses/b1").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("force=true")
    );
    assert_eq!(
        app.get("/v1/buses/b1/rules/r1").await.status,
        StatusCode::OK
    );

    assert_eq!(
        app.delete("/v1/buses/b1?force=true").await.status,
        StatusCode::NO_CONTENT
    );
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM rules WHERE bus = 'b1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rules, 0);
}

#[tokio::test]
async fn bad_bus_input_is_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v1/buses/has%20space", json!({}), "parameter `bus`"),
        ("/v1/buses/ok", json!({"description": 5}), "description"),
        (
            "/v1/buses/ok",
            json!({"colour": "red"}),
            "unknown field `colour`",
        ),
        (
            "/v1/buses/ok",
            json!({"description": "x".repeat(513)}),
            "/description",
        ),
    ];
    for (path, body, expected) in cases {
        let answer = app.put(path, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {answer:?}"
        );
        assert_eq!(answer.content_type, PROBLEM);
        let text = answer.body.to_string();
        assert!(text.contains(expected), "{path} {body}: {text}");
    }
    assert_eq!(app.get("/v1/buses/ok").await.status, StatusCode::NOT_FOUND);
}
