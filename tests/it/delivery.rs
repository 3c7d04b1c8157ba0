//! The delivery engine against real HTTP targets (the scripted sink on 127.0.0.1).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::sink::{Reply, Sink};
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const LONG: Duration = Duration::from_secs(15);

/// A rule on `default` that sends `shop` events to `target` (a JSON object merged over defaults).
async fn rule_to(app: &TestApp, sink: &Sink, target: Value) -> Value {
    let mut t = json!({"id": "sink", "url": sink.url});
    if let (Some(base), Some(extra)) = (t.as_object_mut(), target.as_object()) {
        base.extend(extra.clone());
    }
    app.put_rule(
        "default",
        "to-sink",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [t]}),
    )
    .await
}

async fn post_order(app: &TestApp, detail: Value) -> String {
    let answer = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "Order Placed", "detail": detail}),
        )
        .await;
    answer["entries"][0]["event_id"]
        .as_str()
        .expect("accepted")
        .to_owned()
}

/// Waits until the event's single delivery is in `state`; returns the delivery.
async fn delivery_in(app: &TestApp, event: &str, state: &str) -> Value {
    wait_for(
        &format!("the delivery of {event} to be {state}"),
        LONG,
        || async {
            let trace = app.get(&format!("/v1/events/{event}")).await;
            let delivery = trace.body["deliveries"][0].clone();
            (delivery["state"] == state).then_some(delivery)
        },
    )
    .await
}

/// Drains the application, then reads from the database the states of the event's deliveries
/// and how many attempts were recorded for them: an absence check that no late send can pass.
async fn drained(app: &mut TestApp, event: &str) -> (Vec<String>, i64) {
    app.drain().await;
    let event: uuid::Uuid = event.parse().expect("an event id");
    sqlx::query_as(
        "SELECT array_agg(d.state ORDER BY d.id),
                (SELECT count(*) FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id
                 WHERE x.event_id = $1)
                + count(*) FILTER (WHERE d.delivered_attempt IS NOT NULL)
         FROM deliveries d WHERE d.event_id = $1",
    )
    .bind(event)
    .fetch_one(&app.pool)
    .await
    .expect("the event's deliveries")
}

#[tokio::test]
async fn a_matching_event_is_delivered_signed_and_recorded() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let rule = rule_to(&app, &sink, json!({"headers": {"X-Team": "billing"}})).await;
    let secret = rule["targets"][0]["secret"]
        .as_str()
        .expect("the secret is readable")
        .to_owned();
    // Sent as text: the number keeps its form only if nothing on the way re-serialises it.
    let posted = app
        .call_raw(
            reqwest::Method::POST,
            "/v1/buses/default/events",
            "application/json",
            br#"{"source": "shop", "detail-type": "Order Placed", "detail": {"total": 1.50}}"#
                .to_vec(),
        )
        .await;
    let event = posted.body["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let delivery = delivery_in(&app, &event, "delivered").await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["attempt_log"][0]["status"], 200);
    assert_eq!(delivery["attempt_log"][0]["response_body"], "sink says 200");

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-team"), Some("billing"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("Switchyard/")
    );
    assert_eq!(request.header("webhook-id"), delivery["id"].as_str());
    // The body is the event exactly as stored (numbers as sent).
    let stored: String = sqlx::query_scalar("SELECT body FROM events WHERE id = $1::uuid")
        .bind(&event)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(request.body, stored);
    assert!(
        request.body.ends_with(r#""detail":{"total": 1.50}}"#),
        "{}",
        request.body
    );

    // An independent verifier: the Standard Webhooks reference library.
    let verifier = standardwebhooks::Webhook::new(&secret).expect("a valid whsec_ secret");
    let mut headers = axum::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, request.header(name).unwrap().parse().unwrap());
    }
    verifier
        .verify(request.body.as_bytes(), &headers)
        .expect("the signature verifies");
    let forged = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert!(forged.verify(request.body.as_bytes(), &headers).is_err());
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id_until_delivered() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([
        Reply::Status(500),
        Reply::Status(503),
        Reply::Reset,
        Reply::Status(429),
        Reply::Status(200),
    ]);
    rule_to(&app, &sink, json!({})).await;
    let event = post_order(&app, json!({})).await;

    let delivery = delivery_in(&app, &event, "delivered").await;
    assert_eq!(delivery["attempts"], 5);
    let statuses: Vec<Value> = delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!(500), json!(503), Value::Null, json!(429), json!(200)]
    );
    let numbers: Vec<&Value> = delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["attempt"])
        .collect();
    assert_eq!(
        numbers,
        [&json!(1), &json!(2), &json!(3), &json!(4), &json!(5)]
    );
    // The failed tries have their rows; the one that delivered is kept in the delivery's own.
    let (rows, in_row): (i64, Option<i32>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM delivery_attempts WHERE delivery_id = d.id),
                d.delivered_attempt
         FROM deliveries d WHERE d.event_id = $1",
    )
    .bind(event.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((rows, in_row), (4, Some(5)));
    assert!(delivery["attempt_log"][2]["error"].as_str().unwrap().len() > 5);
    let ids: BTreeSet<String> = sink
        .received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries: {ids:?}");
    // Backoff stays under the configured maximum (100 ms) plus scheduling slack.
    let times: Vec<_> = sink.received().iter().map(|r| r.at).collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] < Duration::from_millis(1500),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = TestApp::delivering(&["--backoff-max-ms", "5000"]).await;
    let sink = Sink::start().await;
    sink.then([
        Reply::With(503, vec![("retry-after", "1".into())]),
        Reply::Status(200),
    ]);
    rule_to(&app, &sink, json!({})).await;
    let event = post_order(&app, json!({})).await;
    delivery_in(&app, &event, "delivered").await;
    let times: Vec<_> = sink.received().iter().map(|r| r.at).collect();
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(950),
        "waited only {gap:?} after Retry-After: 1"
    );
}

