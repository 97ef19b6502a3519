//! Payloads built in part (`roam_notify::reads`): a source builds only what its parser,
//! routes and templates read, and what it sends is what the whole payload sends.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::sources::{CASES, config_with, headers, now, post, secret_of, written_cases};

/// A card route, a text route with a condition, and a target expression: every built-in
/// GitHub template and both forms of each.
const ROUTES: &str = r#"
[[routes]]
name = "cards"
source = "github"
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
continue = true

[[routes]]
name = "texts"
source = "github"
format = "text"
when = { field = "repository.name", exists = true }
to = "{{#if sender.login}}C-11111111-2222-4333-8444-555555555555{{/if}}"
"#;

/// A route that holds events (it never matches): its source builds payloads whole.
const HELD: &str = r#"
[[routes]]
name = "held"
source = "github"
events = ["github.never"]
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
group_by = []
group_wait = "1s"
"#;

fn reads_in_part(toml: &str) -> bool {
    sources_in_part(toml, &["github"]) == [true]
}

/// Per source, whether its payloads are built in part.
fn sources_in_part(toml: &str, sources: &[&str]) -> Vec<bool> {
    let cfg = roam_notify::config::Config::from_toml_str(toml, "t.toml").unwrap();
    let pipeline = roam_notify::ingest::Pipeline::compile(&cfg, Default::default()).unwrap();
    sources
        .iter()
        .map(|s| pipeline.reads(s).is_some())
        .collect()
}

/// Every GitHub fixture but `ping`, with the event its file name starts with.
fn github_fixtures() -> Vec<(String, String, Vec<u8>)> {
    let dir = test_files().join("fixtures/github");
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let event = stem.split('.').next().unwrap().to_string();
        if event != "ping" {
            out.push((event, stem.to_string(), fixture(&format!("github/{name}"))));
        }
    }
    out.sort();
    out
}

fn posted(fake: &FakeRoam) -> Vec<Value> {
    let mut bodies: Vec<Value> = fake.delivered().into_iter().map(|r| r.body).collect();
    bodies.sort_by_key(|b| b.to_string());
    bodies
}

#[tokio::test]
async fn a_source_building_only_what_it_reads_sends_what_the_whole_payload_sends() {
    let (part, part_roam, _d1) = app_with(ROUTES).await;
    let (whole, whole_roam, _d2) = app_with(&format!("{ROUTES}{HELD}")).await;
    let probe = |extra: &str| test_config("http://127.0.0.1:9", "/tmp/x.db".as_ref(), extra);
    assert!(
        reads_in_part(&probe(ROUTES)),
        "the first daemon builds in part"
    );
    assert!(!reads_in_part(&probe(&format!("{ROUTES}{HELD}"))));

    let fixtures = github_fixtures();
    assert!(fixtures.len() >= 12, "{} fixtures", fixtures.len());
    for (event, delivery, body) in &fixtures {
        for app in [&part, &whole] {
            let r = app.github(event, delivery, body, SECRET).await;
            assert_eq!(r.status(), 202, "{delivery}");
        }
    }
    let sent = same_messages(&part_roam, &whole_roam, fixtures.len() * 2, "").await;
    assert!(sent >= fixtures.len());
}

/// Waits for `want` messages to reach each fake Roam, and checks they are the same
/// (in any order) and valid. Returns how many.
async fn same_messages(part: &FakeRoam, whole: &FakeRoam, want: usize, what: &str) -> usize {
    wait_for(
        "every message to reach both",
        Duration::from_secs(20),
        || part.delivered().len() >= want && whole.delivered().len() >= want,
    )
    .await;
    let (a, b) = (posted(part), posted(whole));
    assert_eq!(a.len(), want, "{what}");
    assert_eq!(a, b, "{what}");
    part.assert_all_valid();
    a.len()
}

