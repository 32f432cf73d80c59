//! AWS clients, one S3 client per side plus SQS and DataSync for the control plane.
//!
//! Credentials: the default chain (env, web identity for IRSA, ECS task role, IMDS), optionally
//! narrowed to a named profile, optionally used to assume `role_arn` (with `external_id`).
//! Retries: the SDK's standard mode with `aws.max_attempts`; nothing else retries a request.

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::{Account, BucketSide, Config};

/// The clients the daemon needs.
#[derive(Clone, Debug)]
pub struct Clients {
    pub source: aws_sdk_s3::Client,
    pub target: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub datasync: aws_sdk_datasync::Client,
}

impl Clients {
    pub async fn new(cfg: &Config) -> Clients {
        let attempts = cfg.aws.max_attempts;
        let control = sdk_config(&cfg.control_account(), attempts).await;
        Clients {
            source: s3_client(&cfg.source, attempts).await,
            target: s3_client(&cfg.target, attempts).await,
            sqs: aws_sdk_sqs::Client::new(&control),
            datasync: aws_sdk_datasync::Client::new(&control),
        }
    }
}

/// Shared SDK settings for one account.
pub async fn sdk_config(account: &Account, max_attempts: u32) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(account.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts));
    if let Some(profile) = &account.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &account.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let base = loader.load().await;
    let Some(role_arn) = &account.role_arn else {
        return base;
    };
    let mut provider = AssumeRoleProvider::builder(role_arn.clone())
        .session_name("s3-reconciler")
        .region(Region::new(account.region.clone()))
        .configure(&base);
    if let Some(external_id) = &account.external_id {
        provider = provider.external_id(external_id.clone());
    }
    let provider = provider.build().await;
    base.into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The S3 client for one side, with path-style addressing where the endpoint needs it.
pub async fn s3_client(side: &BucketSide, max_attempts: u32) -> aws_sdk_s3::Client {
    let shared = sdk_config(&side.account(), max_attempts).await;
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(side.path_style())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
