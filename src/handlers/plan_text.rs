//! The text of a plan as people see it: in the reply to `/agentic plan`,
//! in `/agentic status`, and in the summary of the plan's check run.
//! Pure functions, no I/O, so that what is posted can be tested whole.

use crate::agent::tools::RiskTier;
use crate::plan::PlanStep;
use crate::store::PlanRow;

/// One step as people read it.
pub fn step_line(n: usize, s: &PlanStep) -> String {
    let effect = match (s.action.as_str(), s.risk) {
        ("StopInstances", _) => "stops the instance",
        ("StartInstances", _) => "starts the instance",
        ("RebootInstances", _) => "reboots the instance",
        ("TerminateInstances", _) => "deletes the instance and its instance-store data",
        ("RunInstances", _) => "launches new instances, tagged for this repository",
        ("CreateTags", _) => "sets the tags below on the instance",
        ("AuthorizeSecurityGroupIngress", RiskTier::Destructive) => {
            "opens the group to the whole internet, as below"
        }
        ("AuthorizeSecurityGroupIngress", _) => "adds the ingress rule below to the group",
        ("PutBucketVersioning", _) => "turns versioning on for the bucket",
        ("PutBucketPublicAccessBlock", _) => "blocks all public access to the bucket",
        ("DeleteBucket", _) => "deletes the bucket",
        ("DeleteObject", _) => "deletes the object (a versioned bucket keeps older versions)",
        ("PutBucketPolicy", RiskTier::Destructive) => {
            "replaces the bucket's policy with the one below, which may grant public access"
        }
        ("PutBucketPolicy", _) => "replaces the bucket's policy with the one below",
        ("AttachUserPolicy", _) => "gives the user the permissions of the policy below",
        ("DetachUserPolicy", _) => "takes the permissions of the policy below from the user",
        ("UpdateAccessKey", _) => {
            "deactivates the access key below; whatever uses it stops working"
        }
        ("DeleteAccessKey", _) => "deletes the access key below for good",
        (_, RiskTier::Destructive) => "cannot be undone",
        _ => "changes the resource",
    };
    format!(
        "{n}. **{}** `{}:{}` on `{}` in `{}` — {effect}",
        s.risk.as_str(),
        s.service,
        s.action,
        s.resource,
        s.region.as_deref().unwrap_or("global")
    )
}

/// One step as posted with its plan: its line, then the arguments beyond
/// the resource itself, exactly as they will be sent (the hash covers
/// them too); a policy document is shown as the document.
pub fn step_block(n: usize, s: &PlanStep) -> String {
    let line = step_line(n, s);
    if matches!(s.action.as_str(), "RunInstances" | "DeleteObject") {
        // Their line says it all.
        return line;
    }
    let extra: serde_json::Map<String, serde_json::Value> = s
        .arguments
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "instance_ids" | "bucket" | "user" | "user_arn" | "group_id" | "access_key_id"
            )
        })
        .map(|(k, v)| match (k.as_str(), v.as_str()) {
            ("policy", Some(doc)) => (
                k.clone(),
                serde_json::from_str(doc).unwrap_or_else(|_| v.clone()),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    if extra.is_empty() {
        return line;
    }
    let text = serde_json::to_string_pretty(&extra).unwrap_or_default();
    let fence = crate::output::fence_for(&text);
    let indented = text.replace('\n', "\n   ");
    format!("{line}\n\n   {fence}json\n   {indented}\n   {fence}\n")
}

/// The plan as posted: its steps, and what it still needs.
pub fn render(plan: &PlanRow, needs: &[String]) -> String {
    let steps: Vec<String> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_block(i + 1, s))
        .collect();
    let expires = chrono::DateTime::from_timestamp_millis(plan.expires_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let mut out = format!(
        "**Plan {}** (hash `{}`, requested by @{}, expires {expires}):\n\n{}",
        plan.id,
        &plan.hash[..12],
        plan.requester,
        steps.join("\n")
    );
    if plan.status != "proposed" {
        out.push_str(&format!("\n\nStatus: {}.", plan.status));
    } else if needs.is_empty() {
        out.push_str("\n\nReady: `/agentic apply` runs exactly these steps.");
    } else {
        out.push_str("\n\nBefore `/agentic apply` can run it:\n");
        for n in needs {
            out.push_str(&format!("\n- {n}"));
        }
    }
    out
}
