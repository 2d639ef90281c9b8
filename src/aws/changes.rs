//! The rest of the changes a plan may propose, each with its risk tier
//! declared here next to the tool (a step may come out more severe than
//! its tool, never less):
//!
//! - EC2: tagging instances (`write`, or `destructive` when it changes a
//!   tag the instance has); opening a security group's ingress (`write`,
//!   or `destructive` when the plan opens the group to a `/16` or `/48` of
//!   addresses or more, by one rule or several: `super::ingress`).
//! - S3: deleting an object (`destructive`); replacing a bucket's policy
//!   (`write`, or `destructive` when the policy reaches outside the
//!   account or can lock it out: `policy::reaches_outside`).
//! - IAM: attaching or detaching a user's managed policy, deactivating or
//!   deleting a user's access key (all `destructive`), only on users that
//!   carry the repository's required tag; an admin-equivalent policy is
//!   not attached at all unless `aws.attachable_policies` names it.
//!
//! As for the other change tools, a call only proposes plan steps, checked
//! against the scope with live state; nothing runs until people approve.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::action::{
    AccessKeyArgs, AwsAction, BucketPolicyArgs, ObjectArgs, Outside, PlanStep, TagArgs,
    UserPolicyArgs,
};
use super::tools::{access, allowed_bucket, not_here, region, PLAN_STEP_TAG};
use super::{read, scope, Aws};
use crate::agent::tools::{ProposeFuture, Subject, Tool, ToolFuture};
use crate::domain::RiskTier;
use crate::repo_config::AwsScope;

/// A required string argument.
fn text<'a>(args: &'a Value, name: &str) -> Result<&'a str, String> {
    args[name]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("error: `{name}` is required"))
}

/// Tagging instances (`write`; `destructive` for an instance on which it
/// changes the value of a key it has: [`tag_tier`]). The repository's
/// required tag and the plan-step tag may not be set this way: they
/// decide what is in scope. (EC2's `CreateTags` only adds or overwrites;
/// no tool removes a tag.)
pub struct TagInstances;

/// Check tags a plan would set; the refusal says which one and why.
pub fn check_tags(scope: &AwsScope, tags: &Value) -> Result<Vec<(String, String)>, String> {
    let map = tags
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or("`tags` must be an object of at least one key and value")?;
    if map.len() > 50 {
        return Err("at most 50 tags at once".into());
    }
    let mut out = Vec::new();
    for (key, value) in map {
        let value = value
            .as_str()
            .ok_or_else(|| format!("the value of tag `{key}` must be a string"))?;
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(format!(
                "tag `{key}`: keys are 1–128 characters, values at most 256"
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!("tag `{key}`: the `aws:` prefix is AWS's own"));
        }
        if key == PLAN_STEP_TAG || scope.tag().is_some_and(|(k, _)| k == key) {
            return Err(format!(
                "tag `{key}` decides what this repository may touch; it is not changed by a plan"
            ));
        }
        out.push((key.clone(), value.to_string()));
    }
    Ok(out)
}

/// The tier of setting `tags` on a resource that has `live` tags now:
/// adding a key is a `write`; giving a key it already has another value is
/// `destructive`, since access policies and automation key on tags (an
/// `ec2:ResourceTag/team` condition, a backup or patching selector), so a
/// new value can hand the resource to other people. Setting a key to the
/// value it has changes nothing. EC2 keys are case-sensitive, but IAM
/// condition keys (the tag key in `aws:ResourceTag/…` included) are not,
/// so `Team` beside `team` counts as the same key here.
pub fn tag_tier(live: &BTreeMap<String, String>, tags: &[(String, String)]) -> RiskTier {
    let changes = |(key, value): &(String, String)| {
        live.iter()
            .any(|(k, old)| k.eq_ignore_ascii_case(key) && old != value)
    };
    if tags.iter().any(changes) {
        RiskTier::Destructive
    } else {
        RiskTier::Write
    }
}

