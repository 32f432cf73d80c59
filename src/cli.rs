//! Command line: `run`, `check-config`, `purge`, `sync`. This is the edge of the program: it
//! maps errors to exit codes (0 ok, 1 runtime failure, 64 bad configuration or usage,
//! 130 forced by a second signal).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::config::Config;

/// Exit code for configuration and usage errors (sysexits' EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "s3-reconciler",
    version,
    about = "Keeps a destination S3 bucket in step with a source bucket: daily DataSync partition syncs and permanent-delete propagation."
)]
pub struct Cli {
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

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            print!("{}", config.to_redacted_toml());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck { addr, timeout } => return healthcheck(&config, addr, timeout),
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
            } => crate::sync::manual::run(config, dates, dry_run, no_wait).await,
            Command::CheckConfig | Command::Healthcheck { .. } => ExitCode::SUCCESS,
        }
    })
}

async fn run_daemon(config: Config) -> ExitCode {
    let listener = match TcpListener::bind(&config.http.listen).await {
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
            ExitCode::from(130)
        }
    }
}

async fn run_purge(config: Config, keys: Vec<String>, dry_run: bool) -> ExitCode {
    let metrics = match crate::metrics::Metrics::new() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let attempts = config.aws.max_attempts;
    let source = crate::aws::s3_client(&config.source, attempts).await;
    let target = crate::aws::s3_client(&config.target, attempts).await;
    let mut purger = crate::purge::Purger::new(&config, source, target, metrics);
    purger.dry_run |= dry_run;
    let mut failed = false;
    for key in keys {
        let res = purger.purge_key(&key, "manual", "manual").await;
        let line = crate::purge::ManualResult::from_result(&key, res, purger.dry_run);
        failed |= line.error.is_some();
        match serde_json::to_string(&line) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("{key}: {e}"),
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn healthcheck(
    config: &Config,
    addr: Option<std::net::SocketAddr>,
    timeout: std::time::Duration,
) -> ExitCode {
    let addr = match addr.map(Ok).unwrap_or_else(|| config.http.listen.parse()) {
        Ok(a) => crate::http::loopback_for(a),
        Err(e) => {
            eprintln!("http.listen `{}`: {e}", config.http.listen);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
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
