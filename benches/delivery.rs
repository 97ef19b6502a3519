//! Delivery benchmark: `cargo bench --bench delivery`.
//!
//! How fast a backlog drains when Roam allows it: `roam-notify serve` (the real binary,
//! SQLite with synchronous=FULL, or PostgreSQL with `ROAM_NOTIFY_BENCH_STORAGE=postgres`)
//! with the pacer opened (`rate_per_second = 1000`, `burst = 100`) posts to a fake Roam
//! in this process that answers each `chat.post` after `BENCH_ROAM_MS` (default 10 ms).
//!
//! For 1 chat and for `BENCH_CHATS` chats (default 4): `BENCH_MESSAGES` messages
//! (default 200) are accepted while Roam is held closed, then Roam opens and the drain is
//! timed from the moment it opens to the last post. Reports messages per second and the
//! daemon's own CPU time per delivered message (user + system, from /proc). (Per-chat
//! order is the test suite's to check.) `ROAM_NOTIFY_BIN` measures another build.

mod common;
use common::{env_num, free_port, roam_notify_bin};

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const SECRET: &str = "bench-secret";

/// CPU time (user + system) of a process so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// What the fake Roam saw: posts per chat.
#[derive(Default)]
struct Seen {
    per_chat: HashMap<String, usize>,
    total: usize,
}

struct Fake {
    seen: Mutex<Seen>,
    open: AtomicBool,
    latency: Duration,
}

async fn fake_roam(fake: Arc<Fake>) -> u16 {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    async fn chat_post(
        State(f): State<Arc<Fake>>,
        Json(v): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        if !f.open.load(Ordering::SeqCst) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "closed"})),
            );
        }
        tokio::time::sleep(f.latency).await;
        let chat = v["chat"].as_str().unwrap_or("").to_string();
        let mut s = f.seen.lock().unwrap();
        s.total += 1;
        *s.per_chat.entry(chat).or_default() += 1;
        (
            StatusCode::OK,
            Json(json!({"chatId": "C-1", "timestamp": 1_765_602_474_760_032_i64})),
        )
    }
    let app = axum::Router::new()
        .route("/v0/chat.post", post(chat_post))
        .route(
            "/v0/token.info",
            get(|| async {
                Json(json!({"addr": "B-b893c426-6d54-4d9a-8e71-6bd53b26124e",
                    "scopes": ["chat:send_message"], "roam": {"id": "1", "name": "Bench"}}))
            }),
        )
        .with_state(fake);
    let port = free_port();
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn chat(n: usize) -> String {
    format!("G-88bebce7-6cbb-4666-96f9-{n:012}")
}

/// One run: `messages` messages spread over `chats` chats; returns (msg/s, CPU per message).
async fn run(chats: usize, messages: usize, latency: Duration) -> (f64, Duration) {
    let fake = Arc::new(Fake {
        seen: Mutex::default(),
        open: AtomicBool::new(false),
        latency,
    });
    let roam_port = fake_roam(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let storage = if std::env::var("ROAM_NOTIFY_BENCH_STORAGE").as_deref() == Ok("postgres") {
        roam_notify::storage::testing::postgres_url(&format!("delivery bench {chats}"))
            .await
            .expect("ROAM_NOTIFY_BENCH_STORAGE=postgres needs a PostgreSQL server")
    } else {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    };
    // One route per chat, each taking the pushes whose ref names it.
    let mut routes = String::new();
    for c in 0..chats {
        routes.push_str(&format!(
            "[[routes]]\nname = \"r{c}\"\nsource = \"github\"\nmatch = {{ ref = \"refs/heads/b{c}\" }}\nto = \"{}\"\n",
            chat(c)
        ));
    }
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = ""
[roam]
base_url = "http://127.0.0.1:{roam_port}/v0"
api_key = "bench-key"
rate_per_second = 1000
burst = 100
[delivery]
retry_initial = "20ms"
retry_max = "50ms"
[storage]
url = "{storage}"
[log]
level = "warn"
[[sources]]
name = "github"
kind = "github"
secret = "{SECRET}"
{routes}"#
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut child = Command::new(roam_notify_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/push.json");
    let body = std::fs::read(fixture).unwrap();
    let body = String::from_utf8(body).unwrap();
    for n in 0..messages {
        let c = n % chats;
        let b = body.replacen("refs/tags/simple-tag", &format!("refs/heads/b{c}"), 1);
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(b.as_bytes());
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let r = http
            .post(format!("{base}/hooks/github"))
            .header("content-type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", format!("bench-{n}"))
            .header("X-Hub-Signature-256", sig)
            .body(b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "push {n}");
    }
    // Everything is queued (Roam refused the first attempts); open Roam and time the drain.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu0 = cpu_time(child.id());
    fake.open.store(true, Ordering::SeqCst);
    let opened = Instant::now();
    loop {
        if fake.seen.lock().unwrap().total >= messages {
            break;
        }
        assert!(opened.elapsed() < Duration::from_secs(120), "drain stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = cpu_time(child.id()) - cpu0;
    let _ = child.kill();
    let _ = child.wait();
    let s = fake.seen.lock().unwrap();
    assert_eq!(s.total, messages, "each message posted once");
    assert_eq!(s.per_chat.len(), chats, "every chat got its share");
    let elapsed = opened.elapsed();
    (
        messages as f64 / elapsed.as_secs_f64(),
        cpu / messages as u32,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let messages = env_num("BENCH_MESSAGES", 200) as usize;
    let chats = env_num("BENCH_CHATS", 4) as usize;
    let latency = Duration::from_millis(env_num("BENCH_ROAM_MS", 10));
    rt.block_on(async {
        println!(
            "delivery: {messages} messages, fake Roam answering in {} ms, pacer 1000/s burst 100",
            latency.as_millis()
        );
        for c in [1, chats] {
            let (rate, cpu) = run(c, messages, latency).await;
            println!(
                "  {c} chat(s): {rate:>7.1} messages/s, daemon CPU {:.2} ms per message",
                cpu.as_secs_f64() * 1000.0
            );
        }
    });
}
