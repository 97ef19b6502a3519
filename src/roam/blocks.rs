//! Cards: the Block Kit subset Roam's `chat.post` / `chat.update` take
//! (`tests/roam-openapi/chat.json`, `roam-api.md` §10), made so Roam never refuses one.
//!
//! A [`Card`] is what a card template renders to: a header, markdown sections, a context
//! line, link buttons and a colour. [`Card::blocks`] assembles Block Kit from it within
//! Roam's limits (10 blocks, 8,000 bytes; a header is `plain_text`; a button has a label
//! and an http(s) URL, because a button without a URL needs an Interactivity URL and is
//! refused), cutting what does not fit and saying so. [`readable`] shows any request body
//! (text or card) as text for logs, `routes test` and `outbox list`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::text::{close_open_fence, fit_message};

/// Roam: at most 10 blocks per message.
pub const MAX_BLOCKS: usize = 10;
/// Roam: at most 8,000 bytes per message. The blocks get this much, leaving room in the
/// request for `chat`, `color`, `threadKey` and `sync`.
pub const BLOCKS_BUDGET: usize = 7_600;
/// Roam: an `actions` block holds 1–8 buttons.
pub const MAX_BUTTONS: usize = 8;
/// Block Kit's limits (Slack's, which Roam's subset follows): header text 150
/// characters, button text 75, section text 3,000, a URL 3,000, context 10 elements.
const HEADER_CHARS: usize = 150;
const BUTTON_CHARS: usize = 75;
const SECTION_BYTES: usize = 3_000;
const URL_BYTES: usize = 3_000;
const CONTEXT_ELEMENTS: usize = 10;
const CONTEXT_BYTES: usize = 1_000;

/// A message as a card, before it is fitted to Roam's limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// Plain text: what happened, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Markdown sections, in order (escaped by the template that rendered them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<String>,
    /// Markdown elements of the context line (source, repository, who, when).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// `good`, `warning`, `danger` or `#rrggbb`; anything else is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A link button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub url: String,
}

/// A card fitted to Roam's limits: the `blocks` and `color` of one request, and the
/// section text that did not fit when it is to be continued in the thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub blocks: Vec<Block>,
    pub color: Option<String>,
    pub overflow: Option<String>,
}

/// One Block Kit block of the kinds a card uses: `header` and `section` (a text object),
/// `context` and `actions` (elements). Typed, so fitting a card measures and writes it
/// without building a JSON tree per block; keys are written sorted, as the JSON objects
/// it replaced were (`elements` or `text`, then `type`), so stored requests read the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    elements: Vec<Element>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextObject>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A text object: `plain_text` or `mrkdwn`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct TextObject {
    text: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A context element (a `mrkdwn` text object) or a link button.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Element {
    Text(TextObject),
    Button {
        text: TextObject,
        #[serde(rename = "type")]
        kind: &'static str,
        url: String,
    },
}

impl Block {
    fn header(text: String) -> Block {
        Block::text("header", "plain_text", text)
    }

    fn section(text: String) -> Block {
        Block::text("section", "mrkdwn", text)
    }

    fn text(kind: &'static str, text_kind: &'static str, text: String) -> Block {
        Block {
            elements: Vec::new(),
            text: Some(TextObject {
                text,
                kind: text_kind,
            }),
            kind,
        }
    }

    fn elements(kind: &'static str, elements: &[Element]) -> Block {
        Block {
            elements: elements.to_vec(),
            text: None,
            kind,
        }
    }

    /// A header's or section's text.
    fn text_str(&self) -> &str {
        self.text.as_ref().map_or("", |t| t.text.as_str())
    }
}

/// A colour Roam accepts, normalised; None for anything else (including empty).
pub fn color(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let hex = s
        .strip_prefix('#')
        .is_some_and(|h| matches!(h.len(), 3 | 6) && h.chars().all(|c| c.is_ascii_hexdigit()));
    (matches!(s.as_str(), "good" | "warning" | "danger") || hex).then_some(s)
}

/// A URL a link button may carry: absolute http(s), at most 3,000 bytes; None otherwise.
pub fn link_url(s: &str) -> Option<String> {
    let s = s.trim();
    let url = url::Url::parse(s).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some() && s.len() <= URL_BYTES)
        .then(|| s.to_string())
}

