//! The documentation holds together: every relative link in README.md, DEVELOPERS.md,
//! CHANGELOG.md and docs/*.md reaches a file that exists and, with `#anchor`, a heading that
//! makes that anchor (GitHub's rules) or an explicit `<a id>`/`<a name>`; README.md stays
//! short; every alert in deploy/ has its runbook section in docs/operations.md, and every
//! runbook URL in deploy/ resolves; every key of config/default.toml is documented in
//! docs/configuration.md. Each check lists every problem at once.
//!
//! Std only: the Markdown is read line by line. Links inside fenced code blocks and inline
//! code spans are not links; setext headings (underlined) are not used in these files and are
//! not recognised.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files whose links are checked: README.md, DEVELOPERS.md, CHANGELOG.md and
/// every docs/*.md.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "DEVELOPERS.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    files.extend(docs);
    files
}

// -- Markdown, as much of it as links need ------------------------------------------------

/// The lines outside fenced code blocks (``` or ~~~, indented or not), numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(c) = t.chars().next().filter(|c| *c == '`' || *c == '~') {
            let n = t.chars().take_while(|x| *x == c).count();
            if n >= 3 {
                match fence {
                    None => {
                        fence = Some((c, n));
                        continue;
                    }
                    Some((fc, fnum)) if fc == c && n >= fnum && t[n..].trim().is_empty() => {
                        fence = None;
                        continue;
                    }
                    Some(_) => {}
                }
            }
        }
        if fence.is_none() {
            out.push((i + 1, line));
        }
    }
    out
}

/// The line with every inline code span blanked out (`[a](b)` in backticks is no link).
fn without_code_spans(line: &str) -> Vec<char> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = chars.clone();
    let run = |at: usize| chars[at..].iter().take_while(|c| **c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                out[i..j + n].iter_mut().for_each(|c| *c = ' ');
                i = j + n;
            }
            None => i += n,
        }
    }
    out
}

/// The index of the bracket closing the one at `open` (`[`/`]` or `(`/`)`), escapes skipped.
fn closing(c: &[char], open: usize, pair: (char, char)) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < c.len() {
        match c[i] {
            '\\' => {
                i += 2;
                continue;
            }
            x if x == pair.0 => depth += 1,
            x if x == pair.1 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A link destination as written between the parentheses: `<dest>`, or up to the first space
/// (what follows is a title).
fn destination(inner: &str) -> String {
    let s = inner.trim();
    if let Some(rest) = s.strip_prefix('<') {
        return rest.split('>').next().unwrap_or("").to_string();
    }
    s.split_whitespace().next().unwrap_or("").to_string()
}

/// The targets of the inline links and images on one line: `[text](dest)`, `![alt](dest)`,
/// nested ones included (`[![alt](img)](dest)`).
fn inline_links(line: &str) -> Vec<String> {
    let c = without_code_spans(line);
    let mut out = Vec::new();
    for i in 0..c.len() {
        if c[i] != '[' || (i > 0 && c[i - 1] == '\\') {
            continue;
        }
        let Some(j) = closing(&c, i, ('[', ']')) else {
            continue;
        };
        if c.get(j + 1) != Some(&'(') {
            continue;
        }
        let Some(k) = closing(&c, j + 1, ('(', ')')) else {
            continue;
        };
        out.push(destination(&c[j + 2..k].iter().collect::<String>()));
    }
    out
}

/// The target of a reference definition (`[label]: dest "title"`), if the line is one.
fn reference_definition(line: &str) -> Option<String> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    if indent > 3 || !t.starts_with('[') || t.starts_with("[^") {
        return None;
    }
    let c: Vec<char> = t.chars().collect();
    let j = closing(&c, 0, ('[', ']'))?;
    if c.get(j + 1) != Some(&':') {
        return None;
    }
    let dest = destination(&c[j + 2..].iter().collect::<String>());
    (!dest.is_empty()).then_some(dest)
}

/// Every link target in a Markdown text with its line number, outside code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        if let Some(d) = reference_definition(line) {
            out.push((n, d));
        }
        out.extend(inline_links(line).into_iter().map(|t| (n, t)));
    }
    out
}

