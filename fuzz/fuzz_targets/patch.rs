//! The unified-diff parser, on any patch: it never panics, and what it
//! parses answers every question about its lines without panicking.
#![no_main]
use agentic::diff::{Patch, Side};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|patch: &str| {
    if let Ok(p) = Patch::parse(patch) {
        let _ = p.numbered();
        let _ = p.counts();
        for side in [Side::Left, Side::Right] {
            for (n, _) in p.lines_on(side) {
                let _ = p.text_at(side, n);
                let _ = p.can_comment(side, Some(n.saturating_sub(2)), n);
            }
        }
    }
    let _ = agentic::diff::split_git_diff(patch);
});
