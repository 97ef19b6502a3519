//! Helpers both benches use (each bench is its own crate; they include this file).

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A loopback port nobody is listening on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The roam-notify binary to measure: `ROAM_NOTIFY_BIN` (another build, e.g. an earlier
/// commit's, for a before/after), else the one cargo built with this bench.
pub fn roam_notify_bin() -> String {
    std::env::var("ROAM_NOTIFY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_roam-notify").to_string())
}
