//! Approvals are bound to a plan's hash, and the hash is taken over the
//! steps as they serialise. A plan stored by an earlier release must read
//! back, serialise to the very same bytes and hash to the very same value,
//! or every approval of it would silently stop counting (or, worse, a
//! reader that dropped a field would apply less than was approved).
//!
//! `tests/fixtures/stored_plans.json` holds plans as the store keeps them
//! (one of every action the proposers make, with their real argument
//! shapes) with the hash recorded when they were written. It was written
//! before `PlanStep`'s action became typed and must never be regenerated:
//! a change that breaks this test breaks stored approvals.

mod support;

use agentic::plan::{self, PlanStep};
use agentic::store::Store;
use support::test_dbs;

#[derive(serde::Deserialize)]
struct Stored {
    name: String,
    steps: String,
    hash: String,
}

fn fixtures() -> Vec<Stored> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stored_plans.json"
    ))
    .expect("the stored plans fixture");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

#[test]
fn stored_plans_serialise_to_the_same_bytes_and_hash() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 5);
    for f in &fixtures {
        let steps: Vec<PlanStep> = serde_json::from_str(&f.steps)
            .unwrap_or_else(|e| panic!("{}: a stored plan no longer reads: {e}", f.name));
        assert_eq!(
            serde_json::to_string(&steps).unwrap(),
            f.steps,
            "{}: the steps serialise differently",
            f.name
        );
        assert_eq!(plan::hash(&steps), f.hash, "{}: the hash moved", f.name);
    }
}

#[test]
fn every_action_the_executor_knows_is_in_a_stored_plan() {
    let fixtures = fixtures();
    let seen: std::collections::BTreeSet<String> = fixtures
        .iter()
        .flat_map(|f| serde_json::from_str::<Vec<PlanStep>>(&f.steps).unwrap())
        .map(|s| s.action.to_string())
        .collect();
    for action in agentic::aws::action::AwsAction::ALL {
        assert!(
            seen.contains(action.as_str()),
            "`{}` has no stored plan in the fixture",
            action.as_str()
        );
    }
}

#[tokio::test]
async fn a_plan_read_from_the_store_keeps_its_hash() {
    for db in test_dbs().await {
        let store = Store::open(&db.url).await.unwrap();
        for (job, f) in fixtures().iter().enumerate() {
            let steps: Vec<PlanStep> = serde_json::from_str(&f.steps).unwrap();
            let id = store
                .create_plan(job as i64 + 1, "o/r", 1, ("ann", 7), None, &steps, i64::MAX)
                .await
                .unwrap();
            let row = store.plan(id).await.unwrap().expect("the plan");
            assert_eq!(row.hash, f.hash, "{}: {}", db.backend, f.name);
            assert_eq!(row.steps, steps, "{}: {}", db.backend, f.name);
            assert_eq!(plan::hash(&row.steps), f.hash, "{}: {}", db.backend, f.name);
        }
    }
}

/// The step's arguments read as the type its action's proposer writes and
/// the executor reads, and written back. The match is exhaustive, so a new
/// action does not compile here until its arguments have a type.
fn reread(step: &PlanStep) -> serde_json::Value {
    use agentic::aws::action::*;
    use agentic::aws::changes::Ingress;
    use serde::{de::DeserializeOwned, Serialize};
    fn again<T: Serialize + DeserializeOwned>(step: &PlanStep) -> serde_json::Value {
        let typed: T = step.args().unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(typed).unwrap()
    }
    match step.action {
        AwsAction::StartInstances
        | AwsAction::StopInstances
        | AwsAction::RebootInstances
        | AwsAction::TerminateInstances => again::<InstanceArgs>(step),
        AwsAction::CreateTags => again::<TagArgs>(step),
        AwsAction::RunInstances => again::<LaunchArgs>(step),
        AwsAction::AuthorizeSecurityGroupIngress => {
            let rule = Ingress::from_args(&step.arguments).unwrap();
            rule.to_args(step.arguments["group_id"].as_str().unwrap())
        }
        AwsAction::PutBucketVersioning
        | AwsAction::PutBucketPublicAccessBlock
        | AwsAction::DeleteBucket => again::<BucketArgs>(step),
        AwsAction::PutBucketPolicy => again::<BucketPolicyArgs>(step),
        AwsAction::DeleteObject => again::<ObjectArgs>(step),
        AwsAction::AttachUserPolicy | AwsAction::DetachUserPolicy => again::<UserPolicyArgs>(step),
        AwsAction::UpdateAccessKey | AwsAction::DeleteAccessKey => again::<AccessKeyArgs>(step),
    }
}

#[test]
fn every_stored_steps_arguments_are_exactly_its_actions_typed_arguments() {
    // The proposers now write arguments through the same types the
    // executor reads: a field they dropped, renamed or retyped would make
    // new plans differ from the stored ones, and this fails.
    let mut seen = std::collections::BTreeSet::new();
    for f in fixtures() {
        let steps: Vec<PlanStep> = serde_json::from_str(&f.steps).unwrap();
        for step in &steps {
            assert_eq!(
                reread(step),
                step.arguments,
                "{}: `{}` step's arguments",
                f.name,
                step.action
            );
            seen.insert(step.action);
        }
    }
    assert_eq!(seen.len(), agentic::aws::action::AwsAction::ALL.len());
}
