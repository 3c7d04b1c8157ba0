//! Crash safety and sharing of the delivery workers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::delivering_flags;
use crate::support::sink::{Reply, Sink};
use crate::support::{TestApp, wait_for};

const LONG: Duration = Duration::from_secs(20);

/// The event's one delivery as its trace shows it (a delivery handed over at ingest has no row
/// until its outcome: the trace shows it in flight).
async fn state_of(app: &TestApp, event: &str) -> (String, i64) {
    let trace = app.get(&format!("/v1/events/{event}")).await;
    let delivery = &trace.body["deliveries"][0];
    (
        delivery["state"].as_str().unwrap_or_default().to_owned(),
        delivery["attempts"].as_i64().unwrap_or_default(),
    )
}

async fn post(app: &TestApp) -> String {
    let answer = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "t", "detail": {}}),
        )
        .await;
    answer["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A rule to a sink whose first answer never comes (the try ends at `timeout_ms`), an event
/// posted, and its first try at the sink: the event's id.
async fn first_try_hangs(app: &TestApp, sink: &Sink, timeout_ms: u32) -> String {
    sink.then([Reply::Hang]);
    rule_to(app, sink, timeout_ms).await;
    let event = post(app).await;
    wait_for("the first try to reach the sink", LONG, || async {
        (sink.count() == 1).then_some(())
    })
    .await;
    event
}

/// The event's delivery is sent again (the same `webhook-id`) and delivered, its lost try
/// counted.
async fn sent_again_and_delivered(app: &TestApp, sink: &Sink, event: &str) {
    wait_for(
        "the delivery to be sent again and delivered",
        LONG,
        || async { (state_of(app, event).await.0 == "delivered").then_some(()) },
    )
    .await;
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(state_of(app, event).await.1, 2, "the lost try is counted");
}

async fn rule_to(app: &TestApp, sink: &Sink, timeout_ms: u32) {
    app.put_rule(
        "default",
        "to-sink",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "sink", "url": sink.url, "timeout_ms": timeout_ms}]}),
    )
    .await;
}

#[tokio::test]
async fn a_delivery_whose_worker_died_is_sent_again_after_its_lease_expires() {
    let a = TestApp::delivering(&["--lease-ms", "1000"]).await;
    let sink = Sink::start().await;
    let event = first_try_hangs(&a, &sink, 30_000).await;
    assert_eq!(state_of(&a, &event).await.0, "in_flight");

    let b = a.another(&delivering_flags(&["--lease-ms", "1000"])).await;
    a.crash().await;
    sent_again_and_delivered(&b, &sink, &event).await;
}

#[tokio::test]
async fn a_handed_over_delivery_whose_try_outlives_its_lease_is_sent_again() {
    // Handed to the process's own workers at ingest, the delivery has no row; its try hangs past
    // the lease (1 s, the target's timeout 30 s). Like a claim whose lease expired, it goes back
    // to the queue with the try counted, and is sent again while the first try still hangs.
    let app = TestApp::delivering(&["--lease-ms", "1000"]).await;
    let sink = Sink::start().await;
    let event = first_try_hangs(&app, &sink, 30_000).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE event_id = $1::uuid")
        .bind(&event)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "handed over at ingest: no row until its outcome");
    assert_eq!(state_of(&app, &event).await, ("in_flight".to_owned(), 1));
    sent_again_and_delivered(&app, &sink, &event).await;
}

