//! Every metric the daemon keeps, in one `prometheus-client` registry per running daemon
//! (so tests in one process do not mix). `/metrics` encodes it; `/readyz` reads the same
//! counters, so the two never disagree.
//!
//! Gauges that describe storage (outbox, held events) and other components' state
//! (leadership, transcript schedule) are set just before each scrape ([`Metrics::encode`]
//! takes them as [`ScrapeState`]).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Label names paired with values, in order.
fn labels(names: &'static [&'static str], values: &[&str]) -> Labels {
    names
        .iter()
        .copied()
        .zip(values.iter().map(|v| v.to_string()))
        .collect()
}

/// A counter family with fixed label names, counted by label values in that order.
#[derive(Debug, Clone)]
pub struct Counters {
    names: &'static [&'static str],
    family: Family<Labels, Counter>,
}

impl Counters {
    fn new(names: &'static [&'static str]) -> Counters {
        Counters {
            names,
            family: Family::default(),
        }
    }

    fn labels(&self, values: &[&str]) -> Labels {
        labels(self.names, values)
    }

    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        self.family.get_or_create(&self.labels(values)).inc_by(n);
    }

    /// The current value for these label values (0 if never counted).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.family.get_or_create(&self.labels(values)).get()
    }
}

/// A gauge family set at scrape time.
#[derive(Debug, Clone)]
struct Gauges {
    names: &'static [&'static str],
    family: Family<Labels, Gauge<f64, AtomicU64>>,
}

impl Gauges {
    fn new(names: &'static [&'static str]) -> Gauges {
        Gauges {
            names,
            family: Family::default(),
        }
    }

    fn set(&self, values: &[&str], v: f64) {
        self.family
            .get_or_create(&labels(self.names, values))
            .set(v);
    }
}

/// A histogram of durations in seconds.
#[derive(Debug, Clone)]
pub struct Seconds(Histogram);

impl Seconds {
    fn new(buckets: &[f64]) -> Seconds {
        Seconds(Histogram::new(buckets.iter().copied()))
    }

    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// Acknowledgement: milliseconds matter (senders time out after 3-10 s).
const ACK_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Accepted to posted: seconds when healthy, hours during an outage or a group wait.
const DELIVERY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// The `result` label values of `roam_notify_webhooks_total`.
pub const WEBHOOK_RESULTS: &[&str] = &[
    "accepted",
    "duplicate",
    "ping",
    "unauthorized",
    "bad_request",
    "too_large",
    "rate_limited",
    "forbidden",
    "unknown_source",
    "storage_unavailable",
];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// source, result (one of [`WEBHOOK_RESULTS`]).
    pub webhooks: Counters,
    /// route.
    pub routed: Counters,
    /// route, outcome (queued, held, sent, retried, dead).
    pub messages: Counters,
    /// endpoint, status.
    pub roam_calls: Counters,
    /// route.
    pub template_errors: Counters,
    /// reason (silenced, muted).
    pub quiet: Counters,
    /// result (ok, invalid).
    pub reloads: Counters,
    /// result (ok, failed).
    pub transcript_runs: Counters,
    /// outcome (processed, skipped_live, failed).
    pub transcripts: Counters,
    /// source, result (fetched, cached, failed).
    pub enrichments: Counters,
    pub rate_limited: Counter,
    pub roam_pauses: Counter,
    pub roam_paused_seconds: Counter<f64, AtomicU64>,
    pub ack_seconds: Seconds,
    pub delivery_seconds: Seconds,
    outbox: Gauges,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    held: Gauges,
    transcript_last_run: Gauge,
    transcript_next_run: Gauge,
    leader: Gauge,
}

