//! Purge throughput against the emulator, with the real release binary.
//!
//! 2,000 keys, each with 3 versions and a delete marker in the target and nothing left in the
//! source, one S3 event per key on the queue. The same workload runs twice side by side: with
//! the configured concurrency, and one message at a time (the seed Lambda's way). Reports
//! events/s, lag from eventTime to purge (p50/p99 interpolated from the histogram), S3 requests
//! per event (exact) and the daemon's peak RSS. Run with `make bench`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use common::*;
use futures::StreamExt;

/// Keys per run; `S3R_BENCH_KEYS` overrides (the emulator's ListObjectVersions scans the whole
/// bucket, so its cost, not the daemon's, grows with this number).
fn keys() -> usize {
    std::env::var("S3R_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
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
                let key = format!("topics/bench/year=2024/month=03/day=09/k{i:05}.json");
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

async fn enqueue(sqs: &aws_sdk_sqs::Client, queue: &str, src: &str) {
    for chunk in (0..keys()).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                let key = format!("topics/bench/year=2024/month=03/day=09/k{i:05}.json");
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(s3_event(src, &key, "ObjectRemoved:Delete", "v"))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
}

async fn scrape(port: u16) -> Option<prometheus_parse::Scrape> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = Command::new("curl").args(["-s", &url]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).ok()
}

fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
            _ => 0.0,
        })
        .sum()
}

fn quantile(s: &prometheus_parse::Scrape, name: &str, q: f64) -> f64 {
    let Some(h) = s.samples.iter().find_map(|x| match &x.value {
        prometheus_parse::Value::Histogram(h) if x.metric == name => Some(h.clone()),
        _ => None,
    }) else {
        return f64::NAN;
    };
    let total = h.last().map(|b| b.count).unwrap_or(0.0);
    let rank = q * total;
    let (mut prev_bound, mut prev_count) = (0.0, 0.0);
    for b in h {
        if b.count >= rank {
            if b.less_than.is_infinite() {
                return prev_bound;
            }
            let width = b.count - prev_count;
            let frac = if width > 0.0 {
                (rank - prev_count) / width
            } else {
                0.0
            };
            return prev_bound + frac * (b.less_than - prev_bound);
        }
        prev_bound = b.less_than;
        prev_count = b.count;
    }
    prev_bound
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn run(src: &str, tgt: &str, queue: &str, concurrency: usize) -> Result {
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
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the race-guard margin
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(f.path())
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "bench did not finish"
        );
    };
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib(child.id());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let s3_requests = value(&scrape_done, "s3_reconciler_s3_requests_total", None);
    Result {
        secs,
        p50: quantile(&scrape_done, "s3_reconciler_purge_lag_seconds", 0.5),
        p99: quantile(&scrape_done, "s3_reconciler_purge_lag_seconds", 0.99),
        s3_per_event: s3_requests / keys() as f64,
        peak_rss_mib: rss,
    }
}

#[tokio::main]
async fn main() {
    // A fresh emulator: objects left by other benchmarks slow every listing down.
    let reset = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &format!("{}/moto-api/reset", endpoint()),
        ])
        .status()
        .unwrap();
    assert!(reset.success());
    let s3 = s3().await;
    let sqs = sqs().await;
    let t = Instant::now();
    let (src_a, tgt_a, q_a) = seed(&s3, &sqs).await;
    let (src_b, tgt_b, q_b) = seed(&s3, &sqs).await;
    eprintln!(
        "seeded 2 x {} keys (3 versions + 1 delete marker each) in {:.1}s",
        keys(),
        t.elapsed().as_secs_f64()
    );

    let concurrency = 16;
    enqueue(&sqs, &q_a, &src_a).await;
    let fast = run(&src_a, &tgt_a, &q_a, concurrency).await;
    enqueue(&sqs, &q_b, &src_b).await;
    let serial = run(&src_b, &tgt_b, &q_b, 1).await;
    for (tgt, n) in [(&tgt_a, 0usize), (&tgt_b, keys() - 1)] {
        let key = format!("topics/bench/year=2024/month=03/day=09/k{n:05}.json");
        assert!(entries(&s3, tgt, &key).await.is_empty(), "{key} not purged");
    }

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