/// The text of an ATX heading (`## Text ##`), if the line is one.
fn heading(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    let level = t.chars().take_while(|c| *c == '#').count();
    if indent > 3 || level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let rest = rest.trim();
    // An optional closing sequence of #s, preceded by a space.
    let body = rest.trim_end_matches('#');
    let text = if body.len() < rest.len() && (body.is_empty() || body.ends_with(' ')) {
        body.trim_end()
    } else {
        rest
    };
    Some((level, text.to_string()))
}

/// A heading's text as rendered: links become their text, HTML tags, code backticks and
/// emphasis stars go.
fn rendered(heading: &str) -> String {
    let c: Vec<char> = heading.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '[' => {
                if let Some(j) = closing(&c, i, ('[', ']'))
                    && c.get(j + 1) == Some(&'(')
                    && let Some(k) = closing(&c, j + 1, ('(', ')'))
                {
                    out.push_str(&rendered(&c[i + 1..j].iter().collect::<String>()));
                    i = k + 1;
                    continue;
                }
                out.push('[');
            }
            '<' => match c[i..].iter().position(|x| *x == '>') {
                Some(end) => {
                    i += end + 1;
                    continue;
                }
                None => out.push('<'),
            },
            '`' | '*' => {}
            '\\' if i + 1 < c.len() => {
                out.push(c[i + 1]);
                i += 2;
                continue;
            }
            x => out.push(x),
        }
        i += 1;
    }
    out
}

/// GitHub's anchor for a heading: the rendered text lowercased, every character but letters,
/// digits, spaces, hyphens and underscores removed, spaces turned into hyphens.
fn slug(heading: &str) -> String {
    rendered(heading)
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|ch| match ch {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The values of `id="..."` and `name="..."` in the `<a ...>` tags of a line.
fn explicit_anchors(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<a ") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        for attr in ["id=", "name="] {
            let mut t = tag;
            while let Some(p) = t.find(attr) {
                let before = t[..p].chars().last();
                let value = &t[p + attr.len()..];
                if before.is_some_and(char::is_whitespace)
                    && let Some(q) = value.chars().next().filter(|q| *q == '"' || *q == '\'')
                    && let Some(end) = value[1..].find(q)
                {
                    out.push(value[1..1 + end].to_string());
                }
                t = &t[p + attr.len()..];
            }
        }
        rest = &rest[tag_end..];
    }
    out
}

/// Every anchor a Markdown text offers: its headings' slugs (a repeated slug gets -1, -2...)
/// and its explicit `<a id>`/`<a name>` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        out.extend(explicit_anchors(line));
        if let Some((_, h)) = heading(line) {
            let base = slug(&h);
            let n = seen.entry(base.clone()).or_insert(0);
            out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
            *n += 1;
        }
    }
    out
}

// -- Resolving ------------------------------------------------------------------------------

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(hex) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether a target names a scheme (`https:`, `mailto:`, `ftp:`) rather than a path.
fn scheme(target: &str) -> Option<&str> {
    let colon = target.find(':')?;
    let s = &target[..colon];
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    ok.then_some(s)
}

/// Checks links and caches each target file's anchors.
struct Checker {
    root: PathBuf,
    anchors: HashMap<PathBuf, BTreeSet<String>>,
    /// Relative links looked at, so a check that found nothing to check cannot pass.
    relative: usize,
}

impl Checker {
    fn new(root: &Path) -> Self {
        Checker {
            root: normalized(root),
            anchors: HashMap::new(),
            relative: 0,
        }
    }

    fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn anchors_of(&mut self, path: &Path) -> &BTreeSet<String> {
        self.anchors
            .entry(path.to_path_buf())
            .or_insert_with(|| anchors(&fs::read_to_string(path).unwrap_or_default()))
    }