/// What `/metrics` reads from storage and other components at scrape time.
#[derive(Debug, Default)]
pub struct ScrapeState {
    /// (pending, dead, age of the oldest pending in seconds), if storage answered.
    pub outbox: Option<(i64, i64, f64)>,
    /// Held events by route, if storage answered.
    pub held: Option<Vec<(String, i64)>>,
    pub transcript_last_run: i64,
    pub transcript_next_run: i64,
    pub leader: bool,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            webhooks: Counters::new(&["source", "result"]),
            routed: Counters::new(&["route"]),
            messages: Counters::new(&["route", "outcome"]),
            roam_calls: Counters::new(&["endpoint", "status"]),
            template_errors: Counters::new(&["route"]),
            quiet: Counters::new(&["reason"]),
            reloads: Counters::new(&["result"]),
            transcript_runs: Counters::new(&["result"]),
            transcripts: Counters::new(&["outcome"]),
            enrichments: Counters::new(&["source", "result"]),
            rate_limited: Counter::default(),
            roam_pauses: Counter::default(),
            roam_paused_seconds: Counter::default(),
            ack_seconds: Seconds::new(ACK_BUCKETS),
            delivery_seconds: Seconds::new(DELIVERY_BUCKETS),
            outbox: Gauges::new(&["status"]),
            outbox_oldest_age: Gauge::default(),
            held: Gauges::new(&["route"]),
            transcript_last_run: Gauge::default(),
            transcript_next_run: Gauge::default(),
            leader: Gauge::default(),
        };
        m.register()
    }
}

impl Metrics {
    fn register(mut self) -> Metrics {
        // Series whose label values are known up front start at 0, so a dashboard or an
        // alert sees them (and their first increase) from the start.
        for (c, values) in [
            (&self.quiet, &["silenced", "muted"][..]),
            (&self.reloads, &["ok", "invalid"]),
            (&self.transcript_runs, &["ok", "failed"]),
            (&self.transcripts, &["processed", "skipped_live", "failed"]),
        ] {
            for v in values {
                c.get(&[v]);
            }
        }
        let r = &mut self.registry;
        let p = "roam_notify_";
        let c = |r: &mut Registry, name: &str, help: &str, f: &Counters| {
            r.register(format!("{p}{name}"), help, f.family.clone())
        };
        c(
            r,
            "webhooks",
            "Webhook requests by source and result (accepted, duplicate, ping, unauthorized, bad_request, too_large, rate_limited, forbidden, unknown_source, storage_unavailable)",
            &self.webhooks,
        );
        c(
            r,
            "events_routed",
            "Accepted events by the route they matched",
            &self.routed,
        );
        c(
            r,
            "messages",
            "Outbox messages by route and outcome (queued, held, sent, retried, dead)",
            &self.messages,
        );
        c(
            r,
            "roam_api_calls",
            "Calls to Roam's API by endpoint and HTTP status (\"network\" when no answer)",
            &self.roam_calls,
        );
        c(
            r,
            "template_render_errors",
            "Messages whose template failed, by route: sent in the plain fallback form, or without the optional card part that failed",
            &self.template_errors,
        );
        c(
            r,
            "quiet",
            "Route messages not sent now, by reason (silenced, muted)",
            &self.quiet,
        );
        c(r, "config_reloads", "Reloads by result", &self.reloads);
        c(
            r,
            "enrichments",
            "CRM records looked up for events, by source and result (fetched, cached, failed)",
            &self.enrichments,
        );
        c(
            r,
            "transcript_runs",
            "Transcript sweeps by result",
            &self.transcript_runs,
        );
        c(
            r,
            "transcripts",
            "Transcripts by outcome",
            &self.transcripts,
        );
        r.register(
            format!("{p}rate_limited"),
            "429 answers from Roam to chat.post / chat.update",
            self.rate_limited.clone(),
        );
        r.register(
            format!("{p}roam_pauses"),
            "Pauses of all calls to Roam (a 429, or a refused key)",
            self.roam_pauses.clone(),
        );
        r.register(
            format!("{p}roam_paused_seconds"),
            "Time all calls to Roam were paused",
            self.roam_paused_seconds.clone(),
        );
        r.register(format!("{p}webhook_ack_seconds"), "Time from a webhook's arrival to its answer (verify, parse, route, render, durable commit)", self.ack_seconds.0.clone());
        r.register(
            format!("{p}delivery_latency_seconds"),
            "Time from acceptance (or a group's flush) to the message being posted in Roam",
            self.delivery_seconds.0.clone(),
        );
        r.register(
            format!("{p}outbox_messages"),
            "Outbox messages by status (pending includes those being sent)",
            self.outbox.family.clone(),
        );
        r.register(
            format!("{p}outbox_oldest_pending_age_seconds"),
            "Age of the oldest message not yet delivered (0 when none)",
            self.outbox_oldest_age.clone(),
        );
        r.register(
            format!("{p}held_events"),
            "Events waiting in groups (grouping, dedup, max_messages, mute summaries), by route",
            self.held.family.clone(),
        );
        r.register(
            format!("{p}transcript_last_run_timestamp_seconds"),
            "When the last transcript sweep ended (0: none yet)",
            self.transcript_last_run.clone(),
        );
        r.register(
            format!("{p}transcript_next_run_timestamp_seconds"),
            "When the next scheduled sweep runs (0: none)",
            self.transcript_next_run.clone(),
        );
        r.register(
            format!("{p}background_leader"),
            "1 on the replica that runs the group flusher, transcript queue retries and pruning",
            self.leader.clone(),
        );
        self
    }

