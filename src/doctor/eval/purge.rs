//! The purge's verdicts: the bucket notification, the queue and its redrive policy.

use super::check::{CallError, Check};
use crate::config::{RemovalEventName, strip_s3_prefix};
use crate::labels::{CheckId, ErrorKind};

/// Where a bucket notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Queue,
    Topic,
    Lambda,
}

/// One notification configuration of the source bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub destination: Destination,
    pub arn: String,
    pub id: Option<String>,
    /// As configured: `s3:ObjectRemoved:*`, `s3:ObjectRemoved:Delete`...
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// Whether a configured event name (`s3:ObjectRemoved:*`) includes `wanted`.
fn covers(configured: &str, wanted: RemovalEventName) -> bool {
    let configured = strip_s3_prefix(configured);
    match configured.strip_suffix(":*") {
        Some(family) => wanted.as_str().split(':').next() == Some(family),
        None => configured == wanted.as_str(),
    }
}

/// Whether a notification's key filter lets every key of `prefixes` through.
fn filter_covers(n: &Notification, prefixes: &[String]) -> bool {
    let p = n.prefix.as_deref().unwrap_or("");
    if prefixes.is_empty() {
        p.is_empty()
    } else {
        prefixes.iter().all(|q| q.starts_with(p))
    }
}

/// `source.notification`: the purge events reach the queue (or EventBridge is on), and
/// nothing else takes the same events.
pub fn notification(
    bucket: &str,
    facts: Result<(Vec<Notification>, bool), CallError>,
    queue_arn: Option<&str>,
    events: &[RemovalEventName],
    prefixes: &[String],
) -> Check {
    let c = CheckId::SourceNotification;
    let resource = format!("s3://{bucket}");
    let (configs, eventbridge) = match facts {
        Ok(f) => f,
        Err(e) => {
            return Check::fail(
                c,
                resource,
                format!("cannot read the notification configuration: {}", e.line),
                "allow the daemon's role s3:GetBucketNotification on the source bucket",
            );
        }
    };
    let routes = Routes::of(&configs, queue_arn, events, prefixes);
    let wanted: Vec<String> = events.iter().map(|e| format!("s3:{e}")).collect();
    let target = queue_arn.unwrap_or("the purge queue");
    if eventbridge {
        return eventbridge_verdict(c, resource, &routes, &wanted);
    }
    if !routes.missing.is_empty() {
        let (detail, fix) = routes.missing_verdict(queue_arn, target, prefixes);
        return Check::fail(c, resource, detail, fix);
    }
    if !routes.overlapping.is_empty() {
        return Check::warn(
            c,
            resource,
            format!(
                "{} reach {target}, and also {}",
                wanted.join(", "),
                routes.overlapping.join(", ")
            ),
            "remove the other notification (the purge Lambda this replaces, say): S3 rejects overlapping configurations when the stack is applied, and two consumers purge twice",
        );
    }
    if routes.suffixed {
        return Check::warn(
            c,
            resource,
            format!(
                "{} reach {target} only for keys with a suffix filter",
                wanted.join(", ")
            ),
            "drop the suffix filter, or accept that other keys are never purged by events (the sweep still finds them)",
        );
    }
    Check::pass(c, resource, format!("{} reach {target}", wanted.join(", ")))
}

/// With EventBridge delivery on, the rule (not visible here) routes the events; another
/// consumer of the same events would still purge twice.
fn eventbridge_verdict(c: CheckId, resource: String, routes: &Routes, wanted: &[String]) -> Check {
    if !routes.overlapping.is_empty() {
        return Check::warn(
            c,
            resource,
            format!(
                "EventBridge delivery is on, and {} also go to {}",
                wanted.join(", "),
                routes.overlapping.join(", ")
            ),
            "remove the other notification (the purge Lambda this replaces, say): two consumers purge twice",
        );
    }
    Check::pass(
        c,
        resource,
        "EventBridge delivery is on: the stack's rule must route \"Object Deleted\" events to the queue (the test delete of docs/deploy-accounts.md, step 5, proves it)",
    )
}

/// Where the bucket's notifications send the purge's events.
struct Routes {
    /// Events no notification of ours delivers (`s3:ObjectRemoved:Delete`).
    missing: Vec<String>,
    /// Every notification of ours that delivers an event filters on a suffix.
    suffixed: bool,
    /// Other destinations that take the same events.
    overlapping: Vec<String>,
}

