//! The Docker image, end to end, on a real Docker engine: `deploy/docker/test` builds the
//! image and runs this with `ROAM_NOTIFY_TEST_IMAGE` naming it (without it, the test says
//! SKIPPED and passes, so `cargo test` needs no Docker).
//!
//! A signed webhook into the container reaches the fake Roam on the host; `/readyz` and
//! the image's HEALTHCHECK pass; the process runs as uid 10001; the admin API needs its
//! token; SIGTERM ends it cleanly within Docker's 10 s; and a message still pending
//! (Roam down) survives the container being replaced on the same volume.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "container-admin-token-31337";

fn docker(args: &[&str]) -> String {
    let bin = std::env::var("ROAM_NOTIFY_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
    let out = Command::new(&bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the test's containers and volume however the test ends.
struct Cleanup {
    names: Vec<String>,
    volume: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let bin = std::env::var("ROAM_NOTIFY_TEST_DOCKER").unwrap_or_else(|_| "docker".into());
        for n in &self.names {
            let _ = Command::new(&bin).args(["rm", "-f", n]).output();
        }
        let _ = Command::new(&bin)
            .args(["volume", "rm", "-f", &self.volume])
            .output();
    }
}

struct Ports {
    listen: u16,
    admin: u16,
}

/// Starts the image on the host network (so it reaches the fake Roam on 127.0.0.1).
fn run(image: &str, name: &str, volume: &str, config: &std::path::Path, p: &Ports) {
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        // The image's HEALTHCHECK command, checked more often than its 15 s.
        "--health-interval",
        "1s",
        "-v",
        &format!("{volume}:/data"),
        "-v",
        &format!("{}:/etc/roam-notify/config.toml:ro", config.display()),
        "-e",
        "ROAM_NOTIFY_CONFIG=/etc/roam-notify/config.toml",
        "-e",
        &format!("ROAM_NOTIFY_ROAM_API_KEY={KEY}"),
        "-e",
        &format!("GITHUB_WEBHOOK_SECRET={SECRET}"),
        "-e",
        &format!("ROAM_NOTIFY__SERVER__ADMIN_TOKEN={ADMIN_TOKEN}"),
        "-e",
        &format!("ROAM_NOTIFY__SERVER__LISTEN=0.0.0.0:{}", p.listen),
        "-e",
        &format!("ROAM_NOTIFY__SERVER__ADMIN_LISTEN=0.0.0.0:{}", p.admin),
        image,
    ]);
}

async fn wait_ready(http: &reqwest::Client, p: &Ports, name: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{}/readyz", p.listen))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "container not ready:\n{}",
            docker(&["logs", name])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn push(http: &reqwest::Client, p: &Ports, delivery: &str) -> u16 {
    let body = fixture("github/push.json");
    http.post(format!("http://127.0.0.1:{}/hooks/github", p.listen))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", sign(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_serves_drains_and_keeps_its_volume() {
    let Ok(image) = std::env::var("ROAM_NOTIFY_TEST_IMAGE") else {
        eprintln!(
            "SKIPPED the_image_serves_drains_and_keeps_its_volume: set ROAM_NOTIFY_TEST_IMAGE (deploy/docker/test does)"
        );
        return;
    };
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[roam]
base_url = "{}"
rate_per_second = 100
[delivery]
retry_initial = "200ms"
retry_max = "500ms"
[[sources]]
name = "github"
kind = "github"
secret = "${{env:GITHUB_WEBHOOK_SECRET}}"
{ROUTE_ALL_GITHUB}"#,
            roam.url
        ),
    )
    .unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (first, second, volume) = (
        format!("rn-test-a-{tag}"),
        format!("rn-test-b-{tag}"),
        format!("rn-test-{tag}"),
    );
    let _cleanup = Cleanup {
        names: vec![first.clone(), second.clone()],
        volume: volume.clone(),
    };
    docker(&["volume", "create", &volume]);
    let p = Ports {
        listen: free_port(),
        admin: free_port(),
    };
    let http = reqwest::Client::new();

    run(&image, &first, &volume, &config, &p);
    wait_ready(&http, &p, &first).await;
    assert_eq!(push(&http, &p, "c-1").await, 202);
    wait_for("the first message in Roam", Duration::from_secs(15), || {
        roam.delivered().len() == 1
    })
    .await;
    // The image's HEALTHCHECK (`roam-notify healthcheck`, no shell) reports healthy.
    let start = Instant::now();
    while docker(&["inspect", "-f", "{{.State.Health.Status}}", &first]) != "healthy" {
        assert!(start.elapsed() < Duration::from_secs(30), "never healthy");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Not root: the image's user, and the process's real uid.
    assert_eq!(
        docker(&["inspect", "-f", "{{.Config.User}}", &first]),
        "10001:10001"
    );
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &first]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["10001"; 4],
        "{uid}"
    );
    // The admin API needs the token.
    let admin = format!("http://127.0.0.1:{}/api/outbox", p.admin);
    assert_eq!(http.get(&admin).send().await.unwrap().status(), 401);
    let r = http
        .get(&admin)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Roam goes down: the next message is accepted and waits in the outbox on the volume.
    roam.set_down(true);
    assert_eq!(push(&http, &p, "c-2").await, 202);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // SIGTERM (docker stop, then SIGKILL after 10 s): a clean exit well within it.
    let start = Instant::now();
    docker(&["stop", "-t", "10", &first]);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &first]),
        "0"
    );
    let logs = docker(&["logs", &first]);
    eprintln!("container stopped in {:.2}s", took.as_secs_f64());

    // A new container on the same volume sends what the first one accepted.
    roam.set_down(false);
    run(&image, &second, &volume, &config, &p);
    wait_ready(&http, &p, &second).await;
    wait_for(
        "the pending message after the restart",
        Duration::from_secs(20),
        || roam.delivered().len() == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = roam.delivered();
    assert_eq!(delivered.len(), 2, "nothing lost, nothing twice");
    // The redelivery of the first webhook is recognised from the volume's database.
    assert_eq!(push(&http, &p, "c-1").await, 200);
    assert!(
        !logs.contains(SECRET) && !logs.contains(ADMIN_TOKEN) && !logs.contains(KEY),
        "no secret in the container's log"
    );
    roam.assert_all_valid();
}
