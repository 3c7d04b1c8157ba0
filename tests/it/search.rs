//! Event search over HTTP (issue 14): `GET /v1/events` by bus, source, detail-type, time range,
//! trace id and matched or not, newest first, page after page with a keyset cursor; parameters
//! that are wrong answer 400 with the parameter's name.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, TestApp};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Posts one request to `bus`, with a `traceparent` when given; the new event ids in order.
async fn post(app: &TestApp, bus: &str, traceparent: Option<&str>, entries: Value) -> Vec<String> {
    let mut request = app
        .client
        .post(format!("{}/v1/buses/{bus}/events", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "entries": entries }));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn entry(source: &str, detail_type: &str) -> Value {
    json!({"source": source, "detail-type": detail_type, "detail": {}})
}

/// The ids a search answers, in order.
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let answer = app.get(&format!("/v1/events?{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{query}: {:?}", answer.body);
    answer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn newest_first(ids: &[&String]) -> Vec<String> {
    ids.iter().rev().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn events_are_found_by_each_filter_newest_first() {
    let app = TestApp::spawn().await;
    assert!(
        app.put("/v1/buses/orders", json!({}))
            .await
            .status
            .is_success()
    );
    app.put_rule(
        "default",
        "placed",
        json!({"event_pattern": {"detail-type": ["placed"]}}),
    )
    .await;
    let shop = post(
        &app,
        "default",
        None,
        json!([entry("shop", "placed"), entry("shop", "paid")]),
    )
    .await;
    let traced = post(
        &app,
        "default",
        Some(&format!("00-{TRACE_ID}-00f067aa0ba902b7-01")),
        json!([entry("billing", "placed"), entry("billing", "refunded")]),
    )
    .await;
    let orders = post(&app, "orders", None, json!([entry("shop", "placed")])).await;
    let all_default = newest_first(&[&shop[0], &shop[1], &traced[0], &traced[1]]);

    assert_eq!(ids(&app, "bus=default").await, all_default);
    assert_eq!(ids(&app, "bus=orders").await, orders);
    assert_eq!(
        ids(&app, "").await.len(),
        5,
        "without a filter, every bus's events"
    );
    assert_eq!(
        ids(&app, "bus=default&source=shop").await,
        newest_first(&[&shop[0], &shop[1]])
    );
    assert_eq!(
        ids(&app, "bus=default&detail_type=placed").await,
        newest_first(&[&shop[0], &traced[0]])
    );
    assert_eq!(
        ids(&app, "source=shop&detail_type=placed").await,
        newest_first(&[&shop[0], &orders[0]])
    );
    // The trace id of the request's traceparent finds both of its events, any case.
    assert_eq!(
        ids(&app, &format!("trace_id={}", TRACE_ID.to_uppercase())).await,
        newest_first(&[&traced[0], &traced[1]])
    );
    // A trace begun here is named by its first event's id, and found through it; so are the
    // events its receivers send on in that trace.
    let begun = shop[1].replace('-', "");
    assert_eq!(
        ids(&app, &format!("trace_id={begun}")).await,
        [shop[1].clone()]
    );
    let followers = post(
        &app,
        "orders",
        Some(&format!("00-{begun}-00f067aa0ba902b7-01")),
        json!([entry("billing", "charged")]),
    )
    .await;
    assert_eq!(
        ids(&app, &format!("trace_id={begun}")).await,
        newest_first(&[&shop[1], &followers[0]])
    );
    // An event that began a trace is not found by another trace's id (nor by its own id when
    // that is not its trace's).
    let other = traced[0].replace('-', "");
    assert_eq!(
        ids(&app, &format!("trace_id={other}")).await,
        Vec::<String>::new()
    );
    // Only the rule on `default` matches `placed`.
    assert_eq!(
        ids(&app, "matched=true").await,
        newest_first(&[&shop[0], &traced[0]])
    );
    assert_eq!(
        ids(&app, "bus=default&matched=false").await,
        newest_first(&[&shop[1], &traced[1]])
    );

    // A time range by the events' own received_at: from the traced request's to before orders'.
    let list = app.get("/v1/events?bus=default").await.body;
    let received = |id: &str| -> String {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == id)
            .map(|e| e["received_at"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let since = received(&traced[0]);
    let found = ids(&app, &format!("bus=default&since={}", urlencode(&since))).await;
    assert_eq!(found, newest_first(&[&traced[0], &traced[1]]));
    let found = ids(&app, &format!("bus=default&until={}", urlencode(&since))).await;
    assert_eq!(found, newest_first(&[&shop[0], &shop[1]]));

    // What a listed event says of itself, and the trace it links to.
    let item = &list["items"][0];
    assert_eq!(item["event_id"], traced[1].as_str());
    assert_eq!(item["bus"], "default");
    assert_eq!(item["source"], "billing");
    assert_eq!(item["detail_type"], "refunded");
    assert_eq!(item["trace_id"], TRACE_ID);
    assert_eq!(item["matched_rules"], json!([]));
    assert_eq!(item["deliveries"], 0);
    let trace = app.get(&format!("/v1/events/{}", traced[1])).await;
    assert_eq!(trace.body["trace"]["trace_id"], TRACE_ID);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let mut posted = Vec::new();
    for _ in 0..4 {
        let entries: Vec<Value> = (0..3).map(|_| entry("shop", "placed")).collect();
        posted.extend(post(&app, "default", None, Value::from(entries)).await);
    }
    let posted_order = posted.clone();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("/v1/events?bus=default&limit=5&cursor={c}"),
            None => "/v1/events?bus=default&limit=5".to_owned(),
        };
        let answer = app.get(&query).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        pages += 1;
        for item in answer.body["items"].as_array().unwrap() {
            seen.push(item["event_id"].as_str().unwrap().to_owned());
        }
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    // The pages in turn are the one long page, and that is every event posted, the last
    // request's first.
    assert_eq!(seen, ids(&app, "bus=default&limit=500").await);
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    posted.sort();
    assert_eq!(sorted_seen, posted);
    let last_request = &posted_order[9..];
    assert!(
        last_request.iter().all(|id| seen[..3].contains(id)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn wrong_parameters_name_themselves() {
    let app = TestApp::spawn().await;
    for (query, parameter) in [
        ("trace_id=xyz", "trace_id"),
        ("trace_id=4bf92f3577b34da6a3ce929d0e0e473g", "trace_id"),
        ("since=yesterday", "since"),
        ("since=", "since"),
        ("until=", "until"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("bus=no%20spaces", "bus"),
        ("source=a%00b", "source"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nope", "cursor"),
        ("matched=maybe", "query"),
        ("colour=blue", "query"),
    ] {
        let answer = app.get(&format!("/v1/events?{query}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.content_type, "application/problem+json", "{query}");
        let text = answer.body.to_string();
        assert!(text.contains(parameter), "{query}: {text}");
    }
    let long = "s".repeat(257);
    let answer = app.get(&format!("/v1/events?source={long}")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}
