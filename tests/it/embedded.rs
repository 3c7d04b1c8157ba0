//! The README's run command: `switchyard serve` with no DATABASE_URL starts its own Postgres
//! under the data folder, keeps the data across restarts, and stops that Postgres when it stops.

use std::path::Path;
use std::process::Child;

use serde_json::json;

use crate::support::ADMIN_TOKEN;

/// A data folder of the test's own under the system's temporary folder.
fn data_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "switchyard-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Creates the rule `default/kept`; the status of the answer.
async fn put_kept_rule(client: &reqwest::Client, base: &str) -> reqwest::StatusCode {
    client
        .put(format!("{base}/v1/buses/default/rules/kept"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"event_pattern": {"source": ["shop"]}}))
        .send()
        .await
        .unwrap()
        .status()
}

/// The status of reading the rule `default/kept`.
async fn kept_rule(client: &reqwest::Client, base: &str) -> reqwest::StatusCode {
    client
        .get(format!("{base}/v1/buses/default/rules/kept"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
}

/// Starts the binary on its own Postgres in `data_dir` (and its key file there, as a user's
/// first start makes it); returns it and its base URL.
fn serve(data_dir: &Path) -> (Child, String) {
    crate::support::binary::serve(|command| {
        command
            .env_remove("DATABASE_URL")
            .env_remove("SWITCHYARD_SECRET_KEY")
            .env("SWITCHYARD_DATA_DIR", data_dir);
    })
}

fn terminate(mut child: Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("the router exits");
    assert!(status.success(), "graceful stop exits 0: {status}");
}

#[tokio::test]
async fn serve_runs_its_own_postgres_and_keeps_data_across_restarts() {
    let data_dir = data_dir("serve");
    let client = crate::support::http_client();

    let (child, base) = serve(&data_dir);
    assert!(
        data_dir.join("pg/PG_VERSION").exists(),
        "the cluster lives under the data folder"
    );
    assert_eq!(put_kept_rule(&client, &base).await, 201);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    terminate(child);
    assert!(
        !data_dir.join("pg/postmaster.pid").exists(),
        "stopping the router stops its Postgres"
    );

    let (child, base) = serve(&data_dir);
    assert_eq!(
        kept_rule(&client, &base).await,
        200,
        "the rule survived the restart"
    );
    terminate(child);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn serve_restarts_at_once_after_kill_9() {
    let data_dir = data_dir("restart");
    let client = crate::support::http_client();
    let (mut child, base) = serve(&data_dir);
    assert_eq!(put_kept_rule(&client, &base).await, 201);
    for round in 0..3 {
        // SIGKILL: no shutdown; the local PostgreSQL gets its parent-death signal and begins a
        // shutdown of its own, still holding the data folder when the next router starts.
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let (next, base) = serve(&data_dir);
        child = next;
        assert_eq!(
            kept_rule(&client, &base).await,
            200,
            "round {round}: the rule survived"
        );
    }
    terminate(child);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn admin_commands_use_the_local_postgres_of_a_running_router() {
    let data_dir = data_dir("beside");
    let client = crate::support::http_client();
    let (child, base) = serve(&data_dir);
    // The first start made the key that seals secrets, readable by its owner only; the
    // commands beside the router find it in the same folder.
    let key_file = data_dir.join("secret.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("the key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for round in 0..3 {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["token", "create", "--name", &format!("beside-{round}")])
            .args(if round == 2 { &["--aws"][..] } else { &[] })
            .env_remove("DATABASE_URL")
            .env("SWITCHYARD_DATA_DIR", &data_dir)
            .env("SWITCHYARD_LOG", "warn")
            .output()
            .expect("run token create");
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "round {round} took {:?}",
            started.elapsed()
        );
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if round == 2 {
            assert!(printed.starts_with("AWS_ACCESS_KEY_ID=AKSY"), "{printed}");
            continue;
        }
        let token = printed;
        let buses = client
            .get(format!("{base}/v1/buses"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            buses.status(),
            200,
            "the new token works on the running router"
        );
    }
    // The command left the router's PostgreSQL running.
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // A second router on the same folder is refused at once, saying why.
    let started = std::time::Instant::now();
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("SWITCHYARD_DATA_DIR", &data_dir)
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run a second serve");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already runs"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Rotating the key replaces the key file: the next start opens the secrets with it.
    let before = std::fs::read_to_string(&key_file).unwrap();
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["secrets", "rotate"])
        .env_remove("DATABASE_URL")
        .env("SWITCHYARD_DATA_DIR", &data_dir)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run secrets rotate");
    assert!(rotated.status.success(), "{rotated:?}");
    assert!(
        String::from_utf8_lossy(&rotated.stderr).contains("1 secret(s)"),
        "{rotated:?}"
    );
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), before);
    terminate(child);
    let (child, _) = serve(&data_dir);
    terminate(child);
    let _ = std::fs::remove_dir_all(&data_dir);
}
