//! roam-notify: webhooks in, Roam messages out, nothing lost in between.
//!
//! Data flow, one module per step:
//! `http::hooks` receives a request → `inbound` verifies and parses it into events →
//! `routing` picks the routes → `render` writes the text → `storage` commits event and
//! messages (group commit) → the reply goes out → `delivery` drains the outbox through
//! the `roam` client, paced and retried. Routes that group, deduplicate or cap hold their
//! events in durable groups that `grouping::flusher` turns into messages when due.
//! `config` loads and checks everything up front; `app` wires it together; `check`
//! backs the offline `check` and `render` commands.

pub mod admin;
pub mod app;
pub mod check;
pub mod compose;
pub mod config;
pub mod delivery;
pub mod fieldpath;
pub mod grouping;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod ratelimit;
pub mod reload;
pub mod render;
pub mod roam;
pub mod routing;
pub mod silences;
pub mod storage;
pub mod text;
pub mod transcripts;

pub use app::{Application, StartError};
