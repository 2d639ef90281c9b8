//! The fence around untrusted text: nothing inside can close it (its tag
//! appears only where it opens and closes), and it changes no byte of text
//! that holds no chat-template token.
#![no_main]
use libfuzzer_sys::fuzz_target;

const TOKENS: &[&str] = &[
    "<start_of_turn>",
    "<end_of_turn>",
    "[INST]",
    "[/INST]",
    "<s>",
    "</s>",
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
];

fuzz_target!(|text: &str| {
    let fence = agentic::agent::tools::Fence::new();
    let tag = fence.tag();
    let wrapped = fence.wrap("fuzzed text", text);
    let open = format!("<{tag} source=\"fuzzed text\">\n");
    let close = format!("\n</{tag}>");
    assert!(wrapped.starts_with(&open) && wrapped.ends_with(&close));
    assert_eq!(wrapped.matches(&tag).count(), 2, "{wrapped:?}");
    static TEMPLATED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let templated =
        TEMPLATED.get_or_init(|| regex::Regex::new(r"<[|｜][^\s|｜<>]{1,64}[|｜]>").unwrap());
    let short = text.len() <= agentic::agent::tools::MAX_PIECE;
    if short && !TOKENS.iter().any(|t| text.contains(t)) && !templated.is_match(text) {
        assert_eq!(&wrapped[open.len()..wrapped.len() - close.len()], text);
    }
});
