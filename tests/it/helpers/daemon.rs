//! The real binary as a child process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{SECRET, sign};

/// The real binary, started with `serve --config FILE` on a given port. Dropping it
/// kills the process, so a failing test leaves none behind.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Daemon {
    pub async fn start(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roam-notify"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("ROAM_NOTIFY__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("ROAM_NOTIFY__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
            .env_remove("ROAM_NOTIFY_ROAM_API_KEY")
            .env_remove("ROAM_NOTIFY_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let d = Daemon {
            child,
            port,
            log: log.to_path_buf(),
        };
        let start = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                && r.status() == 200
            {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn github(&self, event: &str, delivery: &str, body: &[u8]) -> u16 {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/hooks/github", self.port))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(SECRET, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no chance to clean up
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub async fn routes(&self) -> i64 {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/readyz", self.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["config"]["routes"].as_i64().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already gone after kill9 or a waited-for stop; then these only fail.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
