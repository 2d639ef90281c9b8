//! Every AWS action a plan can hold, as one enum: its service, the IAM
//! action an apply's session policy allows, the resource ARN that policy
//! names, and what it does in people's words. The proposers, the executor
//! (`aws::apply`), the session policy (`plan::session_policy`) and the plan
//! rendering all take an [`AwsAction`], so adding an action is adding a
//! variant, and the compiler lists every match still to write. A step's
//! arguments are one of the `*Args` types below: the proposer writes them
//! through it ([`PlanStep::new`]) and the executor reads them back through
//! it ([`PlanStep::args`]).
//!
//! A [`PlanStep`] serialises exactly as it did when the action was a
//! string (`tests/plan_hash.rs` holds plans stored then): approvals are
//! bound to the hash of that form.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::RiskTier;

/// An AWS API action a plan step may run, named as IAM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AwsAction {
    StartInstances,
    StopInstances,
    RebootInstances,
    TerminateInstances,
    CreateTags,
    RunInstances,
    AuthorizeSecurityGroupIngress,
    PutBucketVersioning,
    PutBucketPublicAccessBlock,
    PutBucketPolicy,
    DeleteBucket,
    DeleteObject,
    AttachUserPolicy,
    DetachUserPolicy,
    UpdateAccessKey,
    DeleteAccessKey,
}

/// What kind of resource an action acts on: its ARN, and which path of
/// the executor runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Instance,
    SecurityGroup,
    /// A bucket, or for `DeleteObject` `bucket/key`.
    S3,
    User,
    /// A launch names no resource of its own: the session policy gives it
    /// its own statements (the image, the new instance and its parts).
    Launch,
}

impl AwsAction {
    pub const ALL: [AwsAction; 16] = [
        AwsAction::StartInstances,
        AwsAction::StopInstances,
        AwsAction::RebootInstances,
        AwsAction::TerminateInstances,
        AwsAction::CreateTags,
        AwsAction::RunInstances,
        AwsAction::AuthorizeSecurityGroupIngress,
        AwsAction::PutBucketVersioning,
        AwsAction::PutBucketPublicAccessBlock,
        AwsAction::PutBucketPolicy,
        AwsAction::DeleteBucket,
        AwsAction::DeleteObject,
        AwsAction::AttachUserPolicy,
        AwsAction::DetachUserPolicy,
        AwsAction::UpdateAccessKey,
        AwsAction::DeleteAccessKey,
    ];

