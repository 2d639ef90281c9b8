//! The GitHub App manifest (`app-manifest.yml`), as JSON for the
//! registration flow.

use anyhow::Context;

/// The manifest as written, with its comments.
pub const MANIFEST_YAML: &str = include_str!("../app-manifest.yml");

/// The manifest as GitHub's manifest flow expects it, with every URL
/// pointing at `public_url` (no trailing slash).
pub fn manifest_json(public_url: &str) -> anyhow::Result<serde_json::Value> {
    let mut value: serde_json::Value =
        serde_norway::from_str(MANIFEST_YAML).context("app-manifest.yml does not parse")?;
    substitute(&mut value, public_url.trim_end_matches('/'));
    Ok(value)
}

fn substitute(value: &mut serde_json::Value, public_url: &str) {
    match value {
        serde_json::Value::String(s) if s.contains("${PUBLIC_URL}") => {
            *s = s.replace("${PUBLIC_URL}", public_url);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, public_url)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| substitute(v, public_url)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_this_service_and_events_match_the_handled_ones() {
        let m = manifest_json("https://bot.example.com/").unwrap();
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://bot.example.com/api/github/webhooks"
        );
        assert_eq!(m["redirect_url"], "https://bot.example.com/setup/callback");
        assert_eq!(m["default_permissions"]["contents"], "read");
        let events: Vec<&str> = m["default_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        for e in &events {
            assert!(
                crate::event::HANDLED_EVENTS.contains(e),
                "{e} is subscribed but not handled"
            );
        }
        assert!(!m.to_string().contains("${"));
    }
}
