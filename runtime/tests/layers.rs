//! The runtime's modules form a stack whose imports only point down.
//!
//! This test reads `src/` and fails when a file names a module of a layer
//! above its own, or when files import each other in a cycle (directly or
//! through others). A path counts wherever it appears in code (`use`
//! items, qualified paths, `super::`, a `mod.rs` naming its children);
//! comments do not count. `lib.rs` only declares the modules and re-exports
//! the public API, so it is left out.
//!
//! To see the graph: `cargo test -p wray-runtime --test layers -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: the files of `src/` (as module paths, a folder
/// standing for everything in it) in each. A file may import files of its
/// own layer and of the layers below it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["error", "config", "ids", "output", "events"],
    ),
    ("objects", &["objects"]),
    ("exec", &["exec"]),
    ("host", &["host"]),
    ("task", &["task"]),
    ("actor", &["actor"]),
    ("job", &["job"]),
    ("api", &["api"]),
    ("cluster", &["cluster"]),
    ("node", &["node"]),
];

/// A module path such as `["exec", "engine"]` for `src/exec/engine.rs`.
type ModPath = Vec<String>;

struct Crate {
    /// Every module with a file of its own, and that file.
    files: BTreeMap<ModPath, PathBuf>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(src).unwrap();
                    let mut m: ModPath = rel
                        .iter()
                        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                        .collect();
                    if m.last().is_some_and(|l| l == "mod" || l == "lib") {
                        m.pop();
                    }
                    files.insert(m, path);
                }
            }
        }
        Crate { files }
    }

    /// The module with a file that `path` (absolute, from the crate root)
    /// names: its longest prefix that has one.
    fn resolve(&self, path: &[String]) -> ModPath {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.files.contains_key(p))
            .unwrap_or_default()
    }

    /// The modules `module`'s file names, other than itself.
    fn imports(&self, module: &ModPath) -> BTreeSet<ModPath> {
        let text = strip_comments(&std::fs::read_to_string(&self.files[module]).unwrap());
        let children: BTreeSet<String> = self
            .files
            .keys()
            .filter(|p| p.len() == module.len() + 1 && p.starts_with(module))
            .map(|p| p.last().unwrap().clone())
            .collect();
        let mut out = BTreeSet::new();
        for (inline, path) in paths(&text) {
            let (base, rest): (ModPath, &[String]) = match path[0].as_str() {
                "crate" => (vec![], &path[1..]),
                // Inside the file (`self::` in it, or `super::` from a
                // `mod tests` in it back to it).
                "self" if inline > 0 => continue,
                "self" => (module.clone(), &path[1..]),
                "super" => {
                    let ups = path.iter().take_while(|s| *s == "super").count();
                    if ups <= inline {
                        continue;
                    }
                    // A file's own module is its parent's child: `super` from
                    // `exec/engine.rs` is `exec`.
                    let mut base = module.clone();
                    for _ in 0..ups - inline {
                        base.pop();
                    }
                    (base, &path[ups..])
                }
                first if inline == 0 && children.contains(first) => (module.clone(), &path[..]),
                _ => continue,
            };
            let mut full = base;
            full.extend(rest.iter().cloned());
            let target = self.resolve(&full);
            if &target != module && !target.is_empty() {
                out.insert(target);
            }
        }
        out
    }
}