    /// Sets the scrape-time gauges and encodes the registry (OpenMetrics text).
    pub fn encode(&self, s: ScrapeState) -> String {
        if let Some((pending, dead, age)) = s.outbox {
            self.outbox.set(&["pending"], pending as f64);
            self.outbox.set(&["dead"], dead as f64);
            self.outbox_oldest_age.set(age);
        }
        if let Some(held) = s.held {
            // Routes whose groups emptied (or that a reload removed) drop out.
            self.held.family.clear();
            for (route, n) in held {
                self.held.set(&[&route], n as f64);
            }
        }
        self.transcript_last_run.set(s.transcript_last_run);
        self.transcript_next_run.set(s.transcript_next_run);
        self.leader.set(i64::from(s.leader));
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The sum of a counter family over every combination of the given label values.
    pub fn sum(&self, counters: &Counters, per_label: &[&[&str]]) -> u64 {
        fn walk(c: &Counters, rest: &[&[&str]], chosen: &mut Vec<String>) -> u64 {
            match rest.split_first() {
                None => {
                    let v: Vec<&str> = chosen.iter().map(String::as_str).collect();
                    c.get(&v)
                }
                Some((first, tail)) => first
                    .iter()
                    .map(|x| {
                        chosen.push(x.to_string());
                        let n = walk(c, tail, chosen);
                        chosen.pop();
                        n
                    })
                    .sum(),
            }
        }
        walk(counters, per_label, &mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let m = Metrics::default();
        m.ack_seconds.observe(Duration::from_micros(300));
        m.ack_seconds.observe(Duration::from_millis(3));
        m.ack_seconds.observe(Duration::from_secs(60));
        let text = m.encode(ScrapeState::default());
        assert!(
            text.contains("roam_notify_webhook_ack_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("roam_notify_webhook_ack_seconds_bucket{le=\"0.005\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("roam_notify_webhook_ack_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("roam_notify_webhook_ack_seconds_count 3"),
            "{text}"
        );
    }

    #[test]
    fn counters_keep_label_sets_apart_and_escape_values() {
        let m = Metrics::default();
        m.webhooks.inc(&["a", "accepted"]);
        m.webhooks.inc(&["a", "accepted"]);
        m.webhooks.inc(&["b\"x", "accepted"]);
        assert_eq!(m.webhooks.get(&["a", "accepted"]), 2);
        assert_eq!(m.sum(&m.webhooks, &[&["a", "b\"x"], &["accepted"]]), 3);
        let text = m.encode(ScrapeState::default());
        assert!(
            text.contains("roam_notify_webhooks_total{source=\"a\",result=\"accepted\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("roam_notify_webhooks_total{source=\"b\\\"x\",result=\"accepted\"} 1"),
            "{text}"
        );
    }
}
