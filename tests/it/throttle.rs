//! Failed authentications are throttled per client address (issue 16, item 5): past the limit in
//! a minute, that address is answered 429 with `Retry-After` — even with a good token, so guessing
//! stops — while other addresses go on; both counts are in /metrics. A request without
//! credentials is not a failed guess.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::StatusCode;

use crate::support::{ADMIN_TOKEN, TestApp};

fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(address))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

async fn status(client: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("answered")
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn wrong_tokens_from_one_address_are_throttled_and_others_go_on() {
    let app = TestApp::spawn_with(&["--auth-failures-per-minute", "3"]).await;
    let url = format!("{}/v1/buses", app.base);
    let guesser = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 2));

    // No credentials at all: refused, but not counted as guesses.
    for _ in 0..5 {
        assert_eq!(
            status(&guesser, &url, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for i in 0..3 {
        let got = status(&guesser, &url, Some(&format!("sy_guess{i}"))).await;
        assert_eq!(got.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // The fourth try is throttled, the right token included.
    let throttled = status(&guesser, &url, Some(ADMIN_TOKEN)).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: serde_json::Value = throttled.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "urn:switchyard:problem:too-many-failed-authentications"
    );
    // The UI's sign-in from that address is throttled too.
    let login = guesser
        .post(format!("{}/ui/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}&next=%2Fui"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(login.headers().contains_key("retry-after"));

    // Another address is not affected.
    let ok = status(&neighbour, &url, Some(ADMIN_TOKEN)).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let metrics = status(&neighbour, &format!("{}/metrics", app.base), None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&metrics, "switchyard_auth_failures_total"), 3);
    assert_eq!(metric(&metrics, "switchyard_auth_throttled_total"), 2);
}

#[tokio::test]
async fn failed_sign_ins_count_like_wrong_tokens() {
    let app = TestApp::spawn_with(&["--auth-failures-per-minute", "2"]).await;
    let client = client_from(Ipv4Addr::new(127, 0, 0, 3));
    for _ in 0..2 {
        let login = client
            .post(format!("{}/ui/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=sy_wrong&next=%2Fui")
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    }
    let api = status(
        &client,
        &format!("{}/v1/buses", app.base),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
}
