//! The AWS read tools the model may call (risk tier `read`, declared here
//! next to each tool), offered only to conversations about a repository
//! with an `aws` section and checked against it at every call (without
//! one, every call is refused); a region outside
//! `aws.regions` or a bucket outside `aws.buckets` is refused with the
//! reason; instances are listed only with the required tag, as AWS reports
//! it. What AWS returns (names, tags) is other people's text and reaches
//! the model fenced.

use serde_json::{json, Value};

use super::read::{self, InstanceFilter};
use super::{scope, Aws};
use crate::agent::tools::{RiskTier, Subject, Tool, ToolFuture};
use crate::repo_config::AwsScope;

/// AWS for one conversation: the clients and the repository's scope. A
/// repository without an `aws` section gets none, and so no AWS tool.
#[derive(Clone)]
pub struct AwsAccess {
    pub aws: Aws,
    pub scope: AwsScope,
}

/// A refusal or a failure is the tool's answer to the model, worded in
/// full (`refused: …`, `error: …`): neither is an error of the loop.
fn answer(result: Result<String, String>) -> crate::agent::tools::ToolResult {
    Ok(result.unwrap_or_else(|message| message))
}

/// The scope a tool call may use, or why there is none.
fn access(s: &Subject) -> Result<(&Aws, &AwsScope), String> {
    let access = s
        .aws
        .as_ref()
        .ok_or_else(|| format!("refused: {}", scope::no_scope()))?;
    Ok((&access.aws, &access.scope))
}

/// The region an argument names, or the first allowed one; refused when
/// out of scope.
fn region<'a>(scope: &'a AwsScope, args: &'a Value) -> Result<&'a str, String> {
    let region = args["region"]
        .as_str()
        .unwrap_or_else(|| scope.regions[0].as_str());
    scope::region(scope, region).map_err(|e| format!("refused: {e}"))?;
    Ok(region)
}

/// The clients and the bucket an argument names, once the scope allows it.
fn allowed_bucket<'a>(s: &'a Subject, args: &'a Value) -> Result<(&'a Aws, &'a str), String> {
    let (aws, scope) = access(s)?;
    let bucket = args["bucket"]
        .as_str()
        .filter(|b| !b.is_empty())
        .ok_or("error: `bucket` is required")?;
    scope::bucket(scope, bucket).map_err(|e| format!("refused: {e}"))?;
    Ok((aws, bucket))
}

fn fenced(s: &Subject, label: &'static str, value: &impl serde::Serialize) -> String {
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
        Box::pin(async move {
            answer(
                async {
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
                        scope
                            .required_tag
                            .as_deref()
                            .map(|t| format!(" tagged {t}"))
                            .unwrap_or_default(),
                        fenced(s, "EC2 instances as AWS reports them", &mine)
                    ))
                }
                .await,
            )
        })
    }
}

impl Tool for SecurityGroups {
    fn name(&self) -> &'static str {
        "aws_security_groups"
    }
    fn description(&self) -> &'static str {
        "List the security groups of an allowed region, with the ingress rules open to the whole internet."
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
        Box::pin(async move {
            answer(
                async {
                    let (aws, scope) = access(s)?;
                    let region = region(scope, &args)?;
                    let groups = read::security_groups(aws, Some(region))
                        .await
                        .map_err(|e| format!("error: {e}"))?;
                    Ok(format!(
                        "{} security group(s) in {region}:\n{}",
                        groups.len(),
                        fenced(s, "security groups as AWS reports them", &groups)
                    ))
                }
                .await,
            )
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
        json!({ "type": "object", "properties": {}, "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, _args: Value) -> ToolFuture<'a> {
        Box::pin(async move {
            answer(
                async {
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
                }
                .await,
            )
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
        json!({ "type": "object", "properties": { "bucket": { "type": "string" } },
                "required": ["bucket"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        Box::pin(async move {
            answer(
                async {
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
                }
                .await,
            )
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
        json!({ "type": "object", "properties": { "bucket": { "type": "string" } },
                "required": ["bucket"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        Box::pin(async move {
            answer(
                async {
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
                }
                .await,
            )
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
        Box::pin(async move {
            answer(
                async {
                    // No AWS call, but an AWS tool all the same: the scope rule holds.
                    access(s)?;
                    let document = args["document"]
                        .as_str()
                        .ok_or("error: `document` is required")?;
                    let findings =
                        super::policy::check(document).map_err(|e| format!("error: {e}"))?;
                    Ok(if findings.is_empty() {
                        "No findings.".to_string()
                    } else {
                        serde_json::to_string_pretty(&findings).unwrap_or_default()
                    })
                }
                .await,
            )
        })
    }
}

/// The AWS read tools, for a registry.
pub fn read_tools() -> Vec<Box<dyn Tool>> {
    vec![
        Box::new(ListInstances),
        Box::new(SecurityGroups),
        Box::new(ListBuckets),
        Box::new(BucketPolicy),
        Box::new(PublicAccessBlock),
        Box::new(CheckPolicy),
    ]
}
