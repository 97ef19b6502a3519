//! A Slack-compatible incoming-webhook endpoint: many tools (Alertmanager, Grafana,
//! GitLab, Argo CD, Uptime Kuma, Jenkins, Datadog, …) can only "post to Slack".
//!
//! Auth: the secret as the last URL segment (`POST /hooks/<name>/<secret>`, what a Slack
//! webhook URL is), or Bearer, or explicitly none. Body: JSON, or a form with a `payload`
//! field. `text`, `blocks` and `attachments` are converted to Roam markdown (Slack's
//! `*bold*`, `<url|label>`, `&lt;` … become their markdown forms) into `_markdown`, which
//! the `slack/message` template posts as is. Broadcast mentions (`<!channel>`, `<!here>`)
//! become plain text: a tool cannot ping a whole Roam chat through this endpoint.
//! Replies `ok` (text/plain), as Slack does. Event: `slack.message`; each request is a
//! new delivery (Slack-format senders have no delivery id).

use serde_json::Value;

use super::kind::Kind;
use super::{Ack, AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, parse_json};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("url-token"),
    allowed: &["url-token", "bearer"],
    hmac: HmacStyle::None,
    token_header: "",
};

pub const KIND: Kind = Kind::simple("slack", &AUTH, parse).enriched(enrich);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let mut p = if req.body.starts_with(b"payload=") {
        let payload = form_urlencoded::parse(req.body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| Rejection::bad_request("form body has no `payload` field"))?;
        parse_json(payload.as_bytes())?
    } else {
        parse_json(req.body)?
    };
    let markdown = to_markdown(&p);
    if markdown.trim().is_empty() {
        return Err(Rejection::bad_request(
            "no `text`, `blocks` or `attachments` with any text",
        ));
    }
    if let Value::Object(m) = &mut p {
        m.insert("_markdown".into(), Value::String(markdown));
    }
    Ok(Parsed {
        events: vec![Event {
            name: "slack.message".into(),
            delivery_id: uuid::Uuid::new_v4().to_string(),
            entity: None,
            payload: p,
            whole: None,
        }],
        ack: Ack::Text("ok"),
    })
}

/// Adds `_markdown` to a sample payload (for `check` and `render`).
pub fn enrich(p: &mut Value) {
    let md = to_markdown(p);
    if let Value::Object(m) = p {
        m.insert("_markdown".into(), Value::String(md));
    }
}

/// The whole message: blocks if present (then `text` is only Slack's notification
/// fallback), else `text`; then attachments.
pub fn to_markdown(p: &Value) -> String {
    let mrkdwn = p.get("mrkdwn").and_then(Value::as_bool).unwrap_or(true);
    let mut out: Vec<String> = Vec::new();
    match p
        .get("blocks")
        .and_then(Value::as_array)
        .filter(|b| !b.is_empty())
    {
        Some(blocks) => out.extend(blocks.iter().filter_map(block)),
        None => {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                out.push(if mrkdwn {
                    mrkdwn_to_markdown(t)
                } else {
                    crate::text::escape_markdown(t)
                });
            }
        }
    }
    for a in p
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(attachment(a));
    }
    out.retain(|s| !s.trim().is_empty());
    out.join("\n")
}

fn text_obj(t: &Value) -> Option<String> {
    let text = t.get("text")?.as_str()?;
    Some(
        if t.get("type").and_then(Value::as_str) == Some("plain_text") {
            crate::text::escape_markdown(text)
        } else {
            mrkdwn_to_markdown(text)
        },
    )
}

fn block(b: &Value) -> Option<String> {
    let kind = b.get("type")?.as_str()?;
    match kind {
        "header" => Some(format!("**{}**", text_obj(b.get("text")?)?)),
        "section" => {
            let mut parts = Vec::new();
            if let Some(t) = b.get("text").and_then(text_obj) {
                parts.push(t);
            }
            for f in b
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = text_obj(f) {
                    parts.push(t);
                }
            }
            if let Some(url) = b.pointer("/accessory/url").and_then(Value::as_str) {
                let label = b
                    .pointer("/accessory/text")
                    .and_then(text_obj)
                    .unwrap_or_else(|| "Open".into());
                parts.push(format!("[{label}]({url})"));
            }
            Some(parts.join("\n"))
        }
        "context" => {
            let items: Vec<String> = b
                .get("elements")?
                .as_array()?
                .iter()
                .filter_map(|e| {
                    text_obj(e).or_else(|| {
                        e.get("alt_text")
                            .and_then(Value::as_str)
                            .map(crate::text::escape_markdown)
                    })
                })
                .collect();
            Some(format!("*{}*", items.join(" · ")))
        }
        "divider" => Some("---".into()),
        "actions" => {
            let links: Vec<String> = b
                .get("elements")?
                .as_array()?
                .iter()
                .filter_map(|e| {
                    let url = e.get("url")?.as_str()?;
                    let label = e
                        .get("text")
                        .and_then(text_obj)
                        .unwrap_or_else(|| url.to_string());
                    Some(format!("[{label}]({url})"))
                })
                .collect();
            Some(links.join(" · "))
        }
        "image" => {
            let url = b.get("image_url")?.as_str()?;
            let alt = b.get("alt_text").and_then(Value::as_str).unwrap_or("image");
            Some(format!("[{}]({url})", crate::text::escape_markdown(alt)))
        }
        _ => None,
    }
}

