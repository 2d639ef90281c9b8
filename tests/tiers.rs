//! A plan step's risk tier follows what the step does, not how it is
//! spelled: each test has the scripted model propose what a repository
//! member with write access might use to pass a destructive change as a
//! `write` (which needs no second person), through the real router, the
//! fake GitHub and moto. Assertions are on what the model was told, the
//! tier posted with the plan, the stored steps, and moto's state when the
//! requester alone tries to apply.

mod support;

use agentic::aws::Aws;
use serde_json::json;
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
