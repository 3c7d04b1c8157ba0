//! CloudEvents 1.0 in and out over HTTP (issue 14), with the `cloudevents-sdk` crate as the
//! independent writer of what producers send and reader of what targets receive: structured,
//! batch and binary mode on the bus's ingest endpoint; patterns that match the mapped attributes;
//! targets in `cloudevents-structured` and `cloudevents-binary` format; what breaks the spec
//! fails alone.

use std::time::Duration;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::sink::{Received, Reply, Sink};
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const LONG: Duration = Duration::from_secs(15);

/// Posts a body with a content type (and extra headers) to the default bus.
async fn post_raw(
    app: &TestApp,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}/v1/buses/default/events", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("ingest answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn received(sink: &Sink, n: usize) -> Vec<Received> {
    wait_for(&format!("{n} deliveries"), LONG, || async {
        let got = sink.received();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn order(id: &str, total: i64) -> Event {
    EventBuilderV10::new()
        .id(id)
        .source("https://shop.example.com/orders")
        .ty("com.example.order.placed")
        .subject(format!("orders/{id}"))
        .time("2026-12-01T10:00:00Z")
        .extension("partitionkey", "eu-1")
        .extension("attempt", 2i64)
        .data(
            "application/json",
            json!({"total": total, "currency": "EUR"}),
        )
        .build()
        .expect("a valid CloudEvent")
}

#[tokio::test]
async fn structured_events_are_matched_by_their_attributes_and_sent_on_as_cloudevents() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(200));
    app.put_rule(
        "default",
        "big-eu-orders",
        json!({
            "event_pattern": {
                "detail-type": ["com.example.order.placed"],
                "cloudevent": {"subject": [{"prefix": "orders/"}], "partitionkey": ["eu-1"]},
                "detail": {"total": [{"numeric": [">", 100]}]}
            },
            "targets": [{"id": "ce", "url": sink.url, "format": "cloudevents-structured"}]
        }),
    )
    .await;
    let big = order("A-1", 250);
    let small = order("A-2", 5);
    for event in [&big, &small] {
        let (status, answer) = post_raw(
            &app,
            "application/cloudevents+json",
            &[],
            serde_json::to_vec(event).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    }
    let got = received(&sink, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "only the big order matched");
    let delivery = &got[0];
    assert!(
        header(delivery, "content-type")
            .unwrap()
            .starts_with("application/cloudevents+json"),
        "{:?}",
        delivery.headers
    );
    // The SDK reads what the target got: the producer's event, attribute for attribute.
    let event: Event = serde_json::from_str(&delivery.body).expect("a CloudEvent in JSON");
    assert_eq!(event.id(), "A-1");
    assert_eq!(event.ty(), "com.example.order.placed");
    assert_eq!(event.source().as_str(), "https://shop.example.com/orders");
    assert_eq!(event.subject(), Some("orders/A-1"));
    assert_eq!(
        event.time().map(|t| t.to_rfc3339()),
        big.time().map(|t| t.to_rfc3339())
    );
    assert_eq!(
        event.extension("partitionkey"),
        Some(&ExtensionValue::String("eu-1".into()))
    );
    assert_eq!(
        event.extension("attempt"),
        Some(&ExtensionValue::Integer(2))
    );
    assert_eq!(
        event.data(),
        Some(&Data::Json(json!({"total": 250, "currency": "EUR"})))
    );
    // Stored as an EventBridge event with the attributes in `cloudevent`.
    let trace = app
        .get("/v1/events?detail_type=com.example.order.placed&limit=1")
        .await;
    let id = trace.body["items"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app.get(&format!("/v1/events/{id}")).await.body["event"].clone();
    assert_eq!(stored["source"], "https://shop.example.com/orders");
    assert_eq!(stored["cloudevent"]["id"], "A-2");
    assert_eq!(stored["cloudevent"]["attempt"], 2);
    assert_eq!(stored["detail"], json!({"total": 5, "currency": "EUR"}));
}

#[tokio::test]
async fn a_batch_fails_only_the_events_that_break_the_spec() {
    let app = TestApp::spawn().await;
    let good = serde_json::to_value(order("B-1", 10)).unwrap();
    let batch = json!([
        good,
        {"specversion": "1.0", "id": "B-2", "source": "s"},
        {"specversion": "0.3", "id": "B-3", "source": "s", "type": "t"},
        {"specversion": "1.0", "id": "B-4", "source": "s", "type": "t", "Bad-Name": 1},
        {"specversion": "1.0", "id": "B-5", "source": "s", "type": "t", "data": [1, 2]}
    ]);
    let (status, answer) = post_raw(
        &app,
        "application/cloudevents-batch+json",
        &[],
        serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["failed_entry_count"], 3, "{answer}");
    let entries = answer["entries"].as_array().unwrap();
    assert!(entries[0]["event_id"].is_string());
    assert!(entries[4]["event_id"].is_string());
    for (i, field) in [
        (1, "type: is required"),
        (2, "specversion"),
        (3, "Bad-Name"),
    ] {
        assert_eq!(entries[i]["error_code"], "InvalidArgument", "{answer}");
        let message = entries[i]["error_message"].as_str().unwrap();
        assert!(message.starts_with(field), "{i}: {message}");
    }
    // Data that is not an object is kept under `data`, where patterns find it.
    let id = entries[4]["event_id"].as_str().unwrap();
    let stored = app.get(&format!("/v1/events/{id}")).await.body;
    assert_eq!(stored["event"]["detail"], json!({"data": [1, 2]}));

    // An empty batch is a batch; a body that is not an array is refused whole.
    let (status, answer) = post_raw(
        &app,
        "application/cloudevents-batch+json",
        &[],
        b"[]".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["entries"], json!([]));
    let (status, _) = post_raw(
        &app,
        "application/cloudevents-batch+json",
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post_raw(&app, "application/cloudevents+json", &[], b"[]".to_vec()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "one structured event is an object"
    );
    let (status, answer) = post_raw(&app, "text/plain", &[], b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
}

#[tokio::test]
async fn binary_mode_in_and_out() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(204));
    app.put_rule(
        "default",
        "readings",
        json!({
            "event_pattern": {"source": ["/sensors/7"]},
            "targets": [
                {"id": "binary", "url": sink.url, "format": "cloudevents-binary"},
                {"id": "eventbridge", "url": format!("{}/eb", sink.url)}
            ]
        }),
    )
    .await;
    let (status, answer) = post_raw(
        &app,
        "application/json",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "r-1"),
            ("ce-source", "/sensors/7"),
            ("ce-type", "reading.taken"),
            ("ce-subject", "caf%C3%A9 7"),
            ("ce-time", "2026-12-01T10:00:00Z"),
            ("ce-unit", "celsius"),
        ],
        br#"{"value": 21.5}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    let got = received(&sink, 2).await;
    let binary = got
        .iter()
        .find(|r| !r.path.ends_with("/eb"))
        .expect("the binary target's delivery");
    // The SDK's builder checks what the receiver would rebuild from the headers.
    let attribute = |name: &str| {
        header(binary, &format!("ce-{name}"))
            .unwrap_or("")
            .to_owned()
    };
    let event = EventBuilderV10::new()
        .id(attribute("id"))
        .source(attribute("source"))
        .ty(attribute("type"))
        .subject(attribute("subject"))
        .time(attribute("time"))
        .extension("unit", attribute("unit"))
        .data(
            header(binary, "content-type").unwrap(),
            serde_json::from_str::<Value>(&binary.body).unwrap(),
        )
        .build()
        .expect("the headers make a valid CloudEvent");
    assert_eq!(attribute("specversion"), "1.0");
    assert_eq!(event.id(), "r-1");
    assert_eq!(event.ty(), "reading.taken");
    assert_eq!(event.subject(), Some("caf%C3%A9%207"), "percent-encoded");
    assert_eq!(event.data(), Some(&Data::Json(json!({"value": 21.5}))));
    assert!(
        header(binary, "webhook-signature").is_some(),
        "still signed"
    );
    // The EventBridge target gets the event with the attributes under `cloudevent`.
    let eb = got.iter().find(|r| r.path.ends_with("/eb")).unwrap();
    let eb: Value = serde_json::from_str(&eb.body).unwrap();
    assert_eq!(eb["detail-type"], "reading.taken");
    assert_eq!(eb["detail"], json!({"value": 21.5}));
    assert_eq!(eb["cloudevent"]["subject"], "café 7");
    assert_eq!(eb["cloudevent"]["unit"], "celsius");

    // A body that is not JSON travels as base64; a binary event without its type fails alone.
    let (_, answer) = post_raw(
        &app,
        "application/octet-stream",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "r-2"),
            ("ce-source", "/sensors/8"),
            ("ce-type", "blob"),
        ],
        vec![0xff, 0x00, 0x01],
    )
    .await;
    let id = answer["entries"][0]["event_id"].as_str().unwrap();
    let stored = app.get(&format!("/v1/events/{id}")).await.body;
    assert_eq!(stored["event"]["detail"], json!({"data_base64": "/wAB"}));
    assert_eq!(
        stored["event"]["cloudevent"]["datacontenttype"],
        "application/octet-stream"
    );
    let (status, answer) = post_raw(
        &app,
        "application/json",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "r-3"),
            ("ce-source", "s"),
        ],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["failed_entry_count"], 1);
    assert_eq!(answer["entries"][0]["error_message"], "type: is required");
}
