//! The part of a CI job's log worth showing: the lines around its first
//! error and its last lines, read as the log streams in, in bounded memory
//! whatever its size, cleaned of timestamps and colour codes, and redacted
//! before anyone (the model included) sees it. Logs carry secrets more
//! often than anything else the bot reads.

use std::collections::VecDeque;
use std::sync::OnceLock;

use regex::Regex;

use crate::redact::Redactor;

/// Lines kept before the first error, and from it on.
const BEFORE_ERROR: usize = 15;
const FROM_ERROR: usize = 45;
/// The log's last lines kept.
const TAIL_LINES: usize = 80;
/// Longest line kept; the rest of a longer one is cut.
const MAX_LINE: usize = 1_000;
/// Most bytes of one line held before it is cleaned and redacted whole.
const HELD: usize = MAX_LINE * 4;
/// Most bytes of a log read; a longer one is read no further.
pub const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;
/// Most characters of the excerpt.
pub const MAX_EXCERPT_CHARS: usize = 12_000;

/// A log as it streams in.
#[derive(Debug, Default)]
pub struct LogTail {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    lines: usize,
    bytes: usize,
    /// The last [`BEFORE_ERROR`] lines, until an error is seen.
    recent: VecDeque<(usize, String)>,
    /// The lines around the first error, once one is seen.
    around_error: Vec<(usize, String)>,
    first_error: Option<usize>,
    tail: VecDeque<(usize, String)>,
    /// More bytes came than [`MAX_LOG_BYTES`].
    cut: bool,
}

/// What is shown of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// Redacted, numbered lines, with a note where lines are left out.
    pub text: String,
    /// Lines in the log (as far as it was read).
    pub lines: usize,
    /// The number of the first line that looks like an error, if any.
    pub first_error: Option<usize>,
    /// The log was longer than [`MAX_LOG_BYTES`] and read only that far.
    pub cut: bool,
}

impl LogTail {
    pub fn new() -> LogTail {
        LogTail::default()
    }

    /// Whether more of the log is worth reading.
    pub fn wants_more(&self) -> bool {
        !self.cut
    }

    /// The next bytes of the log.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.cut {
            return;
        }
        let room = MAX_LOG_BYTES - self.bytes;
        if bytes.len() > room {
            bytes = &bytes[..room];
            self.cut = true;
        }
        self.bytes += bytes.len();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            // A line is held up to `HELD` bytes; what is past that is
            // dropped (never joined to a later piece of the same line).
            let room = HELD.saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&piece[..room.min(piece.len())]);
            if piece.ends_with(b"\n") {
                let whole = std::mem::take(&mut self.partial);
                self.line(&whole);
            }
        }
    }

    /// One whole line (at most `4 × MAX_LINE` bytes of it), kept as it
    /// came: it is cleaned and redacted whole, before it is cut, and only
    /// if it is shown.
    fn line(&mut self, raw: &[u8]) {
        self.lines += 1;
        let n = self.lines;
        let text = String::from_utf8_lossy(raw).into_owned();
        match self.first_error {
            None if looks_like_error(&text) => {
                self.first_error = Some(n);
                self.around_error = self.recent.drain(..).collect();
                self.around_error.push((n, text.clone()));
            }
            None => {
                self.recent.push_back((n, text.clone()));
                if self.recent.len() > BEFORE_ERROR {
                    self.recent.pop_front();
                }
            }
            Some(first) if n < first + FROM_ERROR => self.around_error.push((n, text.clone())),
            Some(_) => {}
        }
        self.tail.push_back((n, text));
        if self.tail.len() > TAIL_LINES {
            self.tail.pop_front();
        }
    }

    /// The excerpt: the lines around the first error, then the last lines,
    /// numbered, redacted, at most [`MAX_EXCERPT_CHARS`].
    pub fn finish(mut self, redactor: &Redactor) -> Excerpt {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest);
        }
        let mut kept: Vec<(usize, String)> = self.around_error;
        for (_, line) in kept.iter_mut().chain(self.tail.iter_mut()) {
            *line = clean(line, redactor);
        }
        let after = kept.last().map_or(0, |(n, _)| *n);
        kept.extend(self.tail.into_iter().filter(|(n, _)| *n > after));
        let mut text = String::new();
        let mut last = 0;
        for (n, line) in &kept {
            if *n > last + 1 {
                text.push_str(&format!("[… {} lines left out …]\n", n - last - 1));
            }
            text.push_str(&format!("{n:>6} | {line}\n"));
            last = *n;
        }
        if self.cut {
            text.push_str(&format!(
                "[… the log is longer than {} MB and was read no further …]\n",
                MAX_LOG_BYTES / (1024 * 1024)
            ));
        }
        let text = redactor.redact(&text).into_owned();
        Excerpt {
            text: fit_chars(&text, MAX_EXCERPT_CHARS),
            lines: self.lines,
            first_error: self.first_error,
            cut: self.cut,
        }
    }
}

