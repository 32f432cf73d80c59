//! `[sync]` and `[state]`: the daily DataSync partition sync and the bucket holding its claims.
//!
//! Also DataSync's filter syntax, which both the configuration check and the planner need:
//! one `SIMPLE_PATTERN` value per execution, patterns joined with `|`, `*` only at the end, at
//! most [`DATASYNC_FILTER_MAX_LEN`] characters.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

use super::account::parse_task_arn;
use super::read::{Problems, SectionInput, read_fields};

/// DataSync's limit on one filter value, in characters.
pub const DATASYNC_FILTER_MAX_LEN: usize = 102_400;

/// A cron expression, parsed once: five fields (`min hour dom month dow`, as crontab and most
/// operators write it: the seconds are 0) or six with the seconds first
/// (`sec min hour dom month dow`).
#[derive(Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        CronParser::builder()
            .seconds(Seconds::Optional)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map(Schedule)
            .map_err(|e| {
                format!(
                    "`{expr}` is not a cron expression: five fields (`min hour dom month dow`) \
                     or six with the seconds first (`sec min hour dom month dow`): {e}"
                )
            })
    }

    /// One of the built-in default expressions, known to parse (a unit test checks each).
    pub(crate) fn builtin(expr: &'static str) -> Schedule {
        Schedule::parse(expr).unwrap_or_else(|e| unreachable!("built-in schedule: {e}"))
    }

    /// The next fire time strictly after `after`, evaluated in `tz` so DST is honoured.
    pub(crate) fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The last fire time at or before `now`, in `tz`.
    pub fn previous_before(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0
            .find_previous_occurrence(&now.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.as_str())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expr = String::deserialize(d)?;
        Schedule::parse(&expr).map_err(serde::de::Error::custom)
    }
}

/// The partition path below a project, with `{yyyy}`, `{MM}` and `{dd}` for the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PartitionTemplate(String);

impl PartitionTemplate {
    pub fn parse(t: &str) -> Result<PartitionTemplate, String> {
        let mut bad = Vec::new();
        for needed in ["{yyyy}", "{MM}", "{dd}"] {
            if !t.contains(needed) {
                bad.push(format!("must contain {needed}: the filter selects one day"));
            }
        }
        let stripped = t
            .replace("{yyyy}", "")
            .replace("{MM}", "")
            .replace("{dd}", "");
        if stripped.contains('{') || stripped.contains('}') {
            bad.push("has an unknown placeholder; use {yyyy}, {MM}, {dd}".into());
        }
        if let Some(c) = forbidden_char(t) {
            bad.push(format!("must not contain `{c}` (DataSync filter syntax)"));
        }
        if t.starts_with('/') || !t.ends_with('/') {
            bad.push("must not begin with `/` and must end with `/`".into());
        }
        if bad.is_empty() {
            Ok(PartitionTemplate(t.to_string()))
        } else {
            Err(format!("`{t}` {}", bad.join("; ")))
        }
    }

    /// The partition path for one date, e.g. `year=2023/month=11/day=06/`.
    pub(crate) fn render(&self, date: NaiveDate) -> String {
        self.0
            .replace("{yyyy}", &format!("{:04}", date.year()))
            .replace("{MM}", &format!("{:02}", date.month()))
            .replace("{dd}", &format!("{:02}", date.day()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PartitionTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        PartitionTemplate::parse(&t).map_err(serde::de::Error::custom)
    }
}

/// The first character DataSync's pattern syntax reserves, if `s` contains one: `|` separates
/// patterns, `*` is only allowed at the end, and `\` escapes; the documented filter syntax
/// gives no way to match any of them literally, so a name holding one is refused (excluded by
/// the operator), never sent to select something else.
pub(crate) fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|c| matches!(c, '*' | '|' | '\\'))
}

