//! The admin listener's authentication: `server.admin_token` as a bearer token on every
//! admin endpoint but `/healthz`; `/metrics` as `metrics_auth` says; the config refusing
//! a listener reachable from other hosts without a token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "admin-token-4242-abcdef";

/// The test config with an admin token (and any other `[server]` keys).
fn with_server(fake: &FakeRoam, dir: &std::path::Path, server: &str) -> String {
    test_config(&fake.url, &dir.join("t.db"), ROUTE_ALL_GITHUB).replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"127.0.0.1:0\"\n{server}"),
    )
}

async fn status(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.unwrap();
    let s = r.status();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if s == StatusCode::UNAUTHORIZED {
        assert_eq!(www.as_deref(), Some("Bearer realm=\"roam-notify admin\""));
        assert_eq!(body["error"], "unauthorized", "{body}");
    }
    (s, body)
}

#[tokio::test]
async fn every_admin_endpoint_needs_the_token_but_healthz() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&with_server(
        &fake,
        dir.path(),
        &format!("admin_token = \"{TOKEN}\""),
    ))
    .await;
    let http = &app.http;
    let silence = json!({"matchers": ["repository.name=x"], "duration": "1h", "comment": "deploy"});
    let endpoints: Vec<(reqwest::Method, &str, Option<Value>)> = vec![
        (reqwest::Method::GET, "/metrics", None),
        (reqwest::Method::GET, "/api/outbox", None),
        (reqwest::Method::GET, "/api/outbox/1", None),
        (reqwest::Method::POST, "/api/outbox/1/retry", None),
        (reqwest::Method::POST, "/api/outbox/retry-dead", None),
        (reqwest::Method::POST, "/api/outbox/1/drop", None),
        (reqwest::Method::GET, "/api/silences", None),
        (
            reqwest::Method::POST,
            "/api/silences",
            Some(silence.clone()),
        ),
        (reqwest::Method::DELETE, "/api/silences/1", None),
        (reqwest::Method::POST, "/-/reload", None),
        (reqwest::Method::POST, "/-/transcripts/run", None),
    ];
    for (method, path, body) in &endpoints {
        let req = |auth: Option<&str>| {
            let mut r = http.request(method.clone(), app.admin_url(path));
            if let Some(b) = body {
                r = r.json(b);
            }
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r
        };
        let (s, _) = status(req(None)).await;
        assert_eq!(s, 401, "{method} {path} without a token");
        let (s, b) = status(req(Some(&format!("Bearer {TOKEN}x")))).await;
        assert_eq!(s, 401, "{method} {path} with a wrong token");
        assert!(
            b["message"].as_str().unwrap().contains("does not match"),
            "{b}"
        );
        let (s, _) = status(req(Some("Basic YWRtaW46eA=="))).await;
        assert_eq!(s, 401, "{method} {path} with Basic");
        let (s, b) = status(req(Some(&format!("Bearer {TOKEN}")))).await;
        assert_ne!(s, 401, "{method} {path} with the token: {b}");
    }
    // Only the request with the token added a silence (then expired it).
    let (s, b) = status(
        http.get(app.admin_url("/api/silences?all=true"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["silences"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["silences"][0]["expired"], true, "{b}");
    // Probes stay open.
    let r = http.get(app.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        http.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_be_left_open_for_prometheus() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&with_server(
        &fake,
        dir.path(),
        &format!("admin_token = \"{TOKEN}\"\nmetrics_auth = false"),
    ))
    .await;
    let m = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert!(
        m.text()
            .await
            .unwrap()
            .contains("roam_notify_config_reloads_total")
    );
    let (s, _) = status(app.http.get(app.admin_url("/api/outbox"))).await;
    assert_eq!(s, 401, "the operator API still needs the token");
    app.stop().await;
}

#[test]
fn a_reachable_admin_listener_needs_a_token_or_an_explicit_none() {
    let base = |server: &str| {
        test_config("http://127.0.0.1:9", std::path::Path::new("/tmp/x.db"), "")
            .replace("admin_listen = \"127.0.0.1:0\"", server)
    };
    let e = roam_notify::config::Config::from_toml_str(
        &base("admin_listen = \"0.0.0.0:9090\""),
        "test.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("server.admin_token")
            && e.contains("admin_listen")
            && e.contains(r#"admin_auth = "none""#),
        "{e}"
    );
    for ok in [
        "admin_listen = \"0.0.0.0:9090\"\nadmin_auth = \"none\"",
        &format!("admin_listen = \"0.0.0.0:9090\"\nadmin_token = \"{TOKEN}\""),
        "admin_listen = \"127.0.0.1:9090\"",
        "admin_listen = \"[::1]:9090\"",
        "admin_listen = \"\"",
    ] {
        roam_notify::config::Config::from_toml_str(&base(ok), "test.toml")
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let e = roam_notify::config::Config::from_toml_str(
        &base(&format!(
            "admin_listen = \"0.0.0.0:9090\"\nadmin_auth = \"none\"\nadmin_token = \"{TOKEN}\""
        )),
        "test.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("server.admin_auth"), "{e}");
}

/// `serve` refuses such a config with exit code 2 and one line naming both keys.
#[test]
fn serve_exits_2_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml");
    std::fs::write(
        &p,
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roam-notify"))
        .args(["serve", "--config"])
        .arg(&p)
        .env_remove("ROAM_NOTIFY_CONFIG")
        .env_remove("ROAM_NOTIFY_ROAM_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&p.display().to_string())
            && err.contains("server.admin_token")
            && err.contains("server.admin_listen"),
        "{err}"
    );
}
