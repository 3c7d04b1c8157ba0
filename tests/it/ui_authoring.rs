//! Issue 13 in a real browser: writing a rule in the UI (its pattern checked as it is typed:
//! the error's pointer, the schema warnings, a dry run against recent events; saving makes it
//! live; disabling and deleting it), and the schema catalog (types, versions, their difference,
//! recent events, violations in the last hour).

use std::time::Duration;

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::sink::Sink;
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const LONG: Duration = Duration::from_secs(20);

fn order_schema() -> serde_json::Value {
    json!({"type": "object", "required": ["id", "total"], "additionalProperties": false,
           "properties": {"id": {"type": "string"}, "total": {"type": "number"}}})
}

fn order(id: &str, total: u64) -> serde_json::Value {
    json!({"source": "shop", "detail-type": "OrderPlaced", "detail": {"id": id, "total": total}})
}

/// Waits until the element's visible text satisfies `want`, and returns it.
async fn wait_text(browser: &Browser, css: &str, want: impl Fn(&str) -> bool) -> String {
    wait_for(&format!("the text of {css}"), LONG, || async {
        let found = browser
            .client
            .find(fantoccini::Locator::Css(css))
            .await
            .ok()?;
        let text = found.text().await.ok()?;
        want(&text).then_some(text)
    })
    .await
}

#[tokio::test]
async fn a_rule_is_written_in_the_ui_checked_as_typed_and_live_once_saved() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    let registered = app
        .post(
            "/v1/buses/default/schemas/shop/OrderPlaced/versions",
            json!({"schema": order_schema()}),
        )
        .await;
    assert!(registered.status.is_success(), "{registered:?}");
    let totals = [50, 150, 20, 300, 99, 101, 5, 7, 8, 9];
    let batch: Vec<_> = totals
        .iter()
        .enumerate()
        .map(|(i, t)| order(&format!("o{i}"), *t))
        .collect();
    app.post_events("default", json!({"entries": batch})).await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/ui/rules?bus=default", app.base))
        .await;
    browser.click_to_page("#new-rule").await;
    assert_eq!(browser.path().await, "/ui/rule-editor/default");

    // An invalid pattern: its error and pointer, as typed.
    browser
        .fill(
            "#event-pattern",
            r#"{"detail": {"total": [{"numeric": [">", "lots"]}]}}"#,
        )
        .await;
    let pointer = wait_text(&browser, "#pattern-error .pointer", |t| !t.is_empty()).await;
    assert_eq!(pointer, "/detail/total/0/numeric/1");
    assert!(
        browser
            .text("#pattern-error .message")
            .await
            .contains("must be numeric")
    );

    // A misspelt field: the schema's warning.
    browser
        .fill(
            "#event-pattern",
            r#"{"detail-type": ["OrderPlaced"], "detail": {"totl": [{"numeric": [">", 100]}]}}"#,
        )
        .await;
    let warning = wait_text(&browser, "#schema-warnings", |t| t.contains("totl")).await;
    assert!(warning.contains("/event_pattern/detail/totl"), "{warning}");
    assert_eq!(
        browser.text("#pattern-error").await,
        "",
        "no error any more"
    );
    assert_eq!(
        wait_text(&browser, "#dry-run-matched", |t| t == "0").await,
        "0"
    );

    // The right one: no warning, and the dry run counts the recent events it would match.
    browser
        .fill(
            "#event-pattern",
            r#"{"detail-type": ["OrderPlaced"], "detail": {"total": [{"numeric": [">", 100]}]}}"#,
        )
        .await;
    let matched = wait_text(&browser, "#dry-run-matched", |t| t == "3").await;
    assert_eq!(matched, "3");
    assert_eq!(browser.text("#dry-run-checked").await, "10");
    assert_eq!(browser.text("#schema-warnings").await, "");
    assert!(browser.exists("#dry-run a[href^='/ui/events?id=']").await);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rules")
            .fetch_one(&app.pool)
            .await
            .unwrap(),
        0,
        "nothing is saved while typing"
    );

    // A refused save keeps what was typed and names the field.
    browser.fill("#rule-name", "big-orders").await;
    browser.fill("#rule-targets", "[{\"id\": \"hook\"}]").await;
    browser.click_to_page("#save-rule").await;
    let errors = browser.text("#errors").await;
    assert!(errors.contains("/targets/0/url"), "{errors}");
    browser
        .fill(
            "#rule-targets",
            &json!([{"id": "hook", "url": sink.url}]).to_string(),
        )
        .await;
    browser.click_to_page("#save-rule").await;
    assert_eq!(browser.path().await, "/ui/rules/default/big-orders");
    assert!(
        browser
            .text("#notice")
            .await
            .starts_with("Created big-orders.")
    );

    // Live: a new big order reaches the target, a small one does not.
    app.post_events(
        "default",
        json!({"entries": [order("n1", 500), order("n2", 1)]}),
    )
    .await;
    wait_for("the big order at the target", LONG, || async {
        (sink.count() == 1).then_some(())
    })
    .await;
    assert!(sink.received()[0].body.contains("\"n1\""));

    // Disabled, then deleted, from its page.
    browser.click_to_page("#toggle-rule").await;
    assert!(browser.text("#notice").await.contains("disabled"));
    let state: String = sqlx::query_scalar("SELECT state FROM rules WHERE name = 'big-orders'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "disabled");
    browser.mark_page().await;
    browser.click("#delete-rule").await;
    browser
        .client
        .accept_alert()
        .await
        .expect("confirm the delete");
    browser.wait_new_page("the rules after the delete").await;
    assert_eq!(browser.path().await, "/ui/rules");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let audit = app.get("/v1/audit?action=rule.put").await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(2),
        "saved, then disabled"
    );
    browser.close().await;
}

