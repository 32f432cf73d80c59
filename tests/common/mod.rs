//! Shared helpers for the integration tests. They need the local emulator: `make test` starts
//! it and sets `S3R_TEST_ENDPOINT`; without it every test fails and says so.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use s3_reconciler::config::{BucketSide, Config};

pub const REGION: &str = "ap-northeast-2";

/// The emulator endpoint, or a failure that names the command to run.
pub fn endpoint() -> String {
    match std::env::var("S3R_TEST_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "S3R_TEST_ENDPOINT is not set: the integration tests need the local AWS emulator. \
             Run them with `make test` (it installs and starts moto server and sets the variable)."
        ),
    }
}

/// A name unique within this test run (bucket and queue names are shared across tests).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!("{prefix}-{pid}-{n}").to_lowercase()
}

pub fn side(bucket: &str) -> BucketSide {
    BucketSide {
        bucket: bucket.to_string(),
        region: REGION.into(),
        endpoint_url: Some(endpoint()),
        ..Default::default()
    }
}

/// A valid configuration pointing at the emulator, purge enabled on `queue_url`.
pub fn config(source: &str, target: &str, queue_url: &str) -> Config {
    let mut c = Config {
        source: side(source),
        target: side(target),
        ..Default::default()
    };
    c.control.endpoint_url = Some(endpoint());
    c.aws.max_attempts = 2;
    c.http.listen = "127.0.0.1:0".into();
    c.shutdown.grace = Duration::from_secs(5);
    c.purge.enabled = true;
    c.purge.queue_url = queue_url.to_string();
    c.purge.wait_time = Duration::from_secs(1);
    c.purge.visibility_timeout = Duration::from_secs(10);
    c.purge.retry_backoff = Duration::from_secs(1);
    c.purge.retry_backoff_max = Duration::from_secs(2);
    c.purge.race_guard_margin = Duration::from_secs(1);
    c
}

pub async fn s3() -> aws_sdk_s3::Client {
    s3_reconciler::aws::s3_client(&side("unused"), 2).await
}

pub async fn clients(cfg: &Config) -> s3_reconciler::aws::Clients {
    s3_reconciler::aws::Clients::new(cfg).await
}

pub async fn sqs() -> aws_sdk_sqs::Client {
    let mut c = Config {
        source: side("unused"),
        ..Default::default()
    };
    c.control.endpoint_url = Some(endpoint());
    s3_reconciler::aws::Clients::new(&c).await.sqs
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str, versioned: bool) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::ApNortheast2)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    if versioned {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"))
        .version_id()
        .unwrap_or("null")
        .to_string()
}

/// Adds a delete marker on top of `key`.
pub async fn delete_marker(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

/// Every (version id, is delete marker) of exactly `key`.
pub async fn entries(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut km: Option<String> = None;
    let mut vm: Option<String> = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(km.take())
            .set_version_id_marker(vm.take())
            .send()
            .await
            .unwrap();
        for v in page.versions() {
            if v.key() == Some(key) {
                out.push((v.version_id().unwrap_or("null").to_string(), false));
            }
        }
        for m in page.delete_markers() {
            if m.key() == Some(key) {
                out.push((m.version_id().unwrap_or("null").to_string(), true));
            }
        }
        if !page.is_truncated().unwrap_or(false) {
            return out;
        }
        km = page.next_key_marker().map(str::to_string);
        vm = page.next_version_id_marker().map(str::to_string);
    }
}

/// Permanently deletes every version and marker of `key` (what the seed's operator did).
pub async fn permanently_delete(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    for (v, _) in entries(s3, bucket, key).await {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .version_id(v)
            .send()
            .await
            .unwrap();
    }
}

/// Creates a queue with a DLQ (maxReceiveCount `max_receive`); returns (queue url, dlq url).
pub async fn queue_with_dlq(sqs: &aws_sdk_sqs::Client, max_receive: u32) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = unique("q");
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()});
    let q = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "10")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    (q, dlq)
}

pub async fn send(sqs: &aws_sdk_sqs::Client, queue: &str, body: &str) {
    sqs.send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// Messages visible plus in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    let n = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
}

