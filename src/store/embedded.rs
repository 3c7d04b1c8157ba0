//! A local Postgres cluster from the system's own binaries, under the data folder, used when no
//! `DATABASE_URL` is given (and by the integration tests, one cluster per test run).
//!
//! Hand-written: the crates that do this either download Postgres builds (postgresql_embedded)
//! or call `sudo` when run as root (pgtemp), and neither works on the machines we target.
//!
//! - Binaries: `initdb` and `postgres` from `PATH`, else `pg_config --bindir`, else the highest
//!   version under `/usr/lib/postgresql/*/bin` (Debian's layout).
//! - Root: `initdb` and `postgres` refuse to run as root, so both run as the `postgres` system
//!   user (std's `CommandExt::uid` also drops root's supplementary groups).
//! - The server listens on a Unix socket only (`listen_addresses=''`), in the cluster folder when
//!   the path is short enough for a socket address, else in a private folder under the system's
//!   temporary directory.
//! - It is our child, in its own process group (a Ctrl-C aimed at us does not stop it before we
//!   have drained), with a parent-death signal so it never outlives us, even on `kill -9`.
//!   The parent-death signal follows the *thread* that spawned it: call [`EmbeddedPostgres::start`]
//!   from a thread that lives as long as the cluster should (the main thread).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
/// `sun_path` holds 108 bytes; the socket file name is `.s.PGSQL.5432` plus a lock file suffix.
const MAX_SOCKET_DIR_BYTES: usize = 90;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb` and `postgres` on PATH, in \
         `pg_config --bindir` and under /usr/lib/postgresql/*/bin); install them (Debian: \
         `apt-get install postgresql`) or set DATABASE_URL to use an existing server"
    )]
    NoBinaries,
    #[error(
        "running as root, but there is no `postgres` system user to run the local PostgreSQL \
         as (PostgreSQL refuses to run as root); create one, run as another user, or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` user cannot reach the data folder {path}: every parent folder must be \
         searchable by it; choose another place with SWITCHYARD_DATA_DIR"
    )]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} failed: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}):\n{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("the local PostgreSQL did not start; its log ({log}) ends with:\n{tail}")]
    NotStarted { log: PathBuf, tail: String },
    #[error(
        "another PostgreSQL (pid {pid}) still runs on {data_dir} after {waited:?}: is another \
         `switchyard serve` using this data folder? Stop it, or choose another SWITCHYARD_DATA_DIR"
    )]
    StillRunning {
        pid: i32,
        data_dir: PathBuf,
        waited: Duration,
    },
    #[error(
        "a router already runs the local PostgreSQL (pid {pid}) of {data_dir}: add processes on \
         the same database with DATABASE_URL, or choose another SWITCHYARD_DATA_DIR"
    )]
    InUse { pid: i32, data_dir: PathBuf },
}

fn io_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let action = action.into();
    move |source| EmbeddedError::Io { action, source }
}

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The cluster's own folder (created, and initialised on first use).
    pub data_dir: PathBuf,
    /// `false` turns off fsync and synchronous commit: for throwaway test clusters only.
    pub durable: bool,
    /// When a router already runs the cluster of this folder, use it (admin commands beside a
    /// running `serve`) instead of refusing (a second `serve`).
    pub share_running: bool,
}

/// A running local cluster; stopped (fast shutdown) when dropped.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    socket_dir: PathBuf,
    log_path: PathBuf,
}

