//! EventBridge's own API, driven by the official AWS SDK for Rust pointed at the router: every
//! action Switchyard serves, pagination, AWS's error types, SigV4 checked (a bad secret, an
//! unknown key, another region, a stale or tampered request), keys' scopes and buses, and the
//! key that seals the secrets.

use std::time::Duration;

use aws_sdk_eventbridge as eb;
use eb::error::ProvideErrorMetadata;
use eb::types::{PutEventsRequestEntry, RuleState};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::sink::Sink;
use crate::support::{SECRET_KEY, TestApp, wait_for};

/// An access key made through the REST API: (id, secret).
pub(crate) async fn access_key(
    app: &TestApp,
    name: &str,
    scope: &str,
    buses: Option<Value>,
) -> (String, String) {
    let mut body = json!({ "name": name, "scope": scope, "kind": "aws_access_key" });
    if let Some(buses) = buses {
        body["buses"] = buses;
    }
    let made = app.post("/v1/tokens", body).await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert!(
        made.body.get("token").is_none(),
        "no bearer token: {made:?}"
    );
    (
        made.body["access_key_id"].as_str().unwrap().to_owned(),
        made.body["secret_access_key"].as_str().unwrap().to_owned(),
    )
}

/// The SDK's client for the router at `base`, signing with `(id, secret)` for `region`.
fn client_in(base: &str, (id, secret): &(String, String), region: &str) -> eb::Client {
    let credentials = eb::config::Credentials::new(id, secret, None, None, "switchyard-test");
    let config = eb::Config::builder()
        .behavior_version(eb::config::BehaviorVersion::latest())
        .region(eb::config::Region::new(region.to_owned()))
        .endpoint_url(base)
        .credentials_provider(credentials)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(eb::config::retry::RetryConfig::disabled())
        .build();
    eb::Client::from_conf(config)
}

pub(crate) fn client(app: &TestApp, key: &(String, String)) -> eb::Client {
    // `local` is the router's default SWITCHYARD_REGION.
    client_in(&app.base, key, "local")
}

/// The AWS error code and message of a failed call.
fn error<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> (String, String) {
    let error = result.expect_err("the call fails");
    (
        error.code().unwrap_or_default().to_owned(),
        error.message().unwrap_or_default().to_owned(),
    )
}

fn entry(bus: Option<&str>, detail_type: &str, detail: &str) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .set_event_bus_name(bus.map(str::to_owned))
        .source("com.example.orders")
        .detail_type(detail_type)
        .detail(detail)
        .build()
}

