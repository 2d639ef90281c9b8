//! Running one approved plan step, deterministically (no model): the
//! resource is read again and checked against the scope, EC2 calls are
//! tried with `DryRun` first, then made.

use super::action::{
    AccessKeyArgs, AwsAction, BucketArgs, BucketPolicyArgs, LaunchArgs, ObjectArgs, PlanStep,
    Target, UserPolicyArgs,
};
use super::read::Instance;
use super::{scope, Aws, AwsError};
use crate::repo_config::AwsScope;

/// Why a step did not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Out of scope now (the tag was removed, the region dropped…).
    #[error("refused: {0}")]
    Refused(String),
    /// AWS's DryRun says the credentials may not do it.
    #[error("not permitted: {0}")]
    Denied(String),
    #[error("{0}")]
    Aws(#[from] AwsError),
}

/// The previous and new state of an instance an action changed.
fn changes(list: &[aws_sdk_ec2::types::InstanceStateChange]) -> String {
    let name = |s: Option<&aws_sdk_ec2::types::InstanceState>| {
        s.and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "?".into())
    };
    list.iter()
        .map(|c| {
            format!(
                "{}: {} → {}",
                c.instance_id().unwrap_or_default(),
                name(c.previous_state()),
                name(c.current_state())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ec2_call(
    client: &aws_sdk_ec2::Client,
    step: &PlanStep,
    dry: bool,
) -> Result<String, AwsError> {
    let id = step.resource.as_str();
    let what = format!("EC2 {} of {id}", step.action);
    match step.action {
        AwsAction::CreateTags => {
            use aws_sdk_ec2::types::Tag;
            let tags: Vec<Tag> = step.arguments["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v.as_str().unwrap_or_default())
                        .build()
                })
                .collect();
            let names: Vec<String> = tags
                .iter()
                .filter_map(|t| t.key().map(str::to_string))
                .collect();
            client
                .create_tags()
                .resources(id)
                .set_tags(Some(tags))
                .dry_run(dry)
                .send()
                .await
                .map(|_| format!("{id}: tagged {}", names.join(", ")))
                .map_err(|e| AwsError::from_sdk(what, e))
        }
        AwsAction::AuthorizeSecurityGroupIngress => {
            use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
            let rule =
                super::changes::Ingress::from_args(&step.arguments).map_err(|e| AwsError {
                    what: what.clone(),
                    code: None,
                    message: e,
                })?;
            let cidr = rule.net.to_string();
            let mut permission = IpPermission::builder()
                .ip_protocol(&rule.protocol)
                .from_port(rule.from_port)
                .to_port(rule.to_port);
            permission = if rule.is_ipv6() {
                permission.ipv6_ranges(
                    Ipv6Range::builder()
                        .cidr_ipv6(&cidr)
                        .set_description(rule.description.clone())
                        .build(),
                )
            } else {
                permission.ip_ranges(
                    IpRange::builder()
                        .cidr_ip(&cidr)
                        .set_description(rule.description.clone())
                        .build(),
                )
            };
            client
                .authorize_security_group_ingress()
                .group_id(id)
                .ip_permissions(permission.build())
                .dry_run(dry)
                .send()
                .await
                .map(|_| {
                    format!(
                        "{id}: {} {}–{} open from {}",
                        rule.protocol, rule.from_port, rule.to_port, cidr
                    )
                })
                .map_err(|e| AwsError::from_sdk(what, e))
        }
        AwsAction::StopInstances => client
            .stop_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.stopping_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        AwsAction::StartInstances => client
            .start_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.starting_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        AwsAction::TerminateInstances => client
            .terminate_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.terminating_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        AwsAction::RebootInstances => client
            .reboot_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|_| format!("{id}: rebooting"))
            .map_err(|e| AwsError::from_sdk(what, e)),
        other => Err(AwsError {
            what,
            code: None,
            message: format!("`{other}` is not an EC2 call on an existing resource"),
        }),
    }
}

/// Try `call` with DryRun: AWS must answer `DryRunOperation`.
fn dry_run_verdict(result: Result<String, AwsError>) -> Result<(), StepError> {
    match result {
        Err(e) if e.code.as_deref() == Some("DryRunOperation") => Ok(()),
        Err(e)
            if matches!(
                e.code.as_deref(),
                Some("UnauthorizedOperation" | "AccessDenied")
            ) =>
        {
            Err(StepError::Denied(e.message))
        }
        Err(e) => Err(StepError::Aws(e)),
        Ok(_) => Err(StepError::Refused(
            "AWS ran a DryRun call for real; stopping here".into(),
        )),
    }
}

/// Launch instances for a step, at most once: instances already tagged
/// with this step's `key` (a retry after a crash) are the step's result;
/// otherwise the call carries `key` as its client token too.
async fn launch(
    aws: &Aws,
    scope: &AwsScope,
    step: &PlanStep,
    region: &str,
    key: &str,
) -> Result<String, StepError> {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let args: LaunchArgs = step.args().map_err(StepError::Refused)?;
    let (image, instance_type) = (args.image_id.as_str(), args.instance_type.as_str());
    super::tools::check_launch(scope, image, instance_type, args.count)
        .map_err(StepError::Refused)?;
    let count = i32::try_from(args.count)
        .map_err(|_| StepError::Refused(format!("{} instances are too many", args.count)))?;
    let filter = super::read::InstanceFilter {
        tags: vec![(super::tools::PLAN_STEP_TAG.to_string(), key.to_string())],
        ..Default::default()
    };
    let earlier: Vec<String> = super::read::instances(aws, Some(region), &filter)
        .await?
        .into_iter()
        .filter(|i| i.state != "terminated")
        .map(|i| i.id)
        .collect();
    if !earlier.is_empty() {
        return Ok(format!(
            "already launched by this step: {}",
            earlier.join(", ")
        ));
    }
    let client = aws.ec2_in(Some(region));
    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(
            Tag::builder()
                .key(super::tools::PLAN_STEP_TAG)
                .value(key)
                .build(),
        );
    if let Some((k, v)) = scope.tag() {
        tags = tags.tags(Tag::builder().key(k).value(v).build());
    }
    let tags = tags.build();
    let call = |dry: bool| {
        client
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::from(instance_type))
            .min_count(count)
            .max_count(count)
            .client_token(key)
            .tag_specifications(tags.clone())
            .dry_run(dry)
            .send()
    };
    let what = format!("EC2 RunInstances ({key})");
    dry_run_verdict(
        call(true)
            .await
            .map(|_| String::new())
            .map_err(|e| AwsError::from_sdk(what.clone(), e)),
    )?;
    let out = call(false).await.map_err(|e| AwsError::from_sdk(what, e))?;
    let ids: Vec<&str> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .collect();
    Ok(format!("launched {}", ids.join(", ")))
}