#[tokio::test]
async fn a_final_status_is_a_dead_letter_at_once() {
    let mut app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(400));
    rule_to(&app, &sink, json!({})).await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "final_status");
    assert_eq!(delivery["last_status"], 400);
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(drained(&mut app, &event).await, (vec!["dead".into()], 1));
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn retries_end_when_the_attempts_are_spent() {
    let mut app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(500));
    rule_to(
        &app,
        &sink,
        json!({"retry_policy": {"maximum_retry_attempts": 2}}),
    )
    .await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "retries_exhausted");
    assert_eq!(delivery["attempts"], 3, "the first try and two retries");
    assert_eq!(delivery["attempt_log"].as_array().unwrap().len(), 3);
    assert_eq!(drained(&mut app, &event).await, (vec!["dead".into()], 3));
    assert_eq!(sink.count(), 3, "nothing is sent after the budget is spent");
}

#[tokio::test]
async fn retries_end_when_the_next_try_would_be_past_the_maximum_age() {
    let mut app = TestApp::delivering(&["--backoff-max-ms", "600000"]).await;
    let sink = Sink::start().await;
    // The target asks for an hour; the event may only live a minute.
    sink.otherwise(Reply::With(503, vec![("retry-after", "3600".into())]));
    rule_to(
        &app,
        &sink,
        json!({"retry_policy": {"maximum_event_age_seconds": 60}}),
    )
    .await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "max_age_exceeded");
    assert_eq!(drained(&mut app, &event).await, (vec!["dead".into()], 1));
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn a_hanging_target_times_out_and_is_retried() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([Reply::Hang, Reply::Delay(Duration::from_millis(50), 200)]);
    rule_to(&app, &sink, json!({"timeout_ms": 300})).await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "delivered").await;
    let first = &delivery["attempt_log"][0];
    assert_eq!(first["status"], Value::Null);
    assert!(
        first["error"].as_str().unwrap().contains("timed out"),
        "{first}"
    );
    assert!(first["duration_ms"].as_i64().unwrap() >= 290, "{first}");
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let app = TestApp::delivering(&[]).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    app.put_rule(
        "default",
        "to-nowhere",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": url, "retry_policy": {"maximum_retry_attempts": 1}}]}),
    )
    .await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "retries_exhausted");
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap()
            .contains("connection failed"),
        "{delivery}"
    );
}

