//! HubSpot enrichment against a fake HubSpot CRM API: deals, contacts and companies read
//! with their labels and owners, cached durably; a deleted record, a 429 with
//! Retry-After and a slow API still give a message (with the ids) and a fast 202.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::sources::{HUBSPOT_URL, Signer, headers, now, post};

mod fake;
use fake::{Answer, FakeHubSpot};

const TOKEN: &str = "pat-na1-test-token";
const SECRET_HS: &str = "hubspot-client-secret";

/// A HubSpot source reading the fake CRM, a sales route for big deals and a DM to the
/// owner, by the email HubSpot gives.
fn config(roam: &FakeRoam, hs: &FakeHubSpot, db: &std::path::Path, timeout: &str) -> String {
    test_config(
        &roam.url,
        db,
        &format!(
            r#"
[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "{SECRET_HS}"
public_url = "{HUBSPOT_URL}"
api_token = "{TOKEN}"
api_url = "{}"
enrich_timeout = "{timeout}"

[[routes]]
name = "big-deals"
source = "hubspot"
to = "{CHAT_A}"
continue = true
[routes.when]
field = "deal.amount"
gte = 10000

[[routes]]
name = "owner"
source = "hubspot"
to = "{{{{owner.email}}}}"
fallback = "{CHAT_B}"
"#,
            hs.url
        ),
    )
}

fn event(sub: &str, object: u64, event_id: u64, extra: Value) -> Vec<u8> {
    let mut e = json!({"eventId": event_id, "subscriptionId": 2881778, "portalId": 62515, "appId": 1160452,
        "occurredAt": 1764318000000u64 + event_id, "subscriptionType": sub, "attemptNumber": 0,
        "objectId": object, "changeSource": "CRM_UI"});
    if let (Some(o), Value::Object(x)) = (e.as_object_mut(), extra) {
        o.extend(x);
    }
    serde_json::to_vec(&json!([e])).unwrap()
}

async fn send(app: &TestApp, body: &[u8]) -> (reqwest::StatusCode, Duration) {
    let started = Instant::now();
    let r = post(
        app,
        "hubspot",
        body,
        &headers(Signer::HubSpot, SECRET_HS, body, now()),
    )
    .await;
    (r.status(), started.elapsed())
}

const JANE: &str = "U-cccccccc-cccc-4ccc-8ccc-cccccccccccc";

#[tokio::test]
async fn a_closed_won_deal_is_celebrated_with_its_name_amount_stage_and_owner() {
    let roam = FakeRoam::start().await;
    roam.add_user("jane.doe@acme.example", JANE);
    let hs = FakeHubSpot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, &hs, &dir.path().join("t.db"), "2s")).await;
    let body = event(
        "deal.propertyChange",
        1246965,
        1,
        json!({"propertyName": "dealstage", "propertyValue": "closedwon"}),
    );
    assert_eq!(send(&app, &body).await.0, 202);
    wait_for("channel and owner", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    let sent = roam.delivered();
    let channel = &sent
        .iter()
        .find(|r| r.body["chat"] == CHAT_A)
        .expect("over 10,000: the big-deals route")
        .body;
    assert_eq!(
        channel["blocks"][0]["text"]["text"],
        "🎉 ACME Corp renewal — 48,000 USD — Closed Won"
    );
    assert_eq!(channel["color"], "good");
    let text = crate::blockkit::readable(channel);
    assert!(
        text.contains("**Owner:** Jane Doe") && text.contains("Sales Pipeline"),
        "{text}"
    );
    assert!(
        text.contains("Open in HubSpot https://app.hubspot.com/contacts/62515/record/0-3/1246965"),
        "{text}"
    );
    assert!(
        sent.iter().any(|r| r.body["chat"] == JANE),
        "the owner gets a DM"
    );
    // The token went to HubSpot as a bearer token.
    let auth = hs.calls_with_auth()[0].1.clone();
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    // A small deal: not on the big-deals route; JPY has no decimals.
    let body = event("deal.creation", 777, 2, json!({}));
    assert_eq!(send(&app, &body).await.0, 202);
    wait_for("the owner's DM", Duration::from_secs(10), || {
        roam.delivered().len() == 3
    })
    .await;
    let dm = &roam.delivered()[2].body;
    assert_eq!(dm["chat"], JANE);
    assert_eq!(
        dm["blocks"][0]["text"]["text"],
        "Tiny pilot — 900 JPY — Appointment Scheduled"
    );
    // Pipelines and the owner were cached: asked once for both deals.
    let calls = hs.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("pipelines/")).count(),
        1,
        "{calls:?}"
    );
    // The owners list was read page by page, once.
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("owners"))
            .collect::<Vec<_>>(),
        ["owners?after=0", "owners?after=1", "owners?after=2"],
        "{calls:?}"
    );
    roam.assert_all_valid();
    app.stop().await;
    // The cache is durable: a restart asks HubSpot nothing for the same deal.
    let app = TestApp::spawn(&config(&roam, &hs, &dir.path().join("t.db"), "2s")).await;
    let before = hs.calls().len();
    let body = event(
        "deal.propertyChange",
        1246965,
        3,
        json!({"propertyName": "amount", "propertyValue": "48000"}),
    );
    assert_eq!(send(&app, &body).await.0, 202);
    wait_for("after restart", Duration::from_secs(10), || {
        roam.delivered().len() == 5
    })
    .await;
    assert_eq!(hs.calls().len(), before, "answered from the durable cache");
    app.stop().await;
}

