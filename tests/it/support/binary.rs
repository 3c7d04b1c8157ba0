//! The real `switchyard serve` binary as a child process, for tests that kill or restart it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::ADMIN_TOKEN;

/// Starts `switchyard serve` on a free port with the admin token and JSON logs; `configure` adds
/// the database settings. Returns the child and its base URL once it logs that it listens.
pub fn serve(configure: impl FnOnce(&mut Command)) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SWITCHYARD_SECRET_KEY", super::SECRET_KEY)
        .env("SWITCHYARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    configure(&mut command);
    let mut child = command.spawn().expect("start the binary");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["message"] == "listening"
            {
                let _ = tx.send(Ok(log["addr"].as_str().unwrap_or_default().to_owned()));
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(addr)) => (child, format!("http://{addr}")),
        Ok(Err(output)) => panic!("the router exited before listening:\n{output}"),
        Err(_) => panic!("the router did not start listening within a minute"),
    }
}
