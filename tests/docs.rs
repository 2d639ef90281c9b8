//! The documentation agrees with the code: every setting the service reads
//! has a row in the README's settings table and every row names a setting
//! the service reads, and no relative link in the README or in `docs/`
//! points at a file that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};

/// The repository's root, where the README is.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Settings the service reads that are not in `agentic::config::KEYS`, each
/// with why. `KEYS` is the list of keys `AGENTIC_CONFIG_FILE` may set (its
/// typo check); `AGENTIC_CONFIG_FILE` itself names that file, so it is read
/// from the environment alone and the file may not set it — but it is a
/// setting all the same, and the table documents it.
const READ_BUT_NOT_IN_KEYS: &[&str] = &["AGENTIC_CONFIG_FILE"];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The variable each row of the README's settings table names: the rows
/// that start with "| `NAME`" between the `## Configuration` heading and
/// the next `## ` heading (headings inside code blocks do not count).
fn settings_rows(readme: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut in_section = false;
    let mut seen_heading = false;
    let mut rows = Vec::new();
    for line in readme.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with("## ") {
            in_section = line.trim_end() == "## Configuration";
            seen_heading |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split('`').next().unwrap_or_default();
            rows.push(name.to_string());
        }
    }
    assert!(
        seen_heading,
        "README.md has no `## Configuration` heading, under which the settings table must be"
    );
    assert!(
        !rows.is_empty(),
        "README.md's `## Configuration` section has no row starting with \"| `NAME`\""
    );
    rows
}

#[test]
fn the_readme_settings_table_lists_exactly_the_variables_the_service_reads() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let rows = settings_rows(&readme);

    let mut problems = Vec::new();
    for name in READ_BUT_NOT_IN_KEYS {
        if agentic::config::KEYS.contains(name) {
            problems.push(format!(
                "`{name}` is in agentic::config::KEYS now: take it out of READ_BUT_NOT_IN_KEYS in tests/docs.rs"
            ));
        }
    }
    let read_by_code: BTreeSet<&str> = agentic::config::KEYS
        .iter()
        .chain(READ_BUT_NOT_IN_KEYS)
        .copied()
        .collect();

    let mut in_table: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        *in_table.entry(row.as_str()).or_default() += 1;
    }

    for name in &read_by_code {
        if !in_table.contains_key(name) {
            problems.push(format!(
                "`{name}` is read by the service (agentic::config::KEYS) but README.md's settings table has no row for it: add \"| `{name}` | default | meaning |\" under `## Configuration`"
            ));
        }
    }
    for (name, count) in &in_table {
        if !read_by_code.contains(name) {
            problems.push(format!(
                "README.md's settings table has a row for `{name}`, which the service does not read (it is not in agentic::config::KEYS): remove the row, or add the key to KEYS where the code reads it"
            ));
        }
        if *count > 1 {
            problems.push(format!(
                "README.md's settings table has {count} rows for `{name}`; keep one"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the README's settings table and the code disagree:\n- {}",
        problems.join("\n- ")
    );
}

/// README.md and every `docs/*.md`.
fn markdown_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md")];
    let docs = root.join("docs");
    let entries =
        std::fs::read_dir(&docs).unwrap_or_else(|e| panic!("cannot list {}: {e}", docs.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", docs.display()))
            .path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The path part of a link that points into the repository, or `None` for
/// a link elsewhere (a URL with a scheme) or within the same page (`#…`).
fn relative_path(dest: &str) -> Option<&str> {
    if dest.starts_with("//") {
        return None;
    }
    if let Some(colon) = dest.find(':') {
        let scheme = &dest[..colon];
        let is_scheme = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if is_scheme {
            return None;
        }
    }
    let path = dest.split(['#', '?']).next().unwrap_or_default();
    (!path.is_empty()).then_some(path)
}

#[test]
fn relative_links_in_the_readme_and_docs_point_at_files_that_exist() {
    let root = Path::new(ROOT);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let dir = file.parent().unwrap_or(root);
        for event in Parser::new_ext(&text, Options::ENABLE_TABLES) {
            let (link_type, dest) = match event {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    ..
                })
                | Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    ..
                }) => (link_type, dest_url),
                _ => continue,
            };
            if matches!(link_type, LinkType::Autolink | LinkType::Email) {
                continue;
            }
            let Some(path) = relative_path(&dest) else {
                continue;
            };
            // `/x` is the repository's root, as GitHub renders it.
            let target = match path.strip_prefix('/') {
                Some(from_root) => root.join(from_root),
                None => dir.join(path),
            };
            checked += 1;
            if !target.exists() {
                broken.push(format!(
                    "{shown} links to `{dest}`, but {} does not exist",
                    target.display()
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative link found in README.md or docs/*.md: is the parser reading them?"
    );
    assert!(
        broken.is_empty(),
        "broken relative links:\n- {}",
        broken.join("\n- ")
    );
}