/// Run `step` now: check it against `scope` with live state, try it with
/// DryRun, then make the call. `key` names the plan and step (a client
/// token, and the tag a retried launch looks for). The result says what
/// changed.
pub async fn run_step(
    aws: &Aws,
    scope: &AwsScope,
    step: &PlanStep,
    key: &str,
) -> Result<String, StepError> {
    match step.action.target() {
        Target::S3 => bucket_step(aws, scope, step).await,
        Target::User => user_step(aws, scope, step).await,
        Target::Launch => {
            let region = in_scope_region(scope, step)?;
            launch(aws, scope, step, region, key).await
        }
        Target::SecurityGroup => {
            let region = in_scope_region(scope, step)?;
            super::changes::allowed_group(aws, scope, region, &step.resource)
                .await
                .map_err(StepError::Refused)?;
            let client = aws.ec2_in(Some(region));
            dry_run_verdict(ec2_call(&client, step, true).await)?;
            Ok(ec2_call(&client, step, false).await?)
        }
        Target::Instance => instance_step(aws, scope, step).await,
    }
}

/// The step's region, which the scope must still allow.
fn in_scope_region<'a>(scope: &AwsScope, step: &'a PlanStep) -> Result<&'a str, StepError> {
    let region = step.region.as_deref().unwrap_or_default();
    scope::region(scope, region).map_err(StepError::Refused)?;
    Ok(region)
}

/// Run an EC2 step on one existing instance, which must still exist and
/// be in scope now.
async fn instance_step(aws: &Aws, scope: &AwsScope, step: &PlanStep) -> Result<String, StepError> {
    let region = in_scope_region(scope, step)?;
    let client = aws.ec2_in(Some(region));
    let live: Vec<Instance> =
        super::tools::live_instances(aws, region, std::slice::from_ref(&step.resource))
            .await
            .map_err(StepError::Refused)?;
    let instance = live.first().ok_or_else(|| {
        StepError::Refused(format!(
            "instance `{}` no longer exists in {region}",
            step.resource
        ))
    })?;
    scope::instance(scope, instance).map_err(StepError::Refused)?;
    if step.action == AwsAction::CreateTags {
        let tags = super::changes::check_tags(scope, &step.arguments["tags"])
            .map_err(StepError::Refused)?;
        // Approved as a write because it only added keys: a key given a
        // value since then would make it an overwrite nobody approved.
        if super::changes::tag_tier(&instance.tags, &tags) > step.risk {
            return Err(StepError::Refused(format!(
                "instance `{}` has since been given a value for one of these tags: setting it now would change it, which the approvals of this write step do not cover; plan again",
                step.resource
            )));
        }
    }
    dry_run_verdict(ec2_call(&client, step, true).await)?;
    Ok(ec2_call(&client, step, false).await?)
}

