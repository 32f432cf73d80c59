//! The module graph, read from the sources: every `use` and every path through `crate::`,
//! `super::`, `self::` or a child module is an edge from the module that writes it to the
//! module the path lands in. Test code (`#[cfg(test)]`) is left out.
//!
//! Two rules, checked on every `make test`:
//! - no cycle, between files or between top-level modules;
//! - top-level modules only depend on modules of the same layer or below:
//!   cli → app → capabilities → leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type Module = Vec<String>;

/// The layer of each top-level module; a module may only depend on its layer and below.
const LAYERS: &[(&str, u8)] = &[
    ("labels", 0),
    ("build_info", 0),
    ("merge", 0),
    ("clock", 0),
    ("metrics", 1),
    ("config", 1),
    ("aws", 2),
    ("health", 2),
    ("telemetry", 2),
    ("shutdown", 2),
    ("store", 3),
    ("context", 3),
    ("http", 3),
    ("purge", 4),
    ("sync", 4),
    ("verify", 4),
    ("sweep", 4),
    ("doctor", 4),
    ("app", 5),
    ("cli", 6),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file of the library, with its module path (`src/sync/plan.rs` → sync::plan).
fn module_files() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().with_extension("");
            let mut m: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if m.last().is_some_and(|l| l == "mod" || l == "lib") {
                m.pop();
            }
            (m, p)
        })
        .filter(|(m, _)| m.last().is_none_or(|l| l != "tests"))
        .collect()
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && matches!(&a.meta, syn::Meta::List(l) if l.tokens.to_string().contains("test"))
    })
}

/// Collects the paths one file refers to, skipping test code.
struct Refs {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_cfg_test(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        fn flatten(t: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
            match t {
                syn::UseTree::Path(p) => {
                    let mut next = prefix;
                    next.push(p.ident.to_string());
                    flatten(&p.tree, next, out);
                }
                syn::UseTree::Name(n) => {
                    let mut full = prefix;
                    if n.ident != "self" {
                        full.push(n.ident.to_string());
                    }
                    out.push(full);
                }
                syn::UseTree::Rename(r) => {
                    let mut full = prefix;
                    full.push(r.ident.to_string());
                    out.push(full);
                }
                syn::UseTree::Glob(_) => out.push(prefix),
                syn::UseTree::Group(g) => {
                    for t in &g.items {
                        flatten(t, prefix.clone(), out);
                    }
                }
            }
        }
        if !is_cfg_test(&u.attrs) {
            flatten(&u.tree, Vec::new(), &mut self.paths);
        }
    }

    // `pub(super)` names who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.paths
            .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
}

/// The module a path written in `from` lands in, if it is one of ours.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (from.clone(), &path[1..]),
        Some("super") => {
            let mut b = from.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                b.pop();
                rest = &rest[1..];
            }
            (b, rest)
        }
        Some(first) => {
            let mut child = from.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            (from.clone(), path)
        }
        None => return None,
    };
    let mut landed = base.clone();
    for seg in rest {
        base.push(seg.clone());
        if modules.contains(&base) {
            landed = base.clone();
        } else {
            break;
        }
    }
    (landed != *from).then_some(landed)
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let files = module_files();
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (m, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut refs = Refs { paths: Vec::new() };
        refs.visit_file(&file);
        let to: BTreeSet<Module> = refs
            .paths
            .iter()
            .filter_map(|p| resolve(m, p, &modules))
            .filter(|t| !t.is_empty())
            .collect();
        edges.insert(m.clone(), to);
    }
    edges
}

