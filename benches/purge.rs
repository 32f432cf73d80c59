//! Purge throughput against the emulator, with the real release binary.
//!
//! 300 keys (`S3R_BENCH_KEYS`), each with 3 versions and a delete marker in the target and nothing left in the
//! source, one S3 event per key on the queue. The same workload runs twice side by side: with
//! the configured concurrency, and one message at a time (the seed Lambda's way). Reports
//! events/s, lag from each event's eventTime to the key's last audit `delete` line (exact
//! p50/p99 over all keys, not interpolated from histogram buckets), S3 requests per event
//! (exact) and the daemon's peak RSS. Run with `make bench`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use futures::StreamExt;
use support::{Spawned, enqueue, lag_quantiles, peak_rss_mib, scrape, value};

/// Keys per run; `S3R_BENCH_KEYS` overrides (the emulator's ListObjectVersions scans the whole
/// bucket, so its cost, not the daemon's, grows with this number).
fn keys() -> usize {
    std::env::var("S3R_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}
/// The `i`th key of the workload, under one daily partition.
fn key(i: usize) -> String {
    format!("topics/bench/year=2024/month=03/day=09/k{i:05}.json")
}

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");

struct Result {
    secs: f64,
    p50: f64,
    p99: f64,
    s3_per_event: f64,
    peak_rss_mib: f64,
}

async fn seed(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) -> (String, String, String) {
    let (src, tgt) = (unique("bench-src"), unique("bench-tgt"));
    create_bucket(s3, &src, true).await;
    create_bucket(s3, &tgt, true).await;
    let (queue, _dlq) = queue_with_dlq(sqs, 5).await;
    futures::stream::iter(0..keys())
        .map(|i| {
            let (s3, tgt) = (s3.clone(), tgt.clone());
            async move {
                let key = key(i);
                for v in 0..3 {
                    put(&s3, &tgt, &key, &format!("{v}")).await;
                }
                delete_marker(&s3, &tgt, &key).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    (src, tgt, queue)
}

async fn run(
    src: &str,
    tgt: &str,
    queue: &str,
    concurrency: usize,
    event_times: &HashMap<String, DateTime<Utc>>,
) -> Result {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = daemon_toml(
        src,
        tgt,
        queue,
        port,
        &format!("concurrency = {concurrency}"),
    )
    // Batches wait on a busy emulator; a short visibility timeout only causes redeliveries.
    .replace(
        "visibility_timeout = \"10s\"",
        "visibility_timeout = \"60s\"",
    );
    let f = config_file(&toml);
    let log = tempfile::NamedTempFile::new().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the race-guard margin
    let t = Instant::now();
    let mut child = Spawned(
        Command::new(BIN)
            .arg("--config")
            .arg(f.path())
            .arg("run")
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap(),
    );
    // The emulator's cost per request grows with the bucket: allow ~2 s per key.
    let deadline = Duration::from_secs(300 + 2 * keys() as u64);
    let mut last_report = Instant::now();
    let scrape_done = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(s) = scrape(port).await {
            let purged = value(
                &s,
                "s3_reconciler_purge_events_total",
                Some(("outcome", "purged")),
            );
            if purged as usize >= keys() {
                break s;
            }
            if last_report.elapsed() > Duration::from_secs(60) {
                last_report = Instant::now();
                eprintln!(
                    "  concurrency {concurrency}: {purged} of {} purged after {:.0}s",
                    keys(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        assert!(
            t.elapsed() < deadline,
            "bench did not finish within {deadline:?}"
        );
    };
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib(child.0.id());
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    child.0.wait().unwrap();
    let s3_requests = value(
        &scrape_done,
        "s3_reconciler_aws_requests_total",
        Some(("service", "s3")),
    );
    let (p50, p99) = lag_quantiles(&std::fs::read_to_string(log.path()).unwrap(), event_times);
    Result {
        secs,
        p50,
        p99,
        s3_per_event: s3_requests / keys() as f64,
        peak_rss_mib: rss,
    }
}

/// Gives each run a fresh emulator process on the same port. moto's ListObjectVersions
/// deep-copies the whole bucket on every call and keeps each copy referenced until a reset, so
/// one 2,000-key run grows it to ~17 GiB; a reset frees the objects but not all of the memory, and
/// the second run then ran the machine out of memory. Only a new process starts from zero.
fn restart_emulator() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/emulator.sh");
    let out = Command::new(script).arg("restart").output().unwrap();
    assert!(
        out.status.success(),
        "{script} restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Seeds a fresh world, queues one event per key, and runs the daemon until all are purged.
async fn measure(concurrency: usize) -> Result {
    restart_emulator();
    let s3 = s3().await;
    let sqs = sqs().await;
    let t = Instant::now();
    let (src, tgt, queue) = seed(&s3, &sqs).await;
    eprintln!(
        "seeded {} keys (3 versions + 1 delete marker each) in {:.1}s",
        keys(),
        t.elapsed().as_secs_f64()
    );
    let workload: Vec<String> = (0..keys()).map(key).collect();
    let event_times = enqueue(&sqs, &queue, &src, "ObjectRemoved:Delete", &workload).await;
    let r = run(&src, &tgt, &queue, concurrency, &event_times).await;
    for n in [0, keys() - 1] {
        let key = format!("topics/bench/year=2024/month=03/day=09/k{n:05}.json");
        assert!(
            entries(&s3, &tgt, &key).await.is_empty(),
            "{key} not purged"
        );
    }
    r
}

#[tokio::main]
async fn main() {
    let concurrency = 16;
    let fast = measure(concurrency).await;
    let serial = measure(1).await;

    println!(
        "purge bench: {} keys x (3 versions + 1 delete marker), one event each, release binary",
        keys()
    );
    for (name, r) in [
        (format!("concurrency {concurrency}"), &fast),
        ("one message at a time".to_string(), &serial),
    ] {
        println!(
            "  {name:>22}: {:.1}s, {:.0} events/s, lag p50 {:.2}s p99 {:.2}s, {:.2} S3 requests/event, peak RSS {:.1} MiB",
            r.secs,
            keys() as f64 / r.secs,
            r.p50,
            r.p99,
            r.s3_per_event,
            r.peak_rss_mib
        );
    }
    println!("  ratio (events/s): {:.1}x", serial.secs / fast.secs);
}
