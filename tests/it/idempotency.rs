//! Idempotent ingest (issue 12, item 2): an entry may carry an `idempotency_key`; within the
//! bus's de-duplication window a key already accepted answers the original event id, marked as
//! a duplicate, and creates nothing (no event, no delivery) — also for concurrent requests,
//! requests to two processes, and repeats within one batch. Keys are per bus.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

fn entry(key: &str, n: u64) -> Value {
    json!({"source": "shop", "detail-type": "placed", "detail": {"n": n}, "idempotency_key": key})
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (events, deliveries)
}

async fn with_rule() -> TestApp {
    let app = TestApp::spawn().await;
    app.put_rule(
        "default",
        "all",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": "http://10.255.255.1/"}]}),
    )
    .await;
    app
}

#[tokio::test]
async fn a_repeated_key_answers_the_first_event_and_creates_nothing() {
    let app = with_rule().await;
    let first = app.post_events("default", entry("order-1", 1)).await;
    let id = first["entries"][0]["event_id"].as_str().unwrap().to_owned();
    assert_eq!(first["entries"][0].get("duplicate"), None, "{first}");

    let again = app.post_events("default", entry("order-1", 2)).await;
    assert_eq!(again["failed_entry_count"], 0);
    assert_eq!(again["entries"][0]["event_id"], id.as_str());
    assert_eq!(again["entries"][0]["duplicate"], true);
    assert_eq!(
        counts(&app).await,
        (1, 1),
        "no second event, no second delivery"
    );

    // In one batch: the first of a key is accepted, the rest are its duplicates; other keys and
    // entries without a key are accepted as usual.
    let batch = app
        .post_events(
            "default",
            json!({"entries": [entry("order-2", 1), entry("order-2", 2), entry("order-1", 3),
                               {"source": "shop", "detail-type": "placed", "detail": {}}]}),
        )
        .await;
    let results = batch["entries"].as_array().unwrap();
    assert_eq!(results[0].get("duplicate"), None);
    assert_eq!(results[1]["event_id"], results[0]["event_id"]);
    assert_eq!(results[1]["duplicate"], true);
    assert_eq!(results[2]["event_id"], id.as_str());
    assert_eq!(results[2]["duplicate"], true);
    assert_eq!(results[3].get("duplicate"), None);
    assert_eq!(counts(&app).await, (3, 3));

    // Keys are per bus.
    assert_eq!(
        app.put("/v1/buses/other", json!({})).await.status,
        StatusCode::CREATED
    );
    let elsewhere = app.post_events("other", entry("order-1", 1)).await;
    assert_ne!(elsewhere["entries"][0]["event_id"], id.as_str());
    assert_eq!(elsewhere["entries"][0].get("duplicate"), None);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_event_across_processes() {
    let app = with_rule().await;
    let other = app.another(&[]).await;
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..50 {
        let base = if i % 2 == 0 { &app.base } else { &other.base };
        let request = app
            .client
            .post(format!("{base}/v1/buses/default/events"))
            .bearer_auth(crate::support::ADMIN_TOKEN)
            .json(&entry("the-same", i));
        posts.spawn(async move {
            let answer = request.send().await.expect("answered");
            assert_eq!(answer.status(), StatusCode::OK);
            answer.json::<Value>().await.expect("a JSON result")
        });
    }
    let answers = posts.join_all().await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| a["entries"][0]["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one event id for all: {ids:?}");
    let originals = answers
        .iter()
        .filter(|a| a["entries"][0].get("duplicate").is_none())
        .count();
    assert_eq!(originals, 1, "exactly one answer is the original");
    assert_eq!(counts(&app).await, (1, 1));
}

#[tokio::test]
async fn a_key_past_the_window_makes_a_new_event() {
    let app = with_rule().await;
    let first = app.post_events("default", entry("late", 1)).await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let later = app.post_events("default", entry("late", 2)).await;
    assert_ne!(
        later["entries"][0]["event_id"],
        first["entries"][0]["event_id"]
    );
    assert_eq!(later["entries"][0].get("duplicate"), None);
    // The new event holds the key now.
    let again = app.post_events("default", entry("late", 3)).await;
    assert_eq!(
        again["entries"][0]["event_id"],
        later["entries"][0]["event_id"]
    );
    assert_eq!(counts(&app).await, (2, 2));

    // A bus may shorten its window (0: no de-duplication).
    let set = app
        .put("/v1/buses/default", json!({"dedup_window_seconds": 0}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(set.body["dedup_window_seconds"], 0);
    let fresh = app.post_events("default", entry("late", 4)).await;
    assert_ne!(
        fresh["entries"][0]["event_id"],
        later["entries"][0]["event_id"]
    );
    assert_eq!(counts(&app).await, (3, 3));
}

#[tokio::test]
async fn a_bad_key_fails_its_entry_alone_and_a_bad_window_is_refused() {
    let app = with_rule().await;
    let long = "k".repeat(257);
    let answer = app
        .post_events(
            "default",
            json!({"entries": [
                {"source": "shop", "detail-type": "placed", "detail": {}, "idempotency_key": 7},
                {"source": "shop", "detail-type": "placed", "detail": {}, "idempotency_key": ""},
                {"source": "shop", "detail-type": "placed", "detail": {}, "idempotency_key": long},
                {"source": "shop", "detail-type": "placed", "detail": {}, "idempotency_key": "a\u{0}b"},
                entry("fine", 1),
            ]}),
        )
        .await;
    assert_eq!(answer["failed_entry_count"], 4, "{answer}");
    for result in &answer["entries"].as_array().unwrap()[..4] {
        assert_eq!(result["error_code"], "InvalidArgument", "{result}");
        assert!(
            result["error_message"]
                .as_str()
                .unwrap()
                .starts_with("idempotency_key:"),
            "{result}"
        );
    }
    assert!(answer["entries"][4]["event_id"].is_string());

    for (window, why) in [
        (json!(-1), "negative"),
        (json!(1.5), "a fraction"),
        (json!(8 * 24 * 3600), "past the retention of 168 hours"),
    ] {
        let refused = app
            .put("/v1/buses/default", json!({"dedup_window_seconds": window}))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{why}: {refused:?}"
        );
        assert_eq!(
            refused.body["errors"][0]["pointer"],
            "/dedup_window_seconds"
        );
    }
    let bus = app.get("/v1/buses/default").await;
    assert_eq!(bus.body["dedup_window_seconds"], 86400, "unchanged");
}

#[tokio::test]
async fn retention_removes_keys_past_their_window_and_keeps_the_others() {
    let app = TestApp::spawn_with(&["--retention-hours", "48", "--prune-interval-ms", "50"]).await;
    for key in ["old", "recent"] {
        app.post_events("default", entry(key, 1)).await;
    }
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let left: Vec<String> = crate::support::wait_for(
        "the old key to be removed",
        std::time::Duration::from_secs(15),
        || async {
            let keys: Vec<String> =
                sqlx::query_scalar("SELECT key FROM idempotency_keys ORDER BY key")
                    .fetch_all(&app.pool)
                    .await
                    .unwrap();
            (keys.len() == 1).then_some(keys)
        },
    )
    .await;
    assert_eq!(left, ["recent"]);
}
