//! Every source kind's signature check and parser on arbitrary headers and bodies.
//! Input: byte 0 picks the source; then header lines `name: value\n` up to a blank line;
//! the rest is the body. Nothing may panic; every outcome is Ok or a Rejection. Each
//! event is planned as accepting plans it, and each message rendered when sent is then
//! rendered as delivery renders it.
#![no_main]

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use roam_notify::inbound::Inbound;
use roam_notify::compose::render_later;
use roam_notify::ingest::{Pipeline, Rendering};

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let p = PIPELINE.get_or_init(roam_notify_fuzz::pipeline);
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut names: Vec<&String> = p.sources.keys().collect();
    names.sort();
    let source = &p.sources[names[pick as usize % names.len()]];
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&[][..], rest),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            headers.append(n, v);
        }
    }
    let uri: Uri = "/hooks/x".parse().unwrap();
    let body = axum::body::Bytes::copy_from_slice(body);
    let req = Inbound {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body: &body,
        url_token: None,
        reads: None,
    };
    let _ = source.authenticate(&req);
    if let Ok(parsed) = source.parse(&req) {
        for ev in parsed.events {
            let planned = p.plan(source, ev, Rendering::WhenSent);
            for m in &planned.event.messages {
                if let Some(render) = &m.render {
                    let _ = render_later(&p.templates, render, &m.route, &m.chat);
                }
            }
        }
    }
});
