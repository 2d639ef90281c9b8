//! Plans, without I/O: a plan of `aws::action::PlanStep`s, the hash an
//! approval binds to, the tiers the plan as a whole implies, the approval
//! rules, what a plan kept of the model's refused proposals, and the
//! inline session policy an apply assumes its role with (allowing exactly
//! the approved actions on the approved resources). `handlers::plan` only
//! gathers the facts (roles from GitHub, the head from the pull request,
//! live state from AWS) and asks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::{RiskTier, Role};

pub use crate::aws::action::{AwsAction, PlanStep};

/// The most steps one plan may have. Every step is shown in full to the
/// people who approve it, in a comment and in a check run that GitHub caps
/// in size; a plan longer than people can read step by step is split into
/// several instead.
pub const MAX_PLAN_STEPS: usize = 25;

/// The most refusals kept beside one plan's steps: enough to show what the
/// model tried and was refused, bounded like the steps.
pub const MAX_PLAN_REFUSALS: usize = 25;

/// Longest resource text a refusal keeps, in characters (the model chose
/// it, so it is only shown, never trusted).
const MAX_REFUSAL_RESOURCE: usize = 200;

/// Longest reason a refusal keeps, in characters.
const MAX_REFUSAL_REASON: usize = 500;

/// A change the model proposed while planning and a change tool refused
/// (out of scope, not found, past [`MAX_PLAN_STEPS`]…): kept beside the
/// steps so the people approving see what was asked and left out. Made by
/// the tools' refusals, never from the model's own text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The tool the model called (`aws_stop_instances`).
    pub action: String,
    /// What the call named: instance ids, a bucket, a user…
    pub resource: String,
    /// The tool's refusal, as the model was told it.
    pub reason: String,
}

impl Refusal {
    /// A refusal of a call of `action` with `arguments`, its fields cut to
    /// a bounded length.
    pub fn new(action: &str, arguments: &Value, reason: &str) -> Refusal {
        let cut = |s: &str, max: usize| -> String {
            if s.chars().count() <= max {
                s.to_string()
            } else {
                let mut out: String = s.chars().take(max).collect();
                out.push('…');
                out
            }
        };
        let reason = reason.strip_prefix("refused: ").unwrap_or(reason);
        Refusal {
            action: cut(action, MAX_REFUSAL_RESOURCE),
            resource: cut(&named_resource(arguments), MAX_REFUSAL_RESOURCE),
            reason: cut(reason, MAX_REFUSAL_REASON),
        }
    }
}

