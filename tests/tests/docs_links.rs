//! Every relative link in the repository's Markdown resolves to a file or folder
//! inside the repository.
//!
//! The walk starts at the workspace root and reads every `*.md` (README.md,
//! docs/, crate READMEs, deploy/…), skipping `target/`, `.hail/` and `.git/`.
//! Links are `[text](dest)`, `![alt](dest)` and reference definitions
//! `[label]: dest`; code spans and fenced code blocks are skipped. A `#anchor`
//! or `?query` is cut off before the check; `http:`, `https:` and `mailto:`
//! links and bare `#anchor`s are not checked. No NATS needed.

use std::path::{Component, Path, PathBuf};

/// Folders never walked: build output, local stack state, git's own.
const SKIPPED_DIRS: [&str; 3] = ["target", ".hail", ".git"];

/// Schemes whose links point outside the repository on purpose.
const EXTERNAL: [&str; 3] = ["http://", "https://", "mailto:"];

/// One link found in a Markdown text.
#[derive(Debug, PartialEq)]
struct Link {
    /// 1-based line of the link.
    line: usize,
    /// The destination as written.
    dest: String,
}

#[test]
fn every_relative_link_in_markdown_resolves() {
    let root = workspace_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        for link in links(&text) {
            if let Err(why) = check(&root, file, &link.dest) {
                broken.push(format!("{shown}:{}: {} {why}", link.line, link.dest));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken relative link(s) in Markdown:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hail-e2e lives one level below the workspace root")
        .to_path_buf()
}

/// Every `*.md` below `dir`, outside the skipped folders.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name();
        let file_type = entry.file_type().expect("file type");
        if file_type.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                markdown_files(&path, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md"))
        {
            out.push(path);
        }
    }
}

/// Whether `dest`, written in `file`, names something inside `root`.
fn check(root: &Path, file: &Path, dest: &str) -> Result<(), &'static str> {
    if EXTERNAL.iter().any(|s| dest.starts_with(s)) {
        return Ok(());
    }
    let path = dest.split(['#', '?']).next().unwrap_or_default();
    if path.is_empty() {
        return Ok(()); // an anchor in the same file
    }
    let path = percent_decode(path);
    let base = if path.starts_with('/') {
        root.to_path_buf()
    } else {
        file.parent().expect("a file has a folder").to_path_buf()
    };
    let rel = base
        .strip_prefix(root)
        .expect("walked files are under the root");
    let target = normalize(&rel.join(path.trim_start_matches('/')))
        .ok_or("points outside the repository")?;
    if root.join(target).exists() {
        Ok(())
    } else {
        Err("does not exist")
    }
}

/// `a/./b/../c` → `a/c`, lexically; `None` when `..` climbs above the start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `%20` → ` `; anything not a valid escape is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The links of a Markdown text, outside fenced code blocks and code spans.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    let mut fence: Option<(u8, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some(f) = fence_marker(line) {
            match fence {
                None => fence = Some(f),
                Some((c, n)) if f.0 == c && f.1 >= n && closes_fence(line) => fence = None,
                Some(_) => {}
            }
            continue;
        }
        if fence.is_some() {
            continue;
        }
        let prose = outside_code_spans(line);
        if let Some(dest) = reference_definition(&prose) {
            found.push(Link {
                line: line_no,
                dest,
            });
            continue;
        }
        found.extend(inline_links(&prose).into_iter().map(|dest| Link {
            line: line_no,
            dest,
        }));
    }
    found
}

/// A fence opener or closer: up to three spaces, then three or more of one of
/// `` ` `` or `~`; returns the character and the run length.
fn fence_marker(line: &str) -> Option<(u8, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let c = *trimmed.as_bytes().first()?;
    if c != b'`' && c != b'~' {
        return None;
    }
    let run = trimmed.bytes().take_while(|b| *b == c).count();
    (run >= 3).then_some((c, run))
}