#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Initialises the cluster if needed and starts it; blocks until it accepts connections.
    pub fn start(options: &EmbeddedOptions) -> Result<EmbeddedPostgres, EmbeddedError> {
        let bindir = find_bindir()?;
        let run_as = run_as()?;
        let data_dir = absolute(&options.data_dir)?;
        prepare_dir(&data_dir, run_as)?;
        if !data_dir.join("PG_VERSION").exists() {
            initdb(&bindir, &data_dir, run_as, options.durable)?;
        }
        let socket_dir = socket_dir(&data_dir, run_as)?;
        let log_path = data_dir.with_extension("log");
        if let Some(pid) = holder(&data_dir) {
            let running = EmbeddedPostgres {
                child: None,
                socket_dir: socket_dir.clone(),
                log_path: log_path.clone(),
            };
            // A router's cluster: its parent is alive and takes connections. One whose router
            // died (`kill -9`) is shutting down, whether or not it still answers this instant.
            if router_alive(pid) && running.accepts_connections() {
                if !options.share_running {
                    return Err(EmbeddedError::InUse {
                        pid,
                        data_dir: data_dir.clone(),
                    });
                }
                tracing::info!(pid, dir = %data_dir.display(), "using the local PostgreSQL of the running router");
                return Ok(running);
            }
            wait_for_exit(pid, &data_dir)?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log
            .try_clone()
            .map_err(io_err("duplicating the log handle"))?;

        let mut command = Command::new(bindir.join("postgres"));
        command
            .arg("-D")
            .arg(&data_dir)
            .arg("-k")
            .arg(&socket_dir)
            .arg("-p")
            .arg(PORT.to_string())
            .args(["-c", "listen_addresses="])
            .args(["-c", "max_connections=200"]);
        if !options.durable {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        command
            .current_dir(&data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        if let Some(user) = run_as {
            command.uid(user.uid).gid(user.gid);
        }
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only calls the
        // async-signal-safe functions prctl, getppid and _exit.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(io_err("starting the local PostgreSQL"))?;
        let mut cluster = EmbeddedPostgres {
            child: Some(child),
            socket_dir,
            log_path,
        };
        cluster.wait_until_ready(log_start)?;
        Ok(cluster)
    }

    /// The postmaster's process id (also its process group's: backends share it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Connection options for `database` on this cluster, as its superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// A `postgres://` URL for `database` on this cluster (for child processes and tools).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// Whether the server on this cluster's socket takes a connection now (within a few
    /// seconds): not one that is starting up or shutting down.
    fn accepts_connections(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        let options = self.connect_options("postgres");
        runtime.block_on(async {
            matches!(
                tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
                    .await,
                Ok(Ok(_))
            )
        })
    }

    fn wait_until_ready(&mut self, log_start: u64) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let options = self.connect_options("postgres");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_err("starting a runtime to probe PostgreSQL"))?;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(_))) | None => true,
                Some(Ok(None)) => false,
                Some(Err(e)) => return Err(io_err("watching the local PostgreSQL")(e)),
            };
            if !exited
                && runtime
                    .block_on(PgConnection::connect_with(&options))
                    .is_ok()
            {
                return Ok(());
            }
            if exited || Instant::now() > deadline {
                self.child = None;
                return Err(EmbeddedError::NotStarted {
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path, log_start),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fast shutdown: ends sessions, checkpoints, exits. Waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Immediate shutdown: recovery on the next start replays the WAL.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let _ = child.wait();
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The live PostgreSQL that holds the data folder (its pid in `postmaster.pid`), if any. A lock
/// file whose process is gone, or is not a PostgreSQL, is left to PostgreSQL, which removes a
/// stale one itself.
fn holder(data_dir: &Path) -> Option<i32> {
    let pid = fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())?;
    is_postgres(pid).then_some(pid)
}

/// Whether the process that started this postmaster is still alive (a router of ours).
fn router_alive(pid: i32) -> bool {
    let parent = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let after = stat.rsplit_once(')')?.1.to_owned();
            after.split_whitespace().nth(1)?.parse::<i32>().ok()
        });
    parent.is_some_and(|ppid| {
        fs::read(format!("/proc/{ppid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.windows(10).any(|w| w == b"switchyard"))
    })
}

fn is_postgres(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.windows(8).any(|w| w == b"postgres"))
}

