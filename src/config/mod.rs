//! Configuration: layered loading into typed values, validation that names every problem at
//! once, and redacted rendering.
//!
//! Layers, later wins: built-in defaults, the TOML file given by `--config` (or `S3R_CONFIG`),
//! then environment variables `S3R__SECTION__KEY`. Every key is read on its own into its type
//! ([`read`]), so one bad value never hides another; every problem carries its key path and the
//! CLI exits 64 (`EX_USAGE`). What a run requires (a task ARN, a queue URL) depends on what it
//! does: see [`Purpose`].

mod account;
mod purge;
mod read;
mod runtime;
mod sweep;
mod sync;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use account::{Account, BucketSide, TaskArn, check_bucket_name, parse_task_arn};
pub use purge::{MarkerOnlySource, PurgeConfig, PurgeMode, RemovalEventName, strip_s3_prefix};
pub use read::Problem;
pub use runtime::{
    AwsSettings, HttpConfig, LogConfig, LogFormat, PreflightConfig, ReadinessConfig, ShutdownConfig,
};
pub use sweep::{SweepAction, SweepConfig, SweepWalk, overlaps};
pub use sync::{
    DATASYNC_FILTER_MAX_LEN, FilterMode, PartitionTemplate, Schedule, StateConfig, SyncConfig,
    check_pattern, normalized_subdirectory,
};

use read::{Problems, SectionInput, read_fields};

/// Environment prefix for overrides: `S3R__PURGE__QUEUE_URL` sets `purge.queue_url`.
pub(crate) const ENV_PREFIX: &str = "S3R";

/// The whole configuration, after defaults, file and environment were merged.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Config {
    pub source: BucketSide,
    pub target: BucketSide,
    /// Where SQS and DataSync are called; unset fields fall back to `[source]`.
    pub control: Account,
    pub aws: AwsSettings,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub readiness: ReadinessConfig,
    pub preflight: PreflightConfig,
    pub sync: SyncConfig,
    pub state: StateConfig,
    pub purge: PurgeConfig,
    pub sweep: SweepConfig,
}

/// What the configuration is loaded for: each command requires only the settings it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `run`, `check-config`: every enabled task with its settings, and at least one task.
    Daemon,
    /// `sync`: discovery in the source, DataSync executions and claims.
    Sync,
    /// `sync --dry-run`: discovery and planning only.
    SyncPlan,
    /// `verify`: discovery, and both buckets' partitions.
    Verify,
    /// `purge KEY...`: both buckets.
    Purge,
    /// `sweep`: both buckets, the state bucket, and `sweep.prefixes` unless the command line
    /// names prefixes.
    Sweep { prefixes_given: bool },
    /// `healthcheck`: only `http.listen`.
    Healthcheck,
}

