//! The AWS read tools the model may call (risk tier `read`, declared here
//! next to each tool), offered only to conversations about a repository
//! with an `aws` section and checked against it at every call (without
//! one, every call is refused); a region outside
//! `aws.regions` or a bucket outside `aws.buckets` is refused with the
//! reason; instances, security groups and images are listed only with the
//! required tag, as AWS reports it. What AWS returns (names, tags) is
//! other people's text and reaches the model fenced.

use super::action::{AwsAction, BucketArgs, InstanceArgs, LaunchArgs, PlanStep};
use serde_json::{json, Value};

use super::read::{self, InstanceFilter};
use super::{scope, Aws};
use crate::agent::tools::{Subject, Tool, ToolFuture};
use crate::domain::RiskTier;
use crate::repo_config::AwsScope;

/// A read tool's call: a refusal or a failure is the tool's answer to
/// the model, worded in full (`refused: …`, `error: …`); neither is an
/// error of the loop.
pub(super) fn reply<'a>(
    work: impl std::future::Future<Output = Result<String, String>> + Send + 'a,
) -> ToolFuture<'a> {
    Box::pin(async move { Ok(work.await.unwrap_or_else(|message| message)) })
}

/// The arguments of a tool about one bucket.
pub(super) fn bucket_only() -> Value {
    json!({ "type": "object", "properties": { "bucket": { "type": "string" } },
            "required": ["bucket"], "additionalProperties": false })
}

/// The arguments of a tool that takes none.
pub(super) fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {}, "additionalProperties": false })
}

/// A change tool called outside a plan: changes run only from one.
pub(super) fn not_here<'a>() -> ToolFuture<'a> {
    Box::pin(async { Ok("refused: changes run only from an approved plan".to_string()) })
}

/// The scope a tool call may use, or why there is none.
pub(super) fn access(s: &Subject) -> Result<(&Aws, &AwsScope), String> {
    let access = s
        .aws
        .as_ref()
        .ok_or_else(|| format!("refused: {}", scope::no_scope()))?;
    Ok((&access.aws, &access.scope))
}

/// The region an argument names, or the first allowed one; refused when
/// out of scope.
pub(super) fn region<'a>(scope: &'a AwsScope, args: &'a Value) -> Result<&'a str, String> {
    let region = args["region"]
        .as_str()
        .unwrap_or_else(|| scope.regions[0].as_str());
    scope::region(scope, region).map_err(|e| format!("refused: {e}"))?;
    Ok(region)
}

/// The clients and the bucket an argument names, once the scope allows it.
pub(super) fn allowed_bucket<'a>(
    s: &'a Subject,
    args: &'a Value,
) -> Result<(&'a Aws, &'a str), String> {
    let (aws, scope) = access(s)?;
    let bucket = args["bucket"]
        .as_str()
        .filter(|b| !b.is_empty())
        .ok_or("error: `bucket` is required")?;
    scope::bucket(scope, bucket).map_err(|e| format!("refused: {e}"))?;
    Ok((aws, bucket))
}

/// ` tagged key=value` when the scope requires a tag, for a listing's
/// first line: the model is told what it is not shown.
pub(super) fn tagged_note(scope: &AwsScope) -> String {
    scope
        .required_tag
        .as_deref()
        .map(|t| format!(" tagged {t}"))
        .unwrap_or_default()
}

pub(super) fn fenced(s: &Subject, label: &'static str, value: &impl serde::Serialize) -> String {
    s.fence.wrap(
        label,
        &serde_json::to_string_pretty(value).unwrap_or_default(),
    )
}

pub struct ListInstances;
pub struct SecurityGroups;
pub struct ListBuckets;
pub struct BucketPolicy;
pub struct PublicAccessBlock;
pub struct CheckPolicy;

