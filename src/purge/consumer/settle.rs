//! The consumer's decisions, without I/O: what a message asks for (parse and scope), and what
//! to do with it once its keys are decided (acknowledge, or leave it for redelivery after a
//! backoff).

use std::time::Duration;

use crate::config::PurgeConfig;
use crate::labels::PurgeOutcome;
use crate::purge::event::{self, Body, EventError, Record, RemovalEvent};

/// Scope of one removal event.
#[derive(Debug, PartialEq, Eq)]
pub enum Triage {
    Act,
    /// Another bucket, or a key outside `purge.prefixes`.
    OutOfScope,
    /// An event name not in `purge.events`.
    Ignored,
}

/// Pure scope check for one removal event.
pub fn triage(e: &RemovalEvent, source_bucket: &str, purge: &PurgeConfig) -> Triage {
    if e.bucket != source_bucket {
        return Triage::OutOfScope;
    }
    if !purge.events.contains(&e.event_name) {
        return Triage::Ignored;
    }
    if !purge.in_scope(&e.key) {
        return Triage::OutOfScope;
    }
    Triage::Act
}

/// Something about a message worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    TestEvent,
    SnsControl {
        kind: String,
        topic_arn: String,
    },
    /// A record that is not a removal, or a removal not in `purge.events`.
    Ignored {
        event_name: String,
    },
    OtherBucket {
        bucket: String,
    },
    OutsidePrefixes {
        key: String,
    },
    Invalid(EventError),
}

/// What one message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePlan {
    /// Removal events in scope, in record order (one per record: two records for one key
    /// share one decision, made once, and are both counted).
    pub act: Vec<RemovalEvent>,
    /// Outcomes of records settled without I/O.
    pub counted: Vec<PurgeOutcome>,
    pub notes: Vec<Note>,
    /// False when the body could not be parsed: the message is never acknowledged, so the
    /// queue's redrive policy moves it to the DLQ.
    pub valid: bool,
}

/// Parses and scopes one message body.
pub fn plan(body: &str, source_bucket: &str, purge: &PurgeConfig) -> MessagePlan {
    let mut p = MessagePlan {
        act: Vec::new(),
        counted: Vec::new(),
        notes: Vec::new(),
        valid: true,
    };
    match event::parse_body(body) {
        Ok(Body::Test) => {
            p.counted.push(PurgeOutcome::TestEvent);
            p.notes.push(Note::TestEvent);
        }
        Ok(Body::SnsControl { kind, topic_arn }) => {
            p.counted.push(PurgeOutcome::IgnoredEvent);
            p.notes.push(Note::SnsControl { kind, topic_arn });
        }
        Ok(Body::Records(records)) => {
            for r in records {
                match r {
                    Record::Other { event_name } => {
                        p.counted.push(PurgeOutcome::IgnoredEvent);
                        p.notes.push(Note::Ignored { event_name });
                    }
                    Record::Removal(e) => match triage(&e, source_bucket, purge) {
                        Triage::Act => p.act.push(e),
                        Triage::Ignored => {
                            p.counted.push(PurgeOutcome::IgnoredEvent);
                            p.notes.push(Note::Ignored {
                                event_name: e.event_name.to_string(),
                            });
                        }
                        Triage::OutOfScope => {
                            p.counted.push(PurgeOutcome::OutOfScope);
                            p.notes.push(if e.bucket != source_bucket {
                                Note::OtherBucket { bucket: e.bucket }
                            } else {
                                Note::OutsidePrefixes { key: e.key }
                            });
                        }
                    },
                }
            }
        }
        Err(err) => {
            p.counted.push(PurgeOutcome::Invalid);
            p.notes.push(Note::Invalid(err));
            p.valid = false;
        }
    }
    p
}

/// The `maxReceiveCount` of a queue's RedrivePolicy (a JSON document; SQS writes the number
/// as a string or a number).
pub fn max_receive_count(redrive_policy: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(redrive_policy).ok()?;
    match &v["maxReceiveCount"] {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_u64().and_then(|n| u32::try_from(n).ok()),
    }
}

/// Why a decided key leaves its message unsettled, in a few words.
pub(crate) fn why_not_done(outcome: &crate::purge::outcome::KeyOutcome) -> String {
    use crate::purge::outcome::KeyOutcome;
    match outcome {
        KeyOutcome::Purged { deferred, .. } => {
            format!("{deferred} target entries newer than the source listing (race guard)")
        }
        KeyOutcome::Deferred { protected } => {
            format!("{protected} target entries newer than the source listing (race guard)")
        }
        KeyOutcome::Refused { reason } => reason.clone(),
        KeyOutcome::TooYoung => "younger than sweep.min_age".into(),
        KeyOutcome::Stopped => "deleting stopped after an earlier failure".into(),
        KeyOutcome::NothingToPurge | KeyOutcome::SourcePresent | KeyOutcome::NotReplica { .. } => {
            "settled".into()
        }
    }
}

