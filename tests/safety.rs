//! Regression tests for the defects an adversarial review of the purge and the sweep found.
//! Each reproduces one, against the lab (replicas, legal holds, keys XML cannot carry, a
//! journal of every change) or with aws-smithy-mocks (exact requests, orders of events and
//! answers no real service would give on demand), and fails if its fix is undone.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::types::{DeletedObject, Error as S3EntryError, ObjectVersion};
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_smithy_mocks::mock;
use aws_smithy_types::DateTime as SmithyTime;
use common::lab::{self, lab_config, lab_sqs};
use common::mocks::*;
use common::*;
use s3_reconciler::aws::Clients;
use s3_reconciler::config::PurgeMode;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::purge::{KeyOutcome, PurgeError, Purger};
use s3_reconciler::sweep::{RunKind, Sweeper};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const NO_QUEUE: &str = "http://unused/123456789012/q";

async fn lab_purger(src: &str, tgt: &str, mode: PurgeMode) -> Purger {
    let mut cfg = lab_config(src, tgt, NO_QUEUE);
    cfg.purge.mode = mode;
    cfg.purge.prefixes = vec![String::new()];
    let c = clients(&cfg).await;
    Purger::new(&cfg, c.source, c.target, Metrics::new().unwrap(), false)
}

/// (version id, delete marker) of exactly `key`, newest first.
async fn entries_of(bucket: &str, key: &str) -> Vec<(String, bool)> {
    lab::dump(bucket)
        .await
        .into_iter()
        .filter(|(k, ..)| k == key)
        .map(|(_, v, dm)| (v, dm))
        .collect()
}