fn attachment(a: &Value) -> String {
    let s = |k: &str| a.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let mut lines = Vec::new();
    if let Some(t) = s("pretext") {
        lines.push(mrkdwn_to_markdown(t));
    }
    if let Some(t) = s("author_name") {
        lines.push(format!("*{}*", crate::text::escape_markdown(t)));
    }
    match (s("title"), s("title_link")) {
        (Some(t), Some(l)) => lines.push(format!("**[{}]({l})**", mrkdwn_to_markdown(t))),
        (Some(t), None) => lines.push(format!("**{}**", mrkdwn_to_markdown(t))),
        _ => {}
    }
    if let Some(t) = s("text") {
        lines.push(mrkdwn_to_markdown(t));
    }
    for f in a
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let title = f
            .get("title")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty());
        let value = f.get("value").and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| (!v.is_null()).then(|| v.to_string()))
        });
        match (title, value.as_deref().filter(|v| !v.is_empty())) {
            (Some(t), Some(v)) => lines.push(format!(
                "**{}**: {}",
                mrkdwn_to_markdown(t),
                mrkdwn_to_markdown(v)
            )),
            (Some(t), None) => lines.push(format!("**{}**", mrkdwn_to_markdown(t))),
            (None, Some(v)) => lines.push(mrkdwn_to_markdown(v)),
            (None, None) => {}
        }
    }
    if let Some(t) = s("footer") {
        lines.push(format!("*{}*", crate::text::escape_markdown(t)));
    }
    if lines.is_empty()
        && let Some(t) = s("fallback")
    {
        lines.push(crate::text::escape_markdown(t));
    }
    lines.join("\n")
}

/// Slack mrkdwn to (GitHub-flavoured) markdown.
pub fn mrkdwn_to_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        out.push_str(&emphasis(&unescape(&rest[..start])));
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&emphasis(&unescape(&rest[start..])));
            rest = "";
            break;
        };
        out.push_str(&special(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(&emphasis(&unescape(rest)));
    out
}

/// `<url|label>`, `<url>`, `<!channel>`, `<@U123>`, `<#C123|general>`.
fn special(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(l)),
        None => (inner, None),
    };
    if let Some(cmd) = target.strip_prefix('!') {
        // Broadcasts and user groups become text: no ping through this endpoint.
        return format!("@{}", label.unwrap_or(cmd.split('^').next().unwrap_or(cmd)));
    }
    if let Some(user) = target.strip_prefix('@') {
        return format!("@{}", label.unwrap_or(user));
    }
    if let Some(ch) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or(ch));
    }
    let label = label.map(unescape).unwrap_or_else(|| unescape(target));
    format!("[{}]({})", label.replace(['[', ']'], ""), target)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `*bold*` → `**bold**`, `_it_` → `*it*`, `~x~` → `~~x~~`; a raw `<` that Slack would
/// have had escaped is kept harmless.
fn emphasis(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let closes = |from: usize| chars[from..].iter().position(|&d| d == c).map(|p| p + from);
        let boundary_before = i == 0 || !chars[i - 1].is_alphanumeric();
        match c {
            '*' | '_' | '~' if boundary_before => match closes(i + 1) {
                Some(j)
                    if j > i + 1
                        && !chars[i + 1].is_whitespace()
                        && (j + 1 == chars.len() || !chars[j + 1].is_alphanumeric()) =>
                {
                    let inner: String = chars[i + 1..j].iter().collect();
                    let mark = match c {
                        '*' => "**",
                        '_' => "*",
                        _ => "~~",
                    };
                    out.push_str(mark);
                    out.push_str(&inner);
                    out.push_str(mark);
                    i = j + 1;
                    continue;
                }
                _ => out.push(c),
            },
            '<' => out.push_str("\\<"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mrkdwn_conversions() {
        assert_eq!(
            mrkdwn_to_markdown("*bold* _it_ ~gone~ snake_case_name"),
            "**bold** *it* ~~gone~~ snake_case_name"
        );
        assert_eq!(
            mrkdwn_to_markdown("see <https://x.io/a?b=1&amp;c=2|the &lt;docs&gt;>"),
            "see [the <docs>](https://x.io/a?b=1&amp;c=2)"
        );
        assert_eq!(
            mrkdwn_to_markdown("<!channel> deploy by <@U123|ana>"),
            "@channel deploy by @ana"
        );
        assert_eq!(mrkdwn_to_markdown("a &lt;@all&gt; b"), "a \\<@all> b");
    }

    #[test]
    fn attachments_with_null_fields() {
        let p = json!({"attachments": [{"pretext": "Build *ok*", "fields": [
            {"title": "A", "value": "1"}, {"title": "B", "value": null}, {"title": null, "value": "C"}, {"title": null, "value": null}
        ]}]});
        assert_eq!(to_markdown(&p), "Build **ok**\n**A**: 1\n**B**\nC");
    }
}
