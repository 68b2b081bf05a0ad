//! No import circles in the workspace: within each crate, no source file reaches itself through
//! the files it names in `crate::` / `super::` / `self::` paths (test modules aside). A circle
//! means two files cannot be read, tested or replaced one at a time.
//!
//! Paths are resolved to the longest module prefix that is a file (`crate::reference::norm::f` is
//! `reference/norm.rs`), so naming a submodule does not count as naming its parent. Re-exports
//! at a crate's root (`lib.rs`) are its public face and are not followed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every module file under `src` by module path (`a/b.rs` and `a/b/mod.rs` are `a::b`); test
/// modules (`tests.rs`) are left out.
fn modules(src: &Path, dir: &Path, out: &mut BTreeMap<Module, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            modules(src, &path, out);
            continue;
        }
        let Some(rel) = path.strip_prefix(src).unwrap().to_str().and_then(|r| r.strip_suffix(".rs")) else { continue };
        let mut m: Module = rel.split('/').map(String::from).collect();
        if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            m.pop();
        }
        if m.last().map(String::as_str) != Some("tests") {
            out.insert(m, path);
        }
    }
}

/// The source without comments and without an inline `#[cfg(test)] mod` (kept at a file's end).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|l| l.trim_start().starts_with("mod ") && l.ends_with('{'))
        {
            break;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// The paths `text` names from `crate`, `super` or `self`, made absolute (groups `{a, b::c}`
/// expanded one level).
fn paths(text: &str, me: &Module) -> Vec<Module> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find(|c: char| c.is_alphabetic()) {
        let start = at + i;
        let word = &text[start..start + ident_len(&text[start..])];
        at = start + word.len().max(1);
        let boundary = start == 0 || !text[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
        let mut base: Module = match word {
            "crate" if boundary => Vec::new(),
            "super" if boundary => me[..me.len().saturating_sub(1)].to_vec(),
            "self" if boundary => me.clone(),
            _ => continue,
        };
        let mut rest = &text[at..];
        while let Some(r) = rest.strip_prefix("::") {
            if let Some(group) = r.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let item = item.trim();
                    let mut p = base.clone();
                    p.extend(item.split("::").map(|s| s[..ident_len(s)].to_string()).filter(|s| !s.is_empty()));
                    out.push(p);
                }
                base.clear();
                break;
            }
            let n = ident_len(r);
            if n == 0 {
                break;
            }
            match &r[..n] {
                "super" => {
                    base.pop();
                }
                seg => base.push(seg.to_string()),
            }
            rest = &r[n..];
        }
        if !base.is_empty() {
            out.push(base);
        }
        at = text.len() - rest.len();
    }
    out
}

/// The module a path lands in: its longest prefix that is a module file.
fn resolve(mut path: Module, mods: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    while !path.is_empty() && !mods.contains_key(&path) {
        path.pop();
    }
    (!path.is_empty() && mods.contains_key(&path)).then_some(path)
}

/// A circle in `graph`, as the modules along it, if there is one.
fn circle(graph: &BTreeMap<Module, Vec<Module>>) -> Option<Vec<Module>> {
    fn visit(
        v: &Module,
        graph: &BTreeMap<Module, Vec<Module>>,
        state: &mut BTreeMap<Module, bool>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(v.clone(), false);
        stack.push(v.clone());
        for w in &graph[v] {
            match state.get(w) {
                Some(false) => {
                    let from = stack.iter().position(|m| m == w).unwrap_or(0);
                    return Some(stack[from..].to_vec());
                }
                Some(true) => {}
                None => {
                    if let Some(c) = visit(w, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(v.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    for v in graph.keys() {
        if !state.contains_key(v) {
            if let Some(c) = visit(v, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn graph_of(src: &Path) -> BTreeMap<Module, Vec<Module>> {
    let mut mods = BTreeMap::new();
    modules(src, src, &mut mods);
    mods.iter()
        .map(|(m, path)| {
            let text = code(&std::fs::read_to_string(path).unwrap());
            let mut to: Vec<Module> =
                paths(&text, m).into_iter().filter_map(|p| resolve(p, &mods)).filter(|t| t != m).collect();
            to.sort();
            to.dedup();
            (m.clone(), if m.is_empty() { Vec::new() } else { to })
        })
        .collect()
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["kernels", "engine", "tools", "benches"] {
        let graph = graph_of(&root.join(krate).join("src"));
        assert!(graph.len() > 1 || krate == "benches", "{krate}: {} modules found", graph.len());
        if let Some(c) = circle(&graph) {
            let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
            panic!("{krate}: import circle {}", names.join(" -> "));
        }
    }
}

#[test]
fn the_checker_finds_circles() {
    let me: Module = vec!["a".into(), "b".into()];
    let found = paths("use super::{c, d::e};\nlet x = crate::f::g::h(self::i);", &me);
    let want: Vec<Module> = vec![
        vec!["a".into(), "c".into()],
        vec!["a".into(), "d".into(), "e".into()],
        vec!["f".into(), "g".into(), "h".into()],
        vec!["a".into(), "b".into(), "i".into()],
    ];
    assert_eq!(found, want);
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let ring: BTreeMap<Module, Vec<Module>> =
        [(m("x"), vec![m("y")]), (m("y"), vec![m("z")]), (m("z"), vec![m("x")]), (m("w"), vec![m("x")])].into();
    assert_eq!(circle(&ring).map(|c| c.len()), Some(3));
    let line: BTreeMap<Module, Vec<Module>> = [(m("x"), vec![m("y")]), (m("y"), vec![])].into();
    assert_eq!(circle(&line), None);
}
