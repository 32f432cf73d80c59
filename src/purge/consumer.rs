//! The SQS consumer: long-polls the queue, purges, and acknowledges only what is fully handled.
//!
//! - Up to `purge.concurrency` messages are in flight at once; a receive asks for at most as
//!   many messages as there is room for (and at most 10, the SQS limit).
//! - Records for the same key within one batch are decided once.
//! - A message is deleted only when every record in it is settled. Otherwise it is left for
//!   redelivery after a backoff that grows with `ApproximateReceiveCount`; the queue's redrive
//!   policy moves a poison message to the DLQ.
//! - A batch running past half the visibility timeout has its visibility extended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::event::{self, Body, Record, RemovalEvent};
use super::{KeyOutcome, Purger};
use crate::app::{Context, TaskResult};
use crate::health::TaskHandle;

const SQS_MAX_BATCH: usize = 10;

/// The redelivery delay after `receive_count` receives: `base * 2^(n-1)`, capped.
pub fn backoff(receive_count: u32, base: Duration, max: Duration) -> Duration {
    let exp = receive_count.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(max)
}

/// Per-message processing state.
struct Pending {
    message_id: String,
    receipt: String,
    receive_count: u32,
    /// Whether the message can be acknowledged once its keys are settled.
    valid: bool,
    /// Removal records in scope, by key.
    keys: Vec<(String, RemovalEvent)>,
}

/// Classification of one record before any I/O.
#[derive(Debug, PartialEq, Eq)]
pub enum Triage {
    Act,
    OutOfScope,
    Ignored,
}

/// Pure scope check for one removal event.
pub fn triage(
    e: &RemovalEvent,
    source_bucket: &str,
    events: &std::collections::BTreeSet<String>,
    prefixes: &[String],
) -> Triage {
    if e.bucket != source_bucket {
        return Triage::OutOfScope;
    }
    if !events.contains(&e.event_name) {
        return Triage::Ignored;
    }
    if !prefixes.is_empty() && !prefixes.iter().any(|p| e.key.starts_with(p.as_str())) {
        return Triage::OutOfScope;
    }
    Triage::Act
}