impl Tool for ListInstances {
    fn name(&self) -> &'static str {
        "aws_list_instances"
    }
    fn description(&self) -> &'static str {
        "List this repository's EC2 instances (those with its required tag) in an allowed region: id, type, state, image, tags."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "region": { "type": "string", "description": "Default: the first allowed region" },
            "state": { "type": "string", "description": "pending, running, stopping, stopped, …" }
        }, "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, scope) = access(s)?;
            let region = region(scope, &args)?;
            let filter = InstanceFilter {
                tags: scope
                    .tag()
                    .map(|(k, v)| vec![(k.to_string(), v.to_string())])
                    .unwrap_or_default(),
                state: args["state"].as_str().map(str::to_string),
                ids: vec![],
            };
            let found = read::instances(aws, Some(region), &filter)
                .await
                .map_err(|e| format!("error: {e}"))?;
            // The tag was a filter for AWS; check it again on what came back.
            let mine: Vec<_> = found
                .into_iter()
                .filter(|i| scope::instance(scope, i).is_ok())
                .collect();
            Ok(format!(
                "{} instance(s) in {region}{}:\n{}",
                mine.len(),
                tagged_note(scope),
                fenced(s, "EC2 instances as AWS reports them", &mine)
            ))
        })
    }
}

impl Tool for SecurityGroups {
    fn name(&self) -> &'static str {
        "aws_security_groups"
    }
    fn description(&self) -> &'static str {
        "List this repository's security groups (those with its required tag) in an allowed region, with the ingress rules open to the whole internet."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "region": { "type": "string", "description": "Default: the first allowed region" }
        }, "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, scope) = access(s)?;
            let region = region(scope, &args)?;
            // Only this repository's: those that carry its required tag.
            let groups: Vec<read::SecurityGroup> = read::security_groups(aws, Some(region))
                .await
                .map_err(|e| format!("error: {e}"))?
                .into_iter()
                .filter(|g| scope::tagged(scope, "", &g.tags).is_ok())
                .collect();
            Ok(format!(
                "{} security group(s) in {region}{}:\n{}",
                groups.len(),
                tagged_note(scope),
                fenced(s, "security groups as AWS reports them", &groups)
            ))
        })
    }
}

impl Tool for ListBuckets {
    fn name(&self) -> &'static str {
        "aws_list_buckets"
    }
    fn description(&self) -> &'static str {
        "List the S3 buckets this repository may touch (those matching its `aws.buckets`)."
    }
    fn parameters(&self) -> Value {
        no_arguments()
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, scope) = access(s)?;
            let mine: Vec<String> = read::buckets(aws)
                .await
                .map_err(|e| format!("error: {e}"))?
                .into_iter()
                .filter(|b| scope::bucket(scope, b).is_ok())
                .collect();
            Ok(format!(
                "{} bucket(s):\n{}",
                mine.len(),
                fenced(s, "bucket names", &mine)
            ))
        })
    }
}

impl Tool for BucketPolicy {
    fn name(&self) -> &'static str {
        "aws_bucket_policy"
    }
    fn description(&self) -> &'static str {
        "Get an allowed bucket's policy document, with our least-privilege findings on it."
    }
    fn parameters(&self) -> Value {
        bucket_only()
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            match read::bucket_policy(aws, bucket)
                .await
                .map_err(|e| format!("error: {e}"))?
            {
                None => Ok(format!("`{bucket}` has no bucket policy.")),
                Some(policy) => {
                    let findings = super::policy::check(&policy).unwrap_or_default();
                    Ok(format!(
                        "The policy of `{bucket}`:\n{}\nLeast-privilege findings:\n{}",
                        s.fence.wrap("bucket policy", &policy),
                        serde_json::to_string_pretty(&findings).unwrap_or_default()
                    ))
                }
            }
        })
    }
}