#[tokio::test]
async fn a_process_whose_hand_over_lease_was_rescued_goes_on_without_losing_or_doubling() {
    // As if the process had stalled past its lease: another rescues its hand-over lease while a
    // handed-over try hangs. The rescue makes the delivery's row; the process, finding its lease
    // gone, takes a new one; the hanging try's outcome finds the row and is not applied; the
    // rescued delivery is claimed and sent again, and later events are handed over again.
    let app = TestApp::delivering(&["--lease-ms", "2000"]).await;
    let sink = Sink::start().await;
    let event = first_try_hangs(&app, &sink, 3_000).await;
    let lease: uuid::Uuid = sqlx::query_scalar("SELECT handed_to FROM events WHERE id = $1::uuid")
        .bind(&event)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    wait_for("the lease to be rescued", LONG, || async {
        sqlx::query("UPDATE handover_leases SET expires_at = now() - interval '1 s' WHERE id = $1")
            .bind(lease)
            .execute(&app.pool)
            .await
            .unwrap();
        switchyard::store::handover::rescue_one(&app.pool)
            .await
            .unwrap()
            .filter(|made| *made == 1)
    })
    .await;
    wait_for("the rescued delivery to be delivered", LONG, || async {
        (state_of(&app, &event).await.0 == "delivered").then_some(())
    })
    .await;
    wait_for("the process to take a new lease", LONG, || async {
        let leases: i64 = sqlx::query_scalar("SELECT count(*) FROM handover_leases WHERE id <> $1")
            .bind(lease)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (leases == 1).then_some(())
    })
    .await;
    let later = post(&app).await;
    wait_for("a later event to be delivered", LONG, || async {
        (state_of(&app, &later).await.0 == "delivered").then_some(())
    })
    .await;
    let relet: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT handed_to FROM events WHERE id = $1::uuid")
            .bind(&later)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        relet.is_some_and(|l| l != lease),
        "handed over under a new lease"
    );
    // The hanging try ends (its timeout) and finds the rescued row: nothing of it is applied.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(state_of(&app, &event).await, ("delivered".to_owned(), 2));
    let sent: Vec<_> = sink
        .received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        sent.len(),
        3,
        "the rescued delivery twice, the later one once"
    );
    assert_eq!(sent[0], sent[1]);
}

#[tokio::test]
async fn graceful_shutdown_finishes_attempts_in_flight() {
    let app = TestApp::delivering(&[]).await;
    let pool = app.pool.clone();
    let sink = Sink::start().await;
    sink.then([Reply::Delay(Duration::from_millis(600), 200)]);
    rule_to(&app, &sink, 5_000).await;
    let event = post(&app).await;
    wait_for("the try to reach the sink", LONG, || async {
        (sink.count() == 1).then_some(())
    })
    .await;
    app.stop().await;
    let state: String =
        sqlx::query_scalar("SELECT state FROM deliveries WHERE event_id = $1::uuid")
            .bind(&event)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "delivered");
}

#[tokio::test]
async fn graceful_shutdown_releases_what_it_cannot_finish() {
    let app = TestApp::delivering(&["--shutdown-grace-ms", "300"]).await;
    let pool = app.pool.clone();
    let sink = Sink::start().await;
    sink.then([Reply::Hang]);
    rule_to(&app, &sink, 30_000).await;
    let event = post(&app).await;
    wait_for("the try to reach the sink", LONG, || async {
        (sink.count() == 1).then_some(())
    })
    .await;
    app.stop().await;
    let (state, attempts, owner): (String, i32, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT state, attempts, lease_owner FROM deliveries WHERE event_id = $1::uuid",
    )
    .bind(&event)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts, owner), ("pending", 0, None));
}

#[tokio::test]
async fn two_processes_share_the_work_and_send_nothing_twice() {
    let a = TestApp::delivering(&["--workers", "8"]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Delay(Duration::from_millis(2), 200));
    rule_to(&a, &sink, 5_000).await;
    // The second process starts after the rule exists: a rule made in one process reaches the
    // others by NOTIFY, a moment later, and an event that arrives before it matches without it
    // (under a full test run, b's first request was sometimes that moment: 200 deliveries).
    let b = a.another(&delivering_flags(&["--workers", "8"])).await;
    let mut events = Vec::new();
    for app in [&a, &b, &a] {
        let entries: Vec<Value> = (0..100)
            .map(|i| json!({"source": "shop", "detail-type": "t", "detail": {"i": i}}))
            .collect();
        let answer = app
            .post_events("default", json!({"entries": entries}))
            .await;
        events.extend(
            answer["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].clone()),
        );
    }
    // What this asserts is that all arrive once; under a full test run on two cores they may
    // take longer than the other waits allow. A timeout says where the deliveries are.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<(String, Option<uuid::Uuid>, i64)> = sqlx::query_as(
            "SELECT state, lease_owner, count(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1",
        )
        .fetch_all(&a.pool)
        .await
        .unwrap();
        let delivered: i64 = states
            .iter()
            .filter(|(state, ..)| state == "delivered")
            .map(|(.., n)| n)
            .sum();
        if delivered == 300 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "300 deliveries within a minute; by state and lease owner: {states:?}, sink saw {}",
            sink.count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: BTreeSet<String> = sink
        .received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 300);
    assert_eq!(sink.count(), 300, "no delivery was sent twice");
}

