//! The SQS consumer: receives delete events, purges, and acknowledges only what is settled.
//!
//! - Several long polls run at once; each asks for as many messages as there are free slots
//!   (at most 10). `purge.concurrency` slots bound the messages worked on; a few more are
//!   received ahead ([`prefetch`]), so a slot that frees starts on a message at once instead of
//!   waiting a receive round trip.
//! - Each message holds one slot while its keys are decided, and gives it back once their
//!   deletions are handed to the deleter: the next message lists while the DeleteObjects
//!   runs. It settles on its own: once all its keys are done it is acknowledged (or left for
//!   redelivery), whatever the other messages are doing. A slow key holds only its own
//!   message's slot; receiving goes on while any slot is free.
//! - A key already being decided for another message in flight is not decided twice: the
//!   second message shares that decision, but only while its listings have not started (they
//!   will then see the source after this message's delete). Once they have, the message gets
//!   a decision of its own, made after the running one ends.
//! - A message left for redelivery on its last receive before the queue's `maxReceiveCount`
//!   moves it to the dead-letter queue is logged with the reason (`handed to the DLQ`). The
//!   dead-letter queue's depth is read every minute ([`dlq`]).
//! - Acknowledgements and retry delays are batched (10 per call, or after a short interval).
//! - A message whose work outlives half the visibility timeout has its visibility extended.

mod acks;
mod dlq;
mod in_flight;
mod settle;

pub use crate::aws::sqs::Queue;
pub use settle::{MessagePlan, Note, Settlement, Triage, backoff, plan, settle, triage};

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::aws::sqs::SQS_MAX_BATCH;
use crate::config::PurgeMode;
use crate::context::{Context, TaskResult};
use crate::health::TaskHandle;
use crate::labels::{MessageResult, PurgeOutcome};
use crate::metrics::Metrics;
use crate::purge::delete::Hold;
use crate::purge::outcome::{KeyOutcome, PurgeError};
use crate::purge::purger::Purger;

use acks::Settler;
use in_flight::InFlightKeys;

/// Long polls at once: enough that receiving keeps up with the slots, at most 8.
fn pollers(concurrency: usize) -> usize {
    concurrency.div_ceil(SQS_MAX_BATCH).clamp(1, 8)
}

/// Messages received ahead of a free slot: one receive per poll loop, at most as many as the
/// slots. They wait seconds at most, their visibility extended like any message's.
fn prefetch(concurrency: usize) -> usize {
    concurrency.min(pollers(concurrency) * SQS_MAX_BATCH)
}

/// Messages held at once: those deciding (one per slot), those whose deletions are on their
/// way (a DeleteObjects, and the wait for others to share it, take about two decisions' time),
/// and those received ahead.
fn held(concurrency: usize) -> usize {
    3 * concurrency + prefetch(concurrency)
}

/// What every message task needs.
struct Consumer {
    ctx: Context,
    handle: TaskHandle,
    queue: Queue,
    purger: Arc<Purger>,
    keys: Arc<InFlightKeys>,
    settler: Settler,
    /// The queue's `maxReceiveCount`, when it has a dead-letter queue.
    max_receives: Option<u32>,
}

pub async fn run(ctx: Context, handle: TaskHandle) -> TaskResult {
    let cfg = ctx.config.clone();
    let queue = Queue::new(
        ctx.clients.sqs.clone(),
        &cfg.purge.queue_url,
        ctx.metrics.clone(),
    );
    let policy = check_redrive(&queue, &ctx.metrics).await;
    let max_receives = policy.as_deref().and_then(settle::max_receive_count);
    if policy
        .as_deref()
        .is_some_and(|p| dlq::dlq_url(&queue.url, p).is_none())
    {
        warn!(queue = %queue.url, "the redrive policy names no SQS dead-letter queue: its depth cannot be read");
    }
    ctx.tracker
        .spawn(dlq::watch(queue.clone(), ctx.clone(), policy.clone()));
    let consumer = Arc::new(Consumer {
        purger: Arc::new(Purger::new(
            &cfg,
            ctx.clients.source.clone(),
            ctx.clients.target.clone(),
            ctx.metrics.clone(),
            false,
        )),
        max_receives,
        settler: Settler::spawn(queue.clone(), ctx.metrics.clone(), &ctx),
        keys: Arc::default(),
        handle,
        queue,
        ctx,
    });
    let concurrency = cfg.purge.concurrency.get();
    let received = Arc::new(Semaphore::new(held(concurrency)));
    let slots = Arc::new(Semaphore::new(concurrency));
    let polls = (0..pollers(concurrency)).map(|_| poll(&consumer, &received, &slots));
    futures::future::join_all(polls).await;
    info!("purge consumer stopped receiving");
    Ok(())
}

