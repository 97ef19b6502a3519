//! What a message says: payload text that cannot inject formatting or mentions, long
//! messages cut under Roam's cap or split into a thread, destinations and mentions by name.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn payload_text_cannot_inject_formatting_or_mentions() {
    let (app, fake, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let mut p: Value = serde_json::from_slice(&fixture("github/pull_request.opened.json")).unwrap();
    p["pull_request"]["title"] = json!("**urgent** <@all> [click](https://evil.example)");
    let body = serde_json::to_vec(&p).unwrap();
    assert_eq!(
        app.github("pull_request", "inj-1", &body, SECRET)
            .await
            .status(),
        202
    );
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let text = &fake.texts()[0];
    // In markdown sections payload text is escaped ...
    assert!(
        text.contains(r"\*\*urgent\*\* \<@all\> \[click\](https://evil.example)"),
        "{text}"
    );
    // ... and in the plain-text header it shows as written, with the mention broken.
    let header = fake.delivered()[0].body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        header.contains("**urgent** <\u{200B}@all> [click]"),
        "{header}"
    );
    assert!(!text.contains("<@all>"), "{text}");
    app.stop().await;
}

/// An unauthenticated generic source `big` routed to CHAT_A; `route_extra` adds route keys.
fn big_source(route_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"big\"\nkind = \"generic\"\nauth = \"none\"\n\n[[routes]]\nname = \"big\"\nsource = \"big\"\nto = \"{CHAT_A}\"\n{route_extra}\n"
    )
}

#[tokio::test]
async fn long_messages_are_cut_under_roams_cap() {
    let extra = big_source("format = \"text\"");
    let (app, fake, _dir) = app_with(&extra).await;
    let long = "intro\n```\n".to_string() + &"é".repeat(6000);
    let r = app
        .http
        .post(app.url("/hooks/big"))
        .json(&json!({"text": long}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let text = &fake.texts()[0];
    assert!(text.len() <= 8000, "{} bytes", text.len());
    assert!(
        text.ends_with("more bytes not shown)"),
        "{}",
        &text[text.len() - 60..]
    );
    assert_eq!(text.matches("```").count() % 2, 0, "code fence left open");
    app.stop().await;
}

#[tokio::test]
async fn named_destinations_and_mentions_reach_roam() {
    let extra = format!(
        r#"
[destinations]
oncall = ["{CHAT_A}", "{CHAT_B}"]

[[routes]]
name = "pages"
source = "github"
to = "oncall"
mentions = ["all", "U-b893c426-6d54-4d9a-8e71-6bd53b26124e"]
"#
    );
    let (app, fake, _dir) = app_with(&extra).await;
    app.push_accepted("m1").await;
    wait_for("two deliveries", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    let chats: Vec<String> = fake
        .delivered()
        .iter()
        .map(|r| r.body["chat"].as_str().unwrap().to_string())
        .collect();
    assert!(
        chats.contains(&CHAT_A.to_string()) && chats.contains(&CHAT_B.to_string()),
        "{chats:?}"
    );
    // A card: the mentions open its first section, where Roam notifies people.
    let section = fake.delivered()[0].body["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        section.starts_with("<@all> <@U-b893c426-6d54-4d9a-8e71-6bd53b26124e> **simple-tag**"),
        "{section}"
    );
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn long_messages_can_be_split_into_a_thread() {
    let extra = big_source("long = \"thread\"\nformat = \"text\"");
    let (app, fake, _dir) = app_with(&extra).await;
    let lines: Vec<String> = (0..900)
        .map(|i| format!("line {i:04} {}", "é".repeat(8)))
        .collect();
    let long = format!("intro\n```\n{}\n```\nthe end", lines.join("\n"));
    assert!(long.len() > 2 * 8000);
    let r = app
        .http
        .post(app.url("/hooks/big"))
        .json(&json!({"text": long}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let n: usize = r.json::<Value>().await.unwrap()["messages"]
        .as_u64()
        .unwrap() as usize;
    assert!(n >= 3, "{n} parts");
    wait_for("all parts", Duration::from_secs(10), || {
        fake.delivered().len() == n
    })
    .await;
    let sent = fake.delivered();
    let key = sent[0].body["threadKey"].as_str().unwrap().to_string();
    assert!(key.len() <= 64);
    for r in &sent {
        assert_eq!(
            r.body["threadKey"],
            key.as_str(),
            "every part in one thread"
        );
        let t = r.body["text"].as_str().unwrap();
        assert!(t.len() <= 8000);
        assert_eq!(
            t.matches("```").count() % 2,
            0,
            "each part closes its fences"
        );
    }
    let all: String = fake.texts().concat();
    for i in [0, 450, 899] {
        assert!(all.contains(&format!("line {i:04}")), "line {i} lost");
    }
    assert!(
        fake.texts()[0].starts_with("intro") && fake.texts().last().unwrap().ends_with("the end")
    );
    fake.assert_all_valid();
    app.stop().await;
}
