//! What a browser and a client are told about the admin UI and the API: security headers on
//! every UI answer, a `Secure` session cookie behind TLS, and the bearer scheme read without
//! regard to case (RFC 9110: schemes are case-insensitive).

use reqwest::StatusCode;

use crate::support::{ADMIN_TOKEN, TestApp};

#[tokio::test]
async fn every_ui_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let (client, cookie, set_cookie) = app.ui_session().await;
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    for path in [
        "/ui/login",
        "/ui",
        "/ui/rules",
        "/ui/pattern-tester",
        "/ui/events",
        "/ui/assets/app.css",
        "/ui/dead-letters/not-an-id",
    ] {
        let got = client
            .get(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            got.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
    }
}

#[tokio::test]
async fn behind_tls_the_session_cookie_is_secure() {
    let app = TestApp::spawn_with(&["--behind-tls"]).await;
    let (_, _, set_cookie) = app.ui_session().await;
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let app = TestApp::spawn().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let got = app
            .client
            .get(format!("{}/v1/buses", app.base))
            .header("authorization", format!("{scheme} {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK, "{scheme}");
    }
    let basic = app
        .client
        .get(format!("{}/v1/buses", app.base))
        .header("authorization", format!("Basic {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}
