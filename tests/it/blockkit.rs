//! The fake Roam's Block Kit rules (tests/roam-openapi/chat.json and roam-api.md §10),
//! written independently of the daemon's own `roam::blocks`: a body Roam would refuse
//! gets the 400 Roam would answer, and the test that sent it fails.

use serde_json::Value;

const BLOCK_TYPES: [&str; 5] = ["header", "section", "context", "divider", "actions"];

/// Every rule a `chat.post` / `chat.update` body with `blocks` breaks; empty when Roam
/// would take it. A body without `blocks` must not carry a `color`.
pub fn errors(body: &Value) -> Vec<String> {
    let mut e = Vec::new();
    let Some(blocks) = body.get("blocks") else {
        if body.get("color").is_some() {
            e.push("color is only used with blocks".into());
        }
        return e;
    };
    for other in ["text", "items", "poll", "markdown"] {
        if body.get(other).is_some() {
            e.push(format!("blocks cannot be combined with {other}"));
        }
    }
    let Some(blocks) = blocks.as_array() else {
        return vec!["blocks is not an array".into()];
    };
    if blocks.is_empty() || blocks.len() > 10 {
        e.push(format!("{} blocks (1 to 10 allowed)", blocks.len()));
    }
    let size = serde_json::to_string(blocks).map(|s| s.len()).unwrap_or(0);
    if size > 8000 {
        e.push(format!("blocks are {size} bytes (8,000 allowed)"));
    }
    let total = serde_json::to_string(body).map(|s| s.len()).unwrap_or(0);
    if total > 8000 {
        e.push(format!("the message is {total} bytes (8,000 allowed)"));
    }
    if let Some(c) = body.get("color") {
        let c = c.as_str().unwrap_or("");
        let hex =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit());
        if !(["good", "warning", "danger"].contains(&c) || hex) {
            e.push(format!(
                "color {c:?} is not good, warning, danger or #rrggbb"
            ));
        }
    }
    for (i, b) in blocks.iter().enumerate() {
        let t = b["type"].as_str().unwrap_or("");
        if !BLOCK_TYPES.contains(&t) {
            e.push(format!(
                "block {i}: type {t:?} is not one of {BLOCK_TYPES:?}"
            ));
        }
        match t {
            "header" => {
                if b["text"]["type"] != "plain_text" {
                    e.push(format!("block {i}: a header's text must be plain_text"));
                }
                let n = b["text"]["text"]
                    .as_str()
                    .map(|s| s.chars().count())
                    .unwrap_or(0);
                if n == 0 || n > 150 {
                    e.push(format!(
                        "block {i}: header text of {n} characters (1 to 150)"
                    ));
                }
            }
            "section" => {
                let ty = b["text"]["type"].as_str().unwrap_or("");
                if ty != "mrkdwn" && ty != "plain_text" {
                    e.push(format!("block {i}: section text type {ty:?}"));
                }
                let n = b["text"]["text"].as_str().map(str::len).unwrap_or(0);
                if n == 0 || n > 3000 {
                    e.push(format!("block {i}: section text of {n} bytes (1 to 3,000)"));
                }
                if let Some(a) = b.get("accessory") {
                    button_errors(a, &format!("block {i} accessory"), &mut e);
                }
            }
            "context" => {
                let n = b["elements"].as_array().map(Vec::len).unwrap_or(0);
                if n == 0 || n > 10 {
                    e.push(format!("block {i}: context with {n} elements (1 to 10)"));
                }
                for el in b["elements"].as_array().into_iter().flatten() {
                    let ty = el["type"].as_str().unwrap_or("");
                    if (ty != "mrkdwn" && ty != "plain_text")
                        || el["text"].as_str().is_none_or(str::is_empty)
                    {
                        e.push(format!("block {i}: context element {el}"));
                    }
                }
            }
            "actions" => {
                let els = b["elements"].as_array().cloned().unwrap_or_default();
                if els.is_empty() || els.len() > 8 {
                    e.push(format!(
                        "block {i}: actions with {} buttons (1 to 8)",
                        els.len()
                    ));
                }
                for (j, el) in els.iter().enumerate() {
                    button_errors(el, &format!("block {i} button {j}"), &mut e);
                }
            }
            _ => {}
        }
    }
    e
}

/// A button needs plain_text of 1–75 characters and an http(s) URL: one without a URL
/// is interactive and needs an Interactivity URL, which roam-notify never has (400).
fn button_errors(b: &Value, at: &str, e: &mut Vec<String>) {
    if b["type"] != "button" {
        e.push(format!("{at}: type {} is not button", b["type"]));
    }
    if b["text"]["type"] != "plain_text" {
        e.push(format!("{at}: text must be plain_text"));
    }
    let n = b["text"]["text"]
        .as_str()
        .map(|s| s.chars().count())
        .unwrap_or(0);
    if n == 0 || n > 75 {
        e.push(format!("{at}: text of {n} characters (1 to 75)"));
    }
    match b["url"].as_str() {
        None => e.push(format!(
            "{at}: no url (an interactive button needs an Interactivity URL)"
        )),
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            e.push(format!("{at}: url {u:?} is not http(s)"));
        }
        Some(_) => {}
    }
}

/// A message as a person reads it, for assertions on content: a text message's text,
/// or a card's header, sections, context and button labels and URLs, one per line.
pub fn readable(body: &Value) -> String {
    if let Some(t) = body["text"].as_str() {
        return t.to_string();
    }
    let mut out = Vec::new();
    for b in body["blocks"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("header" | "section") => {
                out.push(b["text"]["text"].as_str().unwrap_or("").to_string())
            }
            Some("context") => {
                for el in b["elements"].as_array().into_iter().flatten() {
                    out.push(el["text"].as_str().unwrap_or("").to_string());
                }
            }
            Some("actions") => {
                for el in b["elements"].as_array().into_iter().flatten() {
                    out.push(format!(
                        "{} {}",
                        el["text"]["text"].as_str().unwrap_or(""),
                        el["url"].as_str().unwrap_or("")
                    ));
                }
            }
            _ => {}
        }
    }
    out.join("\n")
}
