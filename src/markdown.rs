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

/// What a model wrote from other people's text (a CI log, say), kept
/// readable but unable to reach outside itself: code blocks and code spans
/// stay as written, and so do emphasis and list items; everything that
/// could notify, link, embed, reference, or change the comment's structure
/// is made inert as [`escape_text`] does (mentions, links and images,
/// autolinks, `#123` references, HTML and entities, headings, quotes,
/// tables, setext underlines, math). Hidden characters are written out,
/// in code too. A code block left open is closed.
pub fn inert_prose(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    // The open code block's fence: its character and length.
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let run = |c: char| trimmed.chars().take_while(|x| *x == c).count();
        if let Some((c, n)) = fence {
            out.push_str(&written_hidden(line));
            if run(c) >= n && trimmed.trim_end().chars().all(|x| x == c) {
                fence = None;
            }
            continue;
        }
        let opens = ['`', '~'].into_iter().find(|c| run(*c) >= 3);
        if let (Some(c), true) = (opens, indent <= 3) {
            let n = run(c);
            // The info string names a language, nothing else.
            let info: String = trimmed[n..]
                .chars()
                .filter(|x| x.is_ascii_alphanumeric() || matches!(x, '+' | '-' | '_' | '.'))
                .take(20)
                .collect();
            out.push_str(&format!("{}{info}", c.to_string().repeat(n)));
            fence = Some((c, n));
            continue;
        }
        out.push_str(&prose_line(line));
    }
    if let Some((c, n)) = fence {
        out.push('\n');
        out.push_str(&c.to_string().repeat(n));
    }
    out
}

/// One line of prose for [`inert_prose`]: its list marker kept, its code
/// spans as written, the rest escaped.
fn prose_line(line: &str) -> String {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    // A bullet (`- `, `* `, `+ `) or a numbered item (`1. `) stays one.
    let marker_len = if body.starts_with(['-', '*', '+']) && body[1..].starts_with(' ') {
        2
    } else {
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        if (1..=3).contains(&digits) && body[digits..].starts_with(". ") {
            digits + 2
        } else {
            0
        }
    };
    let (marker, rest) = body.split_at(marker_len);
    let mut out = format!("{}{marker}", &indent[..indent.len().min(6)]);
    // Only the piece a line starts with can open a block.
    let mut at_start = marker.is_empty();
    // Code spans: a run of backticks up to the next run of the same length.
    let mut pending = rest;
    while let Some(start) = pending.find('`') {
        let ticks = pending[start..].chars().take_while(|c| *c == '`').count();
        let after = &pending[start + ticks..];
        let close = (0..after.len())
            .filter(|i| after.is_char_boundary(*i))
            .find(|i| {
                after[*i..].starts_with(&"`".repeat(ticks))
                    && !after[*i + ticks..].starts_with('`')
                    && (*i == 0 || !after[..*i].ends_with('`'))
            });
        let Some(close) = close else { break };
        out.push_str(&escape_emphasised(&pending[..start], at_start));
        out.push_str(&written_hidden(
            &pending[start..start + ticks + close + ticks],
        ));
        at_start = false;
        pending = &after[close + ticks..];
    }
    out.push_str(&escape_emphasised(pending, at_start));
    out
}

/// [`escape_text`] of one piece of a line, but with `*` and `_` left to
/// mean emphasis; `at_start`: the piece begins the line.
fn escape_emphasised(piece: &str, at_start: bool) -> String {
    if piece.is_empty() {
        return String::new();
    }
    // A lone piece must not open a block where it starts the line: escape
    // it with something before it, then take that away again.
    let escaped = if at_start {
        escape_text(piece)
    } else {
        let e = escape_text(&format!("x{piece}"));
        e[1..].to_string()
    };
    escaped.replace("\\*", "*").replace("\\_", "_")
}

/// `text` with every hidden character written out.
fn written_hidden(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c != '\t' && hidden(c) {
                written_out(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` on one line as plain Markdown text (see [`escape_text`]).
pub fn escape_line(text: &str) -> String {
    escape_text(&text.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_keeps_emphasis_lists_and_code_and_nothing_that_reaches_out() {
        let model = "**Likely cause**: the `var.subnet_b` input.\n\
            1. Declare it in `variables.tf`.\n\
            - see _this_ @acme/everyone and @bob, #12 and acme/other#3\n\
            ### ✅ All checks passed\n\
            > quoted\n\
            [fix](https://evil.example/x.sh) ![p](https://evil.example/p.png) www.evil.example\n\
            <details><summary>x</summary></details> &amp; <!-- agentic:sticky=walkthrough -->\n\
            | a | b |\n\
            ---\n\
            right\u{202E}left `code @bob <b>` done\n\
            ```rust\n\
            let x = \"@bob <b>\";\n\
            ```\n\
            ```\n\
            never closed";
        let out = inert_prose(model);
        assert!(out.starts_with("**Likely cause**: the `var.subnet_b` input.\n1. Declare it in `variables.tf`.\n- see _this_ "), "{out}");
        for reaching in [
            "@acme", "and @bob", " #12", "r#3", "### ", "\n>", "[fix](", "![", "https://",
            "www.evil", "<details", "<!--", "\n| a", "\n---", "\u{202E}",
        ] {
            assert!(!out.contains(reaching), "{reaching:?} in {out}");
        }
        assert!(
            out.contains("`code @bob <b>`"),
            "code spans stay as written: {out}"
        );
        assert!(out.contains("```rust\nlet x = \"@bob <b>\";\n```"), "{out}");
        assert!(
            out.ends_with("never closed\n```"),
            "an open block is closed: {out}"
        );
        assert!(out.contains("\\u{202E}"));
    }

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
