//! The template data builder and the built-in templates: an arbitrary payload through
//! each kind's enrichment (`_counts`, transcript fields, Slack markdown) and rendering.
//! Input: byte 0 picks the kind (and, by its top bit, text instead of a card); the rest
//! is the payload JSON. The rendered message is then fitted to Roam's limits.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use roam_notify::render::{Content, EventMeta, Format, Templates, event_context};

static TEMPLATES: OnceLock<Templates> = OnceLock::new();
const KINDS: &[(&str, &str)] = &[
    ("alertmanager", "alertmanager.firing"),
    ("grafana", "grafana.resolved"),
    ("roam", "roam.transcript.saved"),
    ("slack", "slack.message"),
    ("github", "github.push"),
    ("github", "github.pull_request.closed"),
    ("gitlab", "gitlab.pipeline"),
    ("stripe", "stripe.invoice.paid"),
    ("generic", "generic.deploy"),
];

fuzz_target!(|data: &[u8]| {
    let t = TEMPLATES.get_or_init(|| Templates::builtin().expect("built-in templates"));
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(mut payload) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let (kind, name) = KINDS[(pick & 0x7f) as usize % KINDS.len()];
    let format = if pick & 0x80 == 0 {
        Format::Card
    } else {
        Format::Text
    };
    roam_notify::inbound::prepare_sample(kind, &mut payload);
    let meta = EventMeta {
        name,
        source: kind,
        kind,
        delivery_id: "fuzz",
        entity: None,
    };
    let template = t.resolve(None, name);
    let data = event_context(&meta, payload);
    let rendered = t.render_event(&template, format, &meta, &data);
    match &rendered.content {
        Content::Text(text) => {
            let _ = roam_notify::text::fit_message(text, roam_notify::text::ROAM_MAX_TEXT_BYTES);
        }
        Content::Card(card) => {
            let _ = card.blocks(true);
            let _ = card.blocks(false);
        }
    }
});
