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

/// One kind of secret: a pattern and what replaces a match (`$1`… keep
/// the parts of the match that are not secret, such as a header name).
struct Rule {
    /// The gitleaks rule id this follows, or ours where gitleaks has none.
    id: &'static str,
    re: Regex,
    replacement: &'static str,
    /// Extra test on a match, for shapes that ordinary words can take.
    looks_secret: fn(&str) -> bool,
}

fn always(_: &str) -> bool {
    true
}

/// Letters and digits mixed, as in a random key; `sk-learn-and-co` is not.
fn random_looking(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Tokens CI logs print more often than anything else, after gitleaks'
/// `gcp-api-key`, `npm-access-token`, `pypi-upload-token`, `gitlab-pat`,
/// `stripe-access-token`, `huggingface-access-token` and `dockerhub-pat`
/// (as Docker's `dckr_pat_`), and Google's OAuth access tokens.
const CI_VENDOR_TOKENS: &str = r"\b(?:AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}|npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}|glpat-[0-9A-Za-z_-]{20,}|(?:sk|rk)_(?:test|live|prod)_[0-9A-Za-z]{10,99}|hf_[A-Za-z0-9]{30,}|dckr_pat_[A-Za-z0-9_-]{27,})";

/// The rules, after gitleaks' default configuration (`config/gitleaks.toml`,
/// rule ids named below) where it has one, widened where redaction should
/// err on the side of removing (a false positive costs a word; a miss leaks
/// a key), plus the assignment and URL shapes gitleaks leaves to its generic
/// rule.
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let rule = |id, re: &str, replacement, looks_secret| Rule {
            id,
            re: Regex::new(re).expect("valid regex"),
            replacement,
            looks_secret,
        };
        vec![
            // `private-key`: a PEM or PGP block, whole, up to its END marker
            // within a key's length; without one (a truncated paste, or a
            // marker planted in a tag value), only the marker and the
            // base64 lines right after it. Never to the end of the text: a
            // marker in one place must not blank what follows it.
            rule(
                "private-key",
                r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:[\x20-\x7E\t\r\n]{0,8192}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|(?:[ \t]{0,4}[A-Za-z0-9+/=]{16,80}|(?:\r?\n|\\n)[A-Za-z0-9+/=]{1,80}){0,64})",
                REDACTED,
                always,
            ),
            // `github-pat`, `github-oauth`, `github-app-token`,
            // `github-refresh-token`, `github-fine-grained-pat`.
            rule(
                "github-token",
                r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b",
                REDACTED,
                always,
            ),
            // `aws-access-token`.
            rule(
                "aws-access-token",
                r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{16}\b",
                REDACTED,
                always,
            ),
            // `jwt`: header and payload are base64url JSON (`ey…`); the
            // signature may be empty (`alg: none`).
            rule(
                "jwt",
                r"ey[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_\-+/=]*",
                REDACTED,
                always,
            ),
            // `slack-bot-token`, `slack-user-token`, `slack-legacy-*`.
            rule(
                "slack-token",
                r"xox[abposre]-[0-9A-Za-z-]{10,}",
                REDACTED,
                always,
            ),
            // `slack-app-token`.
            rule(
                "slack-app-token",
                r"(?i)xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",
                REDACTED,
                always,
            ),
            // `slack-webhook-url`.
            rule(
                "slack-webhook-url",
                r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{10,}",
                REDACTED,
                always,
            ),
            // `openai-api-key`, widened to every `sk-` key shape (project,
            // service-account, admin, and other vendors' `sk-ant-`).
            rule(
                "sk-api-key",
                r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",
                REDACTED,
                random_looking,
            ),
            rule("ci-vendor-token", CI_VENDOR_TOKENS, REDACTED, always),
            // An STS session token: `IQoJb3JpZ2luX2Vj…` today,
            // `FwoGZXIvYXdz…`/`FQoGZXIvYXdz…` before (and moto's).
            rule(
                "aws-session-token",
                r"(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9/+=]{20,}",
                REDACTED,
                always,
            ),
            // A value assigned to something named like an AWS secret key
            // (`aws-secret-access-key: …`, `AWS_SECRET_KEY=…`).
            rule(
                "aws-secret-assignment",
                r#"(?i)(secret[_-]?access[_-]?key|aws[_-]?secret(?:[_-]?(?:access[_-]?)?key)?)(["'\s:=]+)([A-Za-z0-9/+=]{16,})"#,
                "${1}${2}[REDACTED]",
                always,
            ),
            // `Authorization: Basic …` (any quoting, header or JSON).
            rule(
                "basic-auth",
                r#"(?i)(authorization["']?[ \t]*[:=][ \t]*["']?basic[ \t]+)[A-Za-z0-9+/=._~-]+"#,
                "${1}[REDACTED]",
                always,
            ),
            // `Bearer …`, `token …` and `Basic …` credentials, wherever
            // they stand (the header's name may have been taken by a
            // match before them).
            rule(
                "bearer",
                r"(?i)\b(bearer|token|basic)([ \t]+)[A-Za-z0-9\-._~+/]{16,}=*",
                "${1}${2}[REDACTED]",
                always,
            ),
            // A password in a URL: `scheme://user:password@host`.
            rule(
                "url-password",
                r#"(?i)((?:\b[a-z][a-z0-9+.-]{1,20})?://)([^\s:/?#@'"<>]{1,256}):([^\s/?#@'"<>]{1,256})@"#,
                "${1}${2}:[REDACTED]@",
                always,
            ),
        ]
    })
}

