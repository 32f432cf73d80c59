//! What every long-running task is handed, kept in a leaf so that the orchestrator (`app`) and
//! the tasks both depend on it rather than on each other.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aws::Clients;
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
}
