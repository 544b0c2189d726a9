//! The floors of docs/architecture.md, checked on the source: every `use crate::…`, `super::…`,
//! `self::…` and child-module path in `src/` is an edge from the module it is written in to the
//! module it names, submodules and inline modules included. There must be no circle of edges
//! anywhere, no edge pointing up a floor, and no surface importing another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module by its path below the crate root (`[]` is the root).
type Module = Vec<String>;

/// Top-level modules by floor, top first; an edge may only point to its own floor or one
/// below. The surfaces share a floor but may not import one another.
const FLOORS: [(&str, &[&str]); 6] = [
    ("entry", &["", "cli", "fuzzing"]),
    ("server", &["server"]),
    ("surfaces", &["rpc", "openai", "a2a"]),
    (
        "pipeline",
        &[
            "params",
            "gateway",
            "routing",
            "resilience",
            "ledger",
            "access",
            "api",
            "telemetry",
            "context",
            "config",
        ],
    ),
    ("providers", &["providers"]),
    ("ground", &["types", "error", "sse", "reply", "fnv"]),
];
const SURFACES: [&str; 3] = ["rpc", "openai", "a2a"];
/// Tools beside the service: they may use the ground floor only.
const TOOLS: [&str; 2] = ["bench", "mock_upstream"];

#[test]
fn no_import_circle_and_every_edge_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::read(&src);
    assert!(
        graph.modules.len() > 40,
        "read {} modules only",
        graph.modules.len()
    );
    let circles = graph.circles();
    let described: Vec<String> = circles.iter().map(|c| graph.describe(c)).collect();
    assert!(
        circles.is_empty(),
        "import circles in src/:\n{}",
        described.join("\n")
    );
    let wrong = graph.wrong_way();
    assert!(
        wrong.is_empty(),
        "imports against the floors:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself: a circle through a parent and its child, and one edge up, are found.
#[test]
fn the_checker_finds_a_circle_and_an_edge_up() {
    let mut graph = Graph::default();
    let parent = vec!["gateway".to_owned()];
    let child = vec!["gateway".to_owned(), "report".to_owned()];
    let surface = vec!["rpc".to_owned()];
    graph.modules.insert(parent.clone());
    graph.modules.insert(child.clone());
    graph.modules.insert(surface.clone());
    graph.read_source(
        &parent,
        "mod report;\nuse report::Catalog;\npub struct Gateway;",
    );
    graph.read_source(
        &child,
        "use super::Gateway; // a comment: use crate::rpc;\n",
    );
    graph.read_source(
        &child,
        "fn f() { let s = \"crate::rpc::x\"; crate::rpc::views(); }",
    );
    assert_eq!(graph.circles(), vec![vec![parent.clone(), child.clone()]]);
    assert_eq!(graph.wrong_way(), vec!["gateway::report → rpc".to_owned()]);
}

fn name(module: &Module) -> String {
    match module.is_empty() {
        true => "crate".to_owned(),
        false => module.join("::"),
    }
}

#[derive(Default)]
struct Graph {
    modules: BTreeSet<Module>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

impl Graph {
    fn read(src: &Path) -> Self {
        let mut files = Vec::new();
        walk(src, src, &mut files);
        let mut graph = Graph::default();
        for (module, _) in &files {
            graph.modules.insert(module.clone());
        }
        for (module, text) in &files {
            graph.read_source(module, text);
        }
        graph
    }

    /// Adds the edges of one file (or of a snippet of it) written in `module`.
    fn read_source(&mut self, module: &Module, text: &str) {
        let code = strip(text);
        let tokens = tokenize(&code);
        // Inline modules (`mod tests { … }`) are modules of their own.
        let mut stack: Vec<(Module, usize)> = vec![(module.clone(), 0)];
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let current = stack.last().map(|(m, _)| m.clone()).unwrap_or_default();
            match tokens[i].as_str() {
                "{" => depth += 1,
                "}" => {
                    if stack.len() > 1 && stack.last().is_some_and(|(_, d)| *d == depth) {
                        stack.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                    let mut inner = current.clone();
                    inner.push(tokens[i + 1].clone());
                    self.modules.insert(inner.clone());
                    depth += 1;
                    stack.push((inner, depth));
                    i += 3;
                    continue;
                }
                "use" => {
                    let end = (i..tokens.len())
                        .find(|&k| tokens[k] == ";")
                        .unwrap_or(tokens.len());
                    for path in expand(&tokens[i + 1..end]) {
                        self.edge(&current, &path);
                    }
                    i = end;
                    continue;
                }
                _ => {
                    let path = path_at(&tokens, i);
                    if path.len() > 1 && (i == 0 || tokens[i - 1] != "::") {
                        self.edge(&current, &path);
                        i += 2 * path.len() - 1;
                        continue;
                    }
                }
            }
            i += 1;
        }
    }

    /// The edge a path written in `from` makes, if it names a module of the crate.
    fn edge(&mut self, from: &Module, path: &[String]) {
        let Some(first) = path.first() else { return };
        let absolute: Module = match first.as_str() {
            "crate" => path[1..].to_vec(),
            "super" | "self" => {
                let mut base = from.clone();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                if rest.first().is_some_and(|s| s == "self") {
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            child => {
                let mut candidate = from.clone();
                candidate.push(child.to_owned());
                if !self.modules.contains(&candidate) {
                    return;
                }
                let mut absolute = from.clone();
                absolute.extend(path.iter().cloned());
                absolute
            }
        };
        let target = (0..=absolute.len())
            .rev()
            .map(|k| absolute[..k].to_vec())
            .find(|m| self.modules.contains(m));
        if let Some(target) = target.filter(|t| t != from) {
            self.edges.entry(from.clone()).or_default().insert(target);
        }
    }

    /// A circle's modules and the edges between them.
    fn describe(&self, circle: &[Module]) -> String {
        let mut lines = vec![circle.iter().map(name).collect::<Vec<_>>().join(", ")];
        for from in circle {
            for to in self.edges.get(from).into_iter().flatten() {
                if circle.contains(to) {
                    lines.push(format!("    {} → {}", name(from), name(to)));
                }
            }
        }
        lines.join("\n")
    }

    /// Every strongly connected set of more than one module (Tarjan's algorithm), each sorted.
    fn circles(&self) -> Vec<Vec<Module>> {
        struct State<'g> {
            graph: &'g Graph,
            index: BTreeMap<&'g Module, usize>,
            low: BTreeMap<&'g Module, usize>,
            stack: Vec<&'g Module>,
            on_stack: BTreeSet<&'g Module>,
            found: Vec<Vec<Module>>,
        }
        fn visit<'g>(s: &mut State<'g>, v: &'g Module) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flatten() {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.found.push(component);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for module in &self.modules {
            if !state.index.contains_key(module) {
                visit(&mut state, module);
            }
        }
        state.found.sort();
        state.found
    }

    /// Edges between top-level modules that point up a floor, from one surface to another, or
    /// from a tool to anything but the ground floor.
    fn wrong_way(&self) -> Vec<String> {
        let floor = |top: &str| {
            FLOORS
                .iter()
                .position(|(_, members)| members.contains(&top))
        };
        let ground = FLOORS.len() - 1;
        let mut wrong = Vec::new();
        for (from, targets) in &self.edges {
            let a = from.first().map_or("", String::as_str);
            for to in targets {
                let b = to.first().map_or("", String::as_str);
                if a == b {
                    continue;
                }
                let allowed = match (floor(a), floor(b)) {
                    _ if TOOLS.contains(&a) => floor(b) == Some(ground),
                    _ if SURFACES.contains(&a) && SURFACES.contains(&b) => false,
                    (Some(fa), Some(fb)) => fb >= fa,
                    // A tool is used from the entry floor only.
                    (Some(0), None) => TOOLS.contains(&b),
                    _ => false,
                };
                if !allowed {
                    wrong.push(format!("{} → {}", name(from), name(to)));
                }
            }
        }
        wrong
    }
}

/// The files of `dir`, each with the module it is.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(Module, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().with_extension("");
        let mut module: Module = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|l| l == "mod") {
            module.pop();
        }
        if module == ["lib"] || module == ["main"] {
            module.clear();
        }
        out.push((module, std::fs::read_to_string(&path).unwrap()));
    }
}

