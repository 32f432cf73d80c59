//! What every long-running task is handed, kept in a leaf so that the orchestrator (`app`) and
//! the tasks both depend on it rather than on each other.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aws::Clients;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;

/// Why a long-running task stopped before it was asked to.
pub(crate) type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// What a long-running task returns: `Ok` only after shutdown was asked for.
pub(crate) type TaskResult = Result<(), TaskError>;

/// Shared context handed to every task.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub clients: Clients,
    pub metrics: Metrics,
    pub health: Health,
    /// Cancelled when the process should stop taking new work.
    pub shutdown: CancellationToken,
    /// Tracks in-flight work that shutdown waits for (within the grace period).
    pub tracker: TaskTracker,
    /// The time the daily sync reasons in (the system's, but in the simulation).
    pub clock: SharedClock,
}

/// The configured holder id, else the pod/host name (stable across container restarts),
/// else a random id. Claims and leases also carry a per-process nonce: a host name alone does
/// not tell two processes apart.
pub fn holder_id(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("s3-reconciler-{}", uuid::Uuid::new_v4()))
}
