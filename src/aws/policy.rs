//! A least-privilege check of an IAM policy document, done on our side:
//! moto does not implement IAM's policy simulator, and AWS's own analyzer
//! is not reachable from tests, so the rules live here where they are
//! tested. It flags what widens a grant: `*` actions (all of them, or all
//! of a service), `*` resources, `NotAction`/`NotResource` in an allow,
//! `iam:PassRole` on any role, a public principal, and sensitive actions
//! allowed without a condition.

use serde::Serialize;
use serde_json::Value;

use crate::repo_config::Severity;

/// One thing a policy grants more widely than it should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyFinding {
    pub severity: Severity,
    /// The statement's index (from 0) and its `Sid`, when it has one.
    pub statement: usize,
    pub sid: Option<String>,
    pub message: String,
}

/// A string or a list of strings, as IAM allows for most fields.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// Actions that change who can do what, or run as someone else: allowed
/// without a condition, they deserve a look.
fn sensitive(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    a.starts_with("iam:")
        || a.starts_with("sts:assumerole")
        || a.starts_with("kms:")
        || a.ends_with(":putbucketpolicy")
        || a.ends_with(":deletebucket")
        || a == "ec2:terminateinstances"
        || a == "ec2:authorizesecuritygroupingress"
}

/// The statements of a policy document; `Err` when it is not a policy.
fn statements(document: &str) -> Result<Vec<Value>, String> {
    let doc: Value = serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    match doc.get("Statement") {
        Some(Value::Array(s)) => Ok(s.clone()),
        Some(s @ Value::Object(_)) => Ok(vec![s.clone()]),
        _ => Err("no `Statement` (an object or a list of them)".into()),
    }
}

/// The statement names everyone as its principal (`*`, `{"AWS": "*"}`).
fn everyone(st: &Value) -> bool {
    match st.get("Principal") {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(m)) => m
            .values()
            .any(|v| strings(Some(v)).iter().any(|p| p == "*")),
        _ => false,
    }
}

/// Whether a resource policy (a bucket's) may grant public access: an
/// allow to everyone, or to everyone but some (`NotPrincipal`). Stricter
/// than AWS's own definition on purpose: a condition does not make it
/// private here, since telling which conditions pin the caller down is
/// AWS's call and cannot be checked in tests.
pub fn grants_public(document: &str) -> Result<bool, String> {
    Ok(statements(document)?.iter().any(|st| {
        st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && (everyone(st) || st.get("NotPrincipal").is_some())
    }))
}