/// The code without comments, string and character literals (each left as `""`), so that
/// only code is read for paths.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (c, next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            ('r', Some('#' | '"')) if i == 0 || !is_ident(chars[i - 1]) => {
                let mut k = i + 1;
                let mut hashes = 0;
                while chars.get(k) == Some(&'#') {
                    hashes += 1;
                    k += 1;
                }
                if chars.get(k) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                k += 1;
                loop {
                    if k >= chars.len() {
                        break;
                    }
                    if chars[k] == '"' && (1..=hashes).all(|h| chars.get(k + h) == Some(&'#')) {
                        k += 1 + hashes;
                        break;
                    }
                    k += 1;
                }
                out.push_str("\"\"");
                i = k;
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ('\'', Some('\\')) => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Identifiers, `::`, and every other character as a token of its own; whitespace dropped.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// The path `a::b::c` that starts at token `i`, as its segments (one segment: no path).
fn path_at(tokens: &[String], i: usize) -> Vec<String> {
    let mut path = Vec::new();
    let mut k = i;
    while tokens.get(k).is_some_and(|t| t.chars().all(is_ident)) {
        path.push(tokens[k].clone());
        if tokens.get(k + 1).is_some_and(|t| t == "::") {
            k += 2;
        } else {
            break;
        }
    }
    path
}

/// The paths of one `use` tree (`a::{b, c::{d, e as f}}`, `a::*`).
fn expand(tokens: &[String]) -> Vec<Vec<String>> {
    fn tree(tokens: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        while *i < tokens.len() {
            match tokens[*i].as_str() {
                "::" => *i += 1,
                "{" => {
                    *i += 1;
                    while *i < tokens.len() && tokens[*i] != "}" {
                        tree(tokens, i, &path, out);
                        if tokens.get(*i).is_some_and(|t| t == ",") {
                            *i += 1;
                        }
                    }
                    *i += 1;
                    return;
                }
                "," | "}" => break,
                "as" => *i += 2,
                "*" => *i += 1,
                "pub" | "(" | ")" => *i += 1,
                segment => {
                    path.push(segment.to_owned());
                    *i += 1;
                }
            }
        }
        out.push(path);
    }
    let start = usize::from(tokens.first().is_some_and(|t| t == "::"));
    let mut out = Vec::new();
    let mut i = start;
    tree(tokens, &mut i, &[], &mut out);
    out
}