pub async fn run(ctx: Context, handle: TaskHandle) -> TaskResult {
    let cfg = ctx.config.clone();
    let queue = cfg.purge.queue_url.clone();
    let purger = Arc::new(Purger::new(
        &cfg,
        ctx.clients.source.clone(),
        ctx.clients.target.clone(),
        ctx.metrics.clone(),
    ));
    check_redrive(&ctx).await;
    let slots = Arc::new(Semaphore::new(cfg.purge.concurrency));
    let mut consecutive_errors: u32 = 0;
    loop {
        let first = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => p?,
        };
        let mut permits = first;
        let extra = slots.available_permits().min(SQS_MAX_BATCH - 1);
        if extra > 0
            && let Ok(more) = slots.clone().try_acquire_many_owned(extra as u32)
        {
            permits.merge(more);
        }
        let want = permits.num_permits();
        let receive = ctx
            .clients
            .sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(want as i32)
            .wait_time_seconds(cfg.purge.wait_time.as_secs() as i32)
            .visibility_timeout(cfg.purge.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let res = tokio::select! {
            // Messages received at this instant become visible again after the timeout.
            _ = ctx.shutdown.cancelled() => break,
            r = receive => r,
        };
        let messages = match res {
            Ok(out) => {
                consecutive_errors = 0;
                handle.set_ready();
                handle.touch();
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                consecutive_errors += 1;
                let reason = format!("ReceiveMessage on {queue}: {}", DisplayErrorContext(&e));
                error!(%reason, attempt = consecutive_errors, "receive failed");
                handle.set_not_ready(reason);
                let delay = backoff(
                    consecutive_errors,
                    Duration::from_secs(1),
                    Duration::from_secs(30),
                );
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        // Give back the room this receive did not use.
        if messages.len() < want {
            let _ = permits.split(want - messages.len());
        }
        let ctx2 = ctx.clone();
        let purger = purger.clone();
        ctx.tracker.spawn(async move {
            process_batch(&ctx2, &purger, messages).await;
            drop(permits);
        });
    }
    info!("purge consumer stopped receiving");
    Ok(())
}

async fn check_redrive(ctx: &Context) {
    let queue = &ctx.config.purge.queue_url;
    match ctx
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
    {
        Ok(out) => {
            let policy = out
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
                .cloned();
            match policy {
                Some(p) => {
                    ctx.metrics.purge_dlq_configured.set(1);
                    info!(queue = %queue, redrive_policy = %p, "purge queue has a dead-letter queue");
                }
                None => {
                    ctx.metrics.purge_dlq_configured.set(0);
                    warn!(queue = %queue, "purge queue has no redrive policy: a poison message would be retried forever; configure a DLQ");
                }
            }
        }
        Err(e) => {
            ctx.metrics.purge_dlq_configured.set(0);
            warn!(queue = %queue, error = %DisplayErrorContext(&e), "could not read the queue's redrive policy");
        }
    }
}

/// Processes one received batch to the end: decide, purge, acknowledge or back off.
pub async fn process_batch(ctx: &Context, purger: &Purger, messages: Vec<Message>) {
    let m = &ctx.metrics;
    let cfg = &ctx.config;
    let events = cfg.purge_events();
    m.purge_in_flight.add(messages.len() as i64);
    let mut pending: Vec<Pending> = Vec::with_capacity(messages.len());
    for msg in &messages {
        let message_id = msg.message_id().unwrap_or("").to_string();
        let receipt = msg.receipt_handle().unwrap_or("").to_string();
        let receive_count = msg
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut p = Pending {
            message_id,
            receipt,
            receive_count,
            valid: true,
            keys: Vec::new(),
        };
        match event::parse_body(msg.body().unwrap_or("")) {
            Ok(Body::Test) => {
                m.purge_events.with_label_values(&["test_event"]).inc();
                info!(message_id = %p.message_id, "s3:TestEvent acknowledged");
            }
            Ok(Body::SnsControl { kind, topic_arn }) => {
                m.purge_events.with_label_values(&["ignored_event"]).inc();
                warn!(message_id = %p.message_id, %kind, %topic_arn,
                      "SNS control message on the purge queue acknowledged; confirm SNS subscriptions with the queue owner's credentials");
            }
            Ok(Body::Records(records)) => {
                for r in records {
                    match r {
                        Record::Other { event_name } => {
                            m.purge_events.with_label_values(&["ignored_event"]).inc();
                            debug!(message_id = %p.message_id, %event_name, "event ignored");
                        }
                        Record::Removal(e) => {
                            match triage(&e, &cfg.source.bucket, &events, &cfg.purge.prefixes) {
                                Triage::Act => p.keys.push((e.key.clone(), e)),
                                Triage::Ignored => {
                                    m.purge_events.with_label_values(&["ignored_event"]).inc();
                                    debug!(message_id = %p.message_id, event = %e.event_name, "event not in purge.events");
                                }
                                Triage::OutOfScope => {
                                    m.purge_events.with_label_values(&["out_of_scope"]).inc();
                                    if e.bucket != cfg.source.bucket {
                                        warn!(message_id = %p.message_id, event_bucket = %e.bucket,
                                              "event for a bucket other than source.bucket; not acted on");
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Err(err) => {
                m.purge_events.with_label_values(&["invalid"]).inc();
                warn!(message_id = %p.message_id, error = %err, receive_count,
                      "unparseable message left on the queue (the redrive policy moves it to the DLQ)");
                p.valid = false;
            }
        }
        pending.push(p);
    }

    // One decision per key for the whole batch.
    let mut by_key: HashMap<String, (String, String)> = HashMap::new();
    for p in &pending {
        for (key, e) in &p.keys {
            by_key
                .entry(key.clone())
                .or_insert_with(|| (e.event_name.clone(), p.message_id.clone()));
        }
    }
    let heartbeat = CancellationToken::new();
    let receipts: Vec<String> = pending.iter().map(|p| p.receipt.clone()).collect();
    let hb = tokio::spawn(keep_invisible(
        ctx.clients.sqs.clone(),
        cfg.purge.queue_url.clone(),
        receipts,
        cfg.purge.visibility_timeout,
        heartbeat.clone(),
    ));
    let concurrency = cfg.purge.concurrency.max(1);
    let results: HashMap<String, Result<KeyOutcome, String>> = futures::stream::iter(by_key)
        .map(|(key, (reason, origin))| async move {
            let r = purger
                .purge_key(&key, &reason, &origin)
                .await
                .map_err(|e| e.to_string());
            (key, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    heartbeat.cancel();
    let _ = hb.await;

    let now = Utc::now();
    let mut to_delete = Vec::new();
    let mut to_retry = Vec::new();
    for p in &pending {
        let mut settled = p.valid;
        for (key, e) in &p.keys {
            match results.get(key) {
                Some(Ok(outcome)) => {
                    m.purge_events.with_label_values(&[outcome.label()]).inc();
                    if matches!(outcome, KeyOutcome::Purged { .. })
                        && let Some(t) = e.event_time
                    {
                        m.purge_lag
                            .observe((now - t).num_milliseconds().max(0) as f64 / 1000.0);
                    }
                    settled &= outcome.is_settled();
                }
                Some(Err(reason)) => {
                    m.purge_events.with_label_values(&["failed"]).inc();
                    warn!(message_id = %p.message_id, key = %key, error = %reason, "purge failed; message will be retried");
                    settled = false;
                }
                None => settled = false,
            }
        }
        if settled {
            to_delete.push(p);
        } else {
            to_retry.push(p);
        }
    }
    acknowledge(ctx, &to_delete).await;
    for p in to_retry {
        m.purge_messages.with_label_values(&["failed"]).inc();
        let delay = backoff(
            p.receive_count,
            cfg.purge.retry_backoff,
            cfg.purge.retry_backoff_max,
        );
        if let Err(e) = ctx
            .clients
            .sqs
            .change_message_visibility()
            .queue_url(&cfg.purge.queue_url)
            .receipt_handle(&p.receipt)
            .visibility_timeout(delay.as_secs() as i32)
            .send()
            .await
        {
            warn!(message_id = %p.message_id, error = %DisplayErrorContext(&e),
                  "could not set retry backoff; the message reappears after its visibility timeout");
        } else {
            debug!(message_id = %p.message_id, delay = ?delay, "retry scheduled");
        }
    }
    m.purge_in_flight.sub(messages.len() as i64);
}

async fn acknowledge(ctx: &Context, done: &[&Pending]) {
    for chunk in done.chunks(SQS_MAX_BATCH) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&p.receipt)
                    .build()
                    .ok()
            })
            .collect();
        match ctx
            .clients
            .sqs
            .delete_message_batch()
            .queue_url(&ctx.config.purge.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let failed = out.failed().len();
                ctx.metrics
                    .purge_messages
                    .with_label_values(&["deleted"])
                    .inc_by((chunk.len() - failed) as u64);
                for f in out.failed() {
                    // The work is done and idempotent: a redelivery decides again and finds nothing.
                    warn!(entry = %f.id(), code = %f.code(), "DeleteMessageBatch entry failed; the message will be redelivered");
                }
            }
            Err(e) => {
                warn!(error = %DisplayErrorContext(&e), "DeleteMessageBatch failed; messages will be redelivered");
            }
        }
    }
}

/// Keeps `receipts` invisible while their batch is worked on: every half `visibility`, their
/// visibility is reset to `visibility` from now, until `done` is cancelled. Without this, a
/// batch that outlives the timeout would be received and worked on twice at once.
pub async fn keep_invisible(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    receipts: Vec<String>,
    visibility: Duration,
    done: CancellationToken,
) {
    let half = visibility / 2;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(half) => {}
        }
        for chunk in receipts.chunks(SQS_MAX_BATCH) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(visibility.as_secs() as i32)
                        .build()
                        .ok()
                })
                .collect();
            match sqs
                .change_message_visibility_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) if out.failed().is_empty() => {
                    debug!(messages = chunk.len(), "visibility extended")
                }
                Ok(out) => {
                    for f in out.failed() {
                        warn!(entry = %f.id(), code = %f.code(), "could not extend a message's visibility");
                    }
                }
                Err(e) => warn!(error = %DisplayErrorContext(&e), "could not extend visibility"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Duration::from_secs(10);
        let max = Duration::from_secs(900);
        assert_eq!(backoff(1, b, max), Duration::from_secs(10));
        assert_eq!(backoff(2, b, max), Duration::from_secs(20));
        assert_eq!(backoff(4, b, max), Duration::from_secs(80));
        assert_eq!(backoff(30, b, max), max);
        assert_eq!(backoff(0, b, max), Duration::from_secs(10));
    }

    #[test]
    fn triage_scope() {
        let events: std::collections::BTreeSet<String> =
            ["ObjectRemoved:Delete".to_string()].into_iter().collect();
        let e = |bucket: &str, key: &str, name: &str| RemovalEvent {
            bucket: bucket.into(),
            key: key.into(),
            event_name: name.into(),
            version_id: None,
            event_time: None,
        };
        assert_eq!(
            triage(&e("src", "k", "ObjectRemoved:Delete"), "src", &events, &[]),
            Triage::Act
        );
        assert_eq!(
            triage(
                &e("other", "k", "ObjectRemoved:Delete"),
                "src",
                &events,
                &[]
            ),
            Triage::OutOfScope
        );
        assert_eq!(
            triage(
                &e("src", "k", "ObjectRemoved:DeleteMarkerCreated"),
                "src",
                &events,
                &[]
            ),
            Triage::Ignored
        );
        let prefixes = vec!["topics/".to_string()];
        assert_eq!(
            triage(
                &e("src", "other/k", "ObjectRemoved:Delete"),
                "src",
                &events,
                &prefixes
            ),
            Triage::OutOfScope
        );
        assert_eq!(
            triage(
                &e("src", "topics/k", "ObjectRemoved:Delete"),
                "src",
                &events,
                &prefixes
            ),
            Triage::Act
        );
    }
}