/// The redelivery delay after `receive_count` receives: `base * 2^(n-1)`, capped.
pub fn backoff(receive_count: u32, base: Duration, max: Duration) -> Duration {
    let exp = receive_count.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(max)
}

/// What becomes of a message once its keys are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Every record is settled: delete the message.
    Ack,
    /// Leave it for redelivery after `delay`.
    Retry { delay: Duration },
}

/// A message is acknowledged only when it was valid and every key's outcome is settled
/// (`Some(true)`); a failed key (`None`) or an unsettled one (`Some(false)`: deferred,
/// refused) leaves it for redelivery after a backoff that grows with its receive count.
pub fn settle(
    valid: bool,
    keys: &[Option<bool>],
    receive_count: u32,
    base: Duration,
    max: Duration,
) -> Settlement {
    if valid && keys.iter().all(|k| *k == Some(true)) {
        Settlement::Ack
    } else {
        Settlement::Retry {
            delay: backoff(receive_count, base, max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RemovalEventName;

    fn purge_config(prefixes: &[&str]) -> PurgeConfig {
        PurgeConfig {
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            ..PurgeConfig::default()
        }
    }

    fn record(bucket: &str, key: &str, name: &str) -> String {
        format!(
            r#"{{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"{name}","s3":{{"bucket":{{"name":"{bucket}"}},"object":{{"key":"{key}"}}}}}}"#
        )
    }

    fn body(records: &[String]) -> String {
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

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
        let cfg = purge_config(&[]);
        let e = |bucket: &str, key: &str, name| RemovalEvent {
            bucket: bucket.into(),
            key: key.into(),
            event_name: name,
            version_id: None,
            event_time: None,
        };
        let del = RemovalEventName::ObjectRemovedDelete;
        let marker = RemovalEventName::ObjectRemovedDeleteMarkerCreated;
        assert_eq!(triage(&e("src", "k", del), "src", &cfg), Triage::Act);
        assert_eq!(
            triage(&e("other", "k", del), "src", &cfg),
            Triage::OutOfScope
        );
        assert_eq!(triage(&e("src", "k", marker), "src", &cfg), Triage::Ignored);
        let cfg = purge_config(&["topics/"]);
        assert_eq!(
            triage(&e("src", "other/k", del), "src", &cfg),
            Triage::OutOfScope
        );
        assert_eq!(triage(&e("src", "topics/k", del), "src", &cfg), Triage::Act);
    }

    #[test]
    fn a_message_plan_counts_what_needs_no_io() {
        let cfg = purge_config(&["topics/"]);
        let b = body(&[
            record("src", "topics/a", "ObjectRemoved:Delete"),
            record("src", "topics/a", "ObjectRemoved:Delete"),
            record("other", "topics/b", "ObjectRemoved:Delete"),
            record("src", "elsewhere/c", "ObjectRemoved:Delete"),
            record("src", "topics/d", "ObjectRemoved:DeleteMarkerCreated"),
            record("src", "topics/e", "ObjectCreated:Put"),
        ]);
        let p = plan(&b, "src", &cfg);
        assert!(p.valid);
        let keys: Vec<&str> = p.act.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["topics/a", "topics/a"], "both records, one key");
        assert_eq!(
            p.counted,
            vec![
                PurgeOutcome::OutOfScope,
                PurgeOutcome::OutOfScope,
                PurgeOutcome::IgnoredEvent,
                PurgeOutcome::IgnoredEvent
            ]
        );
        assert!(p.notes.contains(&Note::OtherBucket {
            bucket: "other".into()
        }));
        let bad = plan("{not json", "src", &cfg);
        assert!(!bad.valid);
        assert_eq!(bad.counted, vec![PurgeOutcome::Invalid]);
        let test = plan(
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"src"}"#,
            "src",
            &cfg,
        );
        assert!(test.valid && test.act.is_empty());
        assert_eq!(test.counted, vec![PurgeOutcome::TestEvent]);
    }

    #[test]
    fn settlement_rules() {
        let (b, max) = (Duration::from_secs(10), Duration::from_secs(900));
        let retry = |n| Settlement::Retry {
            delay: backoff(n, b, max),
        };
        // Every key settled: acknowledged, whatever the receive count.
        assert_eq!(
            settle(true, &[Some(true), Some(true)], 3, b, max),
            Settlement::Ack
        );
        // Nothing to act on (a TestEvent, out-of-scope records): acknowledged.
        assert_eq!(settle(true, &[], 1, b, max), Settlement::Ack);
        // One key deferred or refused: the whole message comes back.
        assert_eq!(
            settle(true, &[Some(true), Some(false)], 1, b, max),
            retry(1)
        );
        // One key failed: back, with a backoff growing with the receive count.
        assert_eq!(settle(true, &[Some(true), None], 3, b, max), retry(3));
        // An unparseable body is never acknowledged, so it reaches the DLQ.
        assert_eq!(settle(false, &[], 2, b, max), retry(2));
    }
}