#[tokio::test]
async fn gone_disables_the_target_and_holds_its_deliveries_until_enabled() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([Reply::Status(410)]);
    rule_to(&app, &sink, json!({})).await;
    let first = post_order(&app, json!({"n": 1})).await;
    let dead = delivery_in(&app, &first, "dead").await;
    assert_eq!(dead["dead_reason"], "target_gone");
    let rule = app.get("/v1/buses/default/rules/to-sink").await;
    assert!(
        rule.body["targets"][0]["disabled_at"].is_string(),
        "{:?}",
        rule.body
    );
    assert_eq!(
        rule.body["targets"][0]["disabled_reason"],
        "the target answered 410 Gone"
    );

    let second = post_order(&app, json!({"n": 2})).await;
    delivery_in(&app, &second, "held").await;
    // Nothing of the target can be claimed any more: the first delivery is dead, the second held.
    let claimable: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'in_flight')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(claimable, 0);
    assert_eq!(sink.count(), 1, "a disabled target receives nothing");

    let enabled = app
        .post(
            "/v1/buses/default/rules/to-sink/targets/sink/enable",
            json!({}),
        )
        .await;
    assert_eq!(enabled.body["released"], 1, "{enabled:?}");
    let delivered = delivery_in(&app, &second, "delivered").await;
    assert_eq!(
        delivered["attempts"], 1,
        "holding did not count as an attempt"
    );
    let missing = app
        .post(
            "/v1/buses/default/rules/to-sink/targets/nope/enable",
            json!({}),
        )
        .await;
    assert_eq!(missing.status, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn input_transformations_shape_the_payload() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let target = |id: &str, extra: Value| {
        let mut t = json!({"id": id, "url": format!("{}/{id}", sink.url)});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t
    };
    let rule = json!({"event_pattern": {"source": ["shop"]}, "targets": [
        target("constant", json!({"input": {"kind": "ping", "n": 1.50}})),
        target("path", json!({"input_path": "$.detail.order"})),
        target("template", json!({"input_transformer": {
            "input_paths_map": {"id": "$.detail.order.id", "type": "$['detail-type']"},
            "input_template": "{\"order\": <id>, \"text\": \"<type> <id>\", \"rule\": \"<aws.events.rule-name>\"}"
        }})),
    ]});
    // As text, so the constant's 1.50 reaches the server as written.
    let text = rule.to_string().replace("1.5", "1.50");
    let saved = app
        .call_raw(
            reqwest::Method::PUT,
            "/v1/buses/default/rules/shapes",
            "application/json",
            text.into_bytes(),
        )
        .await;
    assert!(saved.status.is_success(), "{saved:?}");
    post_order(&app, json!({"order": {"id": "o-1", "total": 5}})).await;
    wait_for("three deliveries", LONG, || async {
        (sink.count() == 3).then_some(())
    })
    .await;
    let body = |suffix: &str| {
        sink.received()
            .into_iter()
            .find(|r| r.path.ends_with(suffix))
            .map(|r| r.body)
            .unwrap_or_else(|| panic!("no request to {suffix}"))
    };
    assert_eq!(body("/constant"), r#"{"kind":"ping","n":1.50}"#);
    assert_eq!(
        serde_json::from_str::<Value>(&body("/path")).unwrap(),
        json!({"id": "o-1", "total": 5})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body("/template")).unwrap(),
        json!({"order": "o-1", "text": "Order Placed o-1", "rule": "shapes"})
    );
}

#[tokio::test]
async fn a_path_that_selects_nothing_is_a_transform_failure() {
    let mut app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    rule_to(&app, &sink, json!({"input_path": "$.detail.missing"})).await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "transform_failed");
    // The failed rendering is recorded as the attempt; nothing reached the target.
    assert_eq!(drained(&mut app, &event).await, (vec!["dead".into()], 1));
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn non_public_targets_are_refused_unless_allowed() {
    // No allow-list: 127.0.0.1 is refused after resolution ("localhost") and as a literal.
    let app = TestApp::spawn_with(&["--workers", "4", "--delivery-poll-ms", "50"]).await;
    let sink = Sink::start().await;
    let by_name = sink.url.replace("127.0.0.1", "localhost");
    app.put_rule(
        "default",
        "private",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "literal", "url": sink.url}, {"id": "name", "url": by_name}]}),
    )
    .await;
    let event = post_order(&app, json!({})).await;
    let deliveries = wait_for("both deliveries to die", LONG, || async {
        let trace = app.get(&format!("/v1/events/{event}")).await;
        let d = trace.body["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (d.len() == 2 && d.iter().all(|x| x["state"] == "dead")).then_some(d)
    })
    .await;
    for d in &deliveries {
        assert_eq!(d["dead_reason"], "ssrf_blocked", "{d}");
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("SWITCHYARD_TARGET_ALLOW_CIDRS"),
            "{d}"
        );
    }
    let mut app = app;
    let (states, _) = drained(&mut app, &event).await;
    assert_eq!(states, ["dead", "dead"]);
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_previous_one() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let rule = rule_to(&app, &sink, json!({})).await;
    let old = rule["targets"][0]["secret"].as_str().unwrap().to_owned();
    let rotated = app
        .post(
            "/v1/buses/default/rules/to-sink/targets/sink/rotate-secret",
            json!({"overlap_seconds": 60}),
        )
        .await;
    let new = rotated.body["secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    assert_ne!(old, new);
    post_order(&app, json!({})).await;
    wait_for("the delivery", LONG, || async {
        (sink.count() == 1).then_some(())
    })
    .await;
    let request = &sink.received()[0];
    let mut headers = axum::http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, request.header(name).unwrap().parse().unwrap());
    }
    assert_eq!(
        request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(request.body.as_bytes(), &headers)
            .expect("both secrets verify during the overlap");
    }
}

