//! Operations that only look (risk tier `read`): EC2 instances and
//! security groups, S3 buckets with their policy and public-access block,
//! IAM users, roles and attached policies. Each returns our own small,
//! serializable type, so the command line, the model's tools and the scope
//! checks read the same facts.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Aws, AwsError};

/// One EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub state: String,
    pub region: String,
    pub availability_zone: String,
    pub image_id: String,
    pub tags: BTreeMap<String, String>,
}

/// Which instances to list: every given tag must match, and the state when
/// given.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub tags: Vec<(String, String)>,
    pub state: Option<String>,
    pub ids: Vec<String>,
}

/// Instances in `region` (the configured one when `None`) that match.
pub async fn instances(
    aws: &Aws,
    region: Option<&str>,
    filter: &InstanceFilter,
) -> Result<Vec<Instance>, AwsError> {
    use aws_sdk_ec2::types::Filter;
    let client = aws.ec2_in(region);
    let region = region.or(aws.region()).unwrap_or("(no region)").to_string();
    let mut request = client.describe_instances();
    for (k, v) in &filter.tags {
        request = request.filters(Filter::builder().name(format!("tag:{k}")).values(v).build());
    }
    if let Some(state) = &filter.state {
        request = request.filters(
            Filter::builder()
                .name("instance-state-name")
                .values(state)
                .build(),
        );
    }
    for id in &filter.ids {
        request = request.instance_ids(id);
    }
    let pages = request
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk(format!("EC2 DescribeInstances in {region}"), e))?;
    let mut out = Vec::new();
    for page in pages {
        for reservation in page.reservations() {
            for i in reservation.instances() {
                out.push(Instance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                    region: region.clone(),
                    availability_zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    image_id: i.image_id().unwrap_or_default().to_string(),
                    tags: tag_map(i.tags()),
                });
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// EC2's tags as a map.
fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// One security group, with the ingress rules open to the whole internet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    /// `tcp 22 from 0.0.0.0/0`, …
    pub open_to_world: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// Security groups in `region`.
pub async fn security_groups(
    aws: &Aws,
    region: Option<&str>,
) -> Result<Vec<SecurityGroup>, AwsError> {
    groups(aws, region, None).await
}

/// Security group `id` in `region` as AWS reports it now; `None` when AWS
/// does not know it there.
pub async fn security_group(
    aws: &Aws,
    region: &str,
    id: &str,
) -> Result<Option<SecurityGroup>, AwsError> {
    match groups(aws, Some(region), Some(id)).await {
        Ok(found) => Ok(found.into_iter().find(|g| g.id == id)),
        Err(e)
            if e.code
                .as_deref()
                .is_some_and(|c| c.starts_with("InvalidGroup")) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn groups(
    aws: &Aws,
    region: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<SecurityGroup>, AwsError> {
    let client = aws.ec2_in(region);
    let pages = client
        .describe_security_groups()
        .set_group_ids(id.map(|id| vec![id.to_string()]))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeSecurityGroups", e))?;
    let mut out = Vec::new();
    for page in pages {
        for g in page.security_groups() {
            let mut open = Vec::new();
            for p in g.ip_permissions() {
                let ports = match (p.from_port(), p.to_port()) {
                    (Some(a), Some(b)) if a == b => a.to_string(),
                    (Some(a), Some(b)) if a >= 0 => format!("{a}-{b}"),
                    _ => "all ports".to_string(),
                };
                let proto = match p.ip_protocol().unwrap_or("-1") {
                    "-1" => "all protocols",
                    other => other,
                };
                let world = p
                    .ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
                    .filter(|c| *c == "0.0.0.0/0" || *c == "::/0");
                for cidr in world {
                    open.push(format!("{proto} {ports} from {cidr}"));
                }
            }
            out.push(SecurityGroup {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
                open_to_world: open,
                tags: tag_map(g.tags()),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The names of every bucket the credentials can list.
pub async fn buckets(aws: &Aws) -> Result<Vec<String>, AwsError> {
    let out = aws
        .s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("S3 ListBuckets", e))?;
    let mut names: Vec<String> = out
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// A bucket's policy document, or `None` when it has none.
pub async fn bucket_policy(aws: &Aws, bucket: &str) -> Result<Option<String>, AwsError> {
    match aws.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) => {
            let e = AwsError::from_sdk(format!("S3 GetBucketPolicy of {bucket}"), e);
            if e.code.as_deref() == Some("NoSuchBucketPolicy") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// A bucket's public-access block; `None` when it has none (public access
/// is then decided by its policy and ACLs alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings on: nothing in the bucket can be made public.
    pub fn blocks_everything(&self) -> bool {
        self.block_public_acls
            && self.ignore_public_acls
            && self.block_public_policy
            && self.restrict_public_buckets
    }
}

pub async fn public_access_block(
    aws: &Aws,
    bucket: &str,
) -> Result<Option<PublicAccessBlock>, AwsError> {
    match aws.s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .public_access_block_configuration()
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            })),
        Err(e) => {
            let e = AwsError::from_sdk(format!("S3 GetPublicAccessBlock of {bucket}"), e);
            if e.code.as_deref() == Some("NoSuchPublicAccessBlockConfiguration") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// An IAM user or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub arn: String,
}

pub async fn users(aws: &Aws) -> Result<Vec<Principal>, AwsError> {
    let pages = aws
        .iam
        .list_users()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk("IAM ListUsers", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.users())
        .map(|u| Principal {
            name: u.user_name().to_string(),
            arn: u.arn().to_string(),
        })
        .collect())
}

/// An IAM user as a change sees it: its ARN and its tags, as AWS reports
/// them now; `None` when there is no such user.
pub async fn user(
    aws: &Aws,
    name: &str,
) -> Result<Option<(Principal, BTreeMap<String, String>)>, AwsError> {
    let user = match aws.iam.get_user().user_name(name).send().await {
        Ok(out) => match out.user {
            Some(u) => u,
            None => return Ok(None),
        },
        Err(e) => {
            let e = AwsError::from_sdk(format!("IAM GetUser of {name}"), e);
            return if e.code.as_deref() == Some("NoSuchEntity") {
                Ok(None)
            } else {
                Err(e)
            };
        }
    };
    let pages = aws
        .iam
        .list_user_tags()
        .user_name(name)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk(format!("IAM ListUserTags of {name}"), e))?;
    let tags = pages
        .iter()
        .flat_map(|p| p.tags())
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(Some((
        Principal {
            name: user.user_name().to_string(),
            arn: user.arn().to_string(),
        },
        tags,
    )))
}

/// The tags of IAM role `name`.
pub async fn role_tags(aws: &Aws, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let pages = aws
        .iam
        .list_role_tags()
        .role_name(name)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk(format!("IAM ListRoleTags of {name}"), e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.tags())
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// A managed policy's default version: its id and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`…: what a plan binds to, so that a new default version
    /// set after the approval is not what gets attached.
    pub id: String,
    pub document: String,
}

/// The document of managed policy `arn`'s default version (IAM hands it
/// out URL-encoded); `None` when there is no such policy.
pub async fn policy_document(aws: &Aws, arn: &str) -> Result<Option<String>, AwsError> {
    Ok(policy_version(aws, arn).await?.map(|v| v.document))
}

/// Managed policy `arn`'s default version; `None` when there is no such
/// policy.
pub async fn policy_version(aws: &Aws, arn: &str) -> Result<Option<PolicyVersion>, AwsError> {
    let policy = match aws.iam.get_policy().policy_arn(arn).send().await {
        Ok(out) => out.policy,
        Err(e) => {
            let e = AwsError::from_sdk(format!("IAM GetPolicy of {arn}"), e);
            return if e.code.as_deref() == Some("NoSuchEntity") {
                Ok(None)
            } else {
                Err(e)
            };
        }
    };
    let Some(version) = policy.as_ref().and_then(|p| p.default_version_id()) else {
        return Ok(None);
    };
    let out = aws
        .iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(format!("IAM GetPolicyVersion of {arn}"), e))?;
    let raw = out
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or_default();
    let document = if raw.trim_start().starts_with('{') {
        raw.to_string()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some(PolicyVersion {
        id: version.to_string(),
        document,
    }))
}

/// Whether object `key` is in `bucket`.
pub async fn object_exists(aws: &Aws, bucket: &str, key: &str) -> Result<bool, AwsError> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = AwsError::from_sdk(format!("S3 HeadObject of {bucket}/{key}"), e);
            // HEAD has no body, so S3's 404 comes without a code of its own.
            if matches!(e.code.as_deref(), Some("NotFound" | "NoSuchKey")) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

pub async fn roles(aws: &Aws) -> Result<Vec<Principal>, AwsError> {
    let pages = aws
        .iam
        .list_roles()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk("IAM ListRoles", e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.roles())
        .map(|r| Principal {
            name: r.role_name().to_string(),
            arn: r.arn().to_string(),
        })
        .collect())
}

/// Whose attached policies to list.
#[derive(Debug, Clone)]
pub enum Holder {
    User(String),
    Role(String),
}

/// The managed policies attached to a user or a role: (name, ARN).
pub async fn attached_policies(aws: &Aws, holder: &Holder) -> Result<Vec<Principal>, AwsError> {
    let attached: Vec<aws_sdk_iam::types::AttachedPolicy> = match holder {
        Holder::User(u) => aws
            .iam
            .list_attached_user_policies()
            .user_name(u)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| AwsError::from_sdk(format!("IAM ListAttachedUserPolicies of {u}"), e))?
            .into_iter()
            .flat_map(|p| p.attached_policies.unwrap_or_default())
            .collect(),
        Holder::Role(r) => aws
            .iam
            .list_attached_role_policies()
            .role_name(r)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| AwsError::from_sdk(format!("IAM ListAttachedRolePolicies of {r}"), e))?
            .into_iter()
            .flat_map(|p| p.attached_policies.unwrap_or_default())
            .collect(),
    };
    Ok(attached
        .iter()
        .map(|a| Principal {
            name: a.policy_name().unwrap_or_default().to_string(),
            arn: a.policy_arn().unwrap_or_default().to_string(),
        })
        .collect())
}

/// An image (AMI) this account owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

/// The images this account owns in `region`.
pub async fn images(aws: &Aws, region: Option<&str>) -> Result<Vec<Image>, AwsError> {
    let out = aws
        .ec2_in(region)
        .describe_images()
        .owners("self")
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeImages", e))?;
    let mut images: Vec<Image> = out
        .images()
        .iter()
        .map(|i| Image {
            id: i.image_id().unwrap_or_default().to_string(),
            name: i.name().unwrap_or_default().to_string(),
            state: i
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            tags: tag_map(i.tags()),
        })
        .collect();
    images.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(images)
}

/// One object of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    pub key: String,
    pub size: i64,
}

/// Most objects one listing returns: a look, not an inventory.
pub const MAX_OBJECTS: i32 = 1000;

/// Up to [`MAX_OBJECTS`] objects of `bucket` under `prefix`, and whether
/// there are more.
pub async fn objects(
    aws: &Aws,
    bucket: &str,
    prefix: Option<&str>,
) -> Result<(Vec<Object>, bool), AwsError> {
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_string))
        .max_keys(MAX_OBJECTS)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(format!("S3 ListObjectsV2 of {bucket}"), e))?;
    let objects = out
        .contents()
        .iter()
        .map(|o| Object {
            key: o.key().unwrap_or_default().to_string(),
            size: o.size().unwrap_or(0),
        })
        .collect();
    Ok((objects, out.is_truncated().unwrap_or(false)))
}

