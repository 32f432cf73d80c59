//! Plays one seed's plan on the lab: seeds the world, runs the daemon while the history
//! happens (killing and restarting it), waits until every message has settled, runs the sweep
//! (killing it once), and gathers what the checker judges.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::check::{Observed, SentEvent, SweepRun};
use super::daemon::{self, Daemon, Life};
use super::plan::{Action, Delivery, Faults, Mode, Plan};
use crate::common::lab::{self, lab_config, lab_sqs};
use crate::common::{queue_depth, s3_event, unique};
use s3_reconciler::config::{MarkerOnlySource, PurgeMode};
use s3_reconciler::sweep::RunKind;

/// The race guard, the visibility and the backoffs of the simulated daemon.
pub const MARGIN: Duration = Duration::from_secs(1);
const MAX_RECEIVES: u32 = 4;

fn faults_json(f: &Faults, bucket: &str, seed: u64) -> Value {
    json!({
        "seed": seed, "buckets": [bucket], "error": f.error, "slow_down": f.slow_down,
        "error_after": f.error_after, "truncate": f.truncate, "page": f.page,
        "spike": f.spike, "spike_ms": f.spike_ms,
        "slow": f.slow.iter().map(|(p, ms)| json!({"prefix": p, "ms": ms})).collect::<Vec<_>>(),
    })
}

/// label → (bucket, key, version id) of everything the harness wrote.
type Labels = Arc<Mutex<BTreeMap<usize, (String, String, String)>>>;

struct World {
    src: String,
    tgt: String,
    state: String,
    labels: Labels,
}

async fn seed_world(plan: &Plan) -> World {
    let (src, tgt) = (lab::bucket("simsrc").await, lab::bucket("simtgt").await);
    let state = unique("simstate");
    lab::admin("bucket", json!({"name": state, "versioned": false})).await;
    lab::admin("journal/watch", json!({"buckets": [src, tgt]})).await;
    let labels: Labels = Arc::default();
    // The source first: replicas need its version ids.
    for target in [false, true] {
        for e in plan.initial.iter().filter(|e| e.target == target) {
            let bucket = if target { &tgt } else { &src };
            let mut w = json!({"age_seconds": e.age_s, "delete_marker": e.marker,
                               "held": e.held, "null": e.null});
            if let Some(of) = e.replica_of {
                let id = labels.lock().unwrap().get(&of).map(|x| x.2.clone());
                if let Some(id) = id {
                    w["version_id"] = json!(id);
                    w["replica"] = json!(true);
                }
            }
            let id = lab::write(bucket, &e.key, w).await;
            labels
                .lock()
                .unwrap()
                .insert(e.label, (bucket.clone(), e.key.clone(), id));
        }
    }
    lab::admin("faults", faults_json(&plan.source_faults, &src, plan.seed)).await;
    lab::admin(
        "faults",
        faults_json(&plan.target_faults, &tgt, plan.seed.wrapping_add(1)),
    )
    .await;
    World {
        src,
        tgt,
        state,
        labels,
    }
}

fn config(plan: &Plan, w: &World, queue: &str) -> s3_reconciler::config::Config {
    let mut c = lab_config(&w.src, &w.tgt, queue);
    c.purge.mode = match plan.mode {
        Mode::Mirror => PurgeMode::MirrorVersions,
        Mode::WhenSourceEmpty => PurgeMode::WhenSourceEmpty,
    };
    c.purge.prefixes = vec![String::new()];
    c.purge.marker_only_source = if plan.marker_only_keep {
        MarkerOnlySource::Keep
    } else {
        MarkerOnlySource::Purge
    };
    c.purge.dry_run = plan.dry_run;
    c.purge.concurrency =
        std::num::NonZeroUsize::new(plan.concurrency).unwrap_or(c.purge.concurrency);
    c.purge.visibility_timeout = Duration::from_secs(2);
    c.purge.wait_time = Duration::from_secs(1);
    c.purge.retry_backoff = Duration::from_secs(1);
    c.purge.retry_backoff_max = Duration::from_secs(2);
    c.purge.race_guard_margin = MARGIN;
    c.aws.max_attempts = std::num::NonZeroU32::new(3).unwrap_or(c.aws.max_attempts);
    c.aws.attempt_timeout = Duration::from_secs(5);
    c.aws.operation_timeout = Duration::from_secs(15);
    c.state.bucket = w.state.clone();
    c.shutdown.grace = Duration::from_secs(5);
    c
}

