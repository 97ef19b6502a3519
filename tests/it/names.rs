//! Names instead of ids: `#Name` chats, people by email, destinations from the payload,
//! checked at start and by `check`, cached durably, resolved late when they must be.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chats::chats;
use crate::helpers::*;
use crate::sources::{Signer, headers, now, post};

const DEPLOYS: &str = "G-33333333-3333-4333-8333-333333333333";
const ANN: &str = "U-aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const OCTO: &str = "U-bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

fn fake_with_directory(fake: &FakeRoam) {
    fake.set_chats(chats(), 2);
    fake.add_user("ann@example.com", ANN);
    fake.add_user("codertocat@example.com", OCTO);
}

async fn dead_letters(app: &TestApp) -> Vec<Value> {
    let list: Value = reqwest::get(app.admin_url("/api/outbox?status=dead"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_route_to_a_name_posts_to_that_chat_and_an_email_dms_and_mentions_the_person() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    let dir = tempfile::tempdir().unwrap();
    let extra = r##"
[destinations]
deploys = "#deploys"

[[routes]]
name = "named"
source = "github"
to = ["deploys", "Ann@Example.com"]
mentions = ["ann@example.com"]
"##;
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), extra)).await;
    app.push_accepted("n1").await;
    wait_for("two messages", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    let chats: Vec<String> = fake
        .delivered()
        .iter()
        .map(|r| r.body["chat"].as_str().unwrap().to_string())
        .collect();
    assert!(
        chats.contains(&DEPLOYS.to_string()),
        "#deploys (case-insensitive) is its group: {chats:?}"
    );
    assert!(
        chats.contains(&ANN.to_string()),
        "the email is the person: {chats:?}"
    );
    let section = fake.delivered()[0].body["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(section.starts_with(&format!("<@{ANN}> ")), "{section}");
    // Resolved at start: the request path asked Roam nothing.
    assert_eq!(fake.calls("user.lookup").len(), 1, "one lookup, at start");
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn destinations_from_the_payload_with_fallback_and_dead_letters() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    fake.add_user("billing@acme.example", ANN);
    let dir = tempfile::tempdir().unwrap();
    let extra = r##"
[[sources]]
name = "stripe"
kind = "stripe"
secret = "whsec_test"

[[routes]]
name = "authors"
source = "github"
events = ["github.pull_request.*"]
to = "{{pull_request.user.login}}@example.com"

[[routes]]
name = "pushers"
source = "github"
events = ["github.push"]
to = "{{head_commit.author.email}}"
fallback = "#Sales Team"

[[routes]]
name = "billing"
source = "stripe"
to = "{{data.object.customer_email}}"
"##;
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), extra)).await;
    // A GitHub pull request: its author, by the email the expression makes.
    let pr = fixture("github/pull_request.opened.json");
    assert_eq!(
        app.github("pull_request", "p1", &pr, SECRET).await.status(),
        202
    );
    wait_for("the author's DM", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    assert_eq!(fake.delivered()[0].body["chat"], OCTO);
    assert!(!fake.calls("user.lookup").is_empty(), "looked up when sent");
    // A push whose expression yields nothing: the fallback, a #Name.
    let mut push: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    push["head_commit"] = Value::Null;
    let push = serde_json::to_vec(&push).unwrap();
    assert_eq!(app.github("push", "p2", &push, SECRET).await.status(), 202);
    wait_for("the fallback", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    assert_eq!(
        fake.delivered()[1].body["chat"],
        "G-c6040d77-a61c-4834-a939-fe3e687ffd72"
    );
    // Stripe: the invoice's customer email (Stripe's invoice.customer_email).
    let mut invoice: Value =
        serde_json::from_slice(&fixture("stripe/invoice.payment_failed.zulip.json")).unwrap();
    invoice["data"]["object"]["customer_email"] = json!("billing@acme.example");
    let body = serde_json::to_vec(&invoice).unwrap();
    let hdrs = headers(Signer::Stripe, "whsec_test", &body, now());
    assert_eq!(post(&app, "stripe", &body, &hdrs).await.status(), 202);
    wait_for("the billing DM", Duration::from_secs(10), || {
        fake.delivered().len() == 3
    })
    .await;
    assert_eq!(fake.delivered()[2].body["chat"], ANN);
    // No customer email and no fallback: a dead letter that says so, never dropped.
    invoice["data"]["object"]["customer_email"] = Value::Null;
    invoice["id"] = json!("evt_no_email");
    let body = serde_json::to_vec(&invoice).unwrap();
    let hdrs = headers(Signer::Stripe, "whsec_test", &body, now());
    assert_eq!(post(&app, "stripe", &body, &hdrs).await.status(), 202);
    // An email nobody in Roam has: a dead letter naming it.
    let mut pr2: Value = serde_json::from_slice(&pr).unwrap();
    pr2["pull_request"]["user"]["login"] = json!("nobody");
    let pr2 = serde_json::to_vec(&pr2).unwrap();
    assert_eq!(
        app.github("pull_request", "p3", &pr2, SECRET)
            .await
            .status(),
        202
    );
    app.wait_ready(|r| r["outbox"]["dead"] == 2).await;
    let dead = dead_letters(&app).await;
    let reasons: Vec<&str> = dead
        .iter()
        .map(|d| d["last_error"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(
            |r| r.starts_with("no destination: {{data.object.customer_email}} yielded nothing")
        ),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no Roam user has the email nobody@example.com")),
        "{reasons:?}"
    );
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn a_cached_name_survives_a_restart_while_roam_is_down() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(
        &fake.url,
        &dir.path().join("t.db"),
        "[[routes]]\nname = \"named\"\nsource = \"github\"\nto = \"#Deploys\"\n",
    );
    let app = TestApp::spawn(&toml).await;
    app.stop().await;
    // Roam's chat.list and user.lookup are down; posting works.
    fake.set_directory_down(true);
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("c1").await;
    wait_for("the message", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    assert_eq!(fake.delivered()[0].body["chat"], DEPLOYS);
    assert!(
        fake.calls("chat.list").iter().any(|c| c.status == 503),
        "Roam was asked and was down"
    );
    app.stop().await;
}

/// `check` asks Roam about every name and email: unknown and ambiguous names fail with
/// the closest names or the matches; without a key it says it skipped them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_unknown_and_ambiguous_names_with_candidates() {
    let fake = FakeRoam::start().await;
    let mut list = chats();
    list.push(json!({"id": "C-44444444-4444-4444-8444-444444444441", "started": "2025-08-01T08:00:00Z", "name": "Ops", "group": "G-44444444-4444-4444-8444-444444444441"}));
    list.push(json!({"id": "C-44444444-4444-4444-8444-444444444442", "started": "2025-08-01T08:00:00Z", "name": "ops", "group": "G-44444444-4444-4444-8444-444444444442"}));
    fake.set_chats(list, 3);
    fake.add_user("ann@example.com", ANN);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[roam]\nbase_url = \"{}\"\n[storage]\nurl = \"sqlite://{}\"\n\
             [[sources]]\nname = \"gh\"\nkind = \"github\"\nsecret = \"x\"\n\
             [[routes]]\nname = \"a\"\nsource = \"gh\"\nto = [\"#Deploy\", \"ann@example.com\"]\n\
             [[routes]]\nname = \"b\"\nsource = \"gh\"\nto = \"#OPS\"\n\
             [[routes]]\nname = \"c\"\nsource = \"gh\"\nto = \"#engineering team\"\n",
            fake.url,
            dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let run = |key: Option<&'static str>| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = bin();
            c.args(["check", "--config"]).arg(&cfg);
            if let Some(k) = key {
                c.env("ROAM_NOTIFY_ROAM_API_KEY", k);
            }
            c.output().unwrap()
        })
    };
    let out = run(Some(KEY)).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("names    FAIL  routes[0].to: no chat the bot can see is named #Deploy; closest: #Deploys"), "{text}");
    assert!(
        text.contains("names    ok    routes[0].to: ann@example.com is U-aaaaaaaa"),
        "{text}"
    );
    assert!(text.contains("names    FAIL  routes[1].to: #OPS names 2 chats: G-44444444-4444-4444-8444-444444444441 (channel), G-44444444-4444-4444-8444-444444444442 (channel)"), "{text}");
    assert!(
        text.contains("names    ok    routes[2].to: #engineering team is G-88bebce7"),
        "{text}"
    );
    let out = run(None).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("names    skip  4 #Name(s) and email(s) not checked: no Roam API key"),
        "{text}"
    );
}

