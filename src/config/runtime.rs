//! The daemon's own sections: AWS SDK settings, HTTP, logging, shutdown, readiness and the
//! preflight checks.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// SDK-wide settings: retries and time limits for every AWS call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AwsSettings {
    /// Attempts per request in the SDK's standard retry mode (1 = no retry). The SDK is the
    /// only layer that retries a request; the tasks retry whole units of work (a date, a message).
    pub max_attempts: NonZeroU32,
    /// Time to establish a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time to wait for data on an open connection (longer than an SQS long poll).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Time one attempt of an operation may take, including reading the response.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Time a whole operation may take, retries included.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            max_attempts: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
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

#[derive(Debug, Clone, Serialize, PartialEq)]
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

/// When recent outcomes make a task not ready (`/readyz` 503, `task_ready` 0).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReadinessConfig {
    /// Failed units of work in a row (messages, dates), with no success between them.
    pub max_consecutive_failures: NonZeroU32,
    /// Share of the last `failure_window` outcomes that may fail (checked once half the
    /// window is filled).
    pub max_failure_ratio: f64,
    pub failure_window: NonZeroU32,
    /// Work in flight with no progress for this long.
    #[serde(with = "humantime_serde")]
    pub stall_after: Duration,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            max_consecutive_failures: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            max_failure_ratio: 0.5,
            failure_window: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            stall_after: Duration::from_secs(120),
        }
    }
}

/// The doctor's checks inside the daemon.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreflightConfig {
    /// Run them at start-up and then every `interval`.
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for PreflightConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(3600),
        }
    }
}
