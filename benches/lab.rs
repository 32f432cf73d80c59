//! The purge and the sweep against the latency lab (`lab/`), where S3 and SQS answer every
//! request after 20 ms ± 5 ms whatever the bucket's size, so the daemon, not the emulator, is
//! what is measured. `make bench` starts the lab and runs this with the release binary.
//!
//! (a) scattered: unrelated keys, one event each. The seed Lambda's way (sequential: one
//!     listing, one DeleteObjects), the daemon one message at a time, the daemon at its
//!     default concurrency; events/s against the bound concurrency ÷ (round trips × latency),
//!     S3 requests per event.
//! (b) lifecycle burst: 100,000 events over 20 partitions of 5,000 keys, each with 2 versions
//!     and a delete marker in the target; events/s, S3 and SQS requests per event, p50/p99 lag
//!     from eventTime to the key's last audit line, peak RSS.
//! (c) sweep (dry run): a clean prefix of 1,000,000 target versions and one a tenth of its
//!     size (RSS must not follow the size), one where 1,000 orphans come first, and the large
//!     one again without latency; keys and entries per second per listing stream, peak RSS.
//!
//! (d) sweep (dry run) of a sparse target: the source keeps 200 daily partitions of 20
//!     projects (1,000,000 entries), the target one day of each (10,000 entries), once clean
//!     and once with 200 orphans; the full walk in one stream (the walk before this one) and
//!     the default (target-driven, in shards) side by side:
//!     ListObjectVersions per side, wall time, CPU, peak RSS, and the orphans both find.
//!
//! (e) sweep (dry run) of a dense, replicated prefix (1,000,000 keys on each side in 200
//!     daily partitions): today's single stream a side, 8 shards at once, and one process
//!     against two sharing the run; entries/s, requests, CPU per page, peak RSS.
//!
//! `S3R_BENCH_CASES` (`abcde`) picks the cases. Sizes: `S3R_BENCH_SCATTERED` (10,000), `S3R_BENCH_SERIAL` (the sequential runs, 500),
//! `S3R_BENCH_BURST` (100,000), `S3R_BENCH_SWEEP_KEYS` (500,000 keys x 2 versions), `S3R_BENCH_DENSE_KEYS` (1,000,000).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use common::*;
use serde_json::{Value, json};
use support::{Spawned, cpu_seconds, enqueue, lag_quantiles, peak_rss_mib, scrape, value};

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");
const LATENCY_MS: f64 = 20.0;
/// What a lifecycle rule's expirations send.
const LIFECYCLE: &str = "LifecycleExpiration:Delete";

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- The lab's admin endpoints ----

fn admin(method: &str, path: &str, body: &Value) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-X", method, "-d", &body.to_string()])
        .arg(format!("{}/_lab/{path}", endpoint()))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn set_latency(ms: u64, jitter: u64) {
    admin(
        "POST",
        "latency",
        &json!({"latency_ms": ms, "jitter_ms": jitter}),
    );
}

/// Requests per operation since the last reset.
fn stats() -> BTreeMap<String, u64> {
    serde_json::from_value(admin("GET", "stats", &json!({}))).unwrap_or_default()
}

/// The lab's process id (`scripts/lab.sh env` exports it), to see what its CPU costs.
fn lab_pid() -> Option<u32> {
    std::env::var("S3R_LAB_PID").ok()?.parse().ok()
}

fn reset_stats() {
    admin("POST", "stats/reset", &json!({}));
}

fn count(stats: &BTreeMap<String, u64>, service: &str) -> u64 {
    stats
        .iter()
        .filter(|(k, _)| k.starts_with(service))
        .map(|(_, v)| v)
        .sum()
}

/// Keys `prefix` + 6-digit index + `suffix`, an hour old, straight into the lab's state.
fn seed(bucket: &str, prefix: &str, suffix: &str, count: usize, versions: usize, marker: bool) {
    let r = admin(
        "POST",
        "seed",
        &json!({"bucket": bucket, "prefix": prefix, "count": count, "width": 6,
                "suffix": suffix, "versions": versions, "delete_marker": marker,
                "age_seconds": 3600}),
    );
    assert!(r["entries"].as_u64().is_some(), "seeding failed: {r}");
}

// ---- Worlds ----