/// Sends one event for `key`'s `version_id` as the plan's delivery says, recording its
/// message ids.
async fn deliver(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    body: String,
    delivery: Delivery,
    sent: Arc<Mutex<SentEvent>>,
) {
    let send = |sqs: aws_sdk_sqs::Client,
                queue: String,
                body: String,
                sent: Arc<Mutex<SentEvent>>| async move {
        if let Ok(out) = sqs
            .send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            && let Some(id) = out.message_id()
        {
            sent.lock().unwrap().message_ids.push(id.to_string());
        }
    };
    match delivery {
        Delivery::Lost => {}
        Delivery::Once { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            send(sqs, queue, body, sent).await;
        }
        Delivery::Twice { delay_ms, again_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            send(sqs.clone(), queue.clone(), body.clone(), sent.clone()).await;
            tokio::time::sleep(Duration::from_millis(again_ms)).await;
            send(sqs, queue, body, sent).await;
        }
    }
}

/// The newest entry of `key` in `bucket`, if it is data: (version id).
async fn current(bucket: &str, key: &str) -> Option<String> {
    let all = lab::admin("dump", json!({"bucket": bucket})).await;
    all.as_array()?
        .iter()
        .filter(|e| e["key"] == key)
        .max_by_key(|e| e["last_modified"].as_i64().unwrap_or(0))
        .filter(|e| e["delete_marker"] == false)
        .and_then(|e| e["version_id"].as_str().map(str::to_string))
}

async fn exists(bucket: &str, key: &str, id: &str) -> bool {
    lab::dump(bucket)
        .await
        .iter()
        .any(|(k, v, _)| k == key && v == id)
}

