//! The admin UI in a real browser (headless Chromium) against the real application.

use std::time::Duration;

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::sink::{Reply, Sink};
use crate::support::{ADMIN_TOKEN, TestApp, wait_for};

const LONG: Duration = Duration::from_secs(20);

async fn dead_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'dead'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn rows(browser: &Browser) -> usize {
    browser
        .client
        .find_all(fantoccini::Locator::Css("#dead-letters tbody tr"))
        .await
        .map(|rows| rows.len())
        .unwrap_or(0)
}

/// Clicks a submit button that asks for confirmation, and confirms.
async fn click_and_confirm(browser: &Browser, css: &str) -> String {
    browser.mark_page().await;
    browser.click(css).await;
    let text = browser
        .client
        .get_alert_text()
        .await
        .expect("a confirmation dialog");
    browser.client.accept_alert().await.expect("confirm");
    browser
        .wait_new_page(&format!("the page after confirming {css}"))
        .await;
    text
}

#[tokio::test]
async fn every_page_needs_a_session_which_a_valid_token_opens() {
    let app = TestApp::spawn().await;
    let browser = Browser::open().await;
    for page in [
        "/ui",
        "/ui/rules",
        "/ui/pattern-tester",
        "/ui/events",
        "/ui/archives",
        "/ui/replays",
        "/ui/schemas",
        "/ui/rule-editor/default",
        "/ui/dead-letters/0191b1f4-0000-7000-8000-000000000000",
    ] {
        browser.goto(&format!("{}{page}", app.base)).await;
        assert_eq!(
            browser.path().await,
            "/ui/login",
            "{page} without a session"
        );
    }
    browser.goto(&format!("{}/ui/rules", app.base)).await;
    browser.fill("#token", "sy_wrong").await;
    browser.click("#login").await;
    wait_for("the login error", LONG, || async {
        browser.exists("#login-error").await.then_some(())
    })
    .await;
    assert_eq!(
        browser.text("#login-error").await,
        "That token is not valid."
    );

    browser.fill("#token", ADMIN_TOKEN).await;
    browser.click("#login").await;
    let path = browser
        .wait_path("the page after logging in", |p| p != "/ui/login")
        .await;
    assert_eq!(path, "/ui/rules", "back where the login was asked for");
    assert_eq!(browser.text("#count-dead").await, "0");

    browser.click("button.link").await; // log out
    browser
        .wait_path("the login page after logging out", |p| p == "/ui/login")
        .await;
    browser.goto(&format!("{}/ui/dead-letters", app.base)).await;
    assert_eq!(browser.path().await, "/ui/login", "the session ended");
    browser.close().await;

    // Forms that change things need the session's CSRF token.
    switchyard::delivery::client::install_crypto_provider();
    let (client, cookie, set_cookie) = app.ui_session().await;
    assert!(
        set_cookie.contains("HttpOnly; SameSite=Strict"),
        "{set_cookie}"
    );
    let forged = client
        .post(format!("{}/ui/dead-letters/action", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("action=discard&scope=filter&csrf=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // The rule editor's forms and its check too.
    app.put_rule(
        "default",
        "kept",
        json!({"event_pattern": {"source": ["a"]}}),
    )
    .await;
    for (path, body, content_type) in [
        (
            "/ui/rule-editor/default",
            "name=x&event_pattern=%7B%7D&csrf=guess",
            "application/x-www-form-urlencoded",
        ),
        (
            "/ui/rules/default/kept/delete",
            "csrf=guess",
            "application/x-www-form-urlencoded",
        ),
        (
            "/ui/rules/default/kept/state",
            "state=disabled",
            "application/x-www-form-urlencoded",
        ),
        (
            "/ui/rule-check/default",
            r#"{"event_pattern": "{}"}"#,
            "application/json",
        ),
    ] {
        let forged = client
            .post(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{path}");
    }
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM rules WHERE state = 'enabled'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rules, 1, "the rule is still there and enabled");
}

#[tokio::test]
async fn dead_letters_are_found_filtered_read_redriven_and_discarded_from_the_ui() {
    let app = TestApp::delivering(&[]).await;
    let flaky = Sink::start().await;
    flaky.otherwise(Reply::Status(503));
    let strict = Sink::start().await;
    strict.otherwise(Reply::Status(422));
    app.put_rule("default", "flaky", json!({"event_pattern": {"detail-type": ["flaky"]}, "targets": [{"id": "billing", "url": flaky.url, "retry_policy": {"maximum_retry_attempts": 1}}]})).await;
    app.put_rule("default", "strict", json!({"event_pattern": {"detail-type": ["strict"]}, "targets": [{"id": "audit", "url": strict.url}]})).await;
    for kind in ["flaky", "strict", "flaky"] {
        app.post_events("default", json!({"source": "shop", "detail-type": kind, "detail": {"order": format!("o-{kind}")}})).await;
    }
    wait_for("three dead letters", LONG, || async {
        (dead_count(&app).await == 3).then_some(())
    })
    .await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    assert_eq!(
        browser.path().await,
        "/ui",
        "the overview is the landing page"
    );
    // Dead letters are one click away.
    browser
        .click_to_page("nav a[href='/ui/dead-letters']")
        .await;
    assert_eq!(browser.path().await, "/ui/dead-letters");
    assert_eq!(rows(&browser).await, 3);
    assert_eq!(browser.text("#count-dead").await, "3");
    let table = browser.text("#dead-letters").await;
    assert!(
        table.contains("retries_exhausted") && table.contains("final_status"),
        "{table}"
    );
    assert!(
        table.contains("HTTP 503") && table.contains("HTTP 422"),
        "{table}"
    );
    let shot = browser.screenshot("dead-letters.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Filter by reason: kept in the URL.
    browser.goto(&format!("{}/ui/dead-letters", app.base)).await;
    browser
        .client
        .find(fantoccini::Locator::Css("#filter-reason"))
        .await
        .unwrap()
        .select_by_value("final_status")
        .await
        .unwrap();
    browser.click_to_page("#apply-filter").await;
    assert_eq!(rows(&browser).await, 1);
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.query()
            .unwrap_or("")
            .contains("dead_reason=final_status"),
        "{url}"
    );

    // The detail page shows every attempt.
    browser
        .goto(&format!("{}/ui/dead-letters?rule=flaky", app.base))
        .await;
    assert_eq!(rows(&browser).await, 2);
    browser
        .click_to_page("#dead-letters tbody tr:last-child a.open")
        .await;
    assert!(browser.path().await.starts_with("/ui/dead-letters/"));
    assert_eq!(browser.text("#reason").await, "retries_exhausted");
    let attempts = browser
        .client
        .find_all(fantoccini::Locator::Css("#attempts tbody tr"))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2, "the first try and one retry");
    assert!(browser.text("#attempts").await.contains("sink says 503"));
    assert!(
        browser
            .text("#event-json")
            .await
            .contains("\"order\": \"o-flaky\"")
    );
    browser.screenshot("dead-letter.png").await;

    // The endpoint recovers; redrive from the page delivers and the row leaves the list.
    flaky.otherwise(Reply::Status(200));
    let asked = click_and_confirm(&browser, "#redrive").await;
    assert_eq!(asked, "Redrive this dead letter?");
    assert_eq!(browser.text("#notice").await, "Redrove 1 dead letter(s).");
    wait_for("the redriven delivery to be delivered", LONG, || async {
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (delivered == 1).then_some(())
    })
    .await;
    browser.goto(&format!("{}/ui/dead-letters", app.base)).await;
    assert_eq!(rows(&browser).await, 2);

    // Bulk discard of everything matching a filter, with a confirmation that counts.
    browser
        .goto(&format!("{}/ui/dead-letters?rule=flaky", app.base))
        .await;
    assert_eq!(rows(&browser).await, 1);
    browser.click("#scope-filter").await;
    let asked = click_and_confirm(&browser, "#bulk-discard").await;
    assert_eq!(asked, "Discard 1 dead letter?");
    assert_eq!(browser.text("#notice").await, "Discarded 1 dead letter(s).");
    assert!(browser.exists("#empty").await);
    browser.goto(&format!("{}/ui/dead-letters", app.base)).await;
    assert_eq!(rows(&browser).await, 1, "only the strict one is left");
    browser.close().await;
}

#[tokio::test]
async fn a_target_disabled_by_410_is_shown_and_enabled_from_its_rule_page() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.then([Reply::Status(410)]);
    app.put_rule("default", "gone", json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url}]})).await;
    app.post_events(
        "default",
        json!({"source": "shop", "detail-type": "t", "detail": {}}),
    )
    .await;
    wait_for("the dead letter", LONG, || async {
        (dead_count(&app).await == 1).then_some(())
    })
    .await;
    app.post_events(
        "default",
        json!({"source": "shop", "detail-type": "t", "detail": {}}),
    )
    .await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/rules", app.base)).await;
    assert!(browser.text("#rules").await.contains("hook · disabled"));
    browser
        .goto(&format!("{}/ui/rules/default/gone", app.base))
        .await;
    let targets = browser.text("#targets").await;
    assert!(
        targets.contains("disabled")
            && targets.contains("410 Gone")
            && targets.contains("1 dead in 24 h"),
        "{targets}"
    );
    wait_for("the second delivery to be held", LONG, || async {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'held'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (held == 1).then_some(())
    })
    .await;
    browser.click_to_page("button.enable").await;
    assert_eq!(
        browser.text("#notice").await,
        "Enabled hook; released 1 held deliveries."
    );
    wait_for("the held delivery to arrive", LONG, || async {
        (sink.count() == 2).then_some(())
    })
    .await;
    browser.close().await;
}

