//! Markdown reduced to the prose a reader sees, line by line.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The text lines of `body` outside code blocks, block quotes and HTML;
/// inline code is kept in backticks. Soft and hard breaks end a line; blocks end a line.
pub fn prose_lines(body: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    // How deep we are inside something whose text is not prose.
    let mut hidden = 0usize;
    let newline = |lines: &mut Vec<String>| {
        if !lines.last().is_some_and(|l| l.is_empty()) {
            lines.push(String::new());
        }
    };
    for event in Parser::new_ext(body, Options::empty()) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::HtmlBlock) => hidden += 1,
            Event::End(TagEnd::CodeBlock | TagEnd::BlockQuote(_) | TagEnd::HtmlBlock) => {
                hidden = hidden.saturating_sub(1);
                newline(&mut lines);
            }
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item) => {
                newline(&mut lines);
                // A blank line between blocks, as the reader sees it.
                lines.push(String::new());
            }
            Event::SoftBreak | Event::HardBreak if hidden == 0 => newline(&mut lines),
            Event::Text(t) if hidden == 0 => {
                if let Some(last) = lines.last_mut() {
                    last.push_str(&t);
                }
            }
            // Inline code stays, in backticks, so a question keeps its
            // meaning while a line that starts with code is no command.
            Event::Code(t) if hidden == 0 => {
                if let Some(last) = lines.last_mut() {
                    last.push('`');
                    last.push_str(&t);
                    last.push('`');
                }
            }
            // Inline HTML (comments included) and everything inside hidden
            // blocks carry no commands.
            _ => {}
        }
    }
    lines
}
