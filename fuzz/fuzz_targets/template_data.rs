//! The template data builder and the built-in templates: an arbitrary payload through
//! each kind's enrichment (`_counts`, transcript fields, Slack markdown) and rendering.
//! Input: byte 0 picks the kind; the rest is the payload JSON.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use roam_notify::render::{EventMeta, Templates, event_context};

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
    let (kind, name) = KINDS[pick as usize % KINDS.len()];
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
    let rendered = t.render_event(&template, &meta, &data);
    let _ = roam_notify::render::fit_message(&rendered.text, 8000);
});