/// 1.1: a version the target refuses to delete (a legal hold) keeps the marker above it.
/// Deleting the marker would make an object the source permanently deleted visible again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_goes_only_after_every_version_it_hides_is_gone() {
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let held = lab::write(
        &tgt,
        "d/held.json",
        json!({"held": true, "age_seconds": 60}),
    )
    .await;
    let dm = lab::write(
        &tgt,
        "d/held.json",
        json!({"delete_marker": true, "age_seconds": 30}),
    )
    .await;
    lab::write(&tgt, "d/free.json", json!({"age_seconds": 60})).await;
    lab::write(
        &tgt,
        "d/free.json",
        json!({"delete_marker": true, "age_seconds": 30}),
    )
    .await;
    let purger = lab_purger(&src, &tgt, PurgeMode::WhenSourceEmpty).await;

    let held_outcome = purger.purge_key("d/held.json", "test", "t").await;
    match held_outcome {
        Err(PurgeError::Delete { error, deleted }) => {
            assert!(error.to_string().contains("AccessDenied"), "{error}");
            assert!(deleted.is_empty(), "{deleted:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        entries_of(&tgt, "d/held.json").await,
        vec![(dm, true), (held, false)],
        "the marker still hides the held version"
    );
    // The same shape without a hold goes whole: the version, then the marker.
    let free = purger.purge_key("d/free.json", "test", "t").await.unwrap();
    assert!(
        matches!(free, KeyOutcome::Purged { ref deleted, deferred: 0, .. } if deleted.len() == 2)
    );
    assert!(entries_of(&tgt, "d/free.json").await.is_empty());
}

/// 1.2: `mirror-versions` deletes only replicas of versions the source lost: never DataSync's
/// copies, the target's own lifecycle markers, `null` versions or anything a person wrote,
/// while the source still holds the key. A key the source no longer holds goes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_versions_deletes_only_proven_replicas_of_lost_versions() {
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let old = json!({"age_seconds": 120});
    let mut lost_ids = Vec::new();
    for key in ["m/event.json", "m/sweep.json"] {
        // v-lost and v-kept were replicated (same ids, REPLICA); v-lost then went for good.
        let lost = lab::write(&src, key, old.clone()).await;
        lost_ids.push(lost.clone());
        let kept = lab::write(&src, key, old.clone()).await;
        for id in [&lost, &kept] {
            lab::write(
                &tgt,
                key,
                json!({"version_id": id, "replica": true, "age_seconds": 120}),
            )
            .await;
        }
        lab::delete(&src, key, Some(&lost)).await;
        lab::write(&tgt, key, json!({"null": true, "age_seconds": 300})).await;
        lab::write(&tgt, key, json!({"age_seconds": 60})).await; // a DataSync copy
        lab::write(
            &tgt,
            key,
            json!({"delete_marker": true, "age_seconds": 30}), // the lifecycle's marker
        )
        .await;
    }
    let gone_key = "m/gone.json";
    lab::write(&tgt, gone_key, json!({"age_seconds": 60})).await;
    lab::write(
        &tgt,
        gone_key,
        json!({"replica": true, "version_id": "r1", "age_seconds": 90}),
    )
    .await;
    lab::write(
        &tgt,
        gone_key,
        json!({"delete_marker": true, "age_seconds": 30}),
    )
    .await;
    let before = |k: &'static str| {
        let tgt = tgt.clone();
        async move { entries_of(&tgt, k).await }
    };
    let event_before = before("m/event.json").await;
    let sweep_before = before("m/sweep.json").await;

    // The event path: the event names the lost version; only its replica goes.
    let (queue, _dlq) = lab_queue().await;
    let lost_id = lost_ids[0].clone();
    let mut cfg = lab_config(&src, &tgt, &queue);
    cfg.purge.mode = PurgeMode::MirrorVersions;
    cfg.purge.prefixes = vec!["m/".into()];
    let d = Daemon::start(cfg).await;
    let sqs = lab_sqs().await;
    send(
        &sqs,
        &queue,
        &s3_event(&src, "m/event.json", "ObjectRemoved:Delete", &lost_id),
    )
    .await;
    eventually(Duration::from_secs(15), "the event settled", || async {
        queue_depth(&sqs, &queue).await == 0
    })
    .await;
    d.stop().await;
    let want: Vec<(String, bool)> = event_before
        .iter()
        .filter(|(id, _)| *id != lost_id)
        .cloned()
        .collect();
    assert_eq!(entries_of(&tgt, "m/event.json").await, want);

    // The sweep and manual path: HeadObject proves the replica; the rest is left, said so.
    let purger = lab_purger(&src, &tgt, PurgeMode::MirrorVersions).await;
    let out = purger.purge_key("m/sweep.json", "test", "t").await.unwrap();
    let sweep_lost = lost_ids[1].clone();
    match out {
        KeyOutcome::Purged { deleted, .. } => {
            let ids: Vec<&str> = deleted.iter().map(|e| e.version_id.as_str()).collect();
            assert_eq!(ids, vec![sweep_lost.as_str()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        purger.purge_key("m/sweep.json", "test", "t").await.unwrap(),
        KeyOutcome::NotReplica { entries: 3 },
        "the copy, the lifecycle marker and the null version are not replicas"
    );
    // Gone from the source altogether: purged whole, replica or not.
    assert!(matches!(
        purger.purge_key(gone_key, "test", "t").await.unwrap(),
        KeyOutcome::Purged { ref deleted, .. } if deleted.len() == 3
    ));
    assert!(entries_of(&tgt, gone_key).await.is_empty());
    assert_eq!(sweep_before.len(), 5);
}

async fn lab_queue() -> (String, String) {
    queue_with_dlq(&lab_sqs().await, 3).await
}

/// 1.7: keys with characters XML 1.0 cannot carry are listed (EncodingType=url) and deleted
/// one by one (DeleteObject), and never confused with their look-alikes; a key with `\r`
/// (which XML would turn into `\n`) is not confused with its `\n` twin either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_xml_cannot_carry_are_listed_and_deleted_exactly() {
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let ctl = "c/a\u{1}b.json";
    let twins = [
        "c/a\u{2}b.json",
        "c/a\rb.json",
        "c/a\nb.json",
        "c/a b.json",
        "c/a+b.json",
    ];
    lab::write(&tgt, ctl, json!({"age_seconds": 60})).await;
    lab::write(&tgt, ctl, json!({"delete_marker": true, "age_seconds": 30})).await;
    for t in twins {
        lab::write(&tgt, t, json!({"age_seconds": 60})).await;
    }
    // The source keeps the `\n` twin and the `+` one.
    lab::write(&src, "c/a\nb.json", json!({"age_seconds": 60})).await;
    lab::write(&src, "c/a+b.json", json!({"age_seconds": 60})).await;
    // As S3 does, the lab writes such keys raw unless asked to encode them: a client that does
    // not ask cannot read the page.
    let plain =
        s3_reconciler::aws::s3_client(&lab_config(&src, &tgt, NO_QUEUE).target, &aws_settings())
            .await;
    let unencoded = plain
        .list_object_versions()
        .bucket(&tgt)
        .prefix("c/")
        .send()
        .await;
    assert!(unencoded.is_err(), "{unencoded:?}");
    let purger = lab_purger(&src, &tgt, PurgeMode::WhenSourceEmpty).await;
    let out = purger.purge_key(ctl, "test", "t").await.unwrap();
    assert!(
        matches!(out, KeyOutcome::Purged { ref deleted, deferred: 0, .. } if deleted.len() == 2),
        "{out:?}"
    );
    // `\r` and ` ` are gone from the source: purged; `\n` and `+` are kept.
    for (k, want) in [
        ("c/a\rb.json", true),
        ("c/a b.json", true),
        ("c/a\nb.json", false),
        ("c/a+b.json", false),
    ] {
        let out = purger.purge_key(k, "test", "t").await.unwrap();
        assert_eq!(
            matches!(out, KeyOutcome::Purged { .. }),
            want,
            "{k:?}: {out:?}"
        );
    }
    let left: BTreeSet<String> = lab::dump(&tgt).await.into_iter().map(|(k, ..)| k).collect();
    let want: BTreeSet<String> = ["c/a\u{2}b.json", "c/a\nb.json", "c/a+b.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(left, want);
}

/// 1.7: a sweep walks straight over keys XML cannot carry (it used to fail at that page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_walks_over_keys_xml_cannot_carry() {
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let state = unique("state");
    lab::admin("bucket", json!({"name": state, "versioned": false})).await;
    for k in ["w/a\u{1}.json", "w/b\u{1f}.json", "w/c\u{fffe}.json"] {
        lab::write(&tgt, k, json!({"age_seconds": 3600})).await;
    }
    lab::write(&src, "w/b\u{1f}.json", json!({"age_seconds": 3600})).await;
    lab::write(&tgt, "w/b\u{1f}.json", json!({"age_seconds": 3600})).await;
    let mut cfg = lab_config(&src, &tgt, NO_QUEUE);
    cfg.state.bucket = state;
    cfg.sweep.prefixes = vec!["w/".into()];
    cfg.sweep.min_age = Duration::from_secs(60);
    let c = clients(&cfg).await;
    let sweeper = Sweeper::new(Arc::new(cfg), &c, Metrics::new().unwrap());
    let purged = std::sync::Mutex::new(BTreeSet::new());
    let summary = sweeper
        .run(
            &["w/".into()],
            RunKind::Purge,
            &CancellationToken::new(),
            &|l| {
                let v = serde_json::to_value(l).unwrap();
                if v["action"] == "purged" {
                    let key = v["key"].as_str().unwrap().to_string();
                    purged.lock().unwrap().insert(key);
                }
            },
        )
        .await;
    let purged = purged.into_inner().unwrap();
    assert!(summary.ok(), "{summary:?}");
    let want: BTreeSet<String> = ["w/a\u{1}.json", "w/c\u{fffe}.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(purged, want);
}

fn recent(secs_ago: i64) -> SmithyTime {
    SmithyTime::from_secs(chrono::Utc::now().timestamp() - secs_ago)
}

fn version_at(key: &str, id: &str, t: SmithyTime) -> ObjectVersion {
    ObjectVersion::builder()
        .key(key)
        .version_id(id)
        .last_modified(t)
        .build()
}

/// Records every (key, version id) sent in DeleteObjects; `fail` answers AccessDenied.
fn recording_delete(
    seen: Arc<Mutex<Vec<(String, String)>>>,
    fail: &'static [&'static str],
) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_s3::Client::delete_objects).then_compute_output(move |req| {
        let mut out = DeleteObjectsOutput::builder();
        for o in req.delete().map(|d| d.objects()).unwrap_or_default() {
            let (k, v) = (o.key(), o.version_id().unwrap_or_default());
            seen.lock().unwrap().push((k.to_string(), v.to_string()));
            out = if fail.contains(&v) {
                out.errors(
                    S3EntryError::builder()
                        .key(k)
                        .version_id(v)
                        .code("AccessDenied")
                        .message("Access Denied")
                        .build(),
                )
            } else {
                out.deleted(DeletedObject::builder().key(k).version_id(v).build())
            };
        }
        out.build()
    })
}