impl Tool for TagInstances {
    fn name(&self) -> &'static str {
        "aws_tag_instances"
    }
    fn description(&self) -> &'static str {
        "Propose setting tags on instances (a plan step per instance; nothing runs until people approve). Changing the value of a tag an instance already has is destructive and needs a second person's approval; adding a new key is a write."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "instance_ids": { "type": "array", "items": { "type": "string" } },
            "tags": { "type": "object", "additionalProperties": { "type": "string" } },
            "region": { "type": "string", "description": "Default: the first allowed region" }
        }, "required": ["instance_ids", "tags"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Write
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(&'a self, s: &'a Subject, args: Value) -> ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, scope) = access(s)?;
            let region = region(scope, &args)?;
            let tags = check_tags(scope, &args["tags"]).map_err(|e| format!("refused: {e}"))?;
            let ids = super::tools::instance_ids(&args)?;
            let approved: BTreeMap<String, String> = tags.iter().cloned().collect();
            let mut steps = super::tools::instance_steps_by(
                aws,
                scope,
                region,
                &ids,
                AwsAction::CreateTags,
                |instance| tag_tier(&instance.tags, &tags),
            )
            .await?;
            for step in &mut steps {
                step.arguments = serde_json::to_value(TagArgs {
                    instance_ids: vec![step.resource.clone()],
                    tags: approved.clone(),
                })
                .expect("tags serialise");
            }
            Ok(steps)
        })
    }
}

/// One ingress rule a plan would add, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// Read strictly: as written is as printed (`super::ingress::parse`).
    pub net: IpNet,
    pub description: Option<String>,
}

impl Ingress {
    /// Read and check the rule in `args`.
    pub fn from_args(args: &Value) -> Result<Ingress, String> {
        let protocol = text(args, "protocol")?.to_ascii_lowercase();
        let port = |name: &str| -> Result<i32, String> {
            args[name]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| format!("error: `{name}` must be a whole number"))
        };
        let (from_port, to_port) = match protocol.as_str() {
            "tcp" | "udp" => {
                let (from, to) = (port("from_port")?, port("to_port")?);
                if !(0..=65535).contains(&from) || !(from..=65535).contains(&to) {
                    return Err(format!(
                        "error: ports {from}–{to} are not a range within 0–65535"
                    ));
                }
                (from, to)
            }
            // ICMP type and code, or every protocol: AWS takes -1 for "all".
            "icmp" | "-1" => (
                port("from_port").unwrap_or(-1),
                port("to_port").unwrap_or(-1),
            ),
            other => {
                return Err(format!(
                    "error: protocol `{other}` is not one of tcp, udp, icmp, -1 (all)"
                ))
            }
        };
        let cidr = text(args, "cidr")?;
        let net = super::ingress::parse(cidr)?;
        Ok(Ingress {
            protocol,
            from_port,
            to_port,
            net,
            description: args["description"].as_str().map(str::to_string),
        })
    }

    /// Open to the whole internet: `0.0.0.0/0` or `::/0`.
    pub fn from_everywhere(&self) -> bool {
        super::ingress::everywhere(&self.net)
    }

    /// Wide enough on its own to be destructive (`super::ingress::wide`).
    pub fn wide(&self) -> bool {
        super::ingress::wide(&[self.net])
    }

    pub fn is_ipv6(&self) -> bool {
        matches!(self.net, IpNet::V6(_))
    }

    pub fn to_args(&self, group: &str) -> Value {
        json!({ "group_id": group, "protocol": self.protocol, "from_port": self.from_port,
                "to_port": self.to_port, "cidr": self.net.to_string(), "description": self.description })
    }
}

/// The security group `id` in `region` may be changed: it exists there,
/// and carries the required tag as AWS reports it.
pub async fn allowed_group(
    aws: &Aws,
    scope: &AwsScope,
    region: &str,
    id: &str,
) -> Result<read::SecurityGroup, String> {
    scope::region(scope, region)?;
    let group = read::security_group(aws, region, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("security group `{id}` does not exist in {region}"))?;
    scope::tagged(scope, &format!("security group `{id}`"), &group.tags)?;
    Ok(group)
}

