//! A signal for the test suite, only with the `test-hooks` feature (never
//! in a release build): a counter bumped whenever SQLite's one write
//! connection is given back (what it wrote has committed), so a test
//! waiting for a state can look again exactly when something may have
//! changed instead of polling on a timer. The test fakes (GitHub, the model) bump it after each
//! request they record.

use std::sync::OnceLock;

use tokio::sync::watch;

fn counter() -> &'static watch::Sender<u64> {
    static COUNTER: OnceLock<watch::Sender<u64>> = OnceLock::new();
    COUNTER.get_or_init(|| watch::channel(0).0)
}

/// Something a test may be waiting for may have changed.
pub fn changed() {
    counter().send_modify(|n| *n = n.wrapping_add(1));
}

/// A receiver that sees every [`changed`] after this call.
pub fn subscribe() -> watch::Receiver<u64> {
    counter().subscribe()
}
