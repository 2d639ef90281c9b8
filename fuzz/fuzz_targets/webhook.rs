//! Webhook intake, on any body for each event name it handles: it never
//! panics (the first byte picks the event; the rest is the body).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let events = agentic::event::HANDLED_EVENTS;
    let event = events[*first as usize % events.len()];
    let _ = agentic::intake::prepare(event, "fuzz", body);
});
