//! Shared helpers for the integration tests. They need the local emulator (moto server):
//! `make test` starts one and sets `S3R_TEST_ENDPOINT`; without that variable each test
//! binary starts its own from `.venv` (installed once by `make test` or `scripts/venv.sh`),
//! and stops it when the binary exits. No test skips silently: without an emulator they fail
//! and say how to get one.
#![allow(dead_code)]

pub mod lab;
pub mod mocks;
pub mod rng;

use s3_reconciler::labels::{Label, PurgeOutcome};
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use chrono::{DateTime, NaiveDate, Utc};
use s3_reconciler::config::{Account, AwsSettings, BucketSide, Config};

pub const REGION: &str = "ap-northeast-2";

/// The emulator endpoint: `S3R_TEST_ENDPOINT`, or one this test binary starts.
pub fn endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var("S3R_TEST_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ => start_emulator(),
        })
        .clone()
}

/// Starts moto server from `.venv` (through `scripts/moto_server.py`, which fixes what the
/// SDK cannot parse) on a free port, tied to this process's life.
fn start_emulator() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.venv/bin/python");
    assert!(
        std::path::Path::new(&format!("{root}/.venv/bin/moto_server")).exists(),
        "the integration tests need the local AWS emulator and {root}/.venv is missing it: run \
         `make test` once (or `scripts/venv.sh`), or set S3R_TEST_ENDPOINT to a running one"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let log = format!("{}/s3r-moto-{port}.log", std::env::temp_dir().display());
    // A shell watches this process and stops the emulator when it is gone, however the
    // test binary ends.
    let script = format!(
        "{python} {root}/scripts/moto_server.py -H 127.0.0.1 -p {port} >{log} 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $m",
        parent = std::process::id()
    );
    static WATCHER: OnceLock<std::sync::Mutex<std::process::Child>> = OnceLock::new();
    let watcher = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the emulator");
    // Kept, not waited for: it outlives every test of this binary by design.
    let _ = WATCHER.set(std::sync::Mutex::new(watcher));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the emulator did not start within 60s; see {log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    set_test_credentials();
    format!("http://127.0.0.1:{port}")
}

/// The credentials the emulator and the lab accept, unless the environment has some.
pub fn set_test_credentials() {
    // SAFETY: this runs once, inside a OnceLock that starts an emulator or the lab, before any
    // AWS client of this process exists (every fixture asks for its endpoint first), so
    // nothing reads these variables concurrently; the daemon processes the tests spawn
    // inherit them.
    unsafe {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    }
}

/// A name unique within this test run (bucket and queue names are shared across tests).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!("{prefix}-{pid}-{n}").to_lowercase()
}

pub fn account() -> Account {
    Account {
        region: REGION.into(),
        endpoint_url: Some(endpoint()),
        ..Default::default()
    }
}

pub fn side(bucket: &str) -> BucketSide {
    BucketSide {
        bucket: bucket.to_string(),
        account: account(),
        force_path_style: None,
    }
}

pub fn aws_settings() -> AwsSettings {
    AwsSettings {
        max_attempts: NonZeroU32::new(2).unwrap(),
        ..Default::default()
    }
}

/// A valid configuration pointing at the emulator, purge enabled on `queue_url`.
pub fn config(source: &str, target: &str, queue_url: &str) -> Config {
    let mut c = Config {
        source: side(source),
        target: side(target),
        aws: aws_settings(),
        ..Default::default()
    };
    c.control.endpoint_url = Some(endpoint());
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.shutdown.grace = Duration::from_secs(5);
    c.purge.enabled = true;
    c.purge.queue_url = queue_url.to_string();
    c.purge.wait_time = Duration::from_secs(1);
    c.purge.visibility_timeout = Duration::from_secs(10);
    c.purge.retry_backoff = Duration::from_secs(1);
    c.purge.retry_backoff_max = Duration::from_secs(2);
    c.purge.race_guard_margin = RACE_GUARD;
    // These worlds are not wired for the preflight checks (no bucket notification, say);
    // tests/doctor.rs and the `Wired` world exercise them.
    c.preflight.enabled = false;
    c
}

