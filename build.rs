//! Embeds every template under templates/ (`NAME.hbs` text, `NAME.card.toml` card, and
//! NAME.sample.json) into the binary,
//! so the image works without a templates directory and adding a template is adding a
//! file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    pack_relative_relocations();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("pub const TEMPLATES: &[(&str, bool, &str, Option<&str>)] = &[\n");
    for path in files {
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (stem, card) = match file_name.strip_suffix(".card.toml") {
            Some(stem) => (stem, true),
            None => (file_name.strip_suffix(".hbs").unwrap_or(file_name), false),
        };
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .with_file_name(stem);
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let sample = path.with_file_name(format!("{stem}.sample.json"));
        let sample = if sample.is_file() {
            format!("Some(include_str!({:?}))", sample.display().to_string())
        } else {
            "None".to_string()
        };
        let _ = writeln!(
            out,
            "    ({name:?}, {card}, include_str!({:?}), {sample}),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("builtin_templates.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

/// Links the daemon with packed relative relocations (`DT_RELR`) where the C library
/// supports them (glibc 2.36 and later). A position-independent executable carries one
/// relocation per pointer in its read-only data: as `RELA` entries that is 1.4 MB that
/// the loader reads, and so keeps resident, at every start; packed, 24 KB. Idle resident
/// memory falls by ~1.4 MiB and the binary stays position-independent (README,
/// Performance). Only when building for the machine itself, whose C library is the one
/// linked against: the linker makes the binary require `GLIBC_ABI_DT_RELR`, which an
/// older glibc lacks (it would refuse to load the program). `ROAM_NOTIFY_RELR=0` turns
/// it off.
fn pack_relative_relocations() {
    println!("cargo:rerun-if-env-changed=ROAM_NOTIFY_RELR");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let wanted = env("ROAM_NOTIFY_RELR") != "0"
        && env("CARGO_CFG_TARGET_OS") == "linux"
        && env("CARGO_CFG_TARGET_ENV") == "gnu"
        && env("TARGET") == env("HOST");
    if wanted && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text
        .trim()
        .strip_prefix("glibc ")
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| {
            let b = b.split('.').next()?; // "2.36" or "2.36.1"
            Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
        });
    parsed.is_some_and(|v| v >= (major, minor))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, out);
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(stem) = name
                .strip_suffix(".hbs")
                .or_else(|| name.strip_suffix(".card.toml"))
            else {
                continue;
            };
            println!("cargo:rerun-if-changed={}", p.display());
            let sample = p.with_file_name(format!("{stem}.sample.json"));
            if sample.is_file() {
                println!("cargo:rerun-if-changed={}", sample.display());
            }
            out.push(p);
        }
    }
}
