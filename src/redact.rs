//! The one redactor: everything posted to GitHub, sent to the model as our
//! own text, written to the audit log or to the logs passes through it.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use regex::Regex;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Configured secrets shorter than this are not searched for: a webhook
/// secret like `abc` would otherwise blank out every `abc` in a review.
const MIN_LITERAL_SECRET: usize = 8;

struct Patterns {
    /// PEM private keys, whole blocks.
    pem: Regex,
    /// GitHub tokens of every prefix (classic, OAuth, user-to-server,
    /// installation, refresh) and fine-grained PATs.
    github: Regex,
    /// AWS access key ids (long-term and temporary).
    aws_key_id: Regex,
    /// A value assigned to something named like an AWS secret key.
    aws_secret_assigned: Regex,
    /// A bare 40-character string of the AWS secret-key alphabet.
    aws_secret_bare: Regex,
    /// `Authorization: Bearer …` and the like.
    bearer: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        pem: Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)")
            .expect("valid regex"),
        github: Regex::new(r"\b(gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b")
            .expect("valid regex"),
        aws_key_id: Regex::new(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{16}\b")
            .expect("valid regex"),
        aws_secret_assigned: Regex::new(
            r#"(?i)(secret_?access_?key|aws_?secret(?:_?key)?)(["'\s:=]+)([A-Za-z0-9/+=]{16,})"#,
        )
        .expect("valid regex"),
        aws_secret_bare: Regex::new(r"[A-Za-z0-9/+]{40}").expect("valid regex"),
        bearer: Regex::new(r"(?i)\b(bearer|token)(\s+)([A-Za-z0-9\-._~+/]{16,}=*)").expect("valid regex"),
    })
}

/// Replaces secrets in text. Cheap to clone; clones share the list of
/// literal secrets, so one learned later (an App registered through the
/// setup page) is removed everywhere from then on.
#[derive(Clone, Default)]
pub struct Redactor {
    literals: Arc<ArcSwap<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redactor({} literal secrets)",
            self.literals.load().len()
        )
    }
}

impl Redactor {
    /// A redactor that also removes these exact values (the process's own
    /// configured secrets).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let r = Redactor::default();
        r.learn(secrets);
        r
    }

    /// Remove these values too, in this redactor and all its clones.
    pub fn learn(&self, secrets: impl IntoIterator<Item = String>) {
        let mut literals: Vec<String> = self.literals.load().as_ref().clone();
        literals.extend(
            secrets
                .into_iter()
                .filter(|s| s.len() >= MIN_LITERAL_SECRET),
        );
        // Longest first, so a secret containing another is removed whole.
        literals.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        literals.dedup();
        self.literals.store(Arc::new(literals));
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let p = patterns();
        let mut out = Cow::Borrowed(text);
        for literal in self.literals.load().iter() {
            if out.contains(literal.as_str()) {
                out = Cow::Owned(out.replace(literal.as_str(), REDACTED));
            }
        }
        for re in [&p.pem, &p.github, &p.aws_key_id] {
            if re.is_match(&out) {
                out = Cow::Owned(re.replace_all(&out, REDACTED).into_owned());
            }
        }
        if p.aws_secret_assigned.is_match(&out) {
            out = Cow::Owned(
                p.aws_secret_assigned
                    .replace_all(&out, format!("${{1}}${{2}}{REDACTED}"))
                    .into_owned(),
            );
        }
        if p.bearer.is_match(&out) {
            out = Cow::Owned(
                p.bearer
                    .replace_all(&out, format!("${{1}}${{2}}{REDACTED}"))
                    .into_owned(),
            );
        }
        if let Some(cleaned) = redact_bare_aws_secrets(&out) {
            out = Cow::Owned(cleaned);
        }
        out
    }
}

/// A 40-character run of the secret-key alphabet standing alone, with upper
/// and lower case letters and a digit or `/` `+`. Commit SHAs (lower-case
/// hex) and ordinary words never look like that; AWS secret keys nearly
/// always do.
fn redact_bare_aws_secrets(text: &str) -> Option<String> {
    let re = &patterns().aws_secret_bare;
    let bytes = text.as_bytes();
    let is_alpha = |b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'+' || b == b'=';
    let mut out = String::new();
    let mut last = 0;
    for m in re.find_iter(text) {
        let standalone = (m.start() == 0 || !is_alpha(bytes[m.start() - 1]))
            && (m.end() == bytes.len() || !is_alpha(bytes[m.end()]));
        let s = m.as_str();
        let mixed = s.bytes().any(|b| b.is_ascii_uppercase())
            && s.bytes().any(|b| b.is_ascii_lowercase())
            && s.bytes()
                .any(|b| b.is_ascii_digit() || b == b'/' || b == b'+');
        if standalone && mixed {
            out.push_str(&text[last..m.start()]);
            out.push_str(REDACTED);
            last = m.end();
        }
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_kind_of_secret() {
        let r = Redactor::new(["my-webhook-secret-value".to_string(), "short".to_string()]);
        let text = "id AKIAIOSFODNN7EXAMPLE key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
            tok ghp_abcdefghijklmnopqrstuvwxyz0123456789 inst ghs_16C7e42F292c6912E7710c838347Ae178B4a \
            pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz \
            aws_secret_access_key = abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD \
            Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.sig \
            hook my-webhook-secret-value short \
            -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY----- done";
        let out = r.redact(text);
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG",
            "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD",
            "eyJhbGciOiJSUzI1NiJ9",
            "my-webhook-secret-value",
            "MIIEow",
        ] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        assert!(out.contains("short"), "short literals are not secrets");
        assert!(out.ends_with("done"));
        let clone = r.clone();
        r.learn(["learned-later-secret".to_string()]);
        assert_eq!(clone.redact("x learned-later-secret y"), "x [REDACTED] y");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let r = Redactor::new([]);
        let text =
            "commit 9f1c2d3e4b5a69788796a5b4c3d2e1f001122334 changes `modules/batch/main.tf`; \
            the token bucket refills. Bearer of bad news.";
        assert!(
            matches!(r.redact(text), Cow::Borrowed(_)),
            "{}",
            r.redact(text)
        );
    }
}
