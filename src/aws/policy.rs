//! A least-privilege check of an IAM policy document, done on our side:
//! moto does not implement IAM's policy simulator, and AWS's own analyzer
//! is not reachable from tests, so the rules live here where they are
//! tested. It flags what widens a grant: `*` actions (all of them, or all
//! of a service), `*` resources, `NotAction`/`NotResource` in an allow,
//! `iam:PassRole` on any role, a public principal, and sensitive actions
//! allowed without a condition.

use serde::Serialize;
use serde_json::Value;

use crate::domain::Severity;

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

/// IAM and STS actions that, on every resource, make their holder an
/// administrator: each lets it give itself (or a principal it controls)
/// any permission. `iam:PassRole` has its own finding.
pub const ESCALATION: &[&str] = &[
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "sts:AssumeRole",
];

/// An action pattern that matches every action (`*`, `*:*`).
fn every_action(a: &str) -> bool {
    a.split(':')
        .all(|part| !part.is_empty() && part.chars().all(|c| c == '*'))
}

/// A resource pattern that covers every resource of its kind or account:
/// `*`, an ARN ending in `:*` or `/*`, or with a wildcard account.
fn every_resource(r: &str) -> bool {
    r == "*"
        || r.ends_with(":*")
        || r.ends_with("/*")
        || r.split(':').nth(4).is_some_and(|a| a.contains('*'))
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

/// An IAM-style pattern (`*` any run of characters, `?` one) matches
/// `name`, ignoring case as IAM does for action names.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    // Classic two-pointer glob match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The fields of a statement named `name` in any letter case: IAM's
/// element names are case-sensitive, but we read a misspelt one as if it
/// counted rather than let it slip past (moto stores what AWS refuses).
fn fields<'a>(st: &'a Value, name: &str) -> Vec<&'a Value> {
    st.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of every field named `name` (any case).
fn all_strings(st: &Value, name: &str) -> Vec<String> {
    fields(st, name)
        .into_iter()
        .flat_map(|v| strings(Some(v)))
        .collect()
}

/// A statement denies when its effect says `Deny`; anything else is read
/// as allowing, so a misspelt effect is judged the stricter way.
fn denies(st: &Value) -> bool {
    fields(st, "Effect")
        .iter()
        .any(|e| e.as_str() == Some("Deny"))
}

