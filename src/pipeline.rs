//! The request path after verification: route, render, and prepare the rows to commit.
//!
//! Everything here is pure and in memory; `http::hooks` calls it between parsing and the
//! commit, and `check` / `render` call it offline.

use std::collections::HashMap;

use serde_json::json;

use crate::config::{Config, ConfigError};
use crate::inbound::{self, Event, Source};
use crate::render::{
    EventMeta, ROAM_MAX_TEXT_BYTES, Templates, event_context, fit_message, split_message,
};
use crate::routing::Router;
use crate::storage::{NewEvent, NewMessage};

pub struct Pipeline {
    pub sources: HashMap<String, Source>,
    pub templates: Templates,
    pub router: Router,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sources", &self.sources.len())
            .field("routes", &self.router.routes().len())
            .finish()
    }
}

/// An event ready to commit, with the template failures met while rendering it.
#[derive(Debug)]
pub struct Planned {
    pub event: NewEvent,
    pub render_errors: Vec<String>,
}

impl Pipeline {
    /// Compiles sources, templates and routes; every problem names its file and key.
    pub fn compile(cfg: &Config) -> Result<Pipeline, ConfigError> {
        let sources = inbound::build_sources(cfg)?;
        let templates = Templates::load(cfg)?;
        let router = Router::compile(cfg, &sources, &templates)?;
        Ok(Pipeline {
            sources: sources.into_iter().map(|s| (s.name.clone(), s)).collect(),
            templates,
            router,
        })
    }

    /// Routes and renders one event into the rows to commit.
    pub fn plan(&self, source: &Source, event: Event) -> Planned {
        if tracing::enabled!(tracing::Level::DEBUG) {
            for v in self
                .router
                .explain(&source.name, &event.name, &event.payload)
            {
                tracing::debug!(delivery_id = %event.delivery_id, event = %event.name, route = %v.route,
                    matched = v.failed.is_none(), why_not = v.failed.as_deref().unwrap_or(""), "routing");
            }
        }
        let routes = self
            .router
            .matching(&source.name, &event.name, &event.payload);
        let Event {
            name,
            delivery_id,
            entity,
            payload,
        } = event;
        let meta = EventMeta {
            name: &name,
            source: &source.name,
            kind: source.kind,
            delivery_id: &delivery_id,
            entity: entity.as_deref(),
        };
        let mut messages = Vec::new();
        let mut render_errors = Vec::new();
        if !routes.is_empty() {
            // Built once per event, moving the payload in: no copy per route.
            let data = event_context(&meta, payload);
            for route in &routes {
                let template = self.templates.resolve(route.template.as_deref(), &name);
                let rendered = self.templates.render_event(&template, &meta, &data);
                if let Some(e) = &rendered.error {
                    render_errors.push(e.clone());
                }
                // Over Roam's cap: cut with "… N more bytes", or (split_long) post the
                // first part and the rest as replies in its thread, under one threadKey.
                let mut parts = vec![rendered.text.clone()];
                let mut thread_key = None;
                if route.split_long && rendered.text.len() > ROAM_MAX_TEXT_BYTES {
                    parts = split_message(&rendered.text, ROAM_MAX_TEXT_BYTES - 200);
                    thread_key = Some(split_thread_key(&source.name, &delivery_id, &route.name));
                }
                for (n, part) in parts.iter().enumerate() {
                    let text = if n == 0 {
                        with_mentions(&route.mentions, part)
                    } else {
                        part.clone()
                    };
                    let text = fit_message(&text, ROAM_MAX_TEXT_BYTES);
                    for chat in &route.to {
                        messages.push(NewMessage {
                            route: route.name.clone(),
                            chat: chat.clone(),
                            request: chat_post_body(chat, &text, thread_key.as_deref()),
                            render_error: rendered.error.clone(),
                        });
                    }
                }
            }
        }
        Planned {
            event: NewEvent {
                source: source.name.clone(),
                delivery_id,
                name,
                entity,
                routes: routes.iter().map(|r| r.name.clone()).collect(),
                messages,
            },
            render_errors,
        }
    }
}

/// The route's mentions, in Roam's syntax, before the text (which stays under the cap).
fn with_mentions(mentions: &[String], text: &str) -> String {
    if mentions.is_empty() {
        return text.to_string();
    }
    let tags: Vec<String> = mentions.iter().map(|m| format!("<@{m}>")).collect();
    let prefix = tags.join(" ") + " ";
    let room = crate::render::ROAM_MAX_TEXT_BYTES.saturating_sub(prefix.len());
    prefix + &crate::render::fit_message(text, room)
}

/// The `chat.post` request body (`chat.json`: `chat` plus exactly one content type;
/// `threadKey` at most 64 characters).
pub fn chat_post_body(chat: &str, text: &str, thread_key: Option<&str>) -> String {
    match thread_key {
        Some(k) => {
            json!({ "chat": chat, "text": text, "markdown": true, "threadKey": k }).to_string()
        }
        None => json!({ "chat": chat, "text": text, "markdown": true }).to_string(),
    }
}

/// A stable thread key for one event's split message on one route (Roam: ≤ 64 chars).
fn split_thread_key(source: &str, delivery_id: &str, route: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{source}\u{0}{delivery_id}\u{0}{route}"));
    format!("rn-split-{}", &hex::encode(h)[..32])
}