/// Run an S3 step on its bucket, in scope by `aws.buckets` now (S3 has no
/// DryRun: the scope check and the approval are what stand before it).
async fn bucket_step(aws: &Aws, scope: &AwsScope, step: &PlanStep) -> Result<String, StepError> {
    use aws_sdk_s3::types::{
        BucketVersioningStatus, PublicAccessBlockConfiguration, VersioningConfiguration,
    };
    // `bucket/key` for an object: the bucket is in the arguments.
    let named: BucketArgs = step.args().map_err(StepError::Refused)?;
    let bucket = named.bucket.as_deref().unwrap_or(step.resource.as_str());
    scope::bucket(scope, bucket).map_err(StepError::Refused)?;
    let what = format!("S3 {} of {bucket}", step.action);
    match step.action {
        AwsAction::PutBucketVersioning => {
            aws.s3
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}: versioning enabled"))
        }
        AwsAction::PutBucketPublicAccessBlock => {
            aws.s3
                .put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}: all public access blocked"))
        }
        AwsAction::DeleteBucket => {
            aws.s3
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}: deleted"))
        }
        AwsAction::DeleteObject => {
            let ObjectArgs { key, .. } = step.args().map_err(StepError::Refused)?;
            let key = key.as_str();
            aws.s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}/{key}: deleted"))
        }
        AwsAction::PutBucketPolicy => {
            let BucketPolicyArgs { policy, .. } = step.args().map_err(StepError::Refused)?;
            let policy = policy.as_str();
            aws.s3
                .put_bucket_policy()
                .bucket(bucket)
                .policy(policy)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}: policy replaced"))
        }
        other => Err(StepError::Refused(format!(
            "`{}` is not an S3 step",
            other.iam_action()
        ))),
    }
}

/// Run an IAM step on its user, who must carry the required tag now (IAM
/// has no DryRun either).
async fn user_step(aws: &Aws, scope: &AwsScope, step: &PlanStep) -> Result<String, StepError> {
    use aws_sdk_iam::types::StatusType;
    let user = step.resource.as_str();
    super::changes::allowed_user(aws, scope, user)
        .await
        .map_err(StepError::Refused)?;
    let what = format!("IAM {} of {user}", step.action);
    let iam = &aws.iam;
    match step.action {
        AwsAction::AttachUserPolicy => {
            let args: UserPolicyArgs = step.args().map_err(StepError::Refused)?;
            let policy = args.policy_arn.as_str();
            // What was checked and approved is one version of the policy;
            // a new default version since is another policy.
            let approved = args.policy_version.as_deref();
            let now = super::read::policy_version(aws, policy)
                .await?
                .map(|v| v.id);
            if approved.is_none() || now.as_deref() != approved {
                return Err(StepError::Refused(format!(
                    "`{policy}`'s default version is {} now, not the {} that was approved; ask for a new plan",
                    now.as_deref().unwrap_or("gone"),
                    approved.unwrap_or("unrecorded one")
                )));
            }
            iam.attach_user_policy()
                .user_name(user)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{user}: {policy} attached"))
        }
        AwsAction::DetachUserPolicy => {
            let args: UserPolicyArgs = step.args().map_err(StepError::Refused)?;
            let policy = args.policy_arn.as_str();
            iam.detach_user_policy()
                .user_name(user)
                .policy_arn(policy)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{user}: {policy} detached"))
        }
        AwsAction::UpdateAccessKey => {
            let AccessKeyArgs { access_key_id, .. } = step.args().map_err(StepError::Refused)?;
            let key = access_key_id.as_str();
            iam.update_access_key()
                .user_name(user)
                .access_key_id(key)
                .status(StatusType::Inactive)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!(
                "{user}: access key …{} deactivated",
                super::changes::key_suffix(key)
            ))
        }
        AwsAction::DeleteAccessKey => {
            let AccessKeyArgs { access_key_id, .. } = step.args().map_err(StepError::Refused)?;
            let key = access_key_id.as_str();
            iam.delete_access_key()
                .user_name(user)
                .access_key_id(key)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!(
                "{user}: access key …{} deleted",
                super::changes::key_suffix(key)
            ))
        }
        other => Err(StepError::Refused(format!(
            "`{}` is not an IAM step",
            other.iam_action()
        ))),
    }
}