/// Removes `//` comments (doc comments too) and string literals, which may
/// mention paths without importing them.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '\'' => {
                // A char literal ('"' would open a string) or a lifetime.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\\") || rest.chars().nth(1) == Some('\'') {
                    for d in chars.by_ref() {
                        if d == '\'' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path of two or more segments in `text`, with `use` groups
/// (`a::{b::c, d}`) expanded: `[a, b, c]`, `[a, d]`; each with how many
/// inline modules (`mod tests { ... }`) it is in.
fn paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    // The brace depth at which each enclosing inline module opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let starts = is_ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i < 2 || tokens[i - 1] != "::");
        if starts {
            let mut found = Vec::new();
            i = path_at(&tokens, i, &mut [], &mut found);
            out.extend(found.into_iter().map(|p| (inline.len(), p)));
            continue;
        }
        match tokens[i].as_str() {
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push(depth);
                depth += 1;
                i += 3;
                continue;
            }
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads the path starting at `tokens[i]` after `prefix`, into `out`;
/// returns the index after it.
fn path_at(
    tokens: &[String],
    mut i: usize,
    prefix: &mut [String],
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                loop {
                    i = path_at(tokens, i, &mut path, out);
                    // `a::{b as c}`: the new name is no path.
                    if tokens.get(i).is_some_and(|t| t == "as") {
                        i += 2;
                    }
                    match tokens.get(i).map(String::as_str) {
                        Some(",") => i += 1,
                        Some("}") => return i + 1,
                        _ => return i,
                    }
                }
            }
            Some(t) if is_ident(t) => {
                path.push(t.to_string());
                i += 1;
                if tokens.get(i).map(String::as_str) == Some("::") {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some("}") => return i, // `a::{b, }`
            _ => {
                if path.len() > prefix.len() {
                    out.push(path);
                }
                return i;
            }
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters.
fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut ident = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    ident.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(ident);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push("::".into());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// The layer of `module`: the index in [`LAYERS`] of the entry naming it
/// or a folder holding it.
fn layer(module: &ModPath) -> Option<usize> {
    LAYERS.iter().position(|(_, members)| {
        members
            .iter()
            .any(|m| module.first().is_some_and(|f| f == m))
    })
}

fn name(m: &ModPath) -> String {
    m.join("::")
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                scc.push(w.clone());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn graph() -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let krate = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    krate
        .files
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| (m.clone(), krate.imports(m)))
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let graph = graph();
    for (m, imports) in &graph {
        println!(
            "{} -> {}",
            name(m),
            imports.iter().map(name).collect::<Vec<_>>().join(", ")
        );
    }
    let found = cycles(&graph);
    let text: Vec<String> = found
        .iter()
        .map(|scc| scc.iter().map(name).collect::<Vec<_>>().join(", "))
        .collect();
    assert!(
        found.is_empty(),
        "these modules import each other (directly or through others):\n  {}",
        text.join("\n  ")
    );
}

#[test]
fn imports_point_down_the_layers() {
    let mut wrong = Vec::new();
    for (m, imports) in &graph() {
        let Some(own) = layer(m) else {
            wrong.push(format!("{} is in no layer: add it to LAYERS", name(m)));
            continue;
        };
        for i in imports {
            match layer(i) {
                Some(l) if l <= own => {}
                _ => wrong.push(format!(
                    "{} ({}) imports {} ({})",
                    name(m),
                    LAYERS[own].0,
                    name(i),
                    layer(i).map_or("no layer", |l| LAYERS[l].0)
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_checker_sees_paths_groups_and_cycles() {
    let text = strip_comments(
        "use crate::a::{b::C, d};\n// crate::x::y\nlet s = \"crate::q::r\"; super::e::f(); g::H",
    );
    let found: Vec<Vec<String>> = paths(&text).into_iter().map(|(_, p)| p).collect();
    for want in [
        &["crate", "a", "b", "C"][..],
        &["crate", "a", "d"],
        &["super", "e", "f"],
        &["g", "H"],
    ] {
        assert!(found.iter().any(|p| p == want), "{want:?} not in {found:?}");
    }
    assert!(
        !found
            .iter()
            .any(|p| p.contains(&"x".to_string()) || p.contains(&"q".to_string()))
    );
    let nested = paths("a::b; mod tests { use super::c::D; fn f() { e::F } } g::H");
    let depths: Vec<usize> = nested.iter().map(|(d, _)| *d).collect();
    assert_eq!(depths, [0, 1, 1, 0], "{nested:?}");
    // A renamed import in a group ends neither the group nor a module.
    let renamed = paths("mod m { use a::{B as C, d}; } e::F");
    let found: Vec<(usize, Vec<String>)> = renamed;
    let want = |d: usize, p: &[&str]| (d, p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        found,
        [
            want(1, &["a", "B"]),
            want(1, &["a", "d"]),
            want(0, &["e", "F"])
        ]
    );
    let m = |s: &str| vec![s.to_string()];
    let graph: BTreeMap<_, _> = [
        (m("a"), BTreeSet::from([m("b")])),
        (m("b"), BTreeSet::from([m("c")])),
        (m("c"), BTreeSet::from([m("a")])),
        (m("d"), BTreeSet::from([m("a")])),
    ]
    .into();
    assert_eq!(cycles(&graph).len(), 1);
    assert_eq!(cycles(&graph)[0].len(), 3);
}