/// A state bucket that holds nothing and accepts every write.
fn blank_state() -> (aws_smithy_mocks::Rule, aws_smithy_mocks::Rule) {
    (
        mock!(aws_sdk_s3::Client::get_object).then_error(|| {
            aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(
                aws_sdk_s3::types::error::NoSuchKey::builder().build(),
            )
        }),
        mock!(aws_sdk_s3::Client::put_object)
            .then_output(|| PutObjectOutput::builder().e_tag("\"l\"").build()),
    )
}

async fn sweep_with(
    cfg: s3_reconciler::config::Config,
    clients: Clients,
) -> (Vec<serde_json::Value>, s3_reconciler::sweep::Summary) {
    let prefixes = cfg.sweep.prefixes.clone();
    let sweeper = Sweeper::new(Arc::new(cfg), &clients, Metrics::new().unwrap());
    let lines = std::sync::Mutex::new(Vec::new());
    let summary = sweeper
        .run(&prefixes, RunKind::Purge, &CancellationToken::new(), &|l| {
            lines.lock().unwrap().push(serde_json::to_value(l).unwrap())
        })
        .await;
    (lines.into_inner().unwrap(), summary)
}

fn line<'a>(lines: &'a [serde_json::Value], key: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["key"] == key)
        .unwrap_or_else(|| panic!("{key}: {lines:#?}"))
}