/// The race-guard margin the test configurations use.
pub const RACE_GUARD: Duration = Duration::from_secs(1);

pub async fn s3() -> aws_sdk_s3::Client {
    s3_reconciler::aws::s3_client(&side("unused"), &aws_settings()).await
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

/// Every (key, version id, is delete marker, last modified) under `prefix`, all pages.
pub async fn all_entries(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, String, bool, Option<DateTime<Utc>>)> {
    let mut out = Vec::new();
    let mut km: Option<String> = None;
    let mut vm: Option<String> = None;
    let time = |t: Option<&aws_smithy_types::DateTime>| {
        t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
    };
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(km.take())
            .set_version_id_marker(vm.take())
            .send()
            .await
            .unwrap();
        for v in page.versions() {
            let key = v.key().unwrap_or_default().to_string();
            let id = v.version_id().unwrap_or("null").to_string();
            out.push((key, id, false, time(v.last_modified())));
        }
        for m in page.delete_markers() {
            let key = m.key().unwrap_or_default().to_string();
            let id = m.version_id().unwrap_or("null").to_string();
            out.push((key, id, true, time(m.last_modified())));
        }
        if !page.is_truncated().unwrap_or(false) {
            return out;
        }
        km = page.next_key_marker().map(str::to_string);
        vm = page.next_version_id_marker().map(str::to_string);
    }
}

/// Every (version id, is delete marker) of exactly `key`.
pub async fn entries(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, bool)> {
    all_entries(s3, bucket, key)
        .await
        .into_iter()
        .filter(|(k, ..)| k == key)
        .map(|(_, v, dm, _)| (v, dm))
        .collect()
}