/// What a change tool's arguments name, as people read it: the values of
/// the arguments that name resources, or the arguments themselves.
fn named_resource(arguments: &Value) -> String {
    const NAMING: [&str; 7] = [
        "instance_ids",
        "group_id",
        "bucket",
        "key",
        "user",
        "access_key_id",
        "policy_arn",
    ];
    let named: Vec<String> = NAMING
        .iter()
        .filter_map(|k| match &arguments[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => Some(
                a.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect();
    if named.is_empty() {
        arguments.to_string()
    } else {
        named.join(" / ")
    }
}

/// What a planning conversation collects as change tools answer: the
/// steps they accepted, in order, and what they refused.
#[derive(Debug, Default)]
pub struct PlanDraft {
    pub steps: Vec<PlanStep>,
    pub refusals: Vec<Refusal>,
}

impl PlanDraft {
    /// Keep `refusal`, up to [`MAX_PLAN_REFUSALS`].
    pub fn refuse(&mut self, refusal: Refusal) {
        if self.refusals.len() < MAX_PLAN_REFUSALS {
            self.refusals.push(refusal);
        }
    }
}

/// The hash an approval binds to: SHA-256 of the steps as JSON (object
/// keys sorted, so equal plans hash equally). Any change to any step, its
/// order included, is another plan.
pub fn hash(steps: &[PlanStep]) -> String {
    let canonical = serde_json::to_string(steps).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Raise the tiers that follow from the plan as a whole rather than from
/// one step: the ingress rules a plan adds to one security group are
/// counted together (`aws::ingress::raise_wide_unions`). Tiers only rise,
/// and the outcome depends on the steps, not on their order. The numbers
/// (from 1) of the steps it raised.
pub fn settle_tiers(steps: &mut [PlanStep]) -> Vec<usize> {
    crate::aws::ingress::raise_wide_unions(steps)
}

/// The most severe tier among the steps.
pub fn risk(steps: &[PlanStep]) -> RiskTier {
    steps.iter().map(|s| s.risk).max().unwrap_or(RiskTier::Read)
}

/// The approval rules of a repository (`aws.approvals`): the built-in ones
/// by default, and a repository may only make them stricter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalRules {
    /// Write steps also need an approval by someone other than the
    /// requester, with write or higher (built in: a requester with write
    /// suffices).
    pub write_needs_second_person: bool,
    /// How many people other than the requester must approve destructive
    /// steps (built in: 1; at least 1).
    pub destructive_approvals: u32,
    /// The role those approvers need (built in: maintain; maintain or admin).
    pub destructive_role: Role,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        ApprovalRules {
            write_needs_second_person: false,
            destructive_approvals: 1,
            destructive_role: Role::Maintain,
        }
    }
}

impl ApprovalRules {
    /// Refuse rules looser than the built-in ones.
    pub fn check(&self) -> Result<(), String> {
        let built_in = ApprovalRules::default();
        if self.destructive_approvals < built_in.destructive_approvals {
            return Err("`destructive_approvals` may not be below 1".into());
        }
        if self.destructive_role < built_in.destructive_role {
            return Err(format!(
                "`destructive_role` may not be below `{}`",
                built_in.destructive_role.as_str()
            ));
        }
        Ok(())
    }
}

/// A plan as approval sees it.
#[derive(Debug, Clone)]
pub struct PlanFacts<'a> {
    pub steps: &'a [PlanStep],
    pub hash: &'a str,
    /// The requester's login, for display.
    pub requester: &'a str,
    /// The requester's GitHub user id, which is what approvals are compared
    /// with (`None` for a plan stored before ids were: it cannot be applied).
    pub requester_id: Option<u64>,
    /// The requester's role now (from GitHub's permission API).
    pub requester_role: Role,
    /// The pull request's head when the plan was made (issues: `None`).
    pub head_sha: Option<&'a str>,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    pub rules: ApprovalRules,
}

/// An approval as recorded: who, with the role they had, bound to which
/// hash and head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's GitHub user id: who they are.
    pub approver_id: u64,
    /// Their login when they approved, for display.
    pub approver: String,
    pub role: Role,
    pub hash: String,
    pub head_sha: Option<String>,
}