/// Opening a security group's ingress (`write`; `destructive` when the
/// plan opens the group to a `/16` or a `/48` of addresses or more, by one
/// rule or several: `super::ingress`).
pub struct AuthorizeIngress;

impl Tool for AuthorizeIngress {
    fn name(&self) -> &'static str {
        "aws_authorize_ingress"
    }
    fn description(&self) -> &'static str {
        "Propose adding an ingress rule to a security group (a plan step; the CIDR block must be written canonically, like 10.0.0.0/24. Opening a group to 65,536 IPv4 or 2^80 IPv6 addresses or more, by one rule or several in the plan, is destructive and needs a second person's approval)."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "group_id": { "type": "string" },
            "protocol": { "type": "string", "description": "tcp, udp, icmp or -1 (all)" },
            "from_port": { "type": "integer" },
            "to_port": { "type": "integer" },
            "cidr": { "type": "string", "description": "IPv4 or IPv6 CIDR block" },
            "description": { "type": "string" },
            "region": { "type": "string", "description": "Default: the first allowed region" }
        }, "required": ["group_id", "protocol", "cidr"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Write
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(&'a self, s: &'a Subject, args: Value) -> ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, scope) = access(s)?;
            let region = region(scope, &args)?;
            let rule = Ingress::from_args(&args)?;
            let group = text(&args, "group_id")?;
            allowed_group(aws, scope, region, group)
                .await
                .map_err(|e| format!("refused: {e}"))?;
            Ok(vec![PlanStep {
                service: AwsAction::AuthorizeSecurityGroupIngress
                    .service()
                    .to_string(),
                action: AwsAction::AuthorizeSecurityGroupIngress,
                region: Some(region.to_string()),
                resource: group.to_string(),
                arguments: rule.to_args(group),
                // Wide by itself; a plan's steps on one group are also
                // counted together when each is recorded.
                risk: if rule.wide() {
                    RiskTier::Destructive
                } else {
                    RiskTier::Write
                },
            }])
        })
    }
}

/// Deleting an object (`destructive`).
pub struct DeleteObject;

impl Tool for DeleteObject {
    fn name(&self) -> &'static str {
        "aws_delete_object"
    }
    fn description(&self) -> &'static str {
        "Propose deleting an object from an allowed bucket (a plan step; needs a second person's approval)."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "bucket": { "type": "string" }, "key": { "type": "string" }
        }, "required": ["bucket", "key"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Destructive
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(&'a self, s: &'a Subject, args: Value) -> ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            let key = args["key"]
                .as_str()
                .filter(|k| !k.is_empty())
                .ok_or("error: `key` is required")?;
            if !read::object_exists(aws, bucket, key)
                .await
                .map_err(|e| format!("error: {e}"))?
            {
                return Err(format!("refused: there is no object `{key}` in `{bucket}`"));
            }
            Ok(vec![PlanStep::new(
                AwsAction::DeleteObject,
                None,
                format!("{bucket}/{key}"),
                &ObjectArgs {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                },
                RiskTier::Destructive,
            )])
        })
    }
}

/// Replacing a bucket's policy (`write`; `destructive` when the new
/// policy reaches principals outside the repository's `aws.account` —
/// everyone, another account, a service acting for any account — or can
/// lock the account out of the bucket, by `policy::reaches_outside`).
pub struct PutBucketPolicy;

