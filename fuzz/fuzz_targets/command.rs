//! The `/agentic` command parser, on any comment: it never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &str| {
    let _ = agentic::command::parse_comment(body);
    let _ = agentic::command::prose_text(body);
    let _ = agentic::command::PlanRef::parse(body);
});