/// A closing fence carries nothing after its run but spaces.
fn closes_fence(line: &str) -> bool {
    let t = line.trim();
    let c = t.as_bytes()[0];
    t.bytes().all(|b| b == c)
}

/// The line with each code span (a run of n backticks up to the next run of
/// exactly n) replaced by spaces; an unclosed run stays as written.
fn outside_code_spans(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            let next = line[i..].find('`').map_or(b.len(), |n| i + n);
            out.push_str(&line[i..next]);
            i = next;
            continue;
        }
        let run = b[i..].iter().take_while(|c| **c == b'`').count();
        match closing_run(b, i + run, run) {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.push_str(&line[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The end of the next run of exactly `len` backticks at or after `from`.
fn closing_run(b: &[u8], from: usize, len: usize) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        if b[j] == b'`' {
            let run = b[j..].iter().take_while(|c| **c == b'`').count();
            if run == len {
                return Some(j + run);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

/// `[label]: dest` at the start of a line (up to three spaces of indent).
fn reference_definition(line: &str) -> Option<String> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 || !trimmed.starts_with('[') {
        return None;
    }
    let close = trimmed.find("]:")?;
    if trimmed[1..close].contains(']') || trimmed[1..close].trim().is_empty() {
        return None;
    }
    destination(trimmed[close + 2..].trim_start())
}

/// The destination of every `](dest)` on a line.
fn inline_links(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(dest) = destination(rest.trim_start()) {
            found.push(dest);
        }
    }
    found
}

/// A link destination at the start of `s`: `<…>`, or everything up to
/// whitespace or the `)` that closes the link (balanced parentheses inside).
fn destination(s: &str) -> Option<String> {
    if let Some(inner) = s.strip_prefix('<') {
        return inner.find('>').map(|end| inner[..end].to_string());
    }
    let mut depth = 0usize;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                end = i;
                break;
            }
            ')' => depth -= 1,
            c if c.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let dest = &s[..end];
    (!dest.is_empty()).then(|| dest.to_string())
}

#[test]
fn extracts_links_outside_code() {
    let text = "\
# Title
See [the design](docs/DESIGN.md#runtime) and ![logo](img/a%20b.png \"Logo\").
Code `[not](a-link.md)` here, ``[nor](this.md) with ` inside`` either.
An unclosed ` backtick then [a link](x/(y).md).

````sh
[in a fence](fenced.md)
```
still fenced: [x](still.md)
````

~~~
[tilde](fenced2.md)
~~~
   [ref]: <docs/with space.md> \"title\"
[web](https://example.com) [mail](mailto:a@b.c) [anchor](#top) [angle](<c.md>)
";
    let got: Vec<(usize, String)> = links(text).into_iter().map(|l| (l.line, l.dest)).collect();
    let want: Vec<(usize, String)> = [
        (2, "docs/DESIGN.md#runtime"),
        (2, "img/a%20b.png"),
        (4, "x/(y).md"),
        (15, "docs/with space.md"),
        (16, "https://example.com"),
        (16, "mailto:a@b.c"),
        (16, "#top"),
        (16, "c.md"),
    ]
    .into_iter()
    .map(|(n, d)| (n, d.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn resolves_inside_the_repository_only() {
    let root = workspace_root();
    let readme = root.join("README.md");
    let design = root.join("tests").join("Cargo.toml");
    assert_eq!(check(&root, &readme, "tests/Cargo.toml#deps"), Ok(()));
    assert_eq!(check(&root, &design, "../README.md"), Ok(()));
    assert_eq!(check(&root, &design, "/tests/"), Ok(()));
    assert_eq!(check(&root, &readme, "https://nats.io"), Ok(()));
    assert_eq!(check(&root, &readme, "#anchor"), Ok(()));
    assert_eq!(
        check(&root, &readme, "../shared/DESIGN.md"),
        Err("points outside the repository")
    );
    assert_eq!(
        check(&root, &readme, "docs/NO-SUCH-FILE.md"),
        Err("does not exist")
    );
    assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
}
