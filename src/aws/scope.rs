//! What a repository's `aws` section allows, checked against facts read
//! from AWS (a resource's tags come from AWS, never from the model).

use globset::Glob;

use super::read::Instance;
use crate::domain::RiskTier;
use crate::repo_config::AwsScope;

/// Why a resource or a region is out of scope, said to people and to the
/// model.
pub type Refusal = String;

/// The refusal for a repository without an `aws` section.
pub fn no_scope() -> Refusal {
    format!(
        "this repository's `{}` has no `aws` section, so no AWS tool may run for it",
        crate::repo_config::PATH
    )
}

/// The credentials are in the account `aws.account` names, when it names
/// one: `actual` is what STS says they are in.
pub fn account(scope: &AwsScope, actual: &str) -> Result<(), Refusal> {
    if let Some(wanted) = scope.account.as_ref().filter(|w| *w != actual) {
        return Err(format!(
            "the bot's AWS credentials are in account {actual}, not in this repository's `aws.account` ({wanted})"
        ));
    }
    match &scope.bounds {
        Some(b) if !b.accounts.is_empty() && !b.accounts.iter().any(|a| a == actual) => {
            Err(format!(
                "the bot's AWS credentials are in account {actual}, which this server's ceiling for this repository does not allow ({})",
                b.accounts.join(", ")
            ))
        }
        _ => Ok(()),
    }
}

/// Check the account of `aws` against the scope (one STS call, only when
/// the scope or its ceiling names an account).
pub async fn check_account(aws: &super::Aws, scope: &AwsScope) -> Result<(), Refusal> {
    let ceiling_names_one = scope
        .bounds
        .as_ref()
        .is_some_and(|b| !b.accounts.is_empty());
    if scope.account.is_none() && !ceiling_names_one {
        return Ok(());
    }
    let actual = super::read::account(aws)
        .await
        .map_err(|e| format!("cannot tell which account the credentials are in: {e}"))?;
    account(scope, &actual)
}

/// The region may be used.
pub fn region(scope: &AwsScope, region: &str) -> Result<(), Refusal> {
    if scope.regions.iter().any(|r| r == region) {
        Ok(())
    } else {
        Err(format!(
            "region `{region}` is not in this repository's `aws.regions` ({})",
            scope.regions.join(", ")
        ))
    }
}

/// The instance may be touched: its region is allowed and it carries the
/// required tag, as AWS reports it.
pub fn instance(scope: &AwsScope, i: &Instance) -> Result<(), Refusal> {
    region(scope, &i.region)?;
    tagged(scope, &format!("instance `{}`", i.id), &i.tags)
}

/// `what` carries the required tag (when there is one) among `tags`, as
/// AWS reports them.
pub fn tagged(
    scope: &AwsScope,
    what: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), Refusal> {
    match scope.tag() {
        Some((key, value)) if tags.get(key).map(String::as_str) != Some(value) => Err(format!(
            "{what} does not carry the tag `{key}={value}` this repository requires"
        )),
        _ => Ok(()),
    }
}

/// The IAM user may be changed: the scope names a required tag and the
/// user carries it, as IAM reports it. Without a required tag no IAM user
/// is in scope: IAM is global, and every change to it is destructive.
pub fn user(
    scope: &AwsScope,
    name: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), Refusal> {
    iam(scope)?;
    tagged(scope, &format!("IAM user `{name}`"), tags)
}

/// IAM may be read or changed at all: only with a required tag, which
/// decides which users and roles are this repository's.
pub fn iam(scope: &AwsScope) -> Result<(), Refusal> {
    if let Some(b) = scope.bounds.as_ref().filter(|b| !b.iam) {
        return Err(format!(
            "IAM is off for this repository under this server's ceiling (`{}`)",
            b.pattern
        ));
    }
    match scope.tag() {
        Some(_) => Ok(()),
        None => Err(
            "IAM needs this repository's `aws.required_tag`: only IAM users and roles that carry it may be read or changed"
                .into(),
        ),
    }
}

/// A plan whose tier is `tier` may be made and applied here: the
/// operator's ceiling allows that tier.
pub fn tier(scope: &AwsScope, tier: RiskTier) -> Result<(), Refusal> {
    match &scope.bounds {
        Some(b) if tier > b.max_tier => Err(format!(
            "it is {}, and this server's ceiling for this repository (`{}`) allows plans up to {} only",
            tier.as_str(),
            b.pattern,
            b.max_tier.as_str()
        )),
        _ => Ok(()),
    }
}

fn matches_any(globs: &[String], name: &str) -> bool {
    globs
        .iter()
        .filter_map(|g| Glob::new(g).ok())
        .any(|g| g.compile_matcher().is_match(name))
}

/// The bucket may be read or changed: its name matches `aws.buckets`, and
/// the operator's ceiling when there is one.
pub fn bucket(scope: &AwsScope, name: &str) -> Result<(), Refusal> {
    let allowed = matches_any(&scope.buckets, name);
    if let Some(b) = scope
        .bounds
        .as_ref()
        .filter(|b| !matches_any(&b.buckets, name))
    {
        return Err(format!(
            "bucket `{name}` is outside this server's ceiling for this repository (`{}`)",
            b.pattern
        ));
    }
    if let Some(b) = scope
        .bounds
        .as_ref()
        .filter(|b| matches_any(&b.claimed, name))
    {
        return Err(format!(
            "bucket `{name}` belongs to a more specific entry of this server's policy than this repository's (`{}`)",
            b.pattern
        ));
    }
    if allowed {
        Ok(())
    } else if scope.buckets.is_empty() {
        Err("this repository's `aws.buckets` names no bucket".into())
    } else {
        Err(format!(
            "bucket `{name}` does not match this repository's `aws.buckets` ({})",
            scope.buckets.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn scope() -> AwsScope {
        crate::repo_config::RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  required_tag: agentic:repo=acme/infra\n  buckets: ['acme-*']\n",
        )
        .unwrap()
        .aws
        .unwrap()
    }

    fn instance_in(region: &str, tags: &[(&str, &str)]) -> Instance {
        Instance {
            id: "i-1".into(),
            instance_type: "t3.micro".into(),
            state: "running".into(),
            region: region.into(),
            availability_zone: format!("{region}a"),
            image_id: "ami-1".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn instances_need_an_allowed_region_and_the_tag_from_aws() {
        let s = scope();
        assert!(instance(
            &s,
            &instance_in("eu-west-1", &[("agentic:repo", "acme/infra")])
        )
        .is_ok());
        let e = instance(
            &s,
            &instance_in("eu-west-1", &[("agentic:repo", "other/repo")]),
        )
        .unwrap_err();
        assert!(
            e.contains("does not carry the tag `agentic:repo=acme/infra`"),
            "{e}"
        );
        let e = instance(
            &s,
            &instance_in("us-west-2", &[("agentic:repo", "acme/infra")]),
        )
        .unwrap_err();
        assert!(e.contains("region `us-west-2` is not in"), "{e}");
    }

    #[test]
    fn buckets_match_the_globs() {
        let s = scope();
        assert!(bucket(&s, "acme-logs").is_ok());
        assert!(bucket(&s, "globex-logs")
            .unwrap_err()
            .contains("does not match"));
        let none = AwsScope {
            buckets: vec![],
            ..s
        };
        assert!(bucket(&none, "acme-logs")
            .unwrap_err()
            .contains("names no bucket"));
    }
}