#[tokio::test]
async fn the_schema_catalog_shows_types_versions_their_difference_and_violations() {
    let app = TestApp::spawn_with(&["--stats-interval-ms", "100"]).await;
    let versions = "/v1/buses/default/schemas/shop/OrderPlaced/versions";
    assert!(
        app.post(versions, json!({"schema": order_schema()}))
            .await
            .status
            .is_success()
    );
    let mut v2 = order_schema();
    v2["required"] = json!(["id", "total", "currency"]);
    v2["properties"]["currency"] = json!({"type": "string"});
    let forced = app
        .post(&format!("{versions}?force=true"), json!({"schema": v2}))
        .await;
    assert!(forced.status.is_success(), "{forced:?}");
    app.put("/v1/buses/default", json!({"schema_validation": "warn"}))
        .await;
    app.post_events("default", order("o1", 10)).await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/schemas", app.base)).await;
    assert!(
        browser
            .text("#bus-settings")
            .await
            .contains("Validation warn")
    );
    let violations = wait_for("the violation in the catalog", LONG, || async {
        browser.goto(&format!("{}/ui/schemas", app.base)).await;
        let text = browser.text("#event-types .violations").await;
        (text == "1").then_some(text)
    })
    .await;
    assert_eq!(violations, "1");
    assert!(browser.text("#event-types").await.contains("v2"));

    browser.click_to_page("#event-types a").await;
    assert_eq!(browser.path().await, "/ui/schemas/default/shop/OrderPlaced");
    assert_eq!(browser.text("#versions").await, "v1\nv2 · forced");
    let backward = browser.text("#backward").await;
    assert!(backward.contains("REQUIRED_ATTRIBUTE_ADDED"), "{backward}");
    assert!(
        browser
            .text("#line-diff")
            .await
            .contains("+     \"currency\"")
    );
    let samples = browser.text("#samples").await;
    assert!(
        samples.contains("invalid") && samples.contains("currency"),
        "{samples}"
    );
    assert_eq!(browser.text("#type-violations").await, "1");

    // The first version: its schema, no difference shown.
    browser.click_to_page("#versions a").await;
    assert!(browser.text("#schema-json").await.contains("\"total\""));
    assert!(!browser.exists("#diff").await);

    // The pattern tester checks a pattern against the chosen bus's schemas too.
    browser
        .goto(&format!("{}/ui/pattern-tester", app.base))
        .await;
    browser
        .fill(
            "#pattern",
            r#"{"detail-type": ["OrderPlaced"], "detail": {"totl": [1]}}"#,
        )
        .await;
    browser
        .client
        .find(fantoccini::Locator::Css(
            "#tester-bus option[value='default']",
        ))
        .await
        .expect("the bus option")
        .click()
        .await
        .expect("choose the bus");
    browser.click_to_page("#test").await;
    let warnings = browser.text("#tester-warnings").await;
    assert!(
        warnings.contains("/event_pattern/detail/totl"),
        "{warnings}"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_discovered_shape_is_reviewed_and_accepted_in_the_ui() {
    let app = TestApp::spawn_with(&["--discovery-interval-ms", "100"]).await;
    app.put("/v1/buses/default", json!({"schema_discovery": true}))
        .await;
    app.post_events(
        "default",
        json!({"entries": [order("o1", 10), order("o2", 20)]}),
    )
    .await;
    wait_for("the draft", LONG, || async {
        let drafts = app.get("/v1/buses/default/schema-drafts").await;
        (drafts.body["drafts"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/schemas", app.base)).await;
    assert!(browser.text("#bus-settings").await.contains("discovery on"));
    assert!(browser.text("#event-types").await.contains("draft"));
    browser.click_to_page("#event-types a").await;
    let draft = browser.text("#draft").await;
    assert!(
        draft.contains("2 of which the latest version refuses"),
        "{draft}"
    );
    assert!(browser.text("#draft-json").await.contains("\"total\""));
    browser.click_to_page("#accept-draft").await;
    assert_eq!(browser.text("#notice").await, "Registered as version 1.");
    assert!(!browser.exists("#draft").await);
    assert_eq!(browser.text("#versions").await, "v1");
    let audit = app.get("/v1/audit?action=schema.register").await;
    assert_eq!(
        audit.body["items"][0]["detail"]["from_draft"], true,
        "{audit:?}"
    );
    browser.close().await;
}

/// Issue 15 in a real browser: connections and API destinations made, refused and deleted in the
/// UI, a secret never shown again, and a target using them delivered with the credentials.
#[tokio::test]
async fn connections_and_api_destinations_are_managed_in_the_ui() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.require_header("authorization", &["Basic c2hvcDpzM2NyZXQ="]); // shop:s3cret
    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/connections", app.base)).await;
    assert!(browser.exists("#no-connections").await);
    let choose = |css: &'static str, value: &'static str| {
        let browser = &browser;
        async move {
            browser
                .client
                .find(fantoccini::Locator::Css(css))
                .await
                .expect("the menu")
                .select_by_value(value)
                .await
                .expect("choose");
        }
    };

    // Refused: the secret is required for a new connection; the field is named.
    browser.fill("#connection-name", "shop").await;
    choose("#connection-type", "basic").await;
    browser.fill("#connection-principal", "shop").await;
    browser.click_to_page("#save-connection-button").await;
    let error = browser.text("#connection-error").await;
    assert!(error.contains("basic/password"), "{error}");

    browser.fill("#connection-name", "shop").await;
    choose("#connection-type", "basic").await;
    browser.fill("#connection-principal", "shop").await;
    browser.fill("#connection-secret", "s3cret").await;
    browser.click_to_page("#save-connection-button").await;
    assert!(
        browser
            .text("#notice")
            .await
            .contains("Created connection shop")
    );
    let listed = browser.text("#connections").await;
    assert!(listed.contains("user shop"), "{listed}");
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains("s3cret"), "the secret is never shown");

    browser.fill("#destination-name", "shop-api").await;
    choose("#destination-connection", "shop").await;
    browser
        .fill("#destination-endpoint", &format!("{}/*", sink.url))
        .await;
    choose("#destination-method", "PUT").await;
    browser.fill("#destination-rate", "20").await;
    browser.click_to_page("#save-destination-button").await;
    assert!(
        browser
            .text("#notice")
            .await
            .contains("Created API destination shop-api")
    );
    let destinations = browser.text("#destinations").await;
    assert!(
        destinations.contains("20/s") && destinations.contains("PUT"),
        "{destinations}"
    );
    browser.screenshot("connections.png").await;

    // A target on the destination delivers with the connection's credentials.
    app.put_rule(
        "default",
        "to-shop",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [
            {"id": "shop", "api_destination": {"name": "shop-api", "path_parameters": ["orders"]}}]}),
    )
    .await;
    app.post_events("default", order("o-1", 5)).await;
    let got = wait_for("the delivery", LONG, || async {
        sink.received().first().cloned()
    })
    .await;
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("PUT", "/hook/orders")
    );

    // In use: deleting is refused and says by what; once the rule is gone, both go.
    let question = {
        browser.mark_page().await;
        browser
            .click("#destinations form.inline button.delete")
            .await;
        let text = browser
            .client
            .get_alert_text()
            .await
            .expect("a confirmation");
        browser.client.accept_alert().await.expect("confirm");
        browser.wait_new_page("the page after deleting").await;
        text
    };
    assert!(question.contains("shop-api"), "{question}");
    assert!(browser.text("#connection-error").await.contains("1 target"));
    assert_eq!(
        app.delete("/v1/buses/default/rules/to-shop").await.status,
        204
    );
    for table in ["#destinations", "#connections"] {
        browser.goto(&format!("{}/ui/connections", app.base)).await;
        browser.mark_page().await;
        browser
            .click(&format!("{table} form.inline button.delete"))
            .await;
        browser.client.accept_alert().await.expect("confirm");
        browser.wait_new_page("the page after deleting").await;
        assert!(browser.text("#notice").await.contains("Deleted"));
    }
    assert!(browser.exists("#no-connections").await && browser.exists("#no-destinations").await);

    // An AWS access key made in the UI works with the SDK.
    browser.goto(&format!("{}/ui/tokens", app.base)).await;
    browser.fill("#token-name", "sdk from ui").await;
    choose("#token-kind", "aws_access_key").await;
    browser.click_to_page("#create").await;
    let shown = browser.text("#secret").await;
    let value = |name: &str| {
        shown
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {shown}"))
            .to_owned()
    };
    let pair = (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"));
    assert!(browser.text("#tokens").await.contains(&pair.0));
    let buses = crate::aws::client(&app, &pair)
        .list_event_buses()
        .send()
        .await
        .expect("the key signs");
    assert_eq!(buses.event_buses().len(), 1);
    // Every form needs the session's CSRF token.
    let (client, cookie, _) = app.ui_session().await;
    for path in [
        "/ui/connections",
        "/ui/api-destinations",
        "/ui/connections/x/delete",
        "/ui/api-destinations/x/delete",
    ] {
        let answer = client
            .post(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=x&csrf=guess")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{path}");
    }
    browser.close().await;
}