impl Routes {
    fn of(
        configs: &[Notification],
        queue_arn: Option<&str>,
        events: &[RemovalEventName],
        prefixes: &[String],
    ) -> Routes {
        let ours = |n: &&Notification| {
            n.destination == Destination::Queue && Some(n.arn.as_str()) == queue_arn
        };
        let mut missing = Vec::new();
        let mut suffixed = false;
        for e in events {
            let found: Vec<&Notification> = configs
                .iter()
                .filter(ours)
                .filter(|n| n.events.iter().any(|x| covers(x, *e)) && filter_covers(n, prefixes))
                .collect();
            if found.is_empty() {
                missing.push(format!("s3:{e}"));
            }
            suffixed |= !found.is_empty() && found.iter().all(|n| n.suffix.is_some());
        }
        let overlapping = configs
            .iter()
            .filter(|n| !ours(n))
            .filter(|n| {
                n.events
                    .iter()
                    .any(|x| events.iter().any(|e| covers(x, *e)))
            })
            .map(describe)
            .collect();
        Routes {
            missing,
            suffixed,
            overlapping,
        }
    }

    /// What is wrong and how to fix it, when events are missing.
    fn missing_verdict(
        &self,
        queue_arn: Option<&str>,
        target: &str,
        prefixes: &[String],
    ) -> (String, String) {
        let missing = self.missing.join(", ");
        let fix = format!(
            "switch on EventBridge delivery for the bucket (docs/deploy-accounts.md, step 1: deploy/aws/enable-eventbridge.jq keeps its other notifications; source-account.yaml's rule routes permanent deletes to the queue), or add a queue notification for {missing} to {target}{}",
            if prefixes.is_empty() {
                String::new()
            } else {
                format!(" covering {}", prefixes.join(", "))
            }
        );
        let detail = match (queue_arn, self.overlapping.is_empty()) {
            (None, _) => {
                "the queue's ARN is unknown (queue.exists failed), so nothing can be matched"
                    .to_string()
            }
            (_, true) => format!("no notification sends {missing} to {target}"),
            (_, false) => format!(
                "no notification sends {missing} to {target}; they go to {}",
                self.overlapping.join(", ")
            ),
        };
        (detail, fix)
    }
}

/// A notification's destination, for a message: `queue arn:... (id x)`.
fn describe(n: &Notification) -> String {
    format!(
        "{} {}{}",
        match n.destination {
            Destination::Queue => "queue",
            Destination::Topic => "topic",
            Destination::Lambda => "function",
        },
        n.arn,
        n.id.as_ref()
            .map(|i| format!(" (id {i})"))
            .unwrap_or_default()
    )
}

/// `queue.exists`.
pub(crate) fn queue_exists(queue_url: &str, arn: Result<String, CallError>) -> Check {
    match arn {
        Ok(arn) => Check::pass(CheckId::QueueExists, queue_url, format!("reachable: {arn}")),
        Err(e) => Check::fail(
            CheckId::QueueExists,
            queue_url,
            e.line.clone(),
            match e.kind {
                ErrorKind::NotFound => "check purge.queue_url (and the region of [control])",
                ErrorKind::AccessDenied => {
                    "allow the daemon's role sqs:GetQueueAttributes, sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue"
                }
                _ => "check purge.queue_url, the network path to SQS, and the credentials",
            },
        ),
    }
}

/// `queue.redrive`: a dead-letter queue, and the visibility timeouts side by side.
pub(crate) fn queue_redrive(
    queue_url: &str,
    attributes: Result<(Option<String>, Option<u64>), CallError>,
    daemon_visibility: u64,
) -> Check {
    let c = CheckId::QueueRedrive;
    let (policy, visibility) = match attributes {
        Ok(a) => a,
        Err(e) => {
            return Check::fail(
                c,
                queue_url,
                format!("cannot read the queue's attributes: {}", e.line),
                "allow the daemon's role sqs:GetQueueAttributes on the queue",
            );
        }
    };
    let vis = visibility.map_or("unknown".into(), |v| format!("{v}s"));
    let Some(policy) = policy else {
        return Check::fail(
            c,
            queue_url,
            "no redrive policy: a message that can never be handled is received forever",
            "give the queue a dead-letter queue (RedrivePolicy with maxReceiveCount, e.g. 5)",
        );
    };
    let parsed: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
    let dlq = parsed["deadLetterTargetArn"].as_str().unwrap_or("?");
    let max = match &parsed["maxReceiveCount"] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let detail = format!(
        "dead-letter queue {dlq} after {max} receives; the queue's visibility timeout is {vis}, the daemon asks for {daemon_visibility}s on each receive"
    );
    if max == "1" {
        return Check::warn(
            c,
            queue_url,
            detail,
            "raise maxReceiveCount: with 1, a single throttled purge sends its message to the DLQ",
        );
    }
    Check::pass(c, queue_url, detail)
}
