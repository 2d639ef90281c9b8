//! A plan step's risk tier follows what the step does, not how it is
//! spelled: each test has the scripted model propose what a repository
//! member with write access might use to pass a destructive change as a
//! `write` (which needs no second person), through the real router, the
//! fake GitHub and moto. Assertions are on what the model was told, the
//! tier posted with the plan, the stored steps, and moto's state when the
//! requester alone tries to apply.

mod support;

use agentic::aws::Aws;
use serde_json::{json, Value};
use support::github::{FakeGitHub, REPO};
use support::llm::{FakeLlm, Step};
use support::moto::{self, REGION};
use support::{app_options, comment_payload, delivery_id, TestApp};
use tokio::sync::Mutex;

/// One test at a time on the one moto.
static MOTO: Mutex<()> = Mutex::const_new(());

const TAG: (&str, &str) = ("agentic:repo", REPO);

/// The repository's `.github/agentic.yml`: regions and the required tag,
/// then `extra` lines of the `aws` section.
fn config(gh: &FakeGitHub, extra: &str) {
    gh.file(
        "main",
        ".github/agentic.yml",
        &format!("aws:\n  regions: [{REGION}]\n  required_tag: agentic:repo={REPO}\n{extra}"),
    );
}

async fn app(gh: &FakeGitHub, llm: &FakeLlm) -> TestApp {
    gh.role("mia-maintainer", "maintain");
    TestApp::start(
        app_options(gh, llm)
            .var("AWS_ENDPOINT_URL", moto::url())
            .var("AWS_REGION", REGION),
    )
    .await
}

/// `user` comments `body` on issue 57; waits for job `n`; the bot's reply.
async fn say(app: &TestApp, gh: &FakeGitHub, n: usize, user: &str, body: &str) -> String {
    let payload = comment_payload("created", 57, false, 770000 + n as u64, user, body);
    let res = app.deliver("issue_comment", &delivery_id(), &payload).await;
    assert_eq!(res.status(), 202);
    app.wait_for_jobs(n).await;
    let reply = gh.comments(57).last().unwrap().body.clone();
    reply
        .split("\n\n<!-- agentic:job=")
        .next()
        .unwrap()
        .to_string()
}

/// The tool answers the model read before its request `i` (from 0), in
/// the order the tools were called.
fn told(llm: &FakeLlm, i: usize) -> Vec<String> {
    let mut answers: Vec<String> = llm.requests()[i]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    answers.reverse();
    answers
}

/// The stored tiers of plan `id`'s steps.
async fn tiers(app: &TestApp, id: i64) -> Vec<&'static str> {
    app.store()
        .plan(id)
        .await
        .unwrap()
        .unwrap()
        .steps
        .iter()
        .map(|s| s.risk.as_str())
        .collect()
}

/// The requester alone may not apply plan `id`; nothing runs.
async fn requester_alone_is_refused(app: &TestApp, gh: &FakeGitHub, n: usize, id: i64) {
    let alone = say(app, gh, n, "bob-reviewer", "/agentic apply").await;
    assert!(
        alone.starts_with(&format!("I cannot apply plan {id} yet.")),
        "{alone}"
    );
    assert!(
        alone.contains("destructive steps need an approval by someone other than @bob-reviewer"),
        "{alone}"
    );
}

/// A security group in moto's default VPC, with `tags`; its id.
async fn group(aws: &Aws, name: &str, tags: &[(&str, &str)]) -> String {
    let id = aws
        .ec2
        .create_security_group()
        .group_name(name)
        .description("test")
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    for (k, v) in tags {
        aws.ec2
            .create_tags()
            .resources(&id)
            .tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
            .send()
            .await
            .unwrap();
    }
    id
}

fn line(n: usize, tier: &str, action: &str, resource: &str) -> String {
    format!("{n}. **{tier}** `{action}` on `{resource}`")
}

/// The tags of instance `id` as moto has them.
async fn instance_tags(aws: &Aws, id: &str) -> std::collections::BTreeMap<String, String> {
    agentic::aws::read::instances(
        aws,
        None,
        &agentic::aws::read::InstanceFilter {
            ids: vec![id.to_string()],
            ..Default::default()
        },
    )
    .await
    .unwrap()[0]
        .tags
        .clone()
}

#[tokio::test]
async fn changing_a_tag_an_instance_already_has_is_destructive_and_adding_one_is_a_write() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let box_ = moto::instance(&aws, &[TAG, ("team", "payments"), ("env", "prod")]).await;
    let (gh, llm) = support::world().await;
    config(&gh, "");
    let tag = |tags: Value| {
        (
            "aws_tag_instances",
            json!({ "instance_ids": [box_], "tags": tags }),
        )
    };
    llm.script([
        Step::Tools(vec![
            tag(json!({ "team": "attackers" })),
            tag(json!({ "cost-center": "42" })),
            tag(json!({ "env": "prod" })),
            tag(json!({ "owner": "me", "env": "dev" })),
        ]),
        Step::Answer("Retag the box.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let before = instance_tags(&aws, &box_).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan retag").await;
    for expected in [
        line(1, "destructive", "ec2:CreateTags", &box_),
        line(2, "write", "ec2:CreateTags", &box_),
        line(3, "write", "ec2:CreateTags", &box_),
        line(4, "destructive", "ec2:CreateTags", &box_),
    ] {
        assert!(reply.contains(&expected), "{expected}\n{reply}");
    }
    assert_eq!(
        tiers(&app, 1).await,
        ["destructive", "write", "write", "destructive"]
    );
    requester_alone_is_refused(&app, &gh, 2, 1).await;
    assert_eq!(instance_tags(&aws, &box_).await, before);
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn security_groups_and_images_are_listed_only_with_the_required_tag() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let ours = group(&aws, "ours", &[TAG]).await;
    let theirs = group(&aws, "theirs", &[("agentic:repo", "someone/else")]).await;
    let builder = moto::instance(&aws, &[TAG]).await;
    let image = |name: &'static str| {
        let aws = aws.clone();
        let builder = builder.clone();
        async move {
            aws.ec2
                .create_image()
                .instance_id(builder)
                .name(name)
                .send()
                .await
                .unwrap()
                .image_id()
                .unwrap()
                .to_string()
        }
    };
    let our_image = image("ours").await;
    let their_image = image("theirs").await;
    aws.ec2
        .create_tags()
        .resources(&our_image)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(TAG.0)
                .value(TAG.1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (gh, llm) = support::world().await;
    config(&gh, "");
    llm.script([
        Step::Tools(vec![
            ("aws_security_groups", json!({})),
            ("aws_describe_images", json!({})),
        ]),
        Step::Answer("Nothing to change.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan look around").await;
    assert!(reply.starts_with("No change proposed."), "{reply}");
    let answers = told(&llm, 1);
    let (groups, images) = (&answers[0], &answers[1]);
    assert!(
        groups.starts_with(&format!(
            "1 security group(s) in {REGION} tagged agentic:repo={REPO}:"
        )),
        "{groups}"
    );
    assert!(groups.contains(&ours), "{groups}");
    assert!(!groups.contains(&theirs), "{groups}");
    assert!(!groups.contains("\"default\""), "{groups}");
    assert!(
        images.starts_with(&format!(
            "1 image(s) in {REGION} tagged agentic:repo={REPO};"
        )),
        "{images}"
    );
    assert!(images.contains(&our_image), "{images}");
    assert!(!images.contains(&their_image), "{images}");
    app.stop().await;
    llm.assert_clean();
}
