//! `[purge]`: the permanent-delete consumer, and the S3 removal event names it acts on.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::read::{Problems, SectionInput, read_fields};

/// The removal events S3 sends. Parsing accepts both `ObjectRemoved:Delete` (as notifications
/// spell it) and `s3:ObjectRemoved:Delete` (as notification configurations spell it): this is
/// the one place that prefix is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemovalEventName {
    ObjectRemovedDelete,
    ObjectRemovedDeleteMarkerCreated,
    LifecycleExpirationDelete,
    LifecycleExpirationDeleteMarkerCreated,
}

impl RemovalEventName {
    pub const ALL: [RemovalEventName; 4] = [
        RemovalEventName::ObjectRemovedDelete,
        RemovalEventName::ObjectRemovedDeleteMarkerCreated,
        RemovalEventName::LifecycleExpirationDelete,
        RemovalEventName::LifecycleExpirationDeleteMarkerCreated,
    ];

    /// The name as S3 event records carry it, without `s3:`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalEventName::ObjectRemovedDelete => "ObjectRemoved:Delete",
            RemovalEventName::ObjectRemovedDeleteMarkerCreated => {
                "ObjectRemoved:DeleteMarkerCreated"
            }
            RemovalEventName::LifecycleExpirationDelete => "LifecycleExpiration:Delete",
            RemovalEventName::LifecycleExpirationDeleteMarkerCreated => {
                "LifecycleExpiration:DeleteMarkerCreated"
            }
        }
    }

    /// Parses an event name with or without the `s3:` prefix.
    pub fn parse(name: &str) -> Option<RemovalEventName> {
        let bare = strip_s3_prefix(name);
        Self::ALL.into_iter().find(|e| e.as_str() == bare)
    }

    /// Whether this event leaves the data gone for good (as opposed to a delete marker).
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            RemovalEventName::ObjectRemovedDelete | RemovalEventName::LifecycleExpirationDelete
        )
    }
}

/// `s3:ObjectRemoved:Delete` and `ObjectRemoved:Delete` name the same event.
pub fn strip_s3_prefix(name: &str) -> &str {
    name.strip_prefix("s3:").unwrap_or(name)
}