impl Card {
    /// The card's one-line form (a group digest's item, a log line): the header, else
    /// the first line of the first section.
    pub fn title(&self) -> String {
        match &self.header {
            Some(h) => crate::text::escape_markdown(h),
            None => self
                .sections
                .first()
                .and_then(|s| s.lines().next())
                .unwrap_or("")
                .to_string(),
        }
    }

    /// Mentions (`<@U-…>` tags) go at the start of the first section, where Roam
    /// notifies the people named.
    pub fn mention(&mut self, tags: &str) {
        match self.sections.first_mut() {
            Some(s) => *s = format!("{tags} {s}"),
            None => self.sections.push(tags.to_string()),
        }
    }

    /// Block Kit for this card within Roam's limits. Sections that do not fit are cut
    /// with "… N more lines not shown", or, with `overflow`, handed back whole to be
    /// continued as thread replies. Buttons beyond 8 and invalid ones are dropped; the
    /// header and button labels are cut to their lengths. Never empty.
    pub fn blocks(&self, overflow: bool) -> Fitted {
        let header = self
            .header
            .as_deref()
            .map(plain)
            .filter(|h| !h.is_empty())
            .map(|h| cut_chars(&h, HEADER_CHARS));
        let mut buttons: Vec<Element> = self
            .buttons
            .iter()
            .filter_map(|b| {
                let label = cut_chars(&plain(&b.label), BUTTON_CHARS);
                let url = link_url(&b.url)?;
                (!label.is_empty()).then_some(Element::Button {
                    text: TextObject {
                        text: label,
                        kind: "plain_text",
                    },
                    kind: "button",
                    url,
                })
            })
            .take(MAX_BUTTONS)
            .collect();
        let mut context: Vec<Element> = self
            .context
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .take(CONTEXT_ELEMENTS)
            .map(|c| {
                Element::Text(TextObject {
                    text: fit_message(c, CONTEXT_BYTES),
                    kind: "mrkdwn",
                })
            })
            .collect();
        let fixed = |buttons: &[Element], context: &[Element]| {
            let mut v = Vec::new();
            if let Some(h) = &header {
                v.push(Block::header(h.clone()));
            }
            if !context.is_empty() {
                v.push(Block::elements("context", context));
            }
            if !buttons.is_empty() {
                v.push(Block::elements("actions", buttons));
            }
            v
        };
        // Header, context and buttons first: drop buttons, then context elements, from
        // the end until they leave room for at least a short section.
        let mut fixed_blocks = fixed(&buttons, &context);
        let mut fixed_bytes = bytes(&fixed_blocks);
        while fixed_bytes > BLOCKS_BUDGET - 400 {
            if buttons.pop().is_none() && context.pop().is_none() {
                break;
            }
            fixed_blocks = fixed(&buttons, &context);
            fixed_bytes = bytes(&fixed_blocks);
        }
        let room_blocks = MAX_BLOCKS - fixed_blocks.len();
        let mut room_bytes = BLOCKS_BUDGET.saturating_sub(fixed_bytes + 2);

        let chunks: Vec<String> = self
            .sections
            .iter()
            .map(|s| s.trim_end())
            .filter(|s| !s.trim().is_empty())
            .flat_map(|s| crate::text::split_message(s, SECTION_BYTES))
            .collect();
        let mut sections = Vec::new();
        let mut rest = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let block = Block::section(chunk.clone());
            let size = bytes(std::slice::from_ref(&block)) + 1;
            if sections.len() < room_blocks && size <= room_bytes {
                room_bytes -= size;
                sections.push(block);
                continue;
            }
            let mut left = chunks[i..].join("\n");
            if overflow {
                rest = Some(left);
                break;
            }
            // The cut section needs a block and room for some text and its note: the
            // last section gives them up if need be, and is cut together with the rest.
            if (sections.len() == room_blocks || room_bytes < 200)
                && let Some(last) = sections.pop()
            {
                room_bytes += bytes(std::slice::from_ref(&last)) + 1;
                left = format!("{}\n{left}", last.text_str());
            }
            sections.push(cut_section(&left, room_bytes));
            break;
        }
        let mut blocks = Vec::with_capacity(MAX_BLOCKS);
        let mut fixed_iter = fixed_blocks.into_iter().peekable();
        if header.is_some() {
            blocks.extend(fixed_iter.next());
        }
        if sections.is_empty() && header.is_none() {
            sections.push(Block::section("(no content)".into()));
        }
        blocks.extend(sections);
        blocks.extend(fixed_iter);
        Fitted {
            blocks,
            color: self.color.as_deref().and_then(color),
            overflow: rest,
        }
    }

    /// The card as it reads: its colour in brackets, the header in bold, sections,
    /// context, buttons as links.
    pub fn preview(&self) -> String {
        let fitted = self.blocks(false);
        preview_blocks(&as_json(&fitted.blocks), fitted.color.as_deref())
    }

    /// The card as a text message (a route with `format = "text"` and a card-only
    /// template): the preview without the colour.
    pub fn as_text(&self) -> String {
        preview_blocks(&as_json(&self.blocks(false).blocks), None)
    }
}

