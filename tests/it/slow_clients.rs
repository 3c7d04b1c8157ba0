//! Slow clients cannot exhaust the router: a request head that trickles in is cut off after the
//! header-read timeout, a body that never completes gets 408 after the body-read timeout, and
//! no more than the configured number of connections are served at once.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_TOKEN, TestApp};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the response head is complete or the connection closes; (what arrived, when).
async fn read_head(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_trickling_request_head_is_cut_off() {
    let app = TestApp::spawn_with(&["--header-read-timeout-ms", "500"]).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One more header byte now and then, never the blank line that ends the head.
    let trickle = async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    let started = Instant::now();
    trickle.await;
    let (answer, _) = read_head(&mut stream, Duration::from_secs(1)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // The connection is closed: reading gives end of stream at once.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection is still open after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_never_completes_gets_408() {
    let app = TestApp::spawn_with(&["--body-read-timeout-ms", "500"]).await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/buses/default/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"source\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (answer, took) = read_head(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let app = TestApp::spawn_with(&["--max-connections", "2"]).await;
    // Two connections that hold their places: each has sent half a request head.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_head(&mut third, Duration::from_millis(700)).await;
    assert!(answer.is_empty(), "served beyond the cap: {answer}");
    // One held connection goes: the third is served.
    drop(held.pop());
    let (answer, _) = read_head(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