    /// The action's name, as IAM and the stored plan spell it.
    pub fn as_str(self) -> &'static str {
        use AwsAction::*;
        match self {
            StartInstances => "StartInstances",
            StopInstances => "StopInstances",
            RebootInstances => "RebootInstances",
            TerminateInstances => "TerminateInstances",
            CreateTags => "CreateTags",
            RunInstances => "RunInstances",
            AuthorizeSecurityGroupIngress => "AuthorizeSecurityGroupIngress",
            PutBucketVersioning => "PutBucketVersioning",
            PutBucketPublicAccessBlock => "PutBucketPublicAccessBlock",
            PutBucketPolicy => "PutBucketPolicy",
            DeleteBucket => "DeleteBucket",
            DeleteObject => "DeleteObject",
            AttachUserPolicy => "AttachUserPolicy",
            DetachUserPolicy => "DetachUserPolicy",
            UpdateAccessKey => "UpdateAccessKey",
            DeleteAccessKey => "DeleteAccessKey",
        }
    }

    /// The kind of resource it acts on.
    pub fn target(self) -> Target {
        use AwsAction::*;
        match self {
            StartInstances | StopInstances | RebootInstances | TerminateInstances | CreateTags => {
                Target::Instance
            }
            RunInstances => Target::Launch,
            AuthorizeSecurityGroupIngress => Target::SecurityGroup,
            PutBucketVersioning
            | PutBucketPublicAccessBlock
            | PutBucketPolicy
            | DeleteBucket
            | DeleteObject => Target::S3,
            AttachUserPolicy | DetachUserPolicy | UpdateAccessKey | DeleteAccessKey => Target::User,
        }
    }

    /// `ec2`, `s3` or `iam`.
    pub fn service(self) -> &'static str {
        match self.target() {
            Target::Instance | Target::SecurityGroup | Target::Launch => "ec2",
            Target::S3 => "s3",
            Target::User => "iam",
        }
    }

    /// The IAM action a session policy allows for it (`ec2:StopInstances`).
    pub fn iam_action(self) -> String {
        format!("{}:{}", self.service(), self.as_str())
    }

    /// The ARN of the resource `step` acts on, for a session policy;
    /// `None` for a launch (see [`Target::Launch`]). `account` is already
    /// written for a policy (`*` when unknown); every name from the step
    /// is made `literal` by the caller's function.
    pub fn resource_arn(
        self,
        step: &PlanStep,
        account: &str,
        literal: impl Fn(&str) -> String,
    ) -> Option<String> {
        let region = step.region.as_deref().map_or("*".to_string(), &literal);
        let resource = literal(&step.resource);
        Some(match self.target() {
            Target::Instance => format!("arn:aws:ec2:{region}:{account}:instance/{resource}"),
            Target::SecurityGroup => {
                format!("arn:aws:ec2:{region}:{account}:security-group/{resource}")
            }
            Target::S3 => format!("arn:aws:s3:::{resource}"),
            // The user's ARN as IAM gave it when planned (a user may have
            // a path), else built from its name.
            Target::User => step
                .arguments
                .get("user_arn")
                .and_then(Value::as_str)
                .filter(|a| a.starts_with("arn:aws:iam::") && a.contains(":user/"))
                .map(&literal)
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{resource}")),
            Target::Launch => return None,
        })
    }

    /// What the step does, in people's words, at the tier it was given
    /// (a destructive tag or ingress change says why it is one).
    pub fn effect(self, risk: RiskTier, arguments: &Value) -> &'static str {
        use AwsAction::*;
        let destructive = risk == RiskTier::Destructive;
        match self {
            StopInstances => "stops the instance",
            StartInstances => "starts the instance",
            RebootInstances => "reboots the instance",
            TerminateInstances => "deletes the instance and its instance-store data",
            RunInstances => "launches new instances, tagged for this repository",
            CreateTags if destructive => {
                "changes tags the instance has to the values below (policies may key on them)"
            }
            CreateTags => "sets the tags below on the instance",
            AuthorizeSecurityGroupIngress
                if destructive
                    && matches!(arguments["cidr"].as_str(), Some("0.0.0.0/0" | "::/0")) =>
            {
                "opens the group to the whole internet, as below"
            }
            AuthorizeSecurityGroupIngress if destructive => {
                "opens the group to a wide range of addresses (a /16 or /48 or more, with this plan's other rules on the group), as below"
            }
            AuthorizeSecurityGroupIngress => "adds the ingress rule below to the group",
            PutBucketVersioning => "turns versioning on for the bucket",
            PutBucketPublicAccessBlock => "blocks all public access to the bucket",
            DeleteBucket => "deletes the bucket",
            DeleteObject => "deletes the object (a versioned bucket keeps older versions)",
            PutBucketPolicy if destructive => {
                "replaces the bucket's policy with the one below, which may grant public access or reach outside the account (why: below)"
            }
            PutBucketPolicy => "replaces the bucket's policy with the one below",
            AttachUserPolicy => "gives the user the permissions of the policy below",
            DetachUserPolicy => "takes the permissions of the policy below from the user",
            UpdateAccessKey => "deactivates the access key below; whatever uses it stops working",
            DeleteAccessKey => "deletes the access key below for good",
        }
    }

    /// Its line says all there is: no arguments are shown under it.
    pub fn shown_by_its_line(self) -> bool {
        matches!(self, AwsAction::RunInstances | AwsAction::DeleteObject)
    }
}

impl std::fmt::Display for AwsAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for AwsAction {
    type Err = String;

