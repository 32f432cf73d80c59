//! AWS clients (one S3 client per side, SQS and DataSync for the control plane), the error
//! type every call returns, and the S3 primitives the capabilities share.
//!
//! Credentials: the default chain (env, web identity for IRSA, ECS task role, IMDS), optionally
//! narrowed to a named profile, optionally used to assume `role_arn` (with `external_id`).
//! Retries: the SDK's standard mode with `aws.max_attempts`; nothing else retries a request.
//! Time limits: every call is bounded by `aws.connect_timeout`, `read_timeout`,
//! `attempt_timeout` and `operation_timeout`, so a hung endpoint becomes an error, not a hang.

pub mod datasync;
mod error;
pub mod s3;
pub mod sqs;

pub use error::{AwsError, classify};

use crate::metrics::Metrics;

/// Counts a failed call in `aws_request_errors_total` (by service, operation and kind) and
/// hands it back: every wrapper's failures go through here.
pub(crate) fn counted(metrics: &Metrics, e: AwsError) -> AwsError {
    metrics.aws.call_failed(e.operation, e.kind);
    e
}

/// An SDK call's future, counted in `aws_requests_total` and timed in
/// `aws_request_duration_seconds` (the SDK's retries of one call count once, inside its
/// time): `client.op().send().timed(&self.metrics, S3Op::Op)`.
pub(crate) trait Timed: std::future::Future + Sized {
    fn timed(
        self,
        metrics: &Metrics,
        op: impl Into<crate::labels::AwsOp>,
    ) -> impl std::future::Future<Output = Self::Output> {
        metrics.aws.call(op.into(), self)
    }
}

impl<F: std::future::Future> Timed for F {}

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::{Account, AwsSettings, BucketSide, Config};

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
        let control = sdk_config(&cfg.control_account(), &cfg.aws).await;
        Clients {
            source: s3_client(&cfg.source, &cfg.aws).await,
            target: s3_client(&cfg.target, &cfg.aws).await,
            sqs: aws_sdk_sqs::Client::new(&control),
            datasync: aws_sdk_datasync::Client::new(&control),
        }
    }
}

/// Shared SDK settings for one account.
pub(crate) async fn sdk_config(account: &Account, settings: &AwsSettings) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(account.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.get()))
        .timeout_config(timeouts);
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
pub async fn s3_client(side: &BucketSide, settings: &AwsSettings) -> aws_sdk_s3::Client {
    let shared = sdk_config(&side.account, settings).await;
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(side.path_style())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