impl Tool for PutBucketPolicy {
    fn name(&self) -> &'static str {
        "aws_put_bucket_policy"
    }
    fn description(&self) -> &'static str {
        "Propose replacing an allowed bucket's policy with a document (a plan step; a policy that reaches principals outside this repository's AWS account, or denies everyone the right to change the policy, is destructive and needs a second person's approval)."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "bucket": { "type": "string" },
            "policy": { "type": "string", "description": "The whole policy document, as JSON" }
        }, "required": ["bucket", "policy"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Write
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(&'a self, s: &'a Subject, args: Value) -> ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            let (_, scope) = access(s)?;
            let document = text(&args, "policy")?;
            let outside = super::policy::reaches_outside(document, scope.account.as_deref())
                .map_err(|e| format!("error: the policy is not a policy document: {e}"))?;
            if !read::buckets(aws)
                .await
                .map_err(|e| format!("error: {e}"))?
                .iter()
                .any(|b| b == bucket)
            {
                return Err(format!("refused: bucket `{bucket}` does not exist"));
            }
            // Stored compact, so the hash and the posted plan show exactly
            // what will be sent.
            let compact = serde_json::from_str::<Value>(document)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| document.to_string());
            // Why it is destructive, shown with the plan to the people
            // who approve it.
            let risk = if outside.is_empty() {
                RiskTier::Write
            } else {
                RiskTier::Destructive
            };
            let args = BucketPolicyArgs {
                bucket: Some(bucket.to_string()),
                policy: compact,
                reaches_outside_the_account: (!outside.is_empty()).then_some(Outside::Who(outside)),
            };
            Ok(vec![PlanStep::new(
                AwsAction::PutBucketPolicy,
                None,
                bucket.to_string(),
                &args,
                risk,
            )])
        })
    }
}

/// A change to an IAM user (every one `destructive`), on a user that
/// carries the repository's required tag.
#[derive(Clone, Copy)]
pub struct UserChange {
    name: &'static str,
    /// The IAM API action (`AttachUserPolicy`).
    pub action: AwsAction,
    /// The argument naming what is changed: `policy_arn` or `access_key`.
    what: &'static str,
    description: &'static str,
}

pub const USER_CHANGES: [UserChange; 4] = [
    UserChange {
        name: "aws_attach_user_policy",
        action: AwsAction::AttachUserPolicy,
        what: "policy_arn",
        description: "Propose attaching a managed policy to an IAM user (a plan step; destructive, needs a second person's approval). An admin-equivalent policy is refused unless the repository allows its ARN.",
    },
    UserChange {
        name: "aws_detach_user_policy",
        action: AwsAction::DetachUserPolicy,
        what: "policy_arn",
        description: "Propose detaching a managed policy from an IAM user (a plan step; destructive, needs a second person's approval).",
    },
    UserChange {
        name: "aws_deactivate_access_key",
        action: AwsAction::UpdateAccessKey,
        what: "access_key",
        description: "Propose deactivating an IAM user's access key (a plan step; destructive, needs a second person's approval).",
    },
    UserChange {
        name: "aws_delete_access_key",
        action: AwsAction::DeleteAccessKey,
        what: "access_key",
        description: "Propose deleting an IAM user's access key (a plan step; destructive, needs a second person's approval).",
    },
];

/// The last four characters of an access key's id, which name it to
/// people and to the model (whole ids are redacted everywhere).
pub fn key_suffix(id: &str) -> String {
    let start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    id[start..].to_string()
}

/// The one key of `keys` that `given` names: its whole id, or the end of
/// it (at least four characters).
fn pick_key<'a>(keys: &'a [read::AccessKey], given: &str) -> Result<&'a read::AccessKey, String> {
    let given = given.trim_start_matches('…');
    if given.chars().count() < 4 {
        return Err(format!(
            "`{given}` is too short to name an access key: give at least its last four characters"
        ));
    }
    let found: Vec<&read::AccessKey> = keys.iter().filter(|k| k.id.ends_with(given)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no access key of this user ends with `{given}`")),
        _ => Err(format!(
            "more than one access key of this user ends with `{given}`; give more of it"
        )),
    }
}

