//! Connections and API destinations over the REST API, and what deliveries do with them:
//! receivers that refuse wrong credentials (Basic, an API key), a real OAuth token endpoint
//! issuing tokens that the receiver stops accepting, destinations whose endpoint their targets
//! follow, and a rate limit that holds across two router processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::sink::Sink;
use crate::support::{TestApp, wait_for};

fn event(n: u64) -> Value {
    json!({"source": "shop", "detail-type": "OrderPlaced", "detail": {"n": n}})
}

async fn deliveries_of(app: &TestApp, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = $1")
        .bind(state)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn basic_and_api_key_connections_authenticate_deliveries_and_never_show_their_secret() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.require_header("authorization", &["Basic c2hvcDpzM2NyZXQ="]); // shop:s3cret
    let keyed = Sink::start().await;
    keyed.require_header("x-api-key", &["k-123"]);

    let made = app
        .put(
            "/v1/connections/shop-basic",
            json!({"description": "the shop", "authorization_type": "basic",
                   "basic": {"username": "shop", "password": "s3cret"}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.body["basic"], json!({"username": "shop"}));
    assert!(!made.body.to_string().contains("s3cret"));
    app.put(
        "/v1/connections/shop-key",
        json!({"authorization_type": "api_key", "api_key": {"name": "X-Api-Key", "value": "k-123"}}),
    )
    .await;
    app.put(
        "/v1/connections/wrong",
        json!({"authorization_type": "basic", "basic": {"username": "shop", "password": "guess"}}),
    )
    .await;
    // Never shown, and not stored in clear.
    let listed = app.get("/v1/connections").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["connections"].as_array().unwrap().len(), 3);
    assert!(!listed.body.to_string().contains("k-123"));
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secret_sealed FROM connections")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(
        sealed
            .iter()
            .all(|s| !s.windows(5).any(|w| w == b"s3cre" || w == b"k-123"))
    );

    app.put_rule(
        "default",
        "orders",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [
            {"id": "basic", "url": sink.url, "connection": "shop-basic"},
            {"id": "keyed", "url": keyed.url, "connection": "shop-key", "rate_limit_per_second": 50},
            {"id": "wrong", "url": sink.url, "connection": "wrong",
             "retry_policy": {"maximum_retry_attempts": 0}}]}),
    )
    .await;
    let rule = app.get("/v1/buses/default/rules/orders").await.body;
    assert_eq!(rule["targets"][0]["connection"], "shop-basic");
    assert_eq!(rule["targets"][1]["rate_limit_per_second"], 50);
    app.post_events("default", event(1)).await;
    wait_for(
        "the deliveries to settle",
        Duration::from_secs(20),
        || async {
            (deliveries_of(&app, "delivered").await == 2 && deliveries_of(&app, "dead").await == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        keyed.received()[0].header("x-api-key"),
        Some("k-123"),
        "the key's header"
    );
    // The wrong password: the receiver refused it, a dead letter with the 401.
    let dead = app.get("/v1/dead-letters?target_id=wrong").await.body;
    assert_eq!(dead["items"][0]["last_status"], 401, "{dead}");

    // A replacement of the same type may keep the secret; another type must give its own.
    let kept = app
        .put(
            "/v1/connections/shop-basic",
            json!({"description": "renamed", "authorization_type": "basic", "basic": {"username": "shop"}}),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{kept:?}");
    app.post_events("default", event(2)).await;
    wait_for(
        "the second basic delivery",
        Duration::from_secs(20),
        || async {
            (sink
                .received()
                .iter()
                .filter(|r| r.header("authorization") == Some("Basic c2hvcDpzM2NyZXQ="))
                .count()
                == 2)
                .then_some(())
        },
    )
    .await;
    let refused = app
        .put(
            "/v1/connections/shop-basic",
            json!({"authorization_type": "api_key", "api_key": {"name": "X-Key"}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.pointers(), ["/api_key/value"]);

    // Bad input is named; nothing is stored.
    for (body, pointers) in [
        (
            json!({"authorization_type": "digest"}),
            vec!["/authorization_type"],
        ),
        (
            json!({"authorization_type": "basic", "basic": {"username": "u\u{0}", "password": "p"}}),
            vec!["/basic/username"],
        ),
        (
            json!({"authorization_type": "oauth_client_credentials", "oauth": {"token_endpoint": "file:///etc/passwd", "client_id": "c", "client_secret": "s"}}),
            vec!["/oauth/token_endpoint"],
        ),
    ] {
        let answer = app.put("/v1/connections/bad", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(answer.pointers(), pointers);
    }
    assert_eq!(
        app.get("/v1/connections/bad").await.status,
        StatusCode::NOT_FOUND
    );
    // A target naming a missing connection, or setting the header its connection sets.
    let answer = app
        .put(
            "/v1/buses/default/rules/broken",
            json!({"event_pattern": {"source": ["x"]}, "targets": [
                {"id": "a", "url": sink.url, "connection": "nope"},
                {"id": "b", "url": sink.url, "connection": "shop-key", "headers": {"X-API-KEY": "mine"}}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
    assert_eq!(
        answer.pointers(),
        ["/targets/0/connection", "/targets/1/headers/X-API-KEY"]
    );
    // In use: not deleted.
    let in_use = app.delete("/v1/connections/shop-key").await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{in_use:?}");
    let audit = app
        .get("/v1/audit?resource=connections/shop-basic")
        .await
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    assert!(!audit.to_string().contains("s3cret"));
}

/// A token endpoint (RFC 6749 client credentials): checks the client's Basic credentials and
/// the grant, issues `tok-1`, `tok-2`, … valid for an hour, and counts its calls.
async fn token_endpoint(
    client: &'static str,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let issued = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen) = (issued.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/oauth/token",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (count, seen) = (count.clone(), seen.clone());
            async move {
                seen.lock().unwrap().push(body.clone());
                let expected = format!(
                    "Basic {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, client)
                );
                let authorized = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some(expected.as_str());
                if !authorized || !body.contains("grant_type=client_credentials") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": "invalid_client"})),
                    );
                }
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                (
                    StatusCode::OK,
                    axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, issued, bodies)
}

#[tokio::test]
async fn oauth_tokens_are_fetched_cached_and_fetched_again_once_when_the_target_refuses_them() {
    let app = TestApp::delivering(&[]).await;
    let (token_url, issued, bodies) = token_endpoint("switchyard:cl1ent-s3cret").await;
    let sink = Sink::start().await;
    sink.require_header("authorization", &["Bearer tok-1"]);
    let made = app
        .put(
            "/v1/connections/idp",
            json!({"authorization_type": "oauth_client_credentials", "oauth": {
                "token_endpoint": token_url, "client_id": "switchyard", "client_secret": "cl1ent-s3cret",
                "scopes": ["orders.write", "orders.read"], "body_parameters": {"audience": "shop"}}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert!(!made.body.to_string().contains("cl1ent-s3cret"));
    assert_eq!(
        made.body["oauth"]["scopes"],
        json!(["orders.write", "orders.read"])
    );
    app.put_rule(
        "default",
        "orders",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "api", "url": sink.url, "connection": "idp"}]}),
    )
    .await;
    for n in 0..3 {
        app.post_events("default", event(n)).await;
    }
    wait_for("three deliveries", Duration::from_secs(20), || async {
        (deliveries_of(&app, "delivered").await == 3).then_some(())
    })
    .await;
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token, cached for the rest"
    );
    let body = bodies.lock().unwrap()[0].clone();
    assert!(
        body.contains("scope=orders.write+orders.read") && body.contains("audience=shop"),
        "{body}"
    );

    // The receiver stops accepting the token: the next delivery fetches a new one, once, and
    // is delivered on the same attempt.
    sink.require_header("authorization", &["Bearer tok-2"]);
    app.post_events("default", event(9)).await;
    wait_for("the fourth delivery", Duration::from_secs(20), || async {
        (deliveries_of(&app, "delivered").await == 4).then_some(())
    })
    .await;
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM deliveries ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, [1, 1, 1, 1], "the refused token cost no attempt");

    // A wrong client secret: the token endpoint refuses, the delivery is retried with why.
    app.put(
        "/v1/connections/idp",
        json!({"authorization_type": "oauth_client_credentials", "oauth": {
            "token_endpoint": token_url, "client_id": "switchyard", "client_secret": "wrong"}}),
    )
    .await;
    app.post_events("default", event(10)).await;
    let error: String = wait_for("a failed attempt", Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, String>(
            "SELECT error FROM delivery_attempts WHERE error IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    })
    .await;
    assert!(
        error.contains("authenticating failed") && error.contains("answered 401"),
        "{error}"
    );
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "no token for a wrong secret"
    );
}

#[tokio::test]
async fn api_destinations_give_their_targets_endpoint_method_and_connection() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.require_header("x-api-key", &["k"]);
    let base = sink.url.trim_end_matches("/hook").to_owned();
    app.put(
        "/v1/connections/key",
        json!({"authorization_type": "api_key", "api_key": {"name": "x-api-key", "value": "k"}}),
    )
    .await;
    let made = app
        .put(
            "/v1/api-destinations/orders-api",
            json!({"connection": "key", "endpoint": format!("{base}/regions/*/orders"), "method": "PUT",
                   "rate_limit_per_second": 100}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let answer = app
        .put(
            "/v1/buses/default/rules/to-api",
            json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "api",
                "api_destination": {"name": "orders-api", "path_parameters": ["eu west"], "query_parameters": {"via": "switchyard"}}}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    let target = &answer.body["targets"][0];
    assert_eq!(
        target["url"],
        format!("{base}/regions/eu%20west/orders?via=switchyard")
    );
    assert_eq!(
        (target["method"].as_str(), target["connection"].as_str()),
        (Some("PUT"), Some("key"))
    );
    assert_eq!(target["rate_limit_per_second"], 100);
    app.post_events("default", event(1)).await;
    let first = wait_for("the delivery", Duration::from_secs(20), || async {
        sink.received().first().cloned()
    })
    .await;
    assert_eq!(first.method, "PUT");
    assert_eq!(first.path, "/regions/eu%20west/orders?via=switchyard");

    // The destination moves: its target follows at once.
    let moved = app
        .put(
            "/v1/api-destinations/orders-api",
            json!({"connection": "key", "endpoint": format!("{base}/v2/*"), "method": "POST"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    app.post_events("default", event(2)).await;
    let second = wait_for("the second delivery", Duration::from_secs(20), || async {
        sink.received().get(1).cloned()
    })
    .await;
    assert_eq!(
        (second.method.as_str(), second.path.as_str()),
        ("POST", "/v2/eu%20west?via=switchyard")
    );
    let rule = app.get("/v1/buses/default/rules/to-api").await.body;
    assert!(
        rule["targets"][0].get("rate_limit_per_second").is_none(),
        "{rule}"
    );

    // A change that would break a target is refused, naming it; so are a missing connection,
    // a target giving what the destination gives, and deleting what is used.
    let breaking = app
        .put(
            "/v1/api-destinations/orders-api",
            json!({"connection": "key", "endpoint": format!("{base}/*/*"), "method": "POST"}),
        )
        .await;
    assert_eq!(breaking.status, StatusCode::BAD_REQUEST);
    assert!(
        breaking.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("default/to-api"),
        "{breaking:?}"
    );
    let missing = app
        .put(
            "/v1/api-destinations/other",
            json!({"connection": "nope", "endpoint": format!("{base}/x"), "method": "POST"}),
        )
        .await;
    assert_eq!(missing.pointers(), ["/connection"]);
    let both = app
        .put(
            "/v1/buses/default/rules/both",
            json!({"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "url": sink.url,
                "api_destination": {"name": "orders-api", "path_parameters": ["a"]}}]}),
        )
        .await;
    assert_eq!(both.pointers(), ["/targets/0/url"]);
    let unknown = app
        .put(
            "/v1/buses/default/rules/both",
            json!({"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "api_destination": {"name": "ghost"}}]}),
        )
        .await;
    assert_eq!(unknown.pointers(), ["/targets/0/api_destination/name"]);
    let wrong_count = app
        .put(
            "/v1/buses/default/rules/both",
            json!({"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "api_destination": {"name": "orders-api"}}]}),
        )
        .await;
    assert_eq!(wrong_count.pointers(), ["/targets/0/api_destination"]);
    assert_eq!(
        app.delete("/v1/api-destinations/orders-api").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.delete("/v1/connections/key").await.status,
        StatusCode::CONFLICT
    );
    let listed = app.get("/v1/api-destinations").await.body;
    assert_eq!(
        listed["api_destinations"][0]["endpoint"],
        format!("{base}/v2/*")
    );
    assert_eq!(
        app.delete("/v1/buses/default/rules/to-api").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete("/v1/api-destinations/orders-api").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete("/v1/connections/key").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_rate_limit_holds_across_two_router_processes() {
    let first = TestApp::delivering(&[]).await;
    let second = first
        .another(&crate::support::app::delivering_flags(&[]))
        .await;
    let sink = Sink::start().await;
    first
        .put(
            "/v1/connections/open",
            json!({"authorization_type": "api_key", "api_key": {"name": "x-k", "value": "v"}}),
        )
        .await;
    first
        .put(
            "/v1/api-destinations/slow",
            json!({"connection": "open", "endpoint": sink.url, "method": "POST", "rate_limit_per_second": 5}),
        )
        .await;
    first
        .put_rule(
            "default",
            "paced",
            json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "slow", "api_destination": {"name": "slow"}}]}),
        )
        .await;
    // The second process learns of the rule by NOTIFY, a moment later; saving the bus through
    // it rebuilds its snapshot before it answers.
    let refreshed = second.put("/v1/buses/default", json!({})).await;
    assert!(refreshed.status.is_success(), "{refreshed:?}");
    // 30 events through both processes: at 5 per second, six windows at least.
    let entries: Vec<Value> = (0..15).map(event).collect();
    first
        .post_events("default", json!({"entries": entries}))
        .await;
    second
        .post_events("default", json!({"entries": entries}))
        .await;
    let received = wait_for("all 30 deliveries", Duration::from_secs(40), || async {
        let received = sink.received();
        (received.len() >= 30).then_some(received)
    })
    .await;
    assert_eq!(received.len(), 30, "none lost, none twice");
    // Six windows of a second: from the end of the first to the start of the sixth is more than
    // four seconds. (A limit per process, 10/s between them, would take three: under three.)
    let span = received.last().unwrap().at - received.first().unwrap().at;
    assert!(
        span >= Duration::from_millis(3900),
        "30 sends at 5/s across both processes took only {span:?}"
    );
    // No more than the limit in any second after the first send (a fixed window per second:
    // two windows can meet inside one second, so at most twice the rate; two more for the
    // way to the sink on a busy machine. A limit per process would let up to twenty through).
    for (i, start) in received.iter().enumerate() {
        let within = received[i..]
            .iter()
            .take_while(|r| r.at - start.at < Duration::from_secs(1))
            .count();
        assert!(within <= 12, "{within} sends within a second of send {i}");
    }
    // Each outcome is recorded a moment after the sink has the request.
    wait_for("30 outcomes recorded", Duration::from_secs(20), || async {
        (deliveries_of(&first, "delivered").await == 30).then_some(())
    })
    .await;
    assert_eq!(deliveries_of(&first, "dead").await, 0);
}
