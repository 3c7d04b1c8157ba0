//! OpenTelemetry export end to end (issue 14): the real binary with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at an OTLP receiver in this test (HTTP, protobuf decoded with `opentelemetry-proto`).
//! One event posted with a `traceparent` yields, in the producer's trace, the ingest request's
//! span (a child of the producer's), the event's span, and the delivery attempts' spans (HTTP
//! client spans, children of the event's; the retry linked to the first try); the webhook
//! receives `traceparent`s naming those same attempt spans.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::json;

use crate::support::app::delivering_flags;
use crate::support::sink::{Reply, Sink};
use crate::support::{ADMIN_TOKEN, postgres, wait_for};

const PRODUCER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PRODUCER_SPAN: &str = "b7ad6b7169203331";

/// An OTLP/HTTP receiver: every span it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut kept = kept.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        kept.extend(scope.spans);
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

#[tokio::test]
async fn an_events_ingest_and_delivery_are_spans_of_the_producers_trace() {
    let (otlp, spans) = receiver().await;
    let db = postgres::fresh_database().await;
    let (mut child, base) = crate::support::binary::serve(|command| {
        command
            .env("DATABASE_URL", &db.url)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .args(delivering_flags(&[]));
    });
    let sink = Sink::start().await;
    sink.then([Reply::Status(503)]);
    sink.otherwise(Reply::Status(200));
    let client = crate::support::http_client();
    let put = client
        .put(format!("{base}/v1/buses/default/rules/traced"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url}]}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let answer: serde_json::Value = client
        .post(format!("{base}/v1/buses/default/events"))
        .bearer_auth(ADMIN_TOKEN)
        .header(
            "traceparent",
            format!("00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"),
        )
        .json(&json!({"source": "shop", "detail-type": "placed", "detail": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = answer["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The webhook's two tries (503, then 200) each name a span of the producer's trace.
    let received = wait_for("both tries", Duration::from_secs(20), || async {
        let got = sink.received();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let sent_spans: Vec<String> = received
        .iter()
        .map(|r| {
            let traceparent = r
                .headers
                .iter()
                .find(|(n, _)| n == "traceparent")
                .map(|(_, v)| v.clone())
                .expect("a traceparent");
            let parts: Vec<&str> = traceparent.split('-').collect();
            assert_eq!(
                parts[1], PRODUCER_TRACE,
                "the receiver joins the producer's trace"
            );
            parts[2].to_owned()
        })
        .collect();
    let trace = client
        .get(format!("{base}/v1/events/{event_id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let event_span = trace["trace"]["span_id"].as_str().unwrap().to_owned();

    let exported = wait_for(
        "the spans to be exported",
        Duration::from_secs(20),
        || async {
            let spans = spans.lock().unwrap().clone();
            let ours: Vec<Span> = spans
                .into_iter()
                .filter(|s| hex(&s.trace_id) == PRODUCER_TRACE)
                .collect();
            let clients = ours
                .iter()
                .filter(|s| s.kind == SpanKind::Client as i32)
                .count();
            (clients >= 2 && ours.iter().any(|s| hex(&s.span_id) == event_span)).then_some(ours)
        },
    )
    .await;
    let find = |id: &str| exported.iter().find(|s| hex(&s.span_id) == id);

    // The ingest request: a server span, child of the producer's.
    let request = exported
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("the ingest request's span");
    assert_eq!(hex(&request.parent_span_id), PRODUCER_SPAN);
    assert_eq!(request.name, "POST /v1/buses/{bus}/events");
    // Its steps: matching and the commit, its children.
    let step = |name: &str| {
        exported
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("a {name} span"))
    };
    for name in ["match", "commit"] {
        assert_eq!(step(name).parent_span_id, request.span_id, "{name}");
    }
    // The event: child of the producer's span, linked to the commit that stored it.
    let event = find(&event_span).expect("the event's span");
    assert_eq!(hex(&event.parent_span_id), PRODUCER_SPAN);
    assert_eq!(event.kind, SpanKind::Producer as i32);
    assert_eq!(
        attribute(event, "switchyard.event.id"),
        Some(AnyValue::StringValue(event_id.clone()))
    );
    assert!(
        event
            .links
            .iter()
            .any(|l| l.span_id == step("commit").span_id)
    );
    // Each try: an HTTP client span under the event, with the id its traceparent sent.
    let first = find(&sent_spans[0]).expect("the first try's span");
    let second = find(&sent_spans[1]).expect("the retry's span");
    for (span, status) in [(first, 503), (second, 200)] {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(hex(&span.parent_span_id), event_span);
        assert_eq!(span.name, "POST");
        assert_eq!(
            attribute(span, "http.response.status_code"),
            Some(AnyValue::IntValue(status))
        );
    }
    assert_eq!(
        attribute(second, "http.request.resend_count"),
        Some(AnyValue::IntValue(1))
    );
    assert!(
        second.links.iter().any(|l| l.span_id == first.span_id),
        "the retry links to the first try"
    );
    let _ = child.kill();
    let _ = child.wait();
}
