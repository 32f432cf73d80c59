//! Configuration: layered loading, validation that names every problem, and redacted rendering.
//!
//! Layers, later wins: built-in defaults, the TOML file given by `--config` (or `S3R_CONFIG`),
//! then environment variables `S3R__SECTION__KEY`. Each section is deserialized on its own so
//! that a type error in `[purge]` does not hide an unknown key in `[sync]`; every problem is
//! collected with its key path and reported at once (the CLI exits 64, `EX_USAGE`-style).

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Environment prefix for overrides: `S3R__PURGE__QUEUE_URL` sets `purge.queue_url`.
pub const ENV_PREFIX: &str = "S3R";

/// DataSync's limit on one filter value, in characters.
pub const DATASYNC_FILTER_MAX_LEN: usize = 102_400;

/// The whole configuration, after defaults, file and environment were merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub source: BucketSide,
    pub target: BucketSide,
    pub control: ControlPlane,
    pub aws: AwsSettings,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub sync: SyncConfig,
    pub purge: PurgeConfig,
    pub state: StateConfig,
}

/// How to reach one AWS account: region, endpoint and credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Account {
    /// AWS region, e.g. `ap-northeast-2`.
    pub region: String,
    /// Endpoint override (an emulator, a VPC endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Role assumed on top of the default credential chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// External id presented when assuming `role_arn` (treated as a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// One side of the reconciliation: a bucket and how to reach its account.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BucketSide {
    pub bucket: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Path-style addressing; defaults to true whenever `endpoint_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
}

impl BucketSide {
    /// Emulators and most S3-compatible endpoints only speak path-style.
    pub fn path_style(&self) -> bool {
        self.force_path_style.unwrap_or(self.endpoint_url.is_some())
    }

    /// The account part of this side.
    pub fn account(&self) -> Account {
        Account {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// Where SQS and DataSync live. A field left empty falls back to `[source]`'s account,
/// since the seeds run the queue and the DataSync task in the source account.
pub type ControlPlane = Account;

impl Config {
    /// The account settings for SQS and DataSync: `[control]` over `[source]`.
    pub fn control_account(&self) -> Account {
        let src = self.source.account();
        let c = &self.control;
        let overridden = !c.region.is_empty()
            || c.endpoint_url.is_some()
            || c.profile.is_some()
            || c.role_arn.is_some();
        if !overridden {
            return src;
        }
        Account {
            region: if c.region.is_empty() {
                src.region
            } else {
                c.region.clone()
            },
            endpoint_url: c.endpoint_url.clone().or(src.endpoint_url),
            profile: c.profile.clone().or(src.profile),
            role_arn: c.role_arn.clone().or(src.role_arn),
            external_id: if c.role_arn.is_some() {
                c.external_id.clone()
            } else {
                src.external_id
            },
        }
    }
}

/// SDK-wide settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AwsSettings {
    /// Attempts per request in the SDK's standard retry mode (1 = no retry). The SDK is the
    /// only layer that retries a request; the tasks retry whole units of work (a date, a message).
    pub max_attempts: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self { max_attempts: 5 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9090".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ShutdownConfig {
    /// Time allowed for in-flight work after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(25),
        }
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SyncConfig {
    pub enabled: bool,
    /// ARN of the existing DataSync task.
    pub task_arn: String,
    /// Cron expression with seconds (`sec min hour day month weekday`).
    pub schedule: String,
    /// IANA timezone in which partitions are cut and the schedule runs.
    pub timezone: String,
    /// The target date is today minus `lag_days`.
    pub lag_days: u32,
    /// Also re-sync this many days before the target date.
    pub lookback_days: u32,
    /// Run missed dates after the last successful one, at most this many days back.
    pub catch_up_days: u32,
    /// Prefix under which each child "directory" is a project.
    pub prefix: String,
    /// Partition path below a project; `{yyyy}`, `{MM}`, `{dd}` are replaced.
    pub partition: String,
    /// Subdirectory of the DataSync source location; patterns are relative to it.
    pub location_subdirectory: String,
    #[serde(default)]
    pub include_projects: Vec<String>,
    #[serde(default)]
    pub exclude_projects: Vec<String>,
    pub filter_mode: FilterMode,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A claim not updated for this long is considered abandoned.
    #[serde(with = "humantime_serde")]
    pub claim_ttl: Duration,
    /// Executions started for one date before it is given up.
    pub max_attempts: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            task_arn: String::new(),
            schedule: "0 30 1 * * *".into(),
            timezone: "UTC".into(),
            lag_days: 1,
            lookback_days: 0,
            catch_up_days: 7,
            prefix: "topics/".into(),
            partition: "year={yyyy}/month={MM}/day={dd}/".into(),
            location_subdirectory: "/".into(),
            include_projects: Vec::new(),
            exclude_projects: Vec::new(),
            filter_mode: FilterMode::Execution,
            poll_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(6 * 3600),
            claim_ttl: Duration::from_secs(600),
            max_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PurgeMode {
    /// Purge the target's copy only once the source holds nothing at all for the key.
    WhenSourceEmpty,
    /// Delete each target version id the source no longer has (S3 Replication keeps ids).
    MirrorVersions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PurgeConfig {
    pub enabled: bool,
    pub queue_url: String,
    /// Messages processed at once.
    pub concurrency: usize,
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
    /// Event names acted on, as S3 spells them (`ObjectRemoved:Delete`).
    pub events: Vec<String>,
    /// Key prefixes in scope; empty means every key.
    #[serde(default)]
    pub prefixes: Vec<String>,
    pub mode: PurgeMode,
    pub dry_run: bool,
    /// Refuse (and fail the message) when one key has more target entries than this.
    pub max_versions_per_key: usize,
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
            concurrency: 16,
            visibility_timeout: Duration::from_secs(60),
            wait_time: Duration::from_secs(20),
            retry_backoff: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(900),
            events: vec![
                "ObjectRemoved:Delete".into(),
                "LifecycleExpiration:Delete".into(),
            ],
            prefixes: Vec::new(),
            mode: PurgeMode::WhenSourceEmpty,
            dry_run: false,
            max_versions_per_key: 10_000,
            race_guard_margin: Duration::from_secs(5),
        }
    }
}

/// Where the sync task keeps its per-date claim objects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
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

/// Event names S3 can send for removals; `purge.events` must name only these.
pub const KNOWN_REMOVAL_EVENTS: &[&str] = &[
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
    "LifecycleExpiration:Delete",
    "LifecycleExpiration:DeleteMarkerCreated",
];

/// One configuration problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem(s)):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

const SECTIONS: &[&str] = &[
    "source", "target", "control", "aws", "http", "log", "shutdown", "sync", "purge", "state",
];

impl Config {
    /// Loads defaults, then `file` (if any), then `S3R__*` variables from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Problems(Vec::new());
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                problems.push("--config", format!("{}: no such file", path.display()));
                return Err(ConfigError {
                    problems: problems.0,
                });
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let env_map: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("purge.events")
                .with_list_parse_key("purge.prefixes")
                .with_list_parse_key("sync.include_projects")
                .with_list_parse_key("sync.exclude_projects")
                .try_parsing(true)
                .source(Some(env_map)),
        );
        let merged = match builder.build() {
            Ok(c) => c,
            Err(e) => {
                problems.push(
                    file.map(|p| p.display().to_string())
                        .unwrap_or_else(|| "environment".into()),
                    e.to_string(),
                );
                return Err(ConfigError {
                    problems: problems.0,
                });
            }
        };
        let table =
            match merged.try_deserialize::<std::collections::HashMap<String, config::Value>>() {
                Ok(t) => t,
                Err(e) => {
                    problems.push("<root>", e.to_string());
                    return Err(ConfigError {
                        problems: problems.0,
                    });
                }
            };
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                problems.push(key.clone(), "unknown section");
            }
        }
        let section = |name: &str| table.get(name).cloned();
        let cfg = Config {
            source: parse_section("source", section("source"), &mut problems),
            target: parse_section("target", section("target"), &mut problems),
            control: parse_section("control", section("control"), &mut problems),
            aws: parse_section("aws", section("aws"), &mut problems),
            http: parse_section("http", section("http"), &mut problems),
            log: parse_section("log", section("log"), &mut problems),
            shutdown: parse_section("shutdown", section("shutdown"), &mut problems),
            sync: parse_section("sync", section("sync"), &mut problems),
            purge: parse_section("purge", section("purge"), &mut problems),
            state: parse_section("state", section("state"), &mut problems),
        };
        cfg.validate_into(&mut problems);
        if problems.0.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError {
                problems: problems.0,
            })
        }
    }

    /// Semantic checks; returns every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems(Vec::new());
        self.validate_into(&mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: problems.0,
            })
        }
    }

    fn validate_into(&self, p: &mut Problems) {
        validate_side("source", &self.source, p);
        validate_side("target", &self.target, p);
        if !self.source.bucket.is_empty() && self.source.bucket == self.target.bucket {
            p.push("target.bucket", "must differ from source.bucket");
        }
        validate_account("control", &self.control, false, p);
        if self.aws.max_attempts == 0 || self.aws.max_attempts > 20 {
            p.push("aws.max_attempts", "must be between 1 and 20");
        }
        if SocketAddr::from_str(&self.http.listen).is_err() {
            p.push(
                "http.listen",
                format!(
                    "`{}` is not an IP:port address (e.g. 0.0.0.0:9090)",
                    self.http.listen
                ),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            p.push(
                "log.level",
                format!("`{}` is not a valid tracing filter", self.log.level),
            );
        }
        if self.shutdown.grace.is_zero() || self.shutdown.grace > Duration::from_secs(3600) {
            p.push("shutdown.grace", "must be between 1s and 1h");
        }
        if !self.sync.enabled && !self.purge.enabled {
            p.push(
                "sync.enabled",
                "no task is enabled: set sync.enabled or purge.enabled to true",
            );
        }
        if self.sync.enabled {
            self.validate_sync(p);
        }
        if self.purge.enabled {
            self.validate_purge(p);
        }
    }

    fn validate_sync(&self, p: &mut Problems) {
        let s = &self.sync;
        if !is_datasync_task_arn(&s.task_arn) {
            p.push(
                "sync.task_arn",
                format!(
                    "`{}` is not a DataSync task ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID)",
                    s.task_arn
                ),
            );
        }
        if let Err(e) = crate::sync::plan::validate_schedule(&s.schedule) {
            p.push("sync.schedule", e);
        }
        if s.timezone.parse::<chrono_tz::Tz>().is_err() {
            p.push(
                "sync.timezone",
                format!("`{}` is not an IANA timezone name", s.timezone),
            );
        }
        if s.lag_days > 366 {
            p.push("sync.lag_days", "must be at most 366");
        }
        if s.lookback_days > 31 {
            p.push("sync.lookback_days", "must be at most 31");
        }
        if s.catch_up_days > 366 {
            p.push("sync.catch_up_days", "must be at most 366");
        }
        for (key, msg) in crate::sync::plan::validate_layout(s) {
            p.push(key, msg);
        }
        for (key, list) in [
            ("sync.include_projects", &s.include_projects),
            ("sync.exclude_projects", &s.exclude_projects),
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
        if s.poll_interval.is_zero() {
            p.push("sync.poll_interval", "must be greater than zero");
        }
        if s.timeout <= s.poll_interval {
            p.push("sync.timeout", "must be longer than sync.poll_interval");
        }
        if s.claim_ttl <= s.poll_interval {
            p.push(
                "sync.claim_ttl",
                "must be longer than sync.poll_interval (the claim is refreshed on every poll)",
            );
        }
        if s.max_attempts == 0 {
            p.push("sync.max_attempts", "must be at least 1");
        }
        if self.state.bucket.is_empty() {
            p.push(
                "state.bucket",
                "required when sync.enabled: claims that stop two replicas double-running a date live there",
            );
        } else if let Err(e) = check_bucket_name(&self.state.bucket) {
            p.push("state.bucket", e);
        }
        if !self.state.prefix.is_empty() && !self.state.prefix.ends_with('/') {
            p.push("state.prefix", "must end with `/`");
        }
    }

    fn validate_purge(&self, p: &mut Problems) {
        let c = &self.purge;
        if !(c.queue_url.starts_with("https://") || c.queue_url.starts_with("http://"))
            || c.queue_url.split('/').count() < 5
        {
            p.push(
                "purge.queue_url",
                format!(
                    "`{}` is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
                    c.queue_url
                ),
            );
        }
        if c.concurrency == 0 || c.concurrency > 256 {
            p.push("purge.concurrency", "must be between 1 and 256");
        }
        if c.visibility_timeout < Duration::from_secs(2)
            || c.visibility_timeout > Duration::from_secs(12 * 3600)
        {
            p.push(
                "purge.visibility_timeout",
                "must be between 2s and 12h (SQS limits)",
            );
        }
        if c.wait_time > Duration::from_secs(20) {
            p.push(
                "purge.wait_time",
                "must be at most 20s (SQS long-poll limit)",
            );
        }
        if c.retry_backoff.is_zero() || c.retry_backoff > c.retry_backoff_max {
            p.push(
                "purge.retry_backoff",
                "must be greater than zero and at most purge.retry_backoff_max",
            );
        }
        if c.retry_backoff_max > Duration::from_secs(12 * 3600) {
            p.push("purge.retry_backoff_max", "must be at most 12h (SQS limit)");
        }
        if c.events.is_empty() {
            p.push("purge.events", "must name at least one event");
        }
        for e in &c.events {
            let name = e.strip_prefix("s3:").unwrap_or(e);
            if !KNOWN_REMOVAL_EVENTS.contains(&name) {
                p.push(
                    "purge.events",
                    format!(
                        "`{e}` is not a removal event; expected one of {}",
                        KNOWN_REMOVAL_EVENTS.join(", ")
                    ),
                );
            }
        }
        if c.max_versions_per_key == 0 {
            p.push("purge.max_versions_per_key", "must be at least 1");
        }
        if c.race_guard_margin < Duration::from_secs(1) {
            p.push(
                "purge.race_guard_margin",
                "must be at least 1s: S3 reports LastModified with one-second precision",
            );
        }
    }

    /// The effective configuration as TOML, with secrets replaced by `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# could not render configuration: {e}\n"),
        };
        redact(&mut value);
        toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# render error: {e}\n"))
    }

    /// Normalized purge event names (without the `s3:` prefix).
    pub fn purge_events(&self) -> BTreeSet<String> {
        self.purge
            .events
            .iter()
            .map(|e| e.strip_prefix("s3:").unwrap_or(e).to_string())
            .collect()
    }
}