/// Check a policy document; `Err` when it is not a policy at all.
pub fn check(document: &str) -> Result<Vec<PolicyFinding>, String> {
    let statements = statements(document)?;
    let mut out = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let sid = st.get("Sid").and_then(Value::as_str).map(str::to_string);
        let mut flag = |severity, message: String| {
            out.push(PolicyFinding {
                severity,
                statement: i,
                sid: sid.clone(),
                message,
            })
        };
        let actions = strings(st.get("Action"));
        let resources = strings(st.get("Resource"));
        let conditioned = st
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|c| !c.is_empty());
        if actions.iter().any(|a| a == "*") {
            flag(Severity::Critical, "allows every action (`*`)".into());
        }
        for a in actions.iter().filter(|a| a.ends_with(":*")) {
            flag(
                Severity::Major,
                format!("allows every action of a service (`{a}`)"),
            );
        }
        if st.get("NotAction").is_some() {
            flag(
                Severity::Major,
                "allows everything except the actions in `NotAction`".into(),
            );
        }
        if st.get("NotResource").is_some() {
            flag(
                Severity::Major,
                "allows on every resource except those in `NotResource`".into(),
            );
        }
        let any_resource = resources.iter().any(|r| r == "*");
        if any_resource
            && actions
                .iter()
                .any(|a| a.eq_ignore_ascii_case("iam:PassRole") || a == "iam:*")
        {
            flag(
                Severity::Critical,
                "`iam:PassRole` on every role (`Resource: *`) lets its holder hand any role to a service".into(),
            );
        }
        // EC2's Describe calls take no resource-level permission: `*` is
        // the only way to grant them, so it is not a finding there.
        let describe_only =
            !actions.is_empty() && actions.iter().all(|a| a.starts_with("ec2:Describe"));
        if any_resource && !actions.iter().any(|a| a == "*") && !describe_only {
            flag(Severity::Major, "applies to every resource (`*`)".into());
        }
        if everyone(st) && !conditioned {
            flag(
                Severity::Critical,
                "grants to everyone (`Principal: *`) without a condition".into(),
            );
        }
        let risky: Vec<&String> = actions.iter().filter(|a| sensitive(a)).collect();
        if !risky.is_empty() && !conditioned {
            flag(
                Severity::Minor,
                format!(
                    "allows sensitive actions without a `Condition`: {}",
                    risky
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    out.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.statement));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(doc: &str) -> Vec<(Severity, String)> {
        check(doc)
            .unwrap()
            .into_iter()
            .map(|f| (f.severity, f.message))
            .collect()
    }

    #[test]
    fn a_tight_policy_has_no_findings() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ec2:StartInstances","ec2:StopInstances"],
             "Resource":"arn:aws:ec2:eu-west-1:123456789012:instance/*",
             "Condition":{"StringEquals":{"aws:ResourceTag/agentic:repo":"acme/infra"}}},
            {"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        assert_eq!(check(doc).unwrap(), []);
    }

    #[test]
    fn wildcards_passrole_public_principals_and_missing_conditions_are_flagged() {
        let doc = r#"{"Statement":[
            {"Sid":"Admin","Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Allow","Action":["s3:*"],"Resource":"arn:aws:s3:::logs/*"},
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"*"},
            {"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:s3:::x"},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"},
            {"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::1:user/ci"}]}"#;
        let found = messages(doc);
        assert_eq!(
            found[0],
            (Severity::Critical, "allows every action (`*`)".into())
        );
        assert!(found
            .iter()
            .any(|(s, m)| *s == Severity::Critical && m.contains("`iam:PassRole` on every role")));
        assert!(found
            .iter()
            .any(|(s, m)| *s == Severity::Critical && m.contains("grants to everyone")));
        assert!(found
            .iter()
            .any(|(s, m)| *s == Severity::Major && m.contains("`s3:*`")));
        assert!(found
            .iter()
            .any(|(s, m)| *s == Severity::Major && m.contains("`NotAction`")));
        assert!(found
            .iter()
            .any(|(s, m)| *s == Severity::Minor && m.contains("`iam:CreateAccessKey`")));
        let first = &check(doc).unwrap()[0];
        assert_eq!((first.statement, first.sid.as_deref()), (0, Some("Admin")));
    }

    #[test]
    fn a_bucket_policy_for_everyone_is_public_even_with_a_condition() {
        let private = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/ci"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        assert_eq!(grants_public(private), Ok(false));
        let public = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/1"}}}}"#;
        assert_eq!(grants_public(public), Ok(true));
        let all_but = r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::1:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        assert_eq!(grants_public(all_but), Ok(true));
        assert!(grants_public("[]").is_err());
    }

    #[test]
    fn a_single_statement_object_is_a_policy_and_garbage_is_not() {
        assert_eq!(
            messages(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#),
            [(
                Severity::Major,
                "applies to every resource (`*`)".to_string()
            )]
        );
        // EC2's Describe calls cannot be granted on less than `*`.
        assert_eq!(
            messages(r#"{"Statement":{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}"#),
            []
        );
        assert!(check("{").unwrap_err().starts_with("not JSON"));
        assert!(check(r#"{"Version":"2012-10-17"}"#)
            .unwrap_err()
            .contains("Statement"));
    }
}
