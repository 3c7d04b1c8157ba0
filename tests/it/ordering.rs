//! Ordered delivery per key (issue 12, item 1): a target with `ordering.group_by` sends the
//! deliveries of one group one at a time, in the order their events were acknowledged; a group
//! that fails waits alone while the others flow; the order holds with two processes, one of them
//! killed with SIGKILL while a group fails; `on_dead: "block"` holds a group until its dead letter is redriven or discarded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::delivering_flags;
use crate::support::sink::{Received, Reply, Sink};
use crate::support::{TestApp, wait_for};

const LONG: Duration = Duration::from_secs(60);

fn ordered_rule(sink: &Sink, on_dead: &str, retries: u32) -> Value {
    json!({
        "event_pattern": {"source": ["shop"]},
        "targets": [{
            "id": "ordered",
            "url": sink.url,
            "ordering": {"group_by": "$.detail.key", "on_dead": on_dead},
            "retry_policy": {"maximum_retry_attempts": retries},
            "timeout_ms": 5000,
        }],
    })
}

fn event(key: &str, seq: u64) -> Value {
    json!({"source": "shop", "detail-type": "step", "detail": {"key": key, "seq": seq}})
}

/// The text a delivered body has for this group (and no other: the closing quote).
fn of_group(key: &str) -> String {
    format!("\"key\":\"{key}\"")
}

fn of_step(key: &str, seq: u64) -> String {
    format!("\"key\":\"{key}\",\"seq\":{seq}")
}

/// Posts `groups × steps` events, step-major (every group's step 0, then every group's step
/// 1, …), 100 entries per request, each request acknowledged before the next is sent.
async fn post_steps(app: &TestApp, groups: usize, steps: u64) {
    let entries: Vec<Value> = (0..steps)
        .flat_map(|seq| (0..groups).map(move |g| event(&format!("g-{g}"), seq)))
        .collect();
    for chunk in entries.chunks(100) {
        let answer = app
            .post_events("default", json!({ "entries": chunk }))
            .await;
        assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    }
}

/// Per group key, the steps of the requests the sink received, in arrival order (retries and
/// re-sends included).
fn arrivals(received: &[Received]) -> BTreeMap<String, Vec<(u64, Instant)>> {
    let mut groups: BTreeMap<String, Vec<(u64, Instant)>> = BTreeMap::new();
    for r in received {
        let body: Value = serde_json::from_str(&r.body).expect("a JSON event");
        let key = body["detail"]["key"].as_str().expect("a key").to_owned();
        let seq = body["detail"]["seq"].as_u64().expect("a step");
        groups.entry(key).or_default().push((seq, r.at));
    }
    groups
}

/// Every group received its steps in order (never a step before an earlier one, so never two
/// at once) and all of them.
fn assert_in_order_and_complete(received: &[Received], groups: usize, steps: u64) {
    let by_group = arrivals(received);
    assert_eq!(by_group.len(), groups, "every group was delivered");
    for (key, arrived) in &by_group {
        let seqs: Vec<u64> = arrived.iter().map(|(s, _)| *s).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] <= w[1]),
            "group {key} arrived out of order: {seqs:?}"
        );
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(
            distinct,
            (0..steps).collect::<BTreeSet<u64>>(),
            "group {key} is complete"
        );
    }
}

async fn states(app: &TestApp) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM deliveries GROUP BY state")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

async fn all_delivered(app: &TestApp, total: i64) -> Option<()> {
    (states(app).await.get("delivered") == Some(&total)).then_some(())
}

