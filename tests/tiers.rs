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
use support::plans::{MOTO, TAG};
use support::{comment_payload, delivery_id, TestApp};

/// The account moto puts everything in.
const ACCOUNT: &str = "123456789012";

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
    TestApp::start(support::plans::plan_options(gh, llm)).await
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

/// Every ingress range of group `id` as moto has it, IPv4 and IPv6.
async fn ranges(aws: &Aws, id: &str) -> Vec<String> {
    let out = aws
        .ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .unwrap();
    let mut found = Vec::new();
    for p in out.security_groups()[0].ip_permissions() {
        found.extend(
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip())
                .map(str::to_string),
        );
        found.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6())
                .map(str::to_string),
        );
    }
    found
}

fn ingress(group: &str, cidr: &str) -> (&'static str, Value) {
    (
        "aws_authorize_ingress",
        json!({ "group_id": group, "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": cidr }),
    )
}

fn line(n: usize, tier: &str, action: &str, resource: &str) -> String {
    format!("{n}. **{tier}** `{action}` on `{resource}`")
}

#[tokio::test]
async fn an_ingress_range_is_read_strictly_and_a_wide_one_or_a_wide_union_is_destructive() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let web = moto::security_group(&aws, "web", &[TAG]).await;
    let db = moto::security_group(&aws, "db", &[TAG]).await;
    let lone = moto::security_group(&aws, "lone", &[TAG]).await;
    let (gh, llm) = support::world().await;
    config(&gh, "");
    llm.script([
        Step::Tools(vec![
            // Spellings of the whole internet that are not `/0` as written.
            ingress(&web, "0.0.0.0/00"),
            ingress(&web, "0.0.0.0/+0"),
            ingress(&web, "::/00"),
            ingress(&web, "010.0.0.0/8"),
            ingress(&web, "10.1.2.3/8"),
            ingress(&web, "2001:DB8::/32"),
        ]),
        Step::Tools(vec![
            // One wide range.
            ingress(&web, "10.0.0.0/8"),
            // Two halves of a /16, each narrow on its own.
            ingress(&db, "10.20.0.0/17"),
            ingress(&db, "10.20.128.0/17"),
            // Half of a /16 alone stays a write; IPv6 counts on its own.
            ingress(&lone, "192.168.0.0/17"),
            ingress(&lone, "2001:db8::/47"),
        ]),
        Step::Answer("Open the web tier.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan open https").await;
    let answers = told(&llm, 1);
    assert_eq!(answers.len(), 6, "{answers:?}");
    for (i, why) in [
        (0, "`0.0.0.0/00` is not written canonically"),
        (1, "`0.0.0.0/+0` is not a CIDR block"),
        (2, "`::/00` is not written canonically: write `::/0`"),
        (
            3,
            "`010.0.0.0/8` is not written canonically: write `10.0.0.0/8`",
        ),
        (4, "`10.1.2.3/8` has host bits set: it means `10.0.0.0/8`"),
        (
            5,
            "`2001:DB8::/32` is not written canonically: write `2001:db8::/32`",
        ),
    ] {
        assert!(
            answers[i].starts_with("refused: ") && answers[i].contains(why),
            "{i}: {why}\n{answers:?}"
        );
    }
    let answers = told(&llm, 2);
    assert_eq!(answers.len(), 5, "{answers:?}");
    for answer in &answers {
        assert!(
            answer.starts_with("recorded as plan step(s)"),
            "{answers:?}"
        );
    }
    // The half that completes the /16 raises the one before it, and the
    // model is told.
    assert!(
        answers[2].ends_with("; step(s) 2, 3 are now destructive: with the plan's other rules on the same security group they open it to a /16 or /48 of addresses or more"),
        "{answers:?}"
    );
    let ingress = "ec2:AuthorizeSecurityGroupIngress";
    for expected in [
        line(1, "destructive", ingress, &web),
        line(2, "destructive", ingress, &db),
        line(3, "destructive", ingress, &db),
        line(4, "write", ingress, &lone),
        line(5, "destructive", ingress, &lone),
    ] {
        assert!(reply.contains(&expected), "{expected}\n{reply}");
    }
    assert_eq!(
        tiers(&app, 1).await,
        [
            "destructive",
            "destructive",
            "destructive",
            "write",
            "destructive"
        ]
    );
    requester_alone_is_refused(&app, &gh, 2, 1).await;
    for g in [&web, &db, &lone] {
        assert_eq!(ranges(&aws, g).await, Vec::<String>::new(), "{g}");
    }
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_bucket_policy_that_reaches_outside_the_account_or_locks_it_out_is_destructive() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    moto::bucket(&aws, "acme-logs").await;
    let policy =
        |statement: Value| json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string();
    let get = |principal: Value| {
        policy(
            json!({ "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
                       "Resource": "arn:aws:s3:::acme-logs/*" }),
        )
    };
    let ours = get(json!({ "AWS": format!("arn:aws:iam::{ACCOUNT}:role/reader") }));
    let cases = [
        (ours, "write"),
        (
            get(json!({ "AWS": "arn:aws:iam::210987654321:root" })),
            "destructive",
        ),
        (
            get(json!({ "AWS": [format!("arn:aws:iam::{ACCOUNT}:root"), "210987654321"] })),
            "destructive",
        ),
        (
            get(json!({ "Service": "logging.s3.amazonaws.com" })),
            "destructive",
        ),
        (
            policy(
                json!({ "Effect": "Allow", "Principal": { "Service": "logging.s3.amazonaws.com" },
                "Action": "s3:PutObject", "Resource": "arn:aws:s3:::acme-logs/*",
                "Condition": { "StringEquals": { "aws:SourceAccount": ACCOUNT } } }),
            ),
            "write",
        ),
        (
            policy(
                json!({ "Effect": "Allow", "NotPrincipal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") },
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-logs/*" }),
            ),
            "destructive",
        ),
        (
            policy(
                json!({ "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::acme-logs", "arn:aws:s3:::acme-logs/*"] }),
            ),
            "destructive",
        ),
        (
            policy(
                json!({ "Effect": "Deny", "Principal": { "AWS": "*" }, "Action": "s3:*",
                "Resource": ["arn:aws:s3:::acme-logs", "arn:aws:s3:::acme-logs/*"],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } } }),
            ),
            "write",
        ),
    ];
    let (gh, llm) = support::world().await;
    config(
        &gh,
        &format!("  account: \"{ACCOUNT}\"\n  buckets: ['acme-*']\n"),
    );
    llm.script([
        Step::Tools(
            cases
                .iter()
                .map(|(doc, _)| {
                    (
                        "aws_put_bucket_policy",
                        json!({ "bucket": "acme-logs", "policy": doc }),
                    )
                })
                .collect(),
        ),
        Step::Answer("Share the logs.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan share the logs").await;
    for (i, (doc, tier)) in cases.iter().enumerate() {
        let expected = line(i + 1, tier, "s3:PutBucketPolicy", "acme-logs");
        assert!(reply.contains(&expected), "{expected}\n{doc}\n{reply}");
    }
    assert_eq!(
        tiers(&app, 1).await,
        cases.iter().map(|(_, t)| *t).collect::<Vec<_>>()
    );
    requester_alone_is_refused(&app, &gh, 2, 1).await;
    assert_eq!(
        agentic::aws::read::bucket_policy(&aws, "acme-logs")
            .await
            .unwrap(),
        None,
        "nothing was applied"
    );

    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn without_an_account_in_the_config_every_account_in_a_bucket_policy_is_outside() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    moto::bucket(&aws, "acme-logs").await;
    let ours = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") },
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-logs/*" }] })
    .to_string();
    let (gh, llm) = support::world().await;
    config(&gh, "  buckets: ['acme-*']\n");
    llm.script([
        Step::Tool(
            "aws_put_bucket_policy",
            json!({ "bucket": "acme-logs", "policy": ours }),
        ),
        Step::Answer("Share the logs with the account.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan share").await;
    let expected = line(1, "destructive", "s3:PutBucketPolicy", "acme-logs");
    assert!(reply.contains(&expected), "{reply}");
    assert!(
        reply.contains("while this repository names no `aws.account`"),
        "the reason is shown: {reply}"
    );
    assert_eq!(tiers(&app, 1).await, ["destructive"]);
    requester_alone_is_refused(&app, &gh, 2, 1).await;
    assert_eq!(
        agentic::aws::read::bucket_policy(&aws, "acme-logs")
            .await
            .unwrap(),
        None
    );
    app.stop().await;
    llm.assert_clean();
}

/// Create a managed policy `name` allowing `action` on `resource`; its ARN.
async fn managed_policy(aws: &Aws, name: &str, action: &str, resource: &str) -> String {
    let document = json!({ "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": action, "Resource": resource }] });
    aws.iam
        .create_policy()
        .policy_name(name)
        .policy_document(document.to_string())
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap()
}

#[tokio::test]
async fn an_admin_equivalent_policy_is_attached_only_when_the_repository_allows_it_by_arn() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    aws.iam
        .create_user()
        .user_name("deployer")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(TAG.0)
                .value(TAG.1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let admin = managed_policy(&aws, "Admin", "*", "*").await;
    let listed_admin = managed_policy(&aws, "BreakGlass", "*", "*").await;
    let pass = managed_policy(&aws, "PassAny", "iam:PassRole", "*").await;
    let assume = managed_policy(&aws, "AssumeAny", "sts:AssumeRole", "*").await;
    let iam_all = managed_policy(&aws, "IamAll", "iam:*", "*").await;
    let read = managed_policy(&aws, "ReadLogs", "s3:GetObject", "arn:aws:s3:::acme-logs/*").await;
    let (gh, llm) = support::world().await;
    config(
        &gh,
        &format!("  attachable_policies: [\"{listed_admin}\"]\n"),
    );
    let attach = |arn: &str| {
        (
            "aws_attach_user_policy",
            json!({ "user": "deployer", "policy_arn": arn }),
        )
    };
    llm.script([
        Step::Tools(vec![
            attach(&admin),
            attach(&pass),
            attach(&assume),
            attach(&iam_all),
            attach(&listed_admin),
            attach(&read),
        ]),
        Step::Answer("Give the deployer what it needs.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let reply = say(&app, &gh, 1, "bob-reviewer", "/agentic plan grant").await;
    let answers = told(&llm, 1);
    assert_eq!(answers.len(), 6, "{answers:?}");
    for (i, arn) in [(0, &admin), (1, &pass), (2, &assume), (3, &iam_all)] {
        assert!(
            answers[i].starts_with(&format!("refused: `{arn}` is admin-equivalent"))
                && answers[i].contains("`aws.attachable_policies`"),
            "{i}: {answers:?}"
        );
    }
    assert!(
        answers[0].contains("allows every action (`*`)"),
        "{answers:?}"
    );
    assert!(
        answers[4].starts_with("recorded as plan step(s) 1–1"),
        "{answers:?}"
    );
    assert!(
        answers[5].starts_with("recorded as plan step(s) 2–2"),
        "{answers:?}"
    );
    let plan = app.store().plan(1).await.unwrap().unwrap();
    let attached: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| s.arguments["policy_arn"].as_str().unwrap())
        .collect();
    assert_eq!(attached, [listed_admin.as_str(), read.as_str()]);
    assert!(
        reply.contains(&line(1, "destructive", "iam:AttachUserPolicy", "deployer")),
        "{reply}"
    );
    // Refused, it is no step of the plan; it is listed as refused.
    let (steps, refused) = reply
        .split_once("Refused while planning (not part of the plan):")
        .expect("refusals are listed");
    assert!(!steps.contains(&admin), "{reply}");
    assert!(
        refused.contains(&format!("`deployer / {admin}`")),
        "{reply}"
    );
    requester_alone_is_refused(&app, &gh, 2, 1).await;
    let held = agentic::aws::read::attached_policies(
        &aws,
        &agentic::aws::read::Holder::User("deployer".into()),
    )
    .await
    .unwrap();
    assert!(held.is_empty(), "{held:?}");
    // A maintainer approves: only the allowed and the harmless one.
    say(&app, &gh, 3, "mia-maintainer", "/agentic approve").await;
    let applied = say(&app, &gh, 4, "bob-reviewer", "/agentic apply").await;
    assert!(applied.starts_with("Plan 1 is applied."), "{applied}");
    let mut held: Vec<String> = agentic::aws::read::attached_policies(
        &aws,
        &agentic::aws::read::Holder::User("deployer".into()),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|p| p.arn)
    .collect();
    held.sort();
    let mut wanted = vec![listed_admin.clone(), read.clone()];
    wanted.sort();
    assert_eq!(held, wanted);
    app.stop().await;
    llm.assert_clean();
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
    let ours = moto::security_group(&aws, "ours", &[TAG]).await;
    let theirs = moto::security_group(&aws, "theirs", &[("agentic:repo", "someone/else")]).await;
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

#[tokio::test]
async fn a_policy_whose_default_version_changed_after_approval_is_not_attached() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    aws.iam
        .create_user()
        .user_name("deployer")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(TAG.0)
                .value(TAG.1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let read = managed_policy(&aws, "ReadLogs", "s3:GetObject", "arn:aws:s3:::acme-logs/*").await;
    let (gh, llm) = support::world().await;
    config(&gh, "");
    llm.script([
        Step::Tool(
            "aws_attach_user_policy",
            json!({ "user": "deployer", "policy_arn": read }),
        ),
        Step::Answer("Let the deployer read logs.".into()),
    ]);
    let app = app(&gh, &llm).await;
    say(&app, &gh, 1, "bob-reviewer", "/agentic plan read logs").await;
    let approved = say(&app, &gh, 2, "mia-maintainer", "/agentic approve 1").await;
    assert!(approved.contains("Ready"), "{approved}");
    // After the approval, the policy's default version becomes admin.
    aws.iam
        .create_policy_version()
        .policy_arn(&read)
        .policy_document(
            json!({ "Version": "2012-10-17",
                "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }] })
            .to_string(),
        )
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let refused = say(&app, &gh, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(
        refused.contains("default version is v2 now, not the v1 that was approved"),
        "{refused}"
    );
    let held = agentic::aws::read::attached_policies(
        &aws,
        &agentic::aws::read::Holder::User("deployer".into()),
    )
    .await
    .unwrap();
    assert!(held.is_empty(), "{held:?}");
    app.stop().await;
    llm.assert_clean();
}