/// At start an unknown name is a config error naming its key and the closest names.
#[tokio::test]
async fn the_daemon_refuses_to_start_with_an_unknown_name() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(
        &fake.url,
        &dir.path().join("t.db"),
        "[[routes]]\nname = \"x\"\nsource = \"github\"\nto = \"#Sales\"\n",
    );
    let cfg = roam_notify::config::Config::from_toml_str(&toml, "test.toml").unwrap();
    let e = match roam_notify::app::Application::build(cfg).await {
        Ok(_) => panic!("started with an unknown name"),
        Err(e) => e,
    };
    assert_eq!(e.exit_code(), 2);
    let e = e.to_string();
    assert!(
        e.contains("routes[0].to") && e.contains("closest: #Sales Team"),
        "{e}"
    );
}

/// A reload asks Roam about new names: a known one takes effect, an unknown one is
/// refused with the key and the closest names, and the running config stays.
#[tokio::test]
async fn a_reload_checks_new_names() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let base = test_config(&fake.url, &dir.path().join("t.db"), "");
    let route = |to: &str| {
        format!("{base}\n[[routes]]\nname = \"r\"\nsource = \"github\"\nto = \"{to}\"\n")
    };
    std::fs::write(&path, route(CHAT_A)).unwrap();
    let app = TestApp::spawn_file(&path).await;
    let http = reqwest::Client::new();
    std::fs::write(&path, route("#Deploy")).unwrap();
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("routes[0].to") && msg.contains("closest: #Deploys"),
        "{msg}"
    );
    std::fs::write(&path, route("#Deploys")).unwrap();
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.push_accepted("r1").await;
    wait_for("the message", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    assert_eq!(fake.delivered()[0].body["chat"], DEPLOYS);
    app.stop().await;
}

