//! Unified diffs, as GitHub's pull-request files API gives them (the
//! `patch` of one file: its hunks, without the `diff --git` header), parsed
//! into the lines a review comment may be placed on.
//!
//! GitHub rejects a whole review (422, without saying which comment) when
//! one inline comment is not on the diff, so every comment is checked here
//! first. The rules, from GitHub's REST docs: on the `RIGHT` side a comment
//! may sit on an added or a context line inside a hunk, on the `LEFT` side
//! on a removed line; a multi-line comment (`start_line` < `line`) must
//! stay inside one hunk.

use std::collections::HashMap;

/// Which version of the file a line number refers to, spelled as GitHub's
/// review API spells it (`LEFT`, `RIGHT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// The old version (removed lines).
    Left,
    /// The new version (added and context lines).
    #[default]
    Right,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "LEFT",
            Side::Right => "RIGHT",
        }
    }
}

/// What a diff line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

/// One line of a hunk, without its `+`/`-`/` ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    /// Its number in the old file (context and removed lines).
    pub old: Option<u32>,
    /// Its number in the new file (context and added lines).
    pub new: Option<u32>,
    pub text: String,
}

/// One `@@ -a,b +c,d @@` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub old_len: u32,
    pub new_start: u32,
    pub new_len: u32,
    /// What follows the second `@@` (often the enclosing function).
    pub section: String,
    pub lines: Vec<DiffLine>,
}

/// Why a patch could not be read. The line numbers count from 1 within the
/// patch text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("line {line}: `{text}` is not a hunk header")]
    BadHeader { line: usize, text: String },
    #[error("line {line}: `{text}` is outside any hunk")]
    OutsideHunk { line: usize, text: String },
    #[error("the hunk at line {line} ends before its header's line counts are used up")]
    ShortHunk { line: usize },
    #[error("line {line}: more lines than the hunk's header announces")]
    LongHunk { line: usize },
}

/// One file's parsed patch, with an index of commentable lines.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub hunks: Vec<Hunk>,
    /// (side, line) → (hunk index, line index within the hunk), for the
    /// lines a comment may be placed on.
    commentable: HashMap<(Side, u32), (usize, usize)>,
}

/// `@@ -a[,b] +c[,d] @@ section` → (a, b, c, d, section).
fn hunk_header(text: &str) -> Option<(u32, u32, u32, u32, &str)> {
    let rest = text.strip_prefix("@@ -")?;
    let (ranges, section) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (a, b) = range(old)?;
    let (c, d) = range(new)?;
    Some((a, b, c, d, section.strip_prefix(' ').unwrap_or(section)))
}

impl Patch {
    /// Parse the hunks of one file. An empty patch (a file whose mode alone
    /// changed) has no hunks.
    pub fn parse(patch: &str) -> Result<Patch, PatchError> {
        let mut hunks: Vec<Hunk> = Vec::new();
        // Lines of the current hunk still to come, old and new.
        let (mut old_left, mut new_left) = (0u32, 0u32);
        let (mut old_no, mut new_no) = (0u32, 0u32);
        let mut hunk_line = 0usize;
        for (i, raw) in patch.lines().enumerate() {
            let n = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.starts_with('\\') {
                // "\ No newline at end of file": about the line before.
                continue;
            }
            if old_left == 0 && new_left == 0 {
                if line.is_empty() {
                    continue;
                }
                if !line.starts_with("@@") {
                    return Err(if hunks.is_empty() {
                        PatchError::OutsideHunk {
                            line: n,
                            text: line.chars().take(60).collect(),
                        }
                    } else {
                        PatchError::LongHunk { line: n }
                    });
                }
                let (a, b, c, d, section) =
                    hunk_header(line).ok_or_else(|| PatchError::BadHeader {
                        line: n,
                        text: line.chars().take(60).collect(),
                    })?;
                hunks.push(Hunk {
                    old_start: a,
                    old_len: b,
                    new_start: c,
                    new_len: d,
                    section: section.to_string(),
                    lines: Vec::new(),
                });
                (old_left, new_left, old_no, new_no) = (b, d, a, c);
                hunk_line = n;
                continue;
            }
            if line.starts_with("@@") {
                return Err(PatchError::ShortHunk { line: hunk_line });
            }
            let hunk = hunks.last_mut().expect("a hunk is open");
            let (kind, text) = match line.as_bytes().first() {
                Some(b'+') => (LineKind::Added, &line[1..]),
                Some(b'-') => (LineKind::Removed, &line[1..]),
                Some(b' ') => (LineKind::Context, &line[1..]),
                // Some tools drop the space of an empty context line.
                None => (LineKind::Context, ""),
                Some(_) => {
                    return Err(PatchError::OutsideHunk {
                        line: n,
                        text: line.chars().take(60).collect(),
                    })
                }
            };
            let (old, new) = match kind {
                LineKind::Added if new_left > 0 => {
                    new_left -= 1;
                    new_no += 1;
                    (None, Some(new_no - 1))
                }
                LineKind::Removed if old_left > 0 => {
                    old_left -= 1;
                    old_no += 1;
                    (Some(old_no - 1), None)
                }
                LineKind::Context if old_left > 0 && new_left > 0 => {
                    old_left -= 1;
                    new_left -= 1;
                    old_no += 1;
                    new_no += 1;
                    (Some(old_no - 1), Some(new_no - 1))
                }
                _ => return Err(PatchError::LongHunk { line: n }),
            };
            hunk.lines.push(DiffLine {
                kind,
                old,
                new,
                text: text.to_string(),
            });
        }
        if old_left > 0 || new_left > 0 {
            return Err(PatchError::ShortHunk { line: hunk_line });
        }
        let mut commentable = HashMap::new();
        for (h, hunk) in hunks.iter().enumerate() {
            for (l, line) in hunk.lines.iter().enumerate() {
                match line.kind {
                    LineKind::Added | LineKind::Context => {
                        if let Some(n) = line.new {
                            commentable.insert((Side::Right, n), (h, l));
                        }
                    }
                    LineKind::Removed => {
                        if let Some(n) = line.old {
                            commentable.insert((Side::Left, n), (h, l));
                        }
                    }
                }
            }
        }
        Ok(Patch { hunks, commentable })
    }

