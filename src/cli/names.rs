//! `check`'s online part: the `#Name`s and emails written in the config, asked of Roam.

use std::sync::Arc;

use super::check::Report;
use crate::config::Config;
use crate::directory::{Destination, Directory, Lookup, refresh, written};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::roam::RoamClient;

/// Resolves every `#Name` and email written in `cfg` with Roam (`chat.list`,
/// `user.lookup`) and reports each: its id, or why not (an unknown name with the closest
/// ones, an ambiguous one with its matches). Without a key it says it skipped this.
pub fn check_names(cfg: &Config, r: &mut Report) {
    let wanted = written(cfg);
    if wanted.is_empty() {
        return;
    }
    let Some(key) = cfg.roam.api_key.clone() else {
        r.line(format!(
            "names    skip  {} #Name(s) and email(s) not checked: no Roam API key (the daemon checks them at start)",
            wanted.len()
        ));
        return;
    };
    let client = match RoamClient::new(&cfg.roam, key) {
        Ok(c) => c,
        Err(e) => {
            r.fail(format!("names    FAIL  cannot create the HTTP client: {e}"));
            return;
        }
    };
    let pacer = Pacer::new(
        cfg.roam.rate_per_second,
        cfg.roam.burst,
        Arc::new(Metrics::default()),
    );
    let directory = Directory::default();
    let lookup = Lookup {
        client: &client,
        pacer: &pacer,
        store: None,
    };
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(refresh(&directory, lookup, &wanted, false))
                .map_err(|e| e.to_string())
        });
    if let Err(e) = asked {
        r.fail(format!("names    FAIL  cannot ask Roam about them: {e}"));
        return;
    }
    let snapshot = directory.snapshot();
    for (key, d) in wanted {
        match d {
            Destination::Name(name) => match snapshot.chat(&name) {
                Ok(hit) => r.line(format!("names    ok    {key}: #{name} is {}", hit.id)),
                Err(e) => r.fail(format!("names    FAIL  {key}: {e}")),
            },
            Destination::Email(email) => match snapshot.user(&email) {
                Some(id) => r.line(format!("names    ok    {key}: {email} is {id}")),
                None => r.fail(format!(
                    "names    FAIL  {key}: no Roam user has the email {email}"
                )),
            },
            _ => {}
        }
    }
}
