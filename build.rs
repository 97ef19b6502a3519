//! Embeds every template under templates/ (and its NAME.sample.json) into the binary,
//! so the image works without a templates directory and adding a template is adding a
//! file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("pub const TEMPLATES: &[(&str, &str, Option<&str>)] = &[\n");
    for path in files {
        let rel = path.strip_prefix(&root).unwrap_or(&path).with_extension("");
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let sample = path.with_extension("sample.json");
        let sample = if sample.is_file() {
            format!("Some(include_str!({:?}))", sample.display().to_string())
        } else {
            "None".to_string()
        };
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?}), {sample}),",
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

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "hbs") {
            println!("cargo:rerun-if-changed={}", p.display());
            if let Some(s) = Some(p.with_extension("sample.json")).filter(|s| s.is_file()) {
                println!("cargo:rerun-if-changed={}", s.display());
            }
            out.push(p);
        }
    }
}
