//! `[sweep]`: the scheduled walk that finds target keys the source no longer has (orphans left
//! by delete events that never arrived) and, within guardrails, purges them.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::read::{Problems, SectionInput, read_fields};
use super::sync::Schedule;

/// What the scheduled sweep does with the orphans it finds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SweepAction {
    /// Decide every orphan as a purge would, delete nothing, report.
    Report,
    /// Purge orphans, at most `max_deletes` keys per run.
    Purge,
}

/// How much of the source a sweep reads.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SweepWalk {
    /// Only the source keys at and around the target's: its cost follows the target.
    #[default]
    TargetDriven,
    /// Both sides to their ends (the walk before target-driven reading; for comparison).
    Full,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepConfig {
    pub enabled: bool,
    /// Cron expression: five fields, or six with the seconds first.
    pub schedule: Schedule,
    /// IANA timezone of the schedule; unset means `sync.timezone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    /// Key prefixes to sweep. Required: a whole-bucket sweep is `[""]`, said explicitly.
    pub prefixes: Vec<String>,
    pub action: SweepAction,
    /// Keys purged per run at most; a run that would purge more stops deleting and fails.
    pub max_deletes: NonZeroU32,
    /// A target key whose newest entry is younger than this is not an orphan: its copy may be
    /// on its way.
    #[serde(with = "humantime_serde")]
    pub min_age: Duration,
    /// A running sweep's lease not refreshed for this long is taken over, from its checkpoint.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often the lease is refreshed with the checkpoint: at most this much work is walked
    /// again after a crash.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Orphans decided at once.
    pub concurrency: NonZeroUsize,
    /// How much of the source is read.
    pub walk: SweepWalk,
    /// Shards walked at once by this process (each with its own listing streams and up to
    /// `concurrency` decisions).
    pub parallelism: NonZeroUsize,
    /// Folder levels below each prefix that may split it into shards (0: one shard a prefix).
    pub shard_depth: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            schedule: Schedule::builtin("0 0 3 * * *"),
            timezone: None,
            prefixes: Vec::new(),
            action: SweepAction::Report,
            max_deletes: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            min_age: Duration::from_secs(3600),
            lease_ttl: Duration::from_secs(600),
            checkpoint_interval: Duration::from_secs(5),
            concurrency: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            walk: SweepWalk::TargetDriven,
            parallelism: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
            shard_depth: 4,
        }
    }
}

/// Shard walks at once, at most: past this the process, not S3, is the limit.
const MAX_PARALLELISM: usize = 64;
/// Folder levels that may split a prefix (each level is one delimited listing per folder).
const MAX_SHARD_DEPTH: usize = 8;

/// Every pair of prefixes that overlap (one starts with the other), as problems: each key must
/// be swept under one prefix, or one run could count and decide it twice.
pub fn overlaps(prefixes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in prefixes.iter().enumerate() {
        for b in &prefixes[i + 1..] {
            if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                out.push(format!(
                    "`{a}` and `{b}` overlap: each key is swept under one prefix"
                ));
            }
        }
    }
    out
}

impl SweepConfig {
    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut s = SweepConfig::default();
        read_fields!(input, p, s;
            enabled, schedule, timezone, prefixes, action, max_deletes, concurrency, walk,
            parallelism, shard_depth;
            durations: min_age, lease_ttl, checkpoint_interval);
        s
    }

    /// `needs_prefixes`: this run sweeps the configured prefixes (none given on the command
    /// line).
    pub(super) fn validate(&self, needs_prefixes: bool, p: &mut Problems) {
        if needs_prefixes && p.ok(&["sweep.prefixes"]) && self.prefixes.is_empty() {
            p.push(
                "sweep.prefixes",
                "required: the key prefixes to sweep; a whole-bucket sweep is [\"\"], said explicitly",
            );
        }
        for problem in overlaps(&self.prefixes) {
            p.push("sweep.prefixes", problem);
        }
        if p.ok(&["sweep.parallelism"]) && self.parallelism.get() > MAX_PARALLELISM {
            p.push(
                "sweep.parallelism",
                format!("at most {MAX_PARALLELISM} (each shard walk holds two listing streams)"),
            );
        }
        if p.ok(&["sweep.shard_depth"]) && self.shard_depth > MAX_SHARD_DEPTH {
            p.push(
                "sweep.shard_depth",
                format!("at most {MAX_SHARD_DEPTH} folder levels"),
            );
        }
        if p.ok(&["sweep.lease_ttl"]) && self.lease_ttl < Duration::from_secs(10) {
            p.push("sweep.lease_ttl", "must be at least 10s");
        }
        if p.ok(&["sweep.checkpoint_interval", "sweep.lease_ttl"])
            && (self.checkpoint_interval.is_zero() || self.checkpoint_interval * 2 > self.lease_ttl)
        {
            p.push(
                "sweep.checkpoint_interval",
                "must be above zero and at most half of sweep.lease_ttl (each checkpoint refreshes the lease)",
            );
        }
    }
}
