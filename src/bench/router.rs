//! The router under test: this same binary's `serve` as a child process (on its own Postgres or
//! `DATABASE_URL`), or one already running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{BenchArgs, BenchError};

/// The router under test: a child process of ours, or one already running.
pub(super) struct RouterProcess {
    pub(super) base: String,
    pub(super) token: String,
    child: Option<Child>,
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// Starts `--routers` processes of this binary's `serve` (one after the other, so that one
/// migrates the database before the next starts), with one admin token, exporting their spans
/// to `otlp` when given; or takes the running router of `--router`.
pub(super) fn start_all(
    args: &BenchArgs,
    otlp: Option<&str>,
) -> Result<Vec<RouterProcess>, BenchError> {
    if let (Some(base), Some(token)) = (&args.router, &args.token) {
        return Ok(vec![RouterProcess {
            base: base.trim_end_matches('/').to_owned(),
            token: token.clone(),
            child: None,
        }]);
    }
    let token = crate::auth::generate_token();
    (0..args.routers)
        .map(|_| start(args, otlp, &token))
        .collect()
}

/// Starts one `serve`; returns when it listens.
fn start(args: &BenchArgs, otlp: Option<&str>, token: &str) -> Result<RouterProcess, BenchError> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log", "warn,switchyard::app=info"])
        .env("SWITCHYARD_ADMIN_TOKEN", token)
        .env("SWITCHYARD_TARGET_ALLOW_CIDRS", "127.0.0.0/8")
        .env("SWITCHYARD_DATA_DIR", &args.database.data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match &args.database.database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command.env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if let Some(endpoint) = otlp {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    if let Some(workers) = args.workers {
        command.env("SWITCHYARD_WORKERS", workers.to_string());
    }
    let mut child = command.spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| BenchError::Setup("no stderr from the router".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["message"] == "listening"
            {
                let _ = tx.send(Ok(log["addr"].as_str().unwrap_or_default().to_owned()));
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        let _ = tx.send(Err(tail.join("\n")));
    });
    let mut router = RouterProcess {
        base: String::new(),
        token: token.to_owned(),
        child: Some(child),
    };
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(addr)) => {
            router.base = format!("http://{addr}");
            Ok(router)
        }
        Ok(Err(tail)) => Err(BenchError::Setup(format!("the router exited:\n{tail}"))),
        Err(_) => Err(BenchError::Setup(
            "the router did not start within 2 minutes".into(),
        )),
    }
}

impl RouterProcess {
    /// CPU time the router this started has used so far.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        super::cpu_seconds(&self.child.as_ref()?.id().to_string())
    }

    /// Peak resident memory of the router this started, from /proc.
    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}