/// Blocks as the JSON Roam receives.
pub fn as_json(blocks: &[Block]) -> Vec<Value> {
    blocks
        .iter()
        .map(|b| serde_json::to_value(b).unwrap_or(Value::Null))
        .collect()
}

/// Any request body as text: a text message's `text`, or a card's blocks and colour.
pub fn readable(request: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(request) else {
        return String::new();
    };
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    match v.get("blocks").and_then(Value::as_array) {
        Some(blocks) => preview_blocks(blocks, v.get("color").and_then(Value::as_str)),
        None => String::new(),
    }
}

fn preview_blocks(blocks: &[Value], color: Option<&str>) -> String {
    let mut out = Vec::new();
    if let Some(c) = color {
        out.push(format!("[{c}]"));
    }
    for b in blocks {
        let text = |v: &Value| v["text"].as_str().unwrap_or("").to_string();
        match b["type"].as_str() {
            Some("header") => out.push(format!("**{}**", text(&b["text"]))),
            Some("section") => out.push(text(&b["text"])),
            Some("context") => out.push(
                b["elements"]
                    .as_array()
                    .map(|e| e.iter().map(text).collect::<Vec<_>>().join(" · "))
                    .unwrap_or_default(),
            ),
            Some("actions") => out.push(
                b["elements"]
                    .as_array()
                    .map(|e| {
                        e.iter()
                            .map(|b| {
                                format!(
                                    "[{}]({})",
                                    text(&b["text"]),
                                    b["url"].as_str().unwrap_or("")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" · ")
                    })
                    .unwrap_or_default(),
            ),
            Some("divider") => out.push("---".into()),
            _ => {}
        }
    }
    out.join("\n")
}

/// A section holding as much of `all` as fits in `room` bytes (as JSON) and in one
/// section, then a note of how many lines are not shown.
fn cut_section(all: &str, room: usize) -> Block {
    let mut budget = room
        .saturating_sub(80)
        .min(SECTION_BYTES - 80)
        .min(all.len());
    loop {
        let shown = prefix(all, budget);
        let hidden = all[shown.len()..]
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let shown = close_open_fence(shown.trim_end());
        let note = match hidden {
            0 => String::new(),
            1 => "\n… 1 more line not shown".to_string(),
            n => format!("\n… {n} more lines not shown"),
        };
        let block = Block::section(format!("{shown}{note}"));
        let size = bytes(std::slice::from_ref(&block)) + 1;
        if size <= room || budget == 0 {
            return block;
        }
        budget = budget.saturating_sub((size - room).max(16));
    }
}

/// The longest prefix of `text` within `budget` bytes, ending at a line end when one is
/// near, never inside a character.
fn prefix(text: &str, budget: usize) -> &str {
    if text.len() <= budget {
        return text;
    }
    let mut cut = text.floor_char_boundary(budget);
    if let Some(nl) = text[..cut].rfind('\n')
        && nl >= cut - cut / 5
    {
        cut = nl;
    }
    &text[..cut]
}

fn bytes(blocks: &[Block]) -> usize {
    /// Counts what is written, keeping none of it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    match serde_json::to_writer(&mut n, blocks) {
        Ok(()) => n.0,
        Err(_) => usize::MAX,
    }
}

/// Plain text on one line, with mention and broadcast tokens (`<@…>`, `<!…>`) broken by
/// a zero-width space: a payload cannot ping anybody from a header or a button.
fn plain(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("<@", "<\u{200B}@")
        .replace("<!", "<\u{200B}!")
}

fn cut_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