    /// Why `target`, linked from `from`, does not resolve (None when it does).
    fn problem(&mut self, from: &Path, target: &str) -> Option<String> {
        if target.is_empty() {
            return Some("empty link".into());
        }
        if let Some(s) = scheme(target) {
            return match s {
                "http" | "https" | "mailto" => None,
                other => Some(format!(
                    "`{other}:` is neither a web link nor a relative path"
                )),
            };
        }
        self.relative += 1;
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(percent_decoded(a))),
            None => (target, None),
        };
        let path = percent_decoded(path.split('?').next().unwrap_or(""));
        let dest = if path.is_empty() {
            from.to_path_buf()
        } else if let Some(abs) = path.strip_prefix('/') {
            normalized(&self.root.join(abs))
        } else {
            normalized(&from.parent().unwrap_or(&self.root).join(&path))
        };
        if !dest.starts_with(&self.root) {
            return Some("points outside the repository".into());
        }
        if !dest.exists() {
            return Some(format!("{} does not exist", self.display(&dest)));
        }
        let anchor = anchor?;
        if anchor.is_empty() {
            return Some("empty anchor".into());
        }
        if dest.extension().is_some_and(|x| x == "md") {
            let shown = self.display(&dest);
            return (!self.anchors_of(&dest).contains(&anchor))
                .then(|| format!("no heading or <a id> in {shown} makes #{anchor}"));
        }
        let line_anchor = anchor.split('-').all(|part| {
            part.strip_prefix('L')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        (!line_anchor).then(|| format!("#{anchor} on a file that is not Markdown"))
    }

    /// Every broken link of `files`, as `file:line: target (why)`.
    fn check(&mut self, files: &[PathBuf]) -> Vec<String> {
        let mut problems = Vec::new();
        for file in files {
            let file = normalized(file);
            let text = match fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: {e}", self.display(&file)));
                    continue;
                }
            };
            for (line, target) in links(&text) {
                if let Some(why) = self.problem(&file, &target) {
                    problems.push(format!("{}:{line}: {target} ({why})", self.display(&file)));
                }
            }
        }
        problems
    }
}

fn fail_listing(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what} ({}):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// -- The repository's files ------------------------------------------------------------------

/// Every file under `dir` whose name ends with one of `exts`, recursively, sorted.
fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The alert names (`alert: S3Reconciler...`) in a rule file's text.
fn alert_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("alert:")?;
            let name = l[at + "alert:".len()..]
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            name.starts_with("S3Reconciler").then(|| name.to_string())
        })
        .collect()
}

/// `(section, key)` of every key in a TOML file written like config/default.toml: `key =
/// value` lines and commented-out ones (`# key = "value"`), under their `[section]`.
fn toml_keys(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let commented = t.starts_with('#');
        let t = t.trim_start_matches('#').trim();
        let Some((key, value)) = t.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        let is_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let looks_like_value = value
            .chars()
            .next()
            .is_some_and(|c| c == '"' || c == '[' || c.is_ascii_digit())
            || value.starts_with("true")
            || value.starts_with("false");
        if is_key && !section.is_empty() && (!commented || looks_like_value) {
            out.push((section.clone(), key.to_string()));
        }
    }
    out
}

/// The keys docs/configuration.md documents: the backticked names in the first cell of each
/// table row, under the heading that names their `[section]`.
fn documented_keys(text: &str) -> BTreeSet<(String, String)> {
    let mut section: Option<String> = None;
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        if let Some((level, h)) = heading(line) {
            let named = h
                .split('[')
                .nth(1)
                .and_then(|r| r.split(']').next())
                .map(str::to_string);
            if named.is_some() || level <= 2 {
                section = named;
            }
            continue;
        }
        let (Some(s), Some(row)) = (&section, line.trim().strip_prefix('|')) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("");
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 && !part.is_empty() {
                out.insert((s.clone(), part.to_string()));
            }
        }
    }
    out
}

// -- The checks -----------------------------------------------------------------------------

#[test]
fn every_relative_link_in_the_documentation_resolves() {
    let root = root();
    let files = documentation(&root);
    assert!(files.len() >= 4, "{files:?}");
    let mut checker = Checker::new(&root);
    let problems = checker.check(&files);
    fail_listing("broken links", &problems);
    assert!(
        checker.relative >= 100,
        "only {} relative links found: is the link scanner reading the files?",
        checker.relative
    );
}

#[test]
fn the_readme_stays_short() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines, at most 200: move detail to docs/ and link it"
    );
}

#[test]
fn every_alert_has_its_runbook_section() {
    let root = root();
    let mut alerts = BTreeSet::new();
    for f in files_under(&root.join("deploy"), &["yaml", "yml"]) {
        alerts.extend(alert_names(&read(&f)));
    }
    assert!(
        alerts.len() >= 5,
        "too few alerts found under deploy/: {alerts:?}"
    );
    let ops = read(&root.join("docs/operations.md"));
    let headings: BTreeSet<String> = prose_lines(&ops)
        .into_iter()
        .map(|(_, l)| l.trim_end().to_string())
        .collect();
    let missing: Vec<String> = alerts
        .iter()
        .filter(|a| !headings.contains(&format!("### {a}")))
        .map(|a| format!("{a}: docs/operations.md has no `### {a}` section"))
        .collect();
    fail_listing("alerts without a runbook section", &missing);
}

