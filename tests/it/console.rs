//! The browser console on the admin listener, over HTTP: sign-in and its cookie, CSRF
//! and cross-site refusals, the open console's warning, escaping of payload values,
//! and paging. `console_browser.rs` drives the same pages in a real Chromium.

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use roam_notify::config::{Config, Secret};

use crate::helpers::*;

pub const TOKEN: &str = "console-test-token-5d1f";

/// A daemon whose admin listener needs `token` (None: loopback-only, open console),
/// believing 127.0.0.1 as a proxy, with a fake Roam.
pub async fn console_app(token: Option<&str>) -> (TestApp, FakeRoam, tempfile::TempDir) {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB);
    let mut cfg = Config::from_toml_str(&toml, "test.toml").unwrap();
    cfg.server.admin_token = token.map(Secret::new);
    cfg.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    (TestApp::start_config(cfg).await, fake, dir)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// GETs a console page, with a session cookie (`name=value`) when given.
async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = client().get(app.admin_url(path));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.unwrap()
}

/// Signs in and returns the `name=value` cookie to send back.
async fn sign_in(app: &TestApp, http: &reqwest::Client, headers: &[(&str, &str)]) -> String {
    let mut req = http
        .post(app.admin_url("/sign-in"))
        .form(&[("token", TOKEN), ("next", "/outbox")]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/outbox");
    r.headers()[SET_COOKIE].to_str().unwrap().to_string()
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf field")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session() {
    let (app, _roam, _dir) = console_app(Some(TOKEN)).await;
    let http = client();

    let r = get(&app, "/outbox?status=dead", None).await;
    assert_eq!(r.status(), 303, "not signed in");
    assert_eq!(
        r.headers()[LOCATION],
        "/sign-in?next=%2Foutbox%3Fstatus%3Ddead"
    );
    let page = get(&app, "/sign-in", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("type=\"password\""));

    let wrong = http
        .post(app.admin_url("/sign-in"))
        .form(&[("token", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 303);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(
        wrong.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("failed=1")
    );

    let cookie = sign_in(&app, &http, &[]).await;
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(part), "{part} missing in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP, no proxy: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = get(&app, "/", Some(&pair)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Overview</h1>") && html.contains("Sign out"));
    assert!(!html.contains("Open console"));

    // The JSON API still wants the bearer token, not the cookie.
    let api = get(&app, "/api/outbox", Some(&pair)).await;
    assert_eq!(api.status(), 401);

    let out = http
        .post(app.admin_url("/sign-out"))
        .header(COOKIE, &pair)
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get(&app, "/", Some(&pair)).await;
    assert_eq!(after.status(), 303, "the old cookie no longer admits");
    app.stop().await;
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_tls_proxy() {
    let (app, _roam, _dir) = console_app(Some(TOKEN)).await;
    let cookie = sign_in(&app, &client(), &[("x-forwarded-proto", "https")]).await;
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_change_nothing() {
    let (app, roam, _dir) = console_app(Some(TOKEN)).await;
    let http = client();
    roam.script([Reply::Status(403, Some("bot is not a member of this chat"))]);
    app.push_accepted("csrf-1").await;
    app.wait_ready(|r| r["outbox"]["dead"] == 1).await;
    let pair = sign_in(&app, &http, &[])
        .await
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = get(&app, "/outbox?status=dead", Some(&pair))
        .await
        .text()
        .await
        .unwrap();
    let token = csrf_of(&html);

    let post = |form: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut r = http
            .post(app.admin_url("/outbox/retry-dead"))
            .header(COOKIE, &pair)
            .form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let missing = post(vec![], None).await.unwrap();
    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("security token"));
    let stale = post(vec![("csrf", "0".repeat(64))], None).await.unwrap();
    assert_eq!(stale.status(), 403);
    let cross = post(vec![("csrf", token.clone())], Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "a valid token from another site");
    assert_eq!(app.readyz().await["outbox"]["dead"], 1, "nothing re-queued");

    let origin = format!("http://{}", app.admin.unwrap());
    let ok = http
        .post(app.admin_url("/outbox/retry-dead"))
        .header(COOKIE, &pair)
        .header("origin", origin)
        .form(&[("csrf", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()[LOCATION], "/outbox?notice=retried-1");
    wait_for("the re-queued message", Duration::from_secs(5), || {
        roam.delivered().len() == 1
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_open_console_says_so_on_every_page_and_still_wants_csrf() {
    let (app, _roam, _dir) = console_app(None).await;
    let http = client();
    for path in [
        "/",
        "/outbox",
        "/silences",
        "/routing",
        "/routing/explain",
        "/transcripts",
    ] {
        let r = get(&app, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("Open console."), "{path} lacks the warning");
        assert!(!html.contains("Sign out"), "{path}");
    }
    let r = http
        .post(app.admin_url("/silences"))
        .form(&[
            ("source", "github"),
            ("duration", "1h"),
            ("comment", "x"),
            ("action", "add"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "open, but not to forged forms");
    app.stop().await;
}

#[tokio::test]
async fn payload_values_are_escaped_in_the_outbox() {
    let (app, roam, _dir) = console_app(None).await;
    roam.script([Reply::Status(403, Some("<b>not a member</b>"))]);
    let body = String::from_utf8(fixture("github/issues.opened.json"))
        .unwrap()
        .replace(
            "Spelling error in the README file",
            "<script>window.__xss=1</script><img src=x onerror=\\\"window.__xss=1\\\">",
        );
    assert!(
        body.contains("<script>"),
        "the fixture's issue title was replaced"
    );
    let r = app.github("issues", "xss-1", body.as_bytes(), SECRET).await;
    assert_eq!(r.status(), 202);
    app.wait_ready(|r| r["outbox"]["dead"] == 1).await;
    let list = get(&app, "/outbox", None).await.text().await.unwrap();
    assert!(list.contains("&lt;b&gt;not a member&lt;/b&gt;"), "{list}");
    let id = list
        .split("href=\"/outbox/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let html = get(&app, &format!("/outbox/{id}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<img src=x"),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_outbox_pages_back_by_id_and_filters() {
    let (app, roam, _dir) = console_app(None).await;
    roam.set_down(true);
    for n in 0..55 {
        app.push_accepted(&format!("page-{n}")).await;
    }
    let outbox = |q: String| {
        let app = &app;
        async move {
            let path = format!("/outbox{q}");
            get(app, &path, None).await.text().await.unwrap()
        }
    };
    let ids = |html: &str| -> Vec<i64> {
        html.split("<td><a href=\"/outbox/")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect()
    };
    let first = outbox("?status=pending".into()).await;
    let page1 = ids(&first);
    assert_eq!(page1.len(), 50);
    assert!(page1.windows(2).all(|w| w[0] > w[1]), "newest first");
    let older = first
        .split("href=\"")
        .find(|s| s.contains("before="))
        .and_then(|s| s.split('"').next())
        .expect("an Older link")
        .replace("&amp;", "&");
    let page2 = ids(&outbox(older.trim_start_matches("/outbox").to_string()).await);
    assert_eq!(page2.len(), 5);
    assert!(page2[0] < *page1.last().unwrap());
    assert_eq!(
        ids(&outbox("?route=all-github&source=github".into()).await).len(),
        50
    );
    assert!(ids(&outbox("?chat=G-none".into()).await).is_empty());
    let bad = get(&app, "/outbox?status=weird", None).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("unknown status"));
    app.stop().await;
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), "");
    let mut cfg = Config::from_toml_str(&toml, "test.toml").unwrap();
    cfg.server.console = false;
    let app = TestApp::start_config(cfg).await;
    let r = client().get(app.admin_url("/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        client()
            .get(app.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn a_silence_is_checked_as_the_cli_checks_it() {
    let (app, _roam, _dir) = console_app(None).await;
    let http = client();
    let html = get(&app, "/silences", None).await.text().await.unwrap();
    let csrf = csrf_of(&html);
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
        http.post(app.admin_url("/silences")).form(&form).send()
    };
    let bad = post(vec![
        ("matchers", "labels.team=~(unclosed"),
        ("duration", "1h"),
        ("comment", "x"),
        ("action", "add"),
    ])
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let text = bad.text().await.unwrap();
    assert!(
        text.contains("Not added:") && text.contains("regex"),
        "{text}"
    );
    assert!(
        text.contains("labels.team=~(unclosed"),
        "the form keeps what was typed"
    );
    let everything = post(vec![
        ("duration", "1h"),
        ("comment", "x"),
        ("action", "add"),
    ])
    .await
    .unwrap();
    assert_eq!(everything.status(), 400);
    assert!(
        everything
            .text()
            .await
            .unwrap()
            .contains("would silence everything")
    );
    let ok = post(vec![
        ("matchers", "repository.name=Hello-World"),
        ("source", "github"),
        ("duration", "30m"),
        ("comment", "deploy freeze"),
        ("action", "add"),
    ])
    .await
    .unwrap();
    assert_eq!(ok.status(), 303);
    let page = get(&app, ok.headers()[LOCATION].to_str().unwrap(), None).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("added; it applies now") && html.contains("deploy freeze"));
    // It applies at once: a matching push is silenced.
    let r: serde_json::Value = app
        .github("push", "frozen-1", &fixture("github/push.json"), SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["messages"], 0, "{r}");
    app.stop().await;
}
