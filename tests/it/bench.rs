//! `switchyard bench` runs end to end (briefly: the numbers come from release runs), with its
//! events validated against the schema it registers (`--schema enforce`: none is refused).

use std::process::Command;

use serde_json::Value;

use crate::support::postgres;

/// Runs `switchyard bench --json` with these arguments on a fresh database; its report.
async fn bench(args: &[&str]) -> Value {
    let db = postgres::fresh_database().await;
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .env("DATABASE_URL", &db.url)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn the_benchmark_runs_and_loses_nothing() {
    let mark = std::env::temp_dir().join(format!("switchyard-load-{}", uuid::Uuid::now_v7()));
    let report = bench(&[
        "--load-started-file",
        mark.to_str().unwrap(),
        "--duration",
        "2s",
        "--rules",
        "5",
        "--concurrency",
        "2",
        "--drain",
        "60s",
        "--schema",
        "enforce",
        "--sink-phase",
        "1s",
    ])
    .await;
    for key in [
        "acked_events_per_sec",
        "deliveries_per_sec",
        "ingest_p50_ms",
        "ingest_p99_ms",
        "e2e_p50_ms",
        "e2e_p99_ms",
        "e2e_p999_ms",
        "lost",
        "duplicates",
    ] {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    assert!(report["acked_events"].as_u64().unwrap() > 0, "{report}");
    assert!(
        std::fs::remove_file(&mark).is_ok(),
        "the load's start is marked for tools watching the database"
    );
    assert_eq!(
        report["failed_entries"], 0,
        "the schema accepts every event: {report}"
    );
    assert_eq!(report["delivered"], report["acked_events"], "{report}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicates"], 0);
    assert!(report["router_peak_rss_mib"].as_f64().unwrap() > 1.0);
    // What each event cost the router and the bench itself (from /proc: these run on Linux).
    for key in ["router_cpu_us_per_event", "bench_cpu_us_per_event"] {
        let cpu = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {report}"));
        assert!(cpu > 0.0, "{key}: {report}");
    }
    // The sink alone ran first in the same invocation; the router's figures are ratios to it.
    let sink = report["sink_only_requests_per_sec"].as_f64().unwrap();
    assert!(sink > 0.0, "{report}");
    for (ratio, figure) in [
        ("acked_to_sink", "acked_events_per_sec"),
        ("delivered_to_sink", "deliveries_per_sec"),
    ] {
        let expected = report[figure].as_f64().unwrap() / sink;
        let got = report[ratio].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-9, "{ratio}: {report}");
    }
}

/// `--routers 2`: two router processes on one database share the load (each batch to the next),
/// and every acknowledged event is delivered once.
#[tokio::test]
async fn two_router_processes_share_the_load_and_lose_nothing() {
    let report = bench(&[
        "--duration",
        "2s",
        "--rules",
        "5",
        "--concurrency",
        "4",
        "--routers",
        "2",
        "--sink-phase",
        "0s",
    ])
    .await;
    assert_eq!(report["routers"], 2, "{report}");
    let per_router: Vec<u64> = report["acked_per_router"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(per_router.len(), 2, "{report}");
    assert!(per_router.iter().all(|&n| n > 0), "{report}");
    assert_eq!(
        per_router.iter().sum::<u64>(),
        report["acked_events"].as_u64().unwrap()
    );
    assert_eq!(report["delivered"], report["acked_events"], "{report}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicates"], 0);
    assert!(report.get("sink_only_requests_per_sec").unwrap().is_null());
}
