//! What a review says and where it goes: the model's `submit_review`
//! arguments, checked, and turned into the inline comments GitHub will
//! accept plus a summary that carries everything else.
//!
//! Pure: no I/O. The review workflow (issue 8) fetches the diff, runs the
//! model and posts; this module decides what is posted.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::diff::{Patch, Side};
use crate::domain::Severity;
use crate::repo_config::ReviewConfig;

/// The tool the model hands its review in with.
pub const SUBMIT_REVIEW: &str = "submit_review";

/// The hidden mark on an inline comment that lets a later run see the
/// finding was already posted (`<!-- agentic:finding=… -->`).
pub const FINGERPRINT_MARK: &str = "agentic:finding=";

/// `submit_review`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub summary: String,
    #[serde(default)]
    pub comments: Vec<Finding>,
    /// One paragraph on the pull request as a whole, for the walkthrough.
    #[serde(default)]
    pub overview: String,
    /// What each file of the diff changes, for the walkthrough.
    #[serde(default)]
    pub walkthrough: Vec<crate::domain::FileChange>,
}

/// One finding: `line` (and `start_line` for a range) on `side` of the
/// diff, with the exact text of those lines (`anchor`, `start_anchor`),
/// which is what decides where it lands; `suggestion` the exact
/// replacement for those lines.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub path: String,
    pub line: u32,
    #[serde(default)]
    pub start_line: Option<u32>,
    /// `RIGHT` (added and context lines, new numbers) or `LEFT` (removed
    /// lines, old numbers).
    #[serde(default)]
    pub side: Side,
    /// The text of `line`, as the diff shows it after its marker.
    pub anchor: String,
    /// The text of `start_line`, for a range.
    #[serde(default)]
    pub start_anchor: Option<String>,
    pub severity: Severity,
    pub body: String,
    #[serde(default)]
    pub suggestion: Option<String>,
}

/// The tool's description and JSON schema, for the model's tool list.
pub fn tool_spec() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": SUBMIT_REVIEW,
            "description": "Hand in the review: a summary, and findings on lines of the diff, each quoting the exact text of its line. Call it once, when done reading.",
            "parameters": {
                "type": "object",
                "properties": {
                    "summary": { "type": "string", "description": "What the change does and what matters most, in Markdown" },
                    "overview": { "type": "string", "description": "One paragraph, plain text: what the pull request does as a whole, for a reader who has not seen it" },
                    "walkthrough": {
                        "type": "array",
                        "description": "One entry per file of the diff: what changed in it, in one plain sentence",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": { "type": "string" },
                                "change": { "type": "string" }
                            },
                            "required": ["path", "change"],
                            "additionalProperties": false
                        }
                    },
                    "comments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": { "type": "string" },
                                "line": { "type": "integer", "description": "The number the diff shows for the line: `new N` → N with side RIGHT, `old N` → N with side LEFT" },
                                "side": { "type": "string", "enum": ["RIGHT", "LEFT"], "description": "RIGHT (default) for `new` lines, LEFT for removed (`old`) lines" },
                                "anchor": { "type": "string", "description": "The exact text of that line, as shown after its `|` and marker (`+`, `-` or space), without the marker" },
                                "start_line": { "type": "integer", "description": "First line of a multi-line finding (same side, same hunk)" },
                                "start_anchor": { "type": "string", "description": "The exact text of start_line, as for anchor" },
                                "severity": { "type": "string", "enum": ["critical", "major", "minor", "nit"] },
                                "body": { "type": "string" },
                                "suggestion": { "type": "string", "description": "Exact replacement text for start_line..line (or line) on the RIGHT side, without diff markers" }
                            },
                            "required": ["path", "line", "anchor", "severity", "body"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["summary"],
                "additionalProperties": false
            }
        }
    })
}

/// Read `submit_review`'s arguments. The error is written for the model:
/// where the arguments are wrong and what they should be.
pub fn parse_submission(arguments: &str) -> Result<Submission, String> {
    let de = &mut serde_json::Deserializer::from_str(arguments);
    let submission: Submission = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        format!(
            "the `{SUBMIT_REVIEW}` arguments are not valid at `{path}`: {}. Call `{SUBMIT_REVIEW}` again with arguments that match its schema.",
            e.into_inner()
        )
    })?;
    for (i, f) in submission.comments.iter().enumerate() {
        if f.line == 0 || f.start_line.is_some_and(|s| s == 0 || s > f.line) {
            return Err(format!(
                "the `{SUBMIT_REVIEW}` arguments are not valid at `comments[{i}]`: lines count from 1 and `start_line` may not come after `line`. Call `{SUBMIT_REVIEW}` again."
            ));
        }
    }
    Ok(submission)
}

/// A stable name for a finding: its file, the text of the line it is on
/// (not the number, which moves when lines are added above, and not its
/// wording, which a model changes from run to run) and its severity. The
/// same finding on the same code is the same fingerprint after a push, a
/// retry or a re-run, however it is worded.
pub fn fingerprint(path: &str, line_text: &str, severity: Severity) -> String {
    let line: String = line_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(line.as_bytes());
    h.update([0]);
    h.update(severity.name().as_bytes());
    hex::encode(&h.finalize()[..10])
}

/// Whether a reply to a finding says, plainly, that it is not one: its
/// prose (not code, quotes or inline code) opens with "intentional" or
/// "false positive" ("this is intentional", "that's a false positive."),
/// and asks nothing. "This is not intentional", "unintentional" or "is
/// this a false positive?" dismiss nothing.
pub fn dismisses(reply: &str) -> bool {
    let prose = crate::command::prose_text(reply).to_lowercase();
    if prose.contains('?') {
        return false;
    }
    let opening = prose
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    [
        "intentional",
        "this is intentional",
        "it is intentional",
        "it's intentional",
        "that is intentional",
        "that's intentional",
        "false positive",
        "false-positive",
        "this is a false positive",
        "it is a false positive",
        "it's a false positive",
        "that is a false positive",
        "that's a false positive",
    ]
    .iter()
    .any(|p| {
        opening
            .strip_prefix(p)
            .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
    })
}

