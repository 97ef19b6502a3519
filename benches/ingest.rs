//! Ingest benchmark: `cargo bench --bench ingest`.
//!
//! Starts two servers as child processes on this machine and loads each the same way:
//! - `roam-notify serve` (the real binary, dry-run, SQLite with synchronous=FULL, one
//!   GitHub source and route), receiving signed `push` webhooks (tests/fixtures
//!   github/push.json, 7.3 KB) with a unique delivery id each, so every request is
//!   verified, parsed, routed, rendered and durably committed before its 202;
//! - a bare axum handler that only reads the body and answers 202.
//!
//! Reports, for each: maximum throughput (closed loop, 64 connections), ack latency
//! p50/p99 at a steady 1,000 requests/s (open loop, latency measured from each
//! request's scheduled time so a stall is not hidden), and resident memory idle
//! (settled, before the first webhook) and at peak. Environment: BENCH_REQUESTS
//! (default 20000), BENCH_SECONDS (steady phase, default 10), BENCH_RATE (default 1000),
//! ROAM_NOTIFY_BIN (another build to measure). `ROAM_NOTIFY_BENCH_STORAGE=postgres` runs
//! roam-notify on PostgreSQL (`ROAM_NOTIFY_TEST_POSTGRES`, a fresh schema) instead.

mod common;
use common::{env_num, free_port, roam_notify_bin};

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const SECRET: &str = "bench-secret";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-server") {
        let port: u16 = args
            .get(i + 1)
            .and_then(|p| p.parse().ok())
            .expect("--bare-server PORT");
        bare_server(port);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(drive());
}