#[tokio::test]
async fn a_changed_target_applies_to_the_next_delivery_and_an_expired_secret_stops_signing() {
    // The workers keep the targets they have read; a change to one must still reach the very
    // next delivery, and a previous secret must stop signing when its overlap ends.
    let app = TestApp::delivering(&[]).await;
    let (first, second) = (Sink::start().await, Sink::start().await);
    rule_to(&app, &first, json!({})).await;
    let signatures = |sink: &Sink, n: usize| {
        sink.received()[n]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count()
    };
    post_order(&app, json!({})).await;
    wait_for("the first delivery", LONG, || async {
        (first.count() == 1).then_some(())
    })
    .await;
    assert_eq!(signatures(&first, 0), 1);

    // A rotated secret: the next delivery is signed with both, at once (an overlap of 5 s: time
    // for that delivery on a loaded machine).
    app.post(
        "/v1/buses/default/rules/to-sink/targets/sink/rotate-secret",
        json!({"overlap_seconds": 5}),
    )
    .await;
    post_order(&app, json!({})).await;
    wait_for("the second delivery", LONG, || async {
        (first.count() == 2).then_some(())
    })
    .await;
    assert_eq!(
        signatures(&first, 1),
        2,
        "signed with the new and the previous secret"
    );

    // Once the overlap has ended, with the new secret alone.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    post_order(&app, json!({})).await;
    wait_for("the third delivery", LONG, || async {
        (first.count() == 3).then_some(())
    })
    .await;
    assert_eq!(signatures(&first, 2), 1, "the previous secret has expired");

    // A new URL: the next delivery goes there.
    rule_to(&app, &second, json!({})).await;
    post_order(&app, json!({})).await;
    wait_for("a delivery to the new URL", LONG, || async {
        (second.count() == 1).then_some(())
    })
    .await;
    assert_eq!(first.count(), 3);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([Reply::With(
        302,
        vec![("location", format!("{}/elsewhere", sink.url))],
    )]);
    rule_to(&app, &sink, json!({})).await;
    let event = post_order(&app, json!({})).await;
    let delivery = delivery_in(&app, &event, "dead").await;
    assert_eq!(delivery["dead_reason"], "final_status");
    assert_eq!(delivery["last_status"], 302);
    assert_eq!(drained(&mut app, &event).await, (vec!["dead".into()], 1));
    assert_eq!(sink.count(), 1, "the redirect target was not asked");
}

