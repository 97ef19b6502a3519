//! The daemon in this process, on a free port, built by `Application::build` as in
//! production.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use roam_notify::Application;
use roam_notify::config::Config;

use super::{FakeRoam, SECRET, fixture, sign, test_config};

pub const ROUTE_ALL_GITHUB: &str = r#"
[[routes]]
name = "all-github"
source = "github"
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
"#;

/// A fake Roam and a daemon on `test_config` plus `extra`, with its temporary directory.
pub async fn app_with(extra: &str) -> (TestApp, FakeRoam, tempfile::TempDir) {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), extra)).await;
    (app, fake, dir)
}

/// A daemon running in this process on a free port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub dir: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(toml: &str) -> TestApp {
        let cfg =
            Config::from_toml_str(toml, "test.toml").unwrap_or_else(|e| panic!("test config: {e}"));
        Self::start_config(cfg).await
    }

    /// From a config file, as `serve --config FILE` loads it (so it can be reloaded).
    pub async fn spawn_file(path: &Path) -> TestApp {
        let cfg = Config::load(Some(path)).unwrap_or_else(|e| panic!("test config: {e}"));
        Self::start_config(cfg).await
    }

    pub async fn start_config(cfg: Config) -> TestApp {
        let app = Application::build(cfg)
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let addr = app.local_addr().unwrap();
        let admin = app.admin_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            addr,
            admin,
            http: reqwest::Client::new(),
            shutdown,
            task,
            dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.admin.expect("admin listener is off")
        )
    }

    /// POSTs a GitHub-style delivery signed with `secret`.
    pub async fn github(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        secret: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/hooks/github"))
            .header("content-type", "application/json")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(secret, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Sends the `push` fixture under `delivery` and checks it was accepted.
    pub async fn push_accepted(&self, delivery: &str) {
        let r = self
            .github("push", delivery, &fixture("github/push.json"), SECRET)
            .await;
        assert_eq!(r.status(), 202, "push {delivery} not accepted");
    }

    pub async fn readyz(&self) -> Value {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `/readyz` until `cond` holds (at most 10 s) and returns the last answer.
    pub async fn wait_ready(&self, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let ready = self.readyz().await;
            if cond(&ready) || start.elapsed() > Duration::from_secs(10) {
                return ready;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}
