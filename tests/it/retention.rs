//! Retention: history older than `--retention-hours` is removed, unless something of it is still
//! owed (a delivery not yet final) or waits for an operator (a dead letter, a held delivery).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::sink::{Reply, Sink};
use crate::support::{TestApp, wait_for};

const LONG: Duration = Duration::from_secs(15);

async fn post_one(app: &TestApp, kind: &str) -> Uuid {
    let answer: Value = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": kind, "detail": {}}),
        )
        .await;
    answer["entries"][0]["event_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no event id in {answer}"))
}

async fn states(app: &TestApp, event: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT state FROM deliveries WHERE event_id = $1 ORDER BY rule_name, target_id",
    )
    .bind(event)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn rows_of(app: &TestApp, event: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE id = $1),
                (SELECT count(*) FROM deliveries WHERE event_id = $1),
                -- Its tries: failed ones in their table, the one that delivered in its row.
                (SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.event_id = $1)
                + (SELECT count(*) FROM deliveries
                   WHERE event_id = $1 AND delivered_attempt IS NOT NULL)",
    )
    .bind(event)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn old_finished_history_is_removed_and_what_is_owed_or_dead_is_kept() {
    let app = TestApp::delivering(&["--retention-hours", "1", "--prune-interval-ms", "100"]).await;
    let ok = Sink::start().await;
    let refusing = Sink::start().await;
    refusing.otherwise(Reply::Status(422));
    app.put_rule("default", "ok", json!({"event_pattern": {"detail-type": ["ok", "both"]}, "targets": [{"id": "t", "url": ok.url}]})).await;
    app.put_rule("default", "refused", json!({"event_pattern": {"detail-type": ["refused", "both", "discarded"]}, "targets": [{"id": "t", "url": refusing.url}]})).await;

    let delivered = post_one(&app, "ok").await;
    let half_dead = post_one(&app, "both").await;
    let discarded = post_one(&app, "discarded").await;
    let unmatched = post_one(&app, "nobody-listens").await;
    let recent = post_one(&app, "ok").await;
    for (event, want) in [
        (delivered, vec!["delivered"]),
        (half_dead, vec!["delivered", "dead"]),
        (discarded, vec!["dead"]),
        (recent, vec!["delivered"]),
    ] {
        wait_for("deliveries to end", LONG, || async {
            (states(&app, event).await == want).then_some(())
        })
        .await;
    }
    let dead_letter: Uuid =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE event_id = $1 AND state = 'dead'")
            .bind(discarded)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let gone = app
        .delete(&format!("/v1/dead-letters/{dead_letter}?reason=known+bad"))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{gone:?}");
    assert_eq!(rows_of(&app, delivered).await, (1, 1, 1));

    // Everything but `recent` was received two hours ago, past the one-hour retention.
    sqlx::query("UPDATE events SET received_at = now() - interval '2 hours' WHERE id = ANY($1)")
        .bind([delivered, half_dead, discarded, unmatched])
        .execute(&app.pool)
        .await
        .unwrap();

    for event in [delivered, discarded, unmatched] {
        wait_for("old finished history to be removed", LONG, || async {
            (rows_of(&app, event).await == (0, 0, 0)).then_some(())
        })
        .await;
        let trace = app.get(&format!("/v1/events/{event}")).await;
        assert_eq!(trace.status, StatusCode::NOT_FOUND, "{trace:?}");
    }
    // A dead letter keeps its event, its sibling delivery and every attempt, however old.
    assert_eq!(rows_of(&app, half_dead).await, (1, 2, 2));
    let trace = app.get(&format!("/v1/events/{half_dead}")).await;
    assert_eq!(trace.status, StatusCode::OK, "{trace:?}");
    let listed = app.get("/v1/dead-letters").await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{listed:?}"
    );
    // Recent history stays.
    assert_eq!(rows_of(&app, recent).await, (1, 1, 1));

    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "switchyard_events_pruned_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn retention_zero_keeps_everything_that_a_shorter_retention_would_prune() {
    let app = TestApp::delivering(&["--retention-hours", "0", "--prune-interval-ms", "50"]).await;
    let ok = Sink::start().await;
    app.put_rule(
        "default",
        "ok",
        json!({"event_pattern": {"detail-type": ["ok"]}, "targets": [{"id": "t", "url": ok.url}]}),
    )
    .await;
    let event = post_one(&app, "ok").await;
    wait_for("the delivery", LONG, || async {
        (states(&app, event).await == ["delivered"]).then_some(())
    })
    .await;
    sqlx::query("UPDATE events SET received_at = now() - interval '3650 days' WHERE id = $1")
        .bind(event)
        .execute(&app.pool)
        .await
        .unwrap();
    // Ten prune intervals: with retention 0 nothing is removed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rows_of(&app, event).await, (1, 1, 1));
    // The control: the same event is prunable, so it was retention 0 that kept it. A process
    // with a one-hour retention on the same database removes it.
    let pruner = app
        .another(&["--retention-hours", "1", "--prune-interval-ms", "50"])
        .await;
    wait_for(
        "a one-hour retention to prune the old event",
        LONG,
        || async { (rows_of(&app, event).await == (0, 0, 0)).then_some(()) },
    )
    .await;
    pruner.stop().await;
}