fn sweep_config(max_deletes: u32) -> s3_reconciler::config::Config {
    let mut cfg = purge_config();
    cfg.state.bucket = "state-bucket".into();
    cfg.sweep.prefixes = vec!["p/".into()];
    cfg.sweep.concurrency = std::num::NonZeroUsize::new(1).unwrap();
    cfg.sweep.min_age = Duration::from_secs(1);
    cfg.sweep.max_deletes = std::num::NonZeroU32::new(max_deletes).unwrap();
    cfg
}

/// 1.6: a key with some of its entries deleted is reported as partly purged, counted, and uses
/// its reservation of `max_deletes` (it used to be "kept", with the budget given back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_purged_key_is_reported_and_uses_the_budget() {
    // p/a: an old version, and one 3 s old (older than min_age, inside the 5 s race guard).
    // p/b: one old version. max_deletes = 1.
    let young = recent(3);
    let tgt_list =
        mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(move |req| {
            let prefix = req.prefix().unwrap_or_default();
            let mut out = ListObjectVersionsOutput::builder();
            for (k, v, t) in [
                ("p/a", "a1", old()),
                ("p/a", "a2", young),
                ("p/b", "b1", old()),
            ] {
                if k.starts_with(prefix) {
                    out = out.versions(version_at(k, v, t));
                }
            }
            out.build()
        });
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (get, put) = blank_state();
    let clients = Clients {
        source: s3_client(&[
            &mock!(aws_sdk_s3::Client::list_object_versions)
                .then_output(|| ListObjectVersionsOutput::builder().build()),
            &get,
            &put,
        ]),
        target: s3_client(&[
            &tgt_list,
            &recording_delete(seen.clone(), &[]),
            &no_folders(),
        ]),
        sqs: sqs_client(&[]),
        datasync: datasync_client(&[]),
    };
    let (lines, summary) = sweep_with(sweep_config(1), clients).await;
    let a = line(&lines, "p/a");
    assert_eq!(a["action"], "partly_purged", "{a}");
    assert_eq!(a["deleted"], 1);
    assert_eq!(line(&lines, "p/b")["reason"], "max_deletes");
    assert_eq!(summary.stats.partly_purged, 1);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("p/a".to_string(), "a1".to_string())]
    );
}

