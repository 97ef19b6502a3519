use super::*;
use proptest::prelude::*;

/// Roam's rules, checked on the output: at most 10 blocks and 8,000 bytes, a header is
/// plain text, every button has a label and an http(s) URL, 1–8 per actions block.
fn assert_valid(f: &Fitted) {
    assert!(!f.blocks.is_empty());
    assert!(f.blocks.len() <= MAX_BLOCKS, "{} blocks", f.blocks.len());
    let size = serde_json::to_string(&f.blocks).unwrap().len();
    assert!(size <= BLOCKS_BUDGET, "{size} bytes");
    for b in &as_json(&f.blocks) {
        match b["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= HEADER_CHARS);
            }
            "section" => assert!(b["text"]["text"].as_str().unwrap().len() <= SECTION_BYTES + 80),
            "context" => {
                assert!((1..=CONTEXT_ELEMENTS).contains(&b["elements"].as_array().unwrap().len()))
            }
            "actions" => {
                let e = b["elements"].as_array().unwrap();
                assert!((1..=MAX_BUTTONS).contains(&e.len()));
                for button in e {
                    assert!(link_url(button["url"].as_str().unwrap()).is_some());
                    assert!(!button["text"]["text"].as_str().unwrap().is_empty());
                }
            }
            other => panic!("block type {other}"),
        }
    }
}

fn card(sections: Vec<String>) -> Card {
    Card {
        header: Some("Workflow CI failed".into()),
        sections,
        context: vec!["acme/api".into(), "by octocat".into()],
        buttons: vec![Button {
            label: "View run".into(),
            url: "https://github.com/acme/api/actions/runs/1".into(),
        }],
        color: Some("danger".into()),
    }
}

#[test]
fn a_card_is_header_sections_context_actions_with_its_colour() {
    let f = card(vec!["**main** at `abc1234`".into()]).blocks(false);
    let blocks = as_json(&f.blocks);
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["header", "section", "context", "actions"]);
    assert_eq!(f.color.as_deref(), Some("danger"));
    assert_eq!(f.overflow, None);
    assert_valid(&f);
}

/// The bytes Roam gets (and the outbox stores) for a card: keys sorted in every object,
/// as when blocks were JSON objects, so stored requests and the typed blocks agree.
#[test]
fn a_card_s_blocks_are_written_with_sorted_keys() {
    let f = card(vec!["**main** at `abc1234`".into()]).blocks(false);
    assert_eq!(
        serde_json::to_string(&f.blocks).unwrap(),
        concat!(
            r#"[{"text":{"text":"Workflow CI failed","type":"plain_text"},"type":"header"},"#,
            r#"{"text":{"text":"**main** at `abc1234`","type":"mrkdwn"},"type":"section"},"#,
            r#"{"elements":[{"text":"acme/api","type":"mrkdwn"},{"text":"by octocat","type":"mrkdwn"}],"type":"context"},"#,
            r#"{"elements":[{"text":{"text":"View run","type":"plain_text"},"type":"button","url":"https://github.com/acme/api/actions/runs/1"}],"type":"actions"}]"#
        )
    );
}

#[test]
fn buttons_without_an_http_url_are_dropped_and_at_most_eight_kept() {
    let mut c = card(vec!["x".into()]);
    c.buttons = [
        "javascript:alert(1)",
        "ftp://x/y",
        "",
        "/relative",
        "https://ok.example/1",
    ]
    .iter()
    .chain(std::iter::repeat_n(&"https://ok.example/n", 10))
    .map(|u| Button {
        label: "Open".into(),
        url: u.to_string(),
    })
    .collect();
    let f = c.blocks(false);
    let blocks = as_json(&f.blocks);
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    let urls: Vec<&str> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), MAX_BUTTONS);
    assert!(
        urls.iter().all(|u| u.starts_with("https://ok.example/")),
        "{urls:?}"
    );
    assert_valid(&f);
}

#[test]
fn colours_are_named_or_hex_else_left_out() {
    assert_eq!(color(" Danger "), Some("danger".into()));
    assert_eq!(color("#5B3FD9"), Some("#5b3fd9".into()));
    assert_eq!(color(""), None);
    assert_eq!(color("red"), None);
    assert_eq!(color("#12345"), None);
}

#[test]
fn an_oversize_card_is_cut_with_a_note_or_handed_back_for_the_thread() {
    let lines: Vec<String> = (0..400)
        .map(|i| format!("- commit {i}: fix the thing number {i}"))
        .collect();
    let c = card(vec![lines.join("\n")]);
    let cut = c.blocks(false);
    assert_valid(&cut);
    let text = readable_of(&cut);
    assert!(text.contains("more lines not shown"), "{text}");
    assert!(text.contains("View run"), "buttons kept: {text}");
    let threaded = c.blocks(true);
    assert_valid(&threaded);
    let rest = threaded
        .overflow
        .clone()
        .expect("the rest goes to the thread");
    assert!(rest.contains("commit 399"));
    let shown = readable_of(&threaded);
    // Nothing lost: what the card shows and what goes to the thread hold every line.
    for l in &lines {
        assert!(
            shown.contains(l.as_str()) || rest.contains(l.as_str()),
            "{l} lost"
        );
    }
}

fn readable_of(f: &Fitted) -> String {
    readable(&serde_json::json!({"chat": "G-1", "blocks": f.blocks, "color": f.color}).to_string())
}

#[test]
fn the_header_is_one_line_of_at_most_150_characters() {
    let mut c = card(vec![]);
    c.header = Some(format!("line one\nline two {}", "é".repeat(300)));
    let f = c.blocks(false);
    let blocks = as_json(&f.blocks);
    let h = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        !h.contains('\n') && h.chars().count() == 150 && h.ends_with('…'),
        "{h}"
    );
    assert_valid(&f);
}

proptest! {
    /// Whatever a template renders, the card Roam gets is within its limits.
    #[test]
    fn any_card_fits_roams_limits(
        header in proptest::option::of("[a-zA-Z0-9 \n<>*_\"\\\\é日😀]{0,400}"),
        sections in proptest::collection::vec("[a-z0-9 \n`\"\\\\é日😀]{0,4000}", 0..14),
        context in proptest::collection::vec("[a-z \"]{0,1500}", 0..14),
        buttons in proptest::collection::vec(("[a-zA-Z \n]{0,120}", prop_oneof![Just("https://x.example/a".to_string()), "[a-z:/.]{0,40}", "https://x\\.example/[a-z\"]{0,3100}"]), 0..12),
        colour in "[a-z#0-9]{0,8}",
        overflow in any::<bool>(),
    ) {
        let c = Card {
            header,
            sections,
            context,
            buttons: buttons.into_iter().map(|(label, url)| Button { label, url }).collect(),
            color: Some(colour),
        };
        let f = c.blocks(overflow);
        assert_valid(&f);
        if let Some(col) = &f.color {
            prop_assert!(color(col).is_some());
        }
    }
}
