//! Dead letters over the API: list with filters and pages, detail, redrive, discard.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::sink::{Reply, Sink};
use crate::support::{TestApp, wait_for};

const LONG: Duration = Duration::from_secs(15);

/// An app with three dead letters: two `retries_exhausted` (rule `flaky`), one `final_status`
/// (rule `strict`). Both sinks recover afterwards.
async fn three_dead_letters() -> (TestApp, Sink, Sink, Vec<String>) {
    let app = TestApp::delivering(&[]).await;
    let flaky = Sink::start().await;
    flaky.otherwise(Reply::Status(500));
    let strict = Sink::start().await;
    strict.otherwise(Reply::Status(422));
    app.put_rule("default", "flaky", json!({"event_pattern": {"detail-type": ["flaky"]}, "targets": [{"id": "f", "url": flaky.url, "retry_policy": {"maximum_retry_attempts": 0}}]})).await;
    app.put_rule("default", "strict", json!({"event_pattern": {"detail-type": ["strict"]}, "targets": [{"id": "s", "url": strict.url}]})).await;
    let mut events = Vec::new();
    for kind in ["flaky", "strict", "flaky"] {
        let answer = app
            .post_events(
                "default",
                json!({"source": "shop", "detail-type": kind, "detail": {"kind": kind}}),
            )
            .await;
        events.push(
            answer["entries"][0]["event_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        // Distinct death times, so "newest first" is observable.
        wait_for("the delivery to die", LONG, || async {
            let dead: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'dead'")
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            (dead as usize == events.len()).then_some(())
        })
        .await;
    }
    flaky.otherwise(Reply::Status(200));
    strict.otherwise(Reply::Status(200));
    (app, flaky, strict, events)
}

/// The dead letters as the triggers count them (the header's and the gauge's figure) and as
/// counted row by row: they must agree after every transition.
async fn assert_dead_counted(app: &TestApp, expected: i64) {
    let (kept, rows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(n)::int8 FROM dead_letter_counts),
                (SELECT count(*) FROM deliveries WHERE state = 'dead')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((kept, rows), (expected, expected), "kept count, rows");
    // Per reason too: the unfiltered list's counts (kept) against the rows grouped.
    let grouped: Vec<(String, i64)> = sqlx::query_as(
        "SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead'
         GROUP BY dead_reason ORDER BY dead_reason",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let kept: Vec<(String, i64)> = sqlx::query_as(
        "SELECT COALESCE(r.reason, '(other)'), sum(c.by_reason[r.i])::int8
         FROM dead_letter_counts c,
              unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i)
         GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(kept, grouped, "kept per reason, rows per reason");
    let listed = app.get("/v1/dead-letters?limit=1").await.body;
    let counts: Vec<(String, i64)> = listed["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(reason, n)| (reason.clone(), n.as_i64().unwrap()))
        .collect();
    assert_eq!(counts, grouped, "counts per reason, kept and counted");
}

fn event_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_newest_first_filtered_and_paged() {
    let (app, _, _, events) = three_dead_letters().await;
    let all = app.get("/v1/dead-letters").await;
    assert_eq!(all.status, StatusCode::OK, "{all:?}");
    assert_eq!(
        event_ids(&all.body),
        [events[2].as_str(), &events[1], &events[0]]
    );
    assert_eq!(
        all.body["counts"],
        json!({"final_status": 1, "retries_exhausted": 2})
    );
    assert_eq!(all.body["next_cursor"], Value::Null);
    let first = &all.body["items"][0];
    assert_eq!(first["rule"], "flaky");
    assert_eq!(first["target_id"], "f");
    assert_eq!(first["dead_reason"], "retries_exhausted");
    assert_eq!(first["last_status"], 500);
    assert_eq!(first["attempts"], 1);

    let strict = app.get("/v1/dead-letters?dead_reason=final_status").await;
    assert_eq!(event_ids(&strict.body), [events[1].as_str()]);
    let by_rule = app
        .get("/v1/dead-letters?rule=flaky&target_id=f&bus=default")
        .await;
    assert_eq!(event_ids(&by_rule.body), [events[2].as_str(), &events[0]]);
    let none = app.get("/v1/dead-letters?bus=other").await;
    assert_eq!(none.body["items"], json!([]));
    let future = app.get("/v1/dead-letters?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future.body["items"], json!([]));
    let past = app.get("/v1/dead-letters?until=2000-01-01T00:00:00Z").await;
    assert_eq!(past.body["items"], json!([]));

    let mut seen = Vec::new();
    let mut path = "/v1/dead-letters?limit=1".to_owned();
    loop {
        let page = app.get(&path).await;
        seen.extend(event_ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/dead-letters?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [events[2].clone(), events[1].clone(), events[0].clone()]
    );

    for bad in [
        "dead_reason=sad",
        "reason=final_status",
        "target=f",
        "since=yesterday",
        "limit=0",
        "cursor=nope",
        "colour=red",
    ] {
        let answer = app.get(&format!("/v1/dead-letters?{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}: {answer:?}");
        assert_eq!(answer.content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn a_dead_letter_shows_its_event_payload_and_every_attempt_and_redrive_delivers_it() {
    let (app, flaky, _, events) = three_dead_letters().await;
    let list = app.get("/v1/dead-letters?rule=flaky").await;
    let id = list.body["items"][0]["id"].as_str().unwrap().to_owned();
    let detail = app.get(&format!("/v1/dead-letters/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["event"]["id"], events[2].as_str());
    assert_eq!(detail.body["event"]["detail"], json!({"kind": "flaky"}));
    assert_eq!(
        serde_json::from_str::<Value>(detail.body["payload"].as_str().unwrap()).unwrap()["id"],
        events[2].as_str()
    );
    assert_eq!(detail.body["dead_reason"], "retries_exhausted");
    let log = detail.body["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[0]["response_body"], "sink says 500");

    let sent_before = flaky.count();
    let redriven = app
        .post(&format!("/v1/dead-letters/{id}/redrive"), json!({}))
        .await;
    assert_eq!(redriven.body, json!({"redriven": 1}));
    let trace = wait_for("the redriven delivery to arrive", LONG, || async {
        let trace = app.get(&format!("/v1/events/{}", events[2])).await;
        (trace.body["deliveries"][0]["state"] == "delivered").then_some(trace)
    })
    .await;
    assert_eq!(flaky.count(), sent_before + 1);
    let log = trace.body["deliveries"][0]["attempt_log"]
        .as_array()
        .unwrap();
    let statuses: Vec<&Value> = log.iter().map(|a| &a["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(500), &json!(200)],
        "history is kept across the redrive"
    );
    let numbers: Vec<&Value> = log.iter().map(|a| &a["attempt"]).collect();
    assert_eq!(
        numbers,
        [&json!(1), &json!(2)],
        "the try after the redrive is numbered after the ones before it"
    );
    assert_eq!(
        app.get(&format!("/v1/dead-letters/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("/v1/dead-letters/{id}/redrive"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bulk_redrive_by_filter_or_ids_and_discard() {
    let (app, flaky, strict, events) = three_dead_letters().await;
    assert_dead_counted(&app, 3).await;
    let redriven = app
        .post(
            "/v1/dead-letters/redrive",
            json!({"filter": {"rule": "flaky"}}),
        )
        .await;
    assert_eq!(redriven.body, json!({"redriven": 2}), "{redriven:?}");
    wait_for("both flaky deliveries", LONG, || async {
        (flaky.count() >= 4).then_some(())
    })
    .await;
    wait_for("the flaky dead letters to be gone", LONG, || async {
        let page = app.get("/v1/dead-letters").await;
        (event_ids(&page.body) == [events[1].clone()]).then_some(())
    })
    .await;
    assert_dead_counted(&app, 1).await;

    let id = app.get("/v1/dead-letters").await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let discarded = app
        .delete(&format!(
            "/v1/dead-letters/{id}?reason=customer%20cancelled"
        ))
        .await;
    assert_eq!(discarded.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/dead-letters").await.body["items"], json!([]));
    assert_dead_counted(&app, 0).await;
    let (state, reason, dead_reason): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT state, discard_reason, dead_reason FROM deliveries WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(state, "discarded", "kept, not erased");
    assert_eq!(reason.as_deref(), Some("customer cancelled"));
    assert_eq!(
        dead_reason.as_deref(),
        Some("final_status"),
        "why it died is kept"
    );
    assert_eq!(strict.count(), 1);
    assert_eq!(
        app.delete(&format!("/v1/dead-letters/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    let bad = app
        .post("/v1/dead-letters/redrive", json!({"ids": [], "filter": {}}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = app
        .post(
            "/v1/dead-letters/redrive",
            json!({"filter": {"dead_reason": "sad"}}),
        )
        .await;
    assert_eq!(bad.body["errors"][0]["pointer"], "/filter/dead_reason");
}

#[tokio::test]
async fn bulk_discard_by_filter() {
    let (app, _, _, _) = three_dead_letters().await;
    let answer = app
        .post(
            "/v1/dead-letters/discard",
            json!({"filter": {"dead_reason": "retries_exhausted"}, "reason": "noise"}),
        )
        .await;
    assert_eq!(answer.body, json!({"discarded": 2}), "{answer:?}");
    assert_dead_counted(&app, 1).await;
    let left = app.get("/v1/dead-letters").await;
    assert_eq!(left.body["counts"], json!({"final_status": 1}));
    let by_ids = app
        .post(
            "/v1/dead-letters/discard",
            json!({"ids": [left.body["items"][0]["id"]]}),
        )
        .await;
    assert_eq!(by_ids.body, json!({"discarded": 1}));
    assert_dead_counted(&app, 0).await;
}

/// A dead letter of a reason Switchyard does not know (a row written by hand) is counted too:
/// the kept counts give way to the rows.
#[tokio::test]
async fn counts_per_reason_include_reasons_written_by_hand() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                 attempts, next_attempt_at, dead_at, dead_reason, created_at,
                                 finalized_at, budget_started_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'default', 'r', 't',
                 '00000000-0000-7000-8000-000000000007', 'dead', 1, now(), now(), 'by-hand',
                 now(), now(), now())",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let listed = app.get("/v1/dead-letters").await.body;
    assert_eq!(listed["counts"], json!({"by-hand": 1}), "{listed}");
    let (total, other): (i64, i64) = sqlx::query_as(
        "SELECT sum(n)::int8, sum(by_reason[cardinality(dead_reasons()) + 1])::int8
         FROM dead_letter_counts",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((total, other), (1, 1), "kept as another reason");
}

/// The rule page's dead letters of the last 24 hours per target, as the page says them.
async fn dead_in_a_day_on_the_rule_page(app: &TestApp, rule: &str) -> Vec<String> {
    let page = app.ui_page(&format!("/ui/rules/default/{rule}")).await;
    page.match_indices(" dead in 24 h")
        .map(|(at, _)| {
            let before = &page[..at];
            before[before.rfind('>').map_or(0, |i| i + 1)..].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_rule_page_counts_each_targets_dead_letters_of_the_day_up_to_a_thousand() {
    let (app, _, _, _) = three_dead_letters().await;
    // `flaky` has two dead letters; `strict` one: each rule's page counts its own.
    assert_eq!(dead_in_a_day_on_the_rule_page(&app, "flaky").await, ["2"]);
    assert_eq!(dead_in_a_day_on_the_rule_page(&app, "strict").await, ["1"]);
    // Copies of a dead letter of `flaky`: three older than a day (not counted), then enough
    // recent ones to pass the count's cap.
    let copy = |n: i64, died: &'static str| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                     attempts, dead_reason, dead_at, finalized_at)
             SELECT gen_random_uuid(), d.event_id, d.bus, d.rule_name, d.target_id, d.target_ref,
                    'dead', 1, d.dead_reason, {died}, {died}
             FROM deliveries d, generate_series(1, {n})
             WHERE d.rule_name = 'flaky' AND d.state = 'dead' LIMIT {n}"
        )))
        .execute(&app.pool)
    };
    copy(3, "now() - interval '25 hours'").await.unwrap();
    assert_eq!(dead_in_a_day_on_the_rule_page(&app, "flaky").await, ["2"]);
    copy(997, "now()").await.unwrap();
    assert_eq!(dead_in_a_day_on_the_rule_page(&app, "flaky").await, ["999"]);
    copy(1, "now()").await.unwrap();
    assert_eq!(
        dead_in_a_day_on_the_rule_page(&app, "flaky").await,
        ["1000"]
    );
    copy(1, "now()").await.unwrap();
    assert_eq!(
        dead_in_a_day_on_the_rule_page(&app, "flaky").await,
        ["1000+"]
    );
    assert_eq!(dead_in_a_day_on_the_rule_page(&app, "strict").await, ["1"]);
}