/// 1.6 with 1.1: the versions went, the marker's delete failed: partly purged, with the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_marker_failed_after_its_versions_went_is_partly_purged() {
    let tgt_list = mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(|req| {
        let prefix = req.prefix().unwrap_or_default();
        let mut out = ListObjectVersionsOutput::builder();
        if "p/a".starts_with(prefix) {
            out = out
                .versions(version("p/a", "a1"))
                .delete_markers(marker("p/a", "dm"));
        }
        out.build()
    });
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (get, put) = blank_state();
    let clients = Clients {
        source: s3_client(&[&empty_list(), &get, &put]),
        target: s3_client(&[
            &tgt_list,
            &recording_delete(seen.clone(), &["dm"]),
            &no_folders(),
        ]),
        sqs: sqs_client(&[]),
        datasync: datasync_client(&[]),
    };
    let (lines, summary) = sweep_with(sweep_config(10), clients).await;
    let a = line(&lines, "p/a");
    assert_eq!(a["action"], "partly_purged", "{a}");
    assert_eq!(a["deleted"], 1);
    assert!(a["error"].as_str().unwrap().contains("AccessDenied"), "{a}");
    assert_eq!(summary.result.label(), "stopped_after_error");
    // Two requests: the version first, the marker only after it was confirmed.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("p/a".to_string(), "a1".to_string()),
            ("p/a".to_string(), "dm".to_string())
        ]
    );
}

fn empty_list() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_s3::Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build())
}

/// 1.9: `min_age` holds on the listing that decides, not only on the walk's older view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_age_is_checked_again_on_the_deciding_listing() {
    let fresh = recent(600);
    let tgt_list =
        mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(move |req| {
            let out = ListObjectVersionsOutput::builder().versions(version("p/a", "a1"));
            match req.prefix() {
                // The walk: only the old version.
                Some("p/") => out,
                // The decision's listing: a copy landed 10 minutes ago.
                _ => out.versions(version_at("p/a", "a2", fresh)),
            }
            .build()
        });
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (get, put) = blank_state();
    let mut cfg = sweep_config(10);
    cfg.sweep.min_age = Duration::from_secs(3600);
    let clients = Clients {
        source: s3_client(&[&empty_list(), &get, &put]),
        target: s3_client(&[
            &tgt_list,
            &recording_delete(seen.clone(), &[]),
            &no_folders(),
        ]),
        sqs: sqs_client(&[]),
        datasync: datasync_client(&[]),
    };
    let (lines, _) = sweep_with(cfg, clients).await;
    assert_eq!(line(&lines, "p/a")["reason"], "too_young");
    assert!(seen.lock().unwrap().is_empty(), "nothing deleted");
}

