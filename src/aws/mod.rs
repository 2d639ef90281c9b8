//! AWS on the real SDK: clients built once from the SDK's standard
//! environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credential chain),
//! over the one TLS stack this program has (rustls with ring), with a
//! pinned behaviour version so an SDK upgrade cannot change retries and
//! timeouts behind our back.
//!
//! `read.rs` holds the operations that only look; `policy.rs` the
//! least-privilege check of an IAM policy document, done on our side.

pub mod action;
pub mod apply;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod ingress;
pub mod inventory;
pub mod policy;
pub mod read;
pub mod scope;
pub mod tools;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// AWS for one conversation: the clients and the repository's scope. A
/// repository without an `aws` section gets none, and so no AWS tool.
#[derive(Clone)]
pub struct AwsAccess {
    pub aws: Aws,
    pub scope: crate::repo_config::AwsScope,
}

/// The behaviour version every client is built with (retries on, a 3.1 s
/// connect timeout). Raised on purpose, with a look at its release notes.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// The HTTP client of every AWS call: rustls with ring (the only crypto
/// provider this program compiles), speaking plain `http://` too for an
/// endpoint on loopback.
pub fn http_client() -> aws_sdk_ec2::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK's configuration loader with our HTTP client and behaviour
/// version; everything else from the standard environment unless set.
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(behavior_version()).http_client(http_client())
}

/// An AWS call that failed: what was asked, AWS's error code when it gave
/// one (`AccessDenied`, `NoSuchBucketPolicy`…), and the message.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct AwsError {
    pub what: String,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    fn from_sdk<E, R>(what: impl Into<String>, e: aws_sdk_ec2::error::SdkError<E, R>) -> AwsError
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        let code = e.code().map(str::to_string);
        let message = match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(),
        };
        AwsError {
            what: what.into(),
            code,
            message,
        }
    }
}

/// A role to assume: under which session name and tags (so that
/// CloudTrail leads back to the plan, the repository and the approvers),
/// and limited by which inline session policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSession {
    pub arn: String,
    pub session_name: String,
    pub tags: Vec<(String, String)>,
    pub policy: Option<String>,
}

/// The SDK clients, in the configured region.
#[derive(Clone)]
pub struct Aws {
    pub config: SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Aws {
    /// Clients from the SDK's standard environment. S3 uses path-style
    /// addresses when an endpoint is set (an S3-compatible server or moto
    /// on loopback has no DNS for `bucket.host`).
    pub async fn from_env() -> Aws {
        Aws::from_config(loader().load().await)
    }

    /// Clients from the standard environment, with the endpoint and the
    /// region of the settings where they are given.
    pub async fn from_settings(config: &crate::config::Config) -> Aws {
        let mut loader = loader();
        if let Some(url) = &config.aws_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &config.aws_region {
            loader = loader.region(Region::new(region.clone()));
        }
        let aws = Aws::from_config(loader.load().await);
        match &config.aws_role_arn {
            None => aws,
            Some(arn) => {
                aws.assuming(&RoleSession {
                    arn: arn.clone(),
                    session_name: "agentic-investigation".into(),
                    tags: vec![],
                    policy: None,
                })
                .await
            }
        }
    }

    /// Clients from a loaded configuration (see [`loader`]).
    pub fn from_config(config: SdkConfig) -> Aws {
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Aws {
            ec2: aws_sdk_ec2::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            iam: aws_sdk_iam::Client::new(&config),
            config,
        }
    }

    /// These clients, with credentials from assuming `role` (through STS,
    /// with this configuration's endpoint, region and HTTP client).
    pub async fn assuming(&self, role: &RoleSession) -> Aws {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(&role.arn)
            .session_name(&role.session_name)
            .configure(&self.config);
        if !role.tags.is_empty() {
            builder = builder.tags(role.tags.clone());
        }
        if let Some(policy) = &role.policy {
            builder = builder.policy(policy.clone());
        }
        let provider = builder.build().await;
        let config = self
            .config
            .to_builder()
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
        Aws::from_config(config)
    }

    /// The region the clients use, if one is configured.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(Region::as_ref)
    }

    /// An EC2 client for `region` (the configured one when `None`).
    pub fn ec2_in(&self, region: Option<&str>) -> aws_sdk_ec2::Client {
        match region {
            Some(r) if Some(r) != self.region() => aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&self.config)
                    .region(Region::new(r.to_string()))
                    .build(),
            ),
            _ => self.ec2.clone(),
        }
    }
}
