//! The walkthrough of a pull request: the model's one-paragraph overview
//! and a table of what each file changes, from the same `submit_review`
//! call as the review (no extra conversation), kept as one sticky comment
//! per pull request (`output::StickyComment`) and edited on every push.
//! An incremental review only sees the files that changed since the last
//! one, so each run's walkthrough is merged with the one before it; files
//! the review left out are listed with why.

use std::collections::{BTreeMap, HashSet};

use crate::domain::{FileChange, LeftOut, Walkthrough};
use crate::markdown::{escape_line, escape_text, inline_code};
use crate::review::{Assembled, ChangedFile};

/// The kind of the sticky comment (`output::StickyComment`).
pub const KIND: &str = "walkthrough";
/// Most characters of the overview shown.
pub const MAX_OVERVIEW_CHARS: usize = 2_000;
/// Most characters of one file's change shown.
pub const MAX_CHANGE_CHARS: usize = 300;
/// Most files listed in the table (the rest are counted).
pub const MAX_FILES: usize = 300;

/// The walkthrough after this run: the model's entries for the files this
/// run reviewed (entries about other paths are dropped), the previous
/// walkthrough's for the pull request's files this run did not look at,
/// and what this run (or an earlier one, for files it did not look at)
/// left out. Files keep the order of the pull request's files. An
/// incremental run saw only what changed since, so its overview replaces
/// the pull request's only when there was none.
pub fn merge(
    previous: Option<&Walkthrough>,
    incremental: bool,
    overview: &str,
    entries: &[FileChange],
    assembled: &Assembled,
    pr_files: &[ChangedFile],
) -> Walkthrough {
    let reviewed: HashSet<&str> = assembled.included.iter().map(String::as_str).collect();
    let omitted: BTreeMap<&str, String> = assembled
        .omitted
        .iter()
        .map(|(path, why)| (path.as_str(), why.describe()))
        .collect();
    let mut changes: BTreeMap<&str, &str> = BTreeMap::new();
    for e in entries {
        if reviewed.contains(e.path.as_str()) && !e.change.trim().is_empty() {
            changes.entry(e.path.as_str()).or_insert(e.change.trim());
        }
    }
    let earlier_change: BTreeMap<&str, &str> = previous
        .map(|p| {
            p.files
                .iter()
                .map(|f| (f.path.as_str(), f.change.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let earlier_why: BTreeMap<&str, &str> = previous
        .map(|p| {
            p.left_out
                .iter()
                .map(|l| (l.path.as_str(), l.why.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Walkthrough {
        overview: match (previous.map(|p| p.overview.as_str()), overview.trim()) {
            (Some(before), now) if now.is_empty() || (incremental && !before.is_empty()) => {
                before.to_string()
            }
            (_, now) => now.to_string(),
        },
        ..Walkthrough::default()
    };
    for f in pr_files {
        let path = f.path.as_str();
        let seen_now = reviewed.contains(path) || omitted.contains_key(path);
        let change = match changes.get(path) {
            Some(c) => Some(*c),
            None if !seen_now => earlier_change.get(path).copied(),
            None => None,
        };
        if let Some(change) = change {
            out.files.push(FileChange {
                path: path.to_string(),
                change: change.to_string(),
            });
        }
        let why = match omitted.get(path) {
            Some(why) => Some(why.as_str()),
            None if !seen_now => earlier_why.get(path).copied(),
            None => None,
        };
        if let Some(why) = why {
            out.left_out.push(LeftOut {
                path: path.to_string(),
                why: why.to_string(),
            });
        }
    }
    out
}

/// The comment's text at `head`: everything the model wrote redacted, then
/// made inert (no Markdown of its own, no mention, no link; redacting after
/// escaping could leave a `[REDACTED]@name` that mentions), one row per
/// file.
pub fn render(w: &Walkthrough, head: &str, redactor: &crate::redact::Redactor) -> String {
    let words = |text: &str, max: usize| redactor.redact(&cut_chars(text, max)).into_owned();
    let mut out = String::from("### 🧭 Walkthrough\n");
    if !w.overview.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            escape_text(&words(&w.overview, MAX_OVERVIEW_CHARS))
        ));
    }
    if !w.files.is_empty() {
        out.push_str("\n| File | Change |\n| --- | --- |\n");
        for f in w.files.iter().take(MAX_FILES) {
            out.push_str(&format!(
                "| {} | {} |\n",
                inline_code(&f.path).replace('|', "\\|"),
                escape_line(&words(&f.change, MAX_CHANGE_CHARS))
            ));
        }
        if w.files.len() > MAX_FILES {
            out.push_str(&format!(
                "\n… and {} more file(s).\n",
                w.files.len() - MAX_FILES
            ));
        }
    }
    if !w.left_out.is_empty() {
        out.push_str(&format!(
            "\n**Left out of the review ({} file(s))**\n",
            w.left_out.len()
        ));
        for l in w.left_out.iter().take(100) {
            // Our own words (`Omission::describe`, which shows any quoted
            // patch text as code).
            out.push_str(&format!("\n- {}: {}", inline_code(&l.path), l.why));
        }
        if w.left_out.len() > 100 {
            out.push_str(&format!("\n- … and {} more", w.left_out.len() - 100));
        }
        out.push('\n');
    }
    let short = &head[..head.len().min(7)];
    out.push_str(&format!(
        "\n_As of {}. Updated on every push._",
        inline_code(short)
    ));
    out
}

/// `text` in at most `max` characters, with `…` when cut.
fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Omission;

    fn file(path: &str) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            status: "modified".into(),
            previous_path: None,
            additions: 1,
            deletions: 0,
            patch: Some("@@ -1 +1 @@\n-a\n+b".into()),
            sha: None,
        }
    }

    fn change(path: &str, change: &str) -> FileChange {
        FileChange {
            path: path.into(),
            change: change.into(),
        }
    }

    fn assembled(included: &[&str], omitted: Vec<(&str, Omission)>) -> Assembled {
        Assembled {
            included: included.iter().map(|p| p.to_string()).collect(),
            omitted: omitted
                .into_iter()
                .map(|(p, o)| (p.to_string(), o))
                .collect(),
            ..Assembled::default()
        }
    }

    #[test]
    fn a_later_run_keeps_what_earlier_runs_said_of_files_it_did_not_see() {
        let files = [file("a.rs"), file("b.rs"), file("Cargo.lock")];
        let first = merge(
            None,
            false,
            "Adds retries.",
            &[change("a.rs", "Adds backoff."), change("b.rs", "Calls it.")],
            &assembled(&["a.rs", "b.rs"], vec![("Cargo.lock", Omission::Ignored)]),
            &files,
        );
        assert_eq!(first.files.len(), 2);
        assert_eq!(first.left_out[0].path, "Cargo.lock");
        // The push changed only b.rs; the model also talks about a file
        // that is not in this review at all.
        let files = [file("a.rs"), file("b.rs"), file("Cargo.lock"), file("c.rs")];
        let second = merge(
            Some(&first),
            true,
            "Only the last push.",
            &[
                change("b.rs", "Calls it twice."),
                change("z.rs", "Made up."),
                change("c.rs", "New helper."),
            ],
            &assembled(&["b.rs", "c.rs"], vec![]),
            &files,
        );
        assert_eq!(
            second.overview, "Adds retries.",
            "an incremental run keeps it"
        );
        assert_eq!(
            second.files,
            vec![
                change("a.rs", "Adds backoff."),
                change("b.rs", "Calls it twice."),
                change("c.rs", "New helper."),
            ]
        );
        assert_eq!(second.left_out, first.left_out, "still left out");
        // A file that left the pull request leaves the walkthrough.
        let third = merge(
            Some(&second),
            false,
            "The whole of it.",
            &[],
            &assembled(&[], vec![]),
            &[file("b.rs")],
        );
        assert_eq!(third.overview, "The whole of it.", "a full run replaces it");
        assert_eq!(third.files, vec![change("b.rs", "Calls it twice.")]);
        assert!(third.left_out.is_empty());
    }

    #[test]
    fn the_models_words_stay_in_their_cells_and_mention_nobody() {
        let w = Walkthrough {
            overview: "Ping @acme/admins and see [this](https://evil.example).\n\n# Heading".into(),
            files: vec![change(
                "src/a|b.rs",
                "Adds | a cell\n| x | y |\n@mia-maintainer",
            )],
            left_out: vec![LeftOut {
                path: "Cargo.lock".into(),
                why: "matches `review.ignore`".into(),
            }],
        };
        let redactor = crate::redact::Redactor::new(Vec::new());
        let text = render(&w, "0123456789abcdef", &redactor);
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 3, "the header, its rule and one row: {text}");
        assert!(
            !text.contains(" @acme") && !text.contains(" @mia"),
            "{text}"
        );
        assert!(!text.contains("https://"), "no link: {text}");
        assert!(!text.contains("\n# Heading"), "{text}");
        assert!(text.contains("`0123456`"), "{text}");
        assert!(text.contains("**Left out of the review (1 file(s))**"));
    }

    #[test]
    fn a_secret_is_redacted_before_the_text_is_made_inert() {
        let w = Walkthrough {
            overview: "Connects with ab://deploy:hunter2@victim and café@victim.".into(),
            ..Walkthrough::default()
        };
        let redactor = crate::redact::Redactor::new(Vec::new());
        let text = render(&w, "0123456789abcdef", &redactor);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            !text.contains("]@victim") && !text.contains("é@victim"),
            "{text}"
        );
    }
}
