//! The load generator: clients that post batches of events, each matching one rule, and tally
//! what the router acknowledged and how long it took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{BenchArgs, now_ns};

/// The clients' side: what they send and what the router answered.
pub(super) struct Loader {
    pub(super) client: reqwest::Client,
    pub(super) auth: String,
    /// Each router's ingest URL; batches go to them in turn.
    pub(super) events_urls: Vec<String>,
    pub(super) batch: usize,
    pub(super) rules: u64,
    /// Every entry carries a unique `idempotency_key` (the keyed write path).
    pub(super) keyed: bool,
    /// Entries are CloudEvents, posted as a CloudEvents batch.
    pub(super) cloudevents: bool,
    /// Every event carries an order ([`order`]), which [`order_schema`] describes.
    pub(super) orders: bool,
    /// Every event carries `group`, its sequence number modulo this (`--ordered-groups`).
    pub(super) groups: Option<u64>,
    pub(super) seq: AtomicU64,
    /// Batches sent, for taking the routers in turn.
    pub(super) turn: AtomicU64,
    pub(super) failed_entries: AtomicU64,
    pub(super) failed_requests: AtomicU64,
    pub(super) tally: Mutex<Tally>,
}

#[derive(Default)]
pub(super) struct Tally {
    /// Every acknowledged event id (their count is the number acknowledged).
    pub(super) acked_ids: Vec<String>,
    /// Events acknowledged by each router, in `events_urls` order.
    pub(super) acked_per_router: Vec<u64>,
    pub(super) ingest_us: Vec<u64>,
}

/// An order as a shop would send it: ids, a timestamp, a customer, lines and a total.
pub fn order(n: u64) -> Value {
    let tier = ["gold", "silver", "bronze"][(n % 3) as usize];
    json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "placed_at": "2026-12-05T10:00:00Z",
        "customer": {"id": format!("c-{}", n % 1000), "tier": tier},
        "currency": "EUR",
        "lines": [
            {"sku": "SKU-1042", "qty": 2, "price": 3.5},
            {"sku": "SKU-2001", "qty": 1, "price": 12.25}
        ],
        "total": 19.25
    })
}

/// The schema of the bench's events with orders: the kind of schema a team registers (types,
/// required members, formats, an enum, a pattern, bounds, closed objects).
pub fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["kind", "seq", "sent_ns", "order"],
        "properties": {
            "kind": {"type": "integer", "minimum": 0},
            "seq": {"type": "integer", "minimum": 0},
            "sent_ns": {"type": "integer"},
            "group": {"type": "integer"},
            "order": {
                "type": "object",
                "required": ["id", "placed_at", "customer", "currency", "lines", "total"],
                "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "placed_at": {"type": "string", "format": "date-time"},
                    "customer": {
                        "type": "object",
                        "required": ["id", "tier"],
                        "additionalProperties": false,
                        "properties": {
                            "id": {"type": "string", "maxLength": 64},
                            "tier": {"enum": ["gold", "silver", "bronze"]}
                        }
                    },
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "lines": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["sku", "qty", "price"],
                            "additionalProperties": false,
                            "properties": {
                                "sku": {"type": "string", "pattern": "^SKU-[0-9]+$"},
                                "qty": {"type": "integer", "minimum": 1},
                                "price": {"type": "number", "minimum": 0}
                            }
                        }
                    },
                    "total": {"type": "number", "minimum": 0}
                }
            }
        }
    })
}

impl Loader {
    /// Posts batches until `started + args.duration`: on a fixed schedule at `--rate`
    /// (open loop), or from `--concurrency` clients as fast as they are acknowledged.
    pub(super) async fn drive(self: Arc<Self>, args: &BenchArgs, started: Instant) {
        let deadline = started + args.duration;
        match args.rate {
            Some(rate) => {
                // Open loop: batches are due on a fixed schedule whatever the router does.
                let interval = Duration::from_secs_f64(args.batch as f64 / rate.max(1) as f64);
                let slots = Arc::new(Semaphore::new(args.concurrency));
                let mut tasks = tokio::task::JoinSet::new();
                let mut due = started;
                while due < deadline {
                    tokio::time::sleep_until(due.into()).await;
                    let due_ns = now_ns();
                    let send = self.clone().send_batch(due, due_ns);
                    let slots = slots.clone();
                    tasks.spawn(async move {
                        let _slot = slots.acquire_owned().await;
                        send.await;
                    });
                    due += interval;
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            }
            None => {
                let mut clients = tokio::task::JoinSet::new();
                for _ in 0..args.concurrency {
                    let loader = self.clone();
                    clients.spawn(async move {
                        while Instant::now() < deadline {
                            loader.clone().send_batch(Instant::now(), now_ns()).await;
                        }
                    });
                }
                while clients.join_next().await.is_some() {}
            }
        }
    }

    pub(super) fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts one batch due at `due` (`due_ns` on the wall clock, carried in each event).
    async fn send_batch(self: Arc<Self>, due: Instant, due_ns: u64) {
        let entries: Vec<Value> = (0..self.batch)
            .map(|_| {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                let mut detail = json!({"kind": n % self.rules, "seq": n, "sent_ns": due_ns});
                if let Some(groups) = self.groups {
                    detail["group"] = (n % groups).into();
                }
                if self.orders {
                    detail["order"] = order(n);
                }
                if self.cloudevents {
                    return json!({"specversion": "1.0", "id": format!("bench-{n}"),
                                  "source": "bench", "type": "bench", "data": detail});
                }
                let mut entry =
                    json!({"source": "bench", "detail-type": "bench", "detail": detail});
                if self.keyed {
                    entry["idempotency_key"] = format!("bench-{n}").into();
                }
                entry
            })
            .collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let router = (turn % self.events_urls.len() as u64) as usize;
        let url = &self.events_urls[router];
        let request = self.client.post(url).header("authorization", &self.auth);
        let request = if self.cloudevents {
            request
                .header("content-type", "application/cloudevents-batch+json")
                .body(Value::from(entries).to_string())
        } else {
            request.json(&json!({"entries": entries}))
        };
        let sent = request.send().await;
        let body = match sent {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(body) = body else {
            self.failed_requests.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let latency = due.elapsed().as_micros() as u64;
        let mut ids = Vec::with_capacity(self.batch);
        for entry in body["entries"].as_array().into_iter().flatten() {
            match entry["event_id"].as_str() {
                Some(id) => ids.push(id.to_owned()),
                None => {
                    self.failed_entries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let mut tally = self.tally();
        if tally.acked_per_router.len() < self.events_urls.len() {
            tally.acked_per_router.resize(self.events_urls.len(), 0);
        }
        tally.acked_per_router[router] += ids.len() as u64;
        tally.ingest_us.push(latency);
        tally.acked_ids.extend(ids);
    }
}
