//! The patch parser on real diffs (`fixtures/diffs`, from pip's and the
//! base64 crate's releases): a rename with changes, deletions, new files,
//! files without a final newline, a 3,900-line change and a binary file.

use agentic::diff::{split_git_diff, FileStatus, LineKind, Patch, Side};

fn pip_diff() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/diffs/pip-23.2.1-to-26.3.diff"
    ))
    .unwrap()
}

fn base64_diff() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/diffs/base64-0.22.1-to-0.23.1.diff"
    ))
    .unwrap()
}

#[test]
fn a_second_real_diff_splits_into_its_thirty_two_files() {
    let files = split_git_diff(&base64_diff());
    assert_eq!(files.len(), 32);
    let simd = files
        .iter()
        .find(|f| f.path == "base64/src/engine/simd.rs")
        .unwrap();
    assert_eq!(simd.status, FileStatus::Added);
    assert!(
        files.iter().all(|f| f.patch.is_some()),
        "no binary file here"
    );
    let lock = files
        .iter()
        .find(|f| f.path == "base64/Cargo.lock")
        .unwrap();
    assert_eq!(lock.status, FileStatus::Modified);
}

#[test]
fn a_real_git_diff_splits_into_files_as_the_api_shows_them() {
    let files = split_git_diff(&pip_diff());
    let summary: Vec<(&str, Option<&str>, FileStatus, bool)> = files
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                f.previous_path.as_deref(),
                f.status,
                f.patch.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "pip/_vendor/resolvelib/resolvers/resolution.py",
                Some("pip/_vendor/resolvelib/resolvers.py"),
                FileStatus::Renamed,
                true
            ),
            (
                "pip/_vendor/colorama/tests/__init__.py",
                None,
                FileStatus::Removed,
                true
            ),
            (
                "pip/_vendor/resolvelib/compat/collections_abc.py",
                None,
                FileStatus::Removed,
                true
            ),
            ("pip/_vendor/bom.cdx.json", None, FileStatus::Added, true),
            (
                "pip/_vendor/idna/idnadata.py",
                None,
                FileStatus::Modified,
                true
            ),
            (
                "pip/_vendor/distlib/launcher.exe",
                None,
                FileStatus::Binary,
                false
            ),
        ]
    );
}

#[test]
fn every_real_patch_parses_and_its_counts_match_its_headers() {
    let files = split_git_diff(&pip_diff())
        .into_iter()
        .chain(split_git_diff(&base64_diff()));
    for file in files {
        let Some(text) = &file.patch else { continue };
        let patch = Patch::parse(text).unwrap_or_else(|e| panic!("{}: {e}", file.path));
        assert!(!patch.hunks.is_empty(), "{}", file.path);
        for hunk in &patch.hunks {
            let new = hunk
                .lines
                .iter()
                .filter(|l| l.kind != LineKind::Removed)
                .count();
            let old = hunk
                .lines
                .iter()
                .filter(|l| l.kind != LineKind::Added)
                .count();
            assert_eq!(
                (old as u32, new as u32),
                (hunk.old_len, hunk.new_len),
                "{}",
                file.path
            );
        }
        let plus = text.lines().filter(|l| l.starts_with('+')).count();
        let minus = text.lines().filter(|l| l.starts_with('-')).count();
        assert_eq!(patch.counts(), (plus, minus), "{}", file.path);
        // Every line the parser calls commentable takes a one-line comment,
        // and nothing past the last hunk does.
        let right = patch.right_lines();
        assert!(right
            .iter()
            .all(|n| patch.can_comment(Side::Right, None, *n)));
        let last = patch.hunks.last().unwrap();
        assert!(!patch.can_comment(Side::Right, None, last.new_start + last.new_len));
    }
}

#[test]
fn deletions_new_files_and_missing_newlines() {
    let files = split_git_diff(&pip_diff());
    let deleted = Patch::parse(files[1].patch.as_deref().unwrap()).unwrap();
    assert!(
        deleted.right_lines().is_empty(),
        "a deleted file has only left lines"
    );
    assert!(deleted.can_comment(Side::Left, None, 1));
    let added = Patch::parse(files[3].patch.as_deref().unwrap()).unwrap();
    let lines = added.right_lines();
    assert_eq!(lines.first(), Some(&1));
    let last = *lines.last().unwrap();
    assert_eq!(
        last as usize,
        lines.len(),
        "a new file: every line, in order"
    );
    assert_eq!(
        added.text_at(Side::Right, last),
        Some("}"),
        "the line before `\\ No newline`"
    );
    let renamed = Patch::parse(files[0].patch.as_deref().unwrap()).unwrap();
    let (added_lines, removed) = renamed.counts();
    assert!(
        added_lines > 100 && removed > 100,
        "{added_lines} {removed}"
    );
}