/// A cycle in `edges`, if there is one, as the list of modules around it.
fn find_cycle<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn dfs<N: Ord + Clone>(
        n: &N,
        edges: &BTreeMap<N, BTreeSet<N>>,
        state: &mut BTreeMap<N, u8>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = dfs(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                1 => {
                    let start = stack.iter().position(|x| x == m).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0
            && let Some(c) = dfs(n, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let g = graph();
    assert!(g.len() > 20, "the sources were found: {}", g.len());
    if let Some(c) = find_cycle(&g) {
        let path: Vec<String> = c.iter().map(show).collect();
        panic!("module cycle: {}", path.join(" → "));
    }
}

#[test]
fn top_level_modules_depend_only_downwards() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in graph() {
        let Some(f) = from.first() else { continue };
        for t in to {
            if t[0] != *f {
                top.entry(f.clone()).or_default().insert(t[0].clone());
            }
        }
        top.entry(f.clone()).or_default();
    }
    for name in top.keys() {
        assert!(
            layers.contains_key(name.as_str()),
            "top-level module `{name}` has no layer in tests/modules.rs"
        );
    }
    let mut wrong = Vec::new();
    for (from, tos) in &top {
        for to in tos {
            if layers[to.as_str()] > layers[from.as_str()] {
                wrong.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies that point upwards: {wrong:?}"
    );
    if let Some(c) = find_cycle(&top) {
        panic!("top-level module cycle: {}", c.join(" → "));
    }
}

/// The check itself catches what it is for: a cycle planted in a copy of the graph.
#[test]
fn a_planted_cycle_is_found() {
    let mut g = graph();
    let a = vec!["config".to_string()];
    let b = vec!["sync".to_string(), "plan".to_string()];
    assert!(g[&b].contains(&a), "sync::plan uses config: {:?}", g[&b]);
    g.get_mut(&a).unwrap().insert(b.clone());
    let c = find_cycle(&g).expect("the planted cycle");
    assert!(c.contains(&a) && c.contains(&b), "{c:?}");
}

/// Finds AWS SDK calls (a fluent builder ends in `.send()` with no argument) outside test code,
/// by the function that makes them.
#[derive(Default)]
struct SdkCalls {
    current: Vec<String>,
    calls: Vec<String>,
}

impl<'ast> Visit<'ast> for SdkCalls {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_cfg_test(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            self.current.push(f.sig.ident.to_string());
            syn::visit::visit_item_fn(self, f);
            self.current.pop();
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.current.push(f.sig.ident.to_string());
        syn::visit::visit_impl_item_fn(self, f);
        self.current.pop();
    }

    fn visit_expr_method_call(&mut self, c: &'ast syn::ExprMethodCall) {
        if c.method == "send" && c.args.is_empty() {
            self.calls
                .push(self.current.last().cloned().unwrap_or_default());
        }
        syn::visit::visit_expr_method_call(self, c);
    }
}

fn sdk_calls(text: &str) -> Vec<String> {
    let file = syn::parse_file(text).unwrap();
    let mut v = SdkCalls::default();
    v.visit_file(&file);
    v.calls
}

/// Every AWS call goes through a wrapper in `aws/`, where it is counted (requests, errors),
/// so "every call is counted, in one place" holds by construction.
#[test]
fn aws_sdk_calls_live_only_in_aws() {
    let mut outside = Vec::new();
    let mut inside = 0;
    for (m, path) in module_files() {
        let calls = sdk_calls(&std::fs::read_to_string(&path).unwrap());
        if m.first().is_some_and(|f| f == "aws") {
            inside += calls.len();
        } else {
            outside.extend(
                calls
                    .iter()
                    .map(|f| format!("{} in fn {f}", path.display())),
            );
        }
    }
    assert!(inside > 10, "the wrappers' calls are found: {inside}");
    assert!(
        outside.is_empty(),
        "AWS SDK calls outside src/aws/ (add a counted wrapper there): {outside:?}"
    );
}

/// The check finds a call, and leaves test code out.
#[test]
fn an_sdk_call_is_found_outside_tests_only() {
    let text = "fn f() { c.get_object().bucket(b).send().await; tx.send(1); }\n\
                #[cfg(test)] mod tests { fn g() { c.list().send(); } }";
    assert_eq!(sdk_calls(text), vec!["f".to_string()]);
}

/// A file's production code: everything before its `#[cfg(test)]` module.
fn production(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect()
}

/// Every function's length in lines, from its `fn` line to its closing brace.
fn function_lengths(lines: &[&str]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let sig = code
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = sig.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if code.ends_with(';') {
            continue;
        }
        if code.ends_with('}') && code.contains('{') {
            out.push((name, 1));
            continue;
        }
        let close = " ".repeat(indent) + "}";
        let end = lines[i..]
            .iter()
            .position(|l| l.starts_with(&close) && !l[indent..].starts_with("} else"))
            .map_or(lines.len() - i, |p| p + 1);
        out.push((name, end));
    }
    out
}

/// No production function is longer than this many lines: a longer one is several steps
/// that want names.
const MAX_FUNCTION_LINES: usize = 60;
/// No production file is longer than this: a longer one holds several concerns.
const MAX_FILE_LINES: usize = 500;

#[test]
fn functions_and_files_stay_small() {
    let mut long_fns = Vec::new();
    let mut long_files = Vec::new();
    let mut seen = 0;
    for path in module_files().values() {
        let text = std::fs::read_to_string(path).unwrap();
        let lines = production(&text);
        if lines.len() > MAX_FILE_LINES {
            long_files.push(format!("{} ({} lines)", path.display(), lines.len()));
        }
        for (name, n) in function_lengths(&lines) {
            seen += 1;
            if n > MAX_FUNCTION_LINES {
                long_fns.push(format!("{} fn {name} ({n} lines)", path.display()));
            }
        }
    }
    assert!(seen > 300, "the functions are found: {seen}");
    assert!(
        long_fns.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines: {long_fns:#?}"
    );
    assert!(
        long_files.is_empty(),
        "files over {MAX_FILE_LINES} lines of production code: {long_files:#?}"
    );
}

/// The measure itself: a one-liner, a declaration, a body with an inner block.
#[test]
fn function_lengths_are_measured_from_fn_to_its_brace() {
    let text = "impl X {\n    fn a(&self) -> u8 { 1 }\n    fn b(&self);\n    pub(crate) async fn c(\n        &self,\n    ) {\n        if x {\n        }\n    }\n}\n#[cfg(test)]\nfn d() {\n}\n";
    let lines = production(text);
    assert_eq!(
        function_lengths(&lines),
        vec![("a".to_string(), 1), ("c".to_string(), 6)]
    );
}