/// The default encryption of a bucket (`AES256`, `aws:kms`…), `None` when
/// it has none configured.
pub async fn bucket_encryption(aws: &Aws, bucket: &str) -> Result<Option<String>, AwsError> {
    match aws.s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_string())),
        Err(e) => {
            let e = AwsError::from_sdk(format!("S3 GetBucketEncryption of {bucket}"), e);
            if e.code.as_deref() == Some("ServerSideEncryptionConfigurationNotFoundError") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// A bucket's versioning status (`Enabled`, `Suspended`), `None` when it
/// was never turned on.
pub async fn bucket_versioning(aws: &Aws, bucket: &str) -> Result<Option<String>, AwsError> {
    let out = aws
        .s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(format!("S3 GetBucketVersioning of {bucket}"), e))?;
    Ok(out.status().map(|s| s.as_str().to_string()))
}

/// An access key's metadata (never its secret, which AWS does not give
/// out after creation anyway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessKey {
    pub id: String,
    pub status: String,
    pub created: String,
}

pub async fn access_keys(aws: &Aws, user: &str) -> Result<Vec<AccessKey>, AwsError> {
    let pages = aws
        .iam
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| AwsError::from_sdk(format!("IAM ListAccessKeys of {user}"), e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.access_key_metadata())
        .map(|k| AccessKey {
            id: k.access_key_id().unwrap_or_default().to_string(),
            status: k
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            created: k.create_date().map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect())
}

/// The account the credentials in use belong to (STS GetCallerIdentity).
pub async fn account(aws: &Aws) -> Result<String, AwsError> {
    let sts = aws_sdk_sts::Client::new(&aws.config);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("STS GetCallerIdentity", e))?;
    Ok(out.account().unwrap_or_default().to_string())
}