/// A postmaster that holds the folder without taking connections is one of an earlier run
/// shutting down: after `kill -9` of its router it got the parent-death signal, which takes a
/// moment. Starting now would fail on its lock file (and a readiness probe could even reach the
/// old server), so wait for it to exit, up to [`STOP_TIMEOUT`], and say so.
fn wait_for_exit(pid: i32, data_dir: &Path) -> Result<(), EmbeddedError> {
    tracing::warn!(
        pid,
        dir = %data_dir.display(),
        "a PostgreSQL of an earlier run still holds the data folder; waiting for it to shut down"
    );
    let started = Instant::now();
    while is_postgres(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            return Err(EmbeddedError::StillRunning {
                pid,
                data_dir: data_dir.to_owned(),
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(
        pid,
        waited_ms = started.elapsed().as_millis() as u64,
        "the earlier PostgreSQL has shut down"
    );
    Ok(())
}

/// Creates `database` on the cluster reachable with `admin` options, if it does not exist yet.
pub async fn ensure_database(admin: &PgConnectOptions, database: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(admin).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let quoted = format!("\"{}\"", database.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(io_err(format!("resolving {}", path.display())))
}

fn find_bindir() -> Result<PathBuf, EmbeddedError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d))
    {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(EmbeddedError::NoBinaries)
}

/// `Some(postgres user)` when we are root, `None` when Postgres can run as ourselves.
fn run_as() -> Result<Option<RunAs>, EmbeddedError> {
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let out = Command::new("getent")
        .args(["passwd", SUPERUSER])
        .output()
        .map_err(|_| EmbeddedError::NoPostgresUser)?;
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (fields.get(2), fields.get(3)) {
        (Some(uid), Some(gid)) if out.status.success() => match (uid.parse(), gid.parse()) {
            (Ok(uid), Ok(gid)) => Ok(Some(RunAs { uid, gid })),
            _ => Err(EmbeddedError::NoPostgresUser),
        },
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

fn prepare_dir(dir: &Path, run_as: Option<RunAs>) -> Result<(), EmbeddedError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("setting permissions of {}", dir.display())))?;
    let Some(user) = run_as else {
        return Ok(());
    };
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io_err(format!(
        "handing {} to the postgres user",
        dir.display()
    )))?;
    if reachable(dir, user).is_ok() {
        return Ok(());
    }
    // A folder under a root-only home (/root is 0700): let the postgres user pass through the
    // parents (search permission only: it cannot list them), and say so.
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            fs::set_permissions(ancestor, fs::Permissions::from_mode(mode | 0o001)).map_err(
                io_err(format!(
                    "granting search permission on {}",
                    ancestor.display()
                )),
            )?;
            tracing::warn!(
                folder = %ancestor.display(),
                "added search permission for others (o+x) so the postgres user can reach the data folder"
            );
        }
    }
    reachable(dir, user).map_err(|source| EmbeddedError::Unreachable {
        path: dir.to_path_buf(),
        source,
    })
}

/// Proves the postgres user can write in `dir`: a harmless process started there as that user.
fn reachable(dir: &Path, user: RunAs) -> std::io::Result<()> {
    let status = Command::new("/bin/sh")
        .args(["-c", "test -w ."])
        .current_dir(dir)
        .uid(user.uid)
        .gid(user.gid)
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
    }
}

fn initdb(
    bindir: &Path,
    data_dir: &Path,
    run_as: Option<RunAs>,
    durable: bool,
) -> Result<(), EmbeddedError> {
    let mut command = Command::new(bindir.join("initdb"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
        .current_dir(data_dir);
    if !durable {
        command.arg("--no-sync");
    }
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
    let out = command.output().map_err(io_err("running initdb"))?;
    if !out.status.success() {
        return Err(EmbeddedError::Command {
            command: format!("initdb -D {}", data_dir.display()),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

fn socket_dir(data_dir: &Path, run_as: Option<RunAs>) -> Result<PathBuf, EmbeddedError> {
    if data_dir.as_os_str().len() <= MAX_SOCKET_DIR_BYTES {
        return Ok(data_dir.to_path_buf());
    }
    // A private folder named after the cluster, so two clusters never share one.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data_dir.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    // SAFETY: geteuid cannot fail and has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("switchyard-pg-{uid}-{hash:016x}"));
    prepare_dir(&dir, run_as)?;
    Ok(dir)
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