/// `text`, if longer than `max` characters, cut in the middle, where the
/// least is lost: the first error's lines and the last lines are the ends.
fn fit_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max / 2).collect();
    let tail: String = text.chars().skip(count - max / 2).collect();
    format!("{head}\n[… cut to fit …]\n{tail}")
}

/// A log line without its Actions timestamp, colour codes and line end,
/// redacted whole and then cut at [`MAX_LINE`] characters. A line that is
/// nothing but a long run of base64 (a key's body whose first line was
/// left out, a certificate), or that holds a private key's marker at all
/// (a key printed on one line with `\n` escapes, cut where the line is),
/// is not kept: the redactor recognises a key by its markers.
fn clean(line: &str, redactor: &Redactor) -> String {
    static STAMP: OnceLock<Regex> = OnceLock::new();
    static ANSI: OnceLock<Regex> = OnceLock::new();
    static BLOB: OnceLock<Regex> = OnceLock::new();
    let stamp = STAMP.get_or_init(|| {
        Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ").expect("valid regex")
    });
    let ansi = ANSI.get_or_init(|| Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("valid regex"));
    let blob =
        BLOB.get_or_init(|| Regex::new(r"^\s*[A-Za-z0-9+/=_-]{32,}\s*$").expect("valid regex"));
    let line = line
        .trim_end_matches(['\n', '\r'])
        .trim_start_matches('\u{feff}');
    let line = stamp.replace(line, "");
    let line = ansi.replace_all(&line, "");
    // NULs go (UTF-16 output would otherwise read `g h p _` to the model,
    // past the redactor); other control characters become spaces.
    let line: String = line
        .chars()
        .filter(|c| *c != '\0')
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    if (blob.is_match(&line) && line.bytes().any(|b| b.is_ascii_digit()))
        || line.to_ascii_uppercase().contains("PRIVATE KEY")
    {
        return crate::redact::REDACTED.to_string();
    }
    let line = redactor.redact(&line).into_owned();
    if line.chars().count() > MAX_LINE {
        let cut: String = line.chars().take(MAX_LINE).collect();
        return format!("{cut} [… line cut …]");
    }
    line
}

