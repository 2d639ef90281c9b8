//! The fence around untrusted text: nothing inside can close it (its tag
//! appears only where it opens and closes), and it changes no byte of text
//! that holds no chat-template token.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let fence = agentic::agent::tools::Fence::new();
    let tag = fence.tag();
    let wrapped = fence.wrap("fuzzed text", text);
    let open = format!("<{tag} source=\"fuzzed text\">\n");
    let close = format!("\n</{tag}>");
    assert!(wrapped.starts_with(&open) && wrapped.ends_with(&close));
    assert_eq!(wrapped.matches(&tag).count(), 2, "{wrapped:?}");
    let short = text.len() <= agentic::agent::tools::MAX_PIECE;
    if short && !agentic::agent::tools::holds_chat_token(text) {
        assert_eq!(&wrapped[open.len()..wrapped.len() - close.len()], text);
    }
});