/// The fingerprints a dismissal of `marked` (the finding's own, on
/// `path`'s line `text`) covers: the finding at its own severity and at
/// every lesser one, so that the same finding raised again as less severe
/// stays dismissed, and one raised as more severe is posted. When the
/// line's text does not give back `marked`, only `marked` itself.
pub fn dismissed_fingerprints(marked: &str, path: &str, text: &str) -> Vec<String> {
    let at = Severity::ALL
        .iter()
        .position(|s| fingerprint(path, text, *s) == marked);
    match at {
        Some(at) => Severity::ALL[..=at]
            .iter()
            .map(|s| fingerprint(path, text, *s))
            .collect(),
        None => vec![marked.to_string()],
    }
}

/// The fingerprints marked on earlier comments: the one hidden mark that
/// ends each body, where the bot puts it. A mark anywhere else (in a
/// finding's text, in an answer the model wrote in a thread) is words.
pub fn posted_fingerprints<'a>(bodies: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    let open = format!("<!-- {FINGERPRINT_MARK}");
    bodies
        .into_iter()
        .filter_map(|b| {
            let rest = b.trim_end().strip_suffix(" -->")?;
            let hex = &rest[rest.rfind(&open)? + open.len()..];
            (hex.len() == 20 && hex.bytes().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_string())
        })
        .collect()
}

/// An inline comment's body: severity, text, a suggestion block (four
/// backticks when the suggestion holds a fence of its own), the mark.
pub fn render_body(finding: &Finding, fingerprint: &str) -> String {
    let mut out = format!(
        "**{}:** {}",
        finding.severity.name(),
        crate::markdown::without_mentions(finding.body.trim())
    );
    if let Some(s) = &finding.suggestion {
        let fence = crate::output::fence_for(s);
        let fence = fence.as_str();
        // An empty block deletes the lines: no blank line in it.
        out.push_str(&format!("\n\n{fence}suggestion\n{s}"));
        if !s.is_empty() && !s.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(fence);
    }
    out.push_str(&format!("\n\n<!-- {FINGERPRINT_MARK}{fingerprint} -->"));
    out
}

/// An inline comment GitHub will take: a finding on a line of the diff's
/// new side, with its rendered body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineComment {
    pub finding: Finding,
    pub body: String,
    pub fingerprint: String,
}

impl InlineComment {
    /// As `POST /pulls/{n}/reviews` takes it in `comments`.
    pub fn to_json(&self) -> Value {
        let f = &self.finding;
        let side = f.side.as_str();
        let mut v = json!({ "path": f.path, "line": f.line, "side": side, "body": self.body });
        if let Some(start) = f.start_line.filter(|s| *s < f.line) {
            v["start_line"] = json!(start);
            v["start_side"] = json!(side);
        }
        v
    }
}

/// Why a finding is not an inline comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInline {
    /// Its file is not in the reviewed diff.
    FileNotInDiff,
    /// Its line (or range) is not one GitHub takes a comment on.
    LineNotInDiff,
    /// The text it quotes is not at its line, and no one line of the
    /// file's diff holds that text.
    AnchorNotFound,
}

