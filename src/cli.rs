//! Command line. This is the edge of the program: each command loads the configuration it
//! needs ([`Purpose`]), gets a typed result, prints it, and maps it to an exit code (0 ok,
//! 1 runtime failure, 64 bad configuration or usage, 130 forced by a second signal).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::config::{Config, Purpose};

/// Exit code for configuration and usage errors (sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;
/// Exit code after a second signal forced the exit (128 + SIGINT).
const EXIT_FORCED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "s3-reconciler",
    version,
    about = "Keeps a destination S3 bucket in step with a source bucket: daily DataSync partition syncs and permanent-delete propagation."
)]
pub(crate) struct Cli {
    /// TOML configuration file (layered over built-in defaults, under S3R__SECTION__KEY env vars).
    #[arg(long, global = true, env = "S3R_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: the enabled tasks plus the HTTP endpoint for metrics and health.
    Run,
    /// Validate the configuration and print it, secrets redacted, as TOML.
    CheckConfig,
    /// Purge the target's versions of the given keys now, with the same safety checks as the
    /// consumer; prints one JSON line per key.
    Purge {
        /// Object keys, exactly as stored (not URL-encoded).
        #[arg(required = true)]
        keys: Vec<String>,
        /// Decide and log, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Probe the local `/livez` and exit 0 when it answers 200 (container health checks: the
    /// image has no curl).
    Healthcheck {
        /// Address to probe; default: `http.listen`, with an unspecified IP replaced by loopback.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Give up after this long.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Sweep now: walk the source's and the target's versions under each prefix, and purge
    /// target keys the source no longer has, within `sweep.max_deletes`. One JSON line per
    /// orphan, then a summary. Exit 0 when the run completed within its guardrails.
    Sweep {
        /// Prefixes to sweep (repeatable); default `sweep.prefixes`.
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// Decide every orphan, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Draw no progress bar. (It is drawn on stderr only when stderr is a terminal and
        /// `log.format` is text.)
        #[arg(long)]
        no_progress: bool,
    },
    /// Check that AWS is wired the way the configuration assumes (for the enabled tasks):
    /// buckets, versioning, the delete notification, the queue, the DataSync task and its
    /// locations, schedule, filters and options, the state bucket. Read-only calls, plus one
    /// probe document under the state prefix. Exit 0 when nothing fails (warnings allowed).
    Doctor {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Compare the synced partitions of the given dates (default: the date the schedule would
    /// pick) in the source and the target: one JSON line per partition, then a summary. Exit 0
    /// when every object is there, 1 when some are missing or of another size.
    Verify {
        /// Partition dates to verify, YYYY-MM-DD (repeatable); their lookback days too.
        #[arg(long = "date", value_name = "YYYY-MM-DD")]
        dates: Vec<chrono::NaiveDate>,
    },
    /// Run the daily sync now for the given dates (default: the date the schedule would pick).
    Sync {
        /// Partition dates to sync, YYYY-MM-DD (repeatable).
        #[arg(long = "date", value_name = "YYYY-MM-DD")]
        dates: Vec<chrono::NaiveDate>,
        /// Print the dates, project count and exact filter values; call no DataSync API.
        #[arg(long)]
        dry_run: bool,
        /// Start the executions and return without waiting for their result.
        #[arg(long)]
        no_wait: bool,
    },
}

/// How `doctor` prints.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per check, then its fix.
    Text,
    /// One JSON object per line: check, status, resource, detail, fix.
    Json,
}

impl Command {
    fn purpose(&self) -> Purpose {
        match self {
            Command::Run | Command::CheckConfig | Command::Doctor { .. } => Purpose::Daemon,
            Command::Purge { .. } => Purpose::Purge,
            Command::Healthcheck { .. } => Purpose::Healthcheck,
            Command::Sync { dry_run: true, .. } => Purpose::SyncPlan,
            Command::Verify { .. } => Purpose::Verify,
            Command::Sweep { prefixes, .. } => Purpose::Sweep {
                prefixes_given: !prefixes.is_empty(),
            },
            Command::Sync { .. } => Purpose::Sync,
        }
    }
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), cli.command.purpose()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match &cli.command {
        Command::CheckConfig => {
            print!("{}", config.to_redacted_toml());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck { addr, timeout } => return healthcheck(&config, *addr, *timeout),
        Command::Sweep { prefixes, .. } => {
            if let Err(e) = config.check_sweep_prefixes(prefixes) {
                eprint!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
        _ => {}
    }
    crate::telemetry::init(&config.log);
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
        match cli.command {
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
                dry_run,
                no_progress,
            } => run_sweep(config, prefixes, dry_run, no_progress).await,
            Command::CheckConfig | Command::Healthcheck { .. } => ExitCode::SUCCESS,
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
            return ExitCode::from(EXIT_CONFIG);
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
    dry_run: bool,
    no_progress: bool,
) -> ExitCode {
    use crate::sweep::{Progress, RunKind, Sweeper};
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
    let kind = if dry_run {
        RunKind::DryRun
    } else {
        RunKind::Purge
    };
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

/// Whether `sweep` draws its progress bar: for a person at a terminal, not for a pipe, a
/// log collector reading JSON, or whoever said not to.
fn show_progress(stderr_is_terminal: bool, log: crate::config::LogFormat, off: bool) -> bool {
    stderr_is_terminal && log == crate::config::LogFormat::Text && !off
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{bar:24} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Redraws `bar` from `progress` a few times a second until `stop`, then clears it.
async fn draw_progress(
    bar: indicatif::ProgressBar,
    progress: Arc<crate::sweep::Progress>,
    stop: CancellationToken,
) {
    loop {
        let s = progress.snapshot();
        bar.set_length(s.shards_total);
        bar.set_position(s.shards_done);
        bar.set_message(s.render());
        let tick = tokio::time::sleep(std::time::Duration::from_millis(200));
        if stop.run_until_cancelled(tick).await.is_none() {
            break;
        }
    }
    bar.finish_and_clear();
}

fn healthcheck(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;

    #[test]
    fn the_progress_bar_is_for_a_person_at_a_terminal() {
        assert!(show_progress(true, LogFormat::Text, false));
        assert!(!show_progress(false, LogFormat::Text, false), "a pipe");
        assert!(!show_progress(true, LogFormat::Json, false), "JSON logs");
        assert!(!show_progress(true, LogFormat::Text, true), "--no-progress");
    }
}
