//! Text made inert for the Markdown GitHub renders: what people or the
//! model wrote, shown in what the bot posts without being able to reach
//! outside itself (open a block, end a code span, mention someone, hide
//! characters).

/// Characters that change how text around them reads without showing
/// themselves: control characters (a newline would start a new list item),
/// bidirectional overrides and isolates (they reorder what is shown),
/// zero-width characters, and line or paragraph separators.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

/// `text` on one line, every hidden character written out as `\u{…}`
/// (and `\` as `\\`, so that the two cannot be confused).
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if hidden(c) {
            out.push_str(&written_out(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as inline code that nothing inside can end: on one line, between
/// runs of backticks longer than any run inside it, padded with a space
/// where it starts or ends with a backtick or a space (Markdown strips one
/// space on each side).
pub fn inline_code(text: &str) -> String {
    let text = visible(text);
    if text.is_empty() {
        return "` `".to_string();
    }
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A hidden character as readers see it instead: `\u{202E}`.
pub fn written_out(c: char) -> String {
    format!("\\u{{{:X}}}", c as u32)
}

/// `text` as plain Markdown text: HTML and entities inert, every character
/// that opens inline Markdown escaped, and no line able to open a block
/// (heading, list, quote, code, table, HTML, math, setext underline), so
/// that it cannot reach anything outside itself. Hidden characters are
/// written out; lines keep their breaks.
pub fn escape_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Indentation would make a code block, or carry on a list item.
        let line = line.trim_start();
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let mut previous: Option<char> = None;
        for (at, c) in line.char_indices() {
            // GitHub counts only ASCII as a word before a mention.
            let after_word = previous.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_');
            let after_www = line[..at].to_ascii_lowercase().ends_with("www");
            previous = Some(c);
            match c {
                // `scheme://` and `www.` would be linked by GitHub's
                // autolinks: as entities they read the same and link
                // nothing.
                ':' if line[at..].starts_with("://") => out.push_str("&#58;"),
                '.' if after_www => out.push_str("&#46;"),
                // A mention notifies people in the text's words: the `@`
                // alone in code is no mention (an address keeps its `@`).
                '@' if !after_word => out.push_str("`@`"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '\\' | '`' | '*' | '_' | '[' | ']' | '!' | '|' | '~' | '$' | '#' | '{' | '}' => {
                    out.push('\\');
                    out.push(c);
                }
                // A list item, a setext underline or a thematic break.
                '-' | '+' | '=' | ':' if at == 0 => {
                    out.push('\\');
                    out.push(c);
                }
                // An ordered list item: `1.` or `1)`.
                '.' | ')' if at == digits && digits > 0 => {
                    out.push('\\');
                    out.push(c);
                }
                c if c != '\t' && hidden(c) => out.push_str(&written_out(c)),
                c => out.push(c),
            }
        }
    }
    out
}

/// `text` on one line as plain Markdown text (see [`escape_text`]).
pub fn escape_line(text: &str) -> String {
    escape_text(&text.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_autolink_and_no_mention_after_a_letter_github_does_not_count() {
        let text = escape_text("see https://evil.example and WWW.evil.example, ping é@victim");
        assert!(
            !text.contains("://") && !text.contains("WWW.evil"),
            "{text}"
        );
        assert!(text.contains("https&#58;//evil.example"), "{text}");
        assert!(text.contains("é`@`victim"), "{text}");
        assert_eq!(escape_text("bob@example.com"), "bob@example.com");
    }
}
