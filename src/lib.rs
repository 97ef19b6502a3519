//! roam-notify: webhooks in, Roam messages out, nothing lost in between.
//!
//! Data flow, one module per step, each using only the ones after it:
//! entry points (`http` for webhooks, `transcripts` for the scheduled pull, the CLI in
//! `cli`) → `ingest` (the one way in: `inbound` verifies and parses, `routing`
//! picks routes, `silences` and mute windows hold some back, `render` writes the text,
//! `compose` makes the `chat.post` rows, `grouping` holds events for digests) →
//! `storage` commits event and messages (group commit) before the answer → `delivery`
//! drains the outbox through the `roam` client, paced and retried. `config`, `metrics`,
//! `fieldpath`, `reads`, `text` and `ratelimit` are leaves anything may use; `app` wires it all.

pub mod app;
pub mod cli;
pub mod compose;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod enrich;
pub mod fieldpath;
pub mod grouping;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod pacer;
pub mod ratelimit;
pub mod reads;
pub mod reload;
pub mod render;
pub mod roam;
pub mod routing;
pub mod silences;
pub mod storage;
pub mod text;
pub mod transcripts;

pub use app::{Application, StartError};
