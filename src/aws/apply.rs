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

/// Run `step` now: check it against `scope` with live state, try it with
/// DryRun, then make the call. The result says what changed.
pub async fn run_step(aws: &Aws, scope: &AwsScope, step: &PlanStep) -> Result<String, StepError> {
    if step.service != "ec2" {
        return Err(StepError::Refused(format!(
            "`{}:{}` steps cannot be applied yet",
            step.service, step.action
        )));
    }
    let region = step.region.as_deref().unwrap_or_default();
    scope::region(scope, region).map_err(StepError::Refused)?;
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
    match ec2_call(&client, &step.action, &step.resource, true).await {
        Err(e) if e.code.as_deref() == Some("DryRunOperation") => {}
        Err(e)
            if matches!(
                e.code.as_deref(),
                Some("UnauthorizedOperation" | "AccessDenied")
            ) =>
        {
            return Err(StepError::Denied(e.message));
        }
        Err(e) => return Err(StepError::Aws(e)),
        Ok(_) => {
            return Err(StepError::Refused(
                "AWS ran a DryRun call for real; stopping here".into(),
            ))
        }
    }
    Ok(ec2_call(&client, &step.action, &step.resource, false).await?)
}