async fn groups(app: &TestApp, query: &str) -> Value {
    let answer = app
        .get(&format!(
            "/v1/buses/default/rules/ordered/targets/ordered/groups{query}"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

#[tokio::test]
async fn a_failing_group_waits_alone_and_arrives_in_order_and_complete() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    app.put_rule("default", "ordered", ordered_rule(&sink, "continue", 185))
        .await;
    // g-7 fails until it recovers; g-8 answers slowly (two of its steps at once would overlap).
    sink.when_body_has(&of_group("g-7"), Reply::Status(503));
    sink.when_body_has(
        &of_group("g-8"),
        Reply::Delay(Duration::from_millis(50), 200),
    );
    let (groups_n, steps) = (1000, 3);
    post_steps(&app, groups_n, steps).await;

    // Every other group arrives complete while g-7 keeps failing at its first step.
    wait_for("the 999 healthy groups to be delivered", LONG, || async {
        let others = sink
            .received()
            .iter()
            .filter(|r| !r.body.contains(&of_group("g-7")))
            .count();
        (others >= (groups_n - 1) * steps as usize).then_some(())
    })
    .await;
    let g7 = arrivals(&sink.received()).remove("g-7").unwrap_or_default();
    assert!(!g7.is_empty(), "g-7 was tried");
    assert!(
        g7.iter().all(|(seq, _)| *seq == 0),
        "nothing of g-7 after its failing head was sent: {g7:?}"
    );
    let listed = groups(&app, "").await;
    let g7_group = listed["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "g-7")
        .cloned()
        .expect("g-7 is listed while it owes deliveries");
    assert_eq!(g7_group["owed"], 3);
    assert_eq!(g7_group["head"]["last_status"], 503);
    assert!(
        ["retrying", "flowing"].contains(&g7_group["state"].as_str().unwrap()),
        "{g7_group}"
    );

    sink.forget(&of_group("g-7"));
    wait_for("g-7 to recover and every delivery to end", LONG, || {
        all_delivered(&app, (groups_n * steps as usize) as i64)
    })
    .await;
    let received = sink.received();
    assert_in_order_and_complete(&received, groups_n, steps);
    let g8 = arrivals(&received).remove("g-8").unwrap();
    for pair in g8.windows(2) {
        assert!(
            pair[1].1.duration_since(pair[0].1) >= Duration::from_millis(50),
            "g-8's next step was sent before its slow answer came: {g8:?}"
        );
    }
    assert_eq!(groups(&app, "").await["groups"], json!([]), "no group owes");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_groups")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "groups that owe nothing are not kept");
}

#[tokio::test]
async fn two_processes_keep_every_group_in_order_across_a_sigkill() {
    let lease = ["--lease-ms", "1000"];
    let b = TestApp::delivering(&lease).await;
    let sink = Sink::start().await;
    // Slow answers keep deliveries in flight in both processes when one is killed; g-3 fails
    // until after the kill.
    sink.otherwise(Reply::Delay(Duration::from_millis(20), 200));
    sink.when_body_has(&of_group("g-3"), Reply::Status(503));
    b.put_rule("default", "ordered", ordered_rule(&sink, "continue", 185))
        .await;
    let url = b.db.url.clone();
    let (mut a, _) = crate::support::binary::serve(|command| {
        command
            .env("DATABASE_URL", &url)
            .args(delivering_flags(&lease));
    });
    let (groups_n, steps) = (50, 8);
    post_steps(&b, groups_n, steps).await;
    let total = groups_n * steps as usize;
    wait_for("a third of the deliveries", LONG, || async {
        (sink.count() >= total / 3).then_some(())
    })
    .await;
    a.kill().expect("SIGKILL the other router");
    let _ = a.wait();
    let g3 = arrivals(&sink.received()).remove("g-3").unwrap_or_default();
    assert!(
        g3.iter().all(|(seq, _)| *seq == 0),
        "nothing of g-3 after its failing head was sent: {g3:?}"
    );
    sink.forget(&of_group("g-3"));

    wait_for("every delivery to end", LONG, || {
        all_delivered(&b, total as i64)
    })
    .await;
    let received = sink.received();
    assert_in_order_and_complete(&received, groups_n, steps);
    let ids: Vec<&str> = received
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), total);
    assert!(
        ids.len() > distinct.len(),
        "what the killed process had in flight was sent again (same webhook-id)"
    );
}

async fn dead_letter_of(app: &TestApp, key: &str, seq: u64) -> String {
    wait_for("the dead letter", LONG, || async {
        sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.state = 'dead' AND e.body LIKE '%' || $1 || '%'",
        )
        .bind(of_step(key, seq))
        .fetch_optional(&app.pool)
        .await
        .unwrap()
        .map(|id| id.to_string())
    })
    .await
}

fn steps_of(sink: &Sink, key: &str) -> Vec<u64> {
    arrivals(&sink.received())
        .remove(key)
        .unwrap_or_default()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect()
}