fn bare_aws_secret() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[A-Za-z0-9/+]{40}").expect("valid regex"))
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
        let mut out = Cow::Borrowed(text);
        for literal in self.literals.load().iter() {
            if out.contains(literal.as_str()) {
                out = Cow::Owned(out.replace(literal.as_str(), REDACTED));
            }
        }
        for rule in rules() {
            if !rule.re.is_match(&out) {
                continue;
            }
            let replaced = rule.re.replace_all(&out, |caps: &regex::Captures<'_>| {
                let whole = &caps[0];
                if (rule.looks_secret)(whole) {
                    let mut dst = String::new();
                    caps.expand(rule.replacement, &mut dst);
                    dst
                } else {
                    whole.to_string()
                }
            });
            if let Cow::Owned(changed) = replaced {
                if changed != *out {
                    tracing::trace!(rule = rule.id, "redacted");
                    out = Cow::Owned(changed);
                }
            }
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
    let re = bare_aws_secret();
    let bytes = text.as_bytes();
    // `=` before the run is an assignment (`KEY=…` in a .env file); after
    // it, base64 padding of something longer.
    let key_char = |b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'+';
    let mut out = String::new();
    let mut last = 0;
    for m in re.find_iter(text) {
        let standalone = (m.start() == 0 || !key_char(bytes[m.start() - 1]))
            && (m.end() == bytes.len() || !(key_char(bytes[m.end()]) || bytes[m.end()] == b'='));
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
            x-amz-security-token:IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6 \
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
            "IQoJb3JpZ2luX2VjEJr",
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

    /// Secrets the first redactor missed (issue 6, item 10), each with the
    /// part that must not survive.
    pub(crate) const MISSED_BEFORE: &[(&str, &str)] = &[
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ),
        ("xoxb-2938475610-2938475610123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
        ("xoxp-1234567890-1234567890-1234567890-abcdef0123456789abcdef0123456789", "abcdef0123456789abcdef0123456789"),
        ("xapp-1-A0123456789-1234567890123-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXXXXXXXXXX"),
        ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab3dEf6hIj9kLm", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
        ("sk-4f8Kq2Lz9Xw1Vb7Nm3Cd6Ty0Hs5Gj2Pe8Ra1Uo", "4f8Kq2Lz9Xw1Vb7Nm3Cd6Ty0Hs5Gj2Pe8Ra1Uo"),
        ("Authorization: Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk", "YWxpY2U6czNjcjN0LXBhc3N3b3Jk"),
        ("postgres://deploy:hunter2-Pa55word@db.internal:5432/app", "hunter2-Pa55word"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0XqUgBCADTx2kQ\n=Ab12\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF0XqUgBCADTx2kQ",
        ),
        ("aws-secret-access-key: Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx", "Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx"),
        ("SECRET_KEY=Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx", "Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx"),
    ];

    /// Tokens CI logs print (issue 17), each with the part that must not
    /// survive.
    pub(crate) const CI_TOKENS: &[(&str, &str)] = &[
        ("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "SyD-9tSrke72PouQMnMX"),
        ("ya29.a0AfH6SMBx3Zy-Q8nQ1vR2Lp0e9WcKq7TgYxUoI", "a0AfH6SMBx3Zy-Q8nQ1vR2Lp0e9"),
        ("//registry.npmjs.org/:_authToken=npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123", "npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123"),
        ("password: pypi-AgEIcHlwaS5vcmcCJGQ4ZTQ2NjQ3LTk4NzItNDgxYi1hZTE1LWFiZjM0ZjFhZTk5NgACKlsz", "CJGQ4ZTQ2NjQ3LTk4NzItNDgxYi1hZTE1"),
        ("PRIVATE-TOKEN: glpat-xR7b2Kq9Lm4Np6Tv8Wz1", "xR7b2Kq9Lm4Np6Tv8Wz1"),
        ("STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("HF_TOKEN=hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"),
        ("docker login -p dckr_pat_2b3c4d5e6f7g8h9i0j1k2l3m4n5", "2b3c4d5e6f7g8h9i0j1k2l3m4n5"),
    ];

    /// Found by the `redact` fuzz target: a header name on one line took
    /// the scheme of a URL on the next, and the URL's password was then
    /// not taken for one.
    #[test]
    fn one_rule_does_not_eat_what_another_needs() {
        let out = Redactor::new([]).redact(
            "Authorization: Basic\npostgres://deploy:hunter2-Pa55word@db.internal:5432/app",
        );
        assert!(!out.contains("hunter2-Pa55word"), "{out}");
        let out = Redactor::new([]).redact("[x]://deploy:hunter2-Pa55word@db");
        assert!(!out.contains("hunter2-Pa55word"), "{out}");
        let out = Redactor::new([])
            .redact("Authorization: Basic =Authorization: Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk");
        assert!(!out.contains("YWxpY2U6czNjcjN0LXBhc3N3b3Jk"), "{out}");
    }

    #[test]
    fn removes_the_tokens_ci_logs_print() {
        let r = Redactor::new([]);
        for (text, secret) in CI_TOKENS {
            let out = r.redact(text);
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
    }

    #[test]
    fn removes_what_the_first_version_missed() {
        let r = Redactor::new([]);
        for (text, secret) in MISSED_BEFORE {
            let out = r.redact(text);
            assert!(!out.contains(secret), "{secret} survived in {out}");
        }
        // What is not secret stays readable.
        assert_eq!(
            r.redact("Authorization: Basic YWxpY2U6cGFzcw=="),
            "Authorization: Basic [REDACTED]"
        );
        assert_eq!(
            r.redact("postgres://deploy:hunter2@db.internal/app"),
            "postgres://deploy:[REDACTED]@db.internal/app"
        );
    }

    proptest::proptest! {
        /// None of the secrets survives inside arbitrary text, whatever
        /// stands around it (separated by a character that can end a token).
        #[test]
        fn no_secret_survives_in_arbitrary_text(
            which in 0..MISSED_BEFORE.len() + CI_TOKENS.len(),
            before in "\\PC{0,40}",
            after in "\\PC{0,40}",
            sep_before in proptest::sample::select(vec![" ", "\n", "\"", "'", "(", "`", "\t", ">"]),
            sep_after in proptest::sample::select(vec![" ", "\n", "\"", "'", ")", "`", ",", "<"]),
        ) {
            let (secret_text, secret) = MISSED_BEFORE
                .iter()
                .chain(CI_TOKENS)
                .nth(which)
                .copied()
                .unwrap();
            let text = format!("{before}{sep_before}{secret_text}{sep_after}{after}");
            let out = Redactor::new([]).redact(&text);
            proptest::prop_assert!(!out.contains(secret), "{} survived in {:?}", secret, out);
        }
    }

    #[test]
    fn an_unterminated_private_key_marker_takes_only_itself_and_its_base64() {
        let r = Redactor::new([]);
        // A marker planted in a tag value, with text after it.
        assert_eq!(
            r.redact("env=-----BEGIN RSA PRIVATE KEY----- and step 2 stops i-0abc"),
            "env=[REDACTED] and step 2 stops i-0abc"
        );
        // A truncated paste: its base64 lines go, the text after stays.
        let key_lines = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n\
            VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\nLxoS2tFc";
        let text = format!("tags:\n-----BEGIN RSA PRIVATE KEY-----\n{key_lines}\n\n2. **write** `ec2:StopInstances` on `i-2`");
        let out = r.redact(&text);
        assert_eq!(
            out,
            "tags:\n[REDACTED]\n\n2. **write** `ec2:StopInstances` on `i-2`"
        );
        // However long the paste, the run it takes is bounded.
        let long = format!(
            "-----BEGIN PRIVATE KEY-----\n{}",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\n".repeat(400)
        );
        let out = r.redact(&long);
        assert!(out.starts_with(REDACTED), "{out}");
        assert!(out.len() < long.len() && out.len() > long.len() / 2);
    }

    #[test]
    fn a_private_key_block_does_not_reach_past_its_own_length() {
        let r = Redactor::new([]);
        // A BEGIN here and an END far away: what lies between is not a key.
        let between = "step two stays visible. ".repeat(1_000);
        let text = format!("-----BEGIN RSA PRIVATE KEY-----{between}-----END RSA PRIVATE KEY-----");
        let out = r.redact(&text);
        assert!(out.contains("step two stays visible."), "blanked");
        assert!(!out.contains("BEGIN RSA PRIVATE KEY"));
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let r = Redactor::new([]);
        let text =
            "commit 9f1c2d3e4b5a69788796a5b4c3d2e1f001122334 changes `modules/batch/main.tf`; \
            the token bucket refills. Bearer of bad news. Basic usage: see https://example.com/a:b@c \
            and scikit sk-learn-is-a-python-library-name.";
        assert!(
            matches!(r.redact(text), Cow::Borrowed(_)),
            "{}",
            r.redact(text)
        );
    }
}