#[tokio::test]
async fn an_sdk_publishes_and_the_event_reaches_its_target() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let key = access_key(&app, "sdk", "admin", None).await;
    let sdk = client(&app, &key);

    let created = sdk
        .create_event_bus()
        .name("orders")
        .description("from the SDK")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.event_bus_arn(),
        Some("arn:aws:events:local:000000000000:event-bus/orders")
    );
    // A webhook target set through the REST API ...
    let rest = app
        .put_rule(
            "orders",
            "placed",
            json!({"event_pattern": {"source": ["nobody"]}, "targets": [{"id": "hook", "url": sink.url}]}),
        )
        .await;
    let secret = rest["targets"][0]["secret"].clone();
    // ... is kept when the SDK changes the rule's pattern: targets are PutTargets's.
    let put = sdk
        .put_rule()
        .name("placed")
        .event_bus_name("orders")
        .event_pattern(
            r#"{"detail-type": ["OrderPlaced"], "detail": {"total": [{"numeric": [">", 10]}]}}"#,
        )
        .description("big orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.rule_arn(),
        Some("arn:aws:events:local:000000000000:rule/orders/placed")
    );
    let rule = app.get("/v1/buses/orders/rules/placed").await.body;
    assert_eq!(rule["targets"][0]["url"], sink.url.as_str());
    assert_eq!(
        rule["targets"][0]["secret"], secret,
        "the target kept its secret"
    );
    assert_eq!(rule["description"], "big orders");

    let bus_arn = "arn:aws:events:local:000000000000:event-bus/orders";
    let sent = sdk
        .put_events()
        .entries(entry(
            Some("orders"),
            "OrderPlaced",
            r#"{"id": "o-1", "total": 12.5}"#,
        ))
        .entries(entry(
            Some(bus_arn),
            "OrderPlaced",
            r#"{"id": "o-2", "total": 3}"#,
        ))
        .entries(entry(Some("orders"), "OrderPlaced", "not json"))
        .entries(entry(Some("nowhere"), "OrderPlaced", "{}"))
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name("orders")
                .source("com.example.orders")
                .detail_type("OrderPlaced")
                .detail(r#"{"id": "o-3", "total": 99}"#)
                .time(eb::primitives::DateTime::from_secs(1_700_000_000))
                .resources("arn:aws:example:o-3")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.failed_entry_count(), 2);
    let results = sent.entries();
    assert_eq!(results.len(), 5);
    let ids: Vec<Option<&str>> = results.iter().map(|r| r.event_id()).collect();
    assert!(
        ids[0].is_some() && ids[1].is_some() && ids[4].is_some(),
        "{results:?}"
    );
    assert_eq!(results[2].error_code(), Some("MalformedDetail"));
    assert_eq!(results[3].error_code(), Some("ResourceNotFoundException"));
    assert_eq!(
        results[3].error_message(),
        Some("Event bus nowhere does not exist.")
    );

    // The two big orders reach the target, as any event would: the same ids, times as sent.
    let received = wait_for("both deliveries", Duration::from_secs(20), || {
        let received = sink.received();
        async move { (received.len() >= 2).then_some(received) }
    })
    .await;
    let bodies: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let by_id = |id: &str| bodies.iter().find(|b| b["id"] == id).cloned();
    let first = by_id(ids[0].unwrap()).expect("o-1 delivered");
    assert_eq!(first["detail"], json!({"id": "o-1", "total": 12.5}));
    assert_eq!(first["region"], "local");
    let third = by_id(ids[4].unwrap()).expect("o-3 delivered");
    assert_eq!(third["time"], "2023-11-14T22:13:20Z");
    assert_eq!(third["resources"], json!(["arn:aws:example:o-3"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 2, "the small order matched nothing");
    // Counted as ingest, like the native endpoint's events.
    let metrics = app.metrics().await;
    for line in [
        "switchyard_events_accepted_total 3",
        "switchyard_entries_refused_total 1",
        r#"switchyard_matched_events_total{bus="orders"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn rules_and_buses_round_trip_through_the_sdk_with_aws_errors() {
    let app = TestApp::spawn().await;
    let key = access_key(&app, "ops", "admin", None).await;
    let sdk = client(&app, &key);

    // Buses.
    for name in ["team-a", "team-b", "team-c"] {
        sdk.create_event_bus().name(name).send().await.unwrap();
    }
    let (code, message) = error(sdk.create_event_bus().name("team-a").send().await);
    assert_eq!(code, "ResourceAlreadyExistsException");
    assert_eq!(message, "Event bus team-a already exists.");
    let (code, _) = error(sdk.create_event_bus().name("bad name").send().await);
    assert_eq!(code, "ValidationException");
    let (code, message) = error(
        sdk.create_event_bus()
            .name("partner")
            .event_source_name("aws.partner/x")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("EventSourceName"), "{message}");
    let described = sdk
        .describe_event_bus()
        .name("team-b")
        .send()
        .await
        .unwrap();
    assert_eq!(described.name(), Some("team-b"));
    assert_eq!(
        described.arn(),
        Some("arn:aws:events:local:000000000000:event-bus/team-b")
    );
    let default = sdk.describe_event_bus().send().await.unwrap();
    assert_eq!(default.name(), Some("default"));
    let (code, _) = error(sdk.describe_event_bus().name("team-z").send().await);
    assert_eq!(code, "ResourceNotFoundException");
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = sdk
            .list_event_buses()
            .name_prefix("team-")
            .limit(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(
            page.event_buses()
                .iter()
                .map(|b| b.name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["team-a", "team-b", "team-c"]);
    let (code, message) = error(sdk.delete_event_bus().name("default").send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "Cannot delete event bus default.")
    );
    sdk.delete_event_bus().name("team-c").send().await.unwrap();
    assert_eq!(
        app.get("/v1/buses/team-c").await.status,
        StatusCode::NOT_FOUND
    );

    // Rules, on the default bus and on another, paged.
    for i in 0..5 {
        sdk.put_rule()
            .name(format!("r-{i}"))
            .event_bus_name("team-a")
            .event_pattern(format!(r#"{{"source": ["s{i}"]}}"#))
            .send()
            .await
            .unwrap();
    }
    sdk.put_rule()
        .name("other")
        .event_bus_name("team-a")
        .event_pattern(r#"{"source": ["x"]}"#)
        .send()
        .await
        .unwrap();
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sdk
            .list_rules()
            .event_bus_name("team-a")
            .name_prefix("r-")
            .limit(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.rules().len() <= 2);
        names.extend(page.rules().iter().map(|r| r.name().unwrap().to_owned()));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["r-0", "r-1", "r-2", "r-3", "r-4"]);
    let (code, _) = error(
        sdk.list_rules()
            .event_bus_name("team-a")
            .limit(101)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = error(
        sdk.list_rules()
            .event_bus_name("team-a")
            .next_token("not ours!")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");

    let rule = sdk
        .describe_rule()
        .name("r-3")
        .event_bus_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.event_pattern(), Some(r#"{"source":["s3"]}"#));
    assert_eq!(rule.state(), Some(&RuleState::Enabled));
    assert_eq!(rule.event_bus_name(), Some("team-a"));
    assert_eq!(
        rule.arn(),
        Some("arn:aws:events:local:000000000000:rule/team-a/r-3")
    );
    sdk.disable_rule()
        .name("r-3")
        .event_bus_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.get("/v1/buses/team-a/rules/r-3").await.body["state"],
        "disabled"
    );
    let rule = sdk
        .describe_rule()
        .name("r-3")
        .event_bus_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.state(), Some(&RuleState::Disabled));
    sdk.enable_rule()
        .name("r-3")
        .event_bus_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.get("/v1/buses/team-a/rules/r-3").await.body["state"],
        "enabled"
    );
    // PutRule with a state, on the default bus: the rule's ARN has no bus.
    let put = sdk
        .put_rule()
        .name("quiet")
        .event_pattern(r#"{"source": ["q"]}"#)
        .state(RuleState::Disabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.rule_arn(),
        Some("arn:aws:events:local:000000000000:rule/quiet")
    );
    assert_eq!(
        app.get("/v1/buses/default/rules/quiet").await.body["state"],
        "disabled"
    );

    let (code, message) = error(
        sdk.put_rule()
            .name("bad")
            .event_pattern(r#"{"source": "not-an-array"}"#)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidEventPatternException");
    assert!(
        message.starts_with("Event pattern is not valid. Reason: "),
        "{message}"
    );
    let (code, message) = error(
        sdk.put_rule()
            .name("cron")
            .schedule_expression("rate(5 minutes)")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("ScheduleExpression"), "{message}");
    let (code, message) = error(sdk.put_rule().name("empty").send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("EventPattern"), "{message}");
    let (code, message) = error(
        sdk.describe_rule()
            .name("gone")
            .event_bus_name("team-a")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(message, "Rule gone does not exist on EventBus team-a.");
    let (code, _) = error(sdk.enable_rule().name("gone").send().await);
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = error(
        sdk.put_rule()
            .name("x")
            .event_bus_name("nowhere")
            .event_pattern(r#"{"a": [1]}"#)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");

    // A rule with targets is not deleted (as AWS: remove them first); one without is.
    app.put_rule(
        "team-a",
        "hooked",
        json!({"event_pattern": {"source": ["h"]}, "targets": [{"id": "t", "url": "http://127.0.0.1:9/x"}]}),
    )
    .await;
    let (code, message) = error(
        sdk.delete_rule()
            .name("hooked")
            .event_bus_name("team-a")
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "ValidationException",
            "Rule can't be deleted since it has targets."
        )
    );
    sdk.delete_rule()
        .name("r-0")
        .event_bus_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.get("/v1/buses/team-a/rules/r-0").await.status,
        StatusCode::NOT_FOUND
    );
    let (code, message) = error(sdk.delete_event_bus().name("team-a").send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("rule"), "{message}");

    // TestEventPattern.
    let event = json!({"id": "1", "account": "1", "source": "s", "time": "2024-01-01T00:00:00Z",
                       "region": "r", "resources": [], "detail-type": "t", "detail": {"n": 5}})
    .to_string();
    let yes = sdk
        .test_event_pattern()
        .event_pattern(r#"{"detail": {"n": [{"numeric": [">", 1]}]}}"#)
        .event(&event)
        .send()
        .await
        .unwrap();
    assert!(yes.result());
    let no = sdk
        .test_event_pattern()
        .event_pattern(r#"{"source": ["other"]}"#)
        .event(&event)
        .send()
        .await
        .unwrap();
    assert!(!no.result());
    let (code, _) = error(
        sdk.test_event_pattern()
            .event_pattern("{")
            .event(&event)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidEventPatternException");

    // Too many entries: the whole call is refused.
    let mut many = sdk.put_events();
    for _ in 0..11 {
        many = many.entries(entry(None, "t", "{}"));
    }
    let (code, message) = error(many.send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("entries"), "{message}");

    // The audit log names the access key as the actor.
    let audit = app.get("/v1/audit?resource=buses/team-a/rules/r-0").await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{audit:?}");
    assert!(items.iter().all(|i| i["actor"] == "ops"), "{audit:?}");
}

/// A raw JSON 1.1 call of `body`, signed with `sign` (or not at all) over `body`, or over
/// `signed_body` when given (a body changed on the way).
async fn raw_call(
    app: &TestApp,
    action: &str,
    body: &str,
    sign: Option<(&(String, String), time::OffsetDateTime)>,
    signed_body: Option<&str>,
) -> crate::support::app::Answer {
    use switchyard::aws::sigv4;
    let host = app.base.trim_start_matches("http://").to_owned();
    let target = format!("AWSEvents.{action}");
    let mut request = app
        .client
        .post(format!("{}/", app.base))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", &target)
        .body(body.to_owned());
    if let Some(((id, secret), at)) = sign {
        let stamp = sigv4::amz_date(at);
        let headers: Vec<(&str, &[u8])> = vec![
            ("host", host.as_bytes()),
            ("x-amz-date", stamp.as_bytes()),
            ("x-amz-target", target.as_bytes()),
        ];
        let auth = sigv4::Authorization {
            access_key_id: id.clone(),
            date: stamp[..8].to_owned(),
            region: "local".into(),
            service: "events".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into(), "x-amz-target".into()],
            signature: Vec::new(),
        };
        let header = sigv4::authorization_header(
            &auth,
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: signed_body.unwrap_or(body).as_bytes(),
            },
            &stamp,
            secret,
        );
        request = request
            .header("x-amz-date", &stamp)
            .header("authorization", header);
    }
    crate::support::app::answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn signatures_are_checked_and_keys_keep_their_scope_and_buses() {
    let app = TestApp::spawn().await;
    app.put("/v1/buses/mine", json!({})).await;
    app.put("/v1/buses/theirs", json!({})).await;
    let admin = access_key(&app, "admin-key", "admin", None).await;
    let publisher = access_key(&app, "publisher", "publish", Some(json!(["mine"]))).await;

    // Another secret, an unknown key, another region: refused with AWS's errors.
    let wrong_secret = (admin.0.clone(), "x".repeat(40));
    let (code, message) = error(client(&app, &wrong_secret).list_rules().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.contains("does not match"), "{message}");
    let unknown = ("AKSYAAAAAAAAAAAAAAAA".to_owned(), admin.1.clone());
    let (code, _) = error(client(&app, &unknown).list_rules().send().await);
    assert_eq!(code, "UnrecognizedClientException");
    let (code, message) = error(
        client_in(&app.base, &admin, "us-east-1")
            .list_rules()
            .send()
            .await,
    );
    assert_eq!(code, "IncompleteSignatureException");
    assert!(message.contains("region"), "{message}");

    // Unsigned, stale, tampered: refused; signed by hand, as the SDK does, accepted.
    let unsigned = raw_call(&app, "ListRules", "{}", None, None).await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    assert_eq!(unsigned.content_type, "application/x-amz-json-1.1");
    assert_eq!(
        unsigned.body["__type"],
        "MissingAuthenticationTokenException"
    );
    let now = time::OffsetDateTime::now_utc();
    let fresh = raw_call(&app, "ListRules", "{}", Some((&admin, now)), None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{fresh:?}");
    assert_eq!(fresh.body, json!({"Rules": []}));
    let stale = raw_call(
        &app,
        "ListRules",
        "{}",
        Some((&admin, now - time::Duration::minutes(6))),
        None,
    )
    .await;
    assert_eq!(stale.body["__type"], "InvalidSignatureException");
    assert!(
        stale.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired"),
        "{stale:?}"
    );
    // The body of a signed request changed on the way: its hash no longer matches.
    let tampered = raw_call(
        &app,
        "ListRules",
        r#"{"Limit": 6}"#,
        Some((&admin, now)),
        Some(r#"{"Limit": 5}"#),
    )
    .await;
    assert_eq!(tampered.body["__type"], "InvalidSignatureException");
    let unknown_action = raw_call(&app, "PutPermission", "{}", Some((&admin, now)), None).await;
    assert_eq!(unknown_action.body["__type"], "UnknownOperationException");
    let huge = raw_call(&app, "PutEvents", &" ".repeat(5 * 1024 * 1024), None, None).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.body["__type"], "RequestEntityTooLargeException");
    let not_json = raw_call(&app, "ListRules", "{", Some((&admin, now)), None).await;
    assert_eq!(not_json.body["__type"], "SerializationException");
    // A bearer token is not a signature, and an access key id is not a bearer token.
    let bearer = app
        .client
        .post(format!("{}/", app.base))
        .header("x-amz-target", "AWSEvents.ListRules")
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::BAD_REQUEST);
    let as_bearer = app.call_as(&admin.0, Method::GET, "/v1/buses", None).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    let as_bearer = app.call_as(&admin.1, Method::GET, "/v1/buses", None).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);

    // A publish key limited to one bus: events there, nothing else.
    let sdk = client(&app, &publisher);
    let sent = sdk
        .put_events()
        .entries(entry(Some("mine"), "t", "{}"))
        .entries(entry(Some("theirs"), "t", "{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.failed_entry_count(), 1);
    assert!(sent.entries()[0].event_id().is_some());
    assert_eq!(
        sent.entries()[1].error_code(),
        Some("AccessDeniedException")
    );
    let (code, _) = error(
        sdk.put_rule()
            .name("r")
            .event_bus_name("mine")
            .event_pattern(r#"{"a": [1]}"#)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    let (code, _) = error(sdk.list_rules().event_bus_name("mine").send().await);
    assert_eq!(code, "AccessDeniedException");

    // Listed without secrets; the secret is sealed, not stored in clear.
    let listed = app.get("/v1/tokens").await.body;
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "publisher")
        .cloned()
        .unwrap();
    assert_eq!(row["kind"], "aws_access_key");
    assert_eq!(row["access_key_id"], publisher.0.as_str());
    assert!(!listed.to_string().contains(&publisher.1));
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT secret_sealed FROM api_tokens WHERE access_key_id = $1")
            .bind(&publisher.0)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!sealed.windows(8).any(|w| w == &publisher.1.as_bytes()[..8]));

    // Revoked: refused from the next call on.
    let id = row["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/tokens/{id}")).await.status,
        StatusCode::OK
    );
    let (code, _) = error(
        sdk.put_events()
            .entries(entry(Some("mine"), "t", "{}"))
            .send()
            .await,
    );
    assert_eq!(code, "UnrecognizedClientException");
}

#[tokio::test]
async fn every_process_needs_the_key_that_sealed_the_secrets_and_rotation_keeps_keys_working() {
    let app = TestApp::spawn().await;
    // The command line makes an access key pair.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["token", "create", "--aws", "--name", "cli-key"])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_SECRET_KEY", SECRET_KEY)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {printed}"))
            .to_owned()
    };
    let key = (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"));
    client(&app, &key).list_event_buses().send().await.unwrap();

    // Another key on the same database: the process refuses to start, and says why.
    let other = "ab".repeat(32);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_SECRET_KEY", &other)
        .env("SWITCHYARD_ADMIN_TOKEN", crate::support::ADMIN_TOKEN)
        .output()
        .expect("run the binary");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("same SWITCHYARD_SECRET_KEY"), "{stderr}");

    // Rotation: every secret sealed anew; a process with the new key accepts the old pair.
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["secrets", "rotate"])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_SECRET_KEY", SECRET_KEY)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    assert!(rotated.status.success(), "{rotated:?}");
    let new_key = String::from_utf8_lossy(&rotated.stdout)
        .trim()
        .strip_prefix("SWITCHYARD_SECRET_KEY=")
        .expect("the new key is printed")
        .to_owned();
    assert!(
        String::from_utf8_lossy(&rotated.stderr).contains("1 secret(s)"),
        "{rotated:?}"
    );
    let after = app.another(&["--secret-key", &new_key]).await;
    client(&after, &key)
        .list_event_buses()
        .send()
        .await
        .unwrap();
    // The old key no longer starts a process.
    let old = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_SECRET_KEY", SECRET_KEY)
        .env("SWITCHYARD_ADMIN_TOKEN", crate::support::ADMIN_TOKEN)
        .output()
        .expect("run the binary");
    assert!(!old.status.success());
}

/// The aws CLI (v1, from PyPI) pointed at the router: a rule and an event, as a team would.
#[tokio::test]
async fn the_aws_command_line_works_against_the_router() {
    let aws = tokio::task::spawn_blocking(|| crate::support::pip::tool("awscli", "1.46.3", "aws"))
        .await
        .expect("install the aws CLI");
    let app = TestApp::spawn().await;
    let (id, secret) = access_key(&app, "cli", "admin", None).await;
    // The CLI blocks: it runs beside the test's runtime, which serves the router.
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(&aws);
        command
            .args(["--endpoint-url", &app.base, "--output", "json", "events"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_DEFAULT_REGION", "local")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1");
        async move {
            let out = tokio::task::spawn_blocking(move || command.output().expect("run aws"))
                .await
                .expect("the aws CLI ran");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) = run(&[
        "put-rule",
        "--name",
        "from-cli",
        "--event-pattern",
        r#"{"source": ["shop"]}"#,
    ])
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("arn:aws:events:local:000000000000:rule/from-cli"),
        "{out}"
    );
    assert_eq!(
        app.get("/v1/buses/default/rules/from-cli").await.body["event_pattern"],
        json!({"source": ["shop"]})
    );
    let (ok, out, err) = run(&[
        "put-events",
        "--entries",
        r#"[{"Source": "shop", "DetailType": "OrderPlaced", "Detail": "{\"total\": 250}"}]"#,
    ])
    .await;
    assert!(ok, "{out}{err}");
    let answer: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(answer["FailedEntryCount"], 0);
    let event_id = answer["Entries"][0]["EventId"]
        .as_str()
        .expect("an event id");
    let stored = app.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(stored.status, StatusCode::OK, "{stored:?}");
    assert_eq!(stored.body["event"]["detail"], json!({"total": 250}));
    assert_eq!(stored.body["matched_rules"], json!(["from-cli"]));
    // AWS's errors reach the CLI's user as AWS words them.
    let (ok, _, err) = run(&["describe-rule", "--name", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

#[test]
fn the_readme_names_every_action_served_and_no_served_one_as_missing() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Using Switchyard from an AWS SDK")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README's AWS section");
    let (table, missing) = section
        .split_once("Not served yet")
        .expect("the list of what is not served");
    for action in switchyard::aws::actions::Action::ALL {
        let name = format!("`{}`", action.name());
        assert!(
            table.contains(&name),
            "{name} is served but not in the README's table"
        );
        assert!(
            !missing.contains(&name),
            "{name} is served but listed as not served"
        );
    }
}

#[tokio::test]
async fn connections_destinations_and_targets_through_the_sdk_deliver_as_configured() {
    use eb::types::{
        ConnectionAuthorizationType, CreateConnectionApiKeyAuthRequestParameters,
        CreateConnectionAuthRequestParameters, HttpParameters, InputTransformer, RetryPolicy,
        Target, UpdateConnectionApiKeyAuthRequestParameters, UpdateConnectionAuthRequestParameters,
    };
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.require_header("x-api-key", &["k-1"]);
    let base = sink.url.trim_end_matches("/hook").to_owned();
    let key = access_key(&app, "integrator", "admin", None).await;
    let sdk = client(&app, &key);

    let made = sdk
        .create_connection()
        .name("crm")
        .authorization_type(ConnectionAuthorizationType::ApiKey)
        .auth_parameters(
            CreateConnectionAuthRequestParameters::builder()
                .api_key_auth_parameters(
                    CreateConnectionApiKeyAuthRequestParameters::builder()
                        .api_key_name("X-Api-Key")
                        .api_key_value("k-1")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let connection_arn = made.connection_arn().unwrap().to_owned();
    assert_eq!(
        connection_arn,
        "arn:aws:events:local:000000000000:connection/crm"
    );
    let (code, _) = error(
        sdk.create_connection()
            .name("crm")
            .authorization_type(ConnectionAuthorizationType::Basic)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceAlreadyExistsException");
    let described = sdk.describe_connection().name("crm").send().await.unwrap();
    let api_key = described
        .auth_parameters()
        .unwrap()
        .api_key_auth_parameters()
        .unwrap();
    assert_eq!(api_key.api_key_name(), Some("X-Api-Key"));
    assert!(
        !format!("{described:?}").contains("k-1"),
        "the secret is never shown"
    );
    let (code, _) = error(sdk.describe_connection().name("nope").send().await);
    assert_eq!(code, "ResourceNotFoundException");

    let destination = sdk
        .create_api_destination()
        .name("crm-orders")
        .connection_arn(&connection_arn)
        .invocation_endpoint(format!("{base}/orders/*"))
        .http_method(eb::types::ApiDestinationHttpMethod::Put)
        .invocation_rate_limit_per_second(50)
        .send()
        .await
        .unwrap();
    let destination_arn = destination.api_destination_arn().unwrap().to_owned();
    let listed = sdk.list_api_destinations().send().await.unwrap();
    assert_eq!(listed.api_destinations().len(), 1);
    assert_eq!(
        listed.api_destinations()[0].invocation_rate_limit_per_second(),
        Some(50)
    );

    sdk.put_rule()
        .name("orders")
        .event_pattern(r#"{"source": ["shop"]}"#)
        .send()
        .await
        .unwrap();
    let put = sdk
        .put_targets()
        .rule("orders")
        .targets(
            Target::builder()
                .id("crm")
                .arn(&destination_arn)
                .role_arn("arn:aws:iam::000000000000:role/events")
                .http_parameters(
                    HttpParameters::builder()
                        .path_parameter_values("eu")
                        .header_parameters("x-team", "sales")
                        .query_string_parameters("via", "eb")
                        .build(),
                )
                .input_transformer(
                    InputTransformer::builder()
                        .input_paths_map("n", "$.detail.n")
                        .input_template(r#"{"order": <n>}"#)
                        .build()
                        .unwrap(),
                )
                .retry_policy(RetryPolicy::builder().maximum_retry_attempts(3).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    let listed = sdk
        .list_targets_by_rule()
        .rule("orders")
        .send()
        .await
        .unwrap();
    let target = &listed.targets()[0];
    assert_eq!(target.arn(), destination_arn);
    assert_eq!(
        target.role_arn(),
        Some("arn:aws:iam::000000000000:role/events")
    );
    assert_eq!(
        target.http_parameters().unwrap().path_parameter_values(),
        ["eu".to_owned()]
    );
    let names = sdk
        .list_rule_names_by_target()
        .target_arn(&destination_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(names.rule_names(), ["orders".to_owned()]);
    // The same rule in the REST API.
    let rest = app.get("/v1/buses/default/rules/orders").await.body;
    assert_eq!(rest["targets"][0]["api_destination"]["name"], "crm-orders");
    assert_eq!(
        rest["targets"][0]["url"],
        format!("{base}/orders/eu?via=eb")
    );

    sdk.put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("shop")
                .detail_type("OrderPlaced")
                .detail(r#"{"n": 7}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let first = wait_for("the delivery", Duration::from_secs(20), || async {
        sink.received().first().cloned()
    })
    .await;
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("PUT", "/orders/eu?via=eb")
    );
    assert_eq!(first.header("x-team"), Some("sales"));
    assert_eq!(
        serde_json::from_str::<Value>(&first.body).unwrap(),
        json!({"order": 7})
    );

    // The key changes, and the destination moves: deliveries follow.
    sdk.update_connection()
        .name("crm")
        .auth_parameters(
            UpdateConnectionAuthRequestParameters::builder()
                .api_key_auth_parameters(
                    UpdateConnectionApiKeyAuthRequestParameters::builder()
                        .api_key_value("k-2")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    sink.require_header("x-api-key", &["k-2"]);
    sdk.update_api_destination()
        .name("crm-orders")
        .invocation_endpoint(format!("{base}/v2/*"))
        .send()
        .await
        .unwrap();
    sdk.put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("shop")
                .detail_type("OrderPlaced")
                .detail(r#"{"n": 8}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let second = wait_for("the second delivery", Duration::from_secs(20), || async {
        sink.received().get(1).cloned()
    })
    .await;
    assert_eq!(second.path, "/v2/eu?via=eb");
    assert_eq!(second.header("x-api-key"), Some("k-2"));

    // What is not served is refused, never accepted and dropped.
    let (code, message) = error(
        sdk.put_targets()
            .rule("orders")
            .targets(
                Target::builder()
                    .id("queue")
                    .arn("arn:aws:sqs:us-east-1:000000000000:orders")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("arn:aws:sqs"), "{message}");
    let mut many = sdk.put_targets().rule("orders");
    for i in 0..5 {
        many = many.targets(
            Target::builder()
                .id(format!("t{i}"))
                .arn(&destination_arn)
                .build()
                .unwrap(),
        );
    }
    let (code, _) = error(many.send().await);
    assert_eq!(code, "LimitExceededException");
    let (code, _) = error(sdk.delete_api_destination().name("crm-orders").send().await);
    assert_eq!(code, "ValidationException");

    let removed = sdk
        .remove_targets()
        .rule("orders")
        .ids("crm")
        .ids("ghost")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.failed_entry_count(), 1);
    assert_eq!(removed.failed_entries()[0].target_id(), Some("ghost"));
    sdk.delete_rule().name("orders").send().await.unwrap();
    sdk.delete_api_destination()
        .name("crm-orders")
        .send()
        .await
        .unwrap();
    let deleted = sdk.delete_connection().name("crm").send().await.unwrap();
    assert_eq!(
        deleted.connection_state(),
        Some(&eb::types::ConnectionState::Deleting)
    );
    assert_eq!(
        app.get("/v1/connections/crm").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn archives_and_replays_through_the_sdk() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let key = access_key(&app, "archivist", "admin", None).await;
    let sdk = client(&app, &key);
    sdk.create_event_bus().name("orders").send().await.unwrap();
    app.put_rule(
        "orders",
        "to-sink",
        json!({"event_pattern": {"source": ["com.example.orders"]}, "targets": [{"id": "hook", "url": sink.url}]}),
    )
    .await;
    let bus_arn = "arn:aws:events:local:000000000000:event-bus/orders";
    let made = sdk
        .create_archive()
        .archive_name("all-orders")
        .event_source_arn(bus_arn)
        .event_pattern(r#"{"source": ["com.example.orders"]}"#)
        .retention_days(7)
        .send()
        .await
        .unwrap();
    let archive_arn = made.archive_arn().unwrap().to_owned();
    assert_eq!(
        archive_arn,
        "arn:aws:events:local:000000000000:archive/all-orders"
    );
    let (code, _) = error(
        sdk.create_archive()
            .archive_name("all-orders")
            .event_source_arn(bus_arn)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceAlreadyExistsException");
    let (code, _) = error(
        sdk.create_archive()
            .archive_name("bad")
            .event_source_arn(bus_arn)
            .event_pattern(r#"{"source": "shop"}"#)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidEventPatternException");
    // The same archive in the REST API.
    assert_eq!(
        app.get("/v1/buses/orders/archives/all-orders").await.body["retention_days"],
        7
    );

    let mut put = sdk.put_events();
    for n in 0..3 {
        put = put.entries(entry(
            Some("orders"),
            "OrderPlaced",
            &format!(r#"{{"n": {n}}}"#),
        ));
    }
    assert_eq!(put.send().await.unwrap().failed_entry_count(), 0);
    wait_for("three deliveries", Duration::from_secs(20), || async {
        (sink.count() >= 3).then_some(())
    })
    .await;
    let described = wait_for("three archived", Duration::from_secs(20), || {
        let sdk = sdk.clone();
        async move {
            let d = sdk
                .describe_archive()
                .archive_name("all-orders")
                .send()
                .await
                .unwrap();
            (d.event_count() == 3).then_some(d)
        }
    })
    .await;
    assert_eq!(described.event_source_arn(), Some(bus_arn));
    assert_eq!(described.retention_days(), Some(7));
    let listed = sdk
        .list_archives()
        .name_prefix("all-")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.archives().len(), 1);

    // Replay the last hour into the bus, through its one rule (a second later, so that the
    // window's end, in whole seconds, is after the events).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let started = sdk
        .start_replay()
        .replay_name("again")
        .event_source_arn(&archive_arn)
        .event_start_time(eb::primitives::DateTime::from_secs(now - 3600))
        .event_end_time(eb::primitives::DateTime::from_secs(now))
        .destination(
            eb::types::ReplayDestination::builder()
                .arn(bus_arn)
                .filter_arns("arn:aws:events:local:000000000000:rule/orders/to-sink")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.replay_arn(),
        Some("arn:aws:events:local:000000000000:replay/again")
    );
    let done = wait_for("the replay to complete", Duration::from_secs(30), || {
        let sdk = sdk.clone();
        async move {
            let d = sdk
                .describe_replay()
                .replay_name("again")
                .send()
                .await
                .unwrap();
            (d.state() == Some(&eb::types::ReplayState::Completed)).then_some(d)
        }
    })
    .await;
    assert_eq!(done.event_source_arn(), Some(archive_arn.as_str()));
    assert_eq!(
        done.destination().unwrap().filter_arns(),
        ["arn:aws:events:local:000000000000:rule/orders/to-sink".to_owned()]
    );
    wait_for(
        "the replayed deliveries",
        Duration::from_secs(20),
        || async { (sink.count() >= 6).then_some(()) },
    )
    .await;
    let replays = sdk.list_replays().send().await.unwrap();
    assert_eq!(replays.replays().len(), 1);
    let (code, _) = error(sdk.cancel_replay().replay_name("again").send().await);
    assert_eq!(code, "IllegalStatusException");
    let (code, _) = error(sdk.describe_replay().replay_name("nope").send().await);
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = error(
        sdk.start_replay()
            .replay_name("again")
            .event_source_arn(&archive_arn)
            .event_start_time(eb::primitives::DateTime::from_secs(now - 3600))
            .event_end_time(eb::primitives::DateTime::from_secs(now))
            .destination(
                eb::types::ReplayDestination::builder()
                    .arn(bus_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "ResourceAlreadyExistsException");

    sdk.delete_archive()
        .archive_name("all-orders")
        .send()
        .await
        .unwrap();
    let (code, _) = error(
        sdk.describe_archive()
            .archive_name("all-orders")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn every_list_action_pages_with_next_token() {
    let app = TestApp::spawn().await;
    let key = access_key(&app, "pager", "admin", None).await;
    let sdk = client(&app, &key);
    for i in 0..3 {
        app.put(
            &format!("/v1/connections/c{i}"),
            json!({"authorization_type": "api_key", "api_key": {"name": "x-k", "value": "v"}}),
        )
        .await;
        app.put(
            &format!("/v1/api-destinations/d{i}"),
            json!({"connection": "c0", "endpoint": format!("https://api.example.com/{i}"), "method": "POST"}),
        )
        .await;
        app.put(&format!("/v1/buses/default/archives/a{i}"), json!({}))
            .await;
    }
    sdk.put_rule()
        .name("fan-out")
        .event_pattern(r#"{"source": ["x"]}"#)
        .send()
        .await
        .unwrap();
    let destination = "arn:aws:events:local:000000000000:api-destination/d0";
    let mut put = sdk.put_targets().rule("fan-out");
    for i in 0..3 {
        put = put.targets(
            eb::types::Target::builder()
                .id(format!("t{i}"))
                .arn(destination)
                .build()
                .unwrap(),
        );
    }
    put.send().await.unwrap();
    for i in 0..3 {
        sdk.put_rule()
            .name(format!("r{i}"))
            .event_pattern(r#"{"source": ["x"]}"#)
            .send()
            .await
            .unwrap();
        sdk.put_targets()
            .rule(format!("r{i}"))
            .targets(
                eb::types::Target::builder()
                    .id("t")
                    .arn(destination)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    // Each list, a page of one at a time, until there is no NextToken.
    macro_rules! pages {
        ($call:expr, $items:ident, $name:expr) => {{
            let mut names = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = $call.limit(1).set_next_token(token).send().await.unwrap();
                assert!(page.$items().len() <= 1);
                names.extend(page.$items().iter().map($name));
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break names;
                }
            }
        }};
    }
    let connections: Vec<String> = pages!(sdk.list_connections(), connections, |c| c
        .name()
        .unwrap()
        .to_owned());
    assert_eq!(connections, ["c0", "c1", "c2"]);
    let destinations: Vec<String> = pages!(sdk.list_api_destinations(), api_destinations, |d| d
        .name()
        .unwrap()
        .to_owned());
    assert_eq!(destinations, ["d0", "d1", "d2"]);
    let archives: Vec<String> = pages!(sdk.list_archives(), archives, |a| a
        .archive_name()
        .unwrap()
        .to_owned());
    assert_eq!(archives, ["a0", "a1", "a2"]);
    let targets: Vec<String> = pages!(sdk.list_targets_by_rule().rule("fan-out"), targets, |t| t
        .id()
        .to_owned());
    assert_eq!(targets, ["t0", "t1", "t2"]);
    let rules: Vec<String> = pages!(
        sdk.list_rule_names_by_target().target_arn(destination),
        rule_names,
        |r: &String| r.clone()
    );
    assert_eq!(rules, ["fan-out", "r0", "r1", "r2"]);
    for i in 0..3 {
        let started = app
            .post(
                "/v1/replays",
                json!({"name": format!("p{i}"), "bus": "default", "archive": "a0",
                       "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z",
                       "destination_bus": "default"}),
            )
            .await;
        assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    }
    let replays: Vec<String> = pages!(sdk.list_replays(), replays, |r| r
        .replay_name()
        .unwrap()
        .to_owned());
    assert_eq!(replays, ["p0", "p1", "p2"]);
}
