//! The daemon: tasks, the HTTP server and one shutdown path.
//!
//! `run` is testable on port 0: it takes a bound listener and a [`CancellationToken`]. When the
//! token is cancelled (SIGTERM/SIGINT in production), tasks stop taking new work and finish
//! what is in flight within `shutdown.grace`; then the HTTP server stops. A task that ends on
//! its own, or panics, while no shutdown was asked for cancels everything and makes `run`
//! return an error, so the orchestrator restarts a whole process, never a half-alive one.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("task `{task}` stopped unexpectedly: {reason}")]
    TaskDied { task: &'static str, reason: String },
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("http server on {addr}: {source}")]
    Http {
        addr: String,
        source: std::io::Error,
    },
}

/// What a long-running task returns: `Ok` only after shutdown was asked for.
pub type TaskResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

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

/// Runs the daemon until `shutdown` is cancelled or a task dies.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let metrics = Metrics::new()?;
    let clients = Clients::new(&config).await;
    run_with(config, clients, metrics, listener, shutdown).await
}

/// As [`run`], with clients and metrics supplied (tests, benchmarks).
pub async fn run_with(
    config: Config,
    clients: Clients,
    metrics: Metrics,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let health = Health::with_gauge(metrics.task_ready.clone());
    let tracker = TaskTracker::new();
    let ctx = Context {
        config: Arc::new(config),
        clients,
        metrics: metrics.clone(),
        health: health.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    let failure: Arc<Mutex<Option<RunError>>> = Arc::new(Mutex::new(None));

    if ctx.config.purge.enabled {
        let handle = health.register("purge", "waiting for the first successful receive");
        spawn_task(
            &ctx,
            &failure,
            "purge",
            crate::purge::consumer::run(ctx.clone(), handle),
        );
    }
    if ctx.config.sync.enabled {
        let handle = health.register("sync", "scheduler starting");
        spawn_task(
            &ctx,
            &failure,
            "sync",
            crate::sync::scheduler::run(ctx.clone(), handle),
        );
    }

    let http_stop = CancellationToken::new();
    let mut server = tokio::spawn(crate::http::serve(
        listener,
        health,
        metrics,
        http_stop.clone(),
    ));
    info!(%addr, "listening (/metrics /livez /healthz /readyz /status)");

    let grace = ctx.config.shutdown.grace;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        res = &mut server => {
            // The server only ends by itself on an accept error; treat it like a dead task.
            shutdown.cancel();
            let source = match res {
                Ok(Err(e)) => e,
                Ok(Ok(())) => std::io::Error::other("stopped unexpectedly"),
                Err(e) => std::io::Error::other(e.to_string()),
            };
            return Err(RunError::Http { addr, source });
        }
    }
    info!(grace = ?grace, "shutting down: finishing in-flight work");
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(grace = ?grace, "grace period over; abandoning unfinished work (SQS redelivers it)");
    }
    http_stop.cancel();
    if let Ok(Err(e)) = server.await {
        warn!(error = %e, "http server ended with an error");
    }
    let failed = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(e) => Err(e),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}

/// Spawns a long-running task; if it returns or panics before shutdown, the process stops.
fn spawn_task<F>(ctx: &Context, failure: &Arc<Mutex<Option<RunError>>>, task: &'static str, fut: F)
where
    F: Future<Output = TaskResult> + Send + 'static,
{
    let shutdown = ctx.shutdown.clone();
    let failure = failure.clone();
    ctx.tracker.spawn(async move {
        let outcome = std::panic::AssertUnwindSafe(fut).catch_unwind().await;
        let reason = match outcome {
            Ok(Ok(())) if shutdown.is_cancelled() => return,
            Ok(Ok(())) => "returned before shutdown".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".into()),
        };
        error!(task, %reason, "task died; stopping the process so it can be restarted");
        failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(RunError::TaskDied { task, reason });
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> Config {
        let mut c = Config::default();
        c.source.bucket = "src-bucket".into();
        c.source.region = "ap-northeast-2".into();
        c.source.endpoint_url = Some("http://127.0.0.1:9".into());
        c.target = c.source.clone();
        c.target.bucket = "tgt-bucket".into();
        c.shutdown.grace = Duration::from_secs(2);
        c
    }

    #[tokio::test]
    async fn a_task_that_dies_stops_the_process_with_an_error() {
        let mut c = config();
        c.sync.enabled = true;
        // Bypasses validation on purpose: the scheduler fails at once on this schedule.
        c.sync.schedule = "not a cron expression".into();
        let clients = Clients::new(&c).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            run_with(c, clients, Metrics::new().unwrap(), listener, token.clone()),
        )
        .await
        .expect("run returns instead of staying half-alive");
        match res {
            Err(RunError::TaskDied { task, reason }) => {
                assert_eq!(task, "sync");
                assert!(reason.contains("not a cron expression"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(token.is_cancelled(), "the other tasks were told to stop");
    }

    #[tokio::test]
    async fn cancellation_stops_run_cleanly() {
        let c = config();
        let clients = Clients::new(&c).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let handle = tokio::spawn(run_with(
            c,
            clients,
            Metrics::new().unwrap(),
            listener,
            token.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
        let res = tokio::time::timeout(Duration::from_secs(5), handle).await;
        assert!(matches!(res, Ok(Ok(Ok(())))), "{res:?}");
    }
}
