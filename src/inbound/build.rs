//! `[[sources]]` into [`Source`]s: the kind's entry in [`KINDS`] builds the handler; the
//! keys every source has (`allow_ips`, `rate_limit`) are read here.

use axum::http::StatusCode;
use ipnet::IpNet;
use serde_json::Value;

use super::kind::Build;
use super::{Ack, Inbound, KINDS, Parsed, Rejection, Source, SourceKind, simple};
use crate::config::{Config, ConfigError};
use crate::ratelimit::TokenBucket;

/// Adds the fields a kind computes for its templates (`_counts` for alert groups, …) to
/// a sample payload, so `check` and `render` see what a live event would.
pub fn prepare_sample(kind: &str, payload: &mut Value) {
    if let Some(enrich) = KINDS.iter().find(|k| k.name == kind).and_then(|k| k.enrich) {
        enrich(payload);
    }
}

/// Compiles every `[[sources]]` entry. Unless a `[[sources]]` entry has the transcript
/// source's name (`transcripts.source`, default `roam`), adds it as a source without a
/// webhook endpoint, so routes can name it (also while `[transcripts]` is off).
pub fn build_sources(cfg: &Config) -> Result<Vec<Source>, ConfigError> {
    let mut out: Vec<Source> = (0..cfg.sources.len())
        .map(|i| build_source(cfg, i))
        .collect::<Result<_, _>>()?;
    let t = &cfg.transcripts;
    match out.iter().find(|s| s.name == t.source) {
        Some(s) if t.enabled && s.kind != "roam" => {
            return Err(cfg.error(
                "transcripts.source",
                format!(
                    "{:?} is a {} source; transcript events need a source of kind \"roam\" (or a name no source uses)",
                    t.source, s.kind
                ),
            ));
        }
        None => out.push(Source {
            name: t.source.clone(),
            kind: "roam",
            internal: true,
            allow_ips: Vec::new(),
            limiter: None,
            handler: Box::new(NoWebhooks(t.source.clone())),
        }),
        _ => {}
    }
    Ok(out)
}

/// The transcript source when no `[[sources]]` entry declares it: no webhook endpoint.
struct NoWebhooks(String);

impl SourceKind for NoWebhooks {
    fn authenticate(&self, _: &Inbound<'_>) -> Result<(), Rejection> {
        Err(Rejection {
            status: StatusCode::NOT_FOUND,
            code: "unknown_source",
            message: format!(
                "source {:?} only carries transcripts fetched on schedule; to receive Roam's transcript:saved webhook here, add [[sources]] name = {:?}, kind = \"roam\" with the webhook signing secret",
                self.0, self.0
            ),
        })
    }

    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        self.authenticate(req).map(|_| Parsed {
            events: Vec::new(),
            ack: Ack::Default,
        })
    }
}

fn build_source(cfg: &Config, i: usize) -> Result<Source, ConfigError> {
    let sc = &cfg.sources[i];
    let Some(kind) = KINDS.iter().find(|k| k.name == sc.kind) else {
        let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        return Err(cfg.error(
            &format!("sources[{i}].kind"),
            format!(
                "unknown source kind {:?} (known: {})",
                sc.kind,
                known.join(", ")
            ),
        ));
    };
    let handler: Box<dyn SourceKind> = match &kind.build {
        Build::Simple { auth, parse } => Box::new(simple::build(cfg, i, kind.name, auth, *parse)?),
        Build::Custom(build) => build(cfg, i)?,
    };
    let allow_ips = match &sc.allow_ips {
        None => Vec::new(),
        Some(list) if list.is_empty() => {
            return Err(cfg.error(
                &format!("sources[{i}].allow_ips"),
                "empty list: it would refuse everyone; leave it out to allow any address",
            ));
        }
        Some(list) => parse_cidrs(list)
            .map_err(|(n, e)| cfg.error(&format!("sources[{i}].allow_ips[{n}]"), e))?,
    };
    let limiter = match sc.rate_limit {
        None => None,
        Some(r) if !(r > 0.0 && r.is_finite()) => {
            return Err(cfg.error(
                &format!("sources[{i}].rate_limit"),
                "must be a number of requests per second above 0",
            ));
        }
        Some(r) => Some(std::sync::Mutex::new(TokenBucket::new(
            r,
            sc.rate_limit_burst.unwrap_or(r.ceil() as u32).max(1),
        ))),
    };
    if sc.rate_limit_burst.is_some() && sc.rate_limit.is_none() {
        return Err(cfg.error(
            &format!("sources[{i}].rate_limit_burst"),
            "has no effect without rate_limit",
        ));
    }
    Ok(Source {
        name: sc.name.clone(),
        kind: kind.name,
        internal: false,
        allow_ips,
        limiter,
        handler,
    })
}

/// CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses; errors are (index, problem).
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, (usize, String)> {
    list.iter()
        .enumerate()
        .map(|(n, s)| {
            let t = s.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    (
                        n,
                        format!("{s:?} is not an address or CIDR like 192.0.2.0/24"),
                    )
                })
        })
        .collect()
}

/// Refuses the generic source's keys on a kind that reads its event and delivery id
/// itself, so a misplaced key is an error rather than silently ignored.
pub(super) fn reject_unused(cfg: &Config, i: usize, kind: &str) -> Result<(), ConfigError> {
    let sc = &cfg.sources[i];
    for (k, set) in [
        ("event_field", sc.event_field.is_some()),
        ("event_header", sc.event_header.is_some()),
        ("delivery_id_field", sc.delivery_id_field.is_some()),
        ("delivery_id_header", sc.delivery_id_header.is_some()),
    ] {
        if set {
            return Err(cfg.error(
                &format!("sources[{i}].{k}"),
                format!("not used by kind {kind:?}"),
            ));
        }
    }
    Ok(())
}