/// DataSync SIMPLE_PATTERN rules: starts with `/`, no `|` inside, `*` only as the last char.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("pattern `{p}` must begin with `/`"));
    }
    if p.contains('|') {
        return Err(format!(
            "pattern `{p}` contains `|`, DataSync's pattern separator"
        ));
    }
    if p.contains('\\') {
        return Err(format!(
            "pattern `{p}` contains `\\`, which DataSync's filter syntax reserves"
        ));
    }
    if forbidden_char(p.strip_suffix('*').unwrap_or(p)).is_some() {
        return Err(format!(
            "pattern `{p}` may only have `*` as its last character"
        ));
    }
    if p.len() > DATASYNC_FILTER_MAX_LEN {
        return Err(format!(
            "pattern is {} characters, over DataSync's {DATASYNC_FILTER_MAX_LEN}",
            p.len()
        ));
    }
    Ok(())
}

/// `/`-bounded form of a DataSync location subdirectory: `/`, or `/a/b/`.
pub fn normalized_subdirectory(sub: &str) -> String {
    let trimmed = sub.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FilterMode {
    /// `StartTaskExecution` with an `Includes` override; the task is left untouched.
    Execution,
    /// `UpdateTask` with the `Includes`, then `StartTaskExecution`.
    Task,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncConfig {
    pub enabled: bool,
    /// ARN of the existing DataSync task.
    pub task_arn: String,
    /// Cron expression: `min hour day month weekday`, or with the seconds first.
    pub schedule: Schedule,
    /// IANA timezone in which partitions are cut and the schedule runs.
    pub timezone: Tz,
    /// The target date is today minus `lag_days`.
    pub lag_days: u32,
    /// Also re-sync this many days before the target date.
    pub lookback_days: u32,
    /// Run missed dates after the last successful one, at most this many days back.
    pub catch_up_days: u32,
    /// Prefix under which each child "directory" is a project.
    pub prefix: String,
    /// Partition path below a project.
    pub partition: PartitionTemplate,
    /// Subdirectory of the DataSync source location; patterns are relative to it.
    pub location_subdirectory: String,
    pub include_projects: Vec<String>,
    pub exclude_projects: Vec<String>,
    pub filter_mode: FilterMode,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A claim not updated for this long is considered abandoned.
    #[serde(with = "humantime_serde")]
    pub claim_ttl: Duration,
    /// Attempts for one date before it is given up (a failed or empty date is retried the
    /// same day; follow-ups for incomplete partitions count too).
    pub max_attempts: NonZeroU32,
    /// Wait before retrying a failed or empty date; doubles with each further attempt.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// After the executions succeed, compare the partitions' objects on both sides; a date
    /// with missing or size-mismatched objects gets a follow-up execution, not a success.
    pub verify: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            task_arn: String::new(),
            schedule: Schedule::builtin("0 30 1 * * *"),
            timezone: Tz::UTC,
            lag_days: 1,
            lookback_days: 1,
            catch_up_days: 7,
            prefix: "topics/".into(),
            partition: PartitionTemplate("year={yyyy}/month={MM}/day={dd}/".into()),
            location_subdirectory: "/".into(),
            include_projects: Vec::new(),
            exclude_projects: Vec::new(),
            filter_mode: FilterMode::Execution,
            poll_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(6 * 3600),
            claim_ttl: Duration::from_secs(600),
            max_attempts: NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN),
            retry_interval: Duration::from_secs(15 * 60),
            verify: true,
        }
    }
}