/// 1.9: after the first delete error, a decision that was already past the check when the
/// error came deletes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_deleted_after_the_first_error_even_by_decisions_under_way() {
    // s/a/1 cannot be deleted (a legal hold); s/b/1's decision listing takes 1.5 s, so its
    // deletion is ready only after s/a/1's delete failed.
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let state = unique("state");
    lab::admin("bucket", json!({"name": state, "versioned": false})).await;
    lab::write(&tgt, "s/a/1", json!({"held": true, "age_seconds": 3600})).await;
    lab::write(&tgt, "s/b/1", json!({"age_seconds": 3600})).await;
    lab::admin(
        "faults",
        json!({"buckets": [tgt], "slow": [{"prefix": "s/b/", "ms": 1500}]}),
    )
    .await;
    let mut cfg = lab_config(&src, &tgt, NO_QUEUE);
    cfg.state.bucket = state;
    cfg.sweep.prefixes = vec!["s/".into()];
    cfg.sweep.min_age = Duration::from_secs(60);
    cfg.sweep.concurrency = std::num::NonZeroUsize::new(2).unwrap();
    let c = clients(&cfg).await;
    let (lines, summary) = sweep_with(cfg, c).await;
    lab::admin("faults", json!({})).await;
    assert_eq!(line(&lines, "s/a/1")["reason"], "failed", "{lines:#?}");
    assert_eq!(line(&lines, "s/b/1")["reason"], "after_error", "{lines:#?}");
    assert_eq!(summary.result.label(), "stopped_after_error");
    assert_eq!(
        entries_of(&tgt, "s/b/1").await.len(),
        1,
        "s/b/1 is still there"
    );
}