#[tokio::test]
async fn contacts_and_companies_are_named() {
    let roam = FakeRoam::start().await;
    roam.add_user("jane.doe@acme.example", JANE);
    let hs = FakeHubSpot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, &hs, &dir.path().join("t.db"), "2s")).await;
    assert_eq!(
        send(&app, &event("contact.creation", 501, 1, json!({})))
            .await
            .0,
        202
    );
    assert_eq!(
        send(&app, &event("company.creation", 601, 2, json!({})))
            .await
            .0,
        202
    );
    wait_for("two messages", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    let headers: Vec<String> = roam
        .delivered()
        .iter()
        .map(|r| {
            r.body["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(headers, ["👤 Kim Lee", "🏢 Client Ltd"]);
    let contact = crate::blockkit::readable(&roam.delivered()[0].body);
    assert!(
        contact.contains("kim@client.example") && contact.contains("**Owner:** Jane Doe"),
        "{contact}"
    );
    app.stop().await;
}

/// A deleted record, a 429 and a slow API: the 202 stays fast, the message still goes out
/// with the ids and says why the details are missing, and each failure is counted.
#[tokio::test]
async fn when_hubspot_fails_the_message_still_goes_out_and_says_so() {
    let roam = FakeRoam::start().await;
    let hs = FakeHubSpot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, &hs, &dir.path().join("t.db"), "700ms")).await;
    // Deleted: 404.
    assert_eq!(
        send(&app, &event("deal.deletion", 999, 1, json!({})))
            .await
            .0,
        202
    );
    wait_for("the message", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    let text = crate::blockkit::readable(&roam.delivered()[0].body);
    assert!(
        text.contains("HubSpot details unavailable: HubSpot has no deal 999 (deleted?)"),
        "{text}"
    );
    assert!(text.contains("#999"), "the ids are still shown: {text}");
    // Slow: the answer waits at most enrich_timeout.
    hs.script([Answer::Slow(Duration::from_secs(3))]);
    let (status, took) = send(&app, &event("deal.creation", 1246965, 2, json!({}))).await;
    assert_eq!(status, 202);
    assert!(took < Duration::from_millis(2000), "the 202 took {took:?}");
    wait_for("the second message", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    let text = crate::blockkit::readable(&roam.delivered()[1].body);
    assert!(text.contains("no answer within 700ms"), "{text}");
    // Rate-limited beyond the bound: Retry-After is respected, no call until it passes.
    hs.script([Answer::RateLimited(30)]);
    assert_eq!(
        send(&app, &event("deal.creation", 777, 3, json!({})))
            .await
            .0,
        202
    );
    let calls = hs.calls().len();
    assert_eq!(
        send(&app, &event("contact.creation", 501, 4, json!({})))
            .await
            .0,
        202
    );
    assert_eq!(
        hs.calls().len(),
        calls,
        "no call during HubSpot's Retry-After"
    );
    wait_for("four messages", Duration::from_secs(10), || {
        roam.delivered().len() == 4
    })
    .await;
    for r in &roam.delivered()[2..] {
        let text = crate::blockkit::readable(&r.body);
        assert!(
            text.contains("HubSpot rate-limits us; retry after"),
            "{text}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roam_notify_enrichments_total{source=\"hubspot\",result=\"failed\"} 4"),
        "{metrics}"
    );
    roam.assert_all_valid();
    app.stop().await;
}

/// A 429 whose Retry-After ends within the bound is waited out, then the call succeeds.
#[tokio::test]
async fn a_short_retry_after_is_waited_out() {
    let roam = FakeRoam::start().await;
    let hs = FakeHubSpot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, &hs, &dir.path().join("t.db"), "3s")).await;
    hs.script([Answer::RateLimited(1)]);
    let (status, took) = send(&app, &event("company.creation", 601, 1, json!({}))).await;
    assert_eq!(status, 202);
    assert!(took >= Duration::from_secs(1), "waited {took:?}");
    wait_for("the message", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    assert_eq!(
        roam.delivered()[0].body["blocks"][0]["text"]["text"],
        "🏢 Client Ltd"
    );
    app.stop().await;
}

/// PagerDuty assignees and Pipedrive deal owners come as user ids; with an `api_token`
/// their emails are read from the sender's users API, so `{{assignee.email}}` and
/// `{{owner.email}}` reach the person in Roam.
#[tokio::test]
async fn pagerduty_assignees_and_pipedrive_owners_are_reached_by_email() {
    let roam = FakeRoam::start().await;
    roam.add_user("pig208@acme.example", JANE);
    roam.add_user("pat@acme.example", ANN);
    let api = FakeHubSpot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[sources]]
name = "pd"
kind = "pagerduty"
secret = "pd-secret"
api_token = "pd-api-token"
api_url = "{url}"

[[sources]]
name = "pipedrive"
kind = "pipedrive"
secret = "pd-user:pd-pw"
api_token = "pipedrive-token"
api_url = "{url}"

[[routes]]
name = "assignee"
source = "pd"
to = "{{{{assignee.email}}}}"

[[routes]]
name = "deal-owner"
source = "pipedrive"
to = "{{{{owner.email}}}}"
"#,
        url = api.url
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    let incident = fixture("pagerduty/incident.triggered.zulip.json");
    let r = post(
        &app,
        "pd",
        &incident,
        &headers(Signer::PagerDuty, "pd-secret", &incident, now()),
    )
    .await;
    assert_eq!(r.status(), 202);
    wait_for("the assignee's DM", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    assert_eq!(roam.delivered()[0].body["chat"], JANE);
    let deal = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pipedrive.deal.change.json"),
    )
    .unwrap();
    let r = post(
        &app,
        "pipedrive",
        &deal,
        &headers(Signer::Basic, "pd-user:pd-pw", &deal, now()),
    )
    .await;
    assert_eq!(r.status(), 202);
    wait_for("the owner's DM", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    assert_eq!(roam.delivered()[1].body["chat"], ANN);
    // Each API was asked as it documents: PagerDuty with a Token header, Pipedrive with
    // its api_token parameter.
    let calls = api.calls_with_auth();
    let pd = calls
        .iter()
        .find(|c| c.0 == "pagerduty/users/PJ0LVEB")
        .expect("PagerDuty asked");
    assert_eq!(pd.1.as_deref(), Some("Token token=pd-api-token"));
    assert!(
        calls
            .iter()
            .any(|c| c.0 == "pipedrive/users/1234567?api_token=pipedrive-token"),
        "{calls:?}"
    );
    roam.assert_all_valid();
    app.stop().await;
}

const ANN: &str = "U-dddddddd-dddd-4ddd-8ddd-dddddddddddd";

/// The sender waits while its API is asked: `enrich_timeout` is bounded, and only the
/// kinds that read an API take the keys.
#[test]
fn enrichment_settings_are_checked_by_key() {
    let roam = "http://127.0.0.1:9";
    let db = std::path::Path::new("/tmp/unused.db");
    for (source, key) in [
        (
            "kind = \"hubspot\"\nsecret = \"s\"\npublic_url = \"https://x.example/h\"\napi_token = \"t\"\nenrich_timeout = \"1h\"",
            "sources[1].enrich_timeout",
        ),
        (
            "kind = \"github\"\nsecret = \"s\"\napi_token = \"t\"",
            "sources[1].api_token",
        ),
        (
            "kind = \"pipedrive\"\nsecret = \"u:p\"\napi_token = \"t\"",
            "sources[1].api_url",
        ),
    ] {
        let toml = test_config(roam, db, &format!("[[sources]]\nname = \"x\"\n{source}\n"));
        let cfg = roam_notify::config::Config::from_toml_str(&toml, "test.toml").unwrap();
        let e = roam_notify::ingest::Pipeline::compile(&cfg, Default::default()).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
}
