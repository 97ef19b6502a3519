//! Prometheus metrics: labelled counters and real histograms (cumulative buckets), one
//! registry per running daemon (so tests in one process do not mix), written in the
//! text exposition format by the admin listener's `/metrics`.
//!
//! Label sets are few (sources, routes, endpoints, statuses), so a counter family is a
//! map behind a read-write lock: the hot path takes the read lock and bumps an atomic.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A counter family with fixed label names. Label sets are few (sources x results,
/// routes x outcomes), so they are a short list searched without allocating: the hot
/// path takes the read lock, compares strings and bumps an atomic.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: RwLock<Vec<(Vec<String>, Arc<AtomicU64>)>>,
}

fn same(stored: &[String], labels: &[&str]) -> bool {
    stored.len() == labels.len() && stored.iter().zip(labels).all(|(a, b)| a == b)
}

impl CounterVec {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> CounterVec {
        CounterVec {
            name,
            help,
            labels,
            values: RwLock::new(Vec::new()),
        }
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[&str], n: u64) {
        let found = self
            .values
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, _)| same(k, labels))
            .map(|(_, c)| c.clone());
        let counter = match found {
            Some(c) => c,
            None => {
                let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
                match values.iter().find(|(k, _)| same(k, labels)) {
                    Some((_, c)) => c.clone(),
                    None => {
                        let c = Arc::new(AtomicU64::new(0));
                        values.push((labels.iter().map(|s| s.to_string()).collect(), c.clone()));
                        values.sort_by(|a, b| a.0.cmp(&b.0));
                        c
                    }
                }
            }
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value for these labels (0 if never counted).
    #[cfg(test)]
    pub fn get(&self, labels: &[&str]) -> u64 {
        self.values
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, _)| same(k, labels))
            .map_or(0, |(_, c)| c.load(Ordering::Relaxed))
    }

    fn write(&self, out: &mut Exposition) {
        out.family(self.name, "counter", self.help);
        for (values, v) in self.values.read().unwrap_or_else(|p| p.into_inner()).iter() {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            out.sample(self.name, "", &labels, v.load(Ordering::Relaxed));
        }
    }
}

/// A histogram in seconds with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// One count per bound (not cumulative; summed when written), plus +Inf.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Histogram {
        Histogram {
            name,
            help,
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn write(&self, out: &mut Exposition) {
        out.family(self.name, "histogram", self.help);
        let mut cumulative = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            out.sample(self.name, "_bucket", &[("le", &b.to_string())], cumulative);
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        out.sample(self.name, "_bucket", &[("le", "+Inf")], cumulative);
        out.sample(
            self.name,
            "_sum",
            &[],
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.sample(self.name, "_count", &[], cumulative);
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

/// Every metric the daemon keeps besides the gauges read from storage at scrape time.
#[derive(Debug)]
pub struct Metrics {
    pub webhooks: CounterVec,
    pub routed: CounterVec,
    pub messages: CounterVec,
    pub roam_calls: CounterVec,
    pub template_errors: CounterVec,
    pub ack_seconds: Histogram,
    pub delivery_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            webhooks: CounterVec::new(
                "roam_notify_webhooks_total",
                "Webhook requests by source and result (accepted, duplicate, unauthorized, bad_request, too_large, rate_limited, forbidden, unknown_source).",
                &["source", "result"],
            ),
            routed: CounterVec::new(
                "roam_notify_events_routed_total",
                "Accepted events by the route they matched.",
                &["route"],
            ),
            messages: CounterVec::new(
                "roam_notify_messages_total",
                "Outbox messages by route and outcome (queued, held, sent, retried, dead).",
                &["route", "outcome"],
            ),
            roam_calls: CounterVec::new(
                "roam_notify_roam_api_calls_total",
                "Calls to Roam's API by endpoint and HTTP status (\"network\" when no answer).",
                &["endpoint", "status"],
            ),
            template_errors: CounterVec::new(
                "roam_notify_template_render_errors_total",
                "Messages sent in the fallback form because their template failed, by route.",
                &["route"],
            ),
            ack_seconds: Histogram::new(
                "roam_notify_webhook_ack_seconds",
                "Time from a webhook's arrival to its answer (verify, parse, route, render, durable commit).",
                ACK_BUCKETS,
            ),
            delivery_seconds: Histogram::new(
                "roam_notify_delivery_latency_seconds",
                "Time from acceptance (or a group's flush) to the message being posted in Roam.",
                DELIVERY_BUCKETS,
            ),
        }
    }
}

impl Metrics {
    pub fn write(&self, out: &mut Exposition) {
        self.webhooks.write(out);
        self.routed.write(out);
        self.messages.write(out);
        self.roam_calls.write(out);
        self.template_errors.write(out);
        self.ack_seconds.write(out);
        self.delivery_seconds.write(out);
    }
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition(pub String);

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        self.0.push_str(name);
        self.0.push_str(suffix);
        if !labels.is_empty() {
            let list: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", list.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let h = Histogram::new("h", "help", &[0.01, 0.1, 1.0]);
        for ms in [1, 5, 50, 500, 5000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut e = Exposition::default();
        h.write(&mut e);
        let t = e.0;
        assert!(t.contains("# TYPE h histogram"));
        assert!(t.contains("h_bucket{le=\"0.01\"} 2\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"0.1\"} 3\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"1\"} 4\n"), "{t}");
        assert!(t.contains("h_bucket{le=\"+Inf\"} 5\n"), "{t}");
        assert!(t.contains("h_count 5\n"), "{t}");
        assert!(t.contains("h_sum 5.556\n"), "{t}");
    }

    #[test]
    fn counters_keep_label_sets_apart_and_escape_values() {
        let c = CounterVec::new("c_total", "help", &["route"]);
        c.inc(&["a"]);
        c.add(&["a"], 2);
        c.inc(&["b \"quoted\""]);
        assert_eq!(c.get(&["a"]), 3);
        let mut e = Exposition::default();
        c.write(&mut e);
        assert!(e.0.contains("c_total{route=\"a\"} 3\n"), "{}", e.0);
        assert!(
            e.0.contains("c_total{route=\"b \\\"quoted\\\"\"} 1\n"),
            "{}",
            e.0
        );
    }
}