/// Why attaching managed policy `arn` is refused outright, if it is: its
/// default version is admin-equivalent (a critical finding of
/// `policy::check`: every action, `iam:PassRole` or another way to grant
/// oneself more on every resource, everyone as principal) or cannot be
/// read as a policy, and the repository's `aws.attachable_policies` does
/// not name it (exact ARN). Two people approving is not enough for that:
/// the repository's owners must have said so in its default branch.
pub fn attach_refusal(
    scope: &AwsScope,
    arn: &str,
    checked: &Result<Vec<super::policy::PolicyFinding>, String>,
) -> Option<String> {
    if scope.attachable_policies.iter().any(|a| a == arn) {
        return None;
    }
    let why = match checked {
        Err(e) => format!("its document cannot be checked ({e})"),
        Ok(findings) => findings
            .iter()
            .find(|f| f.severity == crate::domain::Severity::Critical)?
            .message
            .clone(),
    };
    Some(format!(
        "refused: `{arn}` is admin-equivalent or cannot be checked ({why}); it may be attached only when this repository's `aws.attachable_policies` in `{}` names its ARN",
        crate::repo_config::PATH
    ))
}

/// The user `name` may be changed now: it exists and carries the required
/// tag, as IAM reports it; its ARN.
pub async fn allowed_user(aws: &Aws, scope: &AwsScope, name: &str) -> Result<String, String> {
    // Said before asking IAM anything.
    scope::iam(scope)?;
    let (user, tags) = read::user(aws, name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no IAM user `{name}`"))?;
    scope::user(scope, name, &tags)?;
    Ok(user.arn)
}

impl Tool for UserChange {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn parameters(&self) -> Value {
        let what = if self.what == "access_key" {
            "The end of the key's id, as aws_iam_users shows it (at least 4 characters), or the whole id"
        } else {
            "The managed policy's ARN"
        };
        json!({ "type": "object", "properties": {
            "user": { "type": "string", "description": "The IAM user's name" },
            (self.what): { "type": "string", "description": what }
        }, "required": ["user", self.what], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Destructive
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(&'a self, s: &'a Subject, args: Value) -> ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, scope) = access(s)?;
            let user = text(&args, "user")?;
            let target = text(&args, self.what)?;
            let arn = allowed_user(aws, scope, user)
                .await
                .map_err(|e| format!("refused: {e}"))?;
            let fail = |e: super::AwsError| format!("error: {e}");
            let user_policy = |policy_version, policy_findings| UserPolicyArgs {
                user: Some(user.to_string()),
                user_arn: Some(arn.to_string()),
                policy_arn: target.to_string(),
                policy_version,
                policy_findings,
            };
            let arguments = match self.action {
                AwsAction::AttachUserPolicy => {
                    let version = read::policy_version(aws, target)
                        .await
                        .map_err(fail)?
                        .ok_or_else(|| format!("refused: there is no managed policy `{target}`"))?;
                    let checked = super::policy::check(&version.document);
                    if let Some(refusal) = attach_refusal(scope, target, &checked) {
                        return Err(refusal);
                    }
                    // What the user would be given, as our least-privilege
                    // check sees it: shown to the people who approve.
                    let findings: Vec<String> = checked
                        .unwrap_or_default()
                        .iter()
                        .map(|f| format!("{}: {}", f.severity.name(), f.message))
                        .collect();
                    // The version checked is the version approved: the
                    // apply refuses if the default version changed since.
                    serde_json::to_value(user_policy(Some(version.id), Some(findings)))
                }
                AwsAction::DetachUserPolicy => {
                    if !read::attached_policies(aws, &read::Holder::User(user.to_string()))
                        .await
                        .map_err(fail)?
                        .iter()
                        .any(|p| p.arn == target)
                    {
                        return Err(format!("refused: `{target}` is not attached to `{user}`"));
                    }
                    serde_json::to_value(user_policy(None, None))
                }
                _ => {
                    let keys = read::access_keys(aws, user).await.map_err(fail)?;
                    let key = pick_key(&keys, target).map_err(|e| format!("refused: {e}"))?;
                    // The whole id is what the call needs; people see its end.
                    serde_json::to_value(AccessKeyArgs {
                        user: Some(user.to_string()),
                        user_arn: Some(arn.to_string()),
                        access_key: Some(format!("…{}", key_suffix(&key.id))),
                        access_key_id: key.id.clone(),
                    })
                }
            }
            .expect("step arguments serialise");
            Ok(vec![PlanStep {
                service: self.action.service().to_string(),
                action: self.action,
                region: None,
                resource: user.to_string(),
                arguments,
                risk: RiskTier::Destructive,
            }])
        })
    }
}