impl Tool for PublicAccessBlock {
    fn name(&self) -> &'static str {
        "aws_public_access_block"
    }
    fn description(&self) -> &'static str {
        "Get an allowed bucket's public-access block (its four settings, or that it has none)."
    }
    fn parameters(&self) -> Value {
        bucket_only()
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            let block = read::public_access_block(aws, bucket)
                .await
                .map_err(|e| format!("error: {e}"))?;
            Ok(match block {
                None => format!("`{bucket}` has no public-access block."),
                Some(b) => format!(
                    "`{bucket}`: {}",
                    serde_json::to_string(&b).unwrap_or_default()
                ),
            })
        })
    }
}

impl Tool for CheckPolicy {
    fn name(&self) -> &'static str {
        "aws_check_policy"
    }
    fn description(&self) -> &'static str {
        "Check an IAM policy document for grants wider than they need be (done locally, without AWS)."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": { "document": { "type": "string", "description": "The policy JSON" } },
                "required": ["document"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            // No AWS call, but an AWS tool all the same: the scope rule holds.
            access(s)?;
            let document = args["document"]
                .as_str()
                .ok_or("error: `document` is required")?;
            let findings = super::policy::check(document).map_err(|e| format!("error: {e}"))?;
            Ok(if findings.is_empty() {
                "No findings.".to_string()
            } else {
                serde_json::to_string_pretty(&findings).unwrap_or_default()
            })
        })
    }
}

/// The read tools of this file (`super::catalog` lists them all).
pub(super) fn own_read_tools() -> Vec<Box<dyn Tool>> {
    vec![
        Box::new(ListInstances),
        Box::new(SecurityGroups),
        Box::new(ListBuckets),
        Box::new(BucketPolicy),
        Box::new(PublicAccessBlock),
        Box::new(CheckPolicy),
    ]
}

/// An EC2 action on instances that changes things. Its risk tier is
/// declared here: start, stop and reboot are `write`; terminate is
/// `destructive`. It is never run from a conversation: a call only proposes
/// plan steps, one per instance, each checked against the scope with the
/// instance's region and tags as AWS reports them.
#[derive(Clone, Copy)]
pub struct InstanceChange {
    name: &'static str,
    /// The EC2 API action (`StopInstances`).
    pub action: AwsAction,
    risk: RiskTier,
    description: &'static str,
}

/// The instance changes a plan may propose.
pub const INSTANCE_CHANGES: [InstanceChange; 4] = [
    InstanceChange {
        name: "aws_start_instances",
        action: AwsAction::StartInstances,
        risk: RiskTier::Write,
        description: "Propose starting stopped instances (a plan step per instance; nothing runs until people approve).",
    },
    InstanceChange {
        name: "aws_stop_instances",
        action: AwsAction::StopInstances,
        risk: RiskTier::Write,
        description: "Propose stopping running instances (a plan step per instance; nothing runs until people approve).",
    },
    InstanceChange {
        name: "aws_reboot_instances",
        action: AwsAction::RebootInstances,
        risk: RiskTier::Write,
        description: "Propose rebooting instances (a plan step per instance; nothing runs until people approve).",
    },
    InstanceChange {
        name: "aws_terminate_instances",
        action: AwsAction::TerminateInstances,
        risk: RiskTier::Destructive,
        description: "Propose terminating instances, which deletes them (a plan step per instance; needs a second person's approval).",
    },
];

impl Tool for InstanceChange {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "instance_ids": { "type": "array", "items": { "type": "string" } },
            "region": { "type": "string", "description": "Default: the first allowed region" }
        }, "required": ["instance_ids"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        self.risk
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(
        &'a self,
        s: &'a Subject,
        args: Value,
    ) -> crate::agent::tools::ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, scope) = access(s)?;
            let region = region(scope, &args)?;
            let ids = instance_ids(&args)?;
            let steps = instance_steps(aws, scope, region, &ids, self.action, self.risk).await?;
            Ok(steps)
        })
    }
}

/// The `instance_ids` a change names (at least one).
pub(super) fn instance_ids(args: &Value) -> Result<Vec<String>, String> {
    let ids: Vec<String> = args["instance_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err("error: `instance_ids` names no instance".into());
    }
    Ok(ids)
}

