//! Test harness: a fake Roam API, an in-process daemon on a free port, fixture signing.
//!
//! `fake_roam`: Roam's API faked, recording every request and failing on demand;
//! `app`: the daemon in this process on a free port (`TestApp`); `daemon`: the real
//! binary as a child process (`Daemon`). This file: the shared constants, fixtures and
//! their signatures, the test config and storage, and small helpers.

#![allow(dead_code)]

mod app;
mod daemon;
mod fake_roam;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use app::{ROUTE_ALL_GITHUB, TestApp, app_with};
pub use daemon::Daemon;
pub use fake_roam::{FakeRoam, Recorded, Reply};

pub const KEY: &str = "test-org-key-0123";
pub const SECRET: &str = "test-webhook-secret";
pub const CHAT_A: &str = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661";
pub const CHAT_B: &str = "C-11111111-2222-4333-8444-555555555555";

/// `tests/` in the repository: `fixtures/` (senders' published payloads), `roam-openapi/`
/// (Roam's specs) and `data/` (payloads written here); see `tests/README.md`.
pub fn test_files() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// A fixture's exact bytes.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = test_files().join("fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Standard Webhooks signature (`v1,<base64>`) of `{id}.{timestamp}.{body}` with a
/// `whsec_` secret (its base64 part is the key).
pub fn sign_standard_webhooks(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", b64.encode(m.finalize().into_bytes()))
}

/// The binary under test, without the caller's config or key in its environment.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_roam-notify"));
    c.env_remove("ROAM_NOTIFY_CONFIG")
        .env_remove("ROAM_NOTIFY_ROAM_API_KEY");
    c
}

/// The stdout of a command that must have succeeded (else the test fails showing both
/// streams).
pub fn stdout_ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A config for tests: fake Roam, fast pacing and retries, a github source and a route
/// sending everything from it to CHAT_A. `extra` is appended.
pub fn test_config(roam_url: &str, db: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[roam]
base_url = "{roam_url}"
api_key = "{KEY}"
rate_per_second = 200
burst = 50
request_timeout = "{request_timeout}"
[storage]
url = "{db}"
lease = "{lease}"
[delivery]
retry_initial = "50ms"
retry_max = "200ms"
give_up_after = "1h"

[[sources]]
name = "github"
kind = "github"
secret = "{SECRET}"
{extra}
"#,
        db = storage_url(db),
        // On PostgreSQL a restarted daemon takes back what it was sending only when its
        // old claims run out: keep that short (and sends shorter still) in tests.
        request_timeout = if on_postgres() { "2s" } else { "10s" },
        lease = if on_postgres() { "5s" } else { "60s" },
    )
}

/// Whether this test run keeps its data in PostgreSQL (`ROAM_NOTIFY_TEST_STORAGE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("ROAM_NOTIFY_TEST_STORAGE").as_deref() == Ok("postgres")
}

/// The storage URL for a test's database file. With `ROAM_NOTIFY_TEST_STORAGE=postgres`
/// (a second pass of `.ci/run`) each file name stands for its own fresh PostgreSQL schema
/// instead, the same one each time the test asks (so restarts find their data).
pub fn storage_url(db: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", db.display());
    }
    static SCHEMAS: std::sync::Mutex<Option<HashMap<PathBuf, String>>> =
        std::sync::Mutex::new(None);
    let mut schemas = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    let schemas = schemas.get_or_insert_with(HashMap::new);
    if let Some(url) = schemas.get(db) {
        return url.clone();
    }
    let name = db.display().to_string();
    // Made on a thread of its own: this is called from sync code inside a runtime.
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(roam_notify::storage::testing::postgres_url(&name))
    })
    .join()
    .unwrap()
    .expect("ROAM_NOTIFY_TEST_STORAGE=postgres needs a PostgreSQL server");
    schemas.insert(db.to_path_buf(), url.clone());
    url
}

/// Polls `cond` until it holds; fails after `limit` (a bound, not a timing assertion).
pub async fn wait_for<F: FnMut() -> bool>(what: &str, limit: Duration, mut cond: F) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