/// The same line text, ignoring whitespace.
fn same_text(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The same line text byte for byte, trailing spaces and `\r` aside: what
/// a suggestion needs, since it replaces the line's indentation too.
fn exactly(a: &str, b: &str) -> bool {
    a.trim_end() == b.trim_end()
}

/// How far (in lines) a finding may move from the line it names to the
/// line whose text it quotes: a miscount, not a finding about other code
/// that happens to hold the same text.
const MAX_MOVE: u32 = 20;

/// The one line of the diff near `near` (within [`MAX_MOVE`]), on `side`
/// first and then on the other, whose text is `anchor`; `None` when none
/// or several are, or the anchor is blank.
fn unique_line(patch: &Patch, side: Side, near: u32, anchor: &str) -> Option<(Side, u32)> {
    if anchor.trim().is_empty() {
        return None;
    }
    let other = match side {
        Side::Right => Side::Left,
        Side::Left => Side::Right,
    };
    for s in [side, other] {
        let found: Vec<u32> = patch
            .lines_on(s)
            .into_iter()
            .filter(|(n, t)| n.abs_diff(near) <= MAX_MOVE && same_text(t, anchor))
            .map(|(n, _)| n)
            .collect();
        match found.as_slice() {
            [] => continue,
            [n] => return Some((s, *n)),
            _ => return None,
        }
    }
    None
}

/// Where `f` lands in its file's diff: on its own line(s) when the text
/// there is what it quotes (`true`: exact, byte for byte, and for a range
/// neither end blank — what a suggestion needs), else on the one line near
/// it whose text it quotes (`false`: moved, or a range cut to its last
/// line); `None` when neither.
fn place(patch: &Patch, f: &Finding) -> Option<(Finding, bool)> {
    let at = |side: Side, n: u32, anchor: &str| {
        patch.text_at(side, n).is_some_and(|t| same_text(t, anchor))
    };
    let byte_for_byte = |side: Side, n: u32, anchor: &str| {
        patch.text_at(side, n).is_some_and(|t| exactly(t, anchor))
    };
    let start = f.start_line.filter(|s| *s < f.line);
    if at(f.side, f.line, &f.anchor) {
        let start_ok = match (start, &f.start_anchor) {
            (None, _) => true,
            (Some(s), Some(a)) => at(f.side, s, a),
            (Some(_), None) => false,
        };
        if start_ok && patch.can_comment(f.side, start, f.line) {
            let mut placed = f.clone();
            placed.start_line = start;
            let exact = byte_for_byte(f.side, f.line, &f.anchor)
                && match (start, &f.start_anchor) {
                    (None, _) => true,
                    (Some(s), Some(a)) => {
                        byte_for_byte(f.side, s, a)
                            && !a.trim().is_empty()
                            && !f.anchor.trim().is_empty()
                    }
                    (Some(_), None) => false,
                };
            return Some((placed, exact));
        }
        // The range cannot be checked: its last line alone.
        let mut placed = f.clone();
        placed.start_line = None;
        return Some((placed, false));
    }
    let (side, line) = unique_line(patch, f.side, f.line, &f.anchor)?;
    let start = f
        .start_anchor
        .as_deref()
        .zip(f.start_line)
        .and_then(|(a, near)| unique_line(patch, side, near, a))
        .filter(|(s, n)| *s == side && *n < line && patch.can_comment(side, Some(*n), line))
        .map(|(_, n)| n);
    let mut placed = f.clone();
    placed.side = side;
    placed.line = line;
    placed.start_line = start;
    Some((placed, false))
}

/// A suggestion as GitHub will apply it to `placed`'s lines, or `None`
/// when it should not be offered. Diff markers the model copied in are
/// taken out only when that is certainly what they are: every line marked,
/// and its ` `/`-` lines, unmarked, being exactly the current lines (a diff
/// of them), or its lines all `+` where the current lines start with none.
/// A suggestion that looks like a diff in any other way is dropped rather
/// than guessed at; one that is then empty, or the very text already
/// there, is no suggestion.
fn clean_suggestion(suggestion: &str, patch: &Patch, placed: &Finding) -> Option<String> {
    let from = placed.start_line.unwrap_or(placed.line);
    let current: Vec<&str> = (from..=placed.line)
        .filter_map(|n| patch.text_at(Side::Right, n))
        .collect();
    let lines: Vec<&str> = suggestion.lines().collect();
    let marked = |l: &&str| l.starts_with(['+', '-', ' ']);
    let current_marked = current.iter().any(|l| l.starts_with(['+', '-']));
    let diff_like = lines.iter().any(|l| l.starts_with('+')) && lines.iter().all(marked);
    let cleaned = if diff_like && !current_marked {
        let old: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with('+'))
            .map(|l| &l[1..])
            .collect();
        let all_added = old.is_empty();
        if !all_added && old != current {
            return None;
        }
        let new: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with('-'))
            .map(|l| &l[1..])
            .collect();
        if new.is_empty() {
            return None;
        }
        new.join("\n")
    } else if diff_like {
        // The code itself starts lines with `+`/`-` (a diff, a list): the
        // model's markers and the code's cannot be told apart.
        return None;
    } else {
        suggestion.to_string()
    };
    if cleaned.trim_end_matches('\n') == current.join("\n") {
        return None;
    }
    Some(cleaned)
}

/// What a review posts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Inline, highest severity first, at most `review.max_comments`.
    pub inline: Vec<InlineComment>,
    /// Findings that go into the summary instead, with why.
    pub in_summary: Vec<(Finding, NotInline)>,
    /// Findings over `review.max_comments`, counted in the summary.
    pub over_cap: Vec<Finding>,
    /// Findings below `review.min_severity`, left out.
    pub below_threshold: usize,
    /// Findings an earlier run already posted, not repeated.
    pub already_posted: usize,
}

/// Decide where each finding goes. `patches` are the reviewed files by
/// path; `posted` the fingerprints already on the pull request.
pub fn plan(
    findings: Vec<Finding>,
    patches: &HashMap<String, Patch>,
    config: &ReviewConfig,
    posted: &HashSet<String>,
) -> Plan {
    let mut out = Plan::default();
    let mut findings: Vec<Finding> = findings
        .into_iter()
        .filter(|f| {
            let keep = f.severity >= config.min_severity;
            out.below_threshold += usize::from(!keep);
            keep
        })
        .collect();
    // Highest severity first; the model's order within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut seen = HashSet::new();
    for f in findings {
        let Some(patch) = patches.get(&f.path) else {
            out.in_summary.push((f, NotInline::FileNotInDiff));
            continue;
        };
        let Some((mut placed, exact)) = place(patch, &f) else {
            let why = if patch.can_comment(f.side, f.start_line, f.line) {
                NotInline::AnchorNotFound
            } else {
                NotInline::LineNotInDiff
            };
            out.in_summary.push((f, why));
            continue;
        };
        // A suggestion replaces lines when someone presses its button:
        // only on exactly the lines it was written for, on the new side.
        placed.suggestion = match (&f.suggestion, exact, placed.side) {
            (Some(s), true, Side::Right) => clean_suggestion(s, patch, &placed),
            _ => None,
        };
        let f = placed;
        let line_text = patch.text_at(f.side, f.line).unwrap_or_default();
        let fp = fingerprint(&f.path, line_text, f.severity);
        // Posted by an earlier run: the same line and severity, however
        // worded. Within this run, two findings on one line are two
        // findings unless they say the same.
        let said: String = f
            .body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if posted.contains(&fp) || !seen.insert((fp.clone(), said)) {
            out.already_posted += 1;
            continue;
        }
        if out.inline.len() >= config.max_comments as usize {
            out.over_cap.push(f);
            continue;
        }
        out.inline.push(InlineComment {
            body: render_body(&f, &fp),
            finding: f,
            fingerprint: fp,
        });
    }
    out
}