/// A Salesforce outbound message names its record's owner: `OwnerId`, and the email a
/// formula field such as `Owner_Email__c` carries; a route sends to `{{owner.email}}`,
/// and the card shows the fields the admin selected with readable labels.
#[tokio::test]
async fn a_salesforce_owner_gets_a_direct_message_with_readable_fields() {
    let fake = FakeRoam::start().await;
    fake.add_user("owner@acme.example", ANN);
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[[sources]]
name = "sf"
kind = "salesforce"
organization_id = "012345678901234"

[[routes]]
name = "owner"
source = "sf"
to = "{{owner.email}}"
"#;
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), extra)).await;
    let body = String::from_utf8(fixture("salesforce/outbound-message.contact.aspnet.xml"))
        .unwrap()
        .replacen(
            "<sf:Title>White</sf:Title>",
            "<sf:Title>White</sf:Title><sf:OwnerId>0051I000000abcDQAQ</sf:OwnerId><sf:Owner_Email__c>owner@acme.example</sf:Owner_Email__c><sf:Renewal_Date__c>2027-01-31</sf:Renewal_Date__c>",
            1,
        );
    let r = app
        .http
        .post(app.url("/hooks/sf"))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Two notifications: the first (with the owner fields) to its owner; the second has
    // no owner, so no destination: a dead letter, never dropped.
    wait_for("the owner's DM", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let dm = &fake.delivered()[0].body;
    assert_eq!(dm["chat"], ANN);
    let text = crate::blockkit::readable(dm);
    assert!(
        text.contains("**Renewal Date:** 2027-01-31")
            && text.contains("**Owner ID:** 0051I000000abcDQAQ"),
        "{text}"
    );
    assert!(text.contains("Open record https://"), "{text}");
    app.wait_ready(|r| r["outbox"]["dead"] == 1).await;
    app.stop().await;
}

/// A mention from the payload is resolved when the message is sent; text from the
/// payload that looks like one is left as it is (only compose's leading tags count).
#[tokio::test]
async fn a_mention_from_the_payload_is_resolved_when_sent_and_cannot_be_forged() {
    let fake = FakeRoam::start().await;
    fake_with_directory(&fake);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[routes]]\nname = \"prs\"\nsource = \"github\"\nto = \"{CHAT_A}\"\nmentions = [\"{{{{pull_request.user.login}}}}@example.com\"]\n"
    );
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), &extra)).await;
    let mut pr: Value =
        serde_json::from_slice(&fixture("github/pull_request.opened.json")).unwrap();
    pr["pull_request"]["title"] = json!("ping <@email:ann@example.com>");
    let pr = serde_json::to_vec(&pr).unwrap();
    assert_eq!(
        app.github("pull_request", "m1", &pr, SECRET).await.status(),
        202
    );
    wait_for("the message", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let body = &fake.delivered()[0].body;
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(section.starts_with(&format!("<@{OCTO}> ")), "{section}");
    let text = crate::blockkit::readable(body);
    assert!(
        !text.contains(ANN),
        "the payload's look-alike tag named nobody: {text}"
    );
    assert!(text.contains(r"\<@email:ann@example.com\>"), "{text}");
    app.stop().await;
}

/// A name neither Roam (unreachable) nor the cache knows stops the start with that said,
/// not as if the chat did not exist.
#[tokio::test]
async fn an_uncached_name_while_roam_is_down_says_roam_could_not_be_asked() {
    let fake = FakeRoam::start().await;
    fake.set_directory_down(true);
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(
        &fake.url,
        &dir.path().join("t.db"),
        "[[routes]]\nname = \"x\"\nsource = \"github\"\nto = \"#Deploys\"\n",
    );
    let cfg = roam_notify::config::Config::from_toml_str(&toml, "test.toml").unwrap();
    let e = match roam_notify::app::Application::build(cfg).await {
        Ok(_) => panic!("started with a name nobody could resolve"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("routes[0].to") && e.contains("Roam could not be asked"),
        "{e}"
    );
}