#[tokio::test]
async fn on_dead_block_holds_the_group_until_its_dead_letter_is_redriven_or_discarded() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    app.put_rule("default", "ordered", ordered_rule(&sink, "block", 0))
        .await;
    // Step 1 of "b" and of "d" is refused for good: dead at once.
    sink.when_body_has(&of_step("b", 1), Reply::Status(400));
    sink.when_body_has(&of_step("d", 1), Reply::Status(400));
    let entries: Vec<Value> = ["b", "c", "d"]
        .iter()
        .flat_map(|key| (0..4).map(move |seq| event(key, seq)))
        .collect();
    app.post_events("default", json!({ "entries": entries }))
        .await;

    let b_dead = dead_letter_of(&app, "b", 1).await;
    let d_dead = dead_letter_of(&app, "d", 1).await;
    wait_for("c to be delivered whole", LONG, || async {
        (steps_of(&sink, "c") == [0, 1, 2, 3]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        steps_of(&sink, "b"),
        [0, 1],
        "b holds behind its dead letter"
    );
    assert_eq!(steps_of(&sink, "d"), [0, 1]);

    let blocked = groups(&app, "?state=blocked").await;
    let keys: Vec<&str> = blocked["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["b", "d"], "{blocked}");
    let b_group = &blocked["groups"][0];
    assert_eq!(b_group["state"], "blocked");
    assert_eq!(b_group["owed"], 3);
    assert_eq!(b_group["head"]["delivery_id"], b_dead.as_str());
    assert_eq!(b_group["head"]["last_status"], 400);
    assert!(b_group["head"]["dead_reason"].is_string(), "{b_group}");
    assert_eq!(
        groups(&app, "?state=blocked&limit=1").await["groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "switchyard_delivery_groups_blocked 2"),
        "an alert can watch blocked groups: {metrics}"
    );

    // Redriven (and now accepted): b goes on in order.
    sink.forget(&of_step("b", 1));
    let redrive = app
        .post(&format!("/v1/dead-letters/{b_dead}/redrive"), json!({}))
        .await;
    assert_eq!(redrive.status, StatusCode::OK, "{:?}", redrive.body);
    wait_for("b to finish in order", LONG, || async {
        (steps_of(&sink, "b") == [0, 1, 1, 2, 3]).then_some(())
    })
    .await;

    // Discarded: d skips it and goes on.
    let discard = app.delete(&format!("/v1/dead-letters/{d_dead}")).await;
    assert_eq!(discard.status, StatusCode::NO_CONTENT, "{:?}", discard.body);
    wait_for("d to go on after the discard", LONG, || async {
        (steps_of(&sink, "d") == [0, 1, 2, 3]).then_some(())
    })
    .await;
    wait_for("no group to owe anything", LONG, || async {
        (groups(&app, "").await["groups"] == json!([])).then_some(())
    })
    .await;
}

#[tokio::test]
async fn by_default_a_group_goes_on_past_a_dead_letter_whose_redrive_comes_out_of_order() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    app.put_rule("default", "ordered", ordered_rule(&sink, "continue", 0))
        .await;
    sink.when_body_has(&of_step("e", 1), Reply::Status(400));
    let entries: Vec<Value> = (0..4).map(|seq| event("e", seq)).collect();
    app.post_events("default", json!({ "entries": entries }))
        .await;
    let dead = dead_letter_of(&app, "e", 1).await;
    wait_for("e to go on past its dead letter", LONG, || async {
        (steps_of(&sink, "e") == [0, 1, 2, 3]).then_some(())
    })
    .await;
    sink.forget(&of_step("e", 1));
    let redrive = app
        .post(&format!("/v1/dead-letters/{dead}/redrive"), json!({}))
        .await;
    assert_eq!(redrive.status, StatusCode::OK);
    wait_for(
        "the redriven step to be sent, after the others",
        LONG,
        || async { (steps_of(&sink, "e") == [0, 1, 2, 3, 1]).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn ordering_is_validated_shown_and_keys_postgres_cannot_store_are_hashed() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let bad = app
        .put(
            "/v1/buses/default/rules/ordered",
            json!({"event_pattern": {"source": ["shop"]}, "targets": [
                {"id": "a", "url": sink.url, "ordering": {"on_dead": "later"}},
                {"id": "b", "url": sink.url, "ordering": {"group_by": "$.detail-type"}},
                {"id": "c", "url": sink.url, "ordering": {"group_by": "$.a", "extra": 1}},
                {"id": "d", "url": sink.url, "ordering": "$.a"},
            ]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.pointers(),
        [
            "/targets/0/ordering/group_by",
            "/targets/0/ordering/on_dead",
            "/targets/1/ordering/group_by",
            "/targets/2/ordering/extra",
            "/targets/3/ordering",
        ],
        "{}",
        bad.body
    );

    let saved = app
        .put_rule("default", "ordered", ordered_rule(&sink, "block", 185))
        .await;
    assert_eq!(
        saved["targets"][0]["ordering"],
        json!({"group_by": "$.detail.key", "on_dead": "block"})
    );
    let missing = app
        .get("/v1/buses/default/rules/ordered/targets/nope/groups")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad_state = app
        .get("/v1/buses/default/rules/ordered/targets/ordered/groups?state=stuck")
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);

    // A key with a NUL character, a key too long to keep, a key that is not a string, and an
    // event without one: all accepted, each in a group of its own.
    let long = "x".repeat(300);
    let entries = json!({"entries": [
        {"source": "shop", "detail-type": "t", "detail": {"key": "a\u{0}b", "seq": 0}},
        {"source": "shop", "detail-type": "t", "detail": {"key": long, "seq": 0}},
        {"source": "shop", "detail-type": "t", "detail": {"key": {"n": 1}, "seq": 0}},
        {"source": "shop", "detail-type": "t", "detail": {"seq": 0}},
    ]});
    let answer = app.post_events("default", entries).await;
    assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT group_key FROM deliveries")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys.len(), 4);
    assert_eq!(
        keys[0], "",
        "an event without the path is in the empty key's group"
    );
    assert!(keys[1].starts_with("sha256:") && keys[2].starts_with("sha256:"));
    assert_ne!(keys[1], keys[2]);
    assert_eq!(
        keys[3], r#"{"n":1}"#,
        "a key that is not a string is its JSON text"
    );
    wait_for("the four to be delivered", LONG, || all_delivered(&app, 4)).await;
}