/// The review's summary: the model's own, then what could not be inline.
pub fn summary(model_summary: &str, plan: &Plan) -> String {
    let mut out = crate::markdown::without_mentions(model_summary.trim());
    if !plan.in_summary.is_empty() {
        out.push_str("\n\n**Findings outside the diff's lines**\n");
        for (f, why) in &plan.in_summary {
            let why = match why {
                NotInline::FileNotInDiff => "file not in this diff",
                NotInline::LineNotInDiff => "line not in the diff",
                NotInline::AnchorNotFound => "the line it quotes is not in the diff",
            };
            out.push_str(&format!(
                "\n- **{}** {} line {} ({why}): {}",
                f.severity.name(),
                crate::output::code_span(&f.path),
                f.line,
                crate::markdown::without_mentions(f.body.trim())
            ));
        }
    }
    let mut notes = Vec::new();
    if !plan.over_cap.is_empty() {
        notes.push(format!(
            "{} more finding(s) over this repository's limit of inline comments",
            plan.over_cap.len()
        ));
    }
    if plan.already_posted > 0 {
        notes.push(format!(
            "{} finding(s) already posted earlier, not repeated",
            plan.already_posted
        ));
    }
    if plan.below_threshold > 0 {
        notes.push(format!(
            "{} finding(s) below this repository's minimum severity",
            plan.below_threshold
        ));
    }
    if !notes.is_empty() {
        out.push_str(&format!("\n\n_{}._", notes.join("; ")));
    }
    out
}

/// One changed file as the review sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: String,
    /// `added`, `removed`, `modified`, `renamed`… as the files API says.
    pub status: String,
    pub previous_path: Option<String>,
    pub additions: u64,
    pub deletions: u64,
    /// `None` where GitHub sent no patch (binary, or too large a diff).
    pub patch: Option<String>,
    /// The file's blob at the head, as the files API gives it.
    pub sha: Option<String>,
}

impl From<crate::github::types::PullFile> for ChangedFile {
    fn from(f: crate::github::types::PullFile) -> Self {
        ChangedFile {
            path: f.filename,
            status: f.status,
            previous_path: f.previous_filename,
            additions: f.additions,
            deletions: f.deletions,
            patch: f.patch,
            sha: f.sha,
        }
    }
}

/// A hash of what a file's patch changes: every hunk's lines with their
/// markers and context, without the hunk headers' line numbers, so that a
/// merge from the base branch that only shifts the file's lines changes
/// nothing here, while any change to what the pull request adds, removes,
/// or where it does so, does.
pub fn changes_hash(patch: Option<&str>) -> String {
    let mut h = Sha256::new();
    match patch.map(Patch::parse) {
        Some(Ok(p)) => {
            for hunk in &p.hunks {
                h.update(b"@@\n");
                for line in &hunk.lines {
                    let mark: &[u8] = match line.kind {
                        crate::diff::LineKind::Added => b"+",
                        crate::diff::LineKind::Removed => b"-",
                        crate::diff::LineKind::Context => b" ",
                    };
                    h.update(mark);
                    h.update(line.text.as_bytes());
                    h.update([b'\n']);
                }
            }
        }
        Some(Err(_)) => h.update(patch.unwrap_or_default().as_bytes()),
        None => h.update(b"\0no patch"),
    }
    hex::encode(&h.finalize()[..12])
}

/// Every file's [`changes_hash`], by path.
pub fn file_hashes(files: &[ChangedFile]) -> std::collections::BTreeMap<String, String> {
    files
        .iter()
        .map(|f| {
            // A rename is a change of its own, and so is a status.
            // Without a patch, the blob itself says whether it changed.
            let changes = match (&f.patch, &f.sha) {
                (None, Some(blob)) => format!("blob {blob}"),
                (patch, _) => changes_hash(patch.as_deref()),
            };
            let key = format!(
                "{}:{}:{changes}",
                f.status,
                f.previous_path.as_deref().unwrap_or(""),
            );
            let mut h = Sha256::new();
            h.update(key.as_bytes());
            (f.path.clone(), hex::encode(&h.finalize()[..12]))
        })
        .collect()
}

/// Why a changed file was not put before the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Omission {
    /// It matches a `review.ignore` glob.
    Ignored,
    /// GitHub sent no patch for it: a binary file or a diff too large for
    /// the API. Nothing is guessed about it.
    NoPatch,
    /// Its patch could not be read (the reason).
    Unreadable(String),
    /// It did not fit in the review's token budget (its size in tokens).
    OverBudget(usize),
    /// Only removed: nothing on the new side to comment on.
    Deleted,
    /// Renamed (or copied) without a change to its content.
    Unchanged,
}

impl Omission {
    pub fn describe(&self) -> String {
        match self {
            Omission::Ignored => "matches `review.ignore`".into(),
            Omission::NoPatch => "GitHub sent no diff for it (binary, or too large)".into(),
            // The reason may quote the patch: shown as code, inert.
            Omission::Unreadable(why) => format!(
                "its diff could not be read ({})",
                crate::markdown::inline_code(why)
            ),
            Omission::OverBudget(tokens) => {
                format!("did not fit in this review's budget ({tokens} tokens)")
            }
            Omission::Deleted => "deleted".into(),
            Omission::Unchanged => "renamed without changes".into(),
        }
    }
}

/// The diff as put before the model, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Assembled {
    /// Every file's patch, each fenced as untrusted data.
    pub text: String,
    /// Tokens of `text` in the model's encoding.
    pub tokens: usize,
    /// Paths put before the model.
    pub included: Vec<String>,
    /// Paths left out, with why, in the order of the files.
    pub omitted: Vec<(String, Omission)>,
    /// Paths whose diff was too long for one piece and was cut: (path,
    /// lines shown, lines in all).
    pub partial: Vec<(String, usize, usize)>,
}