impl SyncConfig {
    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut s = SyncConfig::default();
        read_fields!(input, p, s;
            enabled, task_arn, schedule, timezone, lag_days, lookback_days, catch_up_days,
            prefix, partition, location_subdirectory, include_projects, exclude_projects,
            filter_mode, max_attempts, verify;
            durations: poll_interval, timeout, claim_ttl, retry_interval);
        s
    }

    /// Value checks. `needs_task` is true when this run starts executions.
    pub(super) fn validate(&self, needs_task: bool, p: &mut Problems) {
        if self.task_arn.is_empty() {
            if needs_task && p.ok(&["sync.task_arn"]) {
                p.push(
                    "sync.task_arn",
                    "required: the DataSync task (arn:aws:datasync:REGION:ACCOUNT:task/task-ID)",
                );
            }
        } else if parse_task_arn(&self.task_arn).is_none() {
            p.push(
                "sync.task_arn",
                format!(
                    "`{}` is not a DataSync task ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID)",
                    self.task_arn
                ),
            );
        }
        for (key, value, max) in [
            ("sync.lag_days", self.lag_days, 366),
            ("sync.lookback_days", self.lookback_days, 31),
            ("sync.catch_up_days", self.catch_up_days, 366),
        ] {
            if value > max {
                p.push(key, format!("must be at most {max}"));
            }
        }
        self.validate_layout(p);
        for (key, list) in [
            ("sync.include_projects", &self.include_projects),
            ("sync.exclude_projects", &self.exclude_projects),
        ] {
            for g in list {
                if g.is_empty() || g.contains('/') {
                    p.push(
                        key,
                        format!("`{g}` must be a non-empty project-name glob without `/`"),
                    );
                }
            }
        }
        if p.ok(&["sync.poll_interval"]) && self.poll_interval.is_zero() {
            p.push("sync.poll_interval", "must be greater than zero");
        }
        if p.ok(&["sync.retry_interval"])
            && (self.retry_interval < Duration::from_secs(1)
                || self.retry_interval > Duration::from_secs(24 * 3600))
        {
            p.push("sync.retry_interval", "must be between 1s and 24h");
        }
        if p.ok(&["sync.timeout", "sync.poll_interval"]) && self.timeout <= self.poll_interval {
            p.push("sync.timeout", "must be longer than sync.poll_interval");
        }
        if p.ok(&["sync.claim_ttl", "sync.poll_interval"]) && self.claim_ttl <= self.poll_interval {
            p.push(
                "sync.claim_ttl",
                "must be longer than sync.poll_interval (the claim is refreshed on every poll)",
            );
        }
    }

    /// Prefix and subdirectory: every rendered pattern must be a valid DataSync pattern.
    fn validate_layout(&self, p: &mut Problems) {
        if p.ok(&["sync.prefix"]) {
            let prefix = &self.prefix;
            if prefix.starts_with('/') {
                p.push(
                    "sync.prefix",
                    format!("`{prefix}` must not begin with `/` (it is an S3 key prefix)"),
                );
            }
            if !prefix.is_empty() && !prefix.ends_with('/') {
                p.push("sync.prefix", format!("`{prefix}` must end with `/`"));
            }
            if let Some(c) = forbidden_char(prefix) {
                p.push(
                    "sync.prefix",
                    format!("`{prefix}` must not contain `{c}` (DataSync filter syntax)"),
                );
            }
        }
        if !p.ok(&["sync.location_subdirectory", "sync.prefix"]) {
            return;
        }
        let sub = &self.location_subdirectory;
        if !sub.starts_with('/') {
            p.push(
                "sync.location_subdirectory",
                format!("`{sub}` must begin with `/`"),
            );
        } else {
            let sub = normalized_subdirectory(sub);
            if !format!("/{}", self.prefix).starts_with(&sub) {
                p.push(
                    "sync.location_subdirectory",
                    format!(
                        "sync.prefix `{}` is not inside the DataSync location subdirectory `{sub}`",
                        self.prefix
                    ),
                );
            }
        }
    }
}

/// Where the sync task keeps its per-date claim objects.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateConfig {
    pub bucket: String,
    pub prefix: String,
    /// Identity written into claims; empty means the pod/host name (`HOSTNAME`).
    pub holder_id: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: "s3-reconciler/state/".into(),
            holder_id: String::new(),
        }
    }
}

impl StateConfig {
    pub(super) fn read(input: &mut SectionInput, p: &mut Problems) -> Self {
        let mut s = StateConfig::default();
        read_fields!(input, p, s; bucket, prefix, holder_id);
        s
    }

