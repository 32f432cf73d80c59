//! The daemon (or a sweep) in this process, as one instance of a process would be: its own
//! runtime on its own thread, its own log (the JSON lines production writes, kept in memory),
//! and a kill that stops it where it stands, as SIGKILL would: its runtime is dropped with
//! every task in it, nothing runs to completion and no shutdown path is taken.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use s3_reconciler::clock::SharedClock;
use s3_reconciler::config::Config;
use s3_reconciler::sweep::{RunKind, Summary, Sweeper};
use s3_reconciler::sync::runner::{RunOpts, Syncer};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// One instance's log lines, as the JSON the daemon writes.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    pub fn lines(&self) -> Vec<Value> {
        let buf = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&buf)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What an instance left behind.
#[derive(Clone)]
pub struct Life {
    pub id: usize,
    pub log: Log,
    /// When it was killed (`None`: it ended by itself or was stopped).
    pub killed_us: Option<i64>,
}

/// Runs `work` on a fresh current-thread runtime in a thread of its own, logging into `log`;
/// returns when `work` ends or `kill` fires (then the runtime is dropped where it stands).
fn on_own_thread<F, T>(
    log: Log,
    kill: oneshot::Receiver<()>,
    work: F,
) -> std::thread::JoinHandle<Option<T>>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter("s3_reconciler=info,s3_reconciler::sync::scheduler=debug")
            .with_current_span(true)
            .with_span_list(true)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let out = rt.block_on(async move {
            tokio::select! {
                out = work => Some(out),
                _ = kill => None,
            }
        });
        rt.shutdown_background();
        out
    })
}

/// The daemon: `run` with the configured tasks.
pub struct Daemon {
    pub life: Life,
    stop: CancellationToken,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Option<()>>>,
}

impl Daemon {
    pub fn start(cfg: Config, id: usize) -> Daemon {
        Self::start_on(cfg, id, SharedClock::default())
    }

    /// The daemon on `clock` (the sync simulation's virtual time).
    pub fn start_on(cfg: Config, id: usize, clock: SharedClock) -> Daemon {
        Self::spawn(id, move |token| async move {
            let clients = s3_reconciler::aws::Clients::new(&cfg).await;
            let metrics = s3_reconciler::metrics::Metrics::new().expect("metrics");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            let _ = s3_reconciler::app::run_on(cfg, clients, metrics, clock, listener, token).await;
        })
    }

    /// `sync --date date` run by hand (its own process, on `clock`); it ends by itself.
    pub fn manual(
        cfg: Config,
        id: usize,
        clock: SharedClock,
        date: NaiveDate,
        opts: RunOpts,
    ) -> Daemon {
        Self::spawn(id, move |token| async move {
            let clients = s3_reconciler::aws::Clients::new(&cfg).await;
            let metrics = s3_reconciler::metrics::Metrics::new().expect("metrics");
            let syncer = Syncer::new(Arc::new(cfg), &clients, metrics).with_clock(clock);
            let _ = syncer.run_date(date, opts, &token).await;
        })
    }

    fn spawn<F, Fut>(id: usize, work: F) -> Daemon
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let log = Log::default();
        let stop = CancellationToken::new();
        let (kill, killed) = oneshot::channel();
        let thread = on_own_thread(log.clone(), killed, work(stop.clone()));
        Daemon {
            life: Life {
                id,
                log,
                killed_us: None,
            },
            stop,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Its work ended by itself (a manual run finished, or the daemon exited).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// SIGKILL.
    pub fn kill(mut self) -> Life {
        self.life.killed_us = Some(now_us());
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.life.clone()
    }

    /// SIGTERM: in-flight work finishes.
    pub fn stop(mut self) -> Life {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.life.clone()
    }
}

/// One `sweep` command: its report lines and summary, or `None` when it was killed after
/// `kill_after` keys were purged.
pub fn sweep(
    cfg: Config,
    kind: RunKind,
    kill_after: Option<usize>,
    id: usize,
) -> (Life, Vec<Value>, Option<Summary>) {
    let log = Log::default();
    let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (kill, killed) = oneshot::channel();
    let purged_enough = Arc::new(Notify::new());
    let (seen, enough) = (lines.clone(), purged_enough.clone());
    let thread = on_own_thread(log.clone(), killed, async move {
        let prefixes = cfg.sweep.prefixes.clone();
        let clients = s3_reconciler::aws::Clients::new(&cfg).await;
        let metrics = s3_reconciler::metrics::Metrics::new().expect("metrics");
        let sweeper = Sweeper::new(Arc::new(cfg), &clients, metrics);
        let purged = std::sync::atomic::AtomicUsize::new(0);
        let stop = CancellationToken::new();
        let on_line = |l: &s3_reconciler::sweep::OrphanLine| {
            let v = serde_json::to_value(l).unwrap_or_default();
            let mut n = purged.load(std::sync::atomic::Ordering::SeqCst);
            if v["action"] == "purged" || v["action"] == "partly_purged" {
                n = purged.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            }
            seen.lock().unwrap().push(v);
            if kill_after.is_some_and(|k| n >= k) {
                enough.notify_one();
            }
        };
        let run = sweeper.run(&prefixes, kind, &stop, &on_line);
        tokio::select! {
            s = run => Some(s),
            _ = purged_enough.notified() => None,
        }
    });
    // Killed from inside: the runtime stops where it stands once the count is reached.
    let summary = thread.join().ok().flatten().flatten();
    drop(kill);
    let lines = lines.lock().unwrap().clone();
    let life = Life {
        id,
        log,
        killed_us: summary.is_none().then(now_us),
    };
    (life, lines, summary)
}
