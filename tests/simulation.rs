//! The safety simulation: every seed makes a world (look-alike keys, versions, markers, `null`
//! versions, replicas, held versions) and a history (source deletes in random order,
//! re-creations, DataSync-style copies, the target's lifecycle markers; events duplicated,
//! delayed, reordered and lost), plays it on the lab with faults (5xx, SlowDown, truncated
//! pages without markers, short pages, latency spikes, slow keys) while the daemon runs and is
//! killed and restarted, runs a sweep at the end (killed once, then resumed), and checks the
//! invariants of `sim::check`.
//!
//! - `make test`: the default seeds (`DEFAULT_SEEDS`).
//! - `S3R_SIM_SEEDS=N` (or `make soak`): seeds 1..=N; `S3R_SIM_FROM=M` starts at M.
//! - `S3R_SIM_SEED=n`: exactly seed n, with its whole plan printed.
//! - `S3R_SIM_PARALLEL=k`: seeds played at once (default 6).
//!
//! A failing seed prints its plan (world, history, faults, sweep) and how to replay it.

mod common;
mod sim;

use futures::StreamExt;

/// Seeds `make test` plays.
const DEFAULT_SEEDS: u64 = 36;

#[test]
fn the_safety_invariants_hold_under_random_worlds_histories_faults_and_kills() {
    let (seeds, parallel) = common::sim_seeds("S3R_SIM", DEFAULT_SEEDS, 6);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let failures: Vec<(u64, String)> = rt.block_on(async {
        // Low latency on every request, as a nearby region's: enough to interleave.
        common::lab::admin("latency", serde_json::json!({"latency_ms": 4, "jitter_ms": 3})).await;
        futures::stream::iter(seeds.clone())
            .map(|seed| async move {
                let plan = sim::plan::Plan::new(seed);
                let observed = sim::run::play(&plan).await;
                let violations = sim::check::check(&plan, &observed);
                if !violations.is_empty() {
                    dump(seed, &plan, &observed, &violations);
                }
                if seeds_one() {
                    eprintln!("{}", plan.describe());
                }
                let deletes = observed
                    .journal
                    .iter()
                    .filter(|j| j["actor"] == "client" && j["change"] == "delete")
                    .count();
                eprintln!(
                    "seed {seed}: {} ({} events, {} dead-lettered, {deletes} deletes, {} daemon lives, {} sweep runs)",
                    if violations.is_empty() { "ok".to_string() } else { format!("{} violation(s)", violations.len()) },
                    observed.events.len(),
                    observed.dead.len(),
                    observed.lives.len(),
                    observed.sweeps.len()
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
        "simulation: {} seed(s) in {:.1}s, {} failed",
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

/// With `S3R_SIM_DUMP=DIR`, a failing seed's plan, journal, logs and reports go to
/// `DIR/seed-N/`.
fn dump(seed: u64, plan: &sim::plan::Plan, o: &sim::check::Observed, violations: &[String]) {
    let Ok(dir) = std::env::var("S3R_SIM_DUMP") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(format!("seed-{seed}"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("plan.txt"),
        format!(
            "{}\nviolations:\n  {}\n",
            plan.describe(),
            violations.join("\n  ")
        ),
    );
    let journal: Vec<String> = o.journal.iter().map(|j| j.to_string()).collect();
    let _ = std::fs::write(dir.join("journal.jsonl"), journal.join("\n"));
    for life in o.lives.iter().chain(o.sweeps.iter().map(|s| &s.life)) {
        let lines: Vec<String> = life.log.lines().iter().map(|l| l.to_string()).collect();
        let _ = std::fs::write(
            dir.join(format!("life-{}.jsonl", life.id)),
            lines.join("\n"),
        );
    }
    for (i, s) in o.sweeps.iter().enumerate() {
        let mut lines: Vec<String> = s.lines.iter().map(|l| l.to_string()).collect();
        lines.extend(s.summary.iter().map(|v| v.to_string()));
        let _ = std::fs::write(dir.join(format!("sweep-{i}.jsonl")), lines.join("\n"));
    }
    let _ = std::fs::write(
        dir.join("events.txt"),
        format!(
            "{:#?}\ndead: {:?}\nunsettled: {}",
            o.events, o.dead, o.unsettled
        ),
    );
}

fn seeds_one() -> bool {
    std::env::var("S3R_SIM_SEED").is_ok()
}
