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
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::context::{Context, TaskResult};
use crate::health::{Health, Policy, TaskHandle};
use crate::labels::Task;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("task `{task}` stopped unexpectedly: {reason}")]
    TaskDied { task: Task, reason: String },
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("http server on {addr}: {source}")]
    Http {
        addr: String,
        source: std::io::Error,
    },
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
    run_on(
        config,
        clients,
        metrics,
        SharedClock::default(),
        listener,
        shutdown,
    )
    .await
}

/// As [`run_with`], on `clock` (the sync simulation runs days in minutes).
pub async fn run_on(
    config: Config,
    clients: Clients,
    metrics: Metrics,
    clock: SharedClock,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let app = App::build(config, clients, metrics, clock, shutdown);
    app.spawn();
    app.serve(listener).await
}

/// A long-running task of the daemon: the configuration that enables it, what its readiness
/// says before its first proof, and how it starts.
struct TaskSpec {
    task: Task,
    enabled: fn(&Config) -> bool,
    starting: &'static str,
    start: fn(Context, TaskHandle) -> BoxFuture<'static, TaskResult>,
}

const TASKS: &[TaskSpec] = &[
    TaskSpec {
        task: Task::Purge,
        enabled: |c| c.purge.enabled,
        starting: "waiting for the first successful receive",
        start: |ctx, h| Box::pin(crate::purge::consumer::run(ctx, h)),
    },
    TaskSpec {
        task: Task::Sync,
        enabled: |c| c.sync.enabled,
        starting: "scheduler starting",
        start: |ctx, h| Box::pin(crate::sync::scheduler::run(ctx, h)),
    },
    TaskSpec {
        task: Task::Sweep,
        enabled: |c| c.sweep.enabled,
        starting: "sweep starting",
        start: |ctx, h| Box::pin(crate::sweep::scheduler::run(ctx, h)),
    },
];

/// The daemon, built: its context, health and the first task failure, if any.
struct App {
    ctx: Context,
    failure: Arc<Mutex<Option<RunError>>>,
}

impl App {
    fn build(
        config: Config,
        clients: Clients,
        metrics: Metrics,
        clock: SharedClock,
        shutdown: CancellationToken,
    ) -> App {
        let health = Health::new(Policy::from(&config.readiness), Some(metrics.clone()));
        App {
            ctx: Context {
                config: Arc::new(config),
                clients,
                metrics,
                health,
                shutdown,
                tracker: TaskTracker::new(),
                clock,
            },
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts the enabled tasks, and the preflight checks that can mark them not ready.
    fn spawn(&self) {
        let ctx = &self.ctx;
        let mut handles = Vec::new();
        for t in TASKS.iter().filter(|t| (t.enabled)(&ctx.config)) {
            let handle = ctx.health.register(t.task, t.starting);
            handles.push((t.task, handle.clone()));
            spawn_task(ctx, &self.failure, t.task, (t.start)(ctx.clone(), handle));
        }
        if ctx.config.preflight.enabled && !handles.is_empty() {
            let checks = crate::doctor::preflight::run(ctx.clone(), handles);
            spawn_task(ctx, &self.failure, Task::Preflight, checks);
        }
    }

    /// Serves HTTP until shutdown (or a dead task, or an accept error), then gives in-flight
    /// work `shutdown.grace` and stops the server.
    async fn serve(self, listener: TcpListener) -> Result<(), RunError> {
        let ctx = &self.ctx;
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let http_stop = CancellationToken::new();
        tokio::spawn(ctx.health.clone().watchdog(http_stop.clone()));
        let mut server = tokio::spawn(crate::http::serve(
            listener,
            ctx.health.clone(),
            ctx.metrics.clone(),
            http_stop.clone(),
        ));
        info!(%addr, "listening (/metrics /livez /healthz /readyz /status)");
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {}
            res = &mut server => {
                // The server only ends by itself on an accept error; treat it like a dead task.
                ctx.shutdown.cancel();
                http_stop.cancel();
                let source = match res {
                    Ok(Err(e)) => e,
                    Ok(Ok(())) => std::io::Error::other("stopped unexpectedly"),
                    Err(e) => std::io::Error::other(e.to_string()),
                };
                return Err(RunError::Http { addr, source });
            }
        }
        self.wait().await;
        http_stop.cancel();
        if let Ok(Err(e)) = server.await {
            warn!(error = %e, "http server ended with an error");
        }
        let failed = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match failed {
            Some(e) => Err(e),
            None => {
                info!("stopped");
                Ok(())
            }
        }
    }

    /// In-flight work gets `shutdown.grace` to finish.
    async fn wait(&self) {
        let grace = self.ctx.config.shutdown.grace;
        info!(grace = ?grace, "shutting down: finishing in-flight work");
        self.ctx.tracker.close();
        if tokio::time::timeout(grace, self.ctx.tracker.wait())
            .await
            .is_err()
        {
            warn!(grace = ?grace, "grace period over; abandoning unfinished work (SQS redelivers it)");
        }
    }
}

/// Spawns a long-running task; if it returns or panics before shutdown, the process stops.
fn spawn_task<F>(ctx: &Context, failure: &Arc<Mutex<Option<RunError>>>, task: Task, fut: F)
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
        error!(%task, %reason, "task died; stopping the process so it can be restarted");
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

    async fn context() -> Context {
        let mut c = Config::default();
        c.source.bucket = "src-bucket".into();
        c.source.account.region = "ap-northeast-2".into();
        c.source.account.endpoint_url = Some("http://127.0.0.1:9".into());
        c.target = c.source.clone();
        c.target.bucket = "tgt-bucket".into();
        c.shutdown.grace = Duration::from_secs(2);
        let clients = Clients::new(&c).await;
        Context {
            config: Arc::new(c),
            clients,
            metrics: Metrics::new().unwrap(),
            health: Health::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            clock: SharedClock::default(),
        }
    }

    #[tokio::test]
    async fn a_task_that_dies_stops_the_process_with_an_error() {
        let ctx = context().await;
        let failure = Arc::new(Mutex::new(None));
        spawn_task(&ctx, &failure, Task::Sync, async {
            Err("schedule `0 0 0 1 1 * 2020` never fires again".into())
        });
        ctx.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), ctx.tracker.wait())
            .await
            .expect("the task ends");
        assert!(
            ctx.shutdown.is_cancelled(),
            "the other tasks were told to stop"
        );
        match failure.lock().unwrap().take() {
            Some(RunError::TaskDied { task, reason }) => {
                assert_eq!(task, Task::Sync);
                assert!(reason.contains("never fires again"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Ending after shutdown was asked for is not a failure.
        let ctx = context().await;
        ctx.shutdown.cancel();
        spawn_task(&ctx, &failure, Task::Purge, async { Ok(()) });
        ctx.tracker.close();
        ctx.tracker.wait().await;
        assert!(failure.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_panicking_task_stops_the_process_too() {
        let ctx = context().await;
        let failure = Arc::new(Mutex::new(None));
        spawn_task(&ctx, &failure, Task::Purge, async { panic!("boom") });
        ctx.tracker.close();
        ctx.tracker.wait().await;
        assert!(ctx.shutdown.is_cancelled());
        assert!(matches!(
            failure.lock().unwrap().take(),
            Some(RunError::TaskDied {
                task: Task::Purge,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn cancellation_stops_run_cleanly() {
        let ctx = context().await;
        let c = (*ctx.config).clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let handle = tokio::spawn(run_with(
            c,
            ctx.clients.clone(),
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
