//! The fixed vocabularies of metric labels, shared by [`crate::metrics`] (which registers every
//! series up front) and the modules that record them. A label value is always one of these
//! enums' `label()`: never a key, a bucket name or an error message.

/// A label's fixed set of values: what a metric family registers up front.
pub trait Label: Copy + 'static {
    const ALL: &'static [Self];
    fn label(self) -> &'static str;

    /// The value whose label is `s`.
    fn from_label(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|l| l.label() == s)
    }
}

/// Declares a label enum with `label()`, `ALL` and `Display`.
macro_rules! label_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $label)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl $crate::labels::Label for $name {
            const ALL: &'static [$name] = $name::ALL;

            fn label(self) -> &'static str {
                $name::label(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

label_enum! {
    /// A long-running task of the daemon.
    pub enum Task {
        Sync => "sync",
        Purge => "purge",
        Sweep => "sweep",
        /// The periodic preflight checks (not a task with readiness of its own).
        Preflight => "preflight",
    }
}

label_enum! {
    /// What became of one event record.
    pub enum PurgeOutcome {
        Purged => "purged",
        NothingToPurge => "nothing_to_purge",
        SourcePresent => "source_present",
        /// `mirror-versions`: target entries the source lacks, none proven a replica.
        NotReplica => "not_replica",
        OutOfScope => "out_of_scope",
        IgnoredEvent => "ignored_event",
        TestEvent => "test_event",
        Invalid => "invalid",
        Deferred => "deferred",
        Refused => "refused",
        Failed => "failed",
    }
}

label_enum! {
    /// What became of one SQS message.
    pub enum MessageResult {
        Deleted => "deleted",
        Failed => "failed",
        /// Left on its last receive: the queue moves it to the dead-letter queue.
        DeadLettered => "dead_lettered",
    }
}

label_enum! {
    /// The kind of a target entry that was deleted.
    pub enum EntryKind {
        Version => "version",
        DeleteMarker => "delete_marker",
    }
}

label_enum! {
    /// How one sync date run ended.
    pub enum SyncResult {
        Success => "success",
        /// An execution ended in ERROR.
        Error => "error",
        Timeout => "timeout",
        /// Nothing to do here: already synced, held by another runner, given up.
        Skipped => "skipped",
        /// The run could not be carried out (an AWS call failed, the plan was refused).
        Failed => "failed",
        /// The executions succeeded but objects are still missing after `max_attempts`.
        Incomplete => "incomplete",
        /// Nothing to sync: no project, or none left after the include/exclude globs, or
        /// every partition empty.
        Empty => "empty",
        /// Objects written after their execution started: a follow-up runs later.
        Late => "late",
    }
}

label_enum! {
    /// How one verification of a date's partitions ended.
    pub enum VerifyResult {
        Complete => "complete",
        Incomplete => "incomplete",
        /// The listings failed.
        Failed => "failed",
    }
}

label_enum! {
    /// Where a verified object stands: each object in exactly one state (the source objects
    /// due are `sync_verify_expected_objects`, the sum of present, missing and
    /// size_mismatched).
    pub enum ObjectState {
        Present => "present",
        Missing => "missing",
        SizeMismatched => "size_mismatched",
        Extra => "extra",
        Late => "late",
    }
}

label_enum! {
    /// An AWS service the daemon calls.
    pub enum Service {
        S3 => "s3",
        Sqs => "sqs",
        DataSync => "datasync",
    }
}

label_enum! {
    /// What kind of failure an AWS call ended in; retry and alert decisions use it.
    pub enum ErrorKind {
        /// The call did not finish within its time limit.
        Timeout => "timeout",
        /// No response: connection refused or reset, DNS.
        Network => "network",
        /// The service asked us to slow down (SlowDown, 429, Throttling).
        Throttling => "throttling",
        /// Credentials or policies do not allow the call (403).
        AccessDenied => "access_denied",
        /// The bucket, key, queue or task does not exist (404).
        NotFound => "not_found",
        /// A conditional request lost (412, 409).
        Precondition => "precondition",
        /// The request itself was refused as invalid (other 4xx).
        Invalid => "invalid",
        /// The service failed (5xx).
        Server => "server",
        Other => "other",
    }
}

label_enum! {
    /// S3 operations the daemon performs.
    pub enum S3Op {
        ListObjectVersions => "ListObjectVersions",
        ListObjectsV2 => "ListObjectsV2",
        DeleteObjects => "DeleteObjects",
        DeleteObject => "DeleteObject",
        HeadObject => "HeadObject",
        GetObject => "GetObject",
        PutObject => "PutObject",
        GetBucketVersioning => "GetBucketVersioning",
        GetBucketNotificationConfiguration => "GetBucketNotificationConfiguration",
        GetBucketReplication => "GetBucketReplication",
        GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
    }
}

label_enum! {
    /// How a purge listed one side of its keys.
    pub enum ListingMethod {
        /// One key, `Prefix` = the key.
        PerKey => "per_key",
        /// Keys asked for together, one range listing.
        Range => "range",
        /// A range listing that turned out sparse, stopped; its remaining keys listed per key.
        RangeGivenUp => "range_given_up",
    }
}

label_enum! {
    /// DataSync operations the daemon performs.
    pub enum DataSyncOp {
        StartTaskExecution => "StartTaskExecution",
        DescribeTaskExecution => "DescribeTaskExecution",
        CancelTaskExecution => "CancelTaskExecution",
        UpdateTask => "UpdateTask",
        ListTaskExecutions => "ListTaskExecutions",
        ListTagsForResource => "ListTagsForResource",
        DescribeTask => "DescribeTask",
        DescribeLocationS3 => "DescribeLocationS3",
    }
}

label_enum! {
    /// SQS operations the daemon performs.
    pub enum SqsOp {
        ReceiveMessage => "ReceiveMessage",
        DeleteMessageBatch => "DeleteMessageBatch",
        ChangeMessageVisibilityBatch => "ChangeMessageVisibilityBatch",
        GetQueueAttributes => "GetQueueAttributes",
    }
}

/// An AWS API call: one service's operation. The `operation` label of the `aws_request*`
/// families, with the `service` it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AwsOp {
    S3(S3Op),
    Sqs(SqsOp),
    DataSync(DataSyncOp),
}

impl AwsOp {
    pub fn service(self) -> Service {
        match self {
            AwsOp::S3(_) => Service::S3,
            AwsOp::Sqs(_) => Service::Sqs,
            AwsOp::DataSync(_) => Service::DataSync,
        }
    }

    pub fn operation(self) -> &'static str {
        match self {
            AwsOp::S3(o) => o.label(),
            AwsOp::Sqs(o) => o.label(),
            AwsOp::DataSync(o) => o.label(),
        }
    }

    /// Every operation the daemon calls, service by service.
    pub fn all() -> impl Iterator<Item = AwsOp> {
        let s3 = S3Op::ALL.iter().copied().map(AwsOp::S3);
        let sqs = SqsOp::ALL.iter().copied().map(AwsOp::Sqs);
        let datasync = DataSyncOp::ALL.iter().copied().map(AwsOp::DataSync);
        s3.chain(sqs).chain(datasync)
    }
}

