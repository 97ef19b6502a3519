//! The binary as built: linked with packed relative relocations where the C library
//! supports them (build.rs; docs/performance.md: 1.4 MiB less resident at every start).

use std::process::Command;

/// The build machine's glibc as (major, minor), if it is glibc.
fn glibc() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?; // "2.36" or "2.36.1"
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[test]
fn the_daemon_carries_packed_relocations_on_glibc_2_36_and_later() {
    let Some(version) = glibc() else {
        eprintln!("skipped: not a glibc system");
        return;
    };
    if version < (2, 36) || std::env::var_os("ROAM_NOTIFY_RELR").is_some_and(|v| v == "0") {
        eprintln!("skipped: glibc {version:?} or ROAM_NOTIFY_RELR=0 (no packed relocations)");
        return;
    }
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide", env!("CARGO_BIN_EXE_roam-notify")])
        .output()
        .expect("readelf (binutils, beside the linker) runs");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "readelf failed: {dynamic}");
    assert!(
        dynamic.contains("(RELR)"),
        "glibc {version:?} supports DT_RELR but the binary has none:\n{dynamic}"
    );
    // Packed, the relative relocations are gone from the table the loader reads.
    let rela_count = dynamic
        .lines()
        .find(|l| l.contains("(RELACOUNT)"))
        .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        rela_count < 1_000,
        "{rela_count} relative relocations left unpacked"
    );
    // And the binary still starts.
    let version_out = Command::new(env!("CARGO_BIN_EXE_roam-notify"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version_out.status.success());
}
