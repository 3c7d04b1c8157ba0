//! A webhook target for tests: a small HTTP/1.1 server on 127.0.0.1:0 that answers from a
//! script (statuses, headers, delays, hanging, resetting the connection) and records every
//! request with its headers, body and arrival time. Hand-written on a TCP socket so it can
//! misbehave in ways a well-behaved HTTP framework will not.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with extra response headers.
    With(u16, Vec<(&'static str, String)>),
    /// A status with this body instead of `sink says <status>`.
    Body(u16, &'static str),
    /// Wait, then answer.
    Delay(Duration, u16),
    /// Never answer (the client's timeout must end it).
    Hang,
    /// Reset the connection without answering.
    Reset,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    otherwise: Option<Reply>,
    /// Requests whose body contains the text get this reply, before anything else.
    by_body: Vec<(String, Reply)>,
    /// A header every request must carry with one of these values (else 401, before anything
    /// else): a receiver that checks credentials.
    required: Option<(String, Vec<String>)>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Sink {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl Sink {
    /// A sink that answers 200 unless told otherwise.
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let script: Arc<Mutex<Script>> = Arc::default();
        let shared = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Sink { url, script }
    }

    /// Answers the next requests with these replies, in order.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script.lock().unwrap().queue.extend(replies);
        self
    }

    /// Answers every request not covered by `then` with this reply (default 200).
    pub fn otherwise(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().otherwise = Some(reply);
        self
    }

    /// Answers every request whose body contains `text` with `reply` (until [`Sink::forget`]),
    /// before the script and the default.
    pub fn when_body_has(&self, text: &str, reply: Reply) -> &Self {
        self.script
            .lock()
            .unwrap()
            .by_body
            .push((text.to_owned(), reply));
        self
    }

    /// Answers 401 to every request whose header `name` is not one of `values` (set again to
    /// change what is accepted).
    pub fn require_header(&self, name: &str, values: &[&str]) -> &Self {
        self.script.lock().unwrap().required = Some((
            name.to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        ));
        self
    }

    /// Stops answering bodies with `text` specially.
    pub fn forget(&self, text: &str) -> &Self {
        self.script
            .lock()
            .unwrap()
            .by_body
            .retain(|(t, _)| t != text);
        self
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.script.lock().unwrap().received.len()
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Mutex<Script>>) {
    let mut buffer = Vec::new();
    loop {
        let Some((head_len, method, path, headers)) = read_head(&mut stream, &mut buffer).await
        else {
            return;
        };
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_len + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_len..head_len + length]).into_owned();
        buffer.drain(..head_len + length);
        let reply = {
            let mut script = script.lock().unwrap();
            script.received.push(Received {
                method,
                path,
                headers,
                body,
                at: Instant::now(),
            });
            let refused = script.required.as_ref().is_some_and(|(name, values)| {
                let last = script.received.last();
                !last
                    .and_then(|r| r.header(name))
                    .is_some_and(|v| values.iter().any(|allowed| allowed == v))
            });
            let special = script
                .by_body
                .iter()
                .find(|(text, _)| body_has(&script.received, text))
                .map(|(_, reply)| reply.clone());
            let special = if refused {
                Some(Reply::Status(401))
            } else {
                special
            };
            special
                .or_else(|| script.queue.pop_front())
                .or_else(|| script.otherwise.clone())
                .unwrap_or(Reply::Status(200))
        };
        let (status, extra, body) = match reply {
            Reply::Status(status) => (status, Vec::new(), None),
            Reply::With(status, headers) => (status, headers, None),
            Reply::Body(status, body) => (status, Vec::new(), Some(body)),
            Reply::Delay(wait, status) => {
                tokio::time::sleep(wait).await;
                (status, Vec::new(), None)
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Reset => {
                // Linger 0 makes the close a reset (RST); with 0 the drop does not block.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
        };
        let body = body.map_or_else(|| format!("sink says {status}"), str::to_owned);
        let mut response = format!(
            "HTTP/1.1 {status} Sink\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Whether the request just recorded (the last one) has `text` in its body.
fn body_has(received: &[Received], text: &str) -> bool {
    received.last().is_some_and(|r| r.body.contains(text))
}

type Head = (usize, String, String, Vec<(String, String)>);

async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Head> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut lines = text.split("\r\n");
            let mut request_line = lines.next()?.split(' ');
            let method = request_line.next()?.to_owned();
            let path = request_line.next()?.to_owned();
            let headers = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Some((end + 4, method, path, headers));
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}