/// One plan step per instance of `ids`, all or none: each must exist in
/// `region` and be in scope as AWS reports it now; else the refusal.
pub async fn instance_steps(
    aws: &Aws,
    scope: &AwsScope,
    region: &str,
    ids: &[String],
    action: AwsAction,
    risk: RiskTier,
) -> Result<Vec<PlanStep>, String> {
    instance_steps_by(aws, scope, region, ids, action, |_| risk).await
}

/// [`instance_steps`], with each step's tier decided from its instance as
/// AWS reports it now (its tags, say).
pub async fn instance_steps_by(
    aws: &Aws,
    scope: &AwsScope,
    region: &str,
    ids: &[String],
    action: AwsAction,
    risk: impl Fn(&read::Instance) -> RiskTier,
) -> Result<Vec<PlanStep>, String> {
    scope::region(scope, region).map_err(|e| format!("refused: {e}"))?;
    let live = live_instances(aws, region, ids).await?;
    let mut steps = Vec::new();
    for id in ids {
        let Some(instance) = live.iter().find(|i| &i.id == id) else {
            return Err(format!(
                "refused: instance `{id}` does not exist in {region}"
            ));
        };
        scope::instance(scope, instance).map_err(|e| format!("refused: {e}"))?;
        steps.push(PlanStep::new(
            action,
            Some(region.to_string()),
            id.clone(),
            &InstanceArgs {
                instance_ids: vec![id.clone()],
            },
            risk(instance),
        ));
    }
    Ok(steps)
}

/// The instances `ids` in `region` as AWS reports them now; an id AWS
/// does not know is simply absent.
pub async fn live_instances(
    aws: &Aws,
    region: &str,
    ids: &[String],
) -> Result<Vec<read::Instance>, String> {
    let filter = InstanceFilter {
        ids: ids.to_vec(),
        ..InstanceFilter::default()
    };
    match read::instances(aws, Some(region), &filter).await {
        Ok(found) => Ok(found),
        Err(e)
            if e.code
                .as_deref()
                .is_some_and(|c| c.starts_with("InvalidInstanceID")) =>
        {
            // One unknown id fails the whole call: ask one at a time.
            let mut found = Vec::new();
            for id in ids {
                let one = InstanceFilter {
                    ids: vec![id.clone()],
                    ..InstanceFilter::default()
                };
                if let Ok(mut i) = read::instances(aws, Some(region), &one).await {
                    found.append(&mut i);
                }
            }
            Ok(found)
        }
        Err(e) => Err(format!("error: {e}")),
    }
}

/// Launching instances (risk tier `write`): only images in `aws.amis`,
/// types in `aws.instance_types`, at most `aws.max_instances`; the
/// instances get the repository's required tag, so they are in its scope.
pub struct RunInstances;

/// The tag every instance a plan launches carries, whose value names the
/// plan and step: a retried step looks it up before creating anything.
pub const PLAN_STEP_TAG: &str = "agentic:plan-step";

/// Check a launch against the scope: the image, the type, the count.
pub fn check_launch(
    scope: &AwsScope,
    image: &str,
    instance_type: &str,
    count: u32,
) -> Result<(), String> {
    if !scope.amis.iter().any(|a| a == image) {
        return Err(format!(
            "image `{image}` is not in this repository's `aws.amis`"
        ));
    }
    if !scope.instance_types.iter().any(|t| t == instance_type) {
        return Err(format!(
            "instance type `{instance_type}` is not in this repository's `aws.instance_types`"
        ));
    }
    if count == 0 || count > scope.max_instances {
        return Err(format!(
            "{count} instance(s) is more than this repository's `aws.max_instances` ({})",
            scope.max_instances
        ));
    }
    Ok(())
}