/// The tokenizer of `model` where tiktoken knows it, `o200k_base`
/// otherwise (the encoding of current OpenAI models; for other families a
/// close enough estimate of length).
pub fn tokenizer(model: &str) -> &'static tiktoken_rs::CoreBPE {
    tiktoken_rs::bpe_for_model(model).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton())
}

/// How soon a file is reviewed when not everything fits: code first,
/// then tests, then configuration, then documentation.
fn kind_rank(path: &str) -> u8 {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    if matches!(ext, "md" | "rst" | "txt" | "adoc") || lower.starts_with("docs/") {
        3
    } else if lower.contains("test") || lower.contains("spec.") || lower.contains("fixtures/") {
        1
    } else if matches!(
        ext,
        "json" | "yml" | "yaml" | "toml" | "ini" | "cfg" | "xml" | "csv"
    ) {
        2
    } else {
        0
    }
}

/// Put the changed files before the model within `budget` tokens: files
/// the config ignores, files without a patch and deleted files are left
/// out and named; the rest go in by kind (code, tests, configuration,
/// documentation) and, within a kind, smallest change first, so that as
/// many files as possible are reviewed; what does not fit is named too.
/// `parsed` receives each reviewed file's parsed patch.
pub fn assemble(
    files: &[ChangedFile],
    ignore: &globset::GlobSet,
    budget: usize,
    bpe: &tiktoken_rs::CoreBPE,
    fence: &crate::agent::tools::Fence,
) -> Assembled {
    let mut out = Assembled::default();
    let mut candidates: Vec<(&ChangedFile, Patch)> = Vec::new();
    for f in files {
        let omission = if ignore.is_match(&f.path) {
            Some(Omission::Ignored)
        } else if f.status == "removed" {
            Some(Omission::Deleted)
        } else if f.patch.is_none() && f.additions + f.deletions == 0 && f.previous_path.is_some() {
            Some(Omission::Unchanged)
        } else {
            match &f.patch {
                None => Some(Omission::NoPatch),
                Some(p) => match Patch::parse(p) {
                    Err(e) => Some(Omission::Unreadable(e.to_string())),
                    Ok(parsed) => {
                        candidates.push((f, parsed));
                        None
                    }
                },
            }
        };
        if let Some(o) = omission {
            out.omitted.push((f.path.clone(), o));
        }
    }
    candidates.sort_by_key(|(f, _)| (kind_rank(&f.path), f.additions + f.deletions));
    let mut chosen = HashSet::new();
    let mut over = HashMap::new();
    let mut partial = HashMap::new();
    for (f, patch) in &candidates {
        let mut about = format!("{} ({}", f.path, f.status);
        if let Some(prev) = &f.previous_path {
            about.push_str(&format!(", renamed from {prev}"));
        }
        about.push_str(&format!(", +{} -{})\n", f.additions, f.deletions));
        // Every line numbered as a comment on it counts it; a diff longer
        // than one piece is cut at a line, and said to be.
        let numbered = patch.numbered();
        let room = crate::agent::tools::MAX_PIECE.saturating_sub(about.len() + 200);
        let shown = if numbered.len() > room {
            let mut cut = String::new();
            let mut lines = 0;
            for line in numbered.split_inclusive('\n') {
                if cut.len() + line.len() > room {
                    break;
                }
                cut.push_str(line);
                lines += 1;
            }
            let total = numbered.lines().count();
            cut.push_str(&format!(
                "[cut here: the first {lines} of this diff's {total} lines are shown]\n"
            ));
            partial.insert(f.path.clone(), (lines, total));
            cut
        } else {
            numbered
        };
        let piece = fence.wrap(
            "changed file: path, then its diff",
            &format!("{about}{shown}"),
        );
        let tokens = bpe.count_ordinary(&piece);
        if out.tokens + tokens > budget {
            partial.remove(&f.path);
            over.insert(f.path.clone(), tokens);
            continue;
        }
        out.tokens += tokens;
        out.text.push_str(&piece);
        out.text.push('\n');
        chosen.insert(f.path.clone());
    }
    // Report in the order GitHub listed the files.
    for f in files {
        if chosen.contains(&f.path) {
            out.included.push(f.path.clone());
            if let Some((shown, total)) = partial.get(&f.path) {
                out.partial.push((f.path.clone(), *shown, *total));
            }
        } else if let Some(tokens) = over.get(&f.path) {
            out.omitted
                .push((f.path.clone(), Omission::OverBudget(*tokens)));
        }
    }
    let order: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    out.omitted
        .sort_by_key(|(p, _)| order.get(p.as_str()).copied().unwrap_or(usize::MAX));
    out
}

/// Most names of left-out files told to the model: the list must not grow
/// the prompt past its budget.
const MAX_OMITTED_FOR_MODEL: usize = 40;

/// The files left out, for the model's prompt (fenced: file names are
/// other people's text), or nothing.
pub fn omitted_for_model(assembled: &Assembled, fence: &crate::agent::tools::Fence) -> String {
    if assembled.omitted.is_empty() {
        return String::new();
    }
    let mut names: Vec<String> = assembled
        .omitted
        .iter()
        .take(MAX_OMITTED_FOR_MODEL)
        .map(|(p, why)| format!("{p}: {}", why.describe()))
        .collect();
    if assembled.omitted.len() > MAX_OMITTED_FOR_MODEL {
        names.push(format!(
            "… and {} more",
            assembled.omitted.len() - MAX_OMITTED_FOR_MODEL
        ));
    }
    format!(
        "\nChanged files not shown below ({}):\n{}\n",
        assembled.omitted.len(),
        fence.wrap("file names", &names.join("\n"))
    )
}

