//! A `chat.post` body shown as the message will look in Roam: a card's colour bar,
//! header, sections, context line and link buttons, or the plain text. Every value is
//! escaped by `maud`; a colour reaches the page only as one of Roam's three names or a
//! checked hex value; a button links out only for http(s) URLs.

use maud::{Markup, html};
use serde_json::Value;

use crate::roam::blocks::{color, link_url};

/// The stripe colour for a request's `color` (Roam's names, or the hex as given).
fn stripe(c: Option<&str>) -> Option<String> {
    let c = color(c?)?;
    Some(match c.as_str() {
        "good" => "#2eb67d".to_string(),
        "warning" => "#ecb22e".to_string(),
        "danger" => "#e01e5a".to_string(),
        hex => hex.to_string(),
    })
}

fn text(v: &Value) -> &str {
    v["text"].as_str().unwrap_or("")
}

/// The message as it will look; the exact JSON is shown beside it by the caller.
pub fn message(request: &str) -> Markup {
    let Ok(v) = serde_json::from_str::<Value>(request) else {
        return html! { p.problem { "This request is not JSON." } };
    };
    let bar = stripe(v.get("color").and_then(Value::as_str));
    let style = bar.map(|c| format!("border-left-color: {c}"));
    html! {
        div.message style=[style] {
            @if let Some(t) = v.get("text").and_then(Value::as_str) {
                p.body { (t) }
            }
            @for b in v.get("blocks").and_then(Value::as_array).into_iter().flatten() {
                @match b["type"].as_str() {
                    Some("header") => { p.header { (text(&b["text"])) } }
                    Some("section") => { p.body { (text(&b["text"])) } }
                    Some("context") => {
                        p.context {
                            @for (i, e) in b["elements"].as_array().into_iter().flatten().enumerate() {
                                @if i > 0 { " · " }
                                (text(e))
                            }
                        }
                    }
                    Some("actions") => {
                        p.actions {
                            @for e in b["elements"].as_array().into_iter().flatten() {
                                @match e["url"].as_str().and_then(link_url) {
                                    Some(url) => { a.button href=(url) rel="noopener noreferrer" target="_blank" { (text(&e["text"])) } }
                                    None => { span.button { (text(&e["text"])) } }
                                }
                            }
                        }
                    }
                    Some("divider") => { hr; }
                    _ => { p.context { "(a block of type " (b["type"].as_str().unwrap_or("?")) ")" } }
                }
            }
        }
    }
}

/// The request as Roam receives it, indented.
pub fn exact(request: &str) -> String {
    serde_json::from_str::<Value>(request)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| request.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_previews_escaped_with_its_colour_and_links() {
        let req = serde_json::json!({
            "chat": "G-1", "color": "danger",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "<script>alert(1)</script>"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "a & b"}},
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://x.example/1"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Bad"}, "url": "javascript:alert(1)"}
                ]}
            ]
        })
        .to_string();
        let html = message(&req).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("a &amp; b"));
        assert!(html.contains("border-left-color: #e01e5a"));
        assert!(html.contains("href=\"https://x.example/1\""));
        assert!(!html.contains("javascript:"));
    }

    #[test]
    fn a_colour_that_is_not_roams_is_not_styled() {
        let req = r#"{"chat":"G-1","text":"hi","color":"red;background:url(x)"}"#;
        assert!(!message(req).into_string().contains("style"));
    }
}
