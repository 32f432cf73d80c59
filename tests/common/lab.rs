//! The latency lab for tests that need what the emulator cannot do: replicas (version ids kept,
//! `REPLICA` status), legal holds, keys with characters XML 1.0 cannot carry, faults, latency,
//! and a journal of every change. `S3R_LAB_ENDPOINT` names a running lab; without it each test
//! binary starts its own from `lab/target/release/s3r-lab` (built by `make test`, or
//! `scripts/lab.sh build`) and stops it when the binary exits.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use super::{REGION, unique};
use s3_reconciler::config::{Account, BucketSide, Config};

/// The lab's endpoint: `S3R_LAB_ENDPOINT`, or one this test binary starts.
pub fn lab_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var("S3R_LAB_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ => start_lab(),
        })
        .clone()
}

fn start_lab() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = format!("{root}/lab/target/release/s3r-lab");
    assert!(
        std::path::Path::new(&bin).exists(),
        "these tests need the latency lab and {bin} is missing: run `scripts/lab.sh build` (or \
         `make test`), or set S3R_LAB_ENDPOINT to a running lab"
    );
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let out = dir.join("lab.out");
    // A shell watches this process and stops the lab when it is gone.
    let script = format!(
        "{bin} --latency 0ms --jitter 0ms >{out} 2>{err} & l=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $l",
        out = out.display(),
        err = dir.join("lab.log").display(),
        parent = std::process::id()
    );
    static WATCHER: OnceLock<std::sync::Mutex<std::process::Child>> = OnceLock::new();
    let watcher = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the lab");
    let _ = WATCHER.set(std::sync::Mutex::new(watcher));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("listening on ")) {
            super::set_test_credentials();
            return addr.trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lab did not start within 30s; see {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `POST /_lab/<path>` with a JSON body; the JSON answer (panics on an error status).
pub async fn admin(path: &str, body: Value) -> Value {
    let (code, text) = admin_raw(path, body).await;
    assert_eq!(code, 200, "POST /_lab/{path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `POST /_lab/<path>`: (status, body).
pub async fn admin_raw(path: &str, body: Value) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ep = lab_endpoint();
    let addr = ep.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("lab at {addr}: {e}"));
    let body = body.to_string();
    let req = format!(
        "POST /_lab/{path} HTTP/1.0\r\nHost: lab\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, text)
}

/// A versioned bucket with a unique name.
pub async fn bucket(prefix: &str) -> String {
    let name = unique(prefix);
    admin("bucket", json!({"name": name, "versioned": true})).await;
    name
}

/// Writes one entry (see the lab's `/_lab/write`); returns its version id.
pub async fn write(bucket: &str, key: &str, extra: Value) -> String {
    let mut body = json!({"bucket": bucket, "key": key, "body": key});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    admin("write", body).await["version_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A permanent delete (or a marker without `version_id`), as a person would do it.
pub async fn delete(bucket: &str, key: &str, version_id: Option<&str>) {
    admin(
        "delete",
        json!({"bucket": bucket, "key": key, "version_id": version_id}),
    )
    .await;
}

/// Every (key, version id, delete marker) of a bucket, in listing order.
pub async fn dump(bucket: &str) -> Vec<(String, String, bool)> {
    admin("dump", json!({"bucket": bucket}))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap_or_default().to_string(),
                e["version_id"].as_str().unwrap_or_default().to_string(),
                e["delete_marker"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// An account on the lab.
pub fn lab_account() -> Account {
    Account {
        region: REGION.into(),
        endpoint_url: Some(lab_endpoint()),
        ..Default::default()
    }
}

/// A purge configuration (as [`super::config`]) with every endpoint on the lab.
pub fn lab_config(source: &str, target: &str, queue_url: &str) -> Config {
    let mut c = super::config(source, target, queue_url);
    for side in [&mut c.source, &mut c.target] {
        *side = BucketSide {
            bucket: side.bucket.clone(),
            account: lab_account(),
            force_path_style: None,
        };
    }
    c.control.endpoint_url = Some(lab_endpoint());
    c
}

/// An SQS client on the lab.
pub async fn lab_sqs() -> aws_sdk_sqs::Client {
    let mut c = Config {
        source: BucketSide {
            bucket: "unused".into(),
            account: lab_account(),
            force_path_style: None,
        },
        ..Default::default()
    };
    c.control.endpoint_url = Some(lab_endpoint());
    s3_reconciler::aws::Clients::new(&c).await.sqs
}

/// A sync configuration (as [`super::sync_config`]) with every endpoint on the lab.
pub fn lab_sync_config(src: &str, tgt: &str, state: &str, task_arn: &str) -> Config {
    let mut c = lab_config(src, tgt, "http://unused/123456789012/q");
    super::sync_settings(&mut c, state, task_arn);
    c
}

/// A DataSync task on the lab copying `src` to `dst` (whole buckets), with its phases'
/// `timing` and its `faults` (see the lab's `datasync` module).
pub async fn datasync_task(src: &str, dst: &str, timing: Value, faults: Value) -> String {
    let v = admin(
        "datasync/task",
        json!({"source_bucket": src, "dest_bucket": dst, "timing": timing, "faults": faults}),
    )
    .await;
    v["task_arn"].as_str().unwrap_or_default().to_string()
}

/// Replaces a lab task's faults.
pub async fn datasync_faults(task_arn: &str, faults: Value) {
    admin(
        "datasync/task",
        json!({"task_arn": task_arn, "faults": faults}),
    )
    .await;
}

/// Every execution of a lab task, oldest first: `arn`, `status`, `includes`, `tags` (an
/// object), `start_ms`, `launch_ms`, `end_ms`, `cancelled`, `copied`.
pub async fn executions(task_arn: &str) -> Vec<Value> {
    admin("datasync/executions", json!({"task_arn": task_arn}))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}