/// Every problem found, reported together.
#[derive(Debug, thiserror::Error)]
pub(crate) struct ConfigError {
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

impl Config {
    /// Loads defaults, then `file` (if any), then `S3R__*` variables from the process
    /// environment, and checks what `purpose` requires.
    pub(crate) fn load(file: Option<&Path>, purpose: Purpose) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars(), purpose)
    }

    /// As [`Config::load`], with the environment given explicitly (tests).
    pub(crate) fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let tables = match file.map(read_file) {
            None => toml::Table::new(),
            Some(Ok(t)) => t,
            Some(Err(problem)) => {
                return Err(ConfigError {
                    problems: vec![problem],
                });
            }
        };
        let env = read::env_sections(ENV_PREFIX, env, &mut p);
        let mut inputs = Inputs { tables, env };
        let mut cfg = Config::default();
        // Each section: read its keys into `cfg`, then report the keys nobody read.
        macro_rules! section {
            ($name:literal, |$i:ident| $read:expr) => {{
                let mut $i = inputs.take($name, &mut p);
                $read;
                $i.finish(&mut p);
            }};
        }
        section!("source", |i| cfg.source = BucketSide::read(&mut i, &mut p));
        section!("target", |i| cfg.target = BucketSide::read(&mut i, &mut p));
        section!("control", |i| cfg.control = Account::read(&mut i, &mut p));
        section!("aws", |i| read_fields!(i, &mut p, cfg.aws; max_attempts;
            durations: connect_timeout, read_timeout, attempt_timeout, operation_timeout));
        section!("http", |i| read_fields!(i, &mut p, cfg.http; listen));
        section!("log", |i| read_fields!(i, &mut p, cfg.log; format, level));
        section!(
            "shutdown",
            |i| read_fields!(i, &mut p, cfg.shutdown; ; durations: grace)
        );
        section!("readiness", |i| read_fields!(i, &mut p, cfg.readiness;
            max_consecutive_failures, max_failure_ratio, failure_window;
            durations: stall_after));
        section!(
            "preflight",
            |i| read_fields!(i, &mut p, cfg.preflight; enabled;
            durations: interval)
        );
        section!("sync", |i| cfg.sync = SyncConfig::read(&mut i, &mut p));
        section!("state", |i| cfg.state = StateConfig::read(&mut i, &mut p));
        section!("purge", |i| cfg.purge = PurgeConfig::read(&mut i, &mut p));
        section!("sweep", |i| cfg.sweep = SweepConfig::read(&mut i, &mut p));
        // Whatever no section took is not a section.
        for name in inputs.tables.keys().chain(inputs.env.keys()) {
            p.push(name.clone(), "unknown section");
        }
        cfg.validate(purpose, &mut p);
        if p.list.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { problems: p.list })
        }
    }

    fn validate(&self, purpose: Purpose, p: &mut Problems) {
        let daemon = purpose == Purpose::Daemon;
        let sync_runs = purpose == Purpose::Sync || (daemon && self.sync.enabled);
        let verifies = purpose == Purpose::Verify;
        let sync_plans = sync_runs || verifies || purpose == Purpose::SyncPlan;
        let sweeps = matches!(purpose, Purpose::Sweep { .. }) || daemon && self.sweep.enabled;
        let sweep_prefixes = sweeps
            && !matches!(
                purpose,
                Purpose::Sweep {
                    prefixes_given: true
                }
            );
        let purges = daemon && self.purge.enabled || purpose == Purpose::Purge || sweeps;
        let needs_source = daemon || sync_plans || purges;
        let needs_target = daemon || purges || verifies;
        self.source.validate("source", needs_source, p);
        self.target.validate("target", needs_target, p);
        if !self.source.bucket.is_empty() && self.source.bucket == self.target.bucket {
            p.push("target.bucket", "must differ from source.bucket");
        }
        self.control.validate("control", false, p);
        self.validate_runtime(p);
        if daemon
            && p.ok(&["sync.enabled", "purge.enabled", "sweep.enabled"])
            && !self.sync.enabled
            && !self.purge.enabled
            && !self.sweep.enabled
        {
            p.push(
                "sync.enabled",
                "no task is enabled: set sync.enabled, purge.enabled or sweep.enabled to true",
            );
        }
        self.sync.validate(sync_runs, p);
        let state_needed_by = if sync_runs {
            Some("for sync: claims that stop two replicas double-running a date live there")
        } else if sweeps {
            Some(
                "for sweep: leases and checkpoints that stop two replicas sweeping a prefix at once live there",
            )
        } else {
            None
        };
        self.state.validate(state_needed_by, p);
        self.sweep.validate(sweep_prefixes, p);
        self.purge.validate(daemon && self.purge.enabled, p);
        if self.purge.mode == PurgeMode::MirrorVersions && purges {
            self.validate_mirror(sync_runs, sweep_prefixes, p);
        }
        if purges || daemon {
            self.validate_timeouts_against_long_polls(p);
        }
    }

    /// `mirror-versions` deletes replicas of versions the source lost. It must be told what
    /// S3 Replication covers (`purge.prefixes`, `[""]` for the whole bucket), the sweep must
    /// stay inside it, and DataSync must not write there: its copies get new version ids.
    fn validate_mirror(&self, sync_runs: bool, sweep_prefixes: bool, p: &mut Problems) {
        let scope = &self.purge.prefixes;
        if scope.is_empty() {
            p.push(
                "purge.prefixes",
                "required with purge.mode = \"mirror-versions\": the key prefixes S3 Replication covers ([\"\"] for the whole bucket), said explicitly",
            );
            return;
        }
        if sync_runs && p.ok(&["sync.prefix"]) {
            let sync = &self.sync.prefix;
            if let Some(r) = scope
                .iter()
                .find(|r| sync.starts_with(r.as_str()) || r.starts_with(sync.as_str()))
            {
                p.push(
                    "purge.mode",
                    format!(
                        "\"mirror-versions\" cannot run with the DataSync sync on the same keys: sync.prefix `{sync}` overlaps purge.prefixes `{r}`, and DataSync's copies have their own version ids; use \"when-source-empty\", or sync elsewhere"
                    ),
                );
            }
        }
        if sweep_prefixes {
            for problem in self.outside_replication(&self.sweep.prefixes) {
                p.push("sweep.prefixes", problem);
            }
        }
    }

    /// In `mirror-versions`, the sweep prefixes not inside `purge.prefixes`.
    fn outside_replication(&self, prefixes: &[String]) -> Vec<String> {
        if self.purge.mode != PurgeMode::MirrorVersions || self.purge.prefixes.is_empty() {
            return Vec::new();
        }
        prefixes
            .iter()
            .filter(|sp| !self.purge.prefixes.iter().any(|r| sp.starts_with(r.as_str())))
            .map(|sp| {
                format!(
                    "`{sp}` is outside purge.prefixes, which say what replication covers in \"mirror-versions\" mode"
                )
            })
            .collect()
    }

    /// Checks prefixes given to `sweep --prefix` as the configured ones are checked.
    pub(crate) fn check_sweep_prefixes(&self, prefixes: &[String]) -> Result<(), ConfigError> {
        let problems: Vec<Problem> = overlaps(prefixes)
            .into_iter()
            .chain(self.outside_replication(prefixes))
            .map(|message| Problem {
                key: "--prefix".into(),
                message,
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    fn validate_runtime(&self, p: &mut Problems) {
        if self.aws.max_attempts.get() > 20 {
            p.push("aws.max_attempts", "must be at most 20");
        }
        for (key, d) in [
            ("aws.connect_timeout", self.aws.connect_timeout),
            ("aws.read_timeout", self.aws.read_timeout),
            ("aws.attempt_timeout", self.aws.attempt_timeout),
            ("aws.operation_timeout", self.aws.operation_timeout),
        ] {
            if p.ok(&[key]) && (d.is_zero() || d > Duration::from_secs(3600)) {
                p.push(key, "must be between 1ms and 1h");
            }
        }
        if p.ok(&["aws.operation_timeout", "aws.attempt_timeout"])
            && self.aws.operation_timeout < self.aws.attempt_timeout
        {
            p.push(
                "aws.operation_timeout",
                "must be at least aws.attempt_timeout (it covers every attempt of an operation)",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            p.push(
                "log.level",
                format!("`{}` is not a valid tracing filter", self.log.level),
            );
        }
        let ratio = self.readiness.max_failure_ratio;
        if p.ok(&["readiness.max_failure_ratio"]) && !(ratio > 0.0 && ratio <= 1.0) {
            p.push(
                "readiness.max_failure_ratio",
                format!("{ratio} must be above 0 and at most 1"),
            );
        }
        if p.ok(&["readiness.stall_after", "sync.poll_interval"])
            && self.sync.enabled
            && self.readiness.stall_after <= self.sync.poll_interval
        {
            p.push(
                "readiness.stall_after",
                "must be longer than sync.poll_interval: a watched execution shows progress once per poll",
            );
        }
        if p.ok(&["preflight.interval"]) && self.preflight.interval < Duration::from_secs(10) {
            p.push("preflight.interval", "must be at least 10s");
        }
        if p.ok(&["shutdown.grace"])
            && (self.shutdown.grace.is_zero() || self.shutdown.grace > Duration::from_secs(3600))
        {
            p.push("shutdown.grace", "must be between 1s and 1h");
        }
    }

    /// A long poll waits up to `purge.wait_time` for data: per-read and per-attempt limits
    /// shorter than that would cut every idle receive.
    fn validate_timeouts_against_long_polls(&self, p: &mut Problems) {
        let needed = self.purge.wait_time + Duration::from_secs(5);
        for (key, d) in [
            ("aws.read_timeout", self.aws.read_timeout),
            ("aws.attempt_timeout", self.aws.attempt_timeout),
        ] {
            if p.ok(&[key, "purge.wait_time"]) && self.purge.enabled && d < needed {
                p.push(
                    key,
                    format!(
                        "must be at least purge.wait_time + 5s ({}): a long poll waits that long for data",
                        humantime::format_duration(needed)
                    ),
                );
            }
        }
    }

    /// The account settings for SQS and DataSync: `[control]` over `[source]`.
    pub fn control_account(&self) -> Account {
        self.control.or(&self.source.account)
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
}

/// The file's tables and the environment's variables, by section.
struct Inputs {
    tables: toml::Table,
    env: BTreeMap<String, BTreeMap<String, (String, String)>>,
}

impl Inputs {
    fn take(&mut self, name: &'static str, p: &mut Problems) -> SectionInput {
        let file = match self.tables.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                p.push(name, format!("must be a table, not {}", other.type_str()));
                toml::Table::new()
            }
        };
        SectionInput::new(name, file, self.env.remove(name).unwrap_or_default())
    }
}

/// The file's sections, or the one problem that stops reading it.
fn read_file(path: &Path) -> Result<toml::Table, Problem> {
    let problem = |message: String| Problem {
        key: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    toml::from_str::<toml::Table>(&text).map_err(|e| problem(e.to_string().trim().to_string()))
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
mod tests;