    /// An action by its IAM name.
    fn from_str(name: &str) -> Result<AwsAction, String> {
        AwsAction::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| format!("`{name}` is not an action a plan can hold"))
    }
}

impl PartialEq<&str> for AwsAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One operation of a plan, with its exact arguments. Its risk tier comes
/// from the tool that proposed it (declared in code), never from the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    /// `ec2`, `s3` or `iam` (the action's [`AwsAction::service`]; kept in
    /// the stored form, which approvals are bound to).
    pub service: String,
    pub action: AwsAction,
    /// `None` for global services (IAM) and S3 buckets.
    pub region: Option<String>,
    /// What it acts on: an instance id, a bucket name, a user name.
    pub resource: String,
    pub arguments: Value,
    pub risk: RiskTier,
}

impl PlanStep {
    /// A step of `action` on `resource`, its service the action's and its
    /// arguments `args` (one of the `*Args` types below, which the
    /// executor reads back).
    pub fn new(
        action: AwsAction,
        region: Option<String>,
        resource: String,
        args: &impl Serialize,
        risk: RiskTier,
    ) -> PlanStep {
        PlanStep {
            service: action.service().to_string(),
            action,
            region,
            resource,
            arguments: serde_json::to_value(args).expect("step arguments serialise"),
            risk,
        }
    }

    /// The step's arguments as the executor reads them (one of the
    /// `*Args` types below), or why they do not read.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.arguments.clone()).map_err(|e| {
            format!(
                "the arguments of this `{}` step do not read: {e}",
                self.action
            )
        })
    }
}

// The arguments of each kind of step, written by the proposer and read by
// the executor through the same type. Their serialised field names are the
// stored form approvals are bound to: rename one and `tests/plan_hash.rs`
// fails. (Security group rules are `aws::ingress::Ingress`.)

/// Stop, start, reboot and terminate: the one instance, the step's
/// resource.
#[derive(Debug, Serialize, Deserialize)]
pub struct InstanceArgs {
    pub instance_ids: Vec<String>,
}

/// `CreateTags` on an instance: the tags as approved.
#[derive(Debug, Serialize, Deserialize)]
pub struct TagArgs {
    pub instance_ids: Vec<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// `RunInstances`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LaunchArgs {
    pub image_id: String,
    pub instance_type: String,
    pub count: u32,
}

/// The S3 steps on a whole bucket (for `DeleteObject` the resource is
/// `bucket/key`, so the bucket is named here).
#[derive(Debug, Serialize, Deserialize)]
pub struct BucketArgs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// `DeleteObject`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ObjectArgs {
    pub bucket: String,
    pub key: String,
}

/// `PutBucketPolicy`: the document, compact, and who outside the account
/// it reaches (why it is destructive, shown to the people who approve).
#[derive(Debug, Serialize, Deserialize)]
pub struct BucketPolicyArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaches_outside_the_account: Option<Outside>,
}

/// Whom a bucket policy reaches outside the account.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outside {
    /// The principals, as plans are written now.
    Who(Vec<String>),
    /// Only that it does: the form the hash fixture
    /// (`tests/fixtures/stored_plans.json`) holds. No release wrote it;
    /// reading it costs nothing.
    Flag(bool),
}

/// `AttachUserPolicy` and `DetachUserPolicy`: the user, the policy, and
/// for an attach the default version that was checked and approved with
/// what our least-privilege check found in it.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserPolicyArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arn: Option<String>,
    pub policy_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_findings: Option<Vec<String>>,
}

/// `UpdateAccessKey` and `DeleteAccessKey`: the whole id the call needs,
/// and its end, which is what people are shown.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessKeyArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arn: Option<String>,
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_serialises_as_its_iam_name_and_reads_back() {
        for a in AwsAction::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<AwsAction>(&json).unwrap(), a);
            assert!(a.iam_action().starts_with(a.service()));
        }
        // An action no variant names is not a step: a stored plan holding
        // one does not read (and so cannot be applied).
        assert!(serde_json::from_str::<AwsAction>("\"DeleteUser\"").is_err());
    }
}
