//! `PutEvents` through the official AWS SDK (JSON 1.1, SigV4-signed) against the same events
//! posted to the native endpoint (`POST /v1/buses/default/events`, a stored bearer token), side
//! by side in one run: interleaved rounds, the order turned each round, medians and their ratios.
//! A third client sends the same JSON 1.1 requests signed by Switchyard's own signer with
//! reqwest: the router's side of the AWS path without the SDK's client-side cost. Also the
//! router's SigV4 verification alone (parse, scope, signature) per request.
//!
//! `cargo bench --bench aws [-- --seconds 5 --rounds 3 --clients 8 --only 0|1|2]`
//!
//! The router is this build's `switchyard serve` on its own Postgres in a temporary folder
//! (`--workers 0`: acknowledged events are stored, nothing is delivered). Both clients send
//! batches of 10 entries (PutEvents's limit) of the same events and count acknowledged entries.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_eventbridge as eb;
use serde_json::{Value, json};
use switchyard::aws::sigv4;

const ADMIN: &str = "bench-admin-token-0123456789";
const KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const BATCH: usize = 10;

struct Router {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Router {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn detail(n: u64) -> String {
    json!({"order_id": format!("o-{n}"), "customer": {"id": n % 1000, "tier": "gold"},
           "total": (n % 500) as f64 + 0.5, "currency": "EUR", "items": [{"sku": "A-1", "qty": 2}]})
    .to_string()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn start_router(client: &reqwest::Client) -> (Router, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("switchyard-bench-aws-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "0",
        ])
        .env_remove("DATABASE_URL")
        .env("SWITCHYARD_DATA_DIR", &dir)
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN)
        .env("SWITCHYARD_SECRET_KEY", KEY)
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the router");
    let router = Router { child, dir };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the router did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (router, base)
}

/// Acknowledged events per second over `seconds` with `clients` concurrent senders.
async fn phase<F, Fut>(clients: u64, seconds: u64, send: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (send, acked) = (send.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = c * 1_000_000_000;
            while Instant::now() < end {
                acked.fetch_add(send(n).await, Ordering::Relaxed);
                n += BATCH as u64;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a sender");
    }
    acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// A PutEvents body of `BATCH` entries from `n` on.
fn aws_body(n: u64) -> String {
    let entries: Vec<Value> = (n..n + BATCH as u64)
        .map(|i| json!({"Source": "bench", "DetailType": "OrderPlaced", "Detail": detail(i)}))
        .collect();
    json!({ "Entries": entries }).to_string()
}

/// `X-Amz-Date` and `Authorization` for a PutEvents request of `body` to `host`, now.
fn signature(id: &str, secret: &str, host: &str, body: &str) -> (String, String) {
    let stamp = sigv4::amz_date(time::OffsetDateTime::now_utc());
    let headers: Vec<(&str, &[u8])> = vec![
        ("content-type", b"application/x-amz-json-1.1"),
        ("host", host.as_bytes()),
        ("x-amz-date", stamp.as_bytes()),
        ("x-amz-target", b"AWSEvents.PutEvents"),
    ];
    let auth = sigv4::Authorization {
        access_key_id: id.to_owned(),
        date: stamp[..8].to_owned(),
        region: "local".into(),
        service: "events".into(),
        signed_headers: ["content-type", "host", "x-amz-date", "x-amz-target"]
            .map(str::to_owned)
            .to_vec(),
        signature: Vec::new(),
    };
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let header = sigv4::authorization_header(&auth, &request, &stamp, secret);
    (stamp, header)
}

/// The router's work to authenticate one signed request, without the key lookup: parse the
/// header, check scope and clock, verify the signature over a 10-entry body.
fn verification_micros(secret: &str) -> f64 {
    let body = aws_body(0);
    let host = "127.0.0.1:8080";
    let (stamp, header) = signature("AKSYBENCHBENCHBENCH0", secret, host, &body);
    let headers: Vec<(&str, &[u8])> = vec![
        ("content-type", b"application/x-amz-json-1.1"),
        ("host", host.as_bytes()),
        ("x-amz-date", stamp.as_bytes()),
        ("x-amz-target", b"AWSEvents.PutEvents"),
    ];
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let expect = sigv4::Expect {
        region: "local",
        service: "events",
        now: time::OffsetDateTime::now_utc(),
    };
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let auth = sigv4::Authorization::parse(std::hint::black_box(&header)).expect("parses");
        let stamp = sigv4::check_scope(&auth, &request, &expect).expect("in scope");
        sigv4::verify(&auth, &request, &stamp, secret).expect("verifies");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    switchyard::delivery::client::install_crypto_provider();
    let seconds = arg("--seconds", 5);
    let rounds = arg("--rounds", 3);
    let clients = arg("--clients", 8);
    let http = reqwest::Client::new();
    let (_router, base) = start_router(&http).await;
    let made: Value = http
        .post(format!("{base}/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "scope": "publish", "kind": "aws_access_key"}))
        .send()
        .await
        .expect("create an access key")
        .json()
        .await
        .expect("its JSON");
    let id = made["access_key_id"].as_str().expect("an id").to_owned();
    // The native client authenticates with a stored token too: both paths look their key up.
    let bearer: Value = http
        .post(format!("{base}/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench-bearer", "scope": "publish"}))
        .send()
        .await
        .expect("create a token")
        .json()
        .await
        .expect("its JSON");
    let bearer = bearer["token"].as_str().expect("a token").to_owned();
    let secret = made["secret_access_key"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let sdk = eb::Client::from_conf(
        eb::Config::builder()
            .behavior_version(eb::config::BehaviorVersion::latest())
            .region(eb::config::Region::new("local"))
            .endpoint_url(&base)
            .credentials_provider(eb::config::Credentials::new(
                &id, &secret, None, None, "bench",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build(),
    );

    let native = {
        let (http, base, bearer) = (http.clone(), base.clone(), bearer.clone());
        move |n: u64| {
            let (http, base, bearer) = (http.clone(), base.clone(), bearer.clone());
            async move {
                let entries: Vec<Value> = (n..n + BATCH as u64)
                    .map(|i| json!({"source": "bench", "detail-type": "OrderPlaced", "detail": detail(i)}))
                    .collect();
                let answer: Value = match http
                    .post(format!("{base}/v1/buses/default/events"))
                    .bearer_auth(&bearer)
                    .json(&json!({ "entries": entries }))
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                answer["entries"].as_array().map_or(0, |e| {
                    e.iter().filter(|e| e["event_id"].is_string()).count() as u64
                })
            }
        }
    };
    let through_sdk = {
        let sdk = sdk.clone();
        move |n: u64| {
            let sdk = sdk.clone();
            async move {
                let entries: Vec<eb::types::PutEventsRequestEntry> = (n..n + BATCH as u64)
                    .map(|i| {
                        eb::types::PutEventsRequestEntry::builder()
                            .source("bench")
                            .detail_type("OrderPlaced")
                            .detail(detail(i))
                            .build()
                    })
                    .collect();
                match sdk.put_events().set_entries(Some(entries)).send().await {
                    Ok(out) => out
                        .entries()
                        .iter()
                        .filter(|e| e.event_id().is_some())
                        .count() as u64,
                    Err(_) => 0,
                }
            }
        }
    };

    // The same JSON 1.1 requests signed by our own signer and sent with reqwest: the router's
    // side of the AWS path without the SDK's client-side cost.
    let signed = {
        let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
        move |n: u64| {
            let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
            async move {
                let body = aws_body(n);
                let host = base.trim_start_matches("http://").to_owned();
                let (stamp, authorization) = signature(&id, &secret, &host, &body);
                let answer: Value = match http
                    .post(format!("{base}/"))
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amz-target", "AWSEvents.PutEvents")
                    .header("x-amz-date", stamp)
                    .header("authorization", authorization)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                answer["Entries"].as_array().map_or(0, |e| {
                    e.iter().filter(|e| e["EventId"].is_string()).count() as u64
                })
            }
        }
    };

    // Warm every path (connections, the router's caches) before measuring.
    phase(clients, 1, native.clone()).await;
    phase(clients, 1, signed.clone()).await;
    phase(clients, 1, through_sdk.clone()).await;
    let (mut natives, mut raws, mut sdks) = (Vec::new(), Vec::new(), Vec::new());
    // `--only 0|1|2` runs one of them (native, signed, SDK), for a profiler.
    let only = std::env::args()
        .position(|a| a == "--only")
        .map(|_| arg("--only", 0));
    for round in 0..rounds {
        // Each round in another order.
        for turn in 0..3u64 {
            let which = (turn + round) % 3;
            if only.is_some_and(|o| o != which) {
                continue;
            }
            match which {
                0 => {
                    let rate = phase(clients, seconds, native.clone()).await;
                    println!("round {round}: native        {rate:>9.0} events/s");
                    natives.push(rate);
                }
                1 => {
                    let rate = phase(clients, seconds, signed.clone()).await;
                    println!("round {round}: SigV4, reqwest {rate:>9.0} events/s");
                    raws.push(rate);
                }
                _ => {
                    let rate = phase(clients, seconds, through_sdk.clone()).await;
                    println!("round {round}: SigV4, SDK     {rate:>9.0} events/s");
                    sdks.push(rate);
                }
            }
        }
    }
    if only.is_some() {
        return;
    }
    let (native, raw, sdk) = (median(natives), median(raws), median(sdks));
    let verify = verification_micros(&secret);
    println!(
        "\nPutEvents, {clients} clients x {BATCH} entries, {rounds} rounds of {seconds} s (medians)"
    );
    println!("  native endpoint (bearer):       {native:>9.0} events/s");
    println!(
        "  PutEvents, signed, reqwest:     {raw:>9.0} events/s  ({:.2}x native)",
        raw / native
    );
    println!(
        "  PutEvents through the AWS SDK:  {sdk:>9.0} events/s  ({:.2}x native)",
        sdk / native
    );
    println!(
        "  SigV4 verification alone:       {verify:>9.1} µs per request ({:.1} µs per event)",
        verify / BATCH as f64
    );
}
