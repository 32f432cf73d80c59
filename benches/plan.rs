//! Planning one day for 5,000 projects against the emulator: discovery (every page of
//! CommonPrefixes), rendering and chunking. Reports wall time, S3 requests and chunks, and what
//! the seed's single-page listing would have seen. Run with `make bench`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use chrono::NaiveDate;
use common::*;
use s3_reconciler::metrics::Metrics;

const PROJECTS: usize = 5_000;
const RUNS: usize = 5;

#[tokio::main]
async fn main() {
    let s3 = s3().await;
    let (src, state) = (unique("bench-src"), unique("bench-state"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &state, false).await;
    let date = NaiveDate::from_ymd_opt(2024, 3, 9).unwrap();
    let names: Vec<String> = (0..PROJECTS)
        .map(|i| format!("vehicle-project-{i:05}"))
        .collect();
    let t = Instant::now();
    partitions(&s3, &src, &names, date).await;
    eprintln!(
        "seeded {PROJECTS} project partitions in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let cfg = sync_config(
        &src,
        "unused-target",
        &state,
        "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0",
    );
    let clients = clients(&cfg).await;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let metrics = Metrics::new().unwrap();
        let sy = syncer(&cfg, &clients, "bench", &metrics);
        let t = Instant::now();
        let plan = sy.plan(date).await.unwrap();
        times.push(t.elapsed().as_secs_f64());
        let requests = metrics
            .aws
            .calls(s3_reconciler::labels::S3Op::ListObjectsV2);
        last = Some((plan, requests));
    }
    let (plan, requests) = last.unwrap();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let longest = plan.filters.iter().map(|f| f.len()).max().unwrap_or(0);

    // The seed: one ListObjectsV2 call, no continuation token.
    let seed = s3
        .list_objects_v2()
        .bucket(&src)
        .prefix("topics/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let seed_projects = seed.common_prefixes().len();

    println!("plan bench: {PROJECTS} projects, {RUNS} runs");
    println!(
        "  wall time per plan: median {:.3}s, min {:.3}s, max {:.3}s",
        times[RUNS / 2],
        times[0],
        times[RUNS - 1]
    );
    println!("  S3 requests per plan: {requests} ListObjectsV2 (CommonPrefixes pages)");
    println!(
        "  projects found: {}, patterns: {}, filters (chunks): {}, longest filter: {longest} chars",
        plan.projects,
        plan.patterns,
        plan.filters.len()
    );
    println!(
        "  the replaced Lambda's single-page listing: 1 request, {seed_projects} projects ({} silently dropped)",
        PROJECTS - seed_projects
    );
    assert_eq!(plan.projects, PROJECTS);
}
