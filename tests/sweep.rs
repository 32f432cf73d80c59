//! The sweep against the emulator: orphans left by lost delete events are found and purged
//! within the guardrails, and nothing else is touched; dry runs, leases between replicas,
//! SIGKILL and resume, and the scheduled task.

mod common;

use s3_reconciler::labels::SweepResult;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures::StreamExt;

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");

struct World {
    s3: aws_sdk_s3::Client,
    src: String,
    tgt: String,
    state: String,
}

async fn world() -> World {
    let s3 = s3().await;
    let (src, tgt, state) = (unique("src"), unique("tgt"), unique("state"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    create_bucket(&s3, &state, false).await;
    World {
        s3,
        src,
        tgt,
        state,
    }
}

impl World {
    fn toml(&self, holder: &str, sweep: &str) -> tempfile::NamedTempFile {
        let buckets = buckets_toml(&self.src, &self.tgt);
        config_file(&format!(
            r#"{buckets}[state]
bucket = "{state}"
holder_id = "{holder}"
[log]
format = "json"
[purge]
race_guard_margin = "1s"
[sweep]
min_age = "3s"
concurrency = 4
checkpoint_interval = "200ms"
lease_ttl = "10s"
{sweep}
"#,
            state = self.state
        ))
    }

    /// Writes `keys` with `versions` versions each, several keys at once (never one key
    /// concurrently: the emulator would lose versions).
    async fn put_many(&self, bucket: &str, keys: &[String], versions: usize) {
        futures::stream::iter(keys.iter().cloned())
            .map(|k| {
                let (s3, bucket) = (self.s3.clone(), bucket.to_string());
                async move {
                    for v in 0..versions {
                        put(&s3, &bucket, &k, &format!("{k}#{v}")).await;
                    }
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
    }

    /// Every (key, version id) of the target.
    async fn target(&self) -> BTreeSet<(String, String)> {
        all_entries(&self.s3, &self.tgt, "")
            .await
            .into_iter()
            .map(|(k, v, ..)| (k, v))
            .collect()
    }
}

/// Runs `s3-reconciler sweep`: (exit code, orphan lines, summary, stderr).
fn sweep(
    cfg: &tempfile::NamedTempFile,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, Vec<serde_json::Value>, serde_json::Value, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .arg("sweep")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let mut lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["summary"], true, "{summary}");
    (
        out.status.code().unwrap(),
        lines,
        summary,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keys_with(lines: &[serde_json::Value], action: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l["action"] == action)
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_events_are_repaired_by_a_sweep_and_nothing_else_is_touched() {
    let w = world().await;
    let nfc = "data/caf\u{e9}.json";
    let nfd = "data/cafe\u{301}.json";
    // In both buckets: look-alikes of the orphans, common keys, a folder marker.
    let both: Vec<String> = [
        "data/a.json.bak",
        "data/a.json/child",
        "data/b.json",
        nfd,
        "dir/",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain((0..10).map(|i| format!("data/common-{i:02}")))
    .collect();
    // Only in the target: orphans whose delete events were lost.
    let mut orphans: Vec<String> = ["data/a.json", "data/b.json.bak", nfc, "dir/x"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..12).map(|i| format!("data/o-{i:02}")))
        .collect();
    w.put_many(&w.src, &both, 1).await;
    w.put_many(&w.tgt, &both, 1).await;
    w.put_many(&w.tgt, &orphans[..4], 2).await;
    w.put_many(&w.tgt, &orphans[4..], 1).await;
    for o in &orphans[..4] {
        delete_marker(&w.s3, &w.tgt, o).await;
    }
    // More than 1,000 versions under one prefix, with keys straddling page boundaries: in the
    // target, b-straddle's 3 versions are entries 999-1001; in the source, c000's two
    // versions are entries 999-1000.
    let a: Vec<String> = (0..499).map(|i| format!("big/a{i:03}")).collect();
    let c: Vec<String> = (0..50).map(|i| format!("big/c{i:03}")).collect();
    for bucket in [&w.src, &w.tgt] {
        w.put_many(bucket, &a, 2).await;
        w.put_many(bucket, &c, 2).await;
    }
    w.put_many(&w.tgt, &["big/b-straddle".to_string()], 3).await;
    orphans.push("big/b-straddle".into());
    // Everything so far is older than min_age (10s here, for headroom on a loaded machine);
    // one orphan is written right before each run, so it is always too young.
    let min_age = [("S3R__SWEEP__MIN_AGE", "10s")];
    let newest = all_entries(&w.s3, &w.tgt, "")
        .await
        .into_iter()
        .filter_map(|(.., t)| t)
        .max()
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "entries older than min_age",
        || async { chrono::Utc::now() - chrono::Duration::milliseconds(10_500) > newest },
    )
    .await;
    let before = w.target().await;
    let orphaned: BTreeSet<String> = orphans.iter().cloned().collect();
    let cfg = w.toml(
        "pod-a",
        r#"prefixes = ["data/", "dir/", "big/"]
max_deletes = 10"#,
    );
    put(&w.s3, &w.tgt, "data/young.json", "just copied").await;

    // A dry run decides every orphan and deletes nothing.
    let (code, lines, summary, _) = sweep(&cfg, &["--dry-run"], &min_age);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(keys_with(&lines, "would_purge"), orphaned, "{lines:#?}");
    assert_eq!(
        keys_with(&lines, "kept"),
        BTreeSet::from(["data/young.json".to_string()])
    );
    assert_eq!(
        lines
            .iter()
            .find(|l| l["key"] == "data/young.json")
            .unwrap()["reason"],
        "too_young"
    );
    assert_eq!(summary["orphans"], 17);
    assert_eq!(
        summary["scanned_target"],
        both.len() + 17 + 1 + a.len() + c.len()
    );
    let after_dry_run = w.target().await;
    assert!(
        before.is_subset(&after_dry_run),
        "a dry run deletes nothing"
    );

    // Without --purge, `sweep` does what sweep.action says: report, by default. Someone who
    // runs it to see what it does deletes nothing. (The young key gets a new version first,
    // so it stays younger than min_age however slow the runs before were.)
    put(&w.s3, &w.tgt, "data/young.json", "copied once more").await;
    let (code, lines, summary, stderr) = sweep(&cfg, &[], &min_age);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(keys_with(&lines, "would_purge"), orphaned, "{lines:#?}");
    assert!(keys_with(&lines, "purged").is_empty());
    assert_eq!(summary["purged"], 0, "{summary}");
    assert!(
        stderr.contains("\"action\":\"would_delete\"") && !stderr.contains("\"action\":\"delete\""),
        "audited as would_delete, nothing deleted: {stderr}"
    );
    assert!(
        before.is_subset(&w.target().await),
        "a report deletes nothing"
    );

    // The guardrail: 10 keys at most, the rest reported as left, exit 1. (The young key gets
    // a new version before each run, so it stays younger than min_age.)
    put(&w.s3, &w.tgt, "data/young.json", "copied again").await;
    let (code, lines, summary, stderr) = sweep(&cfg, &["--purge"], &min_age);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["result"], "exceeded_max_deletes");
    assert_eq!(summary["purged"], 10);
    assert_eq!(summary["kept"]["max_deletes"], 7);
    let purged_first = keys_with(&lines, "purged");
    assert_eq!(purged_first.len(), 10);
    assert!(purged_first.is_subset(&orphaned));
    assert!(
        stderr.contains("\"reason\":\"sweep\""),
        "audit lines name the sweep: {stderr}"
    );

    // The next run, allowed more, finishes the job.
    put(&w.s3, &w.tgt, "data/young.json", "and again").await;
    let (code, lines, summary, _) = sweep(
        &cfg,
        &["--purge"],
        &[min_age[0], ("S3R__SWEEP__MAX_DELETES", "100")],
    );
    assert_eq!(code, 0, "{summary}");
    let purged_second = keys_with(&lines, "purged");
    assert_eq!(purged_second.len(), 7);
    assert_eq!(&purged_first | &purged_second, orphaned);

    // Exactly the orphans' entries are gone; everything else, look-alikes first, is there.
    let after = w.target().await;
    let gone: BTreeSet<String> = before.difference(&after).map(|(k, _)| k.clone()).collect();
    assert_eq!(gone, orphaned);
    assert!(
        after.iter().all(|(k, _)| !orphaned.contains(k)),
        "every entry of each orphan"
    );
    for k in both.iter().chain(["data/young.json".to_string()].iter()) {
        assert!(after.iter().any(|(x, _)| x == k), "{k} must survive");
    }
    assert_eq!(
        all_entries(&w.s3, &w.src, "").await.len(),
        both.len() + 2 * (a.len() + c.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sweep_resumes_from_its_checkpoint_and_converges() {
    let w = world().await;
    let orphans: Vec<String> = (0..150).map(|i| format!("many/k{i:03}-o")).collect();
    let kept: Vec<String> = (0..150).map(|i| format!("many/k{i:03}-c")).collect();
    w.put_many(&w.src, &kept, 1).await;
    w.put_many(&w.tgt, &kept, 1).await;
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let cfg = w.toml("pod-a", "prefixes = [\"many/\"]\nmax_deletes = 1000");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["sweep", "--purge"])
        .env("S3R__SWEEP__CONCURRENCY", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut purged = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().contains("\"action\":\"purged\"") {
            purged += 1;
        }
        if purged == 60 {
            break;
        }
    }
    assert_eq!(purged, 60, "the sweep was killed mid-run");
    child.kill().unwrap();
    child.wait().unwrap();
    // No folders under many/: one shard, the whole prefix.
    let lease_key = "s3-reconciler/state/sweeps/p-many_2F/s-0000.json";
    let lease = |body: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    let read = || async {
        let out =
            w.s3.get_object()
                .bucket(&w.state)
                .key(lease_key)
                .send()
                .await
                .unwrap();
        lease(out.body.collect().await.unwrap().into_bytes().to_vec())
    };
    let interrupted = read().await;
    assert_eq!(interrupted["status"], "running", "{interrupted}");
    let after = interrupted["checkpoint"]["after"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        after.as_str() >= "many/k020",
        "checkpointed well into the run: {after}"
    );

    let (code, _, summary, stderr) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    assert!(
        stderr.contains("resuming an interrupted sweep from its checkpoint"),
        "{stderr}"
    );
    // Common keys up to the checkpoint are not walked again: it did not start over.
    let skipped = kept.iter().filter(|k| **k <= after).count() as u64;
    assert_eq!(
        summary["scanned_source"].as_u64().unwrap(),
        kept.len() as u64 - skipped
    );
    let done = read().await;
    assert_eq!(
        (&done["status"], &done["run_id"]),
        (&"completed".into(), &interrupted["run_id"])
    );
    for k in &orphans {
        assert!(entries(&w.s3, &w.tgt, k).await.is_empty(), "{k} not purged");
    }
    for k in &kept {
        assert_eq!(
            entries(&w.s3, &w.tgt, k).await.len(),
            1,
            "{k} wrongly deleted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_sweep_a_prefix_at_once_and_an_heir_resumes() {
    let w = world().await;
    let orphans: Vec<String> = (0..10).map(|i| format!("p/k{i:02}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    // pod-b's layout of p/ in its run: one shard (no folders), whose lease it holds.
    let layout = serde_json::json!({
        "prefix": "p/", "run_id": "r-pod-b", "kind": "purge", "status": "running",
        "started_at": chrono::Utc::now(), "updated_at": chrono::Utc::now(), "bounds": []
    });
    w.s3.put_object()
        .bucket(&w.state)
        .key("s3-reconciler/state/sweeps/p-p_2F.json")
        .body(layout.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let lease_key = "s3-reconciler/state/sweeps/p-p_2F/s-0000.json";
    let write_lease = |updated: chrono::DateTime<chrono::Utc>| {
        let doc = serde_json::json!({
            "prefix": "p/", "holder": "pod-b", "run_id": "r-pod-b", "kind": "purge",
            "status": "running", "started_at": updated, "updated_at": updated,
            "checkpoint": {"after": "p/k05", "source_marker": null, "target_marker": "p/k05"},
            "stats": {"scanned_source": 0, "scanned_target": 6, "orphans": 0, "purged": 0,
                      "would_purge": 0, "kept": {}}
        });
        let s3 = w.s3.clone();
        let state = w.state.clone();
        async move {
            s3.put_object()
                .bucket(state)
                .key(lease_key)
                .body(doc.to_string().into_bytes().into())
                .send()
                .await
                .unwrap();
        }
    };
    let cfg = w.toml("pod-a", "prefixes = [\"p/\"]\nmax_deletes = 100");
    // pod-b started the run and is sweeping p/ right now: pod-a joins the run, keeps off the
    // prefix and deletes nothing.
    let run = serde_json::json!({
        "run_id": "r-pod-b", "kind": "purge", "prefixes": ["p/"], "status": "running",
        "started_at": chrono::Utc::now(), "updated_at": chrono::Utc::now(),
        "max_deletes": 100, "reserved": 0
    });
    let run_key = format!(
        "s3-reconciler/state/{}",
        s3_reconciler::sweep::budget::name(s3_reconciler::sweep::RunKind::Purge, &["p/".into()])
    );
    w.s3.put_object()
        .bucket(&w.state)
        .key(run_key)
        .body(run.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    write_lease(chrono::Utc::now()).await;
    let (code, lines, summary, _) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!((code, &summary["result"]), (1, &"busy".into()), "{summary}");
    assert!(lines.is_empty());
    assert_eq!(w.target().await.len(), 10);
    // pod-b died: its lease goes stale and pod-a takes over from its checkpoint (k00-k05 were
    // pod-b's to settle).
    write_lease(chrono::Utc::now() - chrono::Duration::minutes(5)).await;
    let (code, lines, summary, stderr) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 0, "{summary}");
    assert!(stderr.contains("resuming an interrupted sweep"), "{stderr}");
    let want: BTreeSet<String> = orphans[6..].iter().cloned().collect();
    assert_eq!(keys_with(&lines, "purged"), want);
    // A fresh run (the lease is completed now) walks the whole prefix again.
    let (code, lines, _, _) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 0);
    let want: BTreeSet<String> = orphans[..6].iter().cloned().collect();
    assert_eq!(keys_with(&lines, "purged"), want);
    assert!(w.target().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sweep_reports_and_exports_its_metrics() {
    let w = world().await;
    let orphans: Vec<String> = (0..3).map(|i| format!("r/o{i}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    w.put_many(&w.src, &["r/live".to_string()], 1).await;
    w.put_many(&w.tgt, &["r/live".to_string()], 1).await;
    let mut cfg = config(&w.src, &w.tgt, "http://unused/123456789012/q");
    cfg.purge.enabled = false;
    cfg.state.bucket = w.state.clone();
    cfg.sweep.enabled = true;
    cfg.sweep.prefixes = vec!["r/".into()];
    cfg.sweep.min_age = Duration::from_millis(1);
    cfg.sweep.schedule = s3_reconciler::config::Schedule::parse("*/2 * * * * *").unwrap();
    past_race_guard(&w.s3, &w.tgt).await;
    let before = w.target().await;
    let d = Daemon::start(cfg).await;
    eventually(
        Duration::from_secs(30),
        "a completed report run",
        || async { d.metrics.sweep.runs(SweepResult::Completed) >= 1 },
    )
    .await;
    assert_eq!(d.metrics.sweep.last_orphans(), 3);
    assert!(d.metrics.sweep.last_success() > 0);
    assert_eq!(d.metrics.sweep.would_purge() % 3, 0);
    assert_eq!(d.metrics.sweep.purged(), 0, "report mode deletes nothing");
    let (_, status) = http_get(d.port, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let last = &status["tasks"]["sweep"]["details"]["last_run"];
    assert_eq!(
        (&last["result"], &last["would_purge"]),
        (&"completed".into(), &3.into()),
        "{status}"
    );
    // r/ has no folders: one shard, done; the progress /status showed is the same count.
    assert_eq!(
        (
            &last["shards"]["shards_total"],
            &last["shards"]["shards_done"]
        ),
        (&1.into(), &1.into()),
        "{status}"
    );
    // (A later run may be under way: its counts move, its shard count does not.)
    let progress = &status["tasks"]["sweep"]["details"]["progress"];
    assert_eq!(progress["shards_total"], 1, "{status}");
    assert_eq!(w.target().await, before);
    d.stop().await;
}

/// The run's `max_deletes` holds across a kill: the restarted sweep joins the unfinished run
/// and has only what is left of its budget, not a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_max_deletes_holds_across_a_kill_and_a_restart() {
    let w = world().await;
    let orphans: Vec<String> = (0..120).map(|i| format!("cap/k{i:03}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let cfg = w.toml("pod-a", "prefixes = [\"cap/\"]\nmax_deletes = 50");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["sweep", "--purge"])
        .env("S3R__SWEEP__CONCURRENCY", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut purged = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().contains("\"action\":\"purged\"") {
            purged += 1;
        }
        if purged == 40 {
            break;
        }
    }
    assert_eq!(purged, 40, "the sweep was killed mid-run");
    child.kill().unwrap();
    child.wait().unwrap();
    let left_after_kill = w.target().await.len();
    let (code, lines, summary, _) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["result"], "exceeded_max_deletes", "{summary}");
    let purged_again = keys_with(&lines, "purged").len();
    let gone = orphans.len() - w.target().await.len();
    assert!(
        gone <= 50,
        "{gone} keys purged in one run of max_deletes = 50 ({purged_again} after the restart, {} before)",
        orphans.len() - left_after_kill
    );
    assert!(
        purged_again <= 10,
        "{purged_again} purged after the restart"
    );
    assert!(summary["reserved"].as_u64().unwrap() <= 50, "{summary}");
}

/// A run document that says the budget is spent (a previous process reserved it and died)
/// means nothing more is deleted in that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_budget_was_reserved_before_a_crash_deletes_nothing_more() {
    let w = world().await;
    let orphans: Vec<String> = (0..4).map(|i| format!("spent/k{i}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let run = serde_json::json!({
        "run_id": "crashed", "kind": "purge", "prefixes": ["spent/"], "status": "running",
        "started_at": chrono::Utc::now(), "updated_at": chrono::Utc::now(),
        "max_deletes": 3, "reserved": 3
    });
    let run_key = format!(
        "s3-reconciler/state/{}",
        s3_reconciler::sweep::budget::name(
            s3_reconciler::sweep::RunKind::Purge,
            &["spent/".into()]
        )
    );
    w.s3.put_object()
        .bucket(&w.state)
        .key(run_key)
        .body(run.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let cfg = w.toml("pod-a", "prefixes = [\"spent/\"]\nmax_deletes = 3");
    let (code, lines, summary, _) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["run_id"], "crashed");
    assert_eq!(summary["result"], "exceeded_max_deletes");
    assert!(keys_with(&lines, "purged").is_empty(), "{lines:#?}");
    assert_eq!(summary["kept"]["max_deletes"], 4);
    assert_eq!(w.target().await.len(), 4, "nothing deleted");
}

/// `purge.dry_run = true` makes every sweep a dry run, and the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_dry_run_makes_a_purging_sweep_report_and_delete_nothing() {
    let w = world().await;
    let orphans: Vec<String> = (0..3).map(|i| format!("dry/k{i}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let cfg = w.toml("pod-a", "prefixes = [\"dry/\"]");
    let (code, lines, summary, _) = sweep(&cfg, &["--purge"], &[("S3R__PURGE__DRY_RUN", "true")]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["purged"], 0);
    assert_eq!(summary["would_purge"], 3);
    assert!(keys_with(&lines, "purged").is_empty(), "{lines:#?}");
    assert_eq!(keys_with(&lines, "would_purge").len(), 3);
    assert_eq!(w.target().await.len(), 3, "nothing deleted");
}

#[test]
fn overlapping_prefixes_on_the_command_line_are_refused() {
    let cfg = config_file(&format!(
        "{}[state]\nbucket = \"state\"\n",
        buckets_toml("src", "tgt")
    ));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["sweep", "--prefix", "data/", "--prefix", "data/2024/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--prefix") && err.contains("`data/` and `data/2024/` overlap"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing swept");
}

/// Found by the simulation: a run that stopped deleting after an error (or had a key whose
/// decision failed) keeps that state across a crash; the process that joins it deletes
/// nothing, on any of the run's prefixes, and does not report the run completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_a_delete_error_stays_stopped_after_a_crash() {
    let w = world().await;
    let orphans = ["st1/a".to_string(), "st2/b".to_string()];
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let prefixes = vec!["st1/".to_string(), "st2/".to_string()];
    let run = serde_json::json!({
        "run_id": "crashed", "kind": "purge", "prefixes": prefixes, "status": "running",
        "started_at": chrono::Utc::now(), "updated_at": chrono::Utc::now(),
        "max_deletes": 100, "reserved": 1,
        "stopped": "st0/x: deleting s3://tgt/st0/x version v: AccessDenied: Access Denied"
    });
    let run_key = format!(
        "s3-reconciler/state/{}",
        s3_reconciler::sweep::budget::name(s3_reconciler::sweep::RunKind::Purge, &prefixes)
    );
    w.s3.put_object()
        .bucket(&w.state)
        .key(run_key)
        .body(run.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let cfg = w.toml(
        "pod-a",
        "prefixes = [\"st1/\", \"st2/\"]\nmax_deletes = 100",
    );
    let (code, lines, summary, _) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["result"], "stopped_after_error", "{summary}");
    assert!(keys_with(&lines, "purged").is_empty(), "{lines:#?}");
    assert_eq!(summary["kept"]["after_error"], 2, "{summary}");
    assert_eq!(w.target().await.len(), 2, "nothing deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_target_is_swept_from_its_own_keys_and_finds_what_the_full_walk_finds() {
    let w = world().await;
    // The source keeps twenty days of six projects; the target one day of each, plus keys
    // the source lost (orphans) beside look-alikes the source still has.
    let day = |p: usize, d: usize| -> Vec<String> {
        (0..3)
            .map(|f| format!("topics/p{p}/year=2026/month=11/day={d:02}/f{f}.json"))
            .collect()
    };
    let source: Vec<String> = (0..6)
        .flat_map(|p| (1..=20).flat_map(move |d| day(p, d)))
        .chain(["topics/p2/year=2026/month=11/day=15/f0.json.bak".to_string()])
        .collect();
    let kept: Vec<String> = (0..6).flat_map(|p| day(p, 15)).collect();
    let orphans: BTreeSet<String> = [
        "topics/p0/year=2026/month=11/day=15/gone.json",
        "topics/p2/year=2026/month=11/day=15/f0.json.b",
        "topics/p5/year=2026/month=11/day=16/f9.json",
        "topics/p9/year=2026/month=11/day=15/f0.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    w.put_many(&w.src, &source, 1).await;
    let target: Vec<String> = kept
        .iter()
        .cloned()
        .chain(orphans.iter().cloned())
        .chain(["topics/p2/year=2026/month=11/day=15/f0.json.bak".to_string()])
        .collect();
    w.put_many(&w.tgt, &target, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cfg = w.toml("pod-a", "prefixes = [\"topics/\"]");

    let mut found = Vec::new();
    // One shard a prefix for the walks' arithmetic below, then split by the target's folders.
    for (walk, depth) in [
        ("full", "0"),
        ("target-driven", "0"),
        ("target-driven", "4"),
    ] {
        let (code, lines, summary, stderr) = sweep(
            &cfg,
            &["--dry-run"],
            &[
                ("S3R__SWEEP__WALK", walk),
                ("S3R__SWEEP__MIN_AGE", "1s"),
                ("S3R__SWEEP__SHARD_DEPTH", depth),
            ],
        );
        assert_eq!(code, 0, "{walk}: {summary}\n{stderr}");
        assert_eq!(
            keys_with(&lines, "would_purge"),
            orphans,
            "{walk}: {lines:#?}"
        );
        assert_eq!(summary["scanned_target"], target.len(), "{walk}: {summary}");
        found.push(summary["scanned_source"].as_u64().unwrap());
    }
    // The full walk reads all 361 source keys. The target-driven one starts just below the
    // target's first key (its last character dropped), and one page of the emulator's 1,000
    // entries then reaches the end: the fourteen days before are never read.
    assert_eq!(found[0], source.len() as u64);
    let first = target.iter().min().unwrap();
    let below = &first[..first.len() - 1];
    let expected = source.iter().filter(|k| k.as_str() > below).count() as u64;
    assert_eq!(found[1], expected, "target-driven source keys read");
    assert!(expected < found[0] - 40);
    // Split into shards at the target's folders (down to the days), each shard's source
    // listing starts at its own first target key: less still.
    assert!(found[2] < found[1], "{found:?}");
    assert!(
        w.target().await.len() == target.len(),
        "a dry run deletes nothing"
    );
}

/// Reads a state document of the sweep (`name` under the state prefix), if any.
async fn state_doc(w: &World, name: &str) -> Option<serde_json::Value> {
    let out =
        w.s3.get_object()
            .bucket(&w.state)
            .key(format!("s3-reconciler/state/{name}"))
            .send()
            .await
            .ok()?;
    let body = out.body.collect().await.unwrap().into_bytes();
    Some(serde_json::from_slice(&body).unwrap())
}

/// Waits until every target entry is older than the tests' `min_age` (3 s).
async fn past_min_age(w: &World) {
    eventually(Duration::from_secs(15), "past min_age", || async {
        let newest = all_entries(&w.s3, &w.tgt, "")
            .await
            .into_iter()
            .filter_map(|(.., t)| t)
            .max()
            .unwrap();
        chrono::Utc::now() - chrono::Duration::milliseconds(3500) > newest
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sharded_sweep_resumes_each_shard_from_its_checkpoint() {
    let w = world().await;
    let key = |d: usize, i: usize, tag: &str| format!("sh/d={d}/k{i:03}-{tag}");
    let orphans: Vec<String> = (0..4)
        .flat_map(|d| (0..40).map(move |i| key(d, i, "o")))
        .collect();
    let kept: Vec<String> = (0..4)
        .flat_map(|d| (0..40).map(move |i| key(d, i, "c")))
        .collect();
    w.put_many(&w.src, &kept, 1).await;
    w.put_many(&w.tgt, &kept, 1).await;
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let cfg = w.toml(
        "pod-a",
        "prefixes = [\"sh/\"]\nmax_deletes = 1000\nparallelism = 2",
    );
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["sweep", "--purge"])
        .env("S3R__SWEEP__CONCURRENCY", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut purged = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().contains("\"action\":\"purged\"") {
            purged += 1;
        }
        if purged == 60 {
            break;
        }
    }
    assert_eq!(purged, 60, "the sweep was killed mid-run");
    child.kill().unwrap();
    child.wait().unwrap();

    // The layout: one shard a folder (the first from the prefix's start).
    let layout = state_doc(&w, "sweeps/p-sh_2F.json").await.unwrap();
    assert_eq!(
        layout["bounds"],
        serde_json::json!(["sh/d=1/", "sh/d=2/", "sh/d=3/"]),
        "{layout}"
    );
    assert_eq!(layout["status"], "running");
    assert_eq!(layout["schema"], 1, "state documents carry their schema");
    let mut checkpoints = Vec::new();
    for i in 0..4 {
        let Some(l) = state_doc(&w, &format!("sweeps/p-sh_2F/s-{i:04}.json")).await else {
            continue;
        };
        assert_eq!(l["run_id"], layout["run_id"], "{l}");
        assert_eq!(l["schema"], 1, "{l}");
        if l["status"] == "running"
            && let Some(after) = l["checkpoint"]["after"].as_str()
        {
            assert!(after.starts_with(&format!("sh/d={i}/")), "{l}");
            checkpoints.push(after.to_string());
        }
        // A shard that ended before the kill (a slow machine gets there) is not walked again:
        // every key of it counts as behind its checkpoint.
        if l["status"] == "completed" {
            checkpoints.push(format!("sh/d={i}/\u{10FFFF}"));
        }
    }
    assert!(
        !checkpoints.is_empty(),
        "an interrupted shard has a checkpoint"
    );

    let (code, _, summary, stderr) = sweep(&cfg, &["--purge"], &[]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    assert!(
        stderr.contains("resuming an interrupted sweep from its checkpoint"),
        "{stderr}"
    );
    assert_eq!(summary["run_id"], layout["run_id"], "{summary}");
    assert_eq!(summary["shards"]["shards_total"], 4, "{summary}");
    // Kept keys at or before a shard's checkpoint are not walked again.
    let skipped = kept
        .iter()
        .filter(|k| {
            checkpoints
                .iter()
                .any(|c| k.as_str() <= c.as_str() && k[..7] == c[..7])
        })
        .count() as u64;
    assert!(skipped > 0);
    assert_eq!(
        summary["scanned_source"].as_u64().unwrap(),
        kept.len() as u64 - skipped,
        "{summary}"
    );
    let done = state_doc(&w, "sweeps/p-sh_2F.json").await.unwrap();
    assert_eq!(
        (&done["status"], &done["result"]),
        (&"completed".into(), &"completed".into())
    );
    for k in &orphans {
        assert!(entries(&w.s3, &w.tgt, k).await.is_empty(), "{k} not purged");
    }
    for k in &kept {
        assert_eq!(
            entries(&w.s3, &w.tgt, k).await.len(),
            1,
            "{k} wrongly deleted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweeps_at_once_share_the_shards_and_never_sweep_one_twice() {
    let w = world().await;
    let folders = 12;
    let orphans: BTreeSet<String> = (0..folders)
        .flat_map(|d| (0..8).map(move |i| format!("two/d={d:02}/o{i}")))
        .collect();
    let kept: Vec<String> = (0..folders)
        .flat_map(|d| (0..8).map(move |i| format!("two/d={d:02}/c{i}")))
        .collect();
    w.put_many(&w.src, &kept, 1).await;
    w.put_many(&w.tgt, &kept, 1).await;
    w.put_many(&w.tgt, &orphans.iter().cloned().collect::<Vec<_>>(), 1)
        .await;
    past_min_age(&w).await;
    let spawn = |holder: &str| {
        let cfg = w.toml(holder, "prefixes = [\"two/\"]\nparallelism = 1");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(cfg.path())
            .args(["sweep", "--dry-run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (cfg, child)
    };
    let (_a_cfg, a) = spawn("pod-a");
    let (_b_cfg, b) = spawn("pod-b");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let parse = |o: &std::process::Output| {
        let mut lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary = lines.pop().unwrap();
        let keys: BTreeSet<String> = keys_with(&lines, "would_purge");
        (o.status.code().unwrap(), keys, summary)
    };
    let ((code_a, keys_a, sum_a), (code_b, keys_b, sum_b)) = (parse(&a), parse(&b));
    assert_eq!(sum_a["run_id"], sum_b["run_id"], "one run, joined by both");
    assert!(
        keys_a.is_disjoint(&keys_b),
        "an orphan reported twice: {:?}",
        keys_a.intersection(&keys_b).collect::<Vec<_>>()
    );
    let all: BTreeSet<String> = keys_a.union(&keys_b).cloned().collect();
    assert_eq!(all, orphans);
    // Whoever ends last sees every shard completed; the other may still see one running.
    for (code, s) in [(code_a, &sum_a), (code_b, &sum_b)] {
        assert!(code == 0 || s["result"] == "busy", "{s}");
    }
    assert!(code_a == 0 || code_b == 0, "{sum_a}\n{sum_b}");
    // parallelism 1 wants four shards: the twelve folders, spread over four.
    let layout = state_doc(&w, "sweeps/p-two_2F.json").await.unwrap();
    assert_eq!(
        layout["bounds"],
        serde_json::json!(["two/d=03/", "two/d=06/", "two/d=09/"])
    );
    assert_eq!(layout["status"], "completed");
    let mut holders = BTreeSet::new();
    let mut scanned = 0;
    for i in 0..4 {
        let l = state_doc(&w, &format!("sweeps/p-two_2F/s-{i:04}.json"))
            .await
            .unwrap();
        assert_eq!(
            (&l["status"], &l["run_id"]),
            (&"completed".into(), &sum_a["run_id"]),
            "{l}"
        );
        holders.insert(l["holder"].as_str().unwrap().to_string());
        scanned += l["stats"]["scanned_target"].as_u64().unwrap();
    }
    assert_eq!(holders.len(), 2, "both replicas took shards: {holders:?}");
    // Each target key was scanned once, in one shard by one replica.
    assert_eq!(scanned, (kept.len() + orphans.len()) as u64);
    assert_eq!(
        sum_a["scanned_target"].as_u64().unwrap() + sum_b["scanned_target"].as_u64().unwrap(),
        scanned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_failed_in_another_replica_stops_this_one() {
    let w = world().await;
    let orphans: Vec<String> = (0..200).map(|i| format!("x/k{i:03}")).collect();
    w.put_many(&w.tgt, &orphans, 1).await;
    past_min_age(&w).await;
    let cfg = w.toml("pod-a", "prefixes = [\"x/\"]\nmax_deletes = 1000");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["sweep", "--purge"])
        .env("S3R__SWEEP__CONCURRENCY", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut purged = 0;
    for line in lines.by_ref() {
        if line.unwrap().contains("\"action\":\"purged\"") {
            purged += 1;
        }
        if purged == 20 {
            break;
        }
    }
    // Another replica's delete failed: it records that in the run document.
    let run = s3_reconciler::sweep::budget::name(
        s3_reconciler::sweep::RunKind::Purge,
        &["x/".to_string()],
    );
    let mut doc = state_doc(&w, &run).await.unwrap();
    doc["stopped"] = "x/zzz: AccessDenied (pod-b)".into();
    w.s3.put_object()
        .bucket(&w.state)
        .key(format!("s3-reconciler/state/{run}"))
        .body(doc.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let rest: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let summary = rest.last().unwrap();
    assert_eq!(summary["result"], "stopped_after_error", "{summary}");
    let more = keys_with(&rest, "purged").len();
    // One decision may have been under way (concurrency 1), and a few keys may have been
    // purged while the document was read and written (without the fix: 180 more).
    assert!(
        more <= 10,
        "{more} more keys purged after the run was stopped"
    );
    let after_error = rest.iter().filter(|l| l["reason"] == "after_error").count();
    assert!(after_error >= 160, "{after_error} kept after the error");
    assert_eq!(
        w.target().await.len(),
        orphans.len() - (purged + more),
        "nothing else deleted"
    );
}