    pub(super) fn validate(&self, required_by: Option<&str>, p: &mut Problems) {
        if self.bucket.is_empty() {
            if let Some(why) = required_by
                && p.ok(&["state.bucket"])
            {
                p.push("state.bucket", format!("required {why}"));
            }
        } else if let Err(e) = super::account::check_bucket_name(&self.bucket) {
            p.push("state.bucket", e);
        }
        if !self.prefix.is_empty() && !self.prefix.ends_with('/') {
            p.push("state.prefix", "must end with `/`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn schedule_in_zone_and_across_dst() {
        let cron = Schedule::parse("0 30 1 * * *").unwrap();
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2023, 11, 6, 15, 0, 0).unwrap(); // 00:00 Seoul
        let next = cron.next_after(seoul, now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2023, 11, 6, 16, 30, 0).unwrap());
        assert_eq!(
            cron.previous_before(seoul, next).unwrap(),
            next,
            "a fire time is its own previous"
        );
        let five = Schedule::parse("30 1 * * *").unwrap();
        assert_eq!(
            five.next_after(seoul, now),
            Some(next),
            "five fields: minute first, the seconds are 0"
        );
        for bad in [
            "30 1 * *",
            "0 0 30 1 * * * *",
            "61 1 * * *",
            "0 30 25 * * *",
            "",
        ] {
            let e = Schedule::parse(bad).err().unwrap_or_default();
            assert!(e.contains("five fields"), "{bad:?}: {e}");
        }
        // DST: 01:30 in New York is 05:30 UTC in summer and 06:30 UTC in winter.
        let ny: Tz = "America/New_York".parse().unwrap();
        let summer = cron.next_after(ny, Utc.with_ymd_and_hms(2024, 7, 1, 12, 0, 0).unwrap());
        let winter = cron.next_after(ny, Utc.with_ymd_and_hms(2024, 12, 1, 12, 0, 0).unwrap());
        assert_eq!(summer.unwrap().format("%H:%M").to_string(), "05:30");
        assert_eq!(winter.unwrap().format("%H:%M").to_string(), "06:30");
    }

    #[test]
    fn partition_templates() {
        let t = PartitionTemplate::parse("year={yyyy}/month={MM}/day={dd}/").unwrap();
        assert_eq!(
            t.render(NaiveDate::from_ymd_opt(2023, 11, 6).unwrap()),
            "year=2023/month=11/day=06/"
        );
        let dt = PartitionTemplate::parse("dt={yyyy}-{MM}-{dd}/").unwrap();
        assert_eq!(
            dt.render(NaiveDate::from_ymd_opt(2024, 1, 9).unwrap()),
            "dt=2024-01-09/"
        );
        for bad in [
            "year={yyyy}/month={MM}/day={d}/",
            "year={yyyy}/month={MM}/day={dd}/*",
            "/year={yyyy}/month={MM}/day={dd}/",
            "year={yyyy}/",
        ] {
            assert!(PartitionTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pattern_rules() {
        assert!(check_pattern("/a/b/*").is_ok());
        assert!(check_pattern("a/b/*").is_err());
        assert!(check_pattern("/a/*/b/*").is_err());
        assert!(check_pattern("/a/b|c/*").is_err());
        assert!(check_pattern("/a/**").is_err());
        assert_eq!(normalized_subdirectory("/topics"), "/topics/");
        assert_eq!(normalized_subdirectory("//"), "/");
    }

    #[test]
    fn layout_problems_name_their_keys() {
        let s = SyncConfig {
            prefix: "/topics".into(),
            location_subdirectory: "/elsewhere/".into(),
            ..Default::default()
        };
        let mut p = Problems::default();
        s.validate(false, &mut p);
        let keys: Vec<&str> = p.list.iter().map(|x| x.key.as_str()).collect();
        assert!(keys.contains(&"sync.prefix"), "{keys:?}");
        let s = SyncConfig {
            location_subdirectory: "/elsewhere/".into(),
            ..Default::default()
        };
        let mut p = Problems::default();
        s.validate(false, &mut p);
        assert_eq!(p.list[0].key, "sync.location_subdirectory");
        let mut p = Problems::default();
        SyncConfig::default().validate(false, &mut p);
        assert!(p.list.is_empty(), "{:?}", p.list);
    }
}