impl Tool for RunInstances {
    fn name(&self) -> &'static str {
        "aws_run_instances"
    }
    fn description(&self) -> &'static str {
        "Propose launching instances from an allowed image and type (a plan step; nothing runs until people approve)."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "image_id": { "type": "string" },
            "instance_type": { "type": "string" },
            "count": { "type": "integer", "minimum": 1 },
            "region": { "type": "string", "description": "Default: the first allowed region" }
        }, "required": ["image_id", "instance_type", "count"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Write
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(
        &'a self,
        s: &'a Subject,
        args: Value,
    ) -> crate::agent::tools::ProposeFuture<'a> {
        Box::pin(async move {
            let (_, scope) = access(s)?;
            let region = region(scope, &args)?;
            let image = args["image_id"].as_str().unwrap_or_default();
            let instance_type = args["instance_type"].as_str().unwrap_or_default();
            let count = args["count"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0);
            check_launch(scope, image, instance_type, count)
                .map_err(|e| format!("refused: {e}"))?;
            Ok(vec![PlanStep::new(
                AwsAction::RunInstances,
                Some(region.to_string()),
                format!("{count} × {instance_type} from {image}"),
                &LaunchArgs {
                    image_id: image.to_string(),
                    instance_type: instance_type.to_string(),
                    count,
                },
                RiskTier::Write,
            )])
        })
    }
}

/// An S3 change to one bucket, in scope by `aws.buckets`. Its risk tier is
/// declared here: turning versioning on and blocking public access are
/// `write`; deleting the bucket is `destructive`.
#[derive(Clone, Copy)]
pub struct BucketChange {
    name: &'static str,
    /// The S3 API action (`PutBucketVersioning`).
    pub action: AwsAction,
    risk: RiskTier,
    description: &'static str,
}

pub const BUCKET_CHANGES: [BucketChange; 3] = [
    BucketChange {
        name: "aws_enable_bucket_versioning",
        action: AwsAction::PutBucketVersioning,
        risk: RiskTier::Write,
        description: "Propose turning versioning on for a bucket (a plan step; nothing runs until people approve).",
    },
    BucketChange {
        name: "aws_block_public_access",
        action: AwsAction::PutBucketPublicAccessBlock,
        risk: RiskTier::Write,
        description: "Propose blocking all public access to a bucket (a plan step; nothing runs until people approve).",
    },
    BucketChange {
        name: "aws_delete_bucket",
        action: AwsAction::DeleteBucket,
        risk: RiskTier::Destructive,
        description: "Propose deleting an empty bucket (a plan step; needs a second person's approval).",
    },
];

impl Tool for BucketChange {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn parameters(&self) -> Value {
        bucket_only()
    }
    fn risk(&self) -> RiskTier {
        self.risk
    }
    fn call<'a>(&'a self, _s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        not_here()
    }
    fn propose<'a>(
        &'a self,
        s: &'a Subject,
        args: Value,
    ) -> crate::agent::tools::ProposeFuture<'a> {
        Box::pin(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            // It must exist: a step on nothing is not a plan.
            if !read::buckets(aws)
                .await
                .map_err(|e| format!("error: {e}"))?
                .iter()
                .any(|b| b == bucket)
            {
                return Err(format!("refused: bucket `{bucket}` does not exist"));
            }
            Ok(vec![PlanStep::new(
                self.action,
                None,
                bucket.to_string(),
                &BucketArgs {
                    bucket: Some(bucket.to_string()),
                },
                self.risk,
            )])
        })
    }
}

/// The change tools of this file (`super::catalog` lists them all).
pub(super) fn own_change_tools() -> Vec<Box<dyn Tool>> {
    INSTANCE_CHANGES
        .iter()
        .map(|c| Box::new(*c) as Box<dyn Tool>)
        .chain(std::iter::once(Box::new(RunInstances) as Box<dyn Tool>))
        .chain(BUCKET_CHANGES.iter().map(|c| Box::new(*c) as Box<dyn Tool>))
        .collect()
}
