//! The time the daily sync reasons in: now, and waiting. Production runs on the system clock;
//! the sync simulation runs days in minutes on a clock that runs faster than real time (its
//! lab runs on the same clock), which is why the scheduler, the runner and the claims ask this
//! module rather than `Utc::now()` and `tokio::time::sleep`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d` of this clock's time.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The system clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock shared by everything a process runs.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock(Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedClock({})", self.now())
    }
}

impl SharedClock {
    pub fn new(clock: impl Clock) -> Self {
        SharedClock(Arc::new(clock))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    pub async fn sleep(&self, d: Duration) {
        self.0.sleep(d).await
    }

    /// Waits until `at` (at once if it has passed).
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        let d = (at - self.now()).to_std().unwrap_or_default();
        self.0.sleep(d).await
    }
}