fn parse_section<T: DeserializeOwned + Default>(
    name: &str,
    value: Option<config::Value>,
    problems: &mut Problems,
) -> T {
    let Some(value) = value else {
        return T::default();
    };
    let mut unknown = Vec::new();
    let result: Result<T, _> = serde_ignored::deserialize(value, |path| {
        unknown.push(path.to_string());
    });
    for path in unknown {
        problems.push(format!("{name}.{path}"), "unknown key");
    }
    match result {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            // serde reports `unknown field `x`` for deny_unknown_fields: name the key path.
            if let Some(field) = msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                problems.push(format!("{name}.{field}"), "unknown key");
            } else {
                problems.push(name.to_string(), msg);
            }
            T::default()
        }
    }
}

fn validate_side(name: &str, side: &BucketSide, p: &mut Problems) {
    if side.bucket.is_empty() {
        p.push(format!("{name}.bucket"), "required");
    } else if let Err(e) = check_bucket_name(&side.bucket) {
        p.push(format!("{name}.bucket"), e);
    }
    validate_account(name, &side.account(), true, p);
}

fn validate_account(name: &str, a: &Account, region_required: bool, p: &mut Problems) {
    if a.region.is_empty() {
        if region_required {
            p.push(format!("{name}.region"), "required (e.g. ap-northeast-2)");
        }
    } else if !a
        .region
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        p.push(
            format!("{name}.region"),
            format!("`{}` is not a region name", a.region),
        );
    }
    if let Some(ep) = &a.endpoint_url
        && !(ep.starts_with("http://") || ep.starts_with("https://"))
    {
        p.push(
            format!("{name}.endpoint_url"),
            format!("`{ep}` must start with http:// or https://"),
        );
    }
    if let Some(role) = &a.role_arn
        && !is_role_arn(role)
    {
        p.push(
            format!("{name}.role_arn"),
            "is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
        );
    }
    if a.external_id.is_some() && a.role_arn.is_none() {
        p.push(
            format!("{name}.external_id"),
            "only makes sense together with role_arn",
        );
    }
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}