struct World {
    src: String,
    tgt: String,
    queue: String,
}

async fn world(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) -> World {
    let (src, tgt) = (unique("lab-src"), unique("lab-tgt"));
    create_bucket(s3, &src, true).await;
    create_bucket(s3, &tgt, true).await;
    let (queue, _) = queue_with_dlq(sqs, 5).await;
    World { src, tgt, queue }
}

// ---- The daemon ----

struct Run {
    secs: f64,
    events: usize,
    stats: BTreeMap<String, u64>,
    peak_rss_mib: f64,
    log: String,
}

/// Runs the release daemon on `w` until `events` keys are purged.
async fn daemon(w: &World, events: usize, concurrency: usize) -> Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = daemon_toml(
        &w.src,
        &w.tgt,
        &w.queue,
        port,
        &format!("concurrency = {concurrency}"),
    )
    .replace(
        "visibility_timeout = \"10s\"",
        "visibility_timeout = \"60s\"",
    )
    .replace("wait_time = \"1s\"", "wait_time = \"20s\"");
    let f = config_file(&toml);
    let log = tempfile::NamedTempFile::new().unwrap();
    set_latency(LATENCY_MS as u64, 5);
    reset_stats();
    let mut child = Spawned(
        Command::new(BIN)
            .arg("--config")
            .arg(f.path())
            .arg("run")
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap(),
    );
    // The clock starts once the daemon serves /metrics: process start-up is not purging.
    while scrape(port).await.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    let deadline = Duration::from_secs(120 + events as u64 / 5);
    let mut rss: f64 = 0.0;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        rss = rss.max(peak_rss_mib(child.0.id()));
        if let Some(s) = scrape(port).await {
            let purged = value(
                &s,
                "s3_reconciler_purge_events_total",
                Some(("outcome", "purged")),
            );
            if purged as usize >= events {
                break;
            }
        }
        assert!(t.elapsed() < deadline, "not done within {deadline:?}");
    }
    let secs = t.elapsed().as_secs_f64();
    // Acknowledgements may still be in flight: let them land before counting SQS calls.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = stats();
    set_latency(0, 0);
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    child.0.wait().unwrap();
    Run {
        secs,
        events,
        stats,
        peak_rss_mib: rss.max(peak_rss_mib(child.0.id())),
        log: std::fs::read_to_string(log.path()).unwrap(),
    }
}

// ---- (a) scattered ----

/// Keys in unrelated directories, each with 1 version and a delete marker in the target.
fn scattered(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("scattered/d{i:06}/object.json"))
        .collect()
}

/// The seed Lambda's way: one event after another, a `Prefix = key` listing of the target (one
/// page), then one DeleteObjects of what it returned.
async fn seed_lambda(s3: &aws_sdk_s3::Client, w: &World, keys: &[String]) -> (f64, u64) {
    set_latency(LATENCY_MS as u64, 5);
    reset_stats();
    let t = Instant::now();
    for k in keys {
        let out = s3
            .list_object_versions()
            .bucket(&w.tgt)
            .prefix(k)
            .send()
            .await
            .unwrap();
        let ids = out
            .versions()
            .iter()
            .filter_map(|v| Some((v.key()?, v.version_id()?)))
            .chain(
                out.delete_markers()
                    .iter()
                    .filter_map(|m| Some((m.key()?, m.version_id()?))),
            )
            .map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(k)
                    .version_id(v)
                    .build()
                    .unwrap()
            })
            .collect();
        s3.delete_objects()
            .bucket(&w.tgt)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let s3_requests = count(&stats(), "s3:");
    set_latency(0, 0);
    (secs, s3_requests)
}

// ---- (c) sweep ----

struct SweepRun {
    secs: f64,
    /// CPU seconds of the daemon and of the lab over the run.
    cpu: f64,
    lab_cpu: f64,
    summary: Value,
    summaries: Vec<Value>,
    peak_rss_mib: f64,
    stats: BTreeMap<String, u64>,
}

async fn sweep(w: &World, state: &str, latency_ms: u64, prefix: &str) -> SweepRun {
    sweep_procs(w, state, latency_ms, prefix, "", 1).await
}

