//! The house rules the code is held to, checked on every run: no import cycle between
//! the first-level modules under `src/` (an edge is any `crate::X` path used inside a
//! module, as the module map in the README reads), and no Rust file over 600 lines, in the
//! daemon's code, its tests, its benchmarks or its fuzz targets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // A build's output (`fuzz/target`) is not the project's code.
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// First-level module -> the first-level modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut list = Vec::new();
        if p.is_dir() {
            rust_files(&p, &mut list);
        } else if p.extension().is_some_and(|x| x == "rs") {
            list.push(p);
        } else {
            continue;
        }
        files.insert(name, list);
    }
    let path = regex::Regex::new(r"crate::(\w+)|crate::\{([^}]*)\}").unwrap();
    let word = regex::Regex::new(r"\w+").unwrap();
    let mut graph = BTreeMap::new();
    for (module, list) in &files {
        let mut uses = BTreeSet::new();
        for f in list {
            let text = std::fs::read_to_string(f).unwrap();
            for c in path.captures_iter(&text) {
                let names: Vec<String> = match (c.get(1), c.get(2)) {
                    (Some(one), _) => vec![one.as_str().to_string()],
                    (_, Some(group)) => word
                        .find_iter(group.as_str())
                        .map(|m| m.as_str().to_string())
                        .collect(),
                    _ => vec![],
                };
                for n in names {
                    if &n != module && files.contains_key(&n) {
                        uses.insert(n);
                    }
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in &graph[at] {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_string());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(graph, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_import_cycle_between_first_level_modules() {
    let graph = module_graph();
    assert!(graph.len() > 10, "modules found: {graph:?}");
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        if let Some(c) = cycle_from(&graph, start, start, &mut path, &mut BTreeSet::new()) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn no_rust_file_over_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "files found: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}