/// The account an AWS principal names: a 12-digit id, or the account
/// field of an `iam`/`sts` ARN (any partition). `None` for anything else,
/// wildcards included: such a principal counts as outside.
fn principal_account(principal: &str) -> Option<&str> {
    let is_account = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    if is_account(principal) {
        return Some(principal);
    }
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam" | "sts", "", account, rest]
            if partition.starts_with("aws")
                && is_account(account)
                && !rest.is_empty()
                && !rest.contains(['*', '?']) =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// The condition pins a service principal to `account`: an
/// `aws:SourceAccount` equal to it, or an `aws:SourceArn` in it, under a
/// positive string or ARN operator (a negated operator, `…IfExists` or a
/// wildcard does not pin anything).
fn pinned_to(st: &Value, account: Option<&str>) -> bool {
    let Some(account) = account else {
        return false;
    };
    fields(st, "Condition").iter().any(|condition| {
        let Some(ops) = condition.as_object() else {
            return false;
        };
        ["StringEquals", "StringLike", "ArnEquals", "ArnLike"]
            .iter()
            .filter_map(|op| ops.get(*op).and_then(Value::as_object))
            .flat_map(|keys| keys.iter())
            .any(|(key, values)| {
                let values = strings(Some(values));
                !values.is_empty()
                    && if key.eq_ignore_ascii_case("aws:SourceAccount") {
                        values.iter().all(|v| v == account)
                    } else if key.eq_ignore_ascii_case("aws:SourceArn") {
                        values.iter().all(|v| {
                            !v.contains(['*', '?']) && v.split(':').nth(4) == Some(account)
                        })
                    } else {
                        false
                    }
            })
    })
}

/// What `principal` (one statement's `Principal`) reaches outside
/// `account`, each said in words; empty when it stays inside.
fn outside(st: &Value, principal: &Value, account: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let entries: Vec<(&str, &Value)> = match principal {
        Value::String(p) if p == "*" => return vec!["everyone (`*`)".into()],
        Value::Object(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        other => return vec![format!("a principal we cannot read (`{other}`)")],
    };
    for (kind, values) in entries {
        let names = match values {
            Value::String(_) | Value::Array(_) => strings(Some(values)),
            other => {
                out.push(format!("a principal we cannot read (`{other}`)"));
                continue;
            }
        };
        if matches!(values, Value::Array(a) if a.len() != names.len()) {
            out.push(format!("a `{kind}` principal that is not a string"));
        }
        for name in names {
            match kind {
                "AWS" if name == "*" => out.push("everyone (`{\"AWS\": \"*\"}`)".into()),
                "AWS" => match (principal_account(&name), account) {
                    (Some(a), Some(ours)) if a == ours => {}
                    (Some(a), Some(_)) => out.push(format!("account {a} (`{name}`)")),
                    (Some(a), None) => out.push(format!(
                        "account {a} (`{name}`), while this repository names no `aws.account`"
                    )),
                    (None, _) => out.push(format!("`{name}`, which names no one account")),
                },
                "Service" if pinned_to(st, account) => {}
                "Service" => out.push(format!(
                    "service `{name}` acting for any account (no `aws:SourceAccount` or `aws:SourceArn` condition naming this repository's `aws.account`)"
                )),
                other => out.push(format!("`{other}` principal `{name}`")),
            }
        }
    }
    out
}

/// The actions that keep a bucket's owner in charge of it: denied to
/// everyone, nobody in the account can fix or remove the policy.
const POLICY_ACTIONS: [&str; 2] = ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"];

/// The only condition under which a deny to everyone cannot lock the
/// account out: it refuses plain HTTP, which AWS's SDKs and console never
/// use. Any other condition (a VPC endpoint, a source address) may.
fn only_refuses_plain_http(st: &Value) -> bool {
    let conditions = fields(st, "Condition");
    !conditions.is_empty()
        && conditions.iter().all(|c| {
            c.as_object().is_some_and(|ops| {
                !ops.is_empty()
                    && ops.iter().all(|(op, keys)| {
                        op == "Bool"
                            && keys.as_object().is_some_and(|keys| {
                                !keys.is_empty()
                                    && keys.iter().all(|(k, v)| {
                                        k.eq_ignore_ascii_case("aws:SecureTransport")
                                            && (strings(Some(v)) == ["false"]
                                                || *v == Value::Bool(false))
                                    })
                            })
                    })
            })
        })
}

/// Whether a bucket policy reaches principals outside `account` (the
/// repository's `aws.account`; `None`: every account is outside) or can
/// lock the account out of the bucket; the reasons, one per finding, in
/// words for the people who approve. Empty: it stays within the account.
///
/// Outside: an `Allow` to everyone (`*`, `{"AWS": "*"}`), to another
/// account's id or any ARN in it, to a principal we cannot place in one
/// account, or to a `Service` not pinned to this account by an
/// `aws:SourceAccount`/`aws:SourceArn` condition; any `NotPrincipal`.
/// Locked out: a `Deny` to everyone of `s3:PutBucketPolicy` or
/// `s3:DeleteBucketPolicy` (by any pattern or `NotAction`) under any
/// condition other than refusing plain HTTP.
pub fn reaches_outside(document: &str, account: Option<&str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, st) in statements(document)?.iter().enumerate() {
        if !fields(st, "NotPrincipal").is_empty() {
            out.push(format!(
                "statement {i} uses `NotPrincipal`: it applies to everyone not named"
            ));
        }
        let principals = fields(st, "Principal");
        if denies(st) {
            let everyone = principals.iter().any(|p| {
                matches!(p, Value::String(s) if s == "*")
                    || p.as_object().is_some_and(|m| {
                        m.values()
                            .any(|v| strings(Some(v)).iter().any(|s| s == "*"))
                    })
            });
            let actions = all_strings(st, "Action");
            let not_actions = fields(st, "NotAction");
            let covers = |action: &str| {
                actions.iter().any(|a| matches(a, action))
                    || (!not_actions.is_empty()
                        && !all_strings(st, "NotAction")
                            .iter()
                            .any(|a| matches(a, action)))
            };
            if everyone && POLICY_ACTIONS.iter().any(|a| covers(a)) && !only_refuses_plain_http(st)
            {
                out.push(format!(
                    "statement {i} denies everyone the right to change or delete the bucket's policy, which can lock the account out of the bucket"
                ));
            }
            continue;
        }
        if principals.is_empty() && fields(st, "NotPrincipal").is_empty() {
            out.push(format!("statement {i} allows without naming a principal"));
        }
        for principal in principals {
            for who in outside(st, principal, account) {
                out.push(format!("statement {i} allows {who}"));
            }
        }
    }
    Ok(out)
}

/// Check a policy document; `Err` when it is not a policy at all.
pub fn check(document: &str) -> Result<Vec<PolicyFinding>, String> {
    let statements = statements(document)?;
    let mut out = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        if denies(st) {
            continue;
        }
        let sid = st.get("Sid").and_then(Value::as_str).map(str::to_string);
        for (severity, message) in statement_findings(st) {
            out.push(PolicyFinding {
                severity,
                statement: i,
                sid: sid.clone(),
                message,
            });
        }
    }
    out.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.statement));
    Ok(out)
}