/// `replicas` processes of `sweep --dry-run` of `prefix` at once, sharing one run (each with
/// its own holder id), with `extra` lines in `[sweep]`: wall time until the last ends, CPU
/// summed, the highest peak RSS, the first summary (all of them in `summaries`).
async fn sweep_procs(
    w: &World,
    state: &str,
    latency_ms: u64,
    prefix: &str,
    extra: &str,
    replicas: usize,
) -> SweepRun {
    let buckets = buckets_toml(&w.src, &w.tgt);
    let files: Vec<_> = (0..replicas)
        .map(|i| {
            config_file(&format!(
                r#"{buckets}[state]
bucket = "{state}"
holder_id = "bench-{i}"
[log]
format = "json"
level = "warn"
[sweep]
prefixes = ["{prefix}"]
min_age = "1s"
max_deletes = 100000
{extra}
"#
            ))
        })
        .collect();
    set_latency(latency_ms, latency_ms / 4);
    reset_stats();
    let lab = lab_pid();
    let lab_before = lab.map_or(0.0, cpu_seconds);
    let t = Instant::now();
    let mut children: Vec<Spawned> = files
        .iter()
        .map(|f| {
            Spawned(
                Command::new(BIN)
                    .arg("--config")
                    .arg(f.path())
                    .args(["sweep", "--dry-run"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let readers: Vec<_> = children
        .iter_mut()
        .map(|c| {
            let stdout = c.0.stdout.take().unwrap();
            std::thread::spawn(move || std::io::read_to_string(stdout).unwrap())
        })
        .collect();
    let mut rss = vec![0.0f64; replicas];
    let mut cpu = vec![0.0f64; replicas];
    let mut ended: Vec<Option<f64>> = vec![None; replicas];
    while ended.iter().any(Option::is_none) {
        for (i, c) in children.iter_mut().enumerate() {
            if ended[i].is_some() {
                continue;
            }
            rss[i] = rss[i].max(peak_rss_mib(c.0.id()));
            cpu[i] = cpu[i].max(cpu_seconds(c.0.id()));
            if c.0.try_wait().unwrap().is_some() {
                ended[i] = Some(t.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let lab_cpu = lab.map_or(0.0, cpu_seconds) - lab_before;
    let stats = stats();
    set_latency(0, 0);
    let summaries: Vec<Value> = readers
        .into_iter()
        .map(|r| {
            r.join()
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["summary"] == true)
                .unwrap_or(Value::Null)
        })
        .collect();
    SweepRun {
        secs,
        cpu: cpu.iter().sum(),
        lab_cpu,
        summary: summaries[0].clone(),
        summaries,
        peak_rss_mib: rss.iter().copied().fold(0.0, f64::max),
        stats,
    }
}

#[tokio::main]
async fn main() {
    let (s3, sqs) = (s3().await, sqs().await);
    set_latency(0, 0);
    println!(
        "latency lab at {}: {LATENCY_MS} ms ± 5 ms per S3 and SQS request; release binary",
        endpoint()
    );

    let cases = std::env::var("S3R_BENCH_CASES").unwrap_or_else(|_| "abcde".into());
    if cases.contains('a') {
        scattered_case(&s3, &sqs).await;
    }
    if cases.contains('b') {
        burst_case(&s3, &sqs).await;
    }
    if cases.contains('c') {
        sweep_case(&s3, &sqs).await;
    }
    if cases.contains('d') {
        sparse_case(&s3, &sqs).await;
    }
    if cases.contains('e') {
        dense_case(&s3, &sqs).await;
    }
}

async fn dense_case(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) {
    let keys = size("S3R_BENCH_DENSE_KEYS", 1_000_000);
    let w = world(s3, sqs).await;
    let state = unique("lab-state");
    create_bucket(s3, &state, false).await;
    // A replicated layout: the same 20 projects x 10 days on both sides, one version a key.
    let per = keys / 200;
    for p in 0..20 {
        for d in 0..10 {
            let partition = format!("dense/p{p:02}/day={d:03}/f-");
            seed(&w.src, &partition, ".json", per, 1, false);
            seed(&w.tgt, &partition, ".json", per, 1, false);
        }
    }
    let entries = 2.0 * (per * 200) as f64;
    println!(
        "(e) sweep --dry-run of a dense, replicated prefix: {} keys x 1 version on each side (20 projects x 10 days); {LATENCY_MS} ms",
        per * 200
    );
    println!(
        "    {:<34} {:>7} {:>6} {:>8} {:>7} {:>13} {:>8} {:>10} {:>11} {:>11}",
        "run",
        "secs",
        "shards",
        "LOV",
        "LIST",
        "entries/s",
        "RSS MiB",
        "CPU s",
        "CPU ms/LOV",
        "lab ms/LOV"
    );
    let rows = [
        (
            "today: one stream a side",
            "parallelism = 1\nshard_depth = 0",
            1,
        ),
        ("parallelism = 8", "parallelism = 8", 1),
        ("one process, parallelism = 2", "parallelism = 2", 1),
        ("two processes, parallelism = 2 each", "parallelism = 2", 2),
    ];
    let mut runs = Vec::new();
    for (name, extra, replicas) in rows {
        let r = sweep_procs(&w, &state, 20, "dense/", extra, replicas).await;
        let lov = r
            .stats
            .get("s3:ListObjectVersions")
            .copied()
            .unwrap_or(0)
            .max(1);
        let list = r.stats.get("s3:ListObjectsV2").copied().unwrap_or(0);
        let scanned: u64 = r
            .summaries
            .iter()
            .map(|s| {
                s["scanned_source"].as_u64().unwrap_or(0)
                    + s["scanned_target"].as_u64().unwrap_or(0)
            })
            .sum();
        assert_eq!(
            scanned as f64, entries,
            "{name}: every entry scanned once: {:?}",
            r.summaries
        );
        println!(
            "    {name:<34} {:>7.1} {:>6} {:>8} {:>7} {:>13.0} {:>8.1} {:>10.2} {:>11.2} {:>11.2}",
            r.secs,
            r.summary["shards"]["shards_total"],
            lov,
            list,
            entries / r.secs,
            r.peak_rss_mib,
            r.cpu,
            1000.0 * r.cpu / lov as f64,
            1000.0 * r.lab_cpu / lov as f64
        );
        runs.push(r);
    }
    println!(
        "    parallelism 8 / one stream: {:.1}x the entries/s; two processes / one: {:.2}x the time; CPU per page, parallelism 8 / one stream: {:.2}x",
        runs[0].secs / runs[1].secs,
        runs[3].secs / runs[2].secs,
        (runs[1].cpu
            / runs[1]
                .stats
                .get("s3:ListObjectVersions")
                .copied()
                .unwrap_or(1) as f64)
            / (runs[0].cpu
                / runs[0]
                    .stats
                    .get("s3:ListObjectVersions")
                    .copied()
                    .unwrap_or(1) as f64)
    );
}

/// ListObjectVersions requests by bucket, from the lab's per-bucket counters.
fn lov(stats: &BTreeMap<String, u64>, bucket: &str) -> u64 {
    stats
        .get(&format!("bucket:{bucket}:s3:ListObjectVersions"))
        .copied()
        .unwrap_or(0)
}

async fn sparse_case(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) {
    let w = world(s3, sqs).await;
    let state = unique("lab-state");
    create_bucket(s3, &state, false).await;
    // Under each prefix: 20 projects x 200 days x 250 files in the source, day 150 of each in
    // the target with two versions a file. "clean/" is the issue's row; under "orphans/" the
    // target also keeps 10 files a project that the source lost, which both walks must find
    // (their decisions re-list them, the same requests for both walks).
    for (top, orphans) in [("clean", 0), ("orphans", 10)] {
        for p in 0..20 {
            for d in 0..200 {
                let partition = format!("{top}/p{p:02}/day={d:03}/f-");
                seed(&w.src, &partition, ".json", 250, 1, false);
            }
            seed(
                &w.tgt,
                &format!("{top}/p{p:02}/day=150/f-"),
                ".json",
                250,
                2,
                false,
            );
            if orphans > 0 {
                seed(
                    &w.tgt,
                    &format!("{top}/p{p:02}/day=150/gone-"),
                    ".json",
                    orphans,
                    1,
                    false,
                );
            }
        }
    }
    println!(
        "(d) sweep --dry-run of a sparse target: source 1,000,000 entries (20 projects x 200 days x 250), target 10,000 entries (day 150 of each project, 2 versions; orphans/: and 200 orphans); {LATENCY_MS} ms"
    );
    println!(
        "    {:<9} {:<14} {:>7} {:>10} {:>10} {:>12} {:>8} {:>8} {:>9}",
        "prefix",
        "walk",
        "secs",
        "LOV source",
        "LOV target",
        "source keys",
        "orphans",
        "RSS MiB",
        "CPU ms"
    );
    for prefix in ["clean/", "orphans/"] {
        let mut runs = Vec::new();
        // Today's walk (before target-driven reading and shards) against the default.
        for (walk, extra) in [
            ("full", "walk = \"full\"\nparallelism = 1\nshard_depth = 0"),
            ("target-driven", ""),
        ] {
            let r = sweep_procs(&w, &state, 20, prefix, extra, 1).await;
            let s = &r.summary;
            println!(
                "    {prefix:<9} {walk:<14} {:>7.1} {:>10} {:>10} {:>12} {:>8} {:>8.1} {:>9.0}",
                r.secs,
                lov(&r.stats, &w.src),
                lov(&r.stats, &w.tgt),
                s["scanned_source"],
                s["orphans"],
                r.peak_rss_mib,
                1000.0 * r.cpu
            );
            runs.push(r);
        }
        let (full, driven) = (&runs[0], &runs[1]);
        let requests = |r: &SweepRun| lov(&r.stats, &w.src) + lov(&r.stats, &w.tgt);
        println!(
            "    {prefix:<9} target-driven / full: {:.1}x fewer ListObjectVersions, {:.1}x less wall time, {:.1}x less CPU; same orphans: {}",
            requests(full) as f64 / requests(driven).max(1) as f64,
            full.secs / driven.secs,
            full.cpu / driven.cpu.max(0.001),
            full.summary["orphans"] == driven.summary["orphans"]
        );
    }
}

async fn scattered_case(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) {
    let (s3, sqs) = (s3.clone(), sqs.clone());
    let n = size("S3R_BENCH_SCATTERED", 10_000);
    let serial = size("S3R_BENCH_SERIAL", 500);
    let w = world(&s3, &sqs).await;
    let keys = scattered(serial + serial + n);
    seed(&w.tgt, "scattered/d", "/object.json", keys.len(), 1, true);
    let (lambda_secs, lambda_requests) = seed_lambda(&s3, &w, &keys[..serial]).await;
    enqueue(&sqs, &w.queue, &w.src, LIFECYCLE, &keys[serial..2 * serial]).await;
    let one = daemon(&w, serial, 1).await;
    let w2 = World {
        queue: queue_with_dlq(&sqs, 5).await.0,
        ..w
    };
    enqueue(&sqs, &w2.queue, &w2.src, LIFECYCLE, &keys[2 * serial..]).await;
    let default = daemon(&w2, n, 16).await;
    println!("(a) scattered: unrelated keys, 1 version + 1 delete marker each");
    println!(
        "    {:<28} {:>7} {:>9} {:>11} {:>9} {:>7}",
        "", "events", "events/s", "S3 req/ev", "bound/s", "of bound"
    );
    let row = |name: &str, events: usize, secs: f64, s3: u64, conc: f64| {
        let rate = events as f64 / secs;
        let bound = conc / (2.0 * LATENCY_MS / 1000.0);
        println!(
            "    {name:<28} {events:>7} {rate:>9.1} {:>11.3} {bound:>9.0} {:>6.0}%",
            s3 as f64 / events as f64,
            100.0 * rate / bound
        );
    };
    row(
        "the Lambda it replaces (sequential)",
        serial,
        lambda_secs,
        lambda_requests,
        1.0,
    );
    row(
        "daemon, concurrency 1",
        one.events,
        one.secs,
        count(&one.stats, "s3:"),
        1.0,
    );
    row(
        "daemon, concurrency 16",
        default.events,
        default.secs,
        count(&default.stats, "s3:"),
        16.0,
    );
    println!(
        "    requests: {:?}",
        default
            .stats
            .iter()
            .filter(|(k, _)| k.starts_with("s3:"))
            .collect::<Vec<_>>()
    );
}

async fn burst_case(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) {
    let (s3, sqs) = (s3.clone(), sqs.clone());
    let burst = size("S3R_BENCH_BURST", 100_000);
    let partitions = 20;
    let per = burst / partitions;
    let w = world(&s3, &sqs).await;
    let mut keys = Vec::with_capacity(burst);
    for p in 0..partitions {
        let prefix = format!("topics/vehicle/year=2024/month=03/day={:02}/part-", p + 1);
        seed(&w.tgt, &prefix, ".json", per, 2, true);
        keys.extend((0..per).map(|i| format!("{prefix}{i:06}.json")));
    }
    let t = Instant::now();
    let times = enqueue(&sqs, &w.queue, &w.src, LIFECYCLE, &keys).await;
    eprintln!(
        "queued {} events in {:.1}s",
        keys.len(),
        t.elapsed().as_secs_f64()
    );
    let concurrency = 1024;
    let b = daemon(&w, keys.len(), concurrency).await;
    let (p50, p99) = lag_quantiles(&b.log, &times);
    let ev = b.events as f64;
    println!(
        "(b) lifecycle burst: {} events over {partitions} partitions of {per} keys (2 versions + 1 delete marker each), concurrency {concurrency}",
        b.events
    );
    println!(
        "    {:.1}s, {:.0} events/s, {:.4} S3 requests/event, {:.3} SQS requests/event, lag p50 {:.1}s p99 {:.1}s, peak RSS {:.1} MiB",
        b.secs,
        ev / b.secs,
        count(&b.stats, "s3:") as f64 / ev,
        count(&b.stats, "sqs:") as f64 / ev,
        p50,
        p99,
        b.peak_rss_mib
    );
    println!("    requests: {:?}", b.stats);
}

async fn sweep_case(s3: &aws_sdk_s3::Client, sqs: &aws_sdk_sqs::Client) {
    let (s3, sqs) = (s3.clone(), sqs.clone());
    let keys = size("S3R_BENCH_SWEEP_KEYS", 500_000);
    let small = keys / 10;
    let w = world(&s3, &sqs).await;
    let state = unique("lab-state");
    create_bucket(&s3, &state, false).await;
    // Clean prefixes of two sizes (RSS must not follow the size), and a small one where 1,000
    // target keys the source never had come first.
    for (prefix, n) in [
        ("large/part-", keys),
        ("small/part-", small),
        ("mixed/part-", small),
    ] {
        seed(&w.src, prefix, ".json", n, 1, false);
        seed(&w.tgt, prefix, ".json", n, 2, false);
    }
    seed(&w.tgt, "mixed/orphan-", ".json", 1000, 1, false);
    println!(
        "(c) sweep --dry-run, one prefix at a time: source keys x 1 version, target keys x 2 versions; one listing stream per side; bound {:.0} target entries/s (1,000 a page at {LATENCY_MS} ms)",
        1000.0 / (LATENCY_MS / 1000.0)
    );
    println!(
        "    {:<10} {:>7} {:>9} {:>6} {:>8} {:>12} {:>13} {:>9} {:>8} {:>8} {:>11} {:>11}",
        "prefix",
        "keys",
        "versions",
        "ms",
        "secs",
        "tgt keys/s",
        "tgt entries/s",
        "orphans",
        "LOV",
        "RSS MiB",
        "CPU ms/LOV",
        "lab ms/LOV"
    );
    for (prefix, n, latency) in [
        ("large/", keys, 20),
        ("small/", small, 20),
        ("mixed/", small, 20),
        ("large/", keys, 0),
    ] {
        let r = sweep(&w, &state, latency, prefix).await;
        let s = &r.summary;
        let target = s["scanned_target"].as_f64().unwrap_or(0.0);
        let lov = r
            .stats
            .get("s3:ListObjectVersions")
            .copied()
            .unwrap_or(0)
            .max(1);
        let entries = 2.0 * n as f64 + if prefix == "mixed/" { 1000.0 } else { 0.0 };
        println!(
            "    {prefix:<10} {:>7} {:>9} {latency:>6} {:>8.1} {:>12.0} {:>13.0} {:>9} {:>8} {:>8.1} {:>11.1} {:>11.1}",
            target,
            entries,
            r.secs,
            target / r.secs,
            entries / r.secs,
            s["orphans"],
            lov,
            r.peak_rss_mib,
            1000.0 * r.cpu / lov as f64,
            1000.0 * r.lab_cpu / lov as f64
        );
    }
}
