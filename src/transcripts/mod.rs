//! Post-meeting transcripts: every finished meeting's summary and action items, posted
//! once, where the routes say.
//!
//! - `schedule`: when sweeps run (5-field cron in a time zone, right across DST).
//! - `sweep`: a run lists transcripts since a durable checkpoint (minus an overlap),
//!   fetches each finished one and commits it as a `roam.transcript.saved` event; the
//!   webhook queue (`transcript:saved`) goes through the same path.
//!
//! "Posted once" rests on the events table: a transcript is the event with delivery id
//! `transcript:<id>` on the transcript source, unique like every delivery id, and it is
//! committed with its messages. Two triggers racing, or a restart in the middle of a
//! sweep, meet that constraint and post nothing twice.

pub mod schedule;
pub mod sweep;

use std::sync::Mutex;

use crate::config::TranscriptsConfig;
use crate::inbound::roam::transcript::internal_domains;

/// What the sweep and the event builder need from `[transcripts]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: String,
    pub lookback: std::time::Duration,
    pub overlap: std::time::Duration,
    pub internal_domains: Vec<String>,
    /// `transcript.list` page size (Roam allows 1-100).
    pub page_size: u32,
}

impl Settings {
    pub fn from_config(c: &TranscriptsConfig) -> Settings {
        Settings {
            source: c.source.clone(),
            lookback: c.lookback,
            overlap: c.overlap,
            internal_domains: internal_domains(&c.internal_domains),
            page_size: 100,
        }
    }
}

/// The state of transcript processing that `/readyz` and `/metrics` show (the counts
/// are in `Metrics`).
#[derive(Debug, Default)]
pub struct TranscriptStatus {
    state: Mutex<RunState>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunState {
    /// Why processing is off, when it is.
    pub disabled: Option<String>,
    pub last_run_at: Option<String>,
    pub last_run_ok: Option<bool>,
    pub next_run_at: Option<String>,
    pub last_error: Option<String>,
    pub checkpoint: Option<String>,
}

impl TranscriptStatus {
    pub fn update(&self, f: impl FnOnce(&mut RunState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn snapshot(&self) -> RunState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
