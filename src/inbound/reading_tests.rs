//! Every kind that lists the fields its parser reads ([`super::Kind::reading`]) gives,
//! for each of its fixtures, the same events from those fields alone as from the whole
//! payload: a field its parser reads but does not list would change an event's name,
//! delivery id or entity here.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::Value;

use super::kind::Build;
use super::{Event, Inbound, KINDS};
use crate::reads::Reads;

type Headers = fn(&str) -> Vec<(&'static str, String)>;

/// A kind's payloads and the headers its parser needs for one, given its file name
/// without `.json`: its published fixtures (`tests/fixtures/<kind>`), or for a kind
/// without any, the payloads written from its documented schema (`tests/data/<kind>.*`).
fn fixtures(kind: &str) -> (Vec<PathBuf>, Headers) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let folder = |dir: PathBuf, prefix: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(prefix) && name.ends_with(".json")
            })
            .collect();
        files.sort();
        files
    };
    let published = |kind: &str| folder(root.join("fixtures").join(kind), "");
    match kind {
        "github" => (published("github"), |stem| {
            let event = stem.split('.').next().unwrap_or(stem);
            vec![("x-github-event", event.to_string())]
        }),
        "gitlab" | "stripe" | "pagerduty" | "circleci" | "jenkins" => (published(kind), |_| vec![]),
        "sentry" => (published("sentry"), |_| {
            vec![("sentry-hook-resource", "issue".to_string())]
        }),
        // No X-Buildkite-Event: the event is then read from the body's `event`.
        "buildkite" => (folder(root.join("data"), "buildkite."), |_| vec![]),
        other => panic!("{other} lists the fields it reads: name its fixtures here"),
    }
}

/// Whether `part` is `whole` with values left out: objects keep a subset of their keys,
/// arrays their length (an element left out is null), everything read is equal.
fn within(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| within(v, wv))),
        (Value::Array(p), Value::Array(w)) => {
            p.len() == w.len()
                && p.iter()
                    .zip(w)
                    .all(|(pv, wv)| pv.is_null() || within(pv, wv))
        }
        _ => part == whole,
    }
}

/// Parses with `parse` (the kind's own), whole or building only `reads`.
pub(super) fn parse_with(
    parse: super::kind::ParseFn,
    headers: &HeaderMap,
    body: &[u8],
    reads: Option<&Reads>,
) -> Vec<Event> {
    let uri = Uri::from_static("/hooks/test");
    let body = Bytes::copy_from_slice(body);
    let req = Inbound {
        method: &Method::POST,
        uri: &uri,
        headers,
        body: &body,
        url_token: None,
        reads,
    };
    parse(&req).unwrap().events
}

#[test]
fn every_kind_that_lists_its_reads_parses_its_fixtures_the_same_from_them() {
    let mut counts = Vec::new();
    for kind in KINDS.iter().filter(|k| k.reads.is_some()) {
        let Build::Simple { parse, .. } = kind.build else {
            panic!("{}: only simple kinds list their reads", kind.name);
        };
        let reads = Reads::of_fields(kind.reads.unwrap_or_default()).unwrap();
        let (files, headers_of) = fixtures(kind.name);
        let mut events = 0;
        for path in &files {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let body = std::fs::read(path).unwrap();
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            for (k, v) in headers_of(file.trim_end_matches(".json")) {
                headers.insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v).unwrap(),
                );
            }
            let whole = parse_with(parse, &headers, &body, None);
            let part = parse_with(parse, &headers, &body, Some(&reads));
            assert_eq!(part.len(), whole.len(), "{file}");
            for (p, w) in part.iter().zip(&whole) {
                assert_eq!(
                    (&p.name, &p.delivery_id, &p.entity),
                    (&w.name, &w.delivery_id, &w.entity),
                    "{file}"
                );
                assert!(w.whole.is_none(), "{file}");
                assert_eq!(p.whole.as_deref(), Some(body.as_slice()), "{file}");
                assert!(within(&p.payload, &w.payload), "{file}: {}", p.payload);
                // Every fixture names an entity (so the fields it is made of are read)
                // and has fields nothing reads (so building in part is tested).
                assert!(w.entity.is_some(), "{file}: no entity");
                assert_ne!(p.payload, w.payload, "{file}: nothing was left out");
                events += 1;
            }
        }
        counts.push((kind.name, events));
    }
    // The kinds that list their reads, and how many events their fixtures give (a new
    // one, or a fixture folder read wrongly, shows here).
    counts.sort_unstable();
    assert_eq!(
        counts,
        [
            ("buildkite", 1),
            ("circleci", 1),
            ("github", 12),
            ("gitlab", 9),
            ("jenkins", 1),
            ("pagerduty", 4),
            ("sentry", 2),
            ("stripe", 2)
        ]
    );
}

#[test]
fn within_tells_a_payload_left_out_from_one_changed() {
    let whole = serde_json::json!({"a": {"b": 1, "c": [1, {"d": 2}]}, "e": "x"});
    let part = serde_json::json!({"a": {"c": [null, {"d": 2}]}});
    assert!(within(&part, &whole));
    assert!(!within(&serde_json::json!({"a": {"c": [null]}}), &whole));
    assert!(!within(&serde_json::json!({"e": "y"}), &whole));
    assert!(!within(&serde_json::json!({"f": 1}), &whole));
}