#[tokio::test]
async fn a_blocked_group_is_shown_and_released_by_redriving_its_dead_letter() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.when_body_has("\"seq\":1", Reply::Status(400));
    app.put_rule("default", "ordered", json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "hook", "url": sink.url, "retry_policy": {"maximum_retry_attempts": 0}, "ordering": {"group_by": "$.detail.order", "on_dead": "block"}}]})).await;
    let entries: Vec<_> = (0..3)
        .map(|seq| json!({"source": "shop", "detail-type": "t", "detail": {"order": "o-<1>", "seq": seq}}))
        .collect();
    app.post_events("default", json!({ "entries": entries }))
        .await;
    wait_for("the dead letter", LONG, || async {
        (dead_count(&app).await == 1).then_some(())
    })
    .await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/ui/rules/default/ordered", app.base))
        .await;
    let targets = browser.text("#targets").await;
    assert!(
        targets.contains("in order per $.detail.order, on a dead letter: block")
            && targets.contains("1 groups owe, 1 blocked"),
        "{targets}"
    );
    browser.click_to_page("a.groups").await;
    let groups = browser.text("#groups").await;
    assert!(
        groups.contains("o-<1>") && groups.contains("blocked") && groups.contains("HTTP 400"),
        "the key is shown as text: {groups}"
    );
    browser.click_to_page("a.dead-letter").await;
    sink.forget("\"seq\":1");
    click_and_confirm(&browser, "#redrive").await;
    wait_for("the group to finish in order", LONG, || async {
        let seqs: Vec<u64> = sink
            .received()
            .iter()
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["detail"]["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (seqs == [0, 1, 1, 2]).then_some(())
    })
    .await;
    // The sink has the last delivery a moment before its outcome is recorded: the page is
    // read again until the group is gone (or the deadline fails the test).
    let groups = format!("{}/ui/rules/default/ordered/targets/hook/groups", app.base);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        browser.goto(&groups).await;
        if browser.exists("#empty").await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no group owes any more"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn archives_and_replays_are_shown_and_a_replay_is_cancelled_from_the_ui() {
    let app = TestApp::delivering(&[]).await;
    let archive = app
        .put(
            "/v1/buses/default/archives/orders",
            json!({"description": "every <order>", "event_pattern": {"source": ["shop"]}}),
        )
        .await;
    assert!(archive.status.is_success(), "{archive:?}");
    let from = time::OffsetDateTime::now_utc();
    let entries: Vec<_> = (0..50)
        .map(|n| json!({"source": "shop", "detail-type": "t", "detail": {"n": n}}))
        .collect();
    app.post_events("default", json!({ "entries": entries }))
        .await;
    let to = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let started = app
        .post(
            "/v1/replays",
            json!({"name": "slowly", "bus": "default", "archive": "orders", "from": rfc(from), "to": rfc(to), "events_per_second": 2}),
        )
        .await;
    assert!(started.status.is_success(), "{started:?}");

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/archives", app.base)).await;
    let archives = browser.text("#archives").await;
    assert!(
        archives.contains("orders")
            && archives.contains("every <order>")
            && archives.contains("for ever")
            && archives.contains("50"),
        "{archives}"
    );
    wait_for("the replay to be under way", LONG, || async {
        let replay = app.get("/v1/replays/slowly").await.body;
        (replay["done"].as_i64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    browser.goto(&format!("{}/ui/replays", app.base)).await;
    let replays = browser.text("#replays").await;
    assert!(
        replays.contains("slowly") && replays.contains("running") && replays.contains("of 50"),
        "{replays}"
    );
    click_and_confirm(&browser, "button.cancel").await;
    assert!(
        browser
            .text("#notice")
            .await
            .starts_with("Cancelled slowly after"),
        "the notice says what was done"
    );
    assert!(browser.text("#replays").await.contains("cancelled"));
    assert!(
        !browser.exists("button.cancel").await,
        "nothing left to cancel"
    );
    assert_eq!(
        app.get("/v1/replays/slowly").await.body["state"],
        "cancelled"
    );
    browser.close().await;
}

#[tokio::test]
async fn the_pattern_tester_shows_match_no_match_and_where_a_pattern_is_wrong() {
    let app = TestApp::spawn().await;
    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/ui/pattern-tester", app.base))
        .await;
    browser.click_to_page("#test").await;
    assert_eq!(
        browser.text("#result").await,
        "The pattern matches the event."
    );

    browser
        .fill("#event", r#"{"source": "shop", "detail": {"total": 50}}"#)
        .await;
    browser.click_to_page("#test").await;
    assert_eq!(
        browser.text("#result").await,
        "The pattern does not match the event."
    );

    browser
        .fill(
            "#pattern",
            r#"{"detail": {"total": [{"numeric": [">", "lots"]}]}}"#,
        )
        .await;
    browser.click_to_page("#test").await;
    let result = browser.text("#result").await;
    assert!(
        result.starts_with("Event pattern is not valid. Reason: Value of > must be numeric"),
        "{result}"
    );
    assert_eq!(browser.text("#pointer").await, "/detail/total/0/numeric/1");
    // What was typed stays in the form.
    let kept = browser
        .client
        .find(fantoccini::Locator::Css("#pattern"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some(r#"{"detail": {"total": [{"numeric": [">", "lots"]}]}}"#)
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rules")
            .fetch_one(&app.pool)
            .await
            .unwrap(),
        0,
        "nothing was saved"
    );
    browser.close().await;
}

#[tokio::test]
async fn markup_in_events_and_responses_is_shown_as_text_and_never_runs() {
    let app = TestApp::delivering(&[]).await;
    let sink = Sink::start().await;
    sink.otherwise(Reply::Status(400));
    app.put_rule("default", "xss", json!({"event_pattern": {"detail-type": ["t"]}, "targets": [{"id": "hook", "url": sink.url}]})).await;
    let script = "<script>window.__xss = 1</script>";
    let image = "<img src=x onerror=\"window.__xss = 2\">";
    let answer = app
        .post_events("default", json!({"source": "<b>shop</b>", "detail-type": "t", "detail": {"note": script, "pic": image}}))
        .await;
    let event = answer["entries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for("the dead letter", LONG, || async {
        (dead_count(&app).await == 1).then_some(())
    })
    .await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM deliveries")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    for page in [
        format!("/ui/dead-letters/{id}"),
        format!("/ui/events?id={event}"),
    ] {
        browser.goto(&format!("{}{page}", app.base)).await;
        let ran = browser
            .client
            .execute(
                "return window.__xss === undefined ? 0 : window.__xss;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(ran, json!(0), "{page}: injected markup ran");
        let shown = browser.text("#event-json").await;
        assert!(
            shown.contains(r#"<script>window.__xss = 1</script>"#),
            "{page}: {shown}"
        );
        assert!(shown.contains(r#"<b>shop</b>"#), "{page}: {shown}");
        assert!(
            !browser.exists("#event-json script").await
                && !browser.exists("#event-json img").await
                && !browser.exists("#event-json b").await
        );
    }
    browser.close().await;
}

#[tokio::test]
async fn tokens_are_made_and_revoked_in_the_ui_and_the_audit_log_says_who() {
    let app = TestApp::spawn().await;
    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/tokens", app.base)).await;
    browser.fill("#token-name", "deploy bot").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#token-scope"))
        .await
        .expect("the scope menu")
        .select_by_value("publish")
        .await
        .expect("choose publish");
    browser.fill("#token-buses", "default").await;
    browser.click_to_page("#create").await;
    let secret = browser.text("#secret").await;
    assert!(secret.starts_with("sy_") && secret.len() == 67, "{secret}");
    assert!(browser.text("#tokens").await.contains("deploy bot"));
    browser.screenshot("tokens.png").await;

    // The token works as made: publish, on the default bus only.
    let post = |token: String| {
        let url = format!("{}/v1/buses/default/events", app.base);
        let client = app.client.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"source": "ci", "detail-type": "deployed", "detail": {}}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post(secret.clone()).await, 200);
    let read = app
        .client
        .get(format!("{}/v1/buses", app.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 403);

    let question = click_and_confirm(&browser, "#tokens form.inline button.revoke").await;
    assert!(question.contains("deploy bot"), "{question}");
    assert!(browser.text("#notice").await.contains("Revoked"));
    assert!(browser.text("#tokens").await.contains("revoked"));
    assert_eq!(post(secret).await, 401);

    browser.click_to_page("a[href='/ui/audit']").await;
    let log = browser.text("#audit").await;
    for action in ["token.revoke", "token.create", "session.sign-in"] {
        assert!(log.contains(action), "{action} in {log}");
    }
    assert!(log.contains("SWITCHYARD_ADMIN_TOKEN"), "{log}");
    browser
        .client
        .find(fantoccini::Locator::Css("#filter-action"))
        .await
        .expect("the action menu")
        .select_by_value("token.create")
        .await
        .expect("choose token.create");
    browser.click_to_page("#apply-filter").await;
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("#audit tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(browser.text("#audit").await.contains("deploy bot"));
    browser.screenshot("audit.png").await;
    browser.close().await;
}

#[tokio::test]
async fn events_are_searched_and_a_trace_is_followed_from_the_ui() {
    let app = TestApp::spawn().await;
    app.put_rule(
        "default",
        "paid",
        json!({"event_pattern": {"detail-type": ["paid"]}}),
    )
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let answer = app
        .client
        .post(format!("{}/v1/buses/default/events", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&json!({"entries": [
            {"source": "billing", "detail-type": "paid", "detail": {}},
            {"source": "billing", "detail-type": "refunded", "detail": {}},
        ]}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    for n in 0..3 {
        app.post_events(
            "default",
            json!({"source": "shop", "detail-type": "placed", "detail": {"n": n}}),
        )
        .await;
    }

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    browser.goto(&format!("{}/ui/events", app.base)).await;
    let count = |browser: &Browser| {
        let client = browser.client.clone();
        async move {
            client
                .find_all(fantoccini::Locator::Css("#events tbody tr"))
                .await
                .map(|rows| rows.len())
                .unwrap_or(0)
        }
    };
    assert_eq!(count(&browser).await, 5, "every event, newest first");
    browser.fill("#search-source", "billing").await;
    browser.click_to_page("#apply-search").await;
    assert_eq!(count(&browser).await, 2);
    let table = browser.text("#events").await;
    assert!(
        table.contains("refunded") && table.contains("paid"),
        "{table}"
    );
    assert!(!table.contains("shop"), "{table}");

    // Only what matched a rule.
    browser
        .goto(&format!(
            "{}/ui/events?source=billing&matched=yes",
            app.base
        ))
        .await;
    assert_eq!(count(&browser).await, 1);
    assert!(browser.text("#events").await.contains("paid"));

    // A trace id links to every event of the trace; a row opens the event's trace.
    browser
        .goto(&format!("{}/ui/events?detail_type=refunded", app.base))
        .await;
    browser.click_to_page("#events a.trace").await;
    assert_eq!(
        count(&browser).await,
        2,
        "the two events of the producer's trace"
    );
    browser.click_to_page("#events tbody tr a.open").await;
    assert_eq!(browser.text("#trace-id").await, trace_id);
    assert!(browser.exists("#event-json").await);

    // A filter that is wrong says which and why.
    browser.goto(&format!("{}/ui/events", app.base)).await;
    browser.fill("#search-trace", "not-a-trace").await;
    browser.click_to_page("#apply-search").await;
    let problem = browser.text("#search-problem").await;
    assert!(problem.starts_with("trace-id:"), "{problem}");
    browser.close().await;
}

#[tokio::test]
async fn the_overview_charts_what_happened_and_refreshes_in_place() {
    let app = TestApp::delivering(&["--stats-interval-ms", "100"]).await;
    let ok = Sink::start().await;
    ok.otherwise(Reply::Status(200));
    let refusing = Sink::start().await;
    refusing.otherwise(Reply::Status(400));
    app.put_rule(
        "default",
        "orders",
        json!({"event_pattern": {"source": ["shop"]}, "targets": [
            {"id": "ok", "url": ok.url},
            {"id": "refusing", "url": refusing.url}
        ]}),
    )
    .await;
    let entries: Vec<_> = (0..4)
        .map(|n| json!({"source": "shop", "detail-type": "placed", "detail": {"n": n}}))
        .collect();
    app.post_events("default", json!({ "entries": entries }))
        .await;
    wait_for("the counts to be written", LONG, || async {
        let dead: Option<i64> = sqlx::query_scalar("SELECT sum(dead)::int8 FROM stats_minutes")
            .fetch_one(&app.pool)
            .await
            .ok()
            .flatten();
        (dead == Some(4)).then_some(())
    })
    .await;

    let browser = Browser::open().await;
    browser.log_in(&app.base, ADMIN_TOKEN).await;
    assert_eq!(browser.path().await, "/ui");
    assert_eq!(browser.text("#total-events").await, "4");
    assert_eq!(browser.text("#total-delivered").await, "4");
    assert_eq!(browser.text("#total-dead").await, "4");
    assert_ne!(browser.text("#total-p50").await, "—", "latency is charted");
    let bars = browser
        .client
        .find_all(fantoccini::Locator::Css("#chart-outcomes rect.dead"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the dead letters are drawn");
    assert!(browser.exists("#chart-latency polyline.p99").await);
    let failing = browser.text("#failing").await;
    assert!(
        failing.contains("refusing") && !failing.contains("\nok"),
        "{failing}"
    );
    // The day's view reads the same minutes.
    browser.goto(&format!("{}/ui?range=24h", app.base)).await;
    assert_eq!(browser.text("#total-events").await, "4");

    // More events show up without reloading the page.
    browser.mark_page().await;
    let more: Vec<_> = (0..3)
        .map(|n| json!({"source": "shop", "detail-type": "placed", "detail": {"n": n}}))
        .collect();
    app.post_events("default", json!({ "entries": more })).await;
    let deadline = std::time::Instant::now() + LONG;
    loop {
        if browser.text("#total-events").await == "7" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the charts did not refresh"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let same_page: bool = browser
        .client
        .execute("return window.__switchyard_old_page === true;", vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(same_page, "refreshed in place, not reloaded");
    browser.close().await;
}
