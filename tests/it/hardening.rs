//! The public listener under hostile or careless clients: allow-lists with trusted
//! proxies, per-source rate limits, and a client that trickles its body.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

async fn push_from(app: &TestApp, delivery: &str, xff: Option<&str>) -> reqwest::Response {
    let body = fixture("github/push.json");
    let mut req = app
        .http
        .post(app.url("/hooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", sign(SECRET, &body))
        .body(body);
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    req.send().await.unwrap()
}

fn with_source_keys(cfg: String, keys: &str) -> String {
    cfg.replace(
        &format!("secret = \"{SECRET}\"\n"),
        &format!("secret = \"{SECRET}\"\n{keys}\n"),
    )
}

#[tokio::test]
async fn allow_lists_believe_forwarded_for_only_from_trusted_proxies() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = test_config(&roam.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB);
    let behind_proxy = with_source_keys(
        base.clone(),
        r#"allow_ips = ["10.9.9.0/24", "2001:db8::/32"]"#,
    )
    .replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let app = TestApp::spawn(&behind_proxy).await;
    // The proxy (127.0.0.1) says who the client is.
    assert_eq!(push_from(&app, "a-1", Some("10.9.9.7")).await.status(), 202);
    // A client cannot smuggle an allowed address in: the proxy appends the real one.
    let r = push_from(&app, "a-2", Some("10.9.9.7, 203.0.113.5")).await;
    assert_eq!(r.status(), 403);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "forbidden");
    assert!(
        j["message"].as_str().unwrap().contains("203.0.113.5"),
        "{j}"
    );
    // Without the header the proxy itself is the client, and it is not allowed.
    assert_eq!(push_from(&app, "a-3", None).await.status(), 403);
    // Trusted hops on the right are skipped.
    assert_eq!(
        push_from(&app, "a-4", Some("10.9.9.8, 127.0.0.1"))
            .await
            .status(),
        202
    );
    app.stop().await;

    // No trusted proxies: the header is ignored, the peer address counts.
    let direct = with_source_keys(base, r#"allow_ips = ["10.9.9.0/24"]"#);
    let app = TestApp::spawn(&direct).await;
    assert_eq!(push_from(&app, "b-1", Some("10.9.9.7")).await.status(), 403);
    app.stop().await;
    let allowed = with_source_keys(
        test_config(&roam.url, &dir.path().join("u.db"), ROUTE_ALL_GITHUB),
        r#"allow_ips = ["127.0.0.0/8"]"#,
    );
    let app = TestApp::spawn(&allowed).await;
    assert_eq!(push_from(&app, "c-1", None).await.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn a_source_over_its_rate_limit_gets_429_with_retry_after() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_source_keys(
        test_config(&roam.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB),
        "rate_limit = 0.5\nrate_limit_burst = 2",
    );
    let app = TestApp::spawn(&cfg).await;
    assert_eq!(push_from(&app, "r-1", None).await.status(), 202);
    assert_eq!(push_from(&app, "r-2", None).await.status(), 202);
    let r = push_from(&app, "r-3", None).await;
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&after), "Retry-After {after}");
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "rate_limited");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roam_notify_webhooks_total{source=\"github\",result=\"rate_limited\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_trickles_its_body_is_cut_off() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&roam.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace("[server]\n", "[server]\nrequest_timeout = \"1s\"\n");
    let app = TestApp::spawn(&cfg).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nX-GitHub-Event: push\r\n\r\n{",
    )
    .await
    .unwrap();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("\"error\":\"request_timeout\""),
        "a JSON reason: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn tls_terminates_on_the_webhook_listener_when_configured() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let cfg = test_config(&roam.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB).replace(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let app = TestApp::spawn(&cfg).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let body = fixture("github/push.json");
    let r = client
        .post(format!(
            "https://localhost:{}/hooks/github",
            app.addr.port()
        ))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "tls-1")
        .header("X-Hub-Signature-256", sign(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("delivery", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    // Plain HTTP on the TLS port gets no answer.
    assert!(app.http.get(app.url("/healthz")).send().await.is_err());
    app.stop().await;

    // A key file that is not a key: start-up refuses, naming the key.
    std::fs::write(&key_path, "not a key").unwrap();
    let bad = roam_notify::config::Config::from_toml_str(&cfg, "t.toml").unwrap();
    let err = roam_notify::Application::build(bad)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("server.tls_key"), "{err}");
}

/// A payload may carry NUL (JSON "\u0000") into the entity, the text and the group key.
/// PostgreSQL text cannot hold NUL: the event must still be stored (202, not a 503 that
/// the sender retries forever) and delivered, on either storage (CI runs this on both).
#[tokio::test]
async fn a_payload_carrying_nul_is_stored_and_delivered() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        r#"
[[routes]]
name = "pushes"
source = "github"
to = "{CHAT_A}"
update = true
thread = true
continue = true
[[routes]]
name = "grouped"
source = "github"
to = "{CHAT_B}"
group_by = ["ref"]
group_wait = "100ms"
"#
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &routes)).await;
    let mut push: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    push["ref"] = "refs/heads/ma\u{0}in".into();
    push["pusher"]["name"] = "nul\u{0}pusher".into();
    let body = serde_json::to_vec(&push).unwrap();
    assert!(
        body.windows(6).any(|w| w == b"\\u0000"),
        "the JSON carries NUL"
    );
    for delivery in ["nul-1", "nul-1"] {
        let r = app.github("push", delivery, &body, SECRET).await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    wait_for("both messages", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    roam.assert_all_valid();
    app.stop().await;
}
