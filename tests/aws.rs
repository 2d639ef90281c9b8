//! The AWS read tools on the real SDK against moto (server mode, on
//! loopback): resources are created through the SDK, read back through
//! `agentic aws …` (the real binary, configured only by the SDK's standard
//! environment), and the answers compared with what was created. moto's
//! state is shared, so the tests here take turns and reset it first.

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::moto::{self, OTHER_REGION, REGION, SECRET_KEY};
use tokio::sync::Mutex;

/// One test at a time on the one moto.
static MOTO: Mutex<()> = Mutex::const_new(());

/// `agentic aws <args>` with moto's environment and nothing else.
fn agentic_aws(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentic"));
    cmd.arg("aws").args(args).env_clear().env("RUST_LOG", "off");
    for (k, v) in moto::env() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(SECRET_KEY),
            "the secret key was printed"
        );
    }
    out
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn instances_are_listed_by_tag_state_and_region() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let there = moto::aws(OTHER_REGION).await;
    let tagged = moto::instance(&here, &[("agentic:repo", "acme/infra"), ("env", "staging")]).await;
    let untagged = moto::instance(&here, &[("env", "staging")]).await;
    let far = moto::instance(&there, &[("agentic:repo", "acme/infra")]).await;
    here.ec2
        .stop_instances()
        .instance_ids(&untagged)
        .send()
        .await
        .unwrap();

    let all = json(&agentic_aws(&["ec2", "list", "--json"]));
    let mut expected = vec![tagged.clone(), untagged.clone()];
    expected.sort();
    assert_eq!(ids(&all), expected, "AWS_REGION's instances only");
    let mine = json(&agentic_aws(&[
        "ec2",
        "list",
        "--tag",
        "agentic:repo=acme/infra",
        "--json",
    ]));
    assert_eq!(ids(&mine), std::slice::from_ref(&tagged));
    assert_eq!(mine[0]["tags"]["env"], "staging");
    assert_eq!(mine[0]["instance_type"], "t3.micro");
    assert_eq!(mine[0]["region"], REGION);
    let stopped = json(&agentic_aws(&[
        "ec2", "list", "--state", "stopped", "--json",
    ]));
    assert_eq!(ids(&stopped), std::slice::from_ref(&untagged));
    let other = json(&agentic_aws(&[
        "ec2",
        "list",
        "--region",
        OTHER_REGION,
        "--json",
    ]));
    assert_eq!(ids(&other), [far]);
    let described = agentic_aws(&["ec2", "describe", &tagged]);
    assert!(described.status.success());
    assert!(
        text(&described).starts_with(&format!("{tagged}  running  t3.micro  ")),
        "{}",
        text(&described)
    );
    let image = here
        .ec2
        .create_image()
        .instance_id(&tagged)
        .name("batch-worker-2026-11")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    let images = json(&agentic_aws(&["ec2", "images", "--json"]));
    assert!(
        images
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == image.as_str() && i["name"] == "batch-worker-2026-11"),
        "{images}"
    );
    let bad = agentic_aws(&["ec2", "list", "--tag", "novalue"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`novalue` is not `key=value`"));
}

#[tokio::test]
async fn security_groups_open_to_the_internet_are_named() {
    use aws_sdk_ec2::types::{IpPermission, IpRange};
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let group = aws
        .ec2
        .create_security_group()
        .group_name("bastion")
        .description("ssh")
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let groups = json(&agentic_aws(&["ec2", "security-groups", "--json"]));
    let bastion = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == group.as_str())
        .expect("the group is listed");
    assert_eq!(
        bastion["open_to_world"],
        serde_json::json!(["tcp 22 from 0.0.0.0/0"])
    );
    let default = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "default")
        .expect("moto's default group");
    assert_eq!(default["open_to_world"], serde_json::json!([]));
}

