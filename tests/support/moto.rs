//! moto in server mode, started by `scripts/test.sh` on loopback
//! (`AGENTIC_TEST_MOTO_URL`), and the real SDK clients pointed at it with
//! static dummy credentials. Not set is a failure, never a skip.
#![allow(dead_code)]

use agentic::aws::Aws;

/// The region tests create most things in, and the other one.
pub const REGION: &str = "eu-west-1";
pub const OTHER_REGION: &str = "us-west-2";
/// Dummy credentials, shaped like real ones so the redactor's rules apply.
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub fn url() -> String {
    std::env::var("AGENTIC_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "AGENTIC_TEST_MOTO_URL is not set: the AWS tests run against moto \
             (scripts/test.sh starts it)"
        )
    })
}

/// Clear moto's state.
pub async fn reset() {
    agentic::install_crypto_provider();
    let res = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", url()))
        .send()
        .await
        .expect("moto answers");
    assert!(res.status().is_success(), "moto reset: {}", res.status());
}

/// SDK clients on moto, in `region`.
pub async fn aws(region: &str) -> Aws {
    let credentials =
        aws_sdk_ec2::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests");
    let config = agentic::aws::loader()
        .endpoint_url(url())
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(credentials)
        .load()
        .await;
    Aws::from_config(config)
}

/// The environment the `agentic` binary needs to reach moto.
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", url()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("NO_PROXY", "127.0.0.1,localhost".to_string()),
    ]
}

/// Start an instance in moto with `tags`; its id.
pub async fn instance(aws: &Aws, tags: &[(&str, &str)]) -> String {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = aws
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("moto runs the instance");
    out.instances()[0].instance_id().unwrap().to_string()
}

/// An instance's state (`running`, `stopped`, `terminated`…) as moto has it.
pub async fn state(aws: &Aws, id: &str) -> String {
    let filter = agentic::aws::read::InstanceFilter {
        ids: vec![id.to_string()],
        ..Default::default()
    };
    agentic::aws::read::instances(aws, None, &filter)
        .await
        .expect("moto describes the instance")[0]
        .state
        .clone()
}

/// The ids of every instance in the client's region that is not
/// terminated, sorted.
pub async fn instance_ids(aws: &Aws) -> Vec<String> {
    agentic::aws::read::instances(aws, None, &Default::default())
        .await
        .expect("moto lists instances")
        .into_iter()
        .filter(|i| i.state != "terminated")
        .map(|i| i.id)
        .collect()
}

/// Create bucket `name` in moto (in [`REGION`]).
pub async fn bucket(aws: &Aws, name: &str) {
    aws.s3
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .expect("moto creates the bucket");
}

/// A security group in moto's default VPC, with `tags`; its id.
pub async fn security_group(aws: &Aws, name: &str, tags: &[(&str, &str)]) -> String {
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