#[tokio::test]
async fn a_target_limited_to_one_delivery_at_a_time_never_gets_two() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Delay(Duration::from_millis(80), 200));
    rule_to(&app, &sink, json!({"max_concurrency": 1})).await;
    let entries: Vec<Value> = (0..5)
        .map(|i| json!({"source": "shop", "detail-type": "t", "detail": {"i": i}}))
        .collect();
    app.post_events("default", json!({"entries": entries}))
        .await;
    wait_for("five deliveries", LONG, || async {
        (sink.count() == 5).then_some(())
    })
    .await;
    let times: Vec<_> = sink.received().iter().map(|r| r.at).collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(75),
            "a request arrived {:?} after the previous one, which was still being answered",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn metrics_count_ingest_and_delivery_outcomes() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([Reply::Status(503)]);
    rule_to(&app, &sink, json!({})).await;
    // A second rule whose target refuses for good: a failed invocation.
    let refuser = Sink::start().await;
    refuser.then([Reply::Status(400)]);
    app.put_rule(
        "default",
        "to-refuser",
        json!({"event_pattern": {"detail-type": ["Order Placed"]},
               "targets": [{"id": "refuser", "url": refuser.url}]}),
    )
    .await;
    post_order(&app, json!({})).await;
    app.post(
        "/v1/buses/default/events",
        json!({"entries": [{"source": "shop"}, {"source": "elsewhere", "detail-type": "x", "detail": {}}]}),
    )
    .await;
    let sink_labels = r#"{bus="default",rule="to-sink",target="sink"}"#;
    let refuser_labels = r#"{bus="default",rule="to-refuser",target="refuser"}"#;
    let expected = [
        "switchyard_ingest_requests_total 2".to_owned(),
        "switchyard_events_accepted_total 2".to_owned(),
        "switchyard_entries_refused_total 1".to_owned(),
        "switchyard_delivery_outcomes_total{outcome=\"retried\"} 1".to_owned(),
        "switchyard_delivery_outcomes_total{outcome=\"delivered\"} 1".to_owned(),
        "switchyard_delivery_outcomes_total{outcome=\"dead_lettered\"} 1".to_owned(),
        "switchyard_deliveries_pending 0".to_owned(),
        "switchyard_dead_letters 1".to_owned(),
        "switchyard_events_last_hour 2".to_owned(),
        // EventBridge's meanings: the retried delivery is one invocation, once it ends.
        "switchyard_matched_events_total{bus=\"default\"} 1".to_owned(),
        "switchyard_triggered_rules_total{bus=\"default\",rule=\"to-sink\"} 1".to_owned(),
        "switchyard_triggered_rules_total{bus=\"default\",rule=\"to-refuser\"} 1".to_owned(),
        format!("switchyard_invocations_total{sink_labels} 1"),
        format!("switchyard_retry_invocation_attempts_total{sink_labels} 1"),
        format!("switchyard_attempt_duration_seconds_count{sink_labels} 2"),
        format!("switchyard_ingestion_to_invocation_start_latency_seconds_count{sink_labels} 1"),
        format!("switchyard_ingestion_to_delivery_latency_seconds_count{sink_labels} 1"),
        format!("switchyard_invocations_total{refuser_labels} 1"),
        format!("switchyard_failed_invocations_total{refuser_labels} 1"),
        "switchyard_ingest_request_duration_seconds_count{bus=\"default\"} 2".to_owned(),
    ];
    let client = crate::support::http_client();
    // The recorder counts an outcome just after writing it: poll briefly.
    let (content_type, text) = wait_for("the metrics to show every outcome", LONG, || {
        let client = client.clone();
        let url = format!("{}/metrics", app.base);
        let expected = &expected;
        async move {
            let response = client.get(url).send().await.ok()?;
            let content_type = response.headers()["content-type"].to_str().ok()?.to_owned();
            let text = response.text().await.ok()?;
            expected
                .iter()
                .all(|line| text.lines().any(|l| l == line))
                .then_some((content_type, text))
        }
    })
    .await;
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}\n{text}"
    );
    // Nothing of a bus, rule or target that does not exist: clients cannot add series.
    assert!(!text.contains("elsewhere"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn metrics_ask_for_their_token_when_one_is_configured() {
    let token = "metrics-token-0123456789";
    let app = TestApp::spawn_with(&["--metrics-token", token]).await;
    let client = crate::support::http_client();
    let url = format!("{}/metrics", app.base);
    for presented in [None, Some("wrong-token-0123456789"), Some(ADMIN_TOKEN)] {
        let mut request = client.get(&url);
        if let Some(presented) = presented {
            request = request.bearer_auth(presented);
        }
        let response = request.send().await.expect("GET /metrics");
        assert_eq!(response.status(), 401, "{presented:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let response = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("the metrics text");
    assert!(text.contains("switchyard_dead_letters 0\n"), "{text}");
}

#[tokio::test]
async fn a_response_body_with_a_nul_character_is_recorded_as_text() {
    // Postgres text cannot hold NUL: written as it came, the outcome's write would fail, and with
    // it every outcome recorded in the same batch, again at each retry.
    let app = TestApp::delivering(&[]).await;
    let accepting = Sink::start().await;
    accepting.otherwise(Reply::Body(200, "ok\0done"));
    let refusing = Sink::start().await;
    refusing.otherwise(Reply::Body(422, "no\0way"));
    app.put_rule(
        "default",
        "to-both",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [
            {"id": "accepting", "url": accepting.url},
            {"id": "refusing", "url": refusing.url}]}),
    )
    .await;
    let event = post_order(&app, json!({})).await;
    let deliveries = wait_for("both outcomes recorded", LONG, || async {
        let trace = app.get(&format!("/v1/events/{event}")).await;
        let deliveries = trace.body["deliveries"].as_array()?.clone();
        let states: Vec<&Value> = deliveries.iter().map(|d| &d["state"]).collect();
        (states == [&json!("delivered"), &json!("dead")]).then_some(deliveries)
    })
    .await;
    assert_eq!(
        deliveries[0]["attempt_log"][0]["response_body"],
        "ok\u{FFFD}done"
    );
    assert_eq!(
        deliveries[1]["attempt_log"][0]["response_body"],
        "no\u{FFFD}way"
    );
}