/// One request to post: its source, body and headers, and what to call it.
type Send = (&'static str, Vec<u8>, Vec<(String, String)>, String);

/// The sources of `sources.rs` whose kinds list the fields their parsers read.
const READING: &[&str] = &[
    "github",
    "gl",
    "gl-signed",
    "pd",
    "sentry",
    "circle",
    "stripe",
    "jenkins",
    "bk",
    "bk-signed",
];

/// Every fixture of every kind, to a daemon whose reading sources build in part and to
/// one where a held route (which never matches) on each makes them build whole: in
/// both forms, Roam receives the same messages.
#[tokio::test]
async fn every_kind_that_builds_only_what_it_reads_sends_what_the_whole_payload_sends() {
    let held: String = READING
        .iter()
        .map(|s| {
            format!(
                "\n[[routes]]\nname = \"held-{s}\"\nsource = \"{s}\"\nevents = [\"never\"]\n\
                 to = \"{CHAT_A}\"\ngroup_by = []\ngroup_wait = \"1s\"\n"
            )
        })
        .collect();
    for format in ["card", "text"] {
        let dir = tempfile::tempdir().unwrap();
        let (part_roam, whole_roam) = (FakeRoam::start().await, FakeRoam::start().await);
        let part_cfg = config_with(&part_roam.url, &dir.path().join("part.db"), format);
        let whole_cfg = config_with(&whole_roam.url, &dir.path().join("whole.db"), format) + &held;
        let in_part = sources_in_part(&part_cfg, READING);
        assert!(
            in_part.iter().all(|p| *p),
            "{format}: {READING:?} {in_part:?}"
        );
        assert!(sources_in_part(&whole_cfg, READING).iter().all(|p| !p));
        let part = TestApp::spawn(&part_cfg).await;
        let whole = TestApp::spawn(&whole_cfg).await;
        // Every published fixture, then the payloads written for senders without one.
        let mut sends: Vec<Send> = Vec::new();
        for c in CASES {
            let (body, hdrs) = c.request();
            sends.push((c.source, body, hdrs, c.fixture.to_string()));
        }
        for (source, body, signer, extra, event, status, ..) in written_cases() {
            if status != 202 || source == "sf" {
                continue;
            }
            let mut hdrs = headers(signer, secret_of(source), &body, now());
            hdrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            sends.push((source, body, hdrs, format!("{source} {event}")));
        }
        let mut want = 0;
        for (source, body, hdrs, what) in &sends {
            let mut messages = Vec::new();
            for app in [&part, &whole] {
                let r = post(app, source, body, hdrs).await;
                assert_eq!(r.status(), 202, "{format} {what}");
                messages.push(r.json::<Value>().await.unwrap()["messages"].clone());
            }
            assert_eq!(messages[0], messages[1], "{format} {what}");
            want += messages[0].as_u64().unwrap_or_default() as usize;
        }
        let sent = same_messages(&part_roam, &whole_roam, want, format).await;
        assert!(sent >= sends.len(), "{format}: {sent} messages");
        part.stop().await;
        whole.stop().await;
    }
}

#[tokio::test]
async fn a_template_that_fails_when_sent_shows_what_was_read_in_its_fallback() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join("broken.hbs"), "{{missing.field}}\n").unwrap();
    let extra = format!(
        "[templates]\ndir = \"{}\"\n[[routes]]\nname = \"r\"\nsource = \"github\"\n\
         template = \"broken\"\nformat = \"text\"\nto = \"{CHAT_A}\"\n",
        templates.path().display()
    );
    let probe = test_config("http://127.0.0.1:9", "/tmp/x.db".as_ref(), &extra);
    assert!(reads_in_part(&probe));
    let (app, fake, _dir) = app_with(&extra).await;
    let r = app
        .github("push", "d-1", &fixture("github/push.json"), SECRET)
        .await;
    assert_eq!(r.status(), 202);
    wait_for("the fallback", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let text = fake.delivered()[0].body["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("the message template failed"), "{text}");
    assert!(text.contains("missing.field"), "{text}");
    // Rendered when sent, from what was stored: the fields read (here for the entity
    // key), said to be only those. Nothing reads `before`, so it is not there.
    assert!(
        text.contains("shown: the fields the configuration reads"),
        "{text}"
    );
    assert!(text.contains("\"full_name\""), "{text}");
    assert!(!text.contains("\"before\""), "{text}");
}

/// `pusher.email` is read by no route or template of `ROUTE_ALL_GITHUB`: only a silence.
const EMAIL: &str = "21031067+Codertocat@users.noreply.github.com";

async fn push_quiet(app: &TestApp, delivery: &str) -> Value {
    let r = app
        .github("push", delivery, &fixture("github/push.json"), SECRET)
        .await;
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["quiet"].clone()
}

#[tokio::test]
async fn silences_see_the_fields_they_read() {
    // A configured silence's fields are read with the routes'.
    let extra = format!(
        "{ROUTE_ALL_GITHUB}\n[[silences]]\ncomment = \"c\"\nends = \"2999-01-01T00:00:00Z\"\n\
         match = {{ \"pusher.email\" = \"{EMAIL}\" }}\n"
    );
    let probe = test_config("http://127.0.0.1:9", "/tmp/x.db".as_ref(), &extra);
    assert!(reads_in_part(&probe));
    let (app, _roam, _dir) = app_with(&extra).await;
    let quiet = push_quiet(&app, "c-1").await;
    assert!(
        quiet[0]
            .as_str()
            .unwrap_or_default()
            .contains("config silences[0]"),
        "{quiet}"
    );

    // A stored silence's fields are not known when the pipeline is built: while one
    // has conditions on the payload, payloads are built whole, and it applies at once.
    let (app, _roam, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    assert!(push_quiet(&app, "s-0").await.is_null());
    let r = reqwest::Client::new()
        .post(app.admin_url("/api/silences"))
        .json(&serde_json::json!({
            "matchers": [format!("pusher.email={EMAIL}")],
            "source": "github",
            "duration": "1h",
            "comment": "by email",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let quiet = push_quiet(&app, "s-1").await;
    assert!(
        quiet[0].as_str().unwrap_or_default().contains("(by email)"),
        "{quiet}"
    );
}