fn bare_server(port: u16) {
    use axum::routing::post;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/hooks/github",
            post(|body: axum::body::Bytes| async move {
                (
                    axum::http::StatusCode::ACCEPTED,
                    format!("{{\"bytes\":{}}}", body.len()),
                )
            }),
        );
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(l, app).await.unwrap();
    });
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Target {
    name: &'static str,
    child: Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_up(url: &str, health: bool) {
    let c = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let ok = if health {
            c.get(url)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        } else {
            c.post(url).body("x").send().await.is_ok()
        };
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server at {url} did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_roam_notify() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // ROAM_NOTIFY_BENCH_STORAGE=postgres: a fresh schema at ROAM_NOTIFY_TEST_POSTGRES.
    let storage = if std::env::var("ROAM_NOTIFY_BENCH_STORAGE").as_deref() == Ok("postgres") {
        roam_notify::storage::testing::postgres_url("ingest bench")
            .await
            .expect("ROAM_NOTIFY_BENCH_STORAGE=postgres needs a PostgreSQL server")
    } else {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    };
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[storage]
url = "{storage}"
[log]
level = "warn"
[[sources]]
name = "github"
kind = "github"
secret = "{SECRET}"
[[routes]]
name = "pushes"
source = "github"
events = ["github.push"]
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
"#
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new(roam_notify_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("ROAM_NOTIFY_ROAM_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&format!("http://127.0.0.1:{port}/healthz"), true).await;
    Target {
        name: "roam-notify (verify+parse+route+render+durable commit)",
        child,
        url: format!("http://127.0.0.1:{port}/hooks/github"),
        _dir: Some(dir),
    }
}

async fn start_bare() -> Target {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--bare-server", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks/github");
    wait_up(&url, false).await;
    Target {
        name: "bare axum handler (reads body, answers 202)",
        child,
        url,
        _dir: None,
    }
}

struct Load {
    client: reqwest::Client,
    body: bytes::Bytes,
    signature: String,
}

impl Load {
    async fn send(&self, url: &str) -> bool {
        let r = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
            .header("X-Hub-Signature-256", &self.signature)
            .body(self.body.clone())
            .send()
            .await;
        matches!(r, Ok(r) if r.status() == 202)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Figures {
    throughput: f64,
    failures: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    steady_failures: u64,
    rss_idle: u64,
    rss_peak: u64,
}

async fn measure(t: &Target, load: Arc<Load>, requests: u64, seconds: u64, rate: u64) -> Figures {
    let pid = t.child.id();
    // Idle: started and settled, before any request (as `benches/compare` reads it; read
    // after the warm-up below it would include what serving left in the allocator).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = rss_kib(pid, "VmRSS:");
    // Warm up connections and caches.
    for _ in 0..200 {
        load.send(&t.url).await;
    }

    // 1. Closed loop: 64 connections as fast as they go.
    let conns = 64u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let load = load.clone();
        let url = t.url.clone();
        let n = requests / conns;
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            for _ in 0..n {
                if !load.send(&url).await {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap();
    }
    let elapsed = start.elapsed();
    if let Some(dir) = &t._dir {
        let wal = std::fs::metadata(dir.path().join("bench.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        let db = std::fs::metadata(dir.path().join("bench.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "  after the closed loop: database {:.1} MiB, WAL {:.1} MiB",
            db as f64 / 1048576.0,
            wal as f64 / 1048576.0
        );
    }
    let throughput = (requests / conns * conns) as f64 / elapsed.as_secs_f64();

    // 2. Open loop at `rate` requests/s: latency from the scheduled send time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let begin = Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = begin + interval * i as u32;
        tokio::time::sleep_until(at.into()).await;
        let load = load.clone();
        let url = t.url.clone();
        handles.push(tokio::spawn(async move {
            let ok = load.send(&url).await;
            (at.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(handles.len());
    let mut steady_failures = 0;
    let mut slowest: Vec<(Duration, usize)> = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let (d, ok) = h.await.unwrap();
        if !ok {
            steady_failures += 1;
        }
        lat.push(d);
        slowest.push((d, i));
    }
    slowest.sort_by(|a, b| b.cmp(a));
    let worst: Vec<String> = slowest
        .iter()
        .take(12)
        .map(|(d, i)| {
            format!(
                "{:.1}ms@{:.2}s",
                d.as_secs_f64() * 1e3,
                *i as f64 / rate as f64
            )
        })
        .collect();
    println!("  slowest acks (latency@send time): {}", worst.join(" "));
    lat.sort();
    let rss_peak = rss_kib(pid, "VmHWM:");
    Figures {
        throughput,
        failures,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
        steady_failures,
        rss_idle,
        rss_peak,
    }
}

async fn drive() {
    let requests = env_num("BENCH_REQUESTS", 20_000);
    let seconds = env_num("BENCH_SECONDS", 10);
    let rate = env_num("BENCH_RATE", 1000);
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/push.json");
    let body = std::fs::read(&fixture).expect("tests/fixtures/github/push.json");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let load = Arc::new(Load {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap(),
        body: bytes::Bytes::from(body),
        signature,
    });
    println!(
        "ingest benchmark: {requests} requests closed-loop over 64 connections, then {rate} req/s for {seconds}s open-loop; body {} bytes",
        load.body.len()
    );
    let mut rows = Vec::new();
    for which in ["bare", "roam-notify"] {
        let t = if which == "bare" {
            start_bare().await
        } else {
            start_roam_notify().await
        };
        let f = measure(&t, load.clone(), requests, seconds, rate).await;
        rows.push((t.name, f));
        drop(t);
    }
    println!();
    println!(
        "| server | max req/s | failed | p50 @ {rate}/s | p99 @ {rate}/s | max @ {rate}/s | failed @ {rate}/s | RSS idle | RSS peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.0} | {} | {:.2} ms | {:.2} ms | {:.1} ms | {} | {:.1} MiB | {:.1} MiB |",
            f.throughput,
            f.failures,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.max.as_secs_f64() * 1e3,
            f.steady_failures,
            f.rss_idle as f64 / 1024.0,
            f.rss_peak as f64 / 1024.0
        );
    }
    if let [(_, bare), (_, ours)] = rows.as_slice() {
        println!(
            "\nroam-notify throughput = {:.0}% of the bare handler",
            100.0 * ours.throughput / bare.throughput
        );
    }
}
