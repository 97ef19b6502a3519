//! The rule evaluator: an arbitrary `when` condition (JSON) compiled and checked
//! against an arbitrary payload. Input: `condition JSON` NUL `payload JSON`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roam_notify::routing::when;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(c), Some(p)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(cond), Ok(payload)) = (
        serde_json::from_slice::<serde_json::Value>(c),
        serde_json::from_slice::<serde_json::Value>(p),
    ) else {
        return;
    };
    if let Ok(compiled) = when::compile(&cond) {
        let _ = compiled.check(&payload);
    }
});
