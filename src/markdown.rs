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
            | '\u{E0000}'..='\u{E007F}'
            // Fillers that show nothing, and variation selectors.
            | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}')
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
        escape_into(&mut out, line, true, None, false);
    }
    out
}

/// Escape one line, or one piece of a line (`line_start: false`; then its
/// leading space is kept and `previous` is the character before it).
/// `strict`: every `@` is made inert, even one after a word (an address).
fn escape_into(
    out: &mut String,
    line: &str,
    line_start: bool,
    previous: Option<char>,
    strict: bool,
) {
    // Indentation would make a code block, or carry on a list item.
    let line = if line_start { line.trim_start() } else { line };
    let digits = if line_start {
        line.bytes().take_while(u8::is_ascii_digit).count()
    } else {
        usize::MAX
    };
    let mut previous = previous;
    for (at, c) in line.char_indices() {
        // GitHub counts only ASCII as a word before a mention.
        let after_word = previous.is_some_and(|p| p.is_ascii_alphanumeric() || p == '_');
        let after_www = at >= 3 && line.as_bytes()[at - 3..at].eq_ignore_ascii_case(b"www");
        previous = Some(c);
        match c {
            // `scheme://` and `www.` would be linked by GitHub's
            // autolinks: as entities they read the same and link
            // nothing.
            ':' if line[at..].starts_with("://") => out.push_str("&#58;"),
            '.' if after_www => out.push_str("&#46;"),
            // A mention notifies people in the text's words: the `@`
            // alone in code is no mention (an address keeps its `@`).
            '@' if strict || !after_word => out.push_str("`@`"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '!' | '|' | '~' | '$' | '#' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            // A list item, a setext underline or a thematic break.
            '-' | '+' | '=' | ':' if at == 0 && line_start => {
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

/// What a model wrote from other people's text (a CI log, say), shown
/// so that nothing in it can reach outside itself, yet readable: its code
/// blocks are code blocks again (fenced anew, longer than any run of
/// backticks inside, without an info string), its code spans are code
/// spans again (`inline_code`), or what `link` makes of one (the only
/// links); everything else is plain text as [`escape_text`] makes it, and
/// every `@` is inert. Bold markers are dropped rather than shown.
pub fn inert_prose(text: &str, link: &dyn Fn(&str) -> Option<String>) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some((c, n)) = fence_opening(lines[i]) {
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !fence_closing(lines[i], c, n) {
                body.push(lines[i]);
                i += 1;
            }
            i += 1;
            out.push(code_block(&body.join("\n")));
            continue;
        }
        out.push(prose(lines[i], link));
        i += 1;
    }
    out.join("\n")
}

/// A model's Markdown as written, but with no mention in it: every `@`
/// that could start one (not after an ASCII letter or digit, so an address
/// such as `bob@example.com` stays), and every entity that spells one, is
/// written as the full-width `＠`, which reads the same and notifies
/// nobody. It is done everywhere, code included: deciding what GitHub
/// takes for code (fences in lists, quotes and HTML blocks, escaped or
/// multi-line code spans) is where a narrower rule leaks.
/// For answers, findings and summaries the model writes after reading
/// other people's text, where keeping its formatting matters more than in
/// [`inert_prose`].
pub fn without_mentions(text: &str) -> String {
    static ENTITY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let entity = ENTITY
        .get_or_init(|| regex::Regex::new(r"(?i)&(?:#0*64|#x0*40|commat);?").expect("valid regex"));
    let text = entity.replace_all(text, "＠");
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c == '@' && !previous.is_some_and(|p| p.is_ascii_alphanumeric()) {
            out.push('＠');
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// A line that opens a fenced code block, as CommonMark reads one: at most
/// three spaces, then three or more backticks or tildes.
fn fence_opening(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = rest.chars().take_while(|x| *x == c).count();
    (indent <= 3 && n >= 3 && !(c == '`' && rest[n..].contains('`'))).then_some((c, n))
}

/// A line that closes the block `fence_opening` opened with `n` of `c`.
fn fence_closing(line: &str, c: char, n: usize) -> bool {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    let run = rest.chars().take_while(|x| *x == c).count();
    indent <= 3 && run >= n && rest[run..].chars().all(|x| x == ' ' || x == '\t')
}

/// `code` as a fenced block nothing inside can close, hidden characters
/// written out.
fn code_block(code: &str) -> String {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}\n{}\n{fence}", written_hidden(code))
}

/// One line of prose: code spans rebuilt, the rest escaped.
fn prose(line: &str, link: &dyn Fn(&str) -> Option<String>) -> String {
    let line = line.replace("**", "").replace("__", "");
    let mut out = String::new();
    let mut rest = line.as_str();
    let mut line_start = true;
    let mut previous: Option<char> = None;
    loop {
        let Some((start, content, end)) = code_span(rest) else {
            let mut piece = String::new();
            escape_into(&mut piece, rest, line_start, previous, true);
            join(&mut out, &piece);
            return out;
        };
        let mut piece = String::new();
        escape_into(&mut piece, &rest[..start], line_start, previous, true);
        join(&mut out, &piece);
        let code = link(content).unwrap_or_else(|| inline_code(content));
        join(&mut out, &code);
        previous = Some('`');
        line_start = false;
        rest = &rest[end..];
    }
}

/// The first code span in `text`: where it starts, its content, and where
/// it ends (a run of backticks closed by the next run of the same length).
fn code_span(text: &str) -> Option<(usize, &str, usize)> {
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'`' {
                let n = bytes[i..].iter().take_while(|b| **b == b'`').count();
                runs.push((i, n));
                i += n;
            } else {
                i += 1;
            }
        }
        runs
    };
    for (k, (at, n)) in runs.iter().enumerate() {
        if let Some((close, _)) = runs[k + 1..].iter().find(|(_, m)| m == n) {
            return Some((*at, &text[at + n..*close], close + n));
        }
    }
    None
}

/// Put `piece` after `out`, a space between them where two runs of
/// backticks would otherwise touch and read as one.
fn join(out: &mut String, piece: &str) {
    if out.ends_with('`') && piece.starts_with('`') {
        out.push(' ');
    }
    out.push_str(piece);
}

/// `text` with every hidden character written out.
fn written_hidden(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c != '\t' && c != '\n' && hidden(c) {
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

    /// Every link, image, raw HTML and mention GitHub would make of `md`
    /// (GitHub-flavoured, as pulldown-cmark reads it).
    fn reaching(md: &str) -> Vec<String> {
        use pulldown_cmark::{Event, Options, Parser, Tag};
        let mut found = Vec::new();
        let mut in_code = 0;
        for event in Parser::new_ext(md, Options::all()) {
            match event {
                Event::Start(Tag::Link { dest_url, .. }) => found.push(format!("link {dest_url}")),
                Event::Start(Tag::Image { dest_url, .. }) => {
                    found.push(format!("image {dest_url}"))
                }
                Event::Start(Tag::Heading { .. }) => found.push("heading".into()),
                Event::Start(Tag::BlockQuote(_)) => found.push("quote".into()),
                Event::Start(Tag::Table(_)) => found.push("table".into()),
                Event::Html(h) | Event::InlineHtml(h) => found.push(format!("html {h}")),
                Event::Start(Tag::CodeBlock(_)) => in_code += 1,
                Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_code -= 1,
                Event::Text(t) if in_code == 0 => {
                    let t = t.to_string();
                    let bytes = t.as_bytes();
                    for (i, _) in t.match_indices('@') {
                        let before = i.checked_sub(1).map(|j| bytes[j]);
                        let word = before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                        if !word && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric()) {
                            found.push(format!("mention in {t:?}"));
                        }
                    }
                    for autolink in ["://", "www."] {
                        if t.to_ascii_lowercase().contains(autolink) {
                            found.push(format!("autolink in {t:?}"));
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }

    fn no_link(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn prose_keeps_code_and_nothing_that_reaches_out() {
        let attacks = [
            "- @acme/everyone and 1. @bob",
            "`a`@victim and `a` @victim",
            "see _@victim_ and __@victim__ and *@victim*",
            "```\n    ```\n```\n<img src=https://evil/p.png> @victim [x](https://evil)\n```",
            "```\n\t```\n<img src=x> @v\n```",
            "~~~\n```\n~~~\n<img src=x> @v",
            "``@``<img src=https://evil/p.png> @victim``",
            "@`x` and @@victim and x@evil.com",
            "`src/a.rs:1`` <img src=https://evil/p.png> @victim ``",
            "[fix](https://evil.example/x.sh) ![p](https://evil.example/p.png) WWW.evil.example HTTPS://evil",
            "### ✅ passed\n> quoted\n| a | b |\n|---|---|\n<details>x</details> &amp; <!-- agentic:x -->",
            "```mermaid\ngraph TD; A-->B\n```",
            " \u{A0}\u{A0}\u{A0}x and \u{3000}\u{3000}y",
            "right\u{202E}left `code\u{202E}` done",
        ];
        // The check itself sees what GitHub would make of them raw.
        for attack in attacks.iter().take(4) {
            assert!(!reaching(attack).is_empty(), "{attack}");
        }
        for attack in attacks {
            let out = inert_prose(attack, &no_link);
            assert!(
                reaching(&out).is_empty(),
                "{attack:?} became {out:?}: {:?}",
                reaching(&out)
            );
            assert!(!out.contains('\u{202E}'), "{out}");
            assert!(!out.contains("mermaid"), "no info string: {out}");
        }
    }

    #[test]
    fn a_models_markdown_keeps_its_form_and_loses_its_mentions() {
        let text = "**Why**: see `@keep` and\n- @acme/everyone, `a`@victim, _@x_ and bob@example.com\n```\n@in-code\n```\n@after";
        let out = without_mentions(text);
        assert!(
            out.starts_with("**Why**: see `＠keep` and\n- ＠acme/everyone"),
            "{out}"
        );
        assert!(out.contains("```\n＠in-code\n```"), "{out}");
        assert!(out.contains("bob@example.com"), "{out}");
        assert!(!reaching(text).is_empty(), "the check sees them raw");
        // What a second red-team read found past a code-aware first try:
        // fences that a prefix, a list, an HTML block or CR line ends
        // make no code for GitHub; a backslash-escaped backtick opens no
        // span; a span may run across lines; an entity spells an `@`.
        for attack in [
            "**High:** ```\n@victim",
            "- a\n  ```\n@victim",
            "x\n<div>`@victim`</div>",
            "<details>\n```\n\n@victim",
            "\\`@victim`",
            "<b title=\"`\">@victim`",
            "x `\n`@victim`",
            "```\r\nx\r\n```\r\n@victim",
            "&#64;victim &#x40;victim &commat;victim &#0064;victim",
        ] {
            let out = without_mentions(attack);
            assert!(
                !out.contains('@') && !out.to_ascii_lowercase().contains("&#"),
                "{attack:?} became {out:?}"
            );
            assert!(!out.to_ascii_lowercase().contains("&commat"), "{out:?}");
        }
    }

    #[test]
    fn prose_keeps_code_readable_and_links_only_what_link_makes() {
        let link = |code: &str| {
            (code == "src/a.rs:1")
                .then(|| "[`src/a.rs:1`](https://github.com/o/r/blob/s/src/a.rs#L1)".to_string())
        };
        let out = inert_prose("**Cause**: `src/a.rs:1` calls `f()`.\n```rust\nlet x = \"@bob <b>\";\n```\n```\nnever closed", &link);
        assert_eq!(
            out,
            "Cause: [`src/a.rs:1`](https://github.com/o/r/blob/s/src/a.rs#L1) calls `f()`.\n```\nlet x = \"@bob <b>\";\n```\n```\nnever closed\n```"
        );
        assert_eq!(
            reaching(&out),
            vec!["link https://github.com/o/r/blob/s/src/a.rs#L1".to_string()]
        );
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
