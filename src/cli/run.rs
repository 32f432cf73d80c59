//! Each command run on the async runtime: build what it needs, run it, print its result, map
//! it to an exit code.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::args::{Command, EXIT_FORCED, EXIT_USAGE, Format, sweep_kind};
use super::progress::{draw_progress, progress_bar, show_progress};
use crate::config::Config;

/// Runs `command` on a multi-threaded runtime.
pub(super) fn on_runtime(config: Config, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match command {
            Command::Run => run_daemon(config).await,
            Command::Purge { keys, dry_run } => run_purge(config, keys, dry_run).await,
            Command::Sync {
                dates,
                dry_run,
                no_wait,
            } => run_sync(config, dates, dry_run, no_wait).await,
            Command::Verify { dates } => run_verify(config, dates).await,
            Command::Doctor { format } => run_doctor(config, format).await,
            Command::Sweep {
                prefixes,
                purge,
                dry_run,
                no_progress,
            } => {
                let kind = sweep_kind(config.sweep.action, purge, dry_run);
                run_sweep(config, prefixes, kind, no_progress).await
            }
            // Answered before the runtime: they need neither AWS nor configuration.
            Command::CheckConfig
            | Command::Healthcheck { .. }
            | Command::Completions { .. }
            | Command::Man { .. } => ExitCode::SUCCESS,
        }
    })
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn new_metrics() -> Option<crate::metrics::Metrics> {
    crate::metrics::Metrics::new()
        .map_err(|e| eprintln!("metrics: {e}"))
        .ok()
}

async fn run_daemon(config: Config) -> ExitCode {
    let listener = match TcpListener::bind(config.http.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %config.http.listen, error = %e, "cannot bind http.listen");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let token = CancellationToken::new();
    let signals = crate::shutdown::watch(token.clone());
    tokio::select! {
        res = crate::app::run(config, listener, token.clone()) => match res {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!(error = %e, "exiting with failure");
                ExitCode::FAILURE
            }
        },
        res = signals => {
            if let Err(e) = res {
                error!(error = %e, "cannot install signal handlers");
                return ExitCode::FAILURE;
            }
            ExitCode::from(EXIT_FORCED)
        }
    }
}

async fn run_purge(config: Config, keys: Vec<String>, dry_run: bool) -> ExitCode {
    let Some(metrics) = new_metrics() else {
        return ExitCode::FAILURE;
    };
    let clients = crate::aws::Clients::new(&config).await;
    let purger =
        crate::purge::Purger::new(&config, clients.source, clients.target, metrics, dry_run);
    let mut ok = true;
    for key in keys {
        let res = purger.purge_key(&key, "manual", "manual").await;
        let line = crate::purge::ManualResult::from_result(&key, res, purger.dry_run());
        ok &= line.ok();
        match serde_json::to_string(&line) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("{key}: {e}"),
        }
    }
    exit(ok)
}

async fn run_sync(
    config: Config,
    dates: Vec<chrono::NaiveDate>,
    dry_run: bool,
    no_wait: bool,
) -> ExitCode {
    use crate::sync::manual::{self, Mode};
    let Some(metrics) = new_metrics() else {
        return ExitCode::FAILURE;
    };
    let dates = dates_or_scheduled(&config, dates);
    let clients = crate::aws::Clients::new(&config).await;
    let syncer = crate::sync::runner::Syncer::new(Arc::new(config), &clients, metrics);
    let mode = if dry_run {
        Mode::DryRun
    } else {
        Mode::Run { wait: !no_wait }
    };
    let reports = manual::run(&syncer, &dates, mode).await;
    for r in &reports {
        println!("{}", r.render());
    }
    exit(reports.iter().all(|r| r.ok()))
}

/// The dates given, or the date of the schedule's last fire (as the daemon's start-up picks
/// it): run by hand just after midnight, "today minus lag" would be a date still being
/// written.
fn dates_or_scheduled(config: &Config, dates: Vec<chrono::NaiveDate>) -> Vec<chrono::NaiveDate> {
    if !dates.is_empty() {
        return dates;
    }
    vec![crate::sync::plan::scheduled_date(
        &config.sync,
        chrono::Utc::now(),
    )]
}

async fn run_verify(config: Config, dates: Vec<chrono::NaiveDate>) -> ExitCode {
    let Some(metrics) = new_metrics() else {
        return ExitCode::FAILURE;
    };
    let dates = dates_or_scheduled(&config, dates);
    let clients = crate::aws::Clients::new(&config).await;
    let syncer = crate::sync::runner::Syncer::new(Arc::new(config), &clients, metrics);
    let run = crate::sync::manual::verify(&syncer, &dates).await;
    for line in run.render() {
        println!("{line}");
    }
    exit(run.ok())
}

async fn run_doctor(config: Config, format: Format) -> ExitCode {
    let Some(metrics) = new_metrics() else {
        return ExitCode::FAILURE;
    };
    let clients = crate::aws::Clients::new(&config).await;
    let doctor = crate::doctor::Doctor::new(Arc::new(config), clients, metrics);
    let checks = doctor.run().await;
    match format {
        Format::Text => print!("{}", crate::doctor::render_text(&checks)),
        Format::Json => {
            for c in &checks {
                println!("{}", serde_json::to_string(c).unwrap_or_default());
            }
        }
    }
    exit(crate::doctor::healthy(&checks))
}

async fn run_sweep(
    config: Config,
    prefixes: Vec<String>,
    kind: crate::sweep::RunKind,
    no_progress: bool,
) -> ExitCode {
    use crate::sweep::{Progress, Sweeper};
    let Some(metrics) = new_metrics() else {
        return ExitCode::FAILURE;
    };
    let prefixes = if prefixes.is_empty() {
        config.sweep.prefixes.clone()
    } else {
        prefixes
    };
    let clients = crate::aws::Clients::new(&config).await;
    let stderr = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let show = show_progress(stderr, config.log.format, no_progress);
    let sweeper = Sweeper::new(Arc::new(config), &clients, metrics);
    // Ctrl-C stops the walk at the next page; the checkpoint lets the next run resume.
    let stop = CancellationToken::new();
    let signals = tokio::spawn(crate::shutdown::watch(stop.clone()));
    let progress = Arc::new(Progress::default());
    let bar = show.then(progress_bar);
    let drawn = CancellationToken::new();
    let drawing = bar
        .clone()
        .map(|b| tokio::spawn(draw_progress(b, Arc::clone(&progress), drawn.clone())));
    let summary = sweeper
        .run_with(
            &prefixes,
            kind,
            &stop,
            &|line| {
                let line = crate::sweep::report::json_line(line);
                match &bar {
                    Some(b) => b.suspend(|| println!("{line}")),
                    None => println!("{line}"),
                }
            },
            &progress,
        )
        .await;
    drawn.cancel();
    if let Some(d) = drawing {
        let _ = d.await;
    }
    signals.abort();
    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    exit(summary.ok())
}

pub(super) fn healthcheck(
    config: &Config,
    addr: Option<std::net::SocketAddr>,
    timeout: std::time::Duration,
) -> ExitCode {
    let addr = crate::http::loopback_for(addr.unwrap_or(config.http.listen));
    match crate::http::probe(addr, "/livez", timeout) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("http://{addr}/livez answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("http://{addr}/livez: {e}");
            ExitCode::FAILURE
        }
    }
}
