//! `switchyard rules apply` (the real binary) makes the database match a folder of rule files.

use std::path::Path;
use std::process::Command;

use crate::support::postgres;

fn apply(db_url: &str, dir: &Path, flags: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["rules", "apply"])
        .arg(dir)
        .args(flags)
        .env("DATABASE_URL", db_url)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-rules-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_example_rules_in_the_repository_are_valid() {
    let rules = switchyard::rules_files::load_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules")
            .as_path(),
    )
    .expect("rules/ is valid");
    assert!(rules.len() >= 3, "{} example rules", rules.len());
}

#[tokio::test]
async fn apply_creates_updates_and_with_prune_deletes() {
    let db = postgres::fresh_database().await;
    let pool = switchyard::store::connect(db.options.clone(), 2)
        .await
        .unwrap();
    let dir = temp_dir("apply");
    std::fs::write(
        dir.join("a.yaml"),
        "- name: one\n  event_pattern: {source: [a]}\n- name: two\n  bus: other\n  event_pattern: {source: [b]}\n  targets: [{id: t, url: 'http://x/y'}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"name": "three", "event_pattern": {"detail": {"n": [{"numeric": ["<", 1.50]}]}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rule").unwrap();

    let (ok, out, err) = apply(&db.url, &dir, &["--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("would create bus other"), "{out}");
    assert!(out.contains("would create rule default/one"), "{out}");
    assert!(out.contains("would create rule other/two"), "{out}");
    assert!(out.contains("would create rule default/three"), "{out}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "a dry run changes nothing");

    let (ok, out, err) = apply(&db.url, &dir, &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("4 change(s) applied, 0 rule(s) unchanged"),
        "{out}"
    );
    let pattern: String =
        sqlx::query_scalar("SELECT event_pattern FROM rules WHERE name = 'three'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pattern, r#"{"detail":{"n":[{"numeric":["<",1.50]}]}}"#);

    let (ok, out, _) = apply(&db.url, &dir, &[]);
    assert!(ok);
    assert!(
        out.contains("0 change(s) applied, 3 rule(s) unchanged"),
        "applying twice changes nothing: {out}"
    );

    std::fs::write(
        dir.join("b.json"),
        r#"{"name": "three", "event_pattern": {"source": ["c"]}}"#,
    )
    .unwrap();
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    let (ok, out, _) = apply(&db.url, &dir, &[]);
    assert!(ok);
    assert!(out.contains("update rule default/three"), "{out}");
    assert!(
        !out.contains("delete"),
        "without --prune nothing is deleted: {out}"
    );
    let (ok, out, _) = apply(&db.url, &dir, &["--prune"]);
    assert!(ok);
    assert!(out.contains("delete rule default/one"), "{out}");
    assert!(out.contains("delete rule other/two"), "{out}");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM rules ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["three"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn invalid_files_are_reported_with_file_and_field_and_nothing_changes() {
    let db = postgres::fresh_database().await;
    let dir = temp_dir("invalid");
    std::fs::write(
        dir.join("a.yaml"),
        "- name: ok\n  event_pattern: {source: [a]}\n- name: bad\n  event_pattern: {source: a}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"event_pattern": {"source": ["a"]}, "targets": [{"id": "t"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("c.json"),
        r#"{"name": "ok", "event_pattern": {"source": ["a"]}}"#,
    )
    .unwrap();
    let (ok, out, err) = apply(&db.url, &dir, &[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("a.yaml #1: /event_pattern/source: Event pattern is not valid."),
        "{err}"
    );
    assert!(err.contains("b.json: /name: is required"), "{err}");
    assert!(err.contains("b.json: /targets/0/url: is required"), "{err}");
    assert!(err.contains("rule default/ok is also defined in"), "{err}");
    let pool = switchyard::store::connect(db.options.clone(), 2)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn token_create_makes_a_token_the_api_accepts() {
    let db = postgres::fresh_database().await;
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["token", "create", "--name", "ci"])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("sy_") && token.len() == 67, "{token}");
    let pool = switchyard::store::connect(db.options.clone(), 2)
        .await
        .unwrap();
    let auth = switchyard::auth::Auth::new(pool, None);
    assert!(auth.authenticate(&token).await.unwrap().is_some());
    assert!(auth.authenticate("sy_0000").await.unwrap().is_none());
}

/// Rules as code use API destinations like the API does: the destination's endpoint filled in,
/// a file naming one that is not there refused with its place, and an unchanged file unchanged.
#[tokio::test]
async fn rule_files_send_to_api_destinations() {
    let app = crate::support::TestApp::spawn().await;
    app.put(
        "/v1/connections/crm",
        serde_json::json!({"authorization_type": "api_key", "api_key": {"name": "x-k", "value": "v"}}),
    )
    .await;
    app.put(
        "/v1/api-destinations/crm",
        serde_json::json!({"connection": "crm", "endpoint": "https://crm.example.com/*/events", "method": "POST"}),
    )
    .await;
    let dir = temp_dir("destinations");
    std::fs::write(
        dir.join("crm.yaml"),
        "- name: to-crm\n  event_pattern: {source: [shop]}\n  targets: [{id: crm, api_destination: {name: crm, path_parameters: [eu]}}]\n",
    )
    .unwrap();
    let (ok, out, err) = apply(&app.db.url, &dir, &[]);
    assert!(ok, "{out}{err}");
    let rule = app.get("/v1/buses/default/rules/to-crm").await.body;
    assert_eq!(
        rule["targets"][0]["url"],
        "https://crm.example.com/eu/events"
    );
    assert_eq!(rule["targets"][0]["connection"], "crm");
    let (ok, out, _) = apply(&app.db.url, &dir, &[]);
    assert!(ok && out.contains("0 change(s)"), "{out}");
    std::fs::write(
        dir.join("crm.yaml"),
        "- name: to-crm\n  event_pattern: {source: [shop]}\n  targets: [{id: crm, api_destination: {name: gone}}]\n",
    )
    .unwrap();
    let (ok, _, err) = apply(&app.db.url, &dir, &[]);
    assert!(!ok);
    assert!(
        err.contains("crm.yaml") && err.contains("/targets/0/api_destination/name"),
        "{err}"
    );
}
