//! `Retry-After` parsing (delta seconds or an HTTP date) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = roam_notify::roam::parse_retry_after(s, std::time::SystemTime::now());
        let _ = roam_notify::roam::error_detail(s);
    }
});
