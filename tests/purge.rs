//! Permanent-delete propagation against the emulator. moto's own S3 notifications are wrong for
//! versioned buckets, so these tests send realistic event JSON to SQS themselves.

mod common;

use s3_reconciler::labels::{EntryKind, Label, ListingMethod, MessageResult, S3Op};
use std::time::Duration;

use common::*;
use s3_reconciler::config::MarkerOnlySource;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::purge::{KeyOutcome, Purger};

struct World {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    src: String,
    tgt: String,
    queue: String,
    dlq: String,
}

async fn world() -> World {
    let s3 = s3().await;
    let sqs = sqs().await;
    let src = unique("src");
    let tgt = unique("tgt");
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    let (queue, dlq) = queue_with_dlq(&sqs, 3).await;
    World {
        s3,
        sqs,
        src,
        tgt,
        queue,
        dlq,
    }
}

/// Gives the target key `versions` versions topped by a delete marker.
async fn seed_target(w: &World, key: &str, versions: usize) {
    for i in 0..versions {
        put(&w.s3, &w.tgt, key, &format!("v{i}")).await;
    }
    delete_marker(&w.s3, &w.tgt, key).await;
}

/// The source had the key and lost it for good.
async fn source_gone(w: &World, key: &str) {
    put(&w.s3, &w.src, key, "data").await;
    delete_marker(&w.s3, &w.src, key).await;
    permanently_delete(&w.s3, &w.src, key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_delete_purges_every_target_entry_of_exactly_that_key() {
    let w = world().await;
    let special = "topics/p 1/year=2024/month=01/day=02/데이터 a+b=c%.json";
    let keys = ["a.txt", special, "b.txt", "eb/key with space.json"];
    for k in keys {
        seed_target(&w, k, 2).await;
        source_gone(&w, k).await;
    }
    // Look-alikes the seed's Prefix=key listing would have destroyed.
    for k in ["a.txt.bak", "a.txt/x", "a.tx", "b.txt2"] {
        put(&w.s3, &w.tgt, k, "keep me").await;
    }
    put(&w.s3, &w.src, "a.txt.bak", "still here").await;
    past_race_guard(&w.s3, &w.tgt).await;

    // Two records in one direct message, one SNS-wrapped, one EventBridge.
    let mut multi: serde_json::Value =
        serde_json::from_str(&s3_event(&w.src, "a.txt", "ObjectRemoved:Delete", "v")).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&s3_event(&w.src, "b.txt", "ObjectRemoved:Delete", "v")).unwrap();
    multi["Records"]
        .as_array_mut()
        .unwrap()
        .push(second["Records"][0].clone());
    send(&w.sqs, &w.queue, &multi.to_string()).await;
    let sns = serde_json::json!({
        "Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:ap-northeast-2:111111111111:s3-deletes",
        "Subject": "Amazon S3 Notification",
        "Message": s3_event(&w.src, special, "ObjectRemoved:Delete", "v"),
        "Timestamp": "2024-12-14T11:40:00.000Z", "SignatureVersion": "1"
    });
    send(&w.sqs, &w.queue, &sns.to_string()).await;
    let eb = serde_json::json!({
        "version": "0", "id": "2ee9cc15-d022-99ea-1fb8-1b1bac4850f9", "detail-type": "Object Deleted",
        "source": "aws.s3", "account": "111111111111", "time": "2024-12-14T11:40:00Z",
        "region": REGION, "resources": [format!("arn:aws:s3:::{}", w.src)],
        "detail": {"version": "0", "bucket": {"name": w.src},
                   "object": {"key": "eb/key+with+space.json", "version-id": "v", "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "111111111111",
                   "source-ip-address": "1.2.3.4", "reason": "DeleteObject", "deletion-type": "Permanently Deleted"}
    });
    send(&w.sqs, &w.queue, &eb.to_string()).await;

    let d = Daemon::start(config(&w.src, &w.tgt, &w.queue)).await;
    eventually(Duration::from_secs(30), "all four keys purged", || async {
        let mut all = true;
        for k in keys {
            all &= entries(&w.s3, &w.tgt, k).await.is_empty();
        }
        all
    })
    .await;
    eventually(Duration::from_secs(15), "queue drained", || async {
        queue_depth(&w.sqs, &w.queue).await == 0
    })
    .await;
    for k in ["a.txt.bak", "a.txt/x", "a.tx", "b.txt2"] {
        assert_eq!(entries(&w.s3, &w.tgt, k).await.len(), 1, "{k} must survive");
    }
    assert_eq!(d.outcome("purged"), 4);
    let deleted = &d.metrics.purge;
    assert_eq!(deleted.deleted(EntryKind::Version), 8);
    assert_eq!(deleted.deleted(EntryKind::DeleteMarker), 4);
    assert_eq!(d.metrics.purge.dlq_configured(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_still_holding_the_key_leaves_the_target_untouched() {
    let w = world().await;
    seed_target(&w, "kept.txt", 2).await;
    // Permanently deleted one version, but re-created since: the source still has the key.
    source_gone(&w, "kept.txt").await;
    put(&w.s3, &w.src, "kept.txt", "re-created").await;
    // Only a delete marker left in the source also counts as present.
    seed_target(&w, "marker.txt", 1).await;
    put(&w.s3, &w.src, "marker.txt", "x").await;
    delete_marker(&w.s3, &w.src, "marker.txt").await;
    let v = entries(&w.s3, &w.src, "marker.txt").await;
    let version = v.iter().find(|(_, dm)| !dm).unwrap().0.clone();
    w.s3.delete_object()
        .bucket(&w.src)
        .key("marker.txt")
        .version_id(version)
        .send()
        .await
        .unwrap();
    past_race_guard(&w.s3, &w.tgt).await;
    for k in ["kept.txt", "marker.txt"] {
        send(
            &w.sqs,
            &w.queue,
            &s3_event(&w.src, k, "ObjectRemoved:Delete", "v"),
        )
        .await;
    }
    let before_kept = entries(&w.s3, &w.tgt, "kept.txt").await;
    let before_marker = entries(&w.s3, &w.tgt, "marker.txt").await;
    let mut cfg = config(&w.src, &w.tgt, &w.queue);
    // A delete marker counts like data only when asked to (the default purges: see the next
    // test).
    cfg.purge.marker_only_source = MarkerOnlySource::Keep;
    let d = Daemon::start(cfg).await;
    eventually(Duration::from_secs(20), "both messages handled", || async {
        d.outcome("source_present") == 2 && queue_depth(&w.sqs, &w.queue).await == 0
    })
    .await;
    assert_eq!(entries(&w.s3, &w.tgt, "kept.txt").await, before_kept);
    assert_eq!(entries(&w.s3, &w.tgt, "marker.txt").await, before_marker);
    d.stop().await;
}

/// By default a source left with only delete markers no longer holds the key: every data
/// version is gone, so the target's copy is purged, markers and all. A source that still has a
/// data version under its marker keeps the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_only_delete_markers_is_purged_by_default() {
    let w = world().await;
    for k in ["expired.txt", "hidden.txt"] {
        seed_target(&w, k, 2).await;
        put(&w.s3, &w.src, k, "data").await;
        delete_marker(&w.s3, &w.src, k).await;
    }
    // Lifecycle expired the noncurrent data version of one key; the marker stays.
    let data = entries(&w.s3, &w.src, "expired.txt")
        .await
        .into_iter()
        .find(|(_, dm)| !dm)
        .unwrap()
        .0;
    w.s3.delete_object()
        .bucket(&w.src)
        .key("expired.txt")
        .version_id(data)
        .send()
        .await
        .unwrap();
    past_race_guard(&w.s3, &w.tgt).await;
    for k in ["expired.txt", "hidden.txt"] {
        send(
            &w.sqs,
            &w.queue,
            &s3_event(&w.src, k, "LifecycleExpiration:Delete", "v"),
        )
        .await;
    }
    let d = Daemon::start(config(&w.src, &w.tgt, &w.queue)).await;
    eventually(Duration::from_secs(20), "both messages handled", || async {
        queue_depth(&w.sqs, &w.queue).await == 0
    })
    .await;
    assert!(entries(&w.s3, &w.tgt, "expired.txt").await.is_empty());
    assert_eq!(
        entries(&w.s3, &w.tgt, "hidden.txt").await.len(),
        3,
        "data behind a marker is kept"
    );
    assert_eq!((d.outcome("purged"), d.outcome("source_present")), (1, 1));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_scope_ignored_and_test_events_are_acknowledged_without_deleting() {
    let w = world().await;
    // The same key exists in the target and not in the source, so only scoping protects it.
    for k in [
        "other-bucket.txt",
        "marker-only.txt",
        "created.txt",
        "outside/x.txt",
    ] {
        seed_target(&w, k, 1).await;
    }
    past_race_guard(&w.s3, &w.tgt).await;
    let bodies = [
        s3_event("some-other-bucket", "other-bucket.txt", "ObjectRemoved:Delete", "v"),
        s3_event(&w.src, "marker-only.txt", "ObjectRemoved:DeleteMarkerCreated", "v"),
        s3_event(&w.src, "created.txt", "ObjectCreated:Put", "v"),
        s3_event(&w.src, "outside/x.txt", "ObjectRemoved:Delete", "v"),
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-12-14T11:00:00.000Z","Bucket":"b","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#.to_string(),
    ];
    for b in &bodies {
        send(&w.sqs, &w.queue, b).await;
    }
    let mut cfg = config(&w.src, &w.tgt, &w.queue);
    cfg.purge.prefixes = vec![
        "topics/".into(),
        "other-bucket".into(),
        "marker".into(),
        "created".into(),
    ];
    let d = Daemon::start(cfg).await;
    eventually(
        Duration::from_secs(20),
        "all messages acknowledged",
        || async {
            d.metrics.purge.messages(MessageResult::Deleted) == 5
                && queue_depth(&w.sqs, &w.queue).await == 0
        },
    )
    .await;
    assert_eq!(d.outcome("out_of_scope"), 2);
    assert_eq!(d.outcome("ignored_event"), 2);
    assert_eq!(d.outcome("test_event"), 1);
    assert_eq!(d.outcome("purged"), 0);
    for k in [
        "other-bucket.txt",
        "marker-only.txt",
        "created.txt",
        "outside/x.txt",
    ] {
        assert_eq!(entries(&w.s3, &w.tgt, k).await.len(), 2, "{k} untouched");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_thousand_target_versions_are_all_purged() {
    let w = world().await;
    let key = "big/key.bin";
    // Sequential: the emulator loses versions when one key is written concurrently.
    for i in 0..1005 {
        put(&w.s3, &w.tgt, key, &format!("{i}")).await;
    }
    put(&w.s3, &w.tgt, "big/key.bin.keep", "x").await;
    assert_eq!(entries(&w.s3, &w.tgt, key).await.len(), 1005);
    past_race_guard(&w.s3, &w.tgt).await;
    let cfg = config(&w.src, &w.tgt, &w.queue);
    let metrics = Metrics::new().unwrap();
    let c = clients(&cfg).await;
    let purger = Purger::new(&cfg, c.source, c.target, metrics.clone(), false);
    let out = purger.purge_key(key, "test", "test").await.unwrap();
    match out {
        KeyOutcome::Purged {
            deleted, dry_run, ..
        } => {
            assert!(!dry_run);
            assert_eq!(deleted.len(), 1005);
        }
        other => panic!("{other:?}"),
    }
    assert!(entries(&w.s3, &w.tgt, key).await.is_empty());
    assert_eq!(entries(&w.s3, &w.tgt, "big/key.bin.keep").await.len(), 1);
    let reqs = |op: &str| metrics.aws.calls(S3Op::from_label(op).expect(op));
    assert_eq!(reqs("DeleteObjects"), 2, "batches of at most 1,000");
    // Source: one page (empty). Target: 2 pages of versions (1,000 + 5).
    assert_eq!(reqs("ListObjectVersions"), 3);

    // The guardrail: above max_versions_per_key, refuse and delete nothing.
    for i in 0..5 {
        put(&w.s3, &w.tgt, "guard.txt", &format!("{i}")).await;
    }
    past_race_guard(&w.s3, &w.tgt).await;
    let mut cfg = cfg.clone();
    cfg.purge.max_versions_per_key = std::num::NonZeroUsize::new(4).unwrap();
    let c = clients(&cfg).await;
    let limited = Purger::new(&cfg, c.source, c.target, metrics.clone(), false);
    assert!(matches!(
        limited
            .purge_key("guard.txt", "test", "test")
            .await
            .unwrap(),
        KeyOutcome::Refused { .. }
    ));
    assert_eq!(entries(&w.s3, &w.tgt, "guard.txt").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_purge_is_redelivered_and_then_succeeds() {
    let w = world().await;
    let mut cfg = config(&w.src, &w.tgt, &w.queue);
    cfg.purge.race_guard_margin = Duration::from_secs(3);
    let d = Daemon::start(cfg).await;
    // A target version written just now may have been copied after the source was read:
    // the race guard refuses to delete it on the first delivery.
    seed_target(&w, "fresh.txt", 1).await;
    send(
        &w.sqs,
        &w.queue,
        &s3_event(&w.src, "fresh.txt", "ObjectRemoved:Delete", "v"),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "purged after redelivery",
        || async {
            entries(&w.s3, &w.tgt, "fresh.txt").await.is_empty()
                && queue_depth(&w.sqs, &w.queue).await == 0
        },
    )
    .await;
    assert!(
        d.outcome("deferred") >= 1,
        "first delivery must have been deferred"
    );
    assert_eq!(d.outcome("purged"), 1);
    assert!(d.metrics.purge.messages(MessageResult::Failed) >= 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_reaches_the_dlq_after_max_receive_count() {
    let w = world().await;
    send(&w.sqs, &w.queue, "this is { not json").await;
    let d = Daemon::start(config(&w.src, &w.tgt, &w.queue)).await;
    eventually(Duration::from_secs(40), "message in the DLQ", || async {
        queue_depth(&w.sqs, &w.dlq).await == 1
    })
    .await;
    assert_eq!(queue_depth(&w.sqs, &w.queue).await, 0);
    assert_eq!(
        d.outcome("invalid"),
        3,
        "received exactly maxReceiveCount times"
    );
    // Its last receive was logged with the reason, and counted.
    let dead = d.metrics.purge.messages(MessageResult::DeadLettered);
    assert_eq!(dead, 1, "handed to the DLQ once");
    d.stop().await;
    // The next daemon reads the DLQ's depth at start (then every minute): one key nobody
    // purged, for the DeadLetterQueueNotEmpty alert.
    let d = Daemon::start(config(&w.src, &w.tgt, &w.queue)).await;
    eventually(Duration::from_secs(10), "purge_dlq_messages 1", || async {
        d.metrics.purge.dlq_messages() == 1
    })
    .await;
    let (_, text) = http_get(d.port, "/metrics").await.unwrap();
    assert!(
        text.contains("s3_reconciler_purge_dlq_messages 1"),
        "{text}"
    );
    assert!(d.metrics.purge.dlq_last_read() > 0, "when it was read");
    d.stop().await;
}

/// Receives whatever is visible right now (no long poll): the message ids.
async fn receive_now(w: &World, visibility: i32) -> Vec<(String, String)> {
    w.sqs
        .receive_message()
        .queue_url(&w.queue)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .visibility_timeout(visibility)
        .send()
        .await
        .unwrap()
        .messages()
        .iter()
        .map(|m| {
            (
                m.message_id().unwrap().to_string(),
                m.receipt_handle().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_work_keeps_its_messages_invisible_until_done() {
    use s3_reconciler::purge::consumer::Queue;
    let w = world().await;
    send(&w.sqs, &w.queue, "held").await;
    send(&w.sqs, &w.queue, "control").await;
    let got = receive_now(&w, 2).await;
    assert_eq!(got.len(), 2, "both messages received");
    let (held, control) = (&got[0], &got[1]);

    let done = tokio_util::sync::CancellationToken::new();
    let queue = Queue::new(w.sqs.clone(), w.queue.clone(), Metrics::new().unwrap());
    let hb = tokio::spawn({
        let (receipts, done) = (vec![held.1.clone()], done.clone());
        async move {
            queue
                .keep_invisible(receipts, Duration::from_secs(2), done)
                .await
        }
    });
    // Past the 2 s timeout only the message without a heartbeat comes back, and the held one
    // stays invisible until twice the timeout has gone by.
    let started = tokio::time::Instant::now();
    let mut back: Vec<String> = Vec::new();
    while started.elapsed() < Duration::from_millis(4500) {
        back.extend(receive_now(&w, 30).await.into_iter().map(|m| m.0));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        back,
        vec![control.0.clone()],
        "the held message must stay invisible"
    );

    done.cancel();
    hb.await.unwrap();
    eventually(
        Duration::from_secs(10),
        "held message visible again once the work stops",
        || async { receive_now(&w, 30).await.iter().any(|m| m.0 == held.0) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_failing_on_a_missing_source_bucket_make_the_task_not_ready() {
    let w = world().await;
    seed_target(&w, "k1.txt", 1).await;
    past_race_guard(&w.s3, &w.tgt).await;
    let missing = unique("missing");
    for k in ["k1.txt", "k2.txt"] {
        send(
            &w.sqs,
            &w.queue,
            &s3_event(&missing, k, "ObjectRemoved:Delete", "v"),
        )
        .await;
    }
    let mut cfg = config(&missing, &w.tgt, &w.queue);
    cfg.readiness.max_consecutive_failures = std::num::NonZeroU32::new(2).unwrap();
    let d = Daemon::start(cfg).await;
    eventually(
        Duration::from_secs(20),
        "/readyz 503 after failures",
        || async {
            matches!(http_get(d.port, "/readyz").await,
            Some((503, body)) if body.contains("failures in a row"))
        },
    )
    .await;
    let (_, reason) = http_get(d.port, "/readyz").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&reason).unwrap();
    let line = v["not_ready"]["purge"].as_str().unwrap();
    assert!(
        line.contains(&format!("ListObjectVersions s3://{missing}/"))
            && line.contains("not_found")
            && line.contains("bucket does not exist"),
        "{line}"
    );
    assert!(
        !line.contains('\n') && !line.contains("ServiceError") && !line.contains("{"),
        "one readable line, no debug dump: {line}"
    );
    assert_eq!(
        entries(&w.s3, &w.tgt, "k1.txt").await.len(),
        2,
        "nothing deleted"
    );
    assert!(d.outcome("failed") >= 2);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_percent_encoding_is_invalid_and_never_purges() {
    let w = world().await;
    // Keys S3 would have sent as `100%25.json` and `trunc%254`.
    for k in ["data/100%.json", "data/trunc%4", "data/k"] {
        seed_target(&w, k, 1).await;
    }
    past_race_guard(&w.s3, &w.tgt).await;
    let raw = |key: &str| {
        let mut v: serde_json::Value =
            serde_json::from_str(&s3_event(&w.src, "x", "ObjectRemoved:Delete", "v")).unwrap();
        v["Records"][0]["s3"]["object"]["key"] = key.into();
        v.to_string()
    };
    send(&w.sqs, &w.queue, &raw("data/100%.json")).await;
    send(&w.sqs, &w.queue, &raw("data/trunc%4")).await;
    // A removal record with no eventSource: nothing vouches for it.
    let mut no_source: serde_json::Value =
        serde_json::from_str(&s3_event(&w.src, "data/k", "ObjectRemoved:Delete", "v")).unwrap();
    no_source["Records"][0]
        .as_object_mut()
        .unwrap()
        .remove("eventSource");
    send(&w.sqs, &w.queue, &no_source.to_string()).await;
    let d = Daemon::start(config(&w.src, &w.tgt, &w.queue)).await;
    eventually(Duration::from_secs(60), "all three in the DLQ", || async {
        queue_depth(&w.sqs, &w.dlq).await == 3
    })
    .await;
    assert_eq!(
        d.outcome("invalid"),
        9,
        "three messages, each received maxReceiveCount times"
    );
    assert_eq!(d.outcome("purged"), 0);
    for k in ["data/100%.json", "data/trunc%4", "data/k"] {
        assert_eq!(entries(&w.s3, &w.tgt, k).await.len(), 2, "{k} untouched");
    }
    d.stop().await;
}

/// A burst decided together: purge-able keys, keys the source still holds, look-alikes that
/// no event names, NFC and NFD spellings of one name, a long shared prefix. The keys arrive
/// together (one thread: every request is queued before the listing task looks), so they
/// share range listings; the buckets end exactly as deciding key by key would leave them.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_decided_together_ends_as_key_by_key_would() {
    let w = world().await;
    let dir = "burst/year=2024/month=12/day=14/";
    let gone: Vec<String> = (0..30)
        .map(|i| format!("{dir}vehicle+0+{i:010}.json"))
        .chain([format!("{dir}\u{e9}t\u{e9}.json")])
        .collect();
    let kept: Vec<String> = (30..40)
        .map(|i| format!("{dir}vehicle+0+{i:010}.json"))
        .chain([format!("{dir}e\u{301}te\u{301}.json")])
        .collect();
    for k in &gone {
        source_gone(&w, k).await;
        seed_target(&w, k, 2).await;
        // A look-alike no event names, in the target only.
        put(&w.s3, &w.tgt, &format!("{k}.bak"), "x").await;
    }
    for k in &kept {
        put(&w.s3, &w.src, k, "still here").await;
        seed_target(&w, k, 1).await;
    }
    past_race_guard(&w.s3, &w.tgt).await;
    let before = all_entries(&w.s3, &w.tgt, "").await;

    let cfg = config(&w.src, &w.tgt, &w.queue);
    let metrics = Metrics::new().unwrap();
    let c = clients(&cfg).await;
    let purger = Purger::new(&cfg, c.source, c.target, metrics.clone(), false);
    let keys: Vec<&String> = gone.iter().chain(&kept).collect();
    let outcomes = futures::future::join_all(
        keys.iter()
            .map(|k| purger.purge_key(k, "LifecycleExpiration:Delete", "burst")),
    )
    .await;
    for (k, o) in keys.iter().zip(&outcomes) {
        let o = o.as_ref().unwrap();
        if gone.contains(k) {
            assert!(
                matches!(o, KeyOutcome::Purged { deleted, .. } if deleted.len() == 3),
                "{k}: {o:?}"
            );
        } else {
            assert_eq!(*o, KeyOutcome::SourcePresent, "{k}");
        }
    }
    let listings = |m: &str| {
        metrics
            .purge
            .listings(ListingMethod::from_label(m).expect(m))
    };
    assert_eq!(listings("range"), 2, "one range listing per side");
    assert_eq!(listings("per_key"), 0);

    // Exactly the purge-able keys' entries are gone; look-alikes and kept keys untouched.
    let after = all_entries(&w.s3, &w.tgt, "").await;
    let expected: Vec<_> = before
        .into_iter()
        .filter(|(k, ..)| !gone.contains(k))
        .collect();
    assert_eq!(after, expected);
}