/// The summary's list of files that were reviewed only in part.
pub fn partly_reviewed(partial: &[(String, usize, usize)]) -> String {
    if partial.is_empty() {
        return String::new();
    }
    let mut out = format!("**Partly reviewed ({} file(s))**\n", partial.len());
    for (path, shown, total) in partial {
        out.push_str(&format!(
            "\n- {}: first {shown} of {total} diff lines (the rest was too long to show)",
            crate::output::code_span(path)
        ));
    }
    out
}

/// The summary's list of files that were not reviewed, and why.
pub fn omissions(omitted: &[(String, Omission)]) -> String {
    if omitted.is_empty() {
        return String::new();
    }
    let mut out = format!("**Not reviewed ({} file(s))**\n", omitted.len());
    for (path, why) in omitted.iter().take(100) {
        out.push_str(&format!(
            "\n- {}: {}",
            crate::output::code_span(path),
            why.describe()
        ));
    }
    if omitted.len() > 100 {
        out.push_str(&format!("\n- … and {} more", omitted.len() - 100));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_mark_that_ends_a_comment_counts_as_posted() {
        let hex = "0123456789abcdef0123";
        let ends = format!("**minor:** x\n\n<!-- {FINGERPRINT_MARK}{hex} -->\n");
        // An answer the model wrote in a thread, quoting a mark, and a mark
        // planted before the real one.
        let quoted = format!("reply with `agentic:finding={hex}` to silence it");
        let planted = format!("<!-- {FINGERPRINT_MARK}{hex} --> and more text");
        assert_eq!(
            posted_fingerprints([ends.as_str()]),
            HashSet::from([hex.to_string()])
        );
        assert!(posted_fingerprints([quoted.as_str(), planted.as_str()]).is_empty());
    }

    #[test]
    fn only_a_plain_statement_dismisses() {
        for yes in [
            "This is intentional.",
            "intentional: callers cap it",
            "False positive, the input is bounded.",
            "That's a false positive",
        ] {
            assert!(dismisses(yes), "{yes}");
        }
        for no in [
            "This is not intentional, please fix",
            "unintentional",
            "Is this a false positive?",
            "> false positive\n\nI disagree with the above.",
            "`intentional`",
            "```\nfalse positive\n```",
            "intentionally left broken",
        ] {
            assert!(!dismisses(no), "{no}");
        }
    }

    #[test]
    fn a_dismissal_covers_its_severity_and_lesser_ones_only() {
        let marked = fingerprint("a.rs", "x += 1;", Severity::Major);
        let covered = dismissed_fingerprints(&marked, "a.rs", "x += 1;");
        assert_eq!(covered.len(), 3);
        assert!(covered.contains(&fingerprint("a.rs", "x += 1;", Severity::Nit)));
        assert!(!covered.contains(&fingerprint("a.rs", "x += 1;", Severity::Critical)));
        // A line that does not give back the mark: only the mark.
        assert_eq!(
            dismissed_fingerprints(&marked, "a.rs", "y"),
            vec![marked.clone()]
        );
    }

    const PATCH: &str =
        "@@ -1,3 +1,4 @@\n fn main() {\n-    old();\n+    new();\n+    more();\n }\n";

    fn patches() -> HashMap<String, Patch> {
        HashMap::from([("src/main.rs".to_string(), Patch::parse(PATCH).unwrap())])
    }

    /// A finding on `line` of PATCH's new side, quoting that line's text
    /// (or text no line has, off the diff).
    fn finding(line: u32, severity: Severity, body: &str) -> Finding {
        let patch = Patch::parse(PATCH).unwrap();
        let anchor = patch.text_at(Side::Right, line).unwrap_or("(no such line)");
        anchored(line, anchor, severity, body)
    }

    fn anchored(line: u32, anchor: &str, severity: Severity, body: &str) -> Finding {
        Finding {
            path: "src/main.rs".into(),
            line,
            start_line: None,
            side: Side::Right,
            anchor: anchor.into(),
            start_anchor: None,
            severity,
            body: body.into(),
            suggestion: None,
        }
    }

    #[test]
    fn arguments_are_checked_and_errors_speak_to_the_model() {
        let ok = parse_submission(
            r#"{"summary":"s","comments":[{"path":"a","line":2,"anchor":"x","severity":"major","body":"b","suggestion":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(ok.comments[0].severity, Severity::Major);
        assert_eq!(parse_submission(r#"{"summary":"s"}"#).unwrap().comments, []);
        let e = parse_submission(r#"{"summary":"s","comments":[{"path":"a","line":"two","anchor":"x","severity":"major","body":"b"}]}"#)
            .unwrap_err();
        assert!(e.contains("`comments[0].line`"), "{e}");
        let e = parse_submission(
            r#"{"summary":"s","comments":[{"path":"a","line":2,"anchor":"x","severity":"blocker","body":"b"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("`comments[0].severity`") && e.contains("critical"),
            "{e}"
        );
        let e = parse_submission(r#"{"summary":"s","verdict":"approve"}"#).unwrap_err();
        assert!(e.contains("unknown field `verdict`"), "{e}");
        let e = parse_submission(r#"{"summary":"s","comments":[{"path":"a","line":2,"anchor":"x","start_line":5,"severity":"nit","body":"b"}]}"#)
            .unwrap_err();
        assert!(e.contains("comments[0]"), "{e}");
    }

    #[test]
    fn findings_go_inline_only_on_lines_of_the_diff() {
        let config = ReviewConfig::default();
        let mut range = finding(3, Severity::Major, "two calls");
        range.start_line = Some(2);
        range.start_anchor = Some("new();".into());
        let plan = plan(
            vec![
                finding(2, Severity::Minor, "prefer `new_v2`"),
                finding(9, Severity::Critical, "far away"),
                range,
                Finding {
                    path: "other.rs".into(),
                    ..finding(1, Severity::Major, "not here")
                },
                finding(2, Severity::Nit, "style"),
            ],
            &patches(),
            &config,
            &HashSet::new(),
        );
        let inline: Vec<(u32, Severity)> = plan
            .inline
            .iter()
            .map(|c| (c.finding.line, c.finding.severity))
            .collect();
        assert_eq!(
            inline,
            [(3, Severity::Major), (2, Severity::Minor)],
            "highest first"
        );
        assert_eq!(plan.inline[0].to_json()["start_line"], 2);
        assert_eq!(plan.in_summary.len(), 2);
        assert_eq!(plan.in_summary[0].1, NotInline::LineNotInDiff);
        assert_eq!(plan.in_summary[1].1, NotInline::FileNotInDiff);
        assert_eq!(plan.below_threshold, 1, "nit is below the default minimum");
        let text = summary("Looks fine.", &plan);
        assert!(
            text.contains("**Critical** `src/main.rs` line 9 (line not in the diff): far away"),
            "{text}"
        );
        assert!(
            text.contains("1 finding(s) below this repository's minimum severity"),
            "{text}"
        );
    }

    #[test]
    fn the_cap_keeps_the_most_severe_and_counts_the_rest() {
        let config = ReviewConfig {
            max_comments: 1,
            ..ReviewConfig::default()
        };
        let plan = plan(
            vec![
                finding(2, Severity::Minor, "a"),
                finding(3, Severity::Critical, "b"),
            ],
            &patches(),
            &config,
            &HashSet::new(),
        );
        assert_eq!(plan.inline.len(), 1);
        assert_eq!(plan.inline[0].finding.severity, Severity::Critical);
        assert_eq!(plan.over_cap.len(), 1);
        assert!(summary("", &plan).contains("1 more finding(s) over"));
    }

    #[test]
    fn a_finding_already_posted_is_not_repeated_even_if_its_line_moved() {
        let config = ReviewConfig::default();
        let first = plan(
            vec![finding(2, Severity::Major, "Use  `try_new`")],
            &patches(),
            &config,
            &HashSet::new(),
        );
        let posted = posted_fingerprints(first.inline.iter().map(|c| c.body.as_str()));
        assert_eq!(posted.len(), 1);
        // After a push the same line is one further down.
        let moved = Patch::parse("@@ -1,3 +1,5 @@\n fn main() {\n+    // note\n-    old();\n+    new();\n+    more();\n }\n").unwrap();
        let again = plan(
            vec![
                anchored(3, "    new();", Severity::Major, "`try_new` is better here"),
                anchored(4, "    more();", Severity::Major, "another"),
            ],
            &HashMap::from([("src/main.rs".to_string(), moved)]),
            &config,
            &posted,
        );
        assert_eq!(again.already_posted, 1);
        assert_eq!(again.inline.len(), 1);
        assert_eq!(again.inline[0].finding.line, 4);
    }

    #[test]
    fn suggestions_become_blocks_with_a_longer_fence_when_needed() {
        let mut f = finding(2, Severity::Minor, "rename");
        f.suggestion = Some("    new_v2();".into());
        let body = render_body(&f, "00112233445566778899");
        assert_eq!(
            body,
            "**Minor:** rename\n\n```suggestion\n    new_v2();\n```\n\n<!-- agentic:finding=00112233445566778899 -->"
        );
        f.suggestion = Some("/// ```\n/// x\n/// ```".into());
        assert!(render_body(&f, "ab").contains("````suggestion\n/// ```\n/// x\n/// ```\n````"));
        f.suggestion = Some(String::new());
        assert!(
            render_body(&f, "ab").contains("```suggestion\n```"),
            "an empty block deletes the lines"
        );
    }

    fn changed(path: &str, status: &str, patch: Option<&str>) -> ChangedFile {
        let (additions, deletions) = patch
            .and_then(|p| Patch::parse(p).ok())
            .map_or((0, 0), |p| p.counts());
        ChangedFile {
            path: path.into(),
            status: status.into(),
            previous_path: (status == "renamed").then(|| format!("old/{path}")),
            additions: additions as u64,
            deletions: deletions as u64,
            patch: patch.map(str::to_string),
            sha: None,
        }
    }

    #[test]
    fn a_changes_hash_ignores_shifted_lines_not_moved_changes() {
        let here = "@@ -10,2 +10,3 @@ def fake():\n     x = 1\n+    return True\n     y = 2\n";
        let shifted = here.replace("@@ -10,2 +10,3 @@", "@@ -30,2 +30,3 @@");
        let moved = "@@ -50,2 +50,3 @@ def is_authorized():\n     token = read()\n+    return True\n     check(token)\n";
        assert_eq!(changes_hash(Some(here)), changes_hash(Some(&shifted)));
        assert_ne!(changes_hash(Some(here)), changes_hash(Some(moved)));
    }

    #[test]
    fn suggestions_are_posted_only_where_they_fit_the_code_byte_for_byte() {
        let patch =
            Patch::parse("@@ -1,2 +1,3 @@\n def f():\n-    return x\n+    return y\n+\n").unwrap();
        let patches = HashMap::from([("src/main.rs".to_string(), patch)]);
        let config = ReviewConfig::default();
        let with = |anchor: &str, suggestion: &str| {
            let mut f = anchored(2, anchor, Severity::Major, "b");
            f.suggestion = Some(suggestion.into());
            plan(vec![f], &patches, &config, &HashSet::new()).inline[0]
                .finding
                .suggestion
                .clone()
        };
        // Indentation differs: placed, but no suggestion (it would change
        // the indentation).
        assert_eq!(with("return y", "return z"), None);
        assert_eq!(
            with("    return y", "    return z").as_deref(),
            Some("    return z")
        );
        // A diff of the current line: the markers go.
        assert_eq!(
            with("    return y", "-    return y\n+    return z").as_deref(),
            Some("    return z")
        );
        // A diff of some other line: dropped, not guessed at.
        assert_eq!(with("    return y", "-    return w\n+    return z"), None);
    }

    #[test]
    fn a_finding_moves_only_a_miscount_away() {
        let mut text = String::from("@@ -1,60 +1,60 @@\n");
        for i in 1..=60 {
            text.push_str(&format!(" line {i}\n"));
        }
        let patches = HashMap::from([("src/main.rs".to_string(), Patch::parse(&text).unwrap())]);
        let config = ReviewConfig::default();
        let place_at = |line: u32| {
            plan(
                vec![anchored(line, "line 50", Severity::Major, "b")],
                &patches,
                &config,
                &HashSet::new(),
            )
        };
        assert_eq!(
            place_at(47).inline[0].finding.line,
            50,
            "off by three: moved"
        );
        assert_eq!(
            place_at(5).in_summary[0].1,
            NotInline::AnchorNotFound,
            "45 lines away: not moved"
        );
    }

    #[test]
    fn pipe_operators_reach_the_model_as_written() {
        let elixir = "@@ -1,2 +1,2 @@\n def show(conn) do\n-  conn |> json(%{})\n+  conn |> put_status(200) |> json(%{ok: true})";
        let assembled = assemble(
            &[changed("lib/web.ex", "modified", Some(elixir))],
            &globset::GlobSet::empty(),
            100_000,
            tokenizer("gpt-4o-mini"),
            &crate::agent::tools::Fence::new(),
        );
        assert!(
            assembled
                .text
                .contains("    new 2 |+  conn |> put_status(200) |> json(%{ok: true})\n"),
            "{}",
            assembled.text
        );
        assert!(assembled.text.contains("    old 2 |-  conn |> json(%{})\n"));
    }

    #[test]
    fn a_diff_longer_than_one_piece_is_cut_at_a_line_and_said_to_be() {
        let long: String = (0..3000)
            .map(|i| format!("+let value_{i} = {i};\n"))
            .collect();
        let long = format!("@@ -0,0 +1,3000 @@\n{long}");
        let assembled = assemble(
            &[changed("src/long.rs", "added", Some(&long))],
            &globset::GlobSet::empty(),
            1_000_000,
            tokenizer("gpt-4o-mini"),
            &crate::agent::tools::Fence::new(),
        );
        assert_eq!(assembled.included, ["src/long.rs"]);
        let [(path, shown, total)] = assembled.partial.as_slice() else {
            panic!("{:?}", assembled.partial)
        };
        assert_eq!((path.as_str(), *total), ("src/long.rs", 3001));
        assert!(*shown > 100 && shown < total, "{shown}");
        assert!(assembled.text.contains(&format!(
            "[cut here: the first {shown} of this diff's 3001 lines are shown]"
        )));
        assert!(partly_reviewed(&assembled.partial)
            .contains(&format!("`src/long.rs`: first {shown} of 3001 diff lines")));
    }

    #[test]
    fn assembly_leaves_out_what_it_must_and_names_why() {
        let big: String = (0..400).map(|i| format!("+let x{i} = {i};\n")).collect();
        let big = format!("@@ -0,0 +1,400 @@\n{big}");
        let files = vec![
            changed("README.md", "modified", Some("@@ -1 +1 @@\n-a\n+b")),
            changed("Cargo.lock", "modified", Some(PATCH)),
            changed("logo.png", "modified", None),
            changed("src/gone.rs", "removed", Some("@@ -1 +0,0 @@\n-x")),
            changed("src/moved.rs", "renamed", None),
            changed("src/huge.rs", "added", Some(&big)),
            changed("src/main.rs", "modified", Some(PATCH)),
            changed("src/broken.rs", "modified", Some("@@ nonsense")),
        ];
        let ignore = crate::repo_config::RepoConfig::default().ignored();
        let fence = crate::agent::tools::Fence::new();
        let bpe = tokenizer("gpt-4o");
        let out = assemble(&files, &ignore, 400, bpe, &fence);
        assert_eq!(out.included, ["README.md", "src/main.rs"]);
        assert!(out.tokens <= 400 && out.tokens == bpe.count_ordinary(&out.text));
        let why: Vec<(&str, String)> = out
            .omitted
            .iter()
            .map(|(p, o)| (p.as_str(), o.describe()))
            .collect();
        assert_eq!(
            why[0],
            ("Cargo.lock", "matches `review.ignore`".to_string())
        );
        assert_eq!(why[1].0, "logo.png");
        assert_eq!(why[2], ("src/gone.rs", "deleted".to_string()));
        assert_eq!(
            why[3],
            ("src/moved.rs", "renamed without changes".to_string())
        );
        assert_eq!(why[4].0, "src/huge.rs");
        assert!(why[4].1.starts_with("did not fit"), "{why:?}");
        assert!(
            why[5].1.starts_with("its diff could not be read"),
            "{why:?}"
        );
        // Code goes before documentation in the prompt.
        assert!(out.text.find("src/main.rs").unwrap() < out.text.find("README.md").unwrap());
        assert!(omissions(&out.omitted).starts_with("**Not reviewed (6 file(s))**"));
    }
}
