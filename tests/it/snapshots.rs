//! Rule changes reach the matcher of every process on the database.

use std::time::Duration;

use serde_json::json;

use crate::support::{TestApp, wait_for};

async fn matched_rules(app: &TestApp) -> serde_json::Value {
    let answer = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "t", "detail": {}}),
        )
        .await;
    let id = answer["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/v1/events/{id}")).await.body["matched_rules"].clone()
}

#[tokio::test]
async fn a_rule_changed_through_one_process_reaches_another_by_notification() {
    let a = TestApp::spawn().await;
    // Polling every ten minutes: only the notification can bring the change in time.
    let b = a.another(&["--rules-refresh-ms", "600000"]).await;
    assert_eq!(matched_rules(&b).await, json!([]));

    a.put_rule(
        "default",
        "shop",
        json!({"event_pattern": {"source": ["shop"]}}),
    )
    .await;
    wait_for(
        "process B to match the new rule",
        Duration::from_secs(10),
        || async { (matched_rules(&b).await == json!(["shop"])).then_some(()) },
    )
    .await;

    a.put_rule(
        "default",
        "shop",
        json!({"event_pattern": {"source": ["shop"]}, "state": "disabled"}),
    )
    .await;
    wait_for(
        "process B to stop matching the disabled rule",
        Duration::from_secs(10),
        || async { (matched_rules(&b).await == json!([])).then_some(()) },
    )
    .await;

    a.put_rule(
        "default",
        "shop2",
        json!({"event_pattern": {"source": ["shop"]}}),
    )
    .await;
    wait_for(
        "process B to match the second rule",
        Duration::from_secs(10),
        || async { (matched_rules(&b).await == json!(["shop2"])).then_some(()) },
    )
    .await;
    assert_eq!(
        a.delete("/v1/buses/default/rules/shop2").await.status,
        reqwest::StatusCode::NO_CONTENT
    );
    wait_for(
        "process B to forget the deleted rule",
        Duration::from_secs(10),
        || async { (matched_rules(&b).await == json!([])).then_some(()) },
    )
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_rule_written_behind_the_api_is_picked_up_by_polling() {
    let app = TestApp::spawn_with(&["--rules-refresh-ms", "100"]).await;
    // A change that announces nothing (as if the notification were lost).
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO rules (id, bus, name, event_pattern, state) VALUES ($1, 'default', 'quiet', '{\"source\":[\"shop\"]}', 'enabled')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE buses SET rules_version = rules_version + 1 WHERE name = 'default'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    wait_for(
        "the poll to pick up the rule",
        Duration::from_secs(10),
        || async { (matched_rules(&app).await == json!(["quiet"])).then_some(()) },
    )
    .await;
}
