//! Scoped and revocable API tokens (issue 16, item 5): `/v1/tokens` creates, lists and revokes;
//! each route asks for a scope (`read` for GETs, `publish` for posting events, `admin` for the
//! rest) and, for a token limited to buses, one of its buses; revoking a token ends the UI
//! sessions it opened; `switchyard token create --scope --bus` makes the same tokens.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::app::Answer;

/// Creates a token over REST with the admin token; returns (id, secret).
async fn create(app: &TestApp, body: Value) -> (String, String) {
    let created = app.post("/v1/tokens", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{body}: {created:?}");
    let id = created.body["id"].as_str().expect("an id").to_owned();
    let secret = created.body["token"]
        .as_str()
        .expect("the secret")
        .to_owned();
    (id, secret)
}

fn event(detail_type: &str) -> Value {
    json!({"entries": [{"source": "shop", "detail-type": detail_type, "detail": {}}]})
}

/// A 403 problem that names what is missing.
fn assert_forbidden(answer: &Answer, names: &str, what: &str) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}: {answer:?}");
    assert_eq!(
        answer.body["type"], "urn:switchyard:problem:forbidden",
        "{what}"
    );
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(names), "{what}: {detail:?} names {names}");
}

#[tokio::test]
async fn tokens_are_created_listed_without_secrets_and_revoked() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.put("/v1/buses/orders", json!({})).await.status,
        StatusCode::CREATED
    );
    let created = app
        .post(
            "/v1/tokens",
            json!({"name": "orders producer", "scope": "publish", "buses": ["orders"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["name"], "orders producer");
    assert_eq!(created.body["scope"], "publish");
    assert_eq!(created.body["buses"], json!(["orders"]));
    assert_eq!(created.body["revoked_at"], Value::Null);
    let secret = created.body["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sy_"), "{secret}");
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Listed, with every field but the secret.
    let listed = app.get("/v1/tokens").await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    let tokens = listed.body["tokens"].as_array().unwrap();
    let mine = tokens.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(mine["scope"], "publish");
    assert!(mine.get("token").is_none(), "{mine}");
    assert!(!listed.body.to_string().contains(&secret[3..]), "no secret");

    // It works, then it is revoked and works no more.
    let posted = app
        .call_as(
            &secret,
            Method::POST,
            "/v1/buses/orders/events",
            Some(event("placed")),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{posted:?}");
    let revoked = app.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    assert!(revoked.body["revoked_at"].is_string(), "{revoked:?}");
    let refused = app
        .call_as(
            &secret,
            Method::POST,
            "/v1/buses/orders/events",
            Some(event("placed")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let listed = app.get("/v1/tokens").await;
    let mine = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert!(
        mine["revoked_at"].is_string(),
        "revoked stays listed: {mine}"
    );
    // Revoking again changes nothing; an unknown id is a 404.
    let again = app.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["revoked_at"], mine["revoked_at"]);
    let unknown = app
        .delete("/v1/tokens/0190a1b2-0000-7000-8000-000000000000")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
}

#[tokio::test]
async fn a_token_is_refused_field_by_field() {
    let app = TestApp::spawn().await;
    for (body, pointer) in [
        (json!({"scope": "read"}), "/name"),
        (json!({"name": "", "scope": "read"}), "/name"),
        (json!({"name": "a\u{0}b", "scope": "read"}), "/name"),
        (json!({"name": "x"}), "/scope"),
        (json!({"name": "x", "scope": "owner"}), "/scope"),
        (json!({"name": "x", "scope": "read", "buses": []}), "/buses"),
        (
            json!({"name": "x", "scope": "read", "buses": ["ok", "not a bus"]}),
            "/buses/1",
        ),
        (
            json!({"name": "x", "scope": "read", "expires": "never"}),
            "/expires",
        ),
    ] {
        let refused = app.post("/v1/tokens", body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {refused:?}"
        );
        let pointers: Vec<&str> = refused.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["pointer"].as_str()).collect())
            .unwrap_or_default();
        assert!(pointers.contains(&pointer), "{body}: {refused:?}");
    }
    let listed = app.get("/v1/tokens").await;
    assert_eq!(listed.body["tokens"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn each_route_asks_for_its_scope_and_bus() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.put("/v1/buses/orders", json!({})).await.status,
        StatusCode::CREATED
    );
    app.put_rule(
        "orders",
        "all",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "t", "url": "http://127.0.0.1:9/"}]}),
    )
    .await;
    assert_eq!(
        app.put("/v1/buses/payments", json!({})).await.status,
        StatusCode::CREATED
    );
    let (_, publish) = create(
        &app,
        json!({"name": "p", "scope": "publish", "buses": ["orders"]}),
    )
    .await;
    let (_, read) = create(&app, json!({"name": "r", "scope": "read"})).await;
    let (_, read_orders) = create(
        &app,
        json!({"name": "ro", "scope": "read", "buses": ["orders"]}),
    )
    .await;
    let (_, admin) = create(&app, json!({"name": "a", "scope": "admin"})).await;
    let call = |token: &str, method: Method, path: &str, body: Option<Value>| {
        let token = token.to_owned();
        let path = path.to_owned();
        let app = &app;
        async move { app.call_as(&token, method, &path, body).await }
    };

    // publish, limited to orders: posts events there and nowhere else, reads nothing.
    let ok = call(
        &publish,
        Method::POST,
        "/v1/buses/orders/events",
        Some(event("a")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    let elsewhere = call(
        &publish,
        Method::POST,
        "/v1/buses/payments/events",
        Some(event("a")),
    )
    .await;
    assert_forbidden(&elsewhere, "payments", "publish elsewhere");
    let read_by_publish = call(&publish, Method::GET, "/v1/buses/orders", None).await;
    assert_forbidden(&read_by_publish, "`read`", "publish reads");
    let change_by_publish =
        call(&publish, Method::DELETE, "/v1/buses/orders/rules/all", None).await;
    assert_forbidden(&change_by_publish, "`admin`", "publish deletes");

    // read: every GET and the pattern tester; no posting, no change.
    for path in [
        "/v1/buses",
        "/v1/buses/orders/rules",
        "/v1/buses/orders/rules/all",
        "/v1/dead-letters",
    ] {
        let got = call(&read, Method::GET, path, None).await;
        assert_eq!(got.status, StatusCode::OK, "read {path}: {got:?}");
    }
    let tested = call(
        &read,
        Method::POST,
        "/v1/test-event-pattern",
        Some(json!({"event_pattern": {"source": ["shop"]}, "event": {"source": "shop", "detail-type": "x", "detail": {}}})),
    )
    .await;
    assert_eq!(tested.status, StatusCode::OK, "{tested:?}");
    let post_by_read = call(
        &read,
        Method::POST,
        "/v1/buses/orders/events",
        Some(event("a")),
    )
    .await;
    assert_forbidden(&post_by_read, "`publish`", "read posts");
    let put_by_read = call(&read, Method::PUT, "/v1/buses/x", Some(json!({}))).await;
    assert_forbidden(&put_by_read, "`admin`", "read creates a bus");
    let tokens_by_read = call(&read, Method::GET, "/v1/tokens", None).await;
    assert_forbidden(&tokens_by_read, "`admin`", "read lists tokens");
    assert_eq!(
        app.get("/v1/buses/x").await.status,
        StatusCode::NOT_FOUND,
        "nothing made"
    );

    // read, limited to orders: its bus only; routes that name no bus are refused.
    let own = call(&read_orders, Method::GET, "/v1/buses/orders/rules", None).await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    let other = call(&read_orders, Method::GET, "/v1/buses/payments", None).await;
    assert_forbidden(&other, "payments", "read_orders on payments");
    let no_bus = call(&read_orders, Method::GET, "/v1/dead-letters", None).await;
    assert_forbidden(&no_bus, "orders", "read_orders on a route without a bus");

    // admin: everything, tokens included.
    let made = call(&admin, Method::PUT, "/v1/buses/x", Some(json!({}))).await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let tokens = call(&admin, Method::GET, "/v1/tokens", None).await;
    assert_eq!(tokens.status, StatusCode::OK, "{tokens:?}");

    // A refused token is a 401 on every scope check, never a 403.
    let wrong = call("sy_wrong", Method::GET, "/v1/buses", None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_token_ends_the_ui_sessions_it_opened() {
    let app = TestApp::spawn().await;
    let (id, admin) = create(&app, json!({"name": "operator", "scope": "admin"})).await;
    let (client, cookie, _) = app.ui_session_as(&admin).await;
    let page = |client: reqwest::Client, cookie: String| {
        let url = format!("{}/ui/rules", app.base);
        async move {
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        page(client.clone(), cookie.clone()).await.status(),
        StatusCode::OK
    );
    // A session opened with another token lives on.
    let (other_client, other_cookie, _) = app.ui_session().await;
    let revoked = app.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    let after = page(client, cookie).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "back to the sign-in");
    let location = after.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/ui/login"), "{location}");
    let other = page(other_client, other_cookie).await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_ui_admits_read_tokens_to_look_and_refuses_publish_tokens() {
    let app = TestApp::spawn().await;
    let (_, read) = create(&app, json!({"name": "viewer", "scope": "read"})).await;
    let (_, publish) = create(&app, json!({"name": "producer", "scope": "publish"})).await;
    let (_, limited) = create(
        &app,
        json!({"name": "orders viewer", "scope": "read", "buses": ["orders"]}),
    )
    .await;
    for (token, why) in [(&publish, "publish"), (&limited, "orders")] {
        let login = app
            .client
            .post(format!("{}/ui/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&next=%2Fui"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::FORBIDDEN, "{why}");
        assert!(login.headers().get("set-cookie").is_none(), "{why}");
        let page = login.text().await.unwrap();
        assert!(page.contains(why), "the page says why: {page}");
    }
    // A read session sees the pages; its forms are refused.
    let (client, cookie, _) = app.ui_session_as(&read).await;
    let rules = client
        .get(format!("{}/ui/rules", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(rules.status(), StatusCode::OK);
    let body = rules.text().await.unwrap();
    assert!(
        !body.contains("/ui/tokens"),
        "no Tokens link for a read session"
    );
    for admin_page in ["/ui/tokens", "/ui/audit"] {
        let refused = client
            .get(format!("{}{admin_page}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{admin_page}");
    }
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token on the page")
        .to_owned();
    let bulk = client
        .post(format!("{}/ui/dead-letters/action", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&action=discard"))
        .send()
        .await
        .unwrap();
    assert_eq!(bulk.status(), StatusCode::FORBIDDEN);
    assert!(bulk.text().await.unwrap().contains("admin"));
    // Testing a pattern changes nothing: a read session may.
    let tested = client
        .post(format!("{}/ui/pattern-tester", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&pattern=%7B%22source%22%3A%5B%22shop%22%5D%7D&event=%7B%22source%22%3A%22shop%22%7D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(tested.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_command_line_creates_scoped_tokens() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.put("/v1/buses/audit", json!({})).await.status,
        StatusCode::CREATED
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "token", "create", "--name", "ci", "--scope", "publish", "--bus", "orders", "--bus",
            "audit",
        ])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHYARD_SECRET_KEY", crate::support::SECRET_KEY)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{out:?}");
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let listed = app.get("/v1/tokens").await;
    let ci = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .cloned()
        .expect("listed");
    assert_eq!(ci["scope"], "publish");
    assert_eq!(ci["buses"], json!(["orders", "audit"]));
    let posted = app
        .call_as(
            &secret,
            Method::POST,
            "/v1/buses/audit/events",
            Some(event("x")),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{posted:?}");
    let refused = app.call_as(&secret, Method::GET, "/v1/buses", None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["token", "create", "--scope", "root"])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .expect("run the binary");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("root"));
}
