//! Headless Chromium (Debian's `chromium` and `chromium-driver`) driven over WebDriver with
//! fantoccini. When the browser is missing, it is installed with apt-get if this process may
//! (root, apt-get present); otherwise the tests fail with a message saying what to install.
//! They never skip.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

static DRIVER: OnceLock<String> = OnceLock::new();

fn ensure_installed() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    // SAFETY: geteuid cannot fail and has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("browser tests: installing Debian's chromium and chromium-driver");
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            panic!("browser tests: `apt-get install chromium chromium-driver` failed ({status:?})");
        }
    }
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "browser tests need Debian's headless Chromium: install `chromium` and `chromium-driver` \
         ({CHROMIUM} and {CHROMEDRIVER}); this process cannot install them itself"
    );
}

/// One chromedriver per test process, stopped with it.
fn driver() -> &'static str {
    DRIVER.get_or_init(|| {
        ensure_installed();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let (tx, rx) = std::sync::mpsc::channel();
        // The parent-death signal follows the thread that spawns: this one lives as long as the
        // test process.
        std::thread::spawn(move || {
            let parent = std::process::id();
            let mut command = Command::new(CHROMEDRIVER);
            command
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() as u32 != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
            let child = command.spawn().expect("start chromedriver");
            tx.send(()).expect("the test waits");
            let _keep = child;
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("chromedriver started");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("http://127.0.0.1:{port}")
    })
}

/// Where screenshots go: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

pub struct Browser {
    pub client: Client,
    profile: PathBuf,
}

impl Browser {
    pub async fn open() -> Browser {
        let url = driver();
        let profile = std::env::temp_dir().join(format!(
            "switchyard-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--no-first-run", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(url)
            .await
            .expect("a Chromium session");
        Browser { client, profile }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element's text. A page that refreshes in place may replace the element between
    /// finding it and reading it (a stale reference): it is found again, a few times at most.
    pub async fn text(&self, css: &str) -> String {
        let mut tries = 0;
        loop {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("find {css}: {e}"));
            match element.text().await {
                Ok(text) => return text,
                Err(e) if tries < 5 && e.to_string().contains("stale element") => tries += 1,
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Marks the current document, so [`Browser::wait_new_page`] can tell when another replaced it.
    pub async fn mark_page(&self) {
        self.client
            .execute("window.__switchyard_old_page = true;", vec![])
            .await
            .expect("mark the page");
    }

    /// Waits until a new document (not the marked one) has loaded.
    pub async fn wait_new_page(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = self
                .client
                .execute(
                    "return window.__switchyard_old_page !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if fresh {
                return;
            }
            assert!(Instant::now() < deadline, "waited 10 s for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks something that loads another page, and waits for it.
    pub async fn click_to_page(&self, css: &str) {
        self.mark_page().await;
        self.click(css).await;
        self.wait_new_page(&format!("the page after clicking {css}"))
            .await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_owned()
    }

    /// Waits until the browser shows a page whose path satisfies `want` (a click that submits a
    /// form returns before the next page has loaded); returns the path.
    pub async fn wait_path(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            let ready = self
                .client
                .execute("return document.readyState;", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(|s| s == "complete"))
                .unwrap_or(false);
            if ready && want(&path) {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {what}; the browser is at {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Logs in with `token` from the login page and waits for the first page.
    pub async fn log_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/ui/login")).await;
        self.fill("#token", token).await;
        self.click("#login").await;
        self.wait_path("the page after logging in", |p| p != "/ui/login")
            .await;
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = screenshot_dir().join(name);
        std::fs::write(&path, png).expect("save the screenshot");
        path
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