/// What one allowing statement grants too widely, each with its severity,
/// in the order the checks run.
fn statement_findings(st: &Value) -> Vec<(Severity, String)> {
    let mut found = Vec::new();
    let actions = all_strings(st, "Action");
    let resources = all_strings(st, "Resource");
    let not_resource = !fields(st, "NotResource").is_empty();
    // Every resource of a kind, or everything but some: what an
    // escalation needs.
    let wide = not_resource || resources.iter().any(|r| every_resource(r));
    let conditioned = st
        .get("Condition")
        .and_then(Value::as_object)
        .is_some_and(|c| !c.is_empty());
    action_findings(st, &actions, wide, &mut found);
    resource_findings(&actions, &resources, not_resource, &mut found);
    let mut flag = |severity, message: String| found.push((severity, message));
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
    found
}

/// Findings on a statement's actions: every action, every action of a
/// service, `NotAction`, and escalation on `wide` resources.
fn action_findings(
    st: &Value,
    actions: &[String],
    wide: bool,
    found: &mut Vec<(Severity, String)>,
) {
    let mut flag = |severity, message: String| found.push((severity, message));
    if actions.iter().any(|a| every_action(a)) {
        flag(Severity::Critical, "allows every action (`*`)".into());
    }
    for a in actions
        .iter()
        .filter(|a| a.ends_with(":*") && !every_action(a))
    {
        flag(
            Severity::Major,
            format!("allows every action of a service (`{a}`)"),
        );
    }
    let not_actions = fields(st, "NotAction");
    if !not_actions.is_empty() {
        let excluded = all_strings(st, "NotAction");
        let left: Vec<&str> = ESCALATION
            .iter()
            .copied()
            .filter(|e| !excluded.iter().any(|a| matches(a, e)))
            .collect();
        if wide && !left.is_empty() {
            flag(
                Severity::Critical,
                format!(
                    "allows everything except the actions in `NotAction` on every resource, `{}` included: admin-equivalent",
                    left[0]
                ),
            );
        } else {
            flag(
                Severity::Major,
                "allows everything except the actions in `NotAction`".into(),
            );
        }
    }
    let escalating: Vec<&str> = ESCALATION
        .iter()
        .copied()
        .filter(|e| actions.iter().any(|a| !every_action(a) && matches(a, e)))
        .collect();
    if wide && !escalating.is_empty() {
        flag(
            Severity::Critical,
            format!(
                "allows {} on every resource: admin-equivalent, its holder can grant itself anything",
                escalating
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// Findings on a statement's resources: every one but some (`NotResource`),
/// `iam:PassRole` on every role, and every resource (`*`).
fn resource_findings(
    actions: &[String],
    resources: &[String],
    not_resource: bool,
    found: &mut Vec<(Severity, String)>,
) {
    let mut flag = |severity, message: String| found.push((severity, message));
    if not_resource {
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
    if any_resource && !actions.iter().any(|a| every_action(a)) && !describe_only {
        flag(Severity::Major, "applies to every resource (`*`)".into());
    }
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

    fn bucket(statement: serde_json::Value) -> String {
        serde_json::json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string()
    }

    fn allow(principal: serde_json::Value) -> String {
        bucket(
            serde_json::json!({ "Effect": "Allow", "Principal": principal,
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*" }),
        )
    }

    const OURS: Option<&str> = Some("123456789012");

    #[test]
    fn a_bucket_policy_within_the_account_stays_inside() {
        for principal in [
            serde_json::json!({ "AWS": "123456789012" }),
            serde_json::json!({ "AWS": "arn:aws:iam::123456789012:root" }),
            serde_json::json!({ "AWS": ["arn:aws:iam::123456789012:role/ci", "arn:aws:sts::123456789012:assumed-role/ci/s"] }),
            serde_json::json!({ "AWS": "arn:aws-us-gov:iam::123456789012:user/path/u" }),
        ] {
            assert_eq!(
                reaches_outside(&allow(principal.clone()), OURS),
                Ok(vec![]),
                "{principal}"
            );
        }
        let pinned = bucket(serde_json::json!({ "Effect": "Allow",
            "Principal": { "Service": "logging.s3.amazonaws.com" }, "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": { "ArnLike": { "aws:SourceArn": "arn:aws:logs:eu-west-1:123456789012:log-group:x" } } }));
        assert_eq!(reaches_outside(&pinned, OURS), Ok(vec![]));
        // The usual guardrail: refuse plain HTTP to everyone.
        let https_only = bucket(
            serde_json::json!({ "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/*", "Condition": { "Bool": { "aws:SecureTransport": "false" } } }),
        );
        assert_eq!(reaches_outside(&https_only, OURS), Ok(vec![]));
        // A deny to everyone of reads only cannot lock the owner out.
        let no_reads = bucket(serde_json::json!({ "Effect": "Deny", "Principal": "*",
            "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*" }));
        assert_eq!(reaches_outside(&no_reads, OURS), Ok(vec![]));
    }

    #[test]
    fn a_bucket_policy_that_reaches_another_account_everyone_or_any_service_is_outside() {
        let outside = |doc: &str, account: Option<&str>| reaches_outside(doc, account).unwrap();
        for (principal, why) in [
            (serde_json::json!("*"), "everyone (`*`)"),
            (serde_json::json!({ "AWS": "*" }), "everyone"),
            (
                serde_json::json!({ "AWS": ["arn:aws:iam::123456789012:root", "*"] }),
                "everyone",
            ),
            (
                serde_json::json!({ "AWS": "210987654321" }),
                "account 210987654321",
            ),
            (
                serde_json::json!({ "AWS": "arn:aws:iam::210987654321:root" }),
                "account 210987654321",
            ),
            (
                serde_json::json!({ "AWS": "arn:aws:iam::210987654321:role/x" }),
                "account 210987654321",
            ),
            (
                serde_json::json!({ "AWS": "arn:aws:iam::*:root" }),
                "names no one account",
            ),
            (
                serde_json::json!({ "AWS": "arn:aws:iam::123456789012:role/*" }),
                "names no one account",
            ),
            (
                serde_json::json!({ "AWS": "AIDAEXAMPLEUNIQUEID" }),
                "names no one account",
            ),
            (serde_json::json!({ "AWS": 123456789012u64 }), "cannot read"),
            (
                serde_json::json!({ "aws": "123456789012" }),
                "`aws` principal",
            ),
            (
                serde_json::json!({ "Federated": "cognito-identity.amazonaws.com" }),
                "`Federated` principal",
            ),
            (
                serde_json::json!({ "CanonicalUser": "79a59df900b949e5" }),
                "`CanonicalUser` principal",
            ),
            (
                serde_json::json!({ "Service": "logging.s3.amazonaws.com" }),
                "acting for any account",
            ),
            (
                serde_json::json!("arn:aws:iam::123456789012:root"),
                "cannot read",
            ),
        ] {
            let found = outside(&allow(principal.clone()), OURS);
            assert!(
                found.iter().any(|f| f.contains(why)),
                "{principal}: {found:?}"
            );
        }
        // Without `aws.account`, our own account is someone else's too.
        let own = allow(serde_json::json!({ "AWS": "arn:aws:iam::123456789012:root" }));
        assert!(outside(&own, None)[0].contains("names no `aws.account`"));
        // A service pinned to another account, or not pinned by a positive
        // operator, is not pinned.
        for condition in [
            serde_json::json!({ "StringEquals": { "aws:SourceAccount": "210987654321" } }),
            serde_json::json!({ "StringNotEquals": { "aws:SourceAccount": "123456789012" } }),
            serde_json::json!({ "StringEqualsIfExists": { "aws:SourceAccount": "123456789012" } }),
            serde_json::json!({ "ArnLike": { "aws:SourceArn": "arn:aws:logs:*:*:*" } }),
            serde_json::json!({ "StringEquals": { "aws:SourceAccount": [] } }),
        ] {
            let doc = bucket(serde_json::json!({ "Effect": "Allow",
                "Principal": { "Service": "logging.s3.amazonaws.com" }, "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::b/*", "Condition": condition }));
            assert!(!outside(&doc, OURS).is_empty(), "{condition}");
        }
        // Any `NotPrincipal`, allow or deny.
        for effect in ["Allow", "Deny"] {
            let doc = bucket(serde_json::json!({ "Effect": effect,
                "NotPrincipal": { "AWS": "arn:aws:iam::123456789012:root" },
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*" }));
            assert!(
                outside(&doc, OURS)[0].contains("`NotPrincipal`"),
                "{effect}"
            );
        }
        // An effect we do not know is judged as an allow.
        let odd = bucket(serde_json::json!({ "Effect": "allow", "Principal": "*",
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*" }));
        assert!(!outside(&odd, OURS).is_empty());
        assert!(reaches_outside("[]", OURS).is_err());
    }

    #[test]
    fn a_deny_to_everyone_of_the_policy_actions_locks_the_account_out() {
        for (action, condition) in [
            (serde_json::json!("s3:*"), serde_json::Value::Null),
            (serde_json::json!("*"), serde_json::Value::Null),
            (
                serde_json::json!(["s3:GetObject", "s3:putbucketpolicy"]),
                serde_json::Value::Null,
            ),
            (serde_json::json!("s3:Delete*"), serde_json::Value::Null),
            (serde_json::json!("s3:*Policy"), serde_json::Value::Null),
            (
                serde_json::json!("s3:*"),
                serde_json::json!({ "StringNotEquals": { "aws:SourceVpce": "vpce-1" } }),
            ),
            (
                serde_json::json!("s3:*"),
                serde_json::json!({ "Bool": { "aws:SecureTransport": "true" } }),
            ),
        ] {
            let mut st = serde_json::json!({ "Effect": "Deny", "Principal": { "AWS": "*" },
                "Action": action, "Resource": "arn:aws:s3:::b" });
            if !condition.is_null() {
                st["Condition"] = condition.clone();
            }
            let found = reaches_outside(&bucket(st), OURS).unwrap();
            assert!(
                found.iter().any(|f| f.contains("lock the account out")),
                "{action} {condition}: {found:?}"
            );
        }
        // Everything but reads, denied to everyone: that includes them.
        let not_action = bucket(serde_json::json!({ "Effect": "Deny", "Principal": "*",
            "NotAction": "s3:Get*", "Resource": "arn:aws:s3:::b" }));
        assert!(!reaches_outside(&not_action, OURS).unwrap().is_empty());
        let not_policy = bucket(serde_json::json!({ "Effect": "Deny", "Principal": "*",
            "NotAction": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"], "Resource": "arn:aws:s3:::b" }));
        assert_eq!(reaches_outside(&not_policy, OURS), Ok(vec![]));
    }

    #[test]
    fn iam_patterns_match_as_iam_does() {
        assert!(matches("*", "iam:PassRole"));
        assert!(matches("iam:*", "iam:PassRole"));
        assert!(matches("IAM:pass*", "iam:PassRole"));
        assert!(matches("iam:?assRole", "iam:PassRole"));
        assert!(matches("*:*", "sts:AssumeRole"));
        assert!(matches("iam:*Policy*", "iam:AttachUserPolicy"));
        assert!(!matches("iam:Get*", "iam:PassRole"));
        assert!(!matches("iam:PassRol", "iam:PassRole"));
        assert!(!matches("s3:*", "iam:PassRole"));
    }

    #[test]
    fn admin_equivalent_grants_are_critical() {
        let critical = |action: serde_json::Value, resource: &str| {
            check(&serde_json::json!({ "Statement": [{ "Effect": "Allow", "Action": action, "Resource": resource }] }).to_string())
                .unwrap()
                .into_iter()
                .filter(|f| f.severity == Severity::Critical)
                .map(|f| f.message)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            critical(serde_json::json!("*:*"), "*"),
            ["allows every action (`*`)"]
        );
        assert_eq!(
            critical(serde_json::json!(["s3:GetObject", "*"]), "*")[0],
            "allows every action (`*`)"
        );
        assert!(critical(serde_json::json!("iam:*"), "*")
            .iter()
            .any(|m| m.contains("admin-equivalent")));
        assert!(
            critical(serde_json::json!("iam:Attach*"), "*")[0].contains("`iam:AttachUserPolicy`")
        );
        assert!(critical(serde_json::json!("sts:AssumeRole"), "*")[0].contains("`sts:AssumeRole`"));
        assert!(critical(
            serde_json::json!("sts:AssumeRole"),
            "arn:aws:iam::123456789012:role/*"
        )[0]
        .contains("admin-equivalent"));
        assert!(critical(serde_json::json!("iam:PassRole"), "*")[0]
            .contains("`iam:PassRole` on every role"));
        // Narrow enough: one role, reads of IAM, a service's every action
        // on one resource.
        assert!(critical(
            serde_json::json!("sts:AssumeRole"),
            "arn:aws:iam::123456789012:role/deploy"
        )
        .is_empty());
        assert!(critical(serde_json::json!(["iam:Get*", "iam:List*"]), "*").is_empty());
        assert!(critical(serde_json::json!("s3:*"), "arn:aws:s3:::logs/*").is_empty());
        // Everything but a few actions, everywhere.
        let not_action = r#"{"Statement":{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}}"#;
        assert!(check(not_action).unwrap()[0]
            .message
            .contains("admin-equivalent"));
    }
}
