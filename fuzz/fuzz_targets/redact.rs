//! The redactor: no secret of a known shape survives inside arbitrary
//! surrounding text (the first byte picks the secret, the rest is split
//! into what stands before and after it, each side ending in a character
//! that can end a token).
#![no_main]
use libfuzzer_sys::fuzz_target;

/// (text with the secret, the part that must not survive)
const SECRETS: &[(&str, &str)] = &[
    ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
    ("xoxb-2938475610-2938475610123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab3dEf6hIj9kLm", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    ("Authorization: Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk", "YWxpY2U6czNjcjN0LXBhc3N3b3Jk"),
    ("postgres://deploy:hunter2-Pa55word@db.internal:5432/app", "hunter2-Pa55word"),
    ("aws_secret_access_key = Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx", "Zx9/Ab3+Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"),
    ("npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123"),
    ("glpat-xR7b2Kq9Lm4Np6Tv8Wz1", "xR7b2Kq9Lm4Np6Tv8Wz1"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
];
const BEFORE: &[&str] = &[" ", "\n", "\"", "'", "(", "`", "\t", ">", "="];
const AFTER: &[&str] = &[" ", "\n", "\"", "'", ")", "`", ",", "<", ";"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let middle = text.len() / 2;
    let middle = (0..=middle)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let (before, after) = text.split_at(middle);
    let (secret_text, secret) = SECRETS[pick as usize % SECRETS.len()];
    // Text around it that holds the secret's words itself is not a leak.
    if text.contains(secret) {
        return;
    }
    let sep_before = BEFORE[(pick as usize / SECRETS.len()) % BEFORE.len()];
    let sep_after = AFTER[rest.len() % AFTER.len()];
    let whole = format!("{before}{sep_before}{secret_text}{sep_after}{after}");
    let out = agentic::redact::Redactor::new(Vec::<String>::new())
        .redact(&whole)
        .into_owned();
    assert!(!out.contains(secret), "{secret} survived in {out:?}");
});