#[tokio::test]
async fn a_process_that_only_ingests_wakes_the_one_that_delivers() {
    // b looks at the queue on its own only every 30 s (the poll, and the lease rescue at half
    // the lease, capped at 30 s): a delivery within seconds is b woken by a's announcement.
    let a = TestApp::spawn().await;
    let sink = Sink::start().await;
    rule_to(&a, &sink, 5_000).await;
    let b = a
        .another(&delivering_flags(&[
            "--delivery-poll-ms",
            "60000",
            "--lease-ms",
            "120000",
        ]))
        .await;
    // b's first look at the queue (empty) is over: it waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        let event = post(&a).await;
        wait_for("b to deliver a's event", Duration::from_secs(5), || async {
            (state_of(&b, &event).await.0 == "delivered").then_some(())
        })
        .await;
    }
    assert_eq!(sink.count(), 3);
}

#[tokio::test]
async fn an_idle_process_leaves_the_database_alone() {
    // Nothing queued and nothing arriving: the worker looks at the queue once a poll interval
    // (1 s here), and the lease rescue now and then. (It once took an empty queue for a due
    // delivery and looked every 5 ms: two statements each time, ~400 transactions a second.)
    let app = TestApp::delivering(&["--delivery-poll-ms", "1000"]).await;
    let commits = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        n
    };
    // Statistics reach pg_stat_database within a second of a backend's transactions.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = commits().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = commits().await - before;
    assert!(
        during < 60,
        "{during} transactions in 3 s of an idle process"
    );
}

#[tokio::test]
async fn a_new_database_gets_statistics_of_its_hot_tables_once_they_have_grown() {
    // Postgres remakes a cached plan only when statistics change, and autovacuum's first look
    // may be a minute away: outcome batches planned on the empty table read all of it each time
    // until then. The engine gives the first statistics itself once 5,000 rows are written.
    // (`last_analyze` is set only by an ANALYZE statement; autovacuum sets `last_autoanalyze`.)
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    rule_to(&app, &sink, 5_000).await;
    // Autovacuum may visit this database meanwhile (its first look at a table comes after 50
    // rows) and analyze the tables itself, which the engine then rightly leaves alone: off for
    // these two, so the test sees what the engine does.
    for table in ["deliveries", "events"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = off)"
        )))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let analyzed = || async {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables
             WHERE relname IN ('deliveries', 'events') AND last_analyze IS NOT NULL
             ORDER BY relname",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        tables
    };
    let entry = json!({"source": "shop", "detail-type": "t", "detail": {}});
    for _ in 0..10 {
        app.post_events("default", json!({"entries": vec![entry.clone(); 100]}))
            .await;
    }
    // 1,000 events, each delivery's row written twice (stored, delivered): not yet worth it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(analyzed().await, Vec::<String>::new());
    for _ in 0..50 {
        app.post_events("default", json!({"entries": vec![entry.clone(); 100]}))
            .await;
    }
    // The counts the engine reads reach pg_stat_user_tables when backends report, up to ~10 s
    // after the writes on a loaded machine; it looks every 2 s.
    wait_for("statistics of both tables", 3 * LONG, || async {
        (analyzed().await == ["deliveries", "events"]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_delivery_waiting_for_its_targets_limit_goes_back_before_its_lease_ends() {
    // One send at a time to the target, each taking 2.5 s, and a 4 s lease: the third delivery
    // would wait 5 s for its turn and be sent after its lease ended (rescued meanwhile, and sent
    // again). Waiting is bounded by what the lease leaves; past that it goes back to the queue,
    // untried, and each delivery is sent once.
    let app = TestApp::delivering(&["--lease-ms", "4000"]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Delay(Duration::from_millis(2500), 200));
    app.put_rule(
        "default",
        "to-sink",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [
            {"id": "sink", "url": sink.url, "timeout_ms": 3000, "max_concurrency": 1}]}),
    )
    .await;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(post(&app).await);
    }
    for event in &events {
        wait_for("each delivery to be delivered", LONG, || async {
            (state_of(&app, event).await.0 == "delivered").then_some(())
        })
        .await;
    }
    let received = sink.received();
    let ids: BTreeSet<&str> = received
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(received.len(), 3, "no delivery was sent twice");
}
