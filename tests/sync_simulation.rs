//! The sync simulation: every seed makes a writer's history (files on time, a little late,
//! hours late, missing days), one or two daemon replicas on a virtual clock that runs days in
//! seconds, and a life for them (kills mid-execution, restarts as new pods, rollouts, whole
//! outages across a fire, manual `sync --date --no-wait` runs, DataSync answers lost or late,
//! executions ending in ERROR, claim writes that took effect but answered 500). It plays them
//! against the lab's DataSync model and checks the invariants of `sync_sim::check`.
//!
//! - `make test`: the default seeds (`DEFAULT_SEEDS`).
//! - `S3R_SYNC_SIM_SEEDS=N` (or `make soak`): seeds 1..=N; `S3R_SYNC_SIM_FROM=M` starts at M.
//! - `S3R_SYNC_SIM_SEED=n`: exactly seed n, with its plan printed.
//! - `S3R_SYNC_SIM_PARALLEL=k`: seeds played at once (default 4).
//! - `S3R_SIM_DUMP=DIR`: a failing seed's plan, executions, claims and logs go to
//!   `DIR/sync-seed-N/`.

mod common;
#[allow(dead_code)]
#[path = "sim/daemon.rs"]
mod daemon;
mod sync_sim;

use futures::StreamExt;

/// Seeds `make test` plays.
const DEFAULT_SEEDS: u64 = 8;

#[test]
fn the_sync_invariants_hold_under_kills_rollouts_outages_and_faults() {
    let (seeds, parallel) = common::sim_seeds("S3R_SYNC_SIM", DEFAULT_SEEDS, 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let one = seeds.len() == 1 && std::env::var("S3R_SYNC_SIM_SEED").is_ok();
    let failures: Vec<(u64, String)> = rt.block_on(async {
        common::lab::admin("latency", serde_json::json!({"latency_ms": 0, "jitter_ms": 0})).await;
        futures::stream::iter(seeds.clone())
            .map(|seed| async move {
                let plan = sync_sim::plan::SyncPlan::new(seed);
                let seed_started = std::time::Instant::now();
                let observed = sync_sim::run::play(&plan).await;
                let violations = sync_sim::check::check(&plan, &observed);
                if !violations.is_empty() {
                    dump(seed, &plan, &observed, &violations);
                }
                if one {
                    eprintln!("{}", plan.describe());
                }
                let succeeded = observed
                    .claims
                    .values()
                    .flatten()
                    .filter(|c| c.status == s3_reconciler::sync::state::ClaimStatus::Success)
                    .count();
                eprintln!(
                    "sync seed {seed}: {} ({} dates, {succeeded} synced, {} executions, {} process lives, {} replicas, {:.1}s)",
                    if violations.is_empty() { "ok".to_string() } else { format!("{} violation(s)", violations.len()) },
                    observed.claims.len(),
                    observed.executions.len(),
                    observed.lives.len(),
                    plan.replicas,
                    seed_started.elapsed().as_secs_f64(),
                );
                (seed, plan, violations)
            })
            .buffer_unordered(parallel)
            .filter_map(|(seed, plan, v)| async move {
                (!v.is_empty()).then(|| (seed, format!("{}\nviolations:\n  {}", plan.describe(), v.join("\n  "))))
            })
            .collect()
            .await
    });
    eprintln!(
        "sync simulation: {} seed(s) in {:.1}s, {} failed",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    for (_, report) in &failures {
        eprintln!("\n{report}");
    }
    assert!(
        failures.is_empty(),
        "seeds with violations: {:?}",
        failures.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
}

fn dump(
    seed: u64,
    plan: &sync_sim::plan::SyncPlan,
    o: &sync_sim::run::Observed,
    violations: &[String],
) {
    let Ok(dir) = std::env::var("S3R_SIM_DUMP") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(format!("sync-seed-{seed}"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("plan.txt"),
        format!(
            "{}\nviolations:\n  {}\n",
            plan.describe(),
            violations.join("\n  ")
        ),
    );
    let execs: Vec<String> = o.executions.iter().map(|e| e.to_string()).collect();
    let _ = std::fs::write(dir.join("executions.jsonl"), execs.join("\n"));
    let _ = std::fs::write(dir.join("claims.txt"), format!("{:#?}", o.claims));
    for life in &o.lives {
        let lines: Vec<String> = life.log.lines().iter().map(|l| l.to_string()).collect();
        let _ = std::fs::write(
            dir.join(format!("life-{}.jsonl", life.id)),
            lines.join("\n"),
        );
    }
}
