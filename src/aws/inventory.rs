//! More read tools (risk tier `read`, declared next to each): the images
//! instances may be launched from, a bucket's objects and settings, and
//! the IAM users and roles in scope — those that carry the repository's
//! required tag, as IAM reports it (without a required tag, none: IAM is
//! global to the account). What AWS returns reaches the model fenced.

use serde::Serialize;
use serde_json::{json, Value};

use super::tools::{access, allowed_bucket, bucket_only, fenced, no_arguments, region, reply};
use super::{read, scope, Aws};
use crate::agent::tools::{Subject, Tool, ToolFuture};
use crate::domain::RiskTier;
use crate::repo_config::AwsScope;

pub struct DescribeImages;
pub struct ListObjects;
pub struct BucketSettings;
pub struct IamUsers;
pub struct IamRoles;

impl Tool for DescribeImages {
    fn name(&self) -> &'static str {
        "aws_describe_images"
    }
    fn description(&self) -> &'static str {
        "List this repository's images (AMIs this account owns that carry its required tag) in an allowed region, and which images `aws.amis` allows launching."
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
            let images: Vec<read::Image> = read::images(aws, Some(region))
                .await
                .map_err(|e| format!("error: {e}"))?
                .into_iter()
                .filter(|i| scope::tagged(scope, "", &i.tags).is_ok())
                .collect();
            Ok(format!(
                "{} image(s) in {region}{}; `aws.amis` allows launching: {}\n{}",
                images.len(),
                super::tools::tagged_note(scope),
                if scope.amis.is_empty() {
                    "none".to_string()
                } else {
                    scope.amis.join(", ")
                },
                fenced(s, "images as AWS reports them", &images)
            ))
        })
    }
}

impl Tool for ListObjects {
    fn name(&self) -> &'static str {
        "aws_list_objects"
    }
    fn description(&self) -> &'static str {
        "List up to 1,000 objects of an allowed bucket, under a prefix if given: key and size."
    }
    fn parameters(&self) -> Value {
        json!({ "type": "object", "properties": {
            "bucket": { "type": "string" }, "prefix": { "type": "string" }
        }, "required": ["bucket"], "additionalProperties": false })
    }
    fn risk(&self) -> RiskTier {
        RiskTier::Read
    }
    fn call<'a>(&'a self, s: &'a Subject, args: Value) -> ToolFuture<'a> {
        reply(async move {
            let (aws, bucket) = allowed_bucket(s, &args)?;
            let (objects, more) = read::objects(aws, bucket, args["prefix"].as_str())
                .await
                .map_err(|e| format!("error: {e}"))?;
            Ok(format!(
                "{} object(s) in `{bucket}`{}:\n{}",
                objects.len(),
                if more {
                    " (more exist: narrow the prefix)"
                } else {
                    ""
                },
                fenced(s, "object keys as S3 reports them", &objects)
            ))
        })
    }
}

impl Tool for BucketSettings {
    fn name(&self) -> &'static str {
        "aws_bucket_settings"
    }
    fn description(&self) -> &'static str {
        "Get an allowed bucket's default encryption and versioning."
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
            // Each setting on its own: one that cannot be read
            // does not hide the other.
            let said = |r: Result<Option<String>, super::AwsError>, none: &str| match r {
                Ok(Some(v)) => v,
                Ok(None) => none.to_string(),
                Err(e) => format!("cannot be read ({e})"),
            };
            let encryption = said(read::bucket_encryption(aws, bucket).await, "none");
            let versioning = said(read::bucket_versioning(aws, bucket).await, "never enabled");
            Ok(format!(
                "`{bucket}`: default encryption {encryption}; versioning {versioning}."
            ))
        })
    }
}

/// A user in scope, with what it holds.
#[derive(Debug, Serialize)]
struct UserView {
    name: String,
    arn: String,
    attached_policies: Vec<read::Principal>,
    access_keys: Vec<KeyView>,
}

/// An access key as the model sees it: by the end of its id, since whole
/// key ids are redacted from everything the bot says or is told.
#[derive(Debug, Serialize)]
struct KeyView {
    id_ends_with: String,
    status: String,
    created: String,
}

/// A role in scope, with its attached policies.
#[derive(Debug, Serialize)]
struct RoleView {
    name: String,
    arn: String,
    attached_policies: Vec<read::Principal>,
}

/// Only so many principals are looked at (each costs a tags call).
const MAX_PRINCIPALS: usize = 200;

/// IAM reads need the required tag, as IAM changes do.
fn iam_scope(scope: &AwsScope) -> Result<(), String> {
    scope::iam(scope).map_err(|e| format!("refused: {e}"))
}

async fn users_in_scope(aws: &Aws, scope: &AwsScope) -> Result<Vec<UserView>, String> {
    let fail = |e: super::AwsError| format!("error: {e}");
    let mut out = Vec::new();
    for user in read::users(aws)
        .await
        .map_err(fail)?
        .into_iter()
        .take(MAX_PRINCIPALS)
    {
        let Some((_, tags)) = read::user(aws, &user.name).await.map_err(fail)? else {
            continue;
        };
        if scope::user(scope, &user.name, &tags).is_err() {
            continue;
        }
        out.push(UserView {
            attached_policies: read::attached_policies(aws, &read::Holder::User(user.name.clone()))
                .await
                .map_err(fail)?,
            access_keys: read::access_keys(aws, &user.name)
                .await
                .map_err(fail)?
                .into_iter()
                .map(|k| KeyView {
                    id_ends_with: super::changes::key_suffix(&k.id),
                    status: k.status,
                    created: k.created,
                })
                .collect(),
            name: user.name,
            arn: user.arn,
        });
    }
    Ok(out)
}

impl Tool for IamUsers {
    fn name(&self) -> &'static str {
        "aws_iam_users"
    }
    fn description(&self) -> &'static str {
        "List the IAM users this repository may touch (those with its required tag), with their attached managed policies and access-key metadata (never secrets)."
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
            iam_scope(scope)?;
            let users = users_in_scope(aws, scope).await?;
            Ok(format!(
                "{} IAM user(s) in scope:\n{}",
                users.len(),
                fenced(s, "IAM users as AWS reports them", &users)
            ))
        })
    }
}

impl Tool for IamRoles {
    fn name(&self) -> &'static str {
        "aws_iam_roles"
    }
    fn description(&self) -> &'static str {
        "List the IAM roles that carry this repository's required tag, with their attached managed policies."
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
            iam_scope(scope)?;
            let fail = |e: super::AwsError| format!("error: {e}");
            let mut roles = Vec::new();
            for role in read::roles(aws)
                .await
                .map_err(fail)?
                .into_iter()
                .take(MAX_PRINCIPALS)
            {
                let tags = read::role_tags(aws, &role.name).await.map_err(fail)?;
                if scope::tagged(scope, "", &tags).is_err() {
                    continue;
                }
                roles.push(RoleView {
                    attached_policies: read::attached_policies(
                        aws,
                        &read::Holder::Role(role.name.clone()),
                    )
                    .await
                    .map_err(fail)?,
                    name: role.name,
                    arn: role.arn,
                });
            }
            Ok(format!(
                "{} IAM role(s) in scope:\n{}",
                roles.len(),
                fenced(s, "IAM roles as AWS reports them", &roles)
            ))
        })
    }
}

/// The read tools of this module.
pub fn tools() -> Vec<Box<dyn Tool>> {
    vec![
        Box::new(DescribeImages),
        Box::new(ListObjects),
        Box::new(BucketSettings),
        Box::new(IamUsers),
        Box::new(IamRoles),
    ]
}
