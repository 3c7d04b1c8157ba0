//! Hostile input: a text Postgres cannot store (a NUL character) is refused with a 4xx naming the
//! field, wherever it is sent; and one client's entry that the database refuses never fails
//! another client's request, although ingest commits many requests in one statement.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, TestApp, app::answer};

const NUL: &str = "a\u{0}b";

fn assert_refused(got: &crate::support::app::Answer, pointer: &str, what: &str) {
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{what}: {got:?}");
    assert_eq!(got.content_type, "application/problem+json", "{what}");
    let errors = got.body["errors"].as_array().cloned().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e["pointer"] == pointer && e["detail"].as_str().unwrap_or("").contains("NUL")),
        "{what}: expected a NUL error at {pointer:?}, got {}",
        got.body
    );
}

#[tokio::test]
async fn a_nul_character_is_refused_field_by_field_and_never_answers_5xx() {
    let app = TestApp::spawn().await;

    // Ingest: the entry fails alone, with the field named; its neighbour is accepted.
    for field in ["source", "detail-type"] {
        let mut bad = json!({"source": "shop", "detail-type": "x", "detail": {}});
        bad[field] = json!(NUL);
        let answer = app
            .post_events(
                "default",
                json!({"entries": [bad, {"source": "shop", "detail-type": "x", "detail": {}}]}),
            )
            .await;
        assert_eq!(answer["failed_entry_count"], 1, "{field}: {answer}");
        assert_eq!(answer["entries"][0]["error_code"], "InvalidArgument");
        let message = answer["entries"][0]["error_message"].as_str().unwrap();
        assert!(
            message.starts_with(field) && message.contains("NUL"),
            "{message}"
        );
        assert!(answer["entries"][1]["event_id"].is_string(), "{answer}");
    }
    // A NUL inside the detail is fine: it is stored escaped, as sent.
    let kept = app
        .post_events(
            "default",
            json!({"source": "shop", "detail-type": "x", "detail": {"note": NUL}}),
        )
        .await;
    assert_eq!(kept["failed_entry_count"], 0, "{kept}");

    // Buses and rules.
    let bus = app
        .put("/v1/buses/orders", json!({"description": NUL}))
        .await;
    assert_refused(&bus, "/description", "bus description");
    let target = |extra: Value| {
        let mut t = json!({"id": "t", "url": "https://example.com/hook"});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"event_pattern": {"source": ["shop"]}, "targets": [t]})
    };
    let cases = [
        (
            json!({"event_pattern": {"source": ["shop"]}, "description": NUL}),
            "/description",
        ),
        (
            target(json!({"url": "https://example.com/a\u{0}b"})),
            "/targets/0/url",
        ),
        (
            target(json!({"input_path": "$.detail.a\u{0}b"})),
            "/targets/0/input_path",
        ),
        (
            target(
                json!({"input_transformer": {"input_paths_map": {"n": "$.detail.a\u{0}b"}, "input_template": "<n>"}}),
            ),
            "/targets/0/input_transformer/input_paths_map/n",
        ),
        (
            target(
                json!({"input_transformer": {"input_paths_map": {}, "input_template": "a\u{0}b"}}),
            ),
            "/targets/0/input_transformer/input_template",
        ),
    ];
    for (rule, pointer) in cases {
        let got = app.put("/v1/buses/default/rules/r", rule).await;
        assert_refused(&got, pointer, pointer);
    }
    let rules = app.get("/v1/buses/default/rules?prefix=a%00b").await;
    assert_eq!(rules.status, StatusCode::BAD_REQUEST, "{rules:?}");

    // Dead letters: filters in the query and in bulk bodies, and the reasons given for discards.
    for parameter in ["bus", "rule", "target_id"] {
        let got = app
            .get(&format!("/v1/dead-letters?{parameter}=a%00b"))
            .await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{parameter}: {got:?}");
    }
    let id = "0191b1f4-0000-7000-8000-000000000000";
    let discard = app
        .delete(&format!("/v1/dead-letters/{id}?reason=a%00b"))
        .await;
    assert_eq!(discard.status, StatusCode::BAD_REQUEST, "{discard:?}");
    let bulk = app
        .post(
            "/v1/dead-letters/discard",
            json!({"ids": [id], "reason": NUL}),
        )
        .await;
    assert_refused(&bulk, "/reason", "bulk discard reason");
    let filtered = app
        .post("/v1/dead-letters/redrive", json!({"filter": {"rule": NUL}}))
        .await;
    assert_eq!(filtered.status, StatusCode::BAD_REQUEST, "{filtered:?}");

    // The admin UI: a filter in the URL and a discard reason in a form.
    let (client, cookie, _) = app.ui_session().await;
    let page = client
        .get(format!(
            "{}/ui/dead-letters?bus=a%00b&target_id=a%00b",
            app.base
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        page.status().is_client_error(),
        "UI filter: {}",
        page.status()
    );
    let list = client
        .get(format!("{}/ui/dead-letters", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = list
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    let form = client
        .post(format!("{}/ui/dead-letters/{id}/discard", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&reason=a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST, "UI discard reason");
}

#[tokio::test]
async fn a_nul_character_in_any_path_or_query_parameter_never_answers_5xx() {
    let app = TestApp::spawn().await;
    let spec = crate::openapi::spec();
    let mut tried = 0;
    for (path, method) in crate::openapi::operations(&spec).into_keys() {
        if !path.contains('{') {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|part| if part.starts_with('{') { "a%00b" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for query in ["", "?reason=a%00b&next_token=a%00b&force=true"] {
            let got = app
                .call(method.clone(), &format!("{concrete}{query}"), None)
                .await;
            assert!(
                got.status.is_client_error(),
                "{method} {concrete}{query}: {got:?}"
            );
            let documented = &spec["paths"][&path][method.as_str().to_lowercase()]["responses"]
                [got.status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {path} answers {} which openapi.yaml does not document",
                got.status
            );
            tried += 1;
        }
    }
    assert!(tried >= 20, "only {tried} requests");
    let page = app.get("/v1/buses/default/rules?next_token=a%00b").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{page:?}");
}

#[tokio::test]
async fn an_entry_the_database_refuses_fails_only_its_own_request() {
    let app = TestApp::spawn().await;
    // Postgres itself refuses one kind of event (a trigger stands in for any row-level failure),
    // so the group commit meets a refusal no validation could foresee.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.source = 'poison' THEN RAISE EXCEPTION 'poisoned event'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON events
             FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let app = Arc::new(app);
    let refused_valid = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let (app, refused_valid, accepted) = (app.clone(), refused_valid.clone(), accepted.clone());
        clients.spawn(async move {
            for round in 0..30 {
                let entries: Vec<Value> = (0..10)
                    .map(|i| json!({"source": "shop", "detail-type": "x", "detail": {"client": client, "round": round, "i": i}}))
                    .collect();
                let got = app
                    .post("/v1/buses/default/events", json!({"entries": entries}))
                    .await;
                if got.status == StatusCode::OK && got.body["failed_entry_count"] == 0 {
                    accepted.fetch_add(10, Ordering::Relaxed);
                } else {
                    refused_valid.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let poisoner = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..30 {
                let request = app
                    .client
                    .request(
                        Method::POST,
                        format!("{}/v1/buses/default/events", app.base),
                    )
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&json!({"source": "poison", "detail-type": "x", "detail": {}}));
                statuses.push(answer(request.send().await.unwrap()).await.status);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    while clients.join_next().await.is_some() {}
    let poisoned = poisoner.await.unwrap();
    assert_eq!(
        refused_valid.load(Ordering::Relaxed),
        0,
        "valid requests failed beside the poisoned ones"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE source = 'shop'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored as usize, accepted.load(Ordering::Relaxed));
    assert_eq!(stored, 8 * 30 * 10);
    // The poisoned request itself is told the truth: the store failed (and nothing was stored).
    assert!(poisoned.iter().all(|s| s.is_server_error()), "{poisoned:?}");
    let poison: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE source = 'poison'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(poison, 0);
}