/// Plays the plan and gathers what happened.
pub async fn play(plan: &Plan) -> Observed {
    let w = seed_world(plan).await;
    let sqs = lab_sqs().await;
    let (queue, dlq) = crate::common::queue_with_dlq(&sqs, MAX_RECEIVES).await;
    let cfg = config(plan, &w, &queue);
    let mut lives: Vec<Life> = Vec::new();
    let mut daemon = Daemon::start(cfg.clone(), 0);
    let t0 = tokio::time::Instant::now();
    let mut events: Vec<Arc<Mutex<SentEvent>>> = Vec::new();
    let mut sending = Vec::new();
    for step in &plan.history {
        tokio::time::sleep_until(t0 + Duration::from_millis(step.at_ms)).await;
        match &step.action {
            Action::SourceDelete { label, event } => {
                let Some((_, key, id)) = w.labels.lock().unwrap().get(label).cloned() else {
                    continue;
                };
                lab::delete(&w.src, &key, Some(&id)).await;
                let sent = Arc::new(Mutex::new(SentEvent {
                    key: key.clone(),
                    version_id: id.clone(),
                    message_ids: Vec::new(),
                }));
                events.push(sent.clone());
                let body = s3_event(&w.src, &key, "ObjectRemoved:Delete", &id);
                sending.push(tokio::spawn(deliver(
                    sqs.clone(),
                    queue.clone(),
                    body,
                    *event,
                    sent,
                )));
            }
            Action::SourceWrite { key, label } => {
                let id = lab::write(&w.src, key, json!({})).await;
                w.labels
                    .lock()
                    .unwrap()
                    .insert(*label, (w.src.clone(), key.clone(), id));
            }
            Action::Replicate { label } => {
                let Some((_, key, id)) = w.labels.lock().unwrap().get(label).cloned() else {
                    continue;
                };
                if exists(&w.src, &key, &id).await {
                    lab::write(&w.tgt, &key, json!({"version_id": id, "replica": true})).await;
                }
            }
            Action::Copy { key } => {
                if current(&w.src, key).await.is_some() {
                    lab::write(&w.tgt, key, json!({})).await;
                }
            }
            Action::LifecycleMarker { key } => lab::delete(&w.tgt, key, None).await,
            Action::Kill { down_ms } => {
                lives.push(daemon.kill());
                tokio::time::sleep(Duration::from_millis(*down_ms)).await;
                daemon = Daemon::start(cfg.clone(), lives.len());
            }
        }
    }
    for s in sending {
        let _ = s.await;
    }
    // Every message settles: acknowledged, or moved to the DLQ after its last receive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while quiet < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(400)).await;
        quiet = if queue_depth(&sqs, &queue).await == 0 {
            quiet + 1
        } else {
            0
        };
    }
    let unsettled = queue_depth(&sqs, &queue).await;
    lives.push(daemon.stop());
    let mut sweeps = Vec::new();
    if let Some(sp) = &plan.sweep {
        // Past min_age and the race guard.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let mut c = cfg.clone();
        let mut dirs: Vec<String> = plan
            .keys
            .iter()
            .filter_map(|k| k.find('/').map(|i| k[..=i].to_string()))
            .collect();
        dirs.sort();
        dirs.dedup();
        c.sweep.prefixes = dirs;
        c.sweep.max_deletes =
            std::num::NonZeroU32::new(sp.max_deletes).unwrap_or(c.sweep.max_deletes);
        c.sweep.concurrency =
            std::num::NonZeroUsize::new(sp.concurrency).unwrap_or(c.sweep.concurrency);
        c.sweep.parallelism =
            std::num::NonZeroUsize::new(sp.parallelism).unwrap_or(c.sweep.parallelism);
        c.sweep.shard_depth = sp.shard_depth;
        c.sweep.min_age = Duration::from_secs(1);
        c.sweep.lease_ttl = Duration::from_secs(10);
        c.sweep.checkpoint_interval = Duration::from_millis(200);
        let kind = if sp.purge {
            RunKind::Purge
        } else {
            RunKind::Report
        };
        let mut kill_after = sp.kill_after;
        loop {
            let id = lives.len() + sweeps.len() + 100;
            let (life, lines, summary) = {
                let c = c.clone();
                tokio::task::spawn_blocking(move || daemon::sweep(c, kind, kill_after, id))
                    .await
                    .expect("the sweep thread")
            };
            let done = summary.is_some();
            sweeps.push(SweepRun {
                life,
                lines,
                summary: summary.map(|s| serde_json::to_value(&s).unwrap_or_default()),
            });
            if done || sweeps.len() > 3 {
                break;
            }
            // Killed: the next process resumes the run, as a restarted pod would.
            kill_after = None;
        }
    }
    let journal: Vec<Value> = lab::admin("journal", json!({"since": 0}))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["bucket"] == w.src.as_str() || e["bucket"] == w.tgt.as_str())
        .collect();
    let mut dead = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .send()
            .await;
        let msgs = out
            .map(|o| o.messages.unwrap_or_default())
            .unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        dead.extend(
            msgs.iter()
                .filter_map(|m| m.message_id().map(str::to_string)),
        );
    }
    // Clear this seed's faults (the lab is shared).
    for b in [&w.src, &w.tgt] {
        lab::admin("faults", json!({"buckets": [b]})).await;
    }
    Observed {
        source: w.src,
        journal,
        lives,
        events: events
            .into_iter()
            .map(|e| e.lock().unwrap().clone())
            .collect(),
        dead,
        unsettled,
        sweeps,
    }
}