/// One long-poll loop: takes room for received messages, receives at most that many, and
/// starts each (it waits for a working slot).
async fn poll(c: &Arc<Consumer>, received: &Arc<Semaphore>, slots: &Arc<Semaphore>) {
    let cfg = &c.ctx.config.purge;
    let shutdown = &c.ctx.shutdown;
    let mut errors: u32 = 0;
    loop {
        let mut permits = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = received.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let extra = received.available_permits().min(SQS_MAX_BATCH - 1);
        if extra > 0
            && let Ok(more) = received.clone().try_acquire_many_owned(extra as u32)
        {
            permits.merge(more);
        }
        let want = permits.num_permits();
        let received = tokio::select! {
            // Messages received at this instant become visible again after the timeout.
            _ = shutdown.cancelled() => return,
            r = c.queue.receive(want, cfg.wait_time, cfg.visibility_timeout) => r,
        };
        match received {
            Ok(messages) => {
                errors = 0;
                c.handle.set_ready();
                c.handle.touch();
                for msg in messages {
                    let Some(room) = permits.split(1) else { break };
                    let (c, slots) = (c.clone(), slots.clone());
                    c.ctx
                        .tracker
                        .clone()
                        .spawn(async move { handle(&c, msg, room, slots).await });
                }
            }
            Err(e) => {
                errors += 1;
                error!(error = %e, attempt = errors, "receive failed");
                c.handle.set_not_ready(e.to_string());
                drop(permits);
                let delay = backoff(errors, Duration::from_secs(1), Duration::from_secs(30));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Reads the queue's redrive policy.
async fn check_redrive(queue: &Queue, metrics: &Metrics) -> Option<String> {
    match queue.redrive_policy().await {
        Ok(Some(p)) => {
            metrics.purge.dlq_found(true);
            info!(queue = %queue.url, redrive_policy = %p, "purge queue has a dead-letter queue");
            Some(p)
        }
        Ok(None) => {
            metrics.purge.dlq_found(false);
            warn!(queue = %queue.url, "purge queue has no redrive policy: a poison message would be retried forever; configure a DLQ");
            None
        }
        Err(e) => {
            metrics.purge.dlq_found(false);
            warn!(error = %e, "could not read the queue's redrive policy");
            None
        }
    }
}

/// Processes one message to its settlement, holding `_room` (it was received) and then a
/// working slot until then.
async fn handle(c: &Consumer, msg: Message, _room: OwnedSemaphorePermit, slots: Arc<Semaphore>) {
    let message_id = msg.message_id().unwrap_or_default().to_string();
    let span = info_span!("message", message_id = %message_id);
    async {
        let cfg = &c.ctx.config;
        let receipt = msg.receipt_handle().unwrap_or_default().to_string();
        // Invisible for as long as it is held, waiting for a slot included.
        let invisible = Invisible::keep(c, &receipt);
        let slot = c
            .ctx
            .shutdown
            .run_until_cancelled(slots.acquire_owned())
            .await;
        let Some(Ok(slot)) = slot else {
            // Not started: it becomes visible again after its timeout and is received anew.
            invisible.end().await;
            return;
        };
        let _in_flight = c.ctx.metrics.purge.messages_in_flight(1);
        let receive_count = msg
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let plan = settle::plan(
            msg.body().unwrap_or_default(),
            &cfg.source.bucket,
            &cfg.purge,
        );
        for o in &plan.counted {
            c.ctx.metrics.purge.record_handled(*o);
        }
        log_notes(&plan.notes, receive_count);
        let results = decide_keys(c, &plan, slot, &message_id).await;
        invisible.end().await;
        let keys = KeysDone::of(&plan, &results);
        keys.record(c);
        let settlement = settle::settle(
            plan.valid,
            &keys.settled,
            receive_count,
            cfg.purge.retry_backoff,
            cfg.purge.retry_backoff_max,
        );
        if matches!(settlement, Settlement::Retry { .. })
            && c.max_receives.is_some_and(|max| receive_count >= max)
        {
            last_receive(c, &plan, keys.unsettled, receive_count);
        }
        c.settler.settle(receipt, settlement);
    }
    .instrument(span)
    .await
}

/// A message kept invisible (its visibility extended) while it is held.
struct Invisible {
    done: CancellationToken,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Invisible {
    fn keep(c: &Consumer, receipt: &str) -> Invisible {
        let done = CancellationToken::new();
        let queue = c.queue.clone();
        let (receipt, vis) = (receipt.to_string(), c.ctx.config.purge.visibility_timeout);
        let until = done.clone();
        let heartbeat =
            tokio::spawn(async move { queue.keep_invisible(vec![receipt], vis, until).await });
        Invisible { done, heartbeat }
    }

    async fn end(self) {
        self.done.cancel();
        let _ = self.heartbeat.await;
    }
}

/// Every key of the message decided, together. The slot is free once every key is decided
/// and its deletion handed over; the message itself stays held (its receive room, its
/// visibility) until it settles.
async fn decide_keys(
    c: &Consumer,
    plan: &settle::MessagePlan,
    slot: OwnedSemaphorePermit,
    message_id: &str,
) -> Vec<Result<KeyOutcome, PurgeError>> {
    let slot = Arc::new(slot);
    let mirror = c.ctx.config.purge.mode == PurgeMode::MirrorVersions;
    let decisions: Vec<_> = plan
        .act
        .iter()
        .map(|e| {
            let hold: Hold = Box::new(slot.clone());
            let lost = e.version_id.clone().filter(|_| mirror);
            c.keys
                .purge(&c.purger, &c.handle, e, lost, message_id, hold)
        })
        .collect();
    drop(slot);
    futures::future::join_all(decisions).await
}

/// What became of a message's keys: counted, logged, and the task's health recorded.
struct KeysDone {
    /// Per key: settled, not yet (look again), or failed (`None`).
    settled: Vec<Option<bool>>,
    failure: Option<String>,
    /// Why each unsettled key is not, for the last receive's log line.
    unsettled: Vec<String>,
    /// Outcomes to count, with the lag of each finished purge.
    outcomes: Vec<(PurgeOutcome, Option<f64>)>,
    any: bool,
}

impl KeysDone {
    fn of(plan: &settle::MessagePlan, results: &[Result<KeyOutcome, PurgeError>]) -> KeysDone {
        let now = Utc::now();
        let mut k = KeysDone {
            settled: Vec::with_capacity(results.len()),
            failure: None,
            unsettled: Vec::new(),
            outcomes: Vec::with_capacity(results.len()),
            any: !plan.act.is_empty(),
        };
        for (e, r) in plan.act.iter().zip(results) {
            match r {
                Ok(outcome) => {
                    let lag = match (outcome, e.event_time) {
                        (KeyOutcome::Purged { deferred: 0, .. }, Some(t)) => {
                            Some((now - t).num_milliseconds() as f64 / 1000.0)
                        }
                        _ => None,
                    };
                    k.outcomes.push((outcome.label(), lag));
                    k.settled.push(Some(outcome.completes_event()));
                    if !outcome.completes_event() {
                        k.unsettled
                            .push(format!("{}: {}", e.key, settle::why_not_done(outcome)));
                    }
                }
                Err(err) => {
                    warn!(key = %e.key, error = %err, "purge failed; message will be retried");
                    k.outcomes.push((PurgeOutcome::Failed, None));
                    k.failure.get_or_insert_with(|| err.to_string());
                    k.unsettled.push(format!("{}: {err}", e.key));
                    k.settled.push(None);
                }
            }
        }
        k
    }

    fn record(&self, c: &Consumer) {
        let m = &c.ctx.metrics.purge;
        for (outcome, lag) in &self.outcomes {
            m.record_handled(*outcome);
            if let Some(lag) = lag {
                m.purged_after(*lag);
            }
        }
        match &self.failure {
            Some(reason) => c.handle.record_failure(reason.clone()),
            None if self.any => c.handle.record_success(),
            None => {}
        }
    }
}

/// The message will be retried, but this was its last receive before the queue's
/// maxReceiveCount hands it to the DLQ: say why, once.
fn last_receive(
    c: &Consumer,
    plan: &settle::MessagePlan,
    mut why: Vec<String>,
    receive_count: u32,
) {
    if let Some(Note::Invalid(err)) = plan.notes.iter().find(|n| matches!(n, Note::Invalid(_))) {
        why.push(err.to_string());
    }
    c.ctx
        .metrics
        .purge
        .messages_ended(MessageResult::DeadLettered, 1);
    error!(receive_count, reason = %why.join("; "),
           "message handed to the DLQ: this was its last receive before the queue's maxReceiveCount");
}

fn log_notes(notes: &[Note], receive_count: u32) {
    for n in notes {
        match n {
            Note::TestEvent => info!("s3:TestEvent acknowledged"),
            Note::SnsControl { kind, topic_arn } => warn!(%kind, %topic_arn,
                "SNS control message on the purge queue acknowledged; confirm SNS subscriptions with the queue owner's credentials"),
            Note::Ignored { event_name } => debug!(%event_name, "event ignored"),
            Note::OtherBucket { bucket } => warn!(event_bucket = %bucket,
                "event for a bucket other than source.bucket; not acted on"),
            Note::OutsidePrefixes { key } => debug!(%key, "key outside purge.prefixes"),
            Note::Invalid(err) => warn!(error = %err, receive_count,
                "invalid message left on the queue (the redrive policy moves it to the DLQ)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pollers_scale_with_concurrency() {
        assert_eq!(pollers(1), 1);
        assert_eq!(pollers(16), 2);
        assert_eq!(pollers(1024), 8);
        assert_eq!(prefetch(1), 1);
        assert_eq!(prefetch(16), 16);
        assert_eq!(prefetch(1024), 80);
    }
}