impl fmt::Display for RemovalEventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RemovalEventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RemovalEventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        RemovalEventName::parse(&name).ok_or_else(|| {
            let known: Vec<&str> = RemovalEventName::ALL.iter().map(|e| e.as_str()).collect();
            serde::de::Error::custom(format!(
                "`{name}` is not a removal event; expected one of {}",
                known.join(", ")
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PurgeMode {
    /// Purge the target's copy only once the source holds nothing for the key.
    WhenSourceEmpty,
    /// Delete each target version id the source no longer has (S3 Replication keeps ids).
    MirrorVersions,
}

/// What a source key holding only delete markers means in `when-source-empty` mode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerOnlySource {
    /// Every data version is gone: the key is gone from the source, purge the target's copy.
    Purge,
    /// A delete marker counts like data: leave the target alone.
    Keep,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PurgeConfig {
    pub enabled: bool,
    pub queue_url: String,
    /// Messages whose keys are being decided at once. A message gives its slot back once its
    /// deletions are handed over, and waits for their DeleteObjects without it.
    pub concurrency: NonZeroUsize,
    /// Visibility timeout requested on receive; work running past half of it extends it.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// Long-poll wait per ReceiveMessage (at most 20 s).
    #[serde(with = "humantime_serde")]
    pub wait_time: Duration,
    /// Redelivery delay after the first failure; doubles with each receive.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Ceiling for the redelivery delay.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// Event names acted on.
    pub events: Vec<RemovalEventName>,
    /// Key prefixes in scope; empty means every key.
    pub prefixes: Vec<String>,
    pub mode: PurgeMode,
    /// `when-source-empty`: whether a source left with only delete markers still holds the key.
    pub marker_only_source: MarkerOnlySource,
    pub dry_run: bool,
    /// Refuse (and fail the message) when one key has more target entries than this.
    pub max_versions_per_key: NonZeroUsize,
    /// Target entries modified later than (source listing time - margin) are never deleted.
    /// At least 1 s because S3 reports LastModified with one-second precision.
    #[serde(with = "humantime_serde")]
    pub race_guard_margin: Duration,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            queue_url: String::new(),
            concurrency: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            visibility_timeout: Duration::from_secs(60),
            wait_time: Duration::from_secs(20),
            retry_backoff: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(900),
            events: vec![
                RemovalEventName::ObjectRemovedDelete,
                RemovalEventName::LifecycleExpirationDelete,
            ],
            prefixes: Vec::new(),
            mode: PurgeMode::WhenSourceEmpty,
            marker_only_source: MarkerOnlySource::Purge,
            dry_run: false,
            max_versions_per_key: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            race_guard_margin: Duration::from_secs(5),
        }
    }
}

impl PurgeConfig {
    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut c = PurgeConfig::default();
        read_fields!(input, p, c;
            enabled, queue_url, concurrency, events, prefixes, mode, marker_only_source, dry_run,
            max_versions_per_key;
            durations: visibility_timeout, wait_time, retry_backoff, retry_backoff_max,
            race_guard_margin);
        c
    }

    /// Value checks. `needs_queue` is true when this run consumes the queue.
    pub(super) fn validate(&self, needs_queue: bool, p: &mut Problems) {
        let url = &self.queue_url;
        if url.is_empty() {
            if needs_queue && p.ok(&["purge.queue_url"]) {
                p.push(
                    "purge.queue_url",
                    "required: the SQS queue receiving the source bucket's delete events",
                );
            }
        } else if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.split('/').count() < 5
        {
            p.push(
                "purge.queue_url",
                format!(
                    "`{url}` is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
                ),
            );
        }
        if self.concurrency.get() > 1024 {
            p.push("purge.concurrency", "must be at most 1024");
        }
        let vis = self.visibility_timeout;
        if p.ok(&["purge.visibility_timeout"])
            && (vis < Duration::from_secs(2) || vis > Duration::from_secs(12 * 3600))
        {
            p.push(
                "purge.visibility_timeout",
                "must be between 2s and 12h (SQS limits)",
            );
        }
        if self.wait_time > Duration::from_secs(20) {
            p.push(
                "purge.wait_time",
                "must be at most 20s (SQS long-poll limit)",
            );
        }
        if p.ok(&["purge.retry_backoff", "purge.retry_backoff_max"])
            && (self.retry_backoff.is_zero() || self.retry_backoff > self.retry_backoff_max)
        {
            p.push(
                "purge.retry_backoff",
                "must be greater than zero and at most purge.retry_backoff_max",
            );
        }
        if self.retry_backoff_max > Duration::from_secs(12 * 3600) {
            p.push("purge.retry_backoff_max", "must be at most 12h (SQS limit)");
        }
        if p.ok(&["purge.events"]) && self.events.is_empty() {
            p.push("purge.events", "must name at least one event");
        }
        if p.ok(&["purge.race_guard_margin"]) && self.race_guard_margin < Duration::from_secs(1) {
            p.push(
                "purge.race_guard_margin",
                "must be at least 1s: S3 reports LastModified with one-second precision",
            );
        }
    }

    /// Whether `key` is under one of `prefixes` (every key when none is configured).
    pub(crate) fn in_scope(&self, key: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_normalized_in_one_place() {
        assert_eq!(
            RemovalEventName::parse("s3:ObjectRemoved:Delete"),
            Some(RemovalEventName::ObjectRemovedDelete)
        );
        assert_eq!(
            RemovalEventName::parse("ObjectRemoved:Delete"),
            Some(RemovalEventName::ObjectRemovedDelete)
        );
        assert_eq!(RemovalEventName::parse("ObjectCreated:Put"), None);
        assert_eq!(RemovalEventName::parse("s3:s3:ObjectRemoved:Delete"), None);
        for e in RemovalEventName::ALL {
            assert_eq!(RemovalEventName::parse(e.as_str()), Some(e));
        }
    }
}
