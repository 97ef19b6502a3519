//! A `chat.post` body shown as the message will look in Roam: a card's colour bar,
//! header, sections, context line and link buttons, or the plain text. Every value is
//! escaped by `maud`; a colour reaches the page only as one of Roam's three names or a
//! checked hex value; a button links out only for http(s) URLs.

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
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

/// Message markdown (GitHub-flavoured, as Roam reads it) as HTML: raw HTML in the text
/// is shown as text, images as their description (nothing is fetched), and a link
/// keeps its target only when it is http(s) or mailto.
pub fn markdown(md: &str) -> Markup {
    let safe_link = |url: &str| {
        let lower = url.trim().to_ascii_lowercase();
        ["http://", "https://", "mailto:"]
            .iter()
            .any(|p| lower.starts_with(p))
    };
    let mut dropped_links = Vec::new();
    let events = Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH).filter_map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::SoftBreak => Some(Event::HardBreak),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link { dest_url, .. }) if !safe_link(&dest_url) => {
            dropped_links.push(true);
            None
        }
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            dropped_links.push(false);
            Some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => match dropped_links.pop() {
            Some(true) => None,
            _ => Some(Event::End(TagEnd::Link)),
        },
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
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
                div.body { (markdown(t)) }
            }
            @for b in v.get("blocks").and_then(Value::as_array).into_iter().flatten() {
                @match b["type"].as_str() {
                    Some("header") => { p.header { (text(&b["text"])) } }
                    Some("section") => { div.body { (markdown(text(&b["text"]))) } }
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
        let md = markdown("**Deal** [won](https://x.example/d?a=1&b=2) <b>x</b> [bad](javascript:alert(1)) ![t](https://img.example/p.png)\nnext").into_string();
        assert!(md.contains("<strong>Deal</strong>"), "{md}");
        assert!(
            md.contains("<a href=\"https://x.example/d?a=1&amp;b=2\">won</a>"),
            "{md}"
        );
        assert!(
            md.contains("&lt;b&gt;x&lt;/b&gt;") && !md.contains("<b>"),
            "{md}"
        );
        assert!(!md.contains("javascript") && md.contains("bad"), "{md}");
        assert!(
            !md.contains("<img") && md.contains("bad t<br"),
            "image as its text: {md}"
        );
        assert!(md.contains("<br />"), "{md}");
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