#[tokio::test]
async fn buckets_their_policies_and_public_access_blocks() {
    use aws_sdk_s3::types::PublicAccessBlockConfiguration;
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    for name in ["acme-logs", "acme-site"] {
        moto::bucket(&aws, name).await;
    }
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-site/*"}]}"#;
    aws.s3
        .put_bucket_policy()
        .bucket("acme-site")
        .policy(policy)
        .send()
        .await
        .unwrap();
    aws.s3
        .put_public_access_block()
        .bucket("acme-logs")
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
        .unwrap();

    assert_eq!(
        json(&agentic_aws(&["s3", "ls", "--json"])),
        serde_json::json!(["acme-logs", "acme-site"])
    );
    let printed: Value =
        serde_json::from_str(&text(&agentic_aws(&["s3", "policy", "acme-site"]))).unwrap();
    assert_eq!(printed["Statement"][0]["Principal"], "*");
    assert_eq!(
        text(&agentic_aws(&["s3", "policy", "acme-logs"])),
        "`acme-logs` has no bucket policy\n"
    );
    assert_eq!(
        text(&agentic_aws(&["s3", "public-access", "acme-logs"])),
        "`acme-logs` blocks all public access\n"
    );
    assert_eq!(
        text(&agentic_aws(&["s3", "public-access", "acme-site"])),
        "`acme-site` has no public-access block: its policy and ACLs alone decide\n"
    );
    for key in ["2026/11/30.log", "2026/12/01.log"] {
        aws.s3
            .put_object()
            .bucket("acme-logs")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"line\n"))
            .send()
            .await
            .unwrap();
    }
    let objects = json(&agentic_aws(&[
        "s3",
        "objects",
        "acme-logs",
        "--prefix",
        "2026/12",
        "--json",
    ]));
    assert_eq!(
        objects,
        serde_json::json!([{ "key": "2026/12/01.log", "size": 5 }])
    );
    // `s3 versioning` is not asked here: moto 5.2.5 answers
    // GetBucketVersioning with a `GetBucketVersioningResponse` root, which
    // S3 never sends and the Rust SDK (unlike botocore) refuses to parse.
    aws.s3
        .put_bucket_encryption()
        .bucket("acme-site")
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        text(&agentic_aws(&["s3", "encryption", "acme-site"])),
        "`acme-site` encrypts new objects with aws:kms\n"
    );
    // A bucket that does not exist is an error that says so.
    let missing = agentic_aws(&["s3", "policy", "no-such-bucket"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NoSuchBucket"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[tokio::test]
async fn iam_users_roles_and_their_attached_policies() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    aws.iam
        .create_user()
        .user_name("ci-deployer")
        .send()
        .await
        .unwrap();
    let policy_arn = aws
        .iam
        .create_policy()
        .policy_name("deploy")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::acme-site/*"}]}"#)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    aws.iam
        .attach_user_policy()
        .user_name("ci-deployer")
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    aws.iam
        .create_role()
        .role_name("batch")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();

    let users = json(&agentic_aws(&["iam", "users", "--json"]));
    assert_eq!(users[0]["name"], "ci-deployer");
    let roles = json(&agentic_aws(&["iam", "roles", "--json"]));
    assert!(roles
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "batch"));
    let attached = json(&agentic_aws(&[
        "iam",
        "policies",
        "--user",
        "ci-deployer",
        "--json",
    ]));
    assert_eq!(
        attached,
        serde_json::json!([{ "name": "deploy", "arn": policy_arn }])
    );
    let none = agentic_aws(&["iam", "policies", "--role", "batch"]);
    assert_eq!(text(&none), "no attached policies\n");
    let created = aws
        .iam
        .create_access_key()
        .user_name("ci-deployer")
        .send()
        .await
        .unwrap();
    let key = created.access_key().unwrap();
    let out = agentic_aws(&["iam", "access-keys", "--user", "ci-deployer", "--json"]);
    assert!(
        !text(&out).contains(key.secret_access_key()),
        "never the secret"
    );
    let keys = json(&out);
    assert_eq!(keys[0]["id"], key.access_key_id());
    assert_eq!(keys[0]["status"], "Active");
}

#[test]
fn a_policy_is_checked_on_our_side_and_the_exit_status_says_if_it_is_too_wide() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.json");
    std::fs::write(
        &wide,
        r#"{"Statement":[{"Sid":"Ops","Effect":"Allow","Action":"iam:PassRole","Resource":"*"}]}"#,
    )
    .unwrap();
    let out = agentic_aws(&["iam", "check-policy", wide.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let printed = text(&out);
    assert!(
        printed.starts_with("Critical  statement 0 (Ops): `iam:PassRole` on every role"),
        "{printed}"
    );
    let tight = dir.path().join("tight.json");
    std::fs::write(
        &tight,
        r#"{"Statement":[{"Effect":"Allow","Action":"ec2:StartInstances","Resource":"arn:aws:ec2:eu-west-1:1:instance/i-1"}]}"#,
    )
    .unwrap();
    let out = agentic_aws(&["iam", "check-policy", tight.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(text(&out), "no findings\n");
    let out = agentic_aws(&["iam", "check-policy", "/nonexistent.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `/nonexistent.json`"));
}

/// `/agentic ask` with the AWS read tools, through the real router: the
/// model sees this repository's tagged instances in its allowed region
/// only, and is refused another region; a repository without an `aws`
/// section is not offered any AWS tool, and a call to one runs nothing.
#[tokio::test]
async fn ask_reads_aws_within_the_repositorys_scope_only() {
    use support::llm::Step;
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let there = moto::aws(OTHER_REGION).await;
    let repo_tag = ("agentic:repo", support::github::REPO);
    let ours = moto::instance(&here, &[repo_tag, ("env", "staging")]).await;
    let theirs = moto::instance(&here, &[("env", "staging")]).await;
    let far = moto::instance(&there, &[repo_tag]).await;
    moto::bucket(&here, "acme-site").await;
    here.s3
        .put_bucket_policy()
        .bucket("acme-site")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-site/*"}]}"#)
        .send()
        .await
        .unwrap();

    let (gh, llm) = support::world().await;
    gh.file(
        "main",
        ".github/agentic.yml",
        &format!(
            "aws:\n  regions: [{REGION}]\n  required_tag: agentic:repo={}\n  buckets: ['acme-*']\n",
            support::github::REPO
        ),
    );
    llm.script([
        Step::Tool("aws_list_instances", serde_json::json!({})),
        Step::Tool(
            "aws_list_instances",
            serde_json::json!({ "region": OTHER_REGION }),
        ),
        Step::Answer("One instance is ours.".into()),
    ]);
    let options = support::app_options(&gh, &llm)
        .var("AWS_ENDPOINT_URL", moto::url())
        .var("AWS_REGION", REGION);
    let app = support::TestApp::start(options).await;
    support::say(
        &app,
        57,
        990001,
        "bob-reviewer",
        "/agentic ask which instances are ours?",
    )
    .await;
    app.wait_for_jobs(1).await;
    let requests = llm.requests();
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(tools.contains(&"aws_list_instances"), "{tools:?}");
    let answer = |n: usize| llm.last_message(n);
    let listed = answer(1);
    assert!(
        listed.starts_with(&format!("1 instance(s) in {REGION} tagged agentic:repo=")),
        "{listed}"
    );
    assert!(listed.contains(&ours), "{listed}");
    assert!(
        !listed.contains(&theirs) && !listed.contains(&far),
        "{listed}"
    );
    let refused = answer(2);
    assert!(
        refused.starts_with(&format!(
            "refused: region `{OTHER_REGION}` is not in this repository's `aws.regions`"
        )),
        "{refused}"
    );
    assert_eq!(
        gh.comments(57)
            .last()
            .unwrap()
            .body
            .split("\n\n<!--")
            .next(),
        Some("One instance is ours.")
    );
    app.stop().await;

    // Without an `aws` section, no AWS tool is offered, and one called all
    // the same runs nothing.
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_list_buckets", serde_json::json!({})),
        Step::Answer("I may not look.".into()),
    ]);
    let options = support::app_options(&gh, &llm)
        .var("AWS_ENDPOINT_URL", moto::url())
        .var("AWS_REGION", REGION);
    let app = support::TestApp::start(options).await;
    support::say(
        &app,
        57,
        990002,
        "bob-reviewer",
        "/agentic ask which buckets?",
    )
    .await;
    app.wait_for_jobs(1).await;
    let requests = llm.requests();
    let offered = requests[0]["tools"].to_string();
    assert!(!offered.contains("aws_"), "{offered}");
    let last = llm.last_message(1);
    assert_eq!(last, "error: there is no tool named `aws_list_buckets`");
    app.stop().await;
}

#[tokio::test]
async fn instance_changes_from_the_command_line_are_scoped_and_confirmed() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let ours = moto::instance(&aws, &[("agentic:repo", "acme/infra")]).await;
    let theirs = moto::instance(&aws, &[("agentic:repo", "other/team")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agentic.yml");
    std::fs::write(
        &config,
        format!("aws:\n  regions: [{REGION}]\n  required_tag: agentic:repo=acme/infra\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // No terminal and no --yes: nothing happens.
    let out = agentic_aws(&["ec2", "stop", &ours, "--config", config]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not confirmed: nothing changed"));
    assert_eq!(moto::state(&aws, &ours).await, "running");
    // Out of scope: refused, even with --yes, and all or none.
    let out = agentic_aws(&["ec2", "stop", &ours, &theirs, "--config", config, "--yes"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("does not carry the tag `agentic:repo=acme/infra`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(moto::state(&aws, &ours).await, "running");
    assert_eq!(moto::state(&aws, &theirs).await, "running");
    // In scope with --yes: done.
    let out = agentic_aws(&["ec2", "stop", &ours, "--config", config, "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text(&out).starts_with(&format!("{ours}: running → ")),
        "{}",
        text(&out)
    );
    assert_eq!(moto::state(&aws, &ours).await, "stopped");
    let out = agentic_aws(&["ec2", "terminate", &ours, "--config", config, "--yes"]);
    assert!(out.status.success());
    assert_eq!(moto::state(&aws, &ours).await, "terminated");
    // Without an `aws` section nothing may change.
    std::fs::write(dir.path().join("empty.yml"), "review:\n  auto: true\n").unwrap();
    let empty = dir.path().join("empty.yml");
    let out = agentic_aws(&[
        "ec2",
        "stop",
        &theirs,
        "--config",
        empty.to_str().unwrap(),
        "--yes",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `aws` section"));
}
