//! Acknowledged means durable: the real binary is killed (SIGKILL) while producers are posting,
//! and every event it acknowledged is in the database with all of its deliveries: those it had
//! handed to its own workers without rows (migration 0028) get theirs from the next process's
//! rescue of its hand-over lease.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, postgres};

#[tokio::test]
async fn every_acknowledged_event_survives_a_kill_with_its_deliveries() {
    let db = postgres::fresh_database().await;
    // A short lease: the next process rescues the killed one's a second after its last renewal.
    let serve = || {
        crate::support::binary::serve(|command| {
            command
                .env("DATABASE_URL", &db.url)
                .env("SWITCHYARD_LEASE_MS", "1000");
        })
    };
    let (mut child, base) = serve();
    let client = crate::support::http_client();
    let rule = json!({"event_pattern": {"source": ["shop"]}, "targets": [{"id": "a", "url": "http://127.0.0.1:9/a"}, {"id": "b", "url": "http://127.0.0.1:9/b"}]});
    let put = client
        .put(format!("{base}/v1/buses/default/rules/all"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&rule)
        .send()
        .await
        .expect("put the rule");
    assert!(put.status().is_success());

    let acked: Arc<Mutex<Vec<uuid::Uuid>>> = Arc::default();
    let mut producers = Vec::new();
    for producer in 0..4 {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        producers.push(tokio::spawn(async move {
            for batch in 0.. {
                let entries: Vec<Value> = (0..10)
                    .map(|i| json!({"source": "shop", "detail-type": "t", "detail": {"p": producer, "b": batch, "i": i}}))
                    .collect();
                let sent = client
                    .post(format!("{base}/v1/buses/default/events"))
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&json!({"entries": entries}))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status() != 200 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                let ids = body["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["event_id"].as_str()?.parse::<uuid::Uuid>().ok());
                acked.lock().unwrap().extend(ids);
            }
        }));
    }
    // Let acknowledgements pile up, then kill the process in the middle of the traffic.
    crate::support::wait_for(
        "a few hundred acknowledged events",
        Duration::from_secs(30),
        || async { (acked.lock().unwrap().len() >= 300).then_some(()) },
    )
    .await;
    child.kill().expect("SIGKILL the router");
    let _ = child.wait();
    for producer in producers {
        let _ = producer.await;
    }

    let acked = acked.lock().unwrap().clone();
    let pool = switchyard::store::connect(db.options.clone(), 2)
        .await
        .unwrap();
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::uuid[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = a.id)",
    )
    .bind(&acked)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged events are lost",
        acked.len()
    );
    // Each event lists its two deliveries; the ones handed over and not yet recorded are in
    // its `handed` list, under the killed process's lease.
    let listed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE cardinality(delivery_ids) <> 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(listed, 0, "events stored without both of their deliveries");

    let (mut next, _) = serve();
    let short = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events e
             WHERE (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id) <> 2",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while short().await > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = next.kill();
    let _ = next.wait();
    assert_eq!(
        short().await,
        0,
        "events whose deliveries have no rows after the next process's rescue"
    );
}
