//! Running one approved plan step, deterministically (no model): the
//! resource is read again and checked against the scope, EC2 calls are
//! tried with `DryRun` first, then made.

use super::read::Instance;
use super::{scope, Aws, AwsError};
use crate::plan::PlanStep;
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
    action: &str,
    id: &str,
    dry: bool,
) -> Result<String, AwsError> {
    let what = format!("EC2 {action} of {id}");
    match action {
        "StopInstances" => client
            .stop_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.stopping_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        "StartInstances" => client
            .start_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.starting_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        "TerminateInstances" => client
            .terminate_instances()
            .instance_ids(id)
            .dry_run(dry)
            .send()
            .await
            .map(|o| changes(o.terminating_instances()))
            .map_err(|e| AwsError::from_sdk(what, e)),
        "RebootInstances" => client
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
            message: format!("`{other}` is not an action this executor runs"),
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
    let image = step.arguments["image_id"].as_str().unwrap_or_default();
    let instance_type = step.arguments["instance_type"].as_str().unwrap_or_default();
    let count = step.arguments["count"]
        .as_u64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(0);
    super::tools::check_launch(scope, image, instance_type, count as u32)
        .map_err(StepError::Refused)?;
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
    if step.service == "s3" {
        return bucket_step(aws, scope, step).await;
    }
    if step.service != "ec2" {
        return Err(StepError::Refused(format!(
            "`{}:{}` steps cannot be applied yet",
            step.service, step.action
        )));
    }
    let region = step.region.as_deref().unwrap_or_default();
    scope::region(scope, region).map_err(StepError::Refused)?;
    if step.action == "RunInstances" {
        return launch(aws, scope, step, region, key).await;
    }
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
    let client = aws.ec2_in(Some(region));
    dry_run_verdict(ec2_call(&client, &step.action, &step.resource, true).await)?;
    Ok(ec2_call(&client, &step.action, &step.resource, false).await?)
}

/// Run an S3 step on its bucket, in scope by `aws.buckets` now (S3 has no
/// DryRun: the scope check and the approval are what stand before it).
async fn bucket_step(aws: &Aws, scope: &AwsScope, step: &PlanStep) -> Result<String, StepError> {
    use aws_sdk_s3::types::{
        BucketVersioningStatus, PublicAccessBlockConfiguration, VersioningConfiguration,
    };
    let bucket = step.resource.as_str();
    scope::bucket(scope, bucket).map_err(StepError::Refused)?;
    let what = format!("S3 {} of {bucket}", step.action);
    match step.action.as_str() {
        "PutBucketVersioning" => {
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
        "PutBucketPublicAccessBlock" => {
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
        "DeleteBucket" => {
            aws.s3
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(what, e))?;
            Ok(format!("{bucket}: deleted"))
        }
        other => Err(StepError::Refused(format!(
            "`s3:{other}` steps cannot be applied"
        ))),
    }
}
