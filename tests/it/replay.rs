//! Archives and replays (issue 12, item 3): an archive keeps the events its pattern selects past
//! the general retention; a replay re-matches an archive's time window against a bus's current
//! rules (all or a subset), in the original order, marks each copy with `replay-name`, reports its
//! progress, can be cancelled, and resumed after a SIGKILL replays nothing twice.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::app::delivering_flags;
use crate::support::sink::Sink;
use crate::support::{TestApp, wait_for};

const LONG: Duration = Duration::from_secs(60);

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

fn events(from: u64, to: u64) -> Value {
    let entries: Vec<Value> = (from..to)
        .map(|seq| json!({"source": "shop", "detail-type": "placed", "detail": {"seq": seq}}))
        .collect();
    json!({ "entries": entries })
}

async fn post(app: &TestApp, from: u64, to: u64) {
    for chunk in (from..to).step_by(100) {
        let answer = app
            .post_events("default", events(chunk, (chunk + 100).min(to)))
            .await;
        assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    }
}

async fn put_archive(app: &TestApp, name: &str, body: Value) -> Value {
    let answer = app
        .put(&format!("/v1/buses/default/archives/{name}"), body)
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    answer.body
}

async fn replay_state(app: &TestApp, name: &str) -> Value {
    let answer = app.get(&format!("/v1/replays/{name}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.body
}

async fn wait_state(app: &TestApp, name: &str, state: &str) -> Value {
    wait_for(&format!("replay {name} to be {state}"), LONG, || async {
        let replay = replay_state(app, name).await;
        (replay["state"] == state).then_some(replay)
    })
    .await
}

/// Each replayed copy's original seq, in the order the copies were made (their ids are
/// time-ordered), with how many copies each original has.
async fn copies(app: &TestApp) -> Vec<u64> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM events WHERE body LIKE '%\"replay-name\"%' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["detail"]["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn seqs_with_name(sink: &Sink, name: &str) -> Vec<u64> {
    sink.received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
        .filter(|e| e["replay-name"] == name)
        .map(|e| e["detail"]["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_archive_keeps_what_its_pattern_selects_past_the_retention_until_it_is_deleted() {
    let app = TestApp::spawn_with(&["--retention-hours", "1", "--prune-interval-ms", "100"]).await;
    let bad = app
        .put(
            "/v1/buses/default/archives/big",
            json!({"event_pattern": {"detail": {"seq": [{"numeric": [">="]}]}}, "retention_days": 36501, "colour": 1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.pointers(),
        [
            "/event_pattern/detail/seq/0/numeric/1",
            "/retention_days",
            "/colour"
        ]
    );
    let created = put_archive(
        &app,
        "big",
        json!({"event_pattern": {"detail": {"seq": [{"numeric": [">=", 5]}]}}, "description": "big ones"}),
    )
    .await;
    assert_eq!(created["retention_days"], 0, "kept for ever by default");
    assert_eq!(
        created["event_pattern"],
        json!({"detail": {"seq": [{"numeric": [">=", 5]}]}})
    );
    post(&app, 0, 10).await;
    let archive = app.get("/v1/buses/default/archives/big").await;
    assert_eq!(archive.body["event_count"], 5, "{:?}", archive.body);
    let listed = app.get("/v1/buses/default/archives").await;
    assert_eq!(listed.body["archives"][0]["name"], "big");

    // Two hours old, past the one-hour retention: only what the archive holds stays.
    sqlx::query("UPDATE events SET received_at = now() - interval '2 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    wait_for("the unarchived events to go", LONG, || async {
        (count().await == 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 5, "archived events outlive the retention");

    let deleted = app.delete("/v1/buses/default/archives/big").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    wait_for(
        "retention to take them once the archive is gone",
        LONG,
        || async { (count().await == 0).then_some(()) },
    )
    .await;
    let gone = app.get("/v1/buses/default/archives/big").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let audit = app.get("/v1/audit?resource=buses/default/archives").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["archive.delete", "archive.put"]);
}

#[tokio::test]
async fn a_replay_sends_a_windows_events_again_in_order_to_the_chosen_rules() {
    let app = TestApp::delivering(&[]).await;
    let (a, b) = (Sink::start().await, Sink::start().await);
    for (rule, sink) in [("a", &a), ("b", &b)] {
        app.put_rule(
            "default",
            rule,
            json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": sink.url}]}),
        )
        .await;
    }
    put_archive(&app, "all", json!({})).await;
    post(&app, 0, 10).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let from = now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    post(&app, 10, 30).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let to = now();
    post(&app, 30, 40).await;
    wait_for("the live deliveries", LONG, || async {
        (a.count() == 40 && b.count() == 40).then_some(())
    })
    .await;

    let bad = app
        .post(
            "/v1/replays",
            json!({"name": "r1", "bus": "default", "archive": "nope", "from": from, "to": to}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["pointer"], "/archive");
    let bad = app
        .post(
            "/v1/replays",
            json!({"name": "r1", "bus": "default", "archive": "all", "from": from, "to": to, "rules": ["a", "zz"]}),
        )
        .await;
    assert_eq!(
        bad.body["errors"][0]["pointer"], "/rules/1",
        "{:?}",
        bad.body
    );

    let started = app
        .post(
            "/v1/replays",
            json!({"name": "r1", "bus": "default", "archive": "all", "from": from, "to": to, "rules": ["a"], "events_per_second": 200}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    assert_eq!(started.body["state"], "starting");
    let again = app
        .post(
            "/v1/replays",
            json!({"name": "r1", "bus": "default", "archive": "all", "from": from, "to": to}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let done = wait_state(&app, "r1", "completed").await;
    assert_eq!(done["total"], 20);
    assert_eq!(done["done"], 20);
    assert!(done["last_event_time"].is_string(), "{done}");
    assert_eq!(
        copies(&app).await,
        (10..30).collect::<Vec<u64>>(),
        "each event of the window copied once, in the original order"
    );
    wait_for("the replayed deliveries", LONG, || async {
        (seqs_with_name(&a, "r1").len() == 20).then_some(())
    })
    .await;
    let mut replayed = seqs_with_name(&a, "r1");
    replayed.sort_unstable();
    assert_eq!(replayed, (10..30).collect::<Vec<u64>>());
    assert_eq!(b.count(), 40, "rule b was not in the replay");

    // The copy's trace: its body carries the replay's name, its span is in the original's trace.
    let (copy, original): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT c.id, o.id FROM events c JOIN events o
           ON o.body = replace(c.body, ',\"replay-name\":\"r1\"', '')
         WHERE c.body LIKE '%\"replay-name\":\"r1\"%' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let copy = app.get(&format!("/v1/events/{copy}")).await.body;
    let original = app.get(&format!("/v1/events/{original}")).await.body;
    assert_eq!(copy["event"]["replay-name"], "r1");
    assert_eq!(copy["trace"]["trace_id"], original["trace"]["trace_id"]);
    assert_eq!(
        copy["trace"]["parent_span_id"],
        original["trace"]["span_id"]
    );
    assert_eq!(copy["matched_rules"], json!(["a"]));

    let ended = app.post("/v1/replays/r1/cancel", json!({})).await;
    assert_eq!(ended.status, StatusCode::CONFLICT, "a completed replay");
    let listed = app.get("/v1/replays?state=completed").await;
    assert_eq!(listed.body["replays"][0]["name"], "r1");
    assert_eq!(
        app.get("/v1/replays/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_replay_is_cancelled_or_resumed_after_sigkill_replaying_nothing_twice() {
    let lease = ["--lease-ms", "1000"];
    let b = TestApp::spawn().await; // API only: it works no replay
    let sink = Sink::start().await;
    b.put_rule(
        "default",
        "a",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": sink.url}]}),
    )
    .await;
    put_archive(&b, "all", json!({})).await;
    let from = now();
    post(&b, 0, 300).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let to = now();

    let url = b.db.url.clone();
    let (mut a, _) = crate::support::binary::serve(|command| {
        command
            .env("DATABASE_URL", &url)
            .args(delivering_flags(&lease));
    });
    let started = b
        .post(
            "/v1/replays",
            json!({"name": "slow", "bus": "default", "archive": "all", "from": from, "to": to, "events_per_second": 50}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    wait_for("the replay to be under way", LONG, || async {
        let done = replay_state(&b, "slow").await["done"].as_i64().unwrap();
        (done >= 60).then_some(())
    })
    .await;
    a.kill().expect("SIGKILL the replaying router");
    let _ = a.wait();
    let at_kill = replay_state(&b, "slow").await;
    assert_eq!(at_kill["state"], "running");
    assert!(at_kill["done"].as_i64().unwrap() < 300, "{at_kill}");

    // Another process takes it over once the lease expires and finishes it.
    let c = b.another(&delivering_flags(&lease)).await;
    let done = wait_state(&c, "slow", "completed").await;
    assert_eq!(
        (done["total"].clone(), done["done"].clone()),
        (json!(300), json!(300))
    );
    let made = copies(&c).await;
    let mut per_original: BTreeMap<u64, usize> = BTreeMap::new();
    for seq in &made {
        *per_original.entry(*seq).or_default() += 1;
    }
    assert_eq!(per_original.len(), 300);
    assert!(
        per_original.values().all(|n| *n == 1),
        "no event was replayed twice"
    );
    assert_eq!(
        made,
        (0..300).collect::<Vec<u64>>(),
        "in the original order"
    );

    // A cancelled replay stops where it is.
    let started = c
        .post(
            "/v1/replays",
            json!({"name": "stopped", "bus": "default", "archive": "all", "from": from, "to": to, "events_per_second": 20}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED);
    wait_for("the second replay to be under way", LONG, || async {
        (replay_state(&c, "stopped").await["done"].as_i64().unwrap() >= 10).then_some(())
    })
    .await;
    let cancelled = c.post("/v1/replays/stopped/cancel", json!({})).await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["state"], "cancelled");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = replay_state(&c, "stopped").await;
    assert_eq!(after["state"], "cancelled");
    let copied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE body LIKE '%\"replay-name\":\"stopped\"%'",
    )
    .fetch_one(&c.pool)
    .await
    .unwrap();
    assert_eq!(
        copied,
        after["done"].as_i64().unwrap(),
        "done counts what was copied"
    );
    assert!(copied < 300);
}