/// Whether a line reads like the first sign of a failure.
fn looks_like_error(line: &str) -> bool {
    if line.starts_with("##[error]") {
        return true;
    }
    let lower = line.to_ascii_lowercase();
    [
        "error:",
        "error[",
        "error ",
        "failed",
        "failure",
        "panicked at",
        "traceback (most recent call last)",
        "exception",
        "npm err!",
        "fatal:",
    ]
    .iter()
    .any(|w| lower.contains(w))
        && !lower.contains("0 failed")
        && !lower.contains("0 errors")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excerpt(log: &str, chunk: usize) -> Excerpt {
        let mut tail = LogTail::new();
        for piece in log.as_bytes().chunks(chunk) {
            tail.push(piece);
        }
        tail.finish(&Redactor::new(Vec::<String>::new()))
    }

    #[test]
    fn keeps_the_lines_around_the_first_error_and_the_last_ones() {
        let mut log = String::new();
        for i in 1..=1000 {
            let line = match i {
                400 => "error[E0308]: mismatched types".to_string(),
                700 => "error: second one".to_string(),
                _ => format!("step output {i}"),
            };
            log.push_str(&format!("2026-12-03T10:00:00.1234567Z {line}\n"));
        }
        for chunk in [1, 7, 4096] {
            let e = excerpt(&log, chunk);
            assert_eq!(e.lines, 1000);
            assert_eq!(e.first_error, Some(400));
            assert!(
                e.text.contains("   400 | error[E0308]: mismatched types"),
                "{}",
                e.text
            );
            assert!(e.text.contains("   385 | step output 385"));
            assert!(!e.text.contains("step output 384\n"));
            assert!(e.text.contains("   444 | step output 444"));
            assert!(!e.text.contains("| step output 445\n"));
            assert!(e.text.contains("[… 476 lines left out …]"), "{}", e.text);
            assert!(e.text.contains("  1000 | step output 1000"));
            assert!(!e.text.contains("2026-12-03T"), "timestamps are stripped");
        }
    }

    #[test]
    fn secrets_in_the_log_are_redacted_even_a_key_body_without_its_header() {
        let key_line = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw";
        let utf16: String = "token ghp_abcdefghijklmnopqrstuvwxyz0123456789"
            .chars()
            .flat_map(|c| [c, '\0'])
            .collect();
        let log = format!(
            "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n{key_line}\ncurl -H 'Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n{utf16}\nError: boom\n"
        );
        let e = excerpt(&log, 5);
        assert!(!e.text.contains("AKIAIOSFODNN7EXAMPLE"), "{}", e.text);
        assert!(!e.text.contains(key_line), "{}", e.text);
        assert!(!e.text.contains("ghp_abc"), "{}", e.text);
        assert!(
            !e.text.contains("g h p") && !e.text.contains("a b c d"),
            "{}",
            e.text
        );
        assert!(e.text.contains("Error: boom"));
    }

    #[test]
    fn a_key_printed_on_one_long_line_is_not_shown_in_part() {
        let body: String = (0..40)
            .map(|i| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:02}x"))
            .collect::<Vec<_>>()
            .join("\\n");
        let line = format!(
            "{}{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\"}}",
            " ".repeat(200)
        );
        assert!(line.len() > MAX_LINE * 2);
        let e = excerpt(&format!("{line}\nerror: failed\n"), 100);
        assert!(
            !e.text
                .contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC"),
            "{}",
            e.text
        );
        // The redactor alone, on such a line cut short, takes the body too.
        let cut: String = line.chars().take(1_000).collect();
        let redacted = Redactor::new(Vec::<String>::new())
            .redact(&cut)
            .into_owned();
        assert!(!redacted.contains("gSjAgEAAoIBAQC05"), "{redacted}");
    }

    #[test]
    fn a_huge_line_or_log_stays_bounded() {
        let long = "x".repeat(50_000);
        let e = excerpt(&format!("{long}\nerror: at the end\n"), 1000);
        assert!(e.text.contains("[… line cut …]"));
        assert!(e.text.chars().count() <= MAX_EXCERPT_CHARS + 40);
        let mut tail = LogTail::new();
        let block = vec![b'y'; 1024 * 1024];
        while tail.wants_more() {
            tail.push(&block);
        }
        assert!(tail.partial.len() <= HELD);
        let e = tail.finish(&Redactor::new(Vec::<String>::new()));
        assert!(e.cut);
    }

    #[test]
    fn colour_codes_and_control_characters_are_removed() {
        let e = excerpt("\u{1b}[31mFAILED\u{1b}[0m tests::it\u{7}\n", 3);
        assert!(e.text.contains("| FAILED tests::it \n"), "{}", e.text);
        assert!(!e.text.contains('\u{1b}'));
    }
}