/// Waits until every entry in `bucket` is older than the race-guard margin, so a purge that
/// starts now may delete it (S3 reports LastModified truncated to the second).
pub async fn past_race_guard(s3: &aws_sdk_s3::Client, bucket: &str) {
    let newest = all_entries(s3, bucket, "")
        .await
        .into_iter()
        .filter_map(|(.., t)| t)
        .max();
    let Some(newest) = newest else { return };
    let margin = chrono::Duration::from_std(RACE_GUARD + Duration::from_millis(100)).unwrap();
    eventually(
        Duration::from_secs(10),
        "target entries past the race guard",
        || async { Utc::now() - margin > newest },
    )
    .await;
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

/// A key as S3 notifications encode it: form-encoded, `/` left as is.
pub fn encode_key(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

/// A realistic S3 event notification body for a permanent delete (key URL-encoded as S3 does).
pub fn s3_event(bucket: &str, key: &str, event_name: &str, version_id: &str) -> String {
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "permanent-deletes",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encode_key(key), "versionId": version_id, "sequencer": "0055AED6DCD90281E5"}
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A DataSync task between two emulator buckets (moto's DataSync is a stub: it copies nothing,
/// ignores Includes and advances one status per DescribeTaskExecution).
pub async fn datasync_task(src: &str, tgt: &str) -> String {
    datasync_task_at(src, tgt, "/").await
}

/// As [`datasync_task`], both locations at `subdirectory`.
pub async fn datasync_task_at(src: &str, tgt: &str, subdirectory: &str) -> String {
    let c = Config {
        source: side("unused"),
        control: account(),
        ..Default::default()
    };
    let ds = s3_reconciler::aws::Clients::new(&c).await.datasync;
    let role = "arn:aws:iam::123456789012:role/AWSDataSyncS3BucketAccess";
    let loc = |b: String| {
        let ds = ds.clone();
        async move {
            ds.create_location_s3()
                .s3_bucket_arn(format!("arn:aws:s3:::{b}"))
                .subdirectory(subdirectory)
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
    sync_settings(&mut c, state, task_arn);
    c
}

/// The sync settings of [`sync_config`], on any configuration.
pub fn sync_settings(c: &mut Config, state: &str, task_arn: &str) {
    c.purge.enabled = false;
    c.sync.enabled = true;
    c.sync.task_arn = task_arn.to_string();
    c.sync.timezone = chrono_tz::Asia::Seoul;
    c.sync.poll_interval = Duration::from_millis(50);
    c.sync.timeout = Duration::from_secs(30);
    c.sync.claim_ttl = Duration::from_secs(60);
    c.state.bucket = state.to_string();
}

pub fn syncer(
    cfg: &Config,
    clients: &s3_reconciler::aws::Clients,
    holder: &str,
    metrics: &s3_reconciler::metrics::Metrics,
) -> s3_reconciler::sync::runner::Syncer {
    let mut cfg = cfg.clone();
    cfg.state.holder_id = holder.to_string();
    s3_reconciler::sync::runner::Syncer::new(std::sync::Arc::new(cfg), clients, metrics.clone())
}

/// The key of a project's one file in its partition for `date`.
pub fn partition_key(project: &str, date: NaiveDate) -> String {
    format!(
        "topics/{project}/year={}/month={}/day={}/{project}+0+0000000000.json",
        date.format("%Y"),
        date.format("%m"),
        date.format("%d")
    )
}

/// Puts one file in each project's partition for `date`.
pub async fn partitions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    projects: &[String],
    date: NaiveDate,
) {
    use futures::StreamExt;
    futures::stream::iter(projects.iter().cloned())
        .map(|p| {
            let s3 = s3.clone();
            let bucket = bucket.to_string();
            async move {
                put(&s3, &bucket, &partition_key(&p, date), "{}").await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// A sync world on the emulator: versioned source and target, a state bucket, a DataSync task,
/// and one file per project in `date`'s partition, in the source and (since the emulator's
/// DataSync copies nothing, the fixture plays it) in the target.
pub struct SyncWorld {
    pub s3: aws_sdk_s3::Client,
    pub cfg: Config,
    pub clients: s3_reconciler::aws::Clients,
    pub state: String,
}

impl SyncWorld {
    pub async fn new(projects: &[String], date: NaiveDate) -> SyncWorld {
        let s3 = s3().await;
        let (src, tgt, state) = (unique("src"), unique("tgt"), unique("state"));
        create_bucket(&s3, &src, true).await;
        create_bucket(&s3, &tgt, true).await;
        create_bucket(&s3, &state, false).await;
        partitions(&s3, &src, projects, date).await;
        partitions(&s3, &tgt, projects, date).await;
        let task = datasync_task(&src, &tgt).await;
        let cfg = sync_config(&src, &tgt, &state, &task);
        let clients = clients(&cfg).await;
        SyncWorld {
            s3,
            cfg,
            clients,
            state,
        }
    }

    /// Adds `date`'s partitions for `projects`, in the source and, as DataSync would, the target.
    pub async fn add_day(&self, projects: &[String], date: NaiveDate) {
        partitions(&self.s3, &self.cfg.source.bucket, projects, date).await;
        partitions(&self.s3, &self.cfg.target.bucket, projects, date).await;
    }

    /// `project0` … `project{n-1}`.
    pub fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("project{i}")).collect()
    }

    pub fn store(&self) -> s3_reconciler::sync::state::StateStore {
        s3_reconciler::sync::state::StateStore::new(
            self.clients.source.clone(),
            &self.state,
            &self.cfg.state.prefix,
            s3_reconciler::metrics::Metrics::new().unwrap(),
        )
    }
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
        let c = clients(&cfg).await;
        Self::start_with(cfg, c).await
    }

    /// As [`Daemon::start`], with the AWS clients supplied (mocks).
    pub async fn start_with(cfg: Config, clients: s3_reconciler::aws::Clients) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
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
        self.metrics
            .purge
            .records(PurgeOutcome::from_label(o).expect(o))
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

/// The `[source]` and `[target]` sections: buckets `src` and `tgt` on the emulator.
pub fn buckets_toml(src: &str, tgt: &str) -> String {
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
"#
    )
}

/// A configuration file holding `toml`, for the binary's `--config`.
pub fn config_file(toml: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), toml).unwrap();
    f
}

/// The daemon's TOML for the emulator: purge enabled on `queue`, HTTP on `port`, `extra`
/// lines appended to `[purge]`.
pub fn daemon_toml(src: &str, tgt: &str, queue: &str, port: u16, extra: &str) -> String {
    let ep = endpoint();
    let buckets = buckets_toml(src, tgt);
    format!(
        r#"{buckets}[control]
endpoint_url = "{ep}"
[http]
listen = "127.0.0.1:{port}"
[log]
format = "json"
[shutdown]
grace = "5s"
[preflight]
enabled = false
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

/// A queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}

/// Sets `bucket`'s notification configuration to one queue configuration per `(queue ARN,
/// events)`; none clears it.
pub async fn notify(s3: &aws_sdk_s3::Client, bucket: &str, queues: &[(&str, &[&str])]) {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let configs = queues
        .iter()
        .enumerate()
        .map(|(i, (arn, events))| {
            QueueConfiguration::builder()
                .id(format!("n{i}"))
                .queue_arn(*arn)
                .set_events(Some(events.iter().map(|e| Event::from(*e)).collect()))
                .build()
                .unwrap()
        })
        .collect();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_queue_configurations(Some(configs))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

pub async fn set_versioning(s3: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap();
}

/// The permanent-delete events the daemon purges on by default.
pub const REMOVAL_EVENTS: &[&str] = &["s3:ObjectRemoved:Delete", "s3:LifecycleExpiration:Delete"];

/// A world wired the way the configuration assumes: versioned source and target, a queue with
/// a DLQ that the source bucket notifies of permanent deletes, a DataSync task between the two
/// buckets, and a state bucket. Purge, sync and the preflight checks enabled.
pub struct Wired {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub src: String,
    pub tgt: String,
    pub state: String,
    pub queue: String,
    pub queue_arn: String,
    pub task: String,
}

impl Wired {
    pub async fn new() -> Wired {
        let (s3, sqs) = (s3().await, sqs().await);
        let (src, tgt, state) = (unique("src"), unique("tgt"), unique("state"));
        create_bucket(&s3, &src, true).await;
        create_bucket(&s3, &tgt, true).await;
        create_bucket(&s3, &state, false).await;
        let (queue, _) = queue_with_dlq(&sqs, 5).await;
        let queue_arn = queue_arn(&sqs, &queue).await;
        notify(&s3, &src, &[(&queue_arn, REMOVAL_EVENTS)]).await;
        let task = datasync_task(&src, &tgt).await;
        Wired {
            s3,
            sqs,
            src,
            tgt,
            state,
            queue,
            queue_arn,
            task,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = sync_config(&self.src, &self.tgt, &self.state, &self.task);
        c.purge.enabled = true;
        c.purge.queue_url = self.queue.clone();
        c.preflight.enabled = true;
        c
    }

    /// The same configuration as a file, for the binary; `extra` is appended.
    pub fn toml(&self, extra: &str) -> tempfile::NamedTempFile {
        let ep = endpoint();
        let buckets = buckets_toml(&self.src, &self.tgt);
        config_file(&format!(
            r#"{buckets}[control]
endpoint_url = "{ep}"
[aws]
max_attempts = 2
[log]
format = "json"
[state]
bucket = "{state}"
[purge]
enabled = true
queue_url = "{queue}"
visibility_timeout = "10s"
[sync]
enabled = true
task_arn = "{task}"
timezone = "Asia/Seoul"
{extra}
"#,
            state = self.state,
            queue = self.queue,
            task = self.task,
        ))
    }
}

/// The seeds a simulation plays, from `{prefix}_SEED` (exactly one), else `{prefix}_SEEDS`
/// (default `default`) from `{prefix}_FROM` (default 1); and how many at once
/// (`{prefix}_PARALLEL`, default `parallel`).
pub fn sim_seeds(prefix: &str, default: u64, parallel: usize) -> (Vec<u64>, usize) {
    let env = |name: &str| -> Option<u64> {
        std::env::var(format!("{prefix}_{name}"))
            .ok()
            .and_then(|v| v.parse().ok())
    };
    let seeds = match env("SEED") {
        Some(one) => vec![one],
        None => {
            let from = env("FROM").unwrap_or(1);
            (from..from + env("SEEDS").unwrap_or(default)).collect()
        }
    };
    let parallel = env("PARALLEL").map_or(parallel, |p| p as usize);
    (seeds, parallel)
}