fn is_datasync_task_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "datasync"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("task/task-")
}

/// S3 bucket naming rules (the subset that catches typos: length, charset, edges).
pub fn check_bucket_name(b: &str) -> Result<(), String> {
    if b.len() < 3 || b.len() > 63 {
        return Err(format!("`{b}` must be 3 to 63 characters long"));
    }
    if !b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!(
            "`{b}` may contain only lowercase letters, digits, `-` and `.`"
        ));
    }
    let first = b.chars().next().unwrap_or('-');
    let last = b.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(format!("`{b}` must begin and end with a letter or digit"));
    }
    Ok(())
}

/// Keys whose values never leave the process in clear.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "external_id",
        "secret",
        "password",
        "token",
        "credential",
        "access_key",
        "session",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => {
            for (k, val) in t.iter_mut() {
                if is_secret_key(k) && !matches!(val, toml::Value::Table(_)) {
                    *val = toml::Value::String("<redacted>".into());
                } else {
                    redact(val);
                }
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    const MINIMAL: &str = r#"
[source]
bucket = "source-s3-bucket"
region = "ap-northeast-2"
[target]
bucket = "destination-s3-bucket"
region = "ap-northeast-2"
[purge]
enabled = true
queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_override() {
        let f = file(MINIMAL);
        let cfg = Config::load_with_env(
            Some(f.path()),
            env(&[
                (
                    "S3R__PURGE__QUEUE_URL",
                    "https://sqs.ap-northeast-2.amazonaws.com/111111111111/other",
                ),
                ("S3R__PURGE__CONCURRENCY", "4"),
                ("S3R__SHUTDOWN__GRACE", "5s"),
                ("S3R_CONFIG", "ignored.toml"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.source.bucket, "source-s3-bucket");
        assert!(cfg.purge.queue_url.ends_with("/other"));
        assert_eq!(cfg.purge.concurrency, 4);
        assert_eq!(cfg.shutdown.grace, Duration::from_secs(5));
        // Defaults survive where neither layer spoke.
        assert_eq!(cfg.http.listen, "0.0.0.0:9090");
        assert_eq!(cfg.purge.visibility_timeout, Duration::from_secs(60));
    }

    #[test]
    fn env_lists_are_split() {
        let f = file(MINIMAL);
        let cfg = Config::load_with_env(
            Some(f.path()),
            env(&[(
                "S3R__PURGE__EVENTS",
                "ObjectRemoved:Delete,ObjectRemoved:DeleteMarkerCreated",
            )]),
        )
        .unwrap();
        assert_eq!(cfg.purge.events.len(), 2);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let f = file(
            r#"
[source]
bucket = "same-bucket"
region = "ap-northeast-2"
bogus = 1
[target]
bucket = "same-bucket"
region = ""
[http]
listen = "not-an-address"
[purge]
enabled = true
queue_url = "nope"
concurency = 3
events = ["ObjectCreated:Put"]
[shutdown]
grace = "0s"
[mystery]
x = 1
"#,
        );
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "source.bogus",
            "target.bucket",
            "target.region",
            "http.listen",
            "purge.queue_url",
            "purge.concurency",
            "purge.events",
            "shutdown.grace",
            "mystery",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("target.bucket: must differ from source.bucket"));
    }

    #[test]
    fn type_errors_name_their_section_and_do_not_hide_others() {
        let f = file(
            r#"
[source]
bucket = "a-bucket"
region = "ap-northeast-2"
[target]
bucket = "b-bucket"
region = "ap-northeast-2"
[purge]
enabled = true
queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q"
visibility_timeout = "soon"
[log]
format = "xml"
"#,
        );
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"purge"), "{keys:?}");
        assert!(keys.contains(&"log"), "{keys:?}");
    }

    #[test]
    fn missing_file_is_named() {
        let err =
            Config::load_with_env(Some(Path::new("/nonexistent/x.toml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.toml"));
    }

    #[test]
    fn redaction_hides_external_id() {
        let f = file(&format!(
            "{MINIMAL}\n[control]\nrole_arn = \"arn:aws:iam::111111111111:role/r\"\nexternal_id = \"s3cr3t-ext\"\n"
        ));
        let cfg = Config::load_with_env(Some(f.path()), env(&[])).unwrap();
        let out = cfg.to_redacted_toml();
        assert!(!out.contains("s3cr3t-ext"), "{out}");
        assert!(out.contains("external_id = \"<redacted>\""), "{out}");
        assert!(out.contains("source-s3-bucket"));
    }

    #[test]
    fn path_style_defaults_with_endpoint() {
        let mut side = BucketSide::default();
        assert!(!side.path_style());
        side.endpoint_url = Some("http://127.0.0.1:5000".into());
        assert!(side.path_style());
        side.force_path_style = Some(false);
        assert!(!side.path_style());
    }

    #[test]
    fn shipped_config_files_are_valid() {
        for name in ["default.toml", "local.toml", "example-production.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config")
                .join(name);
            let res = Config::load_with_env(Some(&path), env(&[]));
            if name == "default.toml" {
                // The defaults enable no task on purpose: the operator must choose.
                let err = res.unwrap_err();
                assert!(
                    err.problems.iter().all(|p| p.key != "sync.schedule"),
                    "{err}"
                );
            } else {
                res.unwrap_or_else(|e| panic!("config/{name}: {e}"));
            }
        }
    }

    #[test]
    fn bucket_names() {
        assert!(check_bucket_name("source-s3-bucket").is_ok());
        assert!(check_bucket_name("Destination-s3-bucket").is_err());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("-abc").is_err());
    }
}
