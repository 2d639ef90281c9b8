//! Exponential backoff with "equal jitter" (half fixed, half random), so the
//! retries of a burst spread out. Shared by the worker (job retries) and the
//! GitHub client (inline retries).

use std::time::Duration;

use rand::Rng;

/// The pause before retry number `attempt` (1-based): `base` doubled per
/// attempt, capped at `cap`, then between half of that and all of it.
pub fn equal_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = attempt.clamp(1, 20) - 1;
    let full = base.saturating_mul(2u32.saturating_pow(exp)).min(cap);
    let half = full / 2;
    half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
}