/// The change tools of this module, for a planning conversation.
pub fn tools() -> Vec<Box<dyn Tool>> {
    let mut tools: Vec<Box<dyn Tool>> = vec![
        Box::new(TagInstances),
        Box::new(AuthorizeIngress),
        Box::new(DeleteObject),
        Box::new(PutBucketPolicy),
    ];
    tools.extend(USER_CHANGES.iter().map(|c| Box::new(*c) as Box<dyn Tool>));
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> AwsScope {
        crate::repo_config::RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  required_tag: agentic:repo=acme/infra\n",
        )
        .unwrap()
        .aws
        .unwrap()
    }

    #[test]
    fn an_ingress_is_from_everywhere_only_as_0_0_0_0_or_colons_slash_zero() {
        let rule = |cidr: &str| {
            Ingress::from_args(
                &json!({ "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": cidr }),
            )
        };
        assert!(rule("0.0.0.0/0").unwrap().from_everywhere());
        assert!(rule("::/0").unwrap().from_everywhere());
        // Any other `/0` has host bits set: refused, not guessed at.
        assert!(rule("10.1.2.3/0").unwrap_err().contains("host bits"));
        assert!(rule("0.0.0.0/00").unwrap_err().contains("canonically"));
        assert!(!rule("10.0.0.0/8").unwrap().from_everywhere());
        assert!(rule("10.0.0.0/8").unwrap().wide());
        assert!(!rule("10.0.0.0/24").unwrap().wide());
        assert!(rule("2001:db8::/32").unwrap().is_ipv6());
        assert!(rule("10.0.0.0/33").unwrap_err().contains("prefix"));
        assert!(rule("everywhere").unwrap_err().contains("not a CIDR"));
        let ports = Ingress::from_args(
            &json!({ "protocol": "tcp", "from_port": 443, "to_port": 22, "cidr": "10.0.0.0/8" }),
        );
        assert!(ports.unwrap_err().contains("not a range"));
        let all = Ingress::from_args(&json!({ "protocol": "-1", "cidr": "10.0.0.0/8" })).unwrap();
        assert_eq!((all.from_port, all.to_port), (-1, -1));
        assert!(
            Ingress::from_args(&json!({ "protocol": "gre", "cidr": "10.0.0.0/8" }))
                .unwrap_err()
                .contains("`gre`")
        );
    }

    #[test]
    fn tags_that_decide_the_scope_are_not_set_by_a_plan() {
        let s = scope();
        assert_eq!(
            check_tags(&s, &json!({ "owner": "platform" })).unwrap(),
            [("owner".to_string(), "platform".to_string())]
        );
        assert!(check_tags(&s, &json!({ "agentic:repo": "other/repo" }))
            .unwrap_err()
            .contains("decides what this repository may touch"));
        assert!(check_tags(&s, &json!({ PLAN_STEP_TAG: "x" })).is_err());
        assert!(check_tags(&s, &json!({ "aws:cloudformation:stack": "x" }))
            .unwrap_err()
            .contains("AWS's own"));
        assert!(check_tags(&s, &json!({})).is_err());
        assert!(check_tags(&s, &json!({ "n": 1 })).is_err());
    }

    #[test]
    fn an_access_key_is_named_by_the_end_of_its_id() {
        let key = |id: &str| read::AccessKey {
            id: id.into(),
            status: "Active".into(),
            created: String::new(),
        };
        let keys = [key("AKIAAAAAAAAAAAAA1234"), key("AKIABBBBBBBBBBBB5234")];
        assert_eq!(key_suffix(&keys[0].id), "1234");
        assert_eq!(pick_key(&keys, "…1234").unwrap().id, keys[0].id);
        assert_eq!(pick_key(&keys, &keys[1].id).unwrap().id, keys[1].id);
        assert!(pick_key(&keys, "234").unwrap_err().contains("too short"));
        assert!(pick_key(&keys, "9999")
            .unwrap_err()
            .contains("no access key"));
        let twins = [key("AKIAAAAAAAAAAAAA1234"), key("AKIACCCCCCCCCCCC1234")];
        assert!(pick_key(&twins, "1234")
            .unwrap_err()
            .contains("more than one"));
    }

    #[test]
    fn no_iam_user_is_in_scope_without_a_required_tag() {
        let none = AwsScope {
            required_tag: None,
            ..scope()
        };
        assert!(scope::user(&none, "ci", &Default::default())
            .unwrap_err()
            .contains("IAM needs this repository's `aws.required_tag`"));
        let tags = [("agentic:repo".to_string(), "acme/infra".to_string())]
            .into_iter()
            .collect();
        assert!(scope::user(&scope(), "ci", &tags).is_ok());
        assert!(scope::user(&scope(), "ci", &Default::default())
            .unwrap_err()
            .contains("IAM user `ci` does not carry"));
    }

    #[test]
    fn changing_a_tag_the_resource_has_is_destructive_and_adding_one_is_not() {
        let live: BTreeMap<String, String> = [("team", "payments"), ("env", "prod")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let set = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(tag_tier(&live, &set(&[("owner", "me")])), RiskTier::Write);
        assert_eq!(tag_tier(&live, &set(&[("env", "prod")])), RiskTier::Write);
        assert_eq!(
            tag_tier(&live, &set(&[("team", "attackers")])),
            RiskTier::Destructive
        );
        assert_eq!(tag_tier(&live, &set(&[("env", "")])), RiskTier::Destructive);
        assert_eq!(
            tag_tier(&live, &set(&[("owner", "me"), ("env", "dev")])),
            RiskTier::Destructive
        );
        // EC2 keeps `Team` beside `team`, but IAM conditions on
        // `aws:ResourceTag/team` do not tell them apart.
        assert_eq!(
            tag_tier(&live, &set(&[("Team", "attackers")])),
            RiskTier::Destructive
        );
        assert_eq!(tag_tier(&live, &set(&[("ENV", "prod")])), RiskTier::Write);
    }

    #[test]
    fn an_admin_equivalent_policy_is_refused_unless_the_repository_names_it() {
        let admin = super::super::policy::check(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        );
        let narrow = super::super::policy::check(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        );
        let arn = "arn:aws:iam::123456789012:policy/Admin";
        let refusal = attach_refusal(&scope(), arn, &admin).unwrap();
        assert!(refusal.starts_with(&format!("refused: `{arn}` is admin-equivalent")));
        assert!(refusal.contains("allows every action (`*`)"), "{refusal}");
        assert!(refusal.contains("`aws.attachable_policies`"), "{refusal}");
        assert_eq!(attach_refusal(&scope(), arn, &narrow), None);
        // A document we cannot check is refused as well.
        let unreadable = Err("not JSON".to_string());
        assert!(attach_refusal(&scope(), arn, &unreadable)
            .unwrap()
            .contains("cannot be checked (not JSON)"));
        // Named by its exact ARN: allowed; another ARN is not.
        let listed = AwsScope {
            attachable_policies: vec![arn.to_string()],
            ..scope()
        };
        assert_eq!(attach_refusal(&listed, arn, &admin), None);
        assert_eq!(attach_refusal(&listed, arn, &unreadable), None);
        assert!(
            attach_refusal(&listed, "arn:aws:iam::123456789012:policy/admin", &admin).is_some()
        );
    }
}