#[test]
fn runbook_and_documentation_urls_in_deploy_resolve() {
    const BASE: &str = "https://github.com/s3-reconciler/s3-reconciler/blob/main/";
    let root = root();
    let mut checker = Checker::new(&root);
    let mut problems = Vec::new();
    for f in files_under(&root.join("deploy"), &["yaml", "yml", "json", "toml", "jq"]) {
        for (n, line) in read(&f).lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find(BASE) {
                let url: String = rest[at + BASE.len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"\"'`)>,".contains(*c))
                    .collect();
                // Resolved as a link from the repository's root.
                if let Some(why) = checker.problem(&root.join("README.md"), &format!("/{url}")) {
                    problems.push(format!(
                        "{}:{}: {BASE}{url} ({why})",
                        checker.display(&f),
                        n + 1
                    ));
                }
                rest = &rest[at + BASE.len()..];
            }
        }
    }
    fail_listing("URLs into the documentation that do not resolve", &problems);
}

#[test]
fn every_default_toml_key_is_documented() {
    let root = root();
    let keys = toml_keys(&read(&root.join("config/default.toml")));
    assert!(keys.len() >= 60, "too few keys read: {keys:?}");
    let documented = documented_keys(&read(&root.join("docs/configuration.md")));
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !documented.contains(*k))
        .map(|(s, k)| {
            format!("{s}.{k}: no table row starting with `{k}` under the heading naming [{s}]")
        })
        .collect();
    fail_listing(
        "keys of config/default.toml missing from docs/configuration.md",
        &missing,
    );
}

#[test]
fn the_readme_and_docs_do_not_speak_of_seeds() {
    // The project grew from "seed" write-ups; a reader from outside never saw them. Say "the
    // two Lambda functions this replaces" or "the console-made setup it replaces".
    let root = root();
    let mut files = vec![root.join("README.md")];
    files.extend(
        documentation(&root)
            .into_iter()
            .filter(|p| p.starts_with(root.join("docs"))),
    );
    let mut problems = Vec::new();
    for f in files {
        for (n, line) in read(&f).lines().enumerate() {
            let lower = line.to_lowercase();
            let words = lower.split(|c: char| !c.is_alphanumeric());
            if words
                .into_iter()
                .any(|w| w == "seed" || w == "seeds" || w == "seeded")
            {
                problems.push(format!("{}:{}: {line}", f.display(), n + 1));
            }
        }
    }
    fail_listing("\"seed\" in the README or docs/", &problems);
}

// -- The checker's own parts ------------------------------------------------------------------

#[test]
fn slugs_follow_github() {
    for (heading, want) in [
        (
            "S3ReconcilerNoSuccessfulSync",
            "s3reconcilernosuccessfulsync",
        ),
        (
            "What it can delete, and when",
            "what-it-can-delete-and-when",
        ),
        ("`[sync]`", "sync"),
        ("Step 1 (account A)", "step-1-account-a"),
        (
            "Why `croner`, not tokio-cron-scheduler",
            "why-croner-not-tokio-cron-scheduler",
        ),
        (
            "`sweep.max_deletes` and `min_age`",
            "sweepmax_deletes-and-min_age",
        ),
        ("A/B: 5 -- 6", "ab-5----6"),
        ("See [the design](design.md)", "see-the-design"),
        ("Größe <a id=\"x\"></a>", "größe"),
        ("  Trailing  ", "trailing"),
    ] {
        assert_eq!(slug(heading), want, "{heading}");
    }
}

