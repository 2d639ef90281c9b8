//! How long GitHub asks us to wait: `retry-after`, the rate-limit reset,
//! or GitHub's advice for a secondary limit, capped. Shared by the App's
//! own authentication and the installation client.

use std::time::Duration;

/// When a secondary rate limit says nothing of how long to wait, GitHub
/// advises at least a minute.
pub const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The longest wait a `retry-after` or rate-limit reset is taken at its
/// word for: GitHub's limits reset within the hour, and a larger (or absurd)
/// value must not overflow a timestamp or park a job for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `retry-after`, else the rate-limit reset time, else (for a bare 403/429
/// secondary limit) a minute. `None` when the answer is no rate limit.
pub fn retry_after_of(headers: &http::HeaderMap, status: u16) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let asked = if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(Duration::from_secs(secs))
    } else if header("x-ratelimit-remaining") == Some("0") {
        header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|reset| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                Duration::from_secs(reset.saturating_sub(now).max(1))
            })
    } else if status == 429 {
        Some(SECONDARY_LIMIT_WAIT)
    } else {
        None
    };
    asked.map(|d| d.min(MAX_RETRY_AFTER))
}