    /// Whether GitHub takes a comment on `line` (and from `start_line`, for
    /// a range) on `side`.
    pub fn can_comment(&self, side: Side, start_line: Option<u32>, line: u32) -> bool {
        let Some(&(hunk, _)) = self.commentable.get(&(side, line)) else {
            return false;
        };
        match start_line {
            None => true,
            Some(start) if start == line => true,
            Some(start) if start > line => false,
            Some(start) => self
                .commentable
                .get(&(side, start))
                .is_some_and(|&(h, _)| h == hunk),
        }
    }

    /// The text of a commentable line.
    pub fn text_at(&self, side: Side, line: u32) -> Option<&str> {
        let &(h, l) = self.commentable.get(&(side, line))?;
        Some(&self.hunks[h].lines[l].text)
    }

    /// The lines a comment may sit on on `side`, with their text, by
    /// number.
    pub fn lines_on(&self, side: Side) -> Vec<(u32, &str)> {
        let mut lines: Vec<(u32, &str)> = self
            .commentable
            .iter()
            .filter(|((s, _), _)| *s == side)
            .map(|(&(_, n), &(h, l))| (n, self.hunks[h].lines[l].text.as_str()))
            .collect();
        lines.sort_unstable_by_key(|(n, _)| *n);
        lines
    }

    /// The patch as the model reads it: each hunk's header, then every
    /// line with the number a comment on it uses — `new N` for added and
    /// context lines (side `RIGHT`), `old N` for removed lines (side
    /// `LEFT`) — then `|`, the diff's marker and the line's text.
    pub fn numbered(&self) -> String {
        let mut out = String::new();
        for h in &self.hunks {
            out.push_str(&format!(
                "@@ -{},{} +{},{} @@ {}\n",
                h.old_start, h.old_len, h.new_start, h.new_len, h.section
            ));
            for l in &h.lines {
                let (label, marker) = match l.kind {
                    LineKind::Added => (format!("new {}", l.new.unwrap_or(0)), '+'),
                    LineKind::Context => (format!("new {}", l.new.unwrap_or(0)), ' '),
                    LineKind::Removed => (format!("old {}", l.old.unwrap_or(0)), '-'),
                };
                out.push_str(&format!("{label:>9} |{marker}{}\n", l.text));
            }
        }
        out
    }

    /// How many lines the hunks hold.
    pub fn line_count(&self) -> usize {
        self.hunks.iter().map(|h| h.lines.len()).sum()
    }

    /// The new-side numbers of the lines a comment may sit on, ascending.
    pub fn right_lines(&self) -> Vec<u32> {
        let mut lines: Vec<u32> = self
            .commentable
            .keys()
            .filter(|(side, _)| *side == Side::Right)
            .map(|(_, n)| *n)
            .collect();
        lines.sort_unstable();
        lines
    }

    /// (added, removed) line counts.
    pub fn counts(&self) -> (usize, usize) {
        let lines = self.hunks.iter().flat_map(|h| &h.lines);
        lines.fold((0, 0), |(a, r), l| match l.kind {
            LineKind::Added => (a + 1, r),
            LineKind::Removed => (a, r + 1),
            LineKind::Context => (a, r),
        })
    }
}

