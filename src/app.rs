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
    let health = Health::new();
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
