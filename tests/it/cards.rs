//! Cards: every payload of every kind becomes a Block Kit card the fake Roam (which
//! checks Roam's rules independently, `blockkit.rs`) accepts, coloured by outcome.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::sources::{CASES, config_with, headers, now, post, secret_of, written_cases};

/// The header and colour of a card body.
fn header_and_colour(body: &Value) -> (String, Option<String>) {
    let header = body["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "header"))
        .and_then(|b| b["text"]["text"].as_str())
        .unwrap_or("")
        .to_string();
    (header, body["color"].as_str().map(str::to_string))
}

/// Colour by outcome, for the kinds whose payloads say one (event, a word of the
/// header, colour; None: no colour).
const COLOURS: &[(&str, &str, Option<&str>)] = &[
    ("github.workflow_run.completed", "success", Some("good")),
    ("github.workflow_run.completed", "failure", Some("danger")),
    ("github.check_run.completed", "failure", Some("danger")),
    ("github.check_run.completed", "success", Some("good")),
    ("github.pull_request.closed", "Merged", Some("good")),
    ("github.pull_request.opened", "Opened", None),
    ("gitlab.pipeline", "success", Some("good")),
    ("gitlab.pipeline", "failed", Some("danger")),
    ("alertmanager.firing", "FIRING", Some("danger")),
    ("alertmanager.resolved", "RESOLVED", Some("good")),
    ("grafana.firing", "", Some("danger")),
    ("grafana.resolved", "", Some("good")),
    ("pagerduty.incident.triggered", "Triggered", Some("danger")),
    ("pagerduty.incident.resolved", "Resolved", Some("good")),
    ("sentry.issue.created", "New issue", Some("danger")),
    ("sentry.issue.resolved", "Resolved", Some("good")),
    (
        "stripe.invoice.payment_failed",
        "Payment failed",
        Some("danger"),
    ),
    ("hubspot.", "closed won", Some("good")),
    ("hubspot.", "HubSpot deal.creation", None),
    ("buildkite.build.finished.failed", "failed", Some("danger")),
    ("circleci.workflow-completed", "success", Some("good")),
    (
        "datadog.metric_alert_monitor.triggered",
        "Triggered",
        Some("danger"),
    ),
];

#[tokio::test]
async fn every_payload_of_every_kind_is_a_card_roam_accepts_coloured_by_outcome() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config_with(&fake.url, &dir.path().join("t.db"), "card")).await;
    // (event, body) of every message.
    let mut seen: Vec<(String, Value)> = Vec::new();
    for c in CASES {
        let (body, hdrs) = c.request();
        let r = post(&app, c.source, &body, &hdrs).await;
        assert_eq!(r.status(), 202, "{}", c.fixture);
        let reply: Value = r.json().await.unwrap();
        // An alert notification is one message per alert.
        let n = seen.len() + reply["messages"].as_u64().unwrap() as usize;
        wait_for(c.fixture, Duration::from_secs(10), || {
            fake.delivered().len() >= n
        })
        .await;
        let delivered = fake.delivered();
        for d in &delivered[seen.len()..n] {
            seen.push((c.event.to_string(), d.body.clone()));
        }
    }
    for (source, body, signer, extra, event, status, messages, _) in written_cases() {
        let secret = if source == "sf" {
            ""
        } else {
            secret_of(source)
        };
        let mut hdrs = headers(signer, secret, &body, now());
        hdrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = post(&app, source, &body, &hdrs).await;
        assert_eq!(r.status(), status, "{source} {event}");
        let n = seen.len() + messages;
        wait_for(event, Duration::from_secs(10), || {
            fake.delivered().len() >= n
        })
        .await;
        let delivered = fake.delivered();
        for d in &delivered[seen.len()..n] {
            seen.push((event.to_string(), d.body.clone()));
        }
    }
    let mut checked = 0;
    for (event, body) in &seen {
        let text = crate::blockkit::readable(body);
        assert!(body.get("blocks").is_some(), "{event}: not a card: {body}");
        assert!(
            !text.contains("template failed"),
            "{event} fell back:\n{text}"
        );
        let (header, colour) = header_and_colour(body);
        assert!(!header.is_empty(), "{event}: no header: {body}");
        for (e, word, want) in COLOURS {
            let event_matches = event == e || (e.ends_with('.') && event.starts_with(e));
            if event_matches && header.contains(word) {
                assert_eq!(colour.as_deref(), *want, "{event} {header:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "colours checked for {checked} messages");
    // Every request passed the fake's chat.json schema and Block Kit rules (a refused
    // one would have been answered 400 and recorded here).
    fake.assert_all_valid();
    assert!(fake.recorded().iter().all(|r| r.status == 200));
    app.stop().await;
}

/// A route to a generic source, with `route_extra` lines.
fn generic_route(route_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"gen\"\nkind = \"generic\"\nauth = \"none\"\n\n[[routes]]\nname = \"gen\"\nsource = \"gen\"\nto = \"{CHAT_A}\"\n{route_extra}\n"
    )
}

async fn post_json(app: &TestApp, source: &str, body: Value) -> Value {
    let r = app
        .http
        .post(app.url(&format!("/hooks/{source}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// 900 numbered lines: far over one card.
fn long_text() -> (Vec<String>, String) {
    let lines: Vec<String> = (0..900)
        .map(|i| format!("line {i:04} {}", "é".repeat(8)))
        .collect();
    let text = lines.join("\n");
    (lines, text)
}

#[tokio::test]
async fn an_oversize_card_is_cut_to_roams_limits_with_a_note() {
    let (app, fake, _dir) = app_with(&generic_route("")).await;
    let (_, text) = long_text();
    post_json(&app, "gen", serde_json::json!({"title": "Nightly report", "text": text, "url": "https://ci.example/r/1"})).await;
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let body = &fake.delivered()[0].body;
    let blocks = body["blocks"].as_array().unwrap();
    assert!(body.to_string().len() <= 8000);
    assert_eq!(blocks[0]["text"]["text"], "Nightly report");
    let shown = crate::blockkit::readable(body);
    assert!(shown.contains("line 0000"), "{shown}");
    assert!(shown.contains("more lines not shown"), "{shown}");
    // The button and context survive the cut.
    assert!(shown.contains("Open https://ci.example/r/1"), "{shown}");
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn an_oversize_card_with_long_thread_continues_in_its_thread() {
    let (app, fake, _dir) = app_with(&generic_route("long = \"thread\"")).await;
    let (lines, text) = long_text();
    let reply = post_json(
        &app,
        "gen",
        serde_json::json!({"title": "Nightly report", "text": text}),
    )
    .await;
    let n = reply["messages"].as_u64().unwrap() as usize;
    assert!(n >= 2, "{reply}");
    wait_for("all parts", Duration::from_secs(10), || {
        fake.delivered().len() == n
    })
    .await;
    let sent = fake.delivered();
    assert!(
        sent[0].body.get("blocks").is_some(),
        "the first part is the card"
    );
    let key = sent[0].body["threadKey"].as_str().unwrap();
    for r in &sent {
        assert_eq!(r.body["threadKey"], key, "every part in the card's thread");
    }
    let all = fake.texts().concat();
    for l in &lines {
        assert!(all.contains(l.as_str()), "{l} lost");
    }
    assert!(!all.contains("not shown"), "nothing cut when threading");
    fake.assert_all_valid();
    app.stop().await;
}

/// A user's own card next to a text template, from the templates directory: parts are
/// Handlebars, assembled, escaped and cut by roam-notify; a non-http(s) URL is dropped.
#[tokio::test]
async fn a_custom_card_template_and_a_text_template_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates/deploys");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("card.card.toml"),
        r#"
header = "🚀 {{service}} {{version}} to {{env}}: {{status}}"
color = "{{outcome status}}"
text = "Deployed by **{{who}}**"
fields = [
  { label = "Version", value = "`{{version}}`" },
  { label = "Ticket", value = "{{ticket}}" },
]
context = ["{{_event.source}}", "{{env}}"]
buttons = [
  { label = "View logs", url = "{{logs}}" },
  { label = "Evil", url = "javascript:alert(1)" },
  { label = "Rollback", url = "{{rollback}}" },
]
"#,
    )
    .unwrap();
    std::fs::write(
        templates.join("text.hbs"),
        "{{service}} {{version}} is {{status}}",
    )
    .unwrap();
    let extra = format!(
        r#"
[templates]
dir = "{}"
{}
template = "deploys/card"

[[routes]]
name = "as-text"
source = "gen"
to = "{CHAT_B}"
template = "deploys/text"
"#,
        dir.path().join("templates").display(),
        generic_route("continue = true"),
    );
    let (app, fake, _dir2) = app_with(&extra).await;
    post_json(
        &app,
        "gen",
        serde_json::json!({"service": "api", "version": "1.2.3", "env": "prod", "status": "failed",
            "who": "ann_*b*", "logs": "https://logs.example/api?x=1&y=2"}),
    )
    .await;
    wait_for("two messages", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    let sent = fake.delivered();
    let card = &sent.iter().find(|r| r.body["chat"] == CHAT_A).unwrap().body;
    assert_eq!(card["color"], "danger");
    assert_eq!(
        card["blocks"][0]["text"]["text"],
        "🚀 api 1.2.3 to prod: failed"
    );
    assert_eq!(
        card["blocks"][1]["text"]["text"],
        r"Deployed by **ann\_\*b\***"
    );
    // The ticket field and the rollback button name fields this payload lacks: left out.
    assert_eq!(card["blocks"][2]["text"]["text"], "**Version:** `1.2.3`");
    let buttons = card["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    let buttons = buttons["elements"].as_array().unwrap();
    assert_eq!(
        buttons.len(),
        1,
        "javascript: and the missing URL are dropped: {buttons:?}"
    );
    assert_eq!(buttons[0]["url"], "https://logs.example/api?x=1&y=2");
    let text = &sent.iter().find(|r| r.body["chat"] == CHAT_B).unwrap().body;
    assert_eq!(text["text"], "api 1.2.3 is failed");
    fake.assert_all_valid();
    // A card whose header fails falls back to the plain form, logged and counted.
    post_json(&app, "gen", serde_json::json!({"version": "2"})).await;
    wait_for("the fallback", Duration::from_secs(10), || {
        fake.delivered().len() == 4
    })
    .await;
    let fallback = &fake
        .delivered()
        .iter()
        .rev()
        .find(|r| r.body["chat"] == CHAT_A)
        .unwrap()
        .body
        .clone();
    assert!(
        fallback["text"]
            .as_str()
            .unwrap()
            .contains("the message template failed: template deploys/card: header"),
        "{fallback}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roam_notify_template_render_errors_total{route=\"gen\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// A CI run edited in place: running (no colour) then failed (red), the same message.
#[tokio::test]
async fn an_updated_card_changes_colour_in_place() {
    let extra = format!("{ROUTE_ALL_GITHUB}update = true\n");
    let (app, fake, _dir) = app_with(&extra).await;
    let done = fixture_data("github.workflow_run.completed.failure.json");
    let mut running: Value = serde_json::from_slice(&done).unwrap();
    running["action"] = "in_progress".into();
    running["workflow_run"]["status"] = "in_progress".into();
    running["workflow_run"]["conclusion"] = Value::Null;
    let running = serde_json::to_vec(&running).unwrap();
    assert_eq!(
        app.github("workflow_run", "run-1", &running, SECRET)
            .await
            .status(),
        202
    );
    wait_for("the first card", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let first = fake.delivered()[0].body.clone();
    assert!(
        first.get("color").is_none(),
        "running has no colour: {first}"
    );
    assert!(
        first["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("🔄 Workflow CI in_progress"),
        "{first}"
    );
    assert_eq!(
        app.github("workflow_run", "run-2", &done, SECRET)
            .await
            .status(),
        202
    );
    wait_for("the update", Duration::from_secs(10), || {
        fake.updates().len() == 1
    })
    .await;
    let update = &fake.updates()[0].body;
    assert_eq!(update["color"], "danger");
    assert!(
        update.get("text").is_none(),
        "a card stays a card: {update}"
    );
    assert!(
        update["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("❌ Workflow CI failure"),
        "{update}"
    );
    assert_eq!(fake.delivered().len(), 1, "edited, not posted again");
    fake.assert_all_valid();
    app.stop().await;
}

fn fixture_data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// Dry-run (no key) logs each card as it reads: header, text, context and buttons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_logs_the_card_readably() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace(&format!("api_key = \"{KEY}\"\n"), "");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, toml).unwrap();
    let log = dir.path().join("daemon.log");
    let d = Daemon::start(&config, free_port(), &log, &[]).await;
    let body = fixture("github/push.new-branch.json");
    assert_eq!(d.github("push", "dry-1", &body).await, 202);
    wait_for("the dry-run line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("dry-run: would post"))
    })
    .await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("**⬆️ Codertocat pushed 1 commit to master**"),
        "{logged}"
    );
    assert!(
        logged.contains("[Compare changes](https://github.com/"),
        "{logged}"
    );
    assert!(fake.recorded().is_empty(), "dry-run must not call Roam");
    d.kill9();
}

/// docs/cards.json holds the card each built-in card template makes of its sample, as
/// Roam receives it. This test fails when it is stale; `UPDATE_DOCS=1 cargo test
/// docs_cards` rewrites it.
#[test]
fn docs_cards_json_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = Vec::new();
    let mut stack = vec![root.join("templates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(stem) = p.to_str().unwrap().strip_suffix(".card.toml") {
                let name = stem
                    .strip_prefix(root.join("templates/").to_str().unwrap())
                    .unwrap();
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    let mut cards = serde_json::Map::new();
    for name in &names {
        let out = bin()
            .args(["render", "--json", "-t", name, "-p"])
            .arg(root.join(format!("templates/{name}.sample.json")))
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(crate::blockkit::errors(&body).is_empty(), "{name}: {body}");
        cards.insert(name.clone(), body);
    }
    let json = serde_json::to_string_pretty(&Value::Object(cards)).unwrap() + "\n";
    let path = root.join("docs/cards.json");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &json).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == json,
        "docs/cards.json is stale: run UPDATE_DOCS=1 cargo test docs_cards"
    );
}

/// Any payload, through every built-in card template, gives a card Roam takes: the
/// samples with their text replaced by arbitrary text (markdown, mentions, quotes,
/// multi-byte characters, up to 4,000 bytes) and their lists repeated up to 300 times.
mod any_payload {
    use proptest::prelude::*;
    use roam_notify::compose::{Addressing, outbox_messages};
    use roam_notify::render::{EventMeta, Format, Templates, event_context};
    use serde_json::Value;

    fn mutate(v: &mut Value, texts: &[String], n: &mut usize, repeat: usize) {
        match v {
            Value::String(s) => {
                // Keep URLs as URLs half the time, so buttons are exercised too.
                if !(s.starts_with("http") && n.is_multiple_of(2)) {
                    *s = texts[*n % texts.len()].clone();
                }
                *n += 1;
            }
            Value::Array(a) => {
                if let Some(first) = a.first().cloned() {
                    a.extend(std::iter::repeat_n(first, repeat));
                }
                a.iter_mut().for_each(|x| mutate(x, texts, n, 0));
            }
            Value::Object(o) => o.values_mut().for_each(|x| mutate(x, texts, n, repeat)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn any_payload_yields_a_card_within_roams_limits(
            texts in proptest::collection::vec("[a-z *_`<>@!#|\\[\\]()\"\\\\\n é日😀]{0,4000}", 1..6),
            repeat in 0usize..300,
            split in any::<bool>(),
        ) {
            let t = Templates::builtin().unwrap();
            let names: Vec<String> = t
                .names()
                .filter(|(_, i)| i.card.is_some() && i.sample_text.is_some())
                .map(|(n, _)| n.clone())
                .collect();
            for name in names {
                let info = t.names().find(|(n, _)| **n == name).unwrap().1;
                let mut payload = info.sample().unwrap();
                let kind = name.split('/').next().unwrap();
                let mut n = 0;
                mutate(&mut payload, &texts, &mut n, repeat);
                roam_notify::inbound::prepare_sample(kind, &mut payload);
                let event = name.replacen('/', ".", 1);
                let meta = EventMeta { name: &event, source: "p", kind, delivery_id: "d", entity: Some("e") };
                let rendered = t.render_event(&name, Format::Card, &meta, &event_context(&meta, payload));
                let to = ["G-1".to_string()];
                let mentions = ["all".to_string()];
                let a = Addressing {
                    route: "r", to: &to, mentions: &mentions, split_long: split,
                    thread: false, update: true, entity: Some("e"), split_seed: "s",
                };
                for m in outbox_messages(&a, &rendered.content, rendered.error.as_deref()) {
                    let body: Value = serde_json::from_str(&m.request).unwrap();
                    let errors = crate::blockkit::errors(&body);
                    prop_assert!(errors.is_empty(), "{name}: {errors:?}\n{body}");
                    // Roam's cap: a card's whole body (checked by `errors`), a text's text.
                    if let Some(text) = body["text"].as_str() {
                        prop_assert!(text.len() <= 8000, "{name}: text of {} bytes", text.len());
                    }
                }
            }
        }
    }
}
