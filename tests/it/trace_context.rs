//! W3C Trace Context end to end (issue 14, first layer): the producer's `traceparent` (on the
//! request, or per entry as EventBridge's `TraceHeader`, W3C or X-Ray) becomes the parent of the
//! event's span; every delivery attempt sends a `traceparent` in the same trace whose span is
//! new; the event trace shows it. No context, or one that does not parse, starts a new trace.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::sink::{Reply, Sink};
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const PRODUCER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// (trace id, span id, flags) of a traceparent.
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00");
    assert!(
        fields[1].len() == 32 && fields[2].len() == 16,
        "{traceparent}"
    );
    (fields[1].into(), fields[2].into(), fields[3].into())
}

async fn post(app: &TestApp, headers: &[(&str, &str)], body: Value) -> Value {
    let mut request = app
        .client
        .post(format!("{}/v1/buses/default/events", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

fn event(n: u64) -> Value {
    json!({"source": "shop", "detail-type": "placed", "detail": {"n": n}})
}

#[tokio::test]
async fn the_receiver_joins_the_producers_trace() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(200));
    app.put_rule(
        "default",
        "all",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": sink.url, "headers": {"traceparent": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-00"}}]}),
    )
    .await;
    let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let answer = post(
        &app,
        &[
            ("traceparent", PRODUCER),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ],
        json!({"entries": [
            event(1),
            {"source": "shop", "detail-type": "placed", "detail": {"n": 2}, "TraceHeader": xray},
        ]}),
    )
    .await;
    let ids: Vec<String> = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let received = wait_for("both deliveries", Duration::from_secs(15), || async {
        let got = sink.received();
        (got.len() == 2).then_some(got)
    })
    .await;

    for (id, (trace_id, parent)) in ids.iter().zip([
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"),
    ]) {
        let trace = app.get(&format!("/v1/events/{id}")).await;
        let context = &trace.body["trace"];
        assert_eq!(context["trace_id"], trace_id, "{trace:?}");
        assert_eq!(context["parent_span_id"], parent);
        let span = context["span_id"].as_str().unwrap();
        assert_ne!(span, parent, "the event has a span of its own");
        assert_eq!(parts(context["traceparent"].as_str().unwrap()).1, span);
        // The webhook carries the trace, with a new span (the attempt's), never the target's
        // own header.
        let delivery = received
            .iter()
            .find(|r| {
                r.header("traceparent")
                    .is_some_and(|t| parts(t).0 == trace_id)
            })
            .unwrap_or_else(|| panic!("a delivery in trace {trace_id}"));
        let sent = parts(delivery.header("traceparent").unwrap());
        assert_ne!(sent.1, span);
        assert_ne!(sent.1, parent);
        assert_eq!(sent.2, "01", "sampled, as the producer said");
    }
    // The UI's event page shows the trace.
    let page = app.ui_page(&format!("/ui/events?id={}", ids[0])).await;
    assert!(
        page.contains("4bf92f3577b34da6a3ce929d0e0e4736") && page.contains("00f067aa0ba902b7"),
        "{page}"
    );
    // The request's tracestate goes with the event that took the request's context.
    let first = app.get(&format!("/v1/events/{}", ids[0])).await;
    assert_eq!(first.body["trace"]["tracestate"], "rojo=00f067aa0ba902b7");
    assert!(
        received
            .iter()
            .any(|r| r.header("tracestate") == Some("rojo=00f067aa0ba902b7"))
    );
    assert!(
        received.iter().all(|r| r
            .header("traceparent")
            .is_some_and(|t| !t.contains("ffffffff"))),
        "the target's own traceparent gives way"
    );
}

#[tokio::test]
async fn without_a_context_or_with_a_bad_one_an_event_starts_a_trace() {
    let app = TestApp::spawn().await;
    let answer = post(
        &app,
        &[("traceparent", "00-not-a-trace-01")],
        json!({"entries": [
            event(1),
            {"source": "shop", "detail-type": "placed", "detail": {}, "TraceHeader": "Root=nonsense"},
            {"source": "shop", "detail-type": "placed", "detail": {}, "TraceHeader": 5},
        ]}),
    )
    .await;
    assert_eq!(answer["failed_entry_count"], 2, "{answer}");
    for failed in &answer["entries"].as_array().unwrap()[1..] {
        assert_eq!(failed["error_code"], "InvalidArgument");
        assert!(
            failed["error_message"]
                .as_str()
                .unwrap()
                .starts_with("TraceHeader:")
        );
    }
    let id = answer["entries"][0]["event_id"].as_str().unwrap();
    let trace = app.get(&format!("/v1/events/{id}")).await;
    let context = &trace.body["trace"];
    assert_eq!(
        context["parent_span_id"],
        Value::Null,
        "a new trace: {trace:?}"
    );
    let (trace_id, span, flags) = parts(context["traceparent"].as_str().unwrap());
    assert_eq!(context["trace_id"], trace_id.as_str());
    assert_ne!(trace_id, "00000000000000000000000000000000");
    assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    // A trace begun here is named by the event that began it: its id's 32 hex digits.
    assert_eq!(trace_id, id.replace('-', ""));
    assert_eq!(context["span_id"], span.as_str());
    assert_eq!(flags, "01");

    // Two events without context are two traces.
    let other = post(&app, &[], event(2)).await;
    let other_id = other["entries"][0]["event_id"].as_str().unwrap();
    let other_trace = app.get(&format!("/v1/events/{other_id}")).await;
    assert_ne!(other_trace.body["trace"]["trace_id"], context["trace_id"]);
}