impl From<S3Op> for AwsOp {
    fn from(o: S3Op) -> Self {
        AwsOp::S3(o)
    }
}

impl From<SqsOp> for AwsOp {
    fn from(o: SqsOp) -> Self {
        AwsOp::Sqs(o)
    }
}

impl From<DataSyncOp> for AwsOp {
    fn from(o: DataSyncOp) -> Self {
        AwsOp::DataSync(o)
    }
}

impl std::fmt::Display for AwsOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.operation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_snake_case() {
        fn check<T: Copy + std::fmt::Display>(all: &[T], label: fn(T) -> &'static str) {
            let set: std::collections::BTreeSet<_> = all.iter().map(|v| label(*v)).collect();
            assert_eq!(set.len(), all.len());
        }
        check(PurgeOutcome::ALL, PurgeOutcome::label);
        check(ErrorKind::ALL, ErrorKind::label);
        check(SyncResult::ALL, SyncResult::label);
        assert_eq!(PurgeOutcome::NothingToPurge.to_string(), "nothing_to_purge");
        assert_eq!(
            serde_json::to_string(&SyncResult::Timeout).unwrap(),
            "\"timeout\""
        );
    }
}

label_enum! {
    /// A side of the reconciliation.
    pub enum Side {
        Source => "source",
        Target => "target",
    }
}

label_enum! {
    /// How one sweep run ended.
    pub enum SweepResult {
        /// Every prefix walked to its end within the guardrails.
        Completed => "completed",
        /// More orphans than `max_deletes`: the rest were left and reported.
        ExceededMaxDeletes => "exceeded_max_deletes",
        /// A delete failed; nothing more was deleted after it.
        StoppedAfterError => "stopped_after_error",
        /// A listing or the lease failed; the checkpoint lets the next run resume.
        Failed => "failed",
        /// A prefix is being swept by another replica.
        Busy => "busy",
        /// Shutdown; the checkpoint lets the next run resume.
        Interrupted => "interrupted",
    }
}

label_enum! {
    /// Why an orphan was not purged.
    pub enum KeptReason {
        /// Re-listed, the source holds the key after all (re-created, or a look-alike).
        SourcePresent => "source_present",
        /// Re-listed, the target has nothing left to delete.
        NothingToPurge => "nothing_to_purge",
        /// `mirror-versions`: not proven to be a replica of a version the source lost.
        NotReplica => "not_replica",
        /// Its newest target entry is younger than `min_age`.
        TooYoung => "too_young",
        /// The race guard protected recent target entries.
        RaceGuard => "race_guard",
        /// More entries than `purge.max_versions_per_key`.
        Refused => "refused",
        /// The run reached `max_deletes`.
        MaxDeletes => "max_deletes",
        /// An earlier delete failed in this run.
        AfterError => "after_error",
        /// Deciding it failed.
        Failed => "failed",
    }
}

label_enum! {
    /// A preflight check: that AWS is wired the way the configuration assumes.
    pub enum CheckId {
        SourceBucket => "source.bucket",
        TargetBucket => "target.bucket",
        SourceVersioning => "source.versioning",
        TargetVersioning => "target.versioning",
        /// DeleteObjects is permitted on the target: a probe that deletes nothing.
        TargetDelete => "target.delete",
        SourceNotification => "source.notification",
        /// `mirror-versions`: S3 Replication to the target covers `purge.prefixes`.
        SourceReplication => "source.replication",
        /// `mirror-versions`: no target lifecycle rule expires current versions there.
        TargetLifecycle => "target.lifecycle",
        QueueExists => "queue.exists",
        QueueRedrive => "queue.redrive",
        DatasyncTask => "datasync.task",
        DatasyncLocations => "datasync.locations",
        DatasyncSchedule => "datasync.schedule",
        DatasyncFilters => "datasync.filters",
        DatasyncOptions => "datasync.options",
        StateBucket => "state.bucket",
    }
}

label_enum! {
    /// How a preflight check came out.
    pub enum CheckStatus {
        Pass => "pass",
        Warn => "warn",
        Fail => "fail",
    }
}
