//! One Postgres cluster per test run, started the way the binary starts its own (or the server
//! in `DATABASE_URL`), with a migrated template; each test gets a fresh copy of the template.

use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::mpsc;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use switchyard::store::embedded::{self, EmbeddedOptions, EmbeddedPostgres};

const TEMPLATE: &str = "switchyard_template";

struct Cluster {
    admin: PgConnectOptions,
    /// `postgres://…/{database}…` with `{database}` to fill in.
    url_pattern: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // The cluster's parent-death signal follows the thread that started it: this thread
        // lives as long as the test process and holds the cluster.
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let (cluster, admin, url_pattern) = match std::env::var("DATABASE_URL") {
                    Ok(url) => {
                        let admin = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
                        let pattern = replace_database(&url, "{database}");
                        (None, admin, pattern)
                    }
                    Err(_) => {
                        let dir = test_cluster_dir();
                        let cluster = EmbeddedPostgres::start(&EmbeddedOptions {
                            data_dir: dir,
                            durable: false,
                            share_running: false,
                        })
                        .unwrap_or_else(|e| panic!("starting the test PostgreSQL: {e}"));
                        let admin = cluster.connect_options("postgres");
                        let pattern = cluster.url("{database}");
                        (Some(cluster), admin, pattern)
                    }
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(prepare_template(&admin));
                tx.send((admin, url_pattern)).expect("test thread waits");
                let _keep = cluster;
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the postgres thread");
        let (admin, url_pattern) = rx.recv().expect("the test PostgreSQL started");
        Cluster { admin, url_pattern }
    })
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{database}?{q}"),
        None => format!("{prefix}/{database}"),
    }
}

/// A folder for this run's cluster; clusters of earlier runs whose process is gone are removed.
fn test_cluster_dir() -> std::path::PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_prefix("switchyard-it-")
                .and_then(|p| p.parse::<i32>().ok())
            {
                // SAFETY: signal 0 only checks whether the process exists.
                let alive = unsafe { libc::kill(pid, 0) } == 0;
                if !alive {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    tmp.join(format!("switchyard-it-{}", std::process::id()))
        .join("pg")
}

async fn prepare_template(admin: &PgConnectOptions) {
    let mut conn = PgConnection::connect_with(admin)
        .await
        .expect("connect as admin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {TEMPLATE}"
    )))
    .execute(&mut conn)
    .await
    .expect("drop an old template");
    embedded::ensure_database(admin, TEMPLATE)
        .await
        .expect("create the template");
    let pool = switchyard::store::connect(admin.clone().database(TEMPLATE), 2)
        .await
        .expect("connect to the template");
    switchyard::store::migrate(&pool)
        .await
        .expect("migrate the template");
    pool.close().await;
}

/// A fresh, migrated database of its own.
pub struct TestDb {
    pub name: String,
    pub options: PgConnectOptions,
    pub url: String,
}

pub async fn fresh_database() -> TestDb {
    let cluster = cluster();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&cluster.admin)
        .await
        .expect("connect as admin");
    let sql = format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}");
    let mut tries = 0;
    loop {
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            // Two copies of the template at the same moment: "being accessed by other users".
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") && tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 + tries * 5)).await;
            }
            Err(e) => panic!("creating a test database: {e}"),
        }
    }
    let _ = conn.close().await;
    TestDb {
        options: cluster.admin.clone().database(&name),
        url: cluster.url_pattern.replace("{database}", &name),
        name,
    }
}

/// A cluster of the test's own, for tests that freeze or stop their database without touching
/// the one every other test shares. A thread holds it (the cluster's parent-death signal follows
/// the thread that started it) until the handle is dropped, which thaws it first.
pub struct OwnCluster {
    pub db: TestDb,
    /// The postmaster's process id.
    pub postmaster: i32,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnCluster {
    pub fn start() -> OwnCluster {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let dir = std::env::temp_dir()
                .join(format!("switchyard-own-{}", uuid::Uuid::new_v4().simple()))
                .join("pg");
            let cluster = EmbeddedPostgres::start(&EmbeddedOptions {
                data_dir: dir.clone(),
                durable: false,
                share_running: false,
            })
            .unwrap_or_else(|e| panic!("starting a PostgreSQL of the test's own: {e}"));
            let admin = cluster.connect_options("postgres");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime
                .block_on(embedded::ensure_database(&admin, "switchyard"))
                .expect("create its database");
            let pid = cluster.pid().expect("the cluster runs") as i32;
            ready_tx
                .send((
                    cluster.connect_options("switchyard"),
                    cluster.url("switchyard"),
                    pid,
                ))
                .expect("the test waits");
            let _ = stopped.recv();
            drop(cluster);
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir_all(parent);
            }
        });
        let (options, url, postmaster) = ready_rx.recv().expect("the cluster started");
        OwnCluster {
            db: TestDb {
                name: "switchyard".into(),
                options,
                url,
            },
            postmaster,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Freezes the whole cluster (the postmaster, which then forks nothing, and every process
    /// it started: each backend runs in a session of its own), as a hung server would be.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let mut pids = vec![self.postmaster];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // `/proc/<pid>/stat`: "pid (comm) state ppid ..."; comm may hold spaces.
            let parent = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(1)?.parse::<i32>().ok()
                });
            if parent == Some(self.postmaster) {
                pids.push(pid);
            }
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions; the pids are the cluster's.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.thaw();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
