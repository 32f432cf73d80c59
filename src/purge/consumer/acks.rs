//! Acknowledgements and retry delays, batched (10 per call, or after a short interval).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tracing::warn;

use super::settle::Settlement;
use crate::aws::sqs::Queue;
use crate::aws::sqs::SQS_MAX_BATCH;
use crate::context::Context;
use crate::labels::MessageResult;
use crate::metrics::Metrics;

/// How long an acknowledgement waits for others to share its DeleteMessageBatch.
const ACK_LINGER: Duration = Duration::from_millis(25);

/// SQS batch calls in flight at once.
const ACK_CALLS_IN_FLIGHT: usize = 16;

/// Batches acknowledgements and retry delays into SQS batch calls.
#[derive(Clone)]
pub(super) struct Settler {
    tx: mpsc::UnboundedSender<(String, Settlement)>,
}

impl Settler {
    pub(super) fn spawn(queue: Queue, metrics: Metrics, ctx: &Context) -> Settler {
        let (tx, rx) = mpsc::unbounded_channel();
        ctx.tracker.spawn(settle_batches(queue, metrics, rx));
        Settler { tx }
    }

    pub(super) fn settle(&self, receipt: String, settlement: Settlement) {
        // The task lives until every handle is gone, so a send cannot fail while we hold one.
        let _ = self.tx.send((receipt, settlement));
    }
}

pub(super) async fn settle_batches(
    queue: Queue,
    metrics: Metrics,
    mut rx: mpsc::UnboundedReceiver<(String, Settlement)>,
) {
    let calls = Arc::new(Semaphore::new(ACK_CALLS_IN_FLIGHT));
    let mut flushes = tokio::task::JoinSet::new();
    while let Some(first) = rx.recv().await {
        let mut acks: Vec<String> = Vec::new();
        let mut retries: Vec<(String, Duration)> = Vec::new();
        let linger = tokio::time::Instant::now() + ACK_LINGER;
        let mut next = Some(first);
        while let Some((receipt, s)) = next.take() {
            match s {
                Settlement::Ack => acks.push(receipt),
                Settlement::Retry { delay } => retries.push((receipt, delay)),
            }
            if acks.len() >= SQS_MAX_BATCH || retries.len() >= SQS_MAX_BATCH {
                break;
            }
            next = tokio::time::timeout_at(linger, rx.recv())
                .await
                .ok()
                .flatten();
        }
        let Ok(slot) = calls.clone().acquire_owned().await else {
            break;
        };
        let (queue, metrics) = (queue.clone(), metrics.clone());
        flushes.spawn(async move {
            flush(&queue, &metrics, acks, retries).await;
            drop(slot);
        });
        while flushes.try_join_next().is_some() {}
    }
    while flushes.join_next().await.is_some() {}
}

pub(super) async fn flush(
    queue: &Queue,
    metrics: &Metrics,
    acks: Vec<String>,
    retries: Vec<(String, Duration)>,
) {
    if !acks.is_empty() {
        let receipts: Vec<&str> = acks.iter().map(String::as_str).collect();
        match queue.delete_batch(&receipts).await {
            Ok(failed) => metrics
                .purge
                .messages_ended(MessageResult::Deleted, acks.len() - failed),
            // The work is done and idempotent: a redelivery decides again and finds nothing.
            Err(e) => {
                warn!(error = %e, messages = acks.len(), "DeleteMessageBatch failed; the messages will be redelivered")
            }
        }
    }
    if !retries.is_empty() {
        metrics
            .purge
            .messages_ended(MessageResult::Failed, retries.len());
        let entries: Vec<(&str, Duration)> =
            retries.iter().map(|(r, d)| (r.as_str(), *d)).collect();
        if let Err(e) = queue.change_visibility_batch(&entries).await {
            warn!(error = %e, messages = retries.len(),
                  "could not set the retry backoff; the messages reappear after their visibility timeout");
        }
    }
}