/// 1.8: a page that says it is truncated but gives no next marker is an error, never "the
/// source holds nothing".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_page_without_a_next_marker_is_an_error_not_an_empty_source() {
    let truncated = mock!(aws_sdk_s3::Client::list_object_versions).then_output(|| {
        ListObjectVersionsOutput::builder()
            .is_truncated(true)
            .build()
    });
    let stuck = mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(|req| {
        // Always the same page, pointing at where it started.
        ListObjectVersionsOutput::builder()
            .is_truncated(true)
            .next_key_marker(req.key_marker().unwrap_or("k"))
            .next_version_id_marker(req.version_id_marker().unwrap_or("v0"))
            .build()
    });
    for source in [truncated, stuck] {
        let target_list = mock!(aws_sdk_s3::Client::list_object_versions).then_output(|| {
            ListObjectVersionsOutput::builder()
                .versions(version("k", "v1"))
                .build()
        });
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let cfg = purge_config();
        let purger = Purger::new(
            &cfg,
            s3_client(&[&source]),
            s3_client(&[&target_list, &recording_delete(seen.clone(), &[])]),
            Metrics::new().unwrap(),
            false,
        );
        match purger.purge_key("k", "test", "t").await {
            Err(PurgeError::List(e)) => assert!(
                e.to_string().contains("truncated") || e.to_string().contains("does not advance"),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(seen.lock().unwrap().is_empty(), "nothing deleted");
    }
}

/// 1.3: a message never takes the answer of a decision whose source listing started before
/// it. The source held v1 and v2: v1's event starts a decision that still sees v2; v2 is
/// deleted while that listing is out, and its event must get a decision of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_never_shares_a_decision_whose_listing_started_before_it() {
    let listing_out = Arc::new(AtomicBool::new(false));
    let second_delivered = Arc::new(AtomicBool::new(false));
    // Waits inside a mock answer; block_in_place hands this worker's queued tasks to
    // another thread meanwhile (a task woken here would otherwise wait in its slot).
    let wait = |flag: &Arc<AtomicBool>| {
        tokio::task::block_in_place(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !flag.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (out, delivered) = (listing_out.clone(), second_delivered.clone());
    // The source as it is when each listing reads it: v2 until the second delete happened.
    let source = mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(move |_| {
        if delivered.load(Ordering::SeqCst) {
            return ListObjectVersionsOutput::builder().build();
        }
        out.store(true, Ordering::SeqCst);
        // Read before v2 went; the answer is still on its way when v2's event arrives.
        wait(&delivered);
        ListObjectVersionsOutput::builder()
            .versions(version("k", "v2"))
            .build()
    });
    let target_list = mock!(aws_sdk_s3::Client::list_object_versions).then_output(|| {
        ListObjectVersionsOutput::builder()
            .versions(version("k", "t1"))
            .build()
    });
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (out, delivered) = (listing_out.clone(), second_delivered.clone());
    let first = vec![message(
        "e1",
        s3_event("src-bucket", "k", "ObjectRemoved:Delete", "v1"),
    )];
    let second = vec![message(
        "e2",
        s3_event("src-bucket", "k", "ObjectRemoved:Delete", "v2"),
    )];
    let receive = mock!(aws_sdk_sqs::Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .set_messages(Some(first.clone()))
                .build()
        })
        .output(move || {
            wait(&out);
            delivered.store(true, Ordering::SeqCst);
            ReceiveMessageOutput::builder()
                .set_messages(Some(second.clone()))
                .build()
        })
        .output(|| {
            std::thread::sleep(Duration::from_millis(20));
            ReceiveMessageOutput::builder().build()
        })
        .repeatedly()
        .build();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let a = acked.clone();
    let ack = mock!(aws_sdk_sqs::Client::delete_message_batch).then_compute_output(move |req| {
        for e in req.entries() {
            a.lock().unwrap().push(e.receipt_handle().to_string());
        }
        DeleteMessageBatchOutput::builder()
            .set_successful(Some(vec![]))
            .set_failed(Some(vec![]))
            .build()
            .unwrap()
    });
    let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .then_output(|| GetQueueAttributesOutput::builder().build());
    let clients = Clients {
        source: s3_client(&[&source]),
        target: s3_client(&[&target_list, &recording_delete(seen.clone(), &[])]),
        sqs: sqs_client(&[&receive, &ack, &attributes]),
        datasync: datasync_client(&[]),
    };
    let d = Daemon::start_with(purge_config(), clients).await;
    eventually(Duration::from_secs(15), "both messages settled", || async {
        acked.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("k".to_string(), "t1".to_string())],
        "v2's event purged the target"
    );
    assert_eq!(d.outcome("source_present"), 1);
    assert_eq!(d.outcome("purged"), 1);
    d.stop().await;
}

/// Found by the simulation: `null` is every bucket's id for a version written before
/// versioning, so an event naming the source's `null` version proves nothing about the
/// target's `null` version. Only HeadObject's `REPLICA` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_version_event_is_no_proof_that_the_targets_null_version_is_a_replica() {
    let (src, tgt) = (lab::bucket("src").await, lab::bucket("tgt").await);
    let key = "n/pre-versioning.json";
    lab::write(&src, key, json!({"null": true, "age_seconds": 600})).await;
    lab::write(&src, key, json!({"age_seconds": 300})).await;
    lab::write(&tgt, key, json!({"null": true, "age_seconds": 500})).await;
    lab::delete(&src, key, Some("null")).await;
    let (queue, _dlq) = lab_queue().await;
    let mut cfg = lab_config(&src, &tgt, &queue);
    cfg.purge.mode = PurgeMode::MirrorVersions;
    cfg.purge.prefixes = vec!["n/".into()];
    let d = Daemon::start(cfg).await;
    let sqs = lab_sqs().await;
    send(
        &sqs,
        &queue,
        &s3_event(&src, key, "ObjectRemoved:Delete", "null"),
    )
    .await;
    eventually(Duration::from_secs(15), "the event settled", || async {
        queue_depth(&sqs, &queue).await == 0
    })
    .await;
    assert_eq!(d.outcome("not_replica"), 1);
    d.stop().await;
    assert_eq!(
        entries_of(&tgt, key).await,
        vec![("null".to_string(), false)],
        "the target's own null version stays"
    );
}
