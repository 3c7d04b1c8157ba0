//! The schema registry (issue 13) over HTTP: validation at ingest in `enforce`, `warn` and `off`
//! with mixed batches (each bad entry fails alone, stored bytes unchanged), event types without
//! a schema, the compatibility check (structural reasons and stored events) refusing a version
//! unless forced, a schema change reaching a second process, and a schema inferred from stored
//! events.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, wait_for};

const TYPE: &str = "/v1/buses/orders/schemas/shop/OrderPlaced";

fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "total"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "total": {"type": "number", "minimum": 0},
            "note": {"type": "string"}
        },
        "additionalProperties": false
    })
}

fn order(detail: Value) -> Value {
    json!({"source": "shop", "detail-type": "OrderPlaced", "detail": detail})
}

const ID: &str = "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9d";

async fn bus(app: &TestApp, settings: Value) {
    let answer = app.put("/v1/buses/orders", settings).await;
    assert!(answer.status.is_success(), "{answer:?}");
}

async fn register(app: &TestApp, schema: Value) -> Value {
    let answer = app
        .post(&format!("{TYPE}/versions"), json!({"schema": schema}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    answer.body
}

async fn stored_events(app: &TestApp) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT body, schema_violations FROM events ORDER BY received_at, id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn enforce_refuses_each_bad_entry_alone_warn_flags_it_off_ignores_it() {
    let app = TestApp::spawn().await;
    bus(&app, json!({"schema_validation": "enforce"})).await;
    register(&app, order_schema()).await;

    let batch = app
        .post_events(
            "orders",
            json!({"entries": [
                order(json!({"id": ID, "total": 12.5})),
                order(json!({"id": ID, "total": "12.5"})),
                {"source": "shop", "detail-type": "OrderShipped", "detail": {"anything": true}},
                order(json!({"total": 1, "extra": 1})),
            ]}),
        )
        .await;
    assert_eq!(batch["failed_entry_count"], 2, "{batch}");
    let entries = batch["entries"].as_array().unwrap();
    assert!(entries[0]["event_id"].is_string());
    assert_eq!(entries[1]["error_code"], "SchemaViolation");
    assert_eq!(entries[1]["violations"][0]["pointer"], "/detail/total");
    assert_eq!(entries[1]["violations"][0]["keyword"], "type");
    let message = entries[1]["error_message"].as_str().unwrap();
    assert!(message.starts_with("/detail/total:"), "{message}");
    assert!(message.contains("schema version 1"), "{message}");
    // A type without a schema is accepted on a bus that accepts unregistered types.
    assert!(entries[2]["event_id"].is_string(), "{batch}");
    let keywords: Vec<(&str, &str)> = entries[3]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["pointer"].as_str().unwrap(),
                v["keyword"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(keywords.contains(&("/detail", "required")), "{keywords:?}");
    assert!(
        keywords.contains(&("/detail", "additionalProperties")),
        "{keywords:?}"
    );
    assert_eq!(
        stored_events(&app).await.len(),
        2,
        "only the accepted entries are stored"
    );

    // warn: accepted, flagged on the event, its bytes as sent.
    bus(&app, json!({"schema_validation": "warn"})).await;
    let raw = r#"{"source":"shop","detail-type":"OrderPlaced","detail":{"id":"x","total": -1.50}}"#;
    let answer = app
        .call_raw(
            reqwest::Method::POST,
            "/v1/buses/orders/events",
            "application/json",
            raw.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(answer.body["failed_entry_count"], 0, "{answer:?}");
    let id = answer.body["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trace = app.get(&format!("/v1/events/{id}")).await;
    let flagged = &trace.body["schema_violations"];
    assert_eq!(flagged["version"], 1, "{trace:?}");
    let pointers: Vec<&str> = flagged["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/detail/id") && pointers.contains(&"/detail/total"),
        "{pointers:?}"
    );
    let (body, _) = stored_events(&app).await.pop().unwrap();
    assert!(
        body.contains(r#""detail":{"id":"x","total": -1.50}"#),
        "stored as sent: {body}"
    );

    // off: nothing is validated.
    bus(&app, json!({"schema_validation": "off"})).await;
    let off = app
        .post_events("orders", order(json!({"total": "no"})))
        .await;
    assert_eq!(off["failed_entry_count"], 0);
    assert_eq!(stored_events(&app).await.pop().unwrap().1, None);

    // A bus that refuses unregistered types refuses them, and only them.
    bus(
        &app,
        json!({"schema_validation": "enforce", "unregistered_types": "refuse"}),
    )
    .await;
    let mixed = app
        .post_events(
            "orders",
            json!({"entries": [
                {"source": "shop", "detail-type": "OrderShipped", "detail": {}},
                order(json!({"id": ID, "total": 1})),
            ]}),
        )
        .await;
    assert_eq!(mixed["failed_entry_count"], 1, "{mixed}");
    assert_eq!(mixed["entries"][0]["error_code"], "SchemaNotFound");
    assert!(mixed["entries"][1]["event_id"].is_string());

    let metrics = app.metrics().await;
    for series in [
        r#"switchyard_schema_violations_total{bus="orders",source="shop",detail_type="OrderPlaced",mode="enforce"} 2"#,
        r#"switchyard_schema_violations_total{bus="orders",source="shop",detail_type="OrderPlaced",mode="warn"} 1"#,
        r#"switchyard_schema_unregistered_refused_total{bus="orders"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn an_incompatible_version_is_refused_with_its_reasons_unless_forced() {
    let app = TestApp::spawn().await;
    bus(&app, json!({})).await;
    let v1 = json!({
        "type": "object", "required": ["id"], "additionalProperties": false,
        "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}
    });
    let first = register(&app, v1.clone()).await;
    assert_eq!(first["version"]["version"], 1);
    for n in 0..3 {
        app.post_events("orders", order(json!({"id": format!("o{n}")})))
            .await;
    }

    // v2 requires `n`, which v1 did not: not BACKWARD, and the stored events lack it.
    let mut v2 = v1.clone();
    v2["required"] = json!(["id", "n"]);
    let refused = app
        .post(&format!("{TYPE}/versions"), json!({"schema": v2}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
    assert_eq!(refused.content_type, "application/problem+json");
    let report = &refused.body["compatibility"];
    assert_eq!(report["mode"], "BACKWARD");
    assert_eq!(report["compatible"], false);
    assert_eq!(report["reasons"][0]["kind"], "REQUIRED_ATTRIBUTE_ADDED");
    assert_eq!(report["reasons"][0]["version"], 1);
    assert_eq!(report["reasons"][0]["direction"], "backward");
    assert_eq!(report["samples"]["checked"], 3);
    assert_eq!(report["samples"]["failed"], 3);
    assert_eq!(report["samples"]["newly_refused"], 3);
    assert_eq!(
        report["samples"]["examples"][0]["violations"][0]["keyword"],
        "required"
    );
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("REQUIRED_ATTRIBUTE_ADDED")
            && detail.contains("3 of the last 3 stored events that the latest version accepts"),
        "{detail}"
    );
    assert_eq!(
        app.get(&format!("{TYPE}/versions/latest")).await.body["version"],
        1
    );

    // The check alone says the same and registers nothing.
    let checked = app
        .post(&format!("{TYPE}/check"), json!({"schema": v2}))
        .await;
    assert_eq!(checked.status, StatusCode::OK);
    assert_eq!(checked.body["compatible"], false);

    // Forced, it is registered with the reasons kept.
    let forced = app
        .post(
            &format!("{TYPE}/versions?force=true"),
            json!({"schema": v2}),
        )
        .await;
    assert_eq!(forced.status, StatusCode::CREATED, "{forced:?}");
    let stored = app.get(&format!("{TYPE}/versions/2")).await;
    assert_eq!(
        stored.body["forced"]["reasons"][0]["kind"],
        "REQUIRED_ATTRIBUTE_ADDED"
    );
    // The same schema again is the same version.
    let again = app
        .post(&format!("{TYPE}/versions"), json!({"schema": v2}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["unchanged"], true);
    assert_eq!(again.body["version"]["version"], 2);

    // Adding an optional property to the closed model is BACKWARD compatible, but not FORWARD.
    let mut v3 = v2.clone();
    v3["properties"]["note"] = json!({"type": "string"});
    let put = app
        .put(
            TYPE,
            json!({"compatibility": "FORWARD", "description": "orders"}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let forward = app
        .post(&format!("{TYPE}/check"), json!({"schema": v3}))
        .await;
    assert_eq!(forward.body["mode"], "FORWARD");
    assert_eq!(
        forward.body["reasons"][0]["kind"],
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    );
    app.put(TYPE, json!({"compatibility": null})).await;
    let third = register(&app, v3).await;
    assert_eq!(third["version"]["version"], 3);
    assert_eq!(third["compatibility"]["compatible"], true);

    let listed = app.get("/v1/buses/orders/schemas").await;
    assert_eq!(listed.body["event_types"][0]["latest_version"], 3);
    assert_eq!(
        listed.body["event_types"][0]["effective_compatibility"],
        "BACKWARD"
    );
    let audit = app.get("/v1/audit?action=schema.register").await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(3),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_schema_change_reaches_a_second_process() {
    let app = TestApp::spawn().await;
    bus(&app, json!({"schema_validation": "enforce"})).await;
    let other = app.another(&["--rules-refresh-ms", "60000"]).await;
    let bad = order(json!({"id": ID, "total": "1"}));
    // Known to the other process before the schema exists: accepted there.
    assert_eq!(
        other.post_events("orders", bad.clone()).await["failed_entry_count"],
        0
    );
    register(&app, order_schema()).await;
    wait_for(
        "the second process to validate with the new schema",
        Duration::from_secs(10),
        || async {
            let answer = other.post_events("orders", bad.clone()).await;
            (answer["failed_entry_count"] == 1).then_some(())
        },
    )
    .await;
    // A new version that accepts strings reaches it too.
    let mut looser = order_schema();
    looser["properties"]["total"] = json!({"type": ["number", "string"]});
    register(&app, looser).await;
    wait_for(
        "the second process to take version 2",
        Duration::from_secs(10),
        || async {
            let answer = other.post_events("orders", bad.clone()).await;
            (answer["failed_entry_count"] == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_schema_inferred_from_stored_events_validates_them() {
    let app = TestApp::spawn().await;
    bus(&app, json!({})).await;
    let details = [
        json!({"id": ID, "at": "2026-12-05T10:00:00Z", "total": 10, "customer": {"name": "a", "vip": true}, "lines": [{"sku": "a", "qty": 1}]}),
        json!({"id": ID, "at": "2026-12-05T11:00:00Z", "total": 2.5, "customer": {"name": "b"}, "lines": []}),
        json!({"id": ID, "at": "2026-12-05T12:00:00Z", "total": 7, "customer": {"name": "c"}, "lines": [{"sku": "b", "qty": 3}], "coupon": "X"}),
    ];
    for detail in &details {
        app.post_events("orders", order(detail.clone())).await;
    }
    let inferred = app.get(&format!("{TYPE}/infer")).await;
    assert_eq!(inferred.status, StatusCode::OK, "{inferred:?}");
    assert_eq!(inferred.body["samples"], 3);
    let schema = inferred.body["schema"].clone();
    assert_eq!(
        schema["required"],
        json!(["at", "customer", "id", "lines", "total"])
    );
    assert_eq!(schema["properties"]["id"]["format"], "uuid");
    assert_eq!(schema["properties"]["at"]["format"], "date-time");
    assert_eq!(schema["properties"]["total"]["type"], "number");
    assert_eq!(
        schema["properties"]["customer"]["required"],
        json!(["name"])
    );
    assert_eq!(
        schema["properties"]["lines"]["items"]["properties"]["qty"]["type"],
        "integer"
    );

    // Registered and enforced, it accepts what it came from and refuses a wrong type.
    register(&app, schema).await;
    bus(&app, json!({"schema_validation": "enforce"})).await;
    let batch: Vec<Value> = details.iter().map(|d| order(d.clone())).collect();
    let answer = app.post_events("orders", json!({"entries": batch})).await;
    assert_eq!(answer["failed_entry_count"], 0, "{answer}");
    let wrong = app
        .post_events(
            "orders",
            order(
                json!({"id": ID, "at": "today", "total": 1, "customer": {"name": 1}, "lines": []}),
            ),
        )
        .await;
    let pointers: Vec<&str> = wrong["entries"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/detail/at") && pointers.contains(&"/detail/customer/name"),
        "{pointers:?}"
    );
    let none = app.get("/v1/buses/orders/schemas/shop/Nothing/infer").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_registry_input_is_refused_with_its_field() {
    let app = TestApp::spawn().await;
    let bad_bus = app
        .put(
            "/v1/buses/orders",
            json!({"schema_validation": "strict", "schema_compatibility": "SIDEWAYS"}),
        )
        .await;
    assert_eq!(bad_bus.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_bus.pointers(),
        ["/schema_validation", "/schema_compatibility"]
    );
    bus(&app, json!({})).await;
    let bad_schema = app
        .post(
            &format!("{TYPE}/versions"),
            json!({"schema": {"type": "strin"}, "x": 1}),
        )
        .await;
    assert_eq!(bad_schema.status, StatusCode::BAD_REQUEST, "{bad_schema:?}");
    assert_eq!(bad_schema.pointers(), ["/x", "/schema/type"]);
    let remote = app
        .post(
            &format!("{TYPE}/versions"),
            json!({"schema": {"$ref": "http://169.254.169.254/"}}),
        )
        .await;
    assert_eq!(remote.status, StatusCode::BAD_REQUEST, "{remote:?}");
    let nul = app
        .get("/v1/buses/orders/schemas/sh%00op/OrderPlaced")
        .await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST, "{nul:?}");
    let mode = app.put(TYPE, json!({"compatibility": "sometimes"})).await;
    assert_eq!(mode.pointers(), ["/compatibility"]);
    let missing = app
        .post("/v1/buses/nope/schemas/a/b/versions", json!({"schema": {}}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{TYPE}/versions/0")).await.status,
        StatusCode::BAD_REQUEST
    );
    // Nothing was stored by any of them.
    let types: i64 = sqlx::query_scalar("SELECT count(*) FROM event_types")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(types, 0);
}

#[tokio::test]
async fn a_rule_that_contradicts_its_types_schema_is_saved_with_warnings() {
    let app = TestApp::spawn().await;
    bus(&app, json!({})).await;
    register(&app, order_schema()).await;
    let typo = app
        .put(
            "/v1/buses/orders/rules/big",
            json!({"event_pattern": {"detail-type": ["OrderPlaced"], "detail": {"totl": [{"numeric": [">", 100]}]}}}),
        )
        .await;
    assert_eq!(
        typo.status,
        StatusCode::CREATED,
        "saved all the same: {typo:?}"
    );
    let warnings = typo.body["schema_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["pointer"], "/event_pattern/detail/totl");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("never match"),
        "{warnings:?}"
    );

    let wrong_type = app
        .put(
            "/v1/buses/orders/rules/big",
            json!({"event_pattern": {"source": ["shop"], "detail-type": ["OrderPlaced"], "detail": {"total": ["100"]}}}),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::OK);
    let message = wrong_type.body["schema_warnings"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("compared with a string") && message.contains("number"),
        "{message}"
    );

    let fine = app
        .put(
            "/v1/buses/orders/rules/big",
            json!({"event_pattern": {"detail-type": ["OrderPlaced"], "detail": {"total": [{"numeric": [">", 100]}]}}}),
        )
        .await;
    assert_eq!(fine.body.get("schema_warnings"), None, "{fine:?}");
    // Another source's type of the same name is not this one.
    let other = app
        .put(
            "/v1/buses/orders/rules/big",
            json!({"event_pattern": {"source": ["billing"], "detail-type": ["OrderPlaced"], "detail": {"totl": [1]}}}),
        )
        .await;
    assert_eq!(other.body.get("schema_warnings"), None, "{other:?}");
}

#[tokio::test]
async fn discovery_keeps_new_shapes_as_drafts_an_operator_accepts() {
    let app = TestApp::spawn_with(&["--discovery-interval-ms", "100"]).await;
    bus(&app, json!({"schema_discovery": true})).await;
    let corpus = [
        json!({"id": ID, "at": "2026-12-05T10:00:00Z", "total": 10, "customer": {"name": "a", "vip": true}, "lines": [{"sku": "a", "qty": 1}]}),
        json!({"id": ID, "at": "2026-12-05T11:00:00Z", "total": 20, "customer": {"name": "b"}, "lines": []}),
    ];
    let batch: Vec<Value> = corpus.iter().map(|d| order(d.clone())).collect();
    app.post_events("orders", json!({"entries": batch})).await;
    let draft = wait_for(
        "a draft of the new type",
        Duration::from_secs(10),
        || async {
            let drafts = app.get("/v1/buses/orders/schema-drafts").await;
            drafts.body["drafts"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(draft["source"], "shop");
    assert_eq!(draft["detail_type"], "OrderPlaced");
    assert_eq!(draft["samples"], 2);
    assert_eq!(draft["refused"], 2, "no version yet: every event is new");
    assert_eq!(
        draft["schema"]["required"],
        json!(["at", "customer", "id", "lines", "total"])
    );
    assert_eq!(
        draft["schema"]["properties"]["customer"]["required"],
        json!(["name"])
    );
    assert_eq!(draft["schema"]["properties"]["at"]["format"], "date-time");

    let accepted = app.post(&format!("{TYPE}/draft/accept"), json!({})).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{accepted:?}");
    assert_eq!(accepted.body["version"]["version"], 1);
    assert_eq!(
        app.get(&format!("{TYPE}/draft")).await.status,
        StatusCode::NOT_FOUND
    );

    // The same shapes again: the latest version accepts them, nothing is proposed.
    app.post_events("orders", order(corpus[1].clone())).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let none = app.get("/v1/buses/orders/schema-drafts").await;
    assert_eq!(none.body["drafts"], json!([]), "{none:?}");

    // A new shape (the total as a string) is proposed; accepting it is checked like any version.
    app.post_events(
        "orders",
        order(json!({"id": ID, "at": "2026-12-05T12:00:00Z", "total": "30", "customer": {"name": "c"}, "lines": []})),
    )
    .await;
    let draft = wait_for(
        "a draft of the new shape",
        Duration::from_secs(10),
        || async {
            let draft = app.get(&format!("{TYPE}/draft")).await;
            (draft.status == StatusCode::OK).then_some(draft.body)
        },
    )
    .await;
    assert_eq!(draft["refused"], 1, "{draft}");
    assert_eq!(
        draft["schema"]["properties"]["total"]["type"],
        json!(["integer", "string"])
    );
    // Widening is BACKWARD compatible, not FULL: the type asks for FULL.
    app.put(TYPE, json!({"compatibility": "FULL"})).await;
    let refused = app.post(&format!("{TYPE}/draft/accept"), json!({})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
    assert_eq!(
        refused.body["compatibility"]["reasons"][0]["direction"],
        "forward"
    );
    assert_eq!(
        app.get(&format!("{TYPE}/draft")).await.status,
        StatusCode::OK,
        "still there"
    );
    let discarded = app.delete(&format!("{TYPE}/draft")).await;
    assert_eq!(discarded.status, StatusCode::NO_CONTENT);
    let audit = app.get("/v1/audit?action=schema.draft-discard").await;
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(1));
    // Discarded, it comes back with the type's next event the latest version refuses (a pass
    // looks at the types that received events since the last one: without a new event, whether
    // the discarded draft came back depended on the steps above taking less than two passes);
    // forced in.
    app.post_events(
        "orders",
        order(json!({"id": ID, "at": "2026-12-05T13:00:00Z", "total": "40", "customer": {"name": "d"}, "lines": []})),
    )
    .await;
    wait_for(
        "the draft proposed again",
        Duration::from_secs(10),
        || async {
            (app.get(&format!("{TYPE}/draft")).await.status == StatusCode::OK).then_some(())
        },
    )
    .await;
    let forced = app
        .post(&format!("{TYPE}/draft/accept?force=true"), json!({}))
        .await;
    assert_eq!(forced.status, StatusCode::CREATED, "{forced:?}");
    assert_eq!(forced.body["version"]["version"], 2);
    assert!(forced.body["version"]["forced"].is_object(), "{forced:?}");
}