#[test]
fn headings_and_their_anchors() {
    assert_eq!(heading("### Foo ###"), Some((3, "Foo".into())));
    assert_eq!(heading("## C# ##"), Some((2, "C#".into())));
    assert_eq!(heading("#hashtag"), None);
    assert_eq!(heading("    # indented code"), None);
    let text = "# Title\n## Usage\n```\n## Not a heading\n```\n## Usage\n### Usage\n<a id=\"old-name\"></a>\n";
    let a = anchors(text);
    let want: BTreeSet<String> = ["title", "usage", "usage-1", "usage-2", "old-name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(a, want);
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "\
See [design](docs/design.md#sweep) and ![diagram](img/a.png \"title\").
A [nested ![badge](b.svg)](c.md) and [plain text] and `[code](nope.md)` here.
[ref]: docs/cli.md#exit-codes
    ```sh
    [in a fence](nope.md)
    ```
<https://example.com> [web](https://example.com) [mail](mailto:a@b.c) [angle](<with space.md>)
";
    let got: Vec<(usize, String)> = links(text);
    let want: Vec<(usize, String)> = [
        (1, "docs/design.md#sweep"),
        (1, "img/a.png"),
        (2, "c.md"),
        (2, "b.svg"),
        (3, "docs/cli.md#exit-codes"),
        (7, "https://example.com"),
        (7, "mailto:a@b.c"),
        (7, "with space.md"),
    ]
    .iter()
    .map(|(n, t)| (*n, t.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_broken_anchor_or_file_fails_and_good_links_pass() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("docs")).unwrap();
    fs::write(
        root.join("README.md"),
        "# Top\n[ok](docs/b.md#present) [ok](#top) [ok](docs/) [ok](docs/b.md)\n\
         [bad anchor](docs/b.md#missing)\n[bad file](docs/nope.md)\n[bad here](#nowhere)\n\
         [outside](../x.md) [ok line](src.rs#L3-L5) [bad](src.rs#intro)\n",
    )
    .unwrap();
    fs::write(
        root.join("docs/b.md"),
        "## Present\n[up](../README.md#top)\n",
    )
    .unwrap();
    fs::write(root.join("src.rs"), "fn main() {}\n").unwrap();
    let files = vec![root.join("README.md"), root.join("docs/b.md")];
    let problems = Checker::new(root).check(&files);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    for (p, want) in problems.iter().zip([
        "README.md:3: docs/b.md#missing (no heading or <a id> in docs/b.md makes #missing)",
        "README.md:4: docs/nope.md (docs/nope.md does not exist)",
        "README.md:5: #nowhere (no heading or <a id> in README.md makes #nowhere)",
        "README.md:6: ../x.md (points outside the repository)",
        "README.md:6: src.rs#intro (#intro on a file that is not Markdown)",
    ]) {
        assert_eq!(p, want);
    }
}

#[test]
fn default_toml_keys_and_their_documentation_are_read() {
    let toml = "\
# Layers, later wins: e.g. S3R__PURGE__QUEUE_URL = \"x\"
[source]
bucket = \"\"
# endpoint_url = \"https://s3\"  # override
# Target date = today minus lag_days.
[sweep]
schedule = \"0 0 3 * * *\"
# timezone = \"Asia/Seoul\"
enabled = false
";
    let keys = toml_keys(toml);
    let want: Vec<(String, String)> = [
        ("source", "bucket"),
        ("source", "endpoint_url"),
        ("sweep", "schedule"),
        ("sweep", "timezone"),
        ("sweep", "enabled"),
    ]
    .iter()
    .map(|(s, k)| (s.to_string(), k.to_string()))
    .collect();
    assert_eq!(keys, want);
    let doc = "\
## `[source]`
| key | default | meaning |
| --- | --- | --- |
| `bucket` | `\"\"` | the bucket |
### Credentials
| `endpoint_url`, `profile` | none | overrides |
## Environment variables
| `bucket` | | not a key of any section |
## `[sweep]`
| `schedule` | x | y |
";
    let got = documented_keys(doc);
    let want: BTreeSet<(String, String)> = [
        ("source", "bucket"),
        ("source", "endpoint_url"),
        ("source", "profile"),
        ("sweep", "schedule"),
    ]
    .iter()
    .map(|(s, k)| (s.to_string(), k.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn alert_names_are_read_from_rule_files() {
    let rules = "\
      rules:
        - alert: S3ReconcilerNoSuccessfulSync
          expr: x
        - alert: \"S3ReconcilerNotReady\"
        - record: s3_reconciler:thing
";
    let got = alert_names(rules);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec!["S3ReconcilerNoSuccessfulSync", "S3ReconcilerNotReady"]
    );
}
