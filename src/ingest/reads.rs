//! Which parts of a webhook's JSON each source builds (`crate::reads`): what its
//! sender's parser, its routes (conditions, target expressions, templates) and the
//! configured silences read. A source of a kind that does not list what its parser
//! reads, with an enricher, or with a route that holds events (groups, mute windows)
//! or messages assignees builds every payload whole, as does every source while a
//! stored silence has conditions on the payload.

use crate::enrich::Enrichers;
use crate::inbound::{Source, kind_reads};
use crate::reads::Reads;
use crate::render::Templates;
use crate::routing::Router;
use crate::silences::Silences;

/// What `source`'s parser, routes and the configured silences read of its payloads.
pub fn source_reads(
    source: &Source,
    router: &Router,
    templates: &Templates,
    silences: &Silences,
    enrichers: &Enrichers,
) -> Reads {
    let Some(fields) = kind_reads(source.kind) else {
        return Reads::All;
    };
    if enrichers.covers(&source.name) {
        return Reads::All;
    }
    let Some(mut r) = Reads::of_fields(fields) else {
        return Reads::All;
    };
    silences.configured_reads(&mut r);
    for route in router.routes().iter().filter(|x| x.source == source.name) {
        // Held and muted events keep their payload for the digest (`grouping::Item`).
        if route.hold.is_some() || !route.mute.is_empty() || route.dm_assignees {
            return Reads::All;
        }
        router.reads(route, &mut r);
        match &route.template {
            Some(t) => templates.reads(t, &mut r),
            None => {
                for name in templates.kind_candidates(source.kind) {
                    templates.reads(name, &mut r);
                }
            }
        }
        if r.is_all() {
            break;
        }
    }
    r
}