/// What happened to a file, as the files API says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Added,
    Removed,
    Modified,
    Renamed,
    /// A binary file: no patch.
    Binary,
}

/// One file of a `git diff`, in the shape of the files API: its path, the
/// path it was renamed from, and its `patch` (`None` for a binary file,
/// as GitHub omits it for binary and very large diffs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub previous_path: Option<String>,
    pub status: FileStatus,
    pub patch: Option<String>,
}

/// Split the output of `git diff` into files in the files API's shape
/// (for `agentic` run on a local diff, and for tests with real diffs).
pub fn split_git_diff(text: &str) -> Vec<FileDiff> {
    let mut files = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("diff --git ") {
        let body = &rest[start..];
        let end = body[1..]
            .find("\ndiff --git ")
            .map_or(body.len(), |e| e + 2);
        let chunk = &body[..end];
        rest = &body[end..];
        let first = chunk.lines().next().unwrap_or_default();
        let (mut old, mut new) = first
            .strip_prefix("diff --git a/")
            .and_then(|l| l.split_once(" b/"))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or_default();
        let mut status = FileStatus::Modified;
        let mut binary = false;
        for line in chunk.lines().take_while(|l| !l.starts_with("@@")) {
            if line.starts_with("new file mode") {
                status = FileStatus::Added;
            } else if line.starts_with("deleted file mode") {
                status = FileStatus::Removed;
            } else if let Some(from) = line.strip_prefix("rename from ") {
                status = FileStatus::Renamed;
                old = from.to_string();
            } else if let Some(to) = line.strip_prefix("rename to ") {
                new = to.to_string();
            } else if line.starts_with("Binary files ") {
                binary = true;
            }
        }
        let patch = chunk.find("\n@@").map(|at| chunk[at + 1..].to_string());
        if binary && status == FileStatus::Modified {
            status = FileStatus::Binary;
        }
        files.push(FileDiff {
            path: if status == FileStatus::Removed {
                old.clone()
            } else {
                new
            },
            previous_path: (status == FileStatus::Renamed).then_some(old),
            status,
            patch: if binary {
                None
            } else {
                Some(patch.unwrap_or_default())
            },
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "@@ -1,3 +1,4 @@ fn main() {\n context one\n-removed two\n+added two\n+added three\n context four\n@@ -10,2 +11,3 @@\n ten\n+eleven\n twelve\n\\ No newline at end of file\n";

    #[test]
    fn lines_are_numbered_on_both_sides() {
        let p = Patch::parse(SMALL).unwrap();
        assert_eq!(p.hunks.len(), 2);
        assert_eq!(p.hunks[0].section, "fn main() {");
        assert_eq!(p.right_lines(), [1, 2, 3, 4, 11, 12, 13]);
        assert_eq!(p.text_at(Side::Right, 3), Some("added three"));
        assert_eq!(p.text_at(Side::Left, 2), Some("removed two"));
        assert_eq!(p.text_at(Side::Right, 13), Some("twelve"));
        assert_eq!(p.counts(), (3, 1));
    }

    #[test]
    fn only_lines_in_the_diff_take_comments() {
        let p = Patch::parse(SMALL).unwrap();
        assert!(p.can_comment(Side::Right, None, 2));
        assert!(p.can_comment(Side::Right, None, 4), "context lines too");
        assert!(!p.can_comment(Side::Right, None, 5), "between hunks");
        assert!(!p.can_comment(Side::Right, None, 99));
        assert!(
            p.can_comment(Side::Left, None, 2),
            "a removed line, on the left"
        );
        assert!(
            !p.can_comment(Side::Left, None, 1),
            "context is commented on the right"
        );
        assert!(
            p.can_comment(Side::Right, Some(1), 4),
            "a range inside one hunk"
        );
        assert!(
            !p.can_comment(Side::Right, Some(3), 12),
            "a range across hunks"
        );
        assert!(!p.can_comment(Side::Right, Some(4), 3), "a backwards range");
    }

    #[test]
    fn malformed_patches_say_where() {
        assert_eq!(
            Patch::parse("@@ -1,2 +1,2 @@\n a\n").unwrap_err(),
            PatchError::ShortHunk { line: 1 }
        );
        assert!(matches!(
            Patch::parse("@@ -1 +1 @@\n a\n b\n").unwrap_err(),
            PatchError::LongHunk { line: 3 }
        ));
        assert!(matches!(
            Patch::parse("@@ nonsense @@\n").unwrap_err(),
            PatchError::BadHeader { line: 1, .. }
        ));
        assert!(matches!(
            Patch::parse("hello\n").unwrap_err(),
            PatchError::OutsideHunk { line: 1, .. }
        ));
        assert!(Patch::parse("").unwrap().hunks.is_empty());
    }
}
