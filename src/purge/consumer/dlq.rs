//! The dead-letter queue's depth, read every minute into `purge_dlq_messages`: a message
//! there is a key nobody purged, and an operator should hear of it before anyone asks.

use std::time::Duration;

use tracing::{debug, warn};

use crate::aws::sqs::Queue;
use crate::context::Context;

/// How often the depth is read.
pub(super) const EVERY: Duration = Duration::from_secs(60);

/// The dead-letter queue's URL: the purge queue's with the last path segment replaced by the
/// name in the redrive policy's `deadLetterTargetArn`. SQS requires a dead-letter queue in
/// the same account and region as its source queue, so the URL differs only in the name (and
/// keeps whatever endpoint the purge queue's URL uses).
pub(super) fn dlq_url(queue_url: &str, redrive_policy: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(redrive_policy).ok()?;
    let arn = v["deadLetterTargetArn"].as_str()?;
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, "sqs", _, _, name] = parts.as_slice() else {
        return None;
    };
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let (base, own) = queue_url.trim_end_matches('/').rsplit_once('/')?;
    (!own.is_empty()).then(|| format!("{base}/{name}"))
}

/// Reads the depth at once (from the redrive policy read at start, `policy`) and then every
/// [`EVERY`] until shutdown, reading the policy again each time: a dead-letter queue added
/// later, or a read that failed, is picked up instead of leaving the gauge blind for the
/// process's life. `purge_dlq_last_read_timestamp_seconds` says when a depth was last read,
/// so an unreadable queue (a missing permission) shows as a stale read, not as an empty DLQ.
pub(super) async fn watch(queue: Queue, ctx: Context, mut policy: Option<String>) {
    loop {
        if let Some(url) = policy.as_deref().and_then(|p| dlq_url(&queue.url, p)) {
            let dlq = Queue::new(ctx.clients.sqs.clone(), url, ctx.metrics.clone());
            match ctx
                .shutdown
                .run_until_cancelled(dlq.approximate_messages())
                .await
            {
                None => return,
                Some(Ok(n)) => {
                    debug!(dlq = %dlq.url, messages = n, "dead-letter queue depth");
                    ctx.metrics
                        .purge
                        .dlq_depth_read(n, ctx.clock.now().timestamp());
                }
                Some(Err(e)) => {
                    warn!(error = %e, "cannot read the dead-letter queue's depth (sqs:GetQueueAttributes on it)")
                }
            }
        }
        if ctx
            .shutdown
            .run_until_cancelled(ctx.clock.sleep(EVERY))
            .await
            .is_none()
        {
            return;
        }
        match ctx
            .shutdown
            .run_until_cancelled(queue.redrive_policy())
            .await
        {
            None => return,
            Some(Ok(p)) => {
                ctx.metrics.purge.dlq_found(p.is_some());
                policy = p;
            }
            Some(Err(e)) => warn!(error = %e, "cannot read the purge queue's redrive policy"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dlq_url_is_the_queues_with_the_dlq_name() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:ap-northeast-2:111111111111:deletes-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            dlq_url(
                "https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes",
                policy
            )
            .as_deref(),
            Some("https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes-dlq")
        );
        // Another endpoint (an emulator, a VPC endpoint) is kept.
        assert_eq!(
            dlq_url("http://127.0.0.1:5000/123456789012/q/", policy).as_deref(),
            Some("http://127.0.0.1:5000/123456789012/deletes-dlq")
        );
        // A FIFO dead-letter queue keeps its suffix.
        let fifo = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:d.fifo"}"#;
        assert_eq!(
            dlq_url("https://sqs.us-east-1.amazonaws.com/1/q.fifo", fifo).as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/1/d.fifo")
        );
        for bad in [
            "",
            "{}",
            r#"{"deadLetterTargetArn":"arn:aws:sns:us-east-1:1:topic"}"#,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:"}"#,
            r#"{"deadLetterTargetArn":"not-an-arn"}"#,
            r#"{"deadLetterTargetArn":7}"#,
        ] {
            assert_eq!(
                dlq_url("https://sqs.us-east-1.amazonaws.com/1/q", bad),
                None,
                "{bad}"
            );
        }
        assert_eq!(dlq_url("no-slash", policy), None);
    }
}