/// A realistic S3 event notification body for a permanent delete (key URL-encoded as S3 does).
pub fn s3_event(bucket: &str, key: &str, event_name: &str, version_id: &str) -> String {
    // S3 form-encodes the key but leaves `/` as is.
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/");
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "permanent-deletes",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "versionId": version_id, "sequencer": "0055AED6DCD90281E5"}
            }
        }]
    })
    .to_string()
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A DataSync task between two emulator buckets (moto's DataSync is a stub: it copies nothing,
/// ignores Includes and advances one status per DescribeTaskExecution).
pub async fn datasync_task(src: &str, tgt: &str) -> String {
    let c = Config {
        source: side("unused"),
        control: s3_reconciler::config::Account {
            endpoint_url: Some(endpoint()),
            ..Default::default()
        },
        ..Default::default()
    };
    let ds = s3_reconciler::aws::Clients::new(&c).await.datasync;
    let role = "arn:aws:iam::123456789012:role/AWSDataSyncS3BucketAccess";
    let loc = |b: String| {
        let ds = ds.clone();
        async move {
            ds.create_location_s3()
                .s3_bucket_arn(format!("arn:aws:s3:::{b}"))
                .subdirectory("/")
                .s3_config(
                    aws_sdk_datasync::types::S3Config::builder()
                        .bucket_access_role_arn(role)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap()
                .location_arn()
                .unwrap()
                .to_string()
        }
    };
    let s = loc(src.to_string()).await;
    let t = loc(tgt.to_string()).await;
    ds.create_task()
        .source_location_arn(s)
        .destination_location_arn(t)
        .name(unique("task"))
        .send()
        .await
        .unwrap()
        .task_arn()
        .unwrap()
        .to_string()
}

/// A sync-enabled configuration on the emulator.
pub fn sync_config(src: &str, tgt: &str, state: &str, task_arn: &str) -> Config {
    let mut c = config(src, tgt, "http://unused/123456789012/q");
    c.purge.enabled = false;
    c.sync.enabled = true;
    c.sync.task_arn = task_arn.to_string();
    c.sync.timezone = "Asia/Seoul".into();
    c.sync.poll_interval = Duration::from_millis(50);
    c.sync.timeout = Duration::from_secs(30);
    c.sync.claim_ttl = Duration::from_secs(60);
    c.state.bucket = state.to_string();
    c
}

pub fn syncer(
    cfg: &Config,
    clients: &s3_reconciler::aws::Clients,
    holder: &str,
    metrics: &s3_reconciler::metrics::Metrics,
) -> s3_reconciler::sync::runner::Syncer {
    let mut cfg = cfg.clone();
    cfg.state.holder_id = holder.to_string();
    s3_reconciler::sync::runner::Syncer::new(
        std::sync::Arc::new(cfg),
        clients.source.clone(),
        clients.source.clone(),
        clients.datasync.clone(),
        metrics.clone(),
    )
}

/// Puts one file in each project's partition for `date`.
pub async fn partitions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    projects: &[String],
    date: chrono::NaiveDate,
) {
    use futures::StreamExt;
    futures::stream::iter(projects.iter().cloned())
        .map(|p| {
            let s3 = s3.clone();
            let bucket = bucket.to_string();
            async move {
                let key = format!(
                    "topics/{p}/year={}/month={}/day={}/{p}+0+0000000000.json",
                    date.format("%Y"),
                    date.format("%m"),
                    date.format("%d")
                );
                put(&s3, &bucket, &key, "{}").await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// The daemon running in-process on an ephemeral port.
pub struct Daemon {
    pub token: tokio_util::sync::CancellationToken,
    pub handle: tokio::task::JoinHandle<Result<(), s3_reconciler::app::RunError>>,
    pub metrics: s3_reconciler::metrics::Metrics,
    pub port: u16,
}

impl Daemon {
    pub async fn start(cfg: Config) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let clients = clients(&cfg).await;
        let metrics = s3_reconciler::metrics::Metrics::new().unwrap();
        let token = tokio_util::sync::CancellationToken::new();
        let handle = tokio::spawn(s3_reconciler::app::run_with(
            cfg,
            clients,
            metrics.clone(),
            listener,
            token.clone(),
        ));
        Daemon {
            token,
            handle,
            metrics,
            port,
        }
    }

    pub fn outcome(&self, o: &str) -> u64 {
        self.metrics.purge_events.with_label_values(&[o]).get()
    }

    pub async fn stop(self) {
        self.token.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A bare HTTP/1.0 GET on loopback (no chunked bodies to decode): (status, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// The daemon's TOML for the emulator: purge enabled on `queue`, HTTP on `port`, `extra`
/// lines appended to `[purge]`.
pub fn daemon_toml(src: &str, tgt: &str, queue: &str, port: u16, extra: &str) -> String {
    let ep = endpoint();
    format!(
        r#"
[source]
bucket = "{src}"
region = "{REGION}"
endpoint_url = "{ep}"
[target]
bucket = "{tgt}"
region = "{REGION}"
endpoint_url = "{ep}"
[control]
endpoint_url = "{ep}"
[http]
listen = "127.0.0.1:{port}"
[log]
format = "json"
[shutdown]
grace = "5s"
[purge]
enabled = true
queue_url = "{queue}"
wait_time = "1s"
visibility_timeout = "10s"
retry_backoff = "1s"
retry_backoff_max = "2s"
race_guard_margin = "1s"
{extra}
"#
    )
}