/// What an apply needs that is not there, each said plainly; empty when
/// the plan may be applied.
pub fn missing(
    plan: &PlanFacts<'_>,
    approvals: &[Approval],
    current_head: Option<&str>,
    now: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    if now >= plan.expires_at {
        out.push("the plan has expired; ask for a new one with `/agentic plan`".to_string());
    }
    if plan.head_sha.is_some() && current_head != plan.head_sha {
        out.push(format!(
            "the pull request's head moved from `{}` to `{}` since the plan; plan again",
            short(plan.head_sha.unwrap_or("")),
            short(current_head.unwrap_or("?"))
        ));
    }
    let Some(requester_id) = plan.requester_id else {
        out.push(
            "the plan was made before approvals were bound to GitHub user ids; ask for a new one with `/agentic plan`"
                .to_string(),
        );
        return out;
    };
    // Only approvals of this very plan, at this very head, count.
    let valid: Vec<&Approval> = approvals
        .iter()
        .filter(|a| a.hash == plan.hash && a.head_sha.as_deref() == plan.head_sha)
        .collect();
    // Settled again here, so a plan stored before a tier rule existed
    // needs what its steps need now.
    let mut settled = plan.steps.to_vec();
    settle_tiers(&mut settled);
    let tier = risk(&settled);
    let rules = plan.rules;
    let others = |role: Role| {
        valid
            .iter()
            .filter(|a| a.approver_id != requester_id && a.role >= role)
            .count()
    };
    if tier != RiskTier::Read && rules.write_needs_second_person {
        if others(Role::Write) == 0 {
            out.push(format!(
                "its steps need an approval by someone other than @{} with the write role or higher (this repository's `aws.approvals`)",
                plan.requester
            ));
        }
    } else if tier != RiskTier::Read
        && plan.requester_role < Role::Write
        && !valid.iter().any(|a| a.role >= Role::Write)
    {
        out.push(
            "its write steps need the requester or an approver to have the write role or higher"
                .to_string(),
        );
    }
    let wanted = rules.destructive_approvals as usize;
    if tier == RiskTier::Destructive && others(rules.destructive_role) < wanted {
        let role = match rules.destructive_role {
            Role::Admin => "the admin role",
            _ => "the maintain or admin role",
        };
        out.push(if wanted == 1 {
            format!(
                "its destructive steps need an approval by someone other than @{} with {role}",
                plan.requester
            )
        } else {
            format!(
                "its destructive steps need approvals by {wanted} people other than @{} with {role} (this repository's `aws.approvals`); it has {}",
                plan.requester,
                others(rules.destructive_role)
            )
        });
    }
    out
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// `name` as a literal inside a policy's `Resource` (or a string or ARN
/// condition): IAM reads `*` and `?` there as wildcards and `${…}` as a
/// variable, so each of `*`, `?` and `$` is written as the policy
/// variable that stands for the character itself (`${*}`, `${?}`,
/// `${$}`). An object key `logs/*` is then that one object, never every
/// object under `logs/`.
pub fn literal(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '*' | '?' | '$' => {
                out.push_str("${");
                out.push(c);
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out
}

/// The ARN a step's action applies to, every name from the step made
/// [`literal`]; `account` is already written for a policy (`*` when
/// unknown, a wildcard on purpose). A launch has statements of its own.
fn resource_arn(step: &PlanStep, account: &str) -> Option<String> {
    step.action.resource_arn(step, account, literal)
}

/// The session tags of an apply: the repository and the approvers, in the
/// characters STS takes (others become `_`), at most 256 each.
pub fn session_tags(repo: &str, approvers: &[String]) -> Vec<(String, String)> {
    let clean = |v: &str| -> String {
        v.chars()
            .map(|c| {
                if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(256)
            .collect()
    };
    vec![
        ("agentic-repo".to_string(), clean(repo)),
        ("agentic-approvers".to_string(), clean(&approvers.join(" "))),
    ]
}

/// The inline session policy of an apply: one statement per action,
/// allowing it on exactly the resources the approved steps name (an
/// `s3:DeleteObject` step names `bucket/key`). `account` is the account
/// id when known (`*` otherwise, still bound to the resource's id).
pub fn session_policy(steps: &[PlanStep], account: Option<&str>) -> Result<Value, String> {
    let account = account.map_or("*".to_string(), literal);
    let account = account.as_str();
    let mut by_action: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Attaching or detaching a policy: on that user, of that policy only.
    let mut conditioned: Vec<Value> = Vec::new();
    for step in steps {
        let Some(arn) = resource_arn(step, account) else {
            continue;
        };
        if let AwsAction::AttachUserPolicy | AwsAction::DetachUserPolicy = step.action {
            let policy = literal(step.arguments["policy_arn"].as_str().unwrap_or("none"));
            conditioned.push(
                json!({ "Effect": "Allow", "Action": [step.action.iam_action()],
                "Resource": [arn], "Condition": { "ArnEquals": { "iam:PolicyARN": [policy.clone()] } } }),
            );
            if step.action == AwsAction::AttachUserPolicy {
                // The apply reads the policy's default version again first.
                conditioned.push(json!({ "Effect": "Allow",
                    "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"], "Resource": [policy] }));
            }
            continue;
        }
        let resources = by_action.entry(step.action.iam_action()).or_default();
        if !resources.contains(&arn) {
            resources.push(arn);
        }
    }
    let mut statements: Vec<Value> = by_action
        .into_iter()
        .map(|(action, resources)| {
            json!({ "Effect": "Allow", "Action": [action], "Resource": resources })
        })
        .collect();
    statements.extend(conditioned);
    // A launch: the new instance and what it is made of, from the approved
    // image only, and tags only as part of that launch.
    for step in steps.iter().filter(|s| s.action == AwsAction::RunInstances) {
        let region = step.region.as_deref().map_or("*".to_string(), literal);
        let image = literal(step.arguments["image_id"].as_str().unwrap_or("none"));
        statements.push(
            json!({ "Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": [
            format!("arn:aws:ec2:{region}::image/{image}"),
            format!("arn:aws:ec2:{region}:{account}:instance/*"),
            format!("arn:aws:ec2:{region}:{account}:volume/*"),
            format!("arn:aws:ec2:{region}:{account}:network-interface/*"),
            format!("arn:aws:ec2:{region}:{account}:subnet/*"),
            format!("arn:aws:ec2:{region}:{account}:security-group/*"),
        ] }),
        );
        statements.push(json!({ "Effect": "Allow", "Action": ["ec2:CreateTags"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:instance/*")],
            "Condition": { "StringEquals": { "ec2:CreateAction": "RunInstances" } } }));
    }
    // What the apply reads again before it acts. EC2's Describe calls
    // take no resource-level permission; IAM's reads are on the users.
    let mut describe = Vec::new();
    if steps.iter().any(|s| {
        s.action.service() == "ec2" && s.action != AwsAction::AuthorizeSecurityGroupIngress
    }) {
        describe.push("ec2:DescribeInstances");
    }
    if steps
        .iter()
        .any(|s| s.action == AwsAction::AuthorizeSecurityGroupIngress)
    {
        describe.push("ec2:DescribeSecurityGroups");
    }
    if !describe.is_empty() {
        statements.push(json!({ "Effect": "Allow", "Action": describe, "Resource": "*" }));
    }
    let mut users: Vec<String> = Vec::new();
    for step in steps.iter().filter(|s| s.action.service() == "iam") {
        let Some(arn) = resource_arn(step, account) else {
            continue;
        };
        if !users.contains(&arn) {
            users.push(arn);
        }
    }
    if !users.is_empty() {
        statements.push(json!({ "Effect": "Allow",
            "Action": ["iam:GetUser", "iam:ListUserTags"], "Resource": users }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: &str, resource: &str, risk: RiskTier) -> PlanStep {
        PlanStep {
            service: "ec2".into(),
            action: action.parse().unwrap(),
            region: Some("eu-west-1".into()),
            resource: resource.into(),
            arguments: json!({ "instance_ids": [resource], "z": 1, "a": 2 }),
            risk,
        }
    }

    const HOUR: i64 = 3_600_000;

    fn facts<'a>(steps: &'a [PlanStep], hash: &'a str, role: Role) -> PlanFacts<'a> {
        PlanFacts {
            steps,
            hash,
            requester: "alice",
            requester_id: Some(id_of("alice")),
            requester_role: role,
            head_sha: Some("aaaaaaa111"),
            expires_at: 24 * HOUR,
            rules: ApprovalRules::default(),
        }
    }

    /// A stable made-up GitHub user id per name.
    fn id_of(who: &str) -> u64 {
        who.bytes().fold(7, |h, b| h * 31 + u64::from(b))
    }

    fn approval(who: &str, role: Role, hash: &str, head: &str) -> Approval {
        Approval {
            approver_id: id_of(who),
            approver: who.into(),
            role,
            hash: hash.into(),
            head_sha: Some(head.into()),
        }
    }

    #[test]
    fn session_tags_name_the_repository_and_the_approvers_in_characters_sts_takes() {
        let tags = session_tags(
            "acme-platform/infra-live",
            &["mia".into(), "bob;drop".into()],
        );
        assert_eq!(
            tags,
            [
                (
                    "agentic-repo".to_string(),
                    "acme-platform/infra-live".to_string()
                ),
                ("agentic-approvers".to_string(), "mia bob_drop".to_string())
            ]
        );
    }

    #[test]
    fn the_hash_changes_with_any_step_and_not_with_key_order() {
        let a = vec![step("StopInstances", "i-1", RiskTier::Write)];
        let mut b = a.clone();
        b[0].arguments = json!({ "a": 2, "z": 1, "instance_ids": ["i-1"] });
        assert_eq!(hash(&a), hash(&b), "keys are sorted");
        b[0].resource = "i-2".into();
        assert_ne!(hash(&a), hash(&b));
        let two = vec![
            step("StopInstances", "i-1", RiskTier::Write),
            step("StartInstances", "i-2", RiskTier::Write),
        ];
        let swapped = vec![two[1].clone(), two[0].clone()];
        assert_ne!(hash(&two), hash(&swapped), "order matters");
        let json = serde_json::to_value(&a[0]).unwrap();
        assert_eq!(json["risk"], "write");
        assert_eq!(serde_json::from_value::<PlanStep>(json).unwrap(), a[0]);
    }

    #[test]
    fn a_writer_may_apply_their_own_write_plan() {
        let steps = [step("StopInstances", "i-1", RiskTier::Write)];
        let h = hash(&steps);
        assert!(missing(
            &facts(&steps, &h, Role::Write),
            &[],
            Some("aaaaaaa111"),
            HOUR
        )
        .is_empty());
        // A triager needs a writer's approval; a triager's does not count.
        let f = facts(&steps, &h, Role::Triage);
        assert_eq!(
            missing(
                &f,
                &[approval("tom", Role::Triage, &h, "aaaaaaa111")],
                Some("aaaaaaa111"),
                HOUR
            )
            .len(),
            1
        );
        assert!(missing(
            &f,
            &[approval("bob", Role::Write, &h, "aaaaaaa111")],
            Some("aaaaaaa111"),
            HOUR
        )
        .is_empty());
    }

    #[test]
    fn destructive_steps_need_a_second_person_with_maintain() {
        let steps = [step("TerminateInstances", "i-1", RiskTier::Destructive)];
        let h = hash(&steps);
        let f = facts(&steps, &h, Role::Admin);
        let alone = missing(
            &f,
            &[approval("alice", Role::Admin, &h, "aaaaaaa111")],
            Some("aaaaaaa111"),
            HOUR,
        );
        assert_eq!(
            alone.len(),
            1,
            "the requester's own approval does not count"
        );
        assert!(alone[0].contains("someone other than @alice"), "{alone:?}");
        let writer = missing(
            &f,
            &[approval("bob", Role::Write, &h, "aaaaaaa111")],
            Some("aaaaaaa111"),
            HOUR,
        );
        assert_eq!(writer.len(), 1, "write is not enough");
        assert!(missing(
            &f,
            &[approval("mia", Role::Maintain, &h, "aaaaaaa111")],
            Some("aaaaaaa111"),
            HOUR
        )
        .is_empty());
    }

    #[test]
    fn people_are_compared_by_id_not_by_login() {
        let steps = [step("TerminateInstances", "i-1", RiskTier::Destructive)];
        let h = hash(&steps);
        let f = facts(&steps, &h, Role::Admin);
        // The requester, renamed, approving their own plan under a new login.
        let renamed = Approval {
            approver: "alice-new".into(),
            ..approval("alice", Role::Admin, &h, "aaaaaaa111")
        };
        assert_eq!(missing(&f, &[renamed], Some("aaaaaaa111"), HOUR).len(), 1);
        // Someone else who took over the login `alice` is someone else.
        let other = Approval {
            approver_id: 99,
            ..approval("alice", Role::Maintain, &h, "aaaaaaa111")
        };
        assert!(missing(&f, &[other], Some("aaaaaaa111"), HOUR).is_empty());
        // A plan stored before ids were cannot be applied.
        let legacy = PlanFacts {
            requester_id: None,
            ..facts(&steps, &h, Role::Admin)
        };
        let mia = approval("mia", Role::Maintain, &h, "aaaaaaa111");
        assert!(missing(&legacy, &[mia], Some("aaaaaaa111"), HOUR)[0].contains("user ids"));
    }

    #[test]
    fn a_repository_may_make_the_rules_stricter_and_never_looser() {
        let steps = [step("TerminateInstances", "i-1", RiskTier::Destructive)];
        let h = hash(&steps);
        let strict = ApprovalRules {
            write_needs_second_person: true,
            destructive_approvals: 2,
            destructive_role: Role::Admin,
        };
        let f = PlanFacts {
            rules: strict,
            ..facts(&steps, &h, Role::Admin)
        };
        let mia = approval("mia", Role::Maintain, &h, "aaaaaaa111");
        let ann = approval("ann", Role::Admin, &h, "aaaaaaa111");
        let own = approval("alice", Role::Admin, &h, "aaaaaaa111");
        let one = missing(&f, &[mia, ann.clone(), own], Some("aaaaaaa111"), HOUR);
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(
            one[0].contains("approvals by 2 people other than @alice with the admin role")
                && one[0].ends_with("it has 1"),
            "{one:?}"
        );
        let two = approval("abe", Role::Admin, &h, "aaaaaaa111");
        assert!(missing(&f, &[ann, two], Some("aaaaaaa111"), HOUR).is_empty());
        // A writer's own write plan now needs a second person.
        let stop = [step("StopInstances", "i-1", RiskTier::Write)];
        let hs = hash(&stop);
        let f = PlanFacts {
            rules: strict,
            ..facts(&stop, &hs, Role::Write)
        };
        assert!(missing(&f, &[], Some("aaaaaaa111"), HOUR)[0].contains("someone other than @alice"));
        let bob = approval("bob", Role::Write, &hs, "aaaaaaa111");
        assert!(missing(&f, &[bob], Some("aaaaaaa111"), HOUR).is_empty());
        // Looser than built in: refused.
        let loose = ApprovalRules {
            destructive_approvals: 0,
            ..ApprovalRules::default()
        };
        assert!(loose.check().is_err());
        let low = ApprovalRules {
            destructive_role: Role::Write,
            ..ApprovalRules::default()
        };
        assert!(low.check().unwrap_err().contains("below `maintain`"));
        assert!(strict.check().is_ok());
    }

    #[test]
    fn a_push_a_changed_plan_or_expiry_voids_approvals() {
        let steps = [step("TerminateInstances", "i-1", RiskTier::Destructive)];
        let h = hash(&steps);
        let f = facts(&steps, &h, Role::Write);
        let mia = approval("mia", Role::Maintain, &h, "aaaaaaa111");
        let pushed = missing(&f, std::slice::from_ref(&mia), Some("bbbbbbb222"), HOUR);
        assert!(
            pushed[0].contains("moved from `aaaaaaa` to `bbbbbbb`"),
            "{pushed:?}"
        );
        let other_plan = approval("mia", Role::Maintain, "0000", "aaaaaaa111");
        assert_eq!(
            missing(&f, &[other_plan], Some("aaaaaaa111"), HOUR).len(),
            1
        );
        let old_head = approval("mia", Role::Maintain, &h, "ccccccc333");
        assert_eq!(missing(&f, &[old_head], Some("aaaaaaa111"), HOUR).len(), 1);
        let expired = missing(&f, &[mia], Some("aaaaaaa111"), 25 * HOUR);
        assert!(expired[0].contains("expired"), "{expired:?}");
    }

    #[test]
    fn the_session_policy_allows_exactly_the_approved_actions_on_the_approved_resources() {
        let steps = [
            step("StopInstances", "i-1", RiskTier::Write),
            step("StopInstances", "i-2", RiskTier::Write),
            step("TerminateInstances", "i-3", RiskTier::Destructive),
        ];
        let policy = session_policy(&steps, Some("123456789012")).unwrap();
        assert_eq!(
            policy,
            json!({ "Version": "2012-10-17", "Statement": [
                { "Effect": "Allow", "Action": ["ec2:StopInstances"], "Resource": [
                    "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
                    "arn:aws:ec2:eu-west-1:123456789012:instance/i-2"] },
                { "Effect": "Allow", "Action": ["ec2:TerminateInstances"], "Resource": [
                    "arn:aws:ec2:eu-west-1:123456789012:instance/i-3"] },
                { "Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*" }
            ]})
        );
        // Our own least-privilege check finds nothing wide in it.
        let findings = crate::aws::policy::check(&policy.to_string()).unwrap();
        assert!(
            findings
                .iter()
                .all(|f| f.severity < crate::domain::Severity::Major),
            "{findings:?}"
        );
        // An action it cannot name cannot be a step at all (no variant of
        // `AwsAction`), so it is never widened to `*`: a stored plan
        // holding one does not read.
        assert!("ModifyInstanceAttribute".parse::<AwsAction>().is_err());
        assert!("AttachRolePolicy".parse::<AwsAction>().is_err());
        assert!("DeleteUser".parse::<AwsAction>().is_err());
        let object = PlanStep {
            service: "s3".into(),
            action: "DeleteObject".parse().unwrap(),
            region: None,
            resource: "acme-logs/2026/11/30.log".into(),
            ..steps[0].clone()
        };
        assert_eq!(
            session_policy(&[object], None).unwrap()["Statement"][0]["Resource"][0],
            "arn:aws:s3:::acme-logs/2026/11/30.log"
        );
        // A policy attached to a user: that user (by the ARN IAM gave, path
        // and all), that policy.
        let attach = PlanStep {
            service: "iam".into(),
            action: "AttachUserPolicy".parse().unwrap(),
            region: None,
            resource: "ci".into(),
            arguments: json!({ "user": "ci", "user_arn": "arn:aws:iam::123456789012:user/bots/ci",
                               "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess" }),
            risk: RiskTier::Destructive,
        };
        assert_eq!(
            session_policy(&[attach], Some("123456789012")).unwrap(),
            json!({ "Version": "2012-10-17", "Statement": [
                { "Effect": "Allow", "Action": ["iam:AttachUserPolicy"],
                  "Resource": ["arn:aws:iam::123456789012:user/bots/ci"],
                  "Condition": { "ArnEquals": { "iam:PolicyARN": ["arn:aws:iam::aws:policy/ReadOnlyAccess"] } } },
                // And the policy's default version, which must be the one approved.
                { "Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                  "Resource": ["arn:aws:iam::aws:policy/ReadOnlyAccess"] },
                // The apply reads the user (and its tag) again first.
                { "Effect": "Allow", "Action": ["iam:GetUser", "iam:ListUserTags"],
                  "Resource": ["arn:aws:iam::123456789012:user/bots/ci"] }
            ]})
        );
        // An ingress rule: the group, and the read of it.
        let ingress = PlanStep {
            action: "AuthorizeSecurityGroupIngress".parse().unwrap(),
            resource: "sg-1".into(),
            ..steps[0].clone()
        };
        assert_eq!(
            session_policy(&[ingress], Some("123456789012")).unwrap()["Statement"],
            json!([
                { "Effect": "Allow", "Action": ["ec2:AuthorizeSecurityGroupIngress"],
                  "Resource": ["arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1"] },
                { "Effect": "Allow", "Action": ["ec2:DescribeSecurityGroups"], "Resource": "*" }
            ])
        );
        // A launch: from the approved image only, tags only while launching.
        let launch = PlanStep {
            action: "RunInstances".parse().unwrap(),
            resource: "1 × t3.micro from ami-1".into(),
            arguments: json!({ "image_id": "ami-1", "instance_type": "t3.micro", "count": 1 }),
            ..steps[0].clone()
        };
        let policy = session_policy(&[launch], Some("123456789012")).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0]["Resource"][0],
            "arn:aws:ec2:eu-west-1::image/ami-1"
        );
        assert_eq!(
            statements[1]["Condition"]["StringEquals"]["ec2:CreateAction"],
            "RunInstances"
        );
        let findings = crate::aws::policy::check(&policy.to_string()).unwrap();
        assert!(
            findings
                .iter()
                .all(|f| f.severity < crate::domain::Severity::Major),
            "{findings:?}"
        );
    }

    #[test]
    fn wildcards_and_dollars_in_names_are_literal_in_the_session_policy() {
        assert_eq!(literal("logs/*"), "logs/${*}");
        assert_eq!(literal("a?b$c"), "a${?}b${$}c");
        assert_eq!(literal("${aws:username}"), "${$}{aws:username}");
        assert_eq!(literal("plain/key.log"), "plain/key.log");
        let object = |key: &str| PlanStep {
            service: "s3".into(),
            action: "DeleteObject".parse().unwrap(),
            region: None,
            resource: format!("acme-logs/{key}"),
            arguments: json!({ "bucket": "acme-logs", "key": key }),
            risk: RiskTier::Destructive,
        };
        let policy = session_policy(
            &[
                object("2026/*"),
                object("report-??.csv"),
                object("$HOME/${aws:userid}"),
            ],
            Some("123456789012"),
        )
        .unwrap();
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!([
                "arn:aws:s3:::acme-logs/2026/${*}",
                "arn:aws:s3:::acme-logs/report-${?}${?}.csv",
                "arn:aws:s3:::acme-logs/${$}HOME/${$}{aws:userid}"
            ])
        );
        // Every other name that lands in an ARN or an ARN condition too.
        let user = PlanStep {
            service: "iam".into(),
            action: "AttachUserPolicy".parse().unwrap(),
            region: None,
            resource: "ci*".into(),
            arguments: json!({ "user": "ci*", "policy_arn": "arn:aws:iam::aws:policy/Read*" }),
            risk: RiskTier::Destructive,
        };
        let stop = PlanStep {
            region: Some("eu-west-?".into()),
            ..step("StopInstances", "i-*", RiskTier::Write)
        };
        let policy = session_policy(&[user, stop], None).unwrap().to_string();
        for wanted in [
            "arn:aws:iam::*:user/ci${*}",
            "arn:aws:iam::aws:policy/Read${*}",
            "arn:aws:ec2:eu-west-${?}:*:instance/i-${*}",
        ] {
            assert!(policy.contains(wanted), "{wanted}: {policy}");
        }
        // The account stays a wildcard only when it is unknown.
        assert!(!policy.contains("user/ci*"), "{policy}");
    }
}
