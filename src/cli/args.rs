//! The command line's definition: subcommands, flags, their help, and the exit codes. Shell
//! completions and the man page are generated from it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Purpose;

/// Exit code for usage and configuration errors (sysexits' EX_USAGE).
pub(crate) const EXIT_USAGE: u8 = 64;
/// Exit code after a second signal forced the exit (128 + SIGINT).
pub(crate) const EXIT_FORCED: u8 = 130;

const EXIT_CODES: &str = "\
Exit codes:
  0    success (for check commands: the check passed)
  1    failure: a sweep outside its guardrails, a failed doctor check, missing objects, a task
       that died, an AWS error
  64   usage or configuration error (every bad key is named at once)
  130  a second SIGINT/SIGTERM forced the exit

Configuration: built-in defaults, then the TOML file (--config or S3R_CONFIG), then
S3R__SECTION__KEY environment variables (lists: a,b or a JSON array such as '[\"\"]').";

#[derive(Parser, Debug)]
#[command(
    name = "s3-reconciler",
    version = crate::build_info::LONG_VERSION,
    about = "Keeps a destination S3 bucket in step with a source bucket: daily DataSync partition syncs and permanent-delete propagation.",
    after_help = EXIT_CODES,
)]
pub(crate) struct Cli {
    /// TOML configuration file (layered over built-in defaults, under S3R__SECTION__KEY env vars).
    #[arg(long, global = true, env = "S3R_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the daemon: the enabled tasks plus the HTTP endpoint for metrics and health.
    #[command(after_help = "Examples:\n  \
        s3-reconciler --config /etc/s3-reconciler/config.toml run\n  \
        S3R__PURGE__DRY_RUN=true s3-reconciler --config config.toml run")]
    Run,
    /// Validate the configuration and print it, secrets redacted, as TOML.
    #[command(after_help = "Examples:\n  \
        s3-reconciler --config config.toml check-config\n  \
        S3R__SWEEP__PREFIXES='[\"\"]' s3-reconciler --config config.toml check-config")]
    CheckConfig,
    /// Purge the target's versions of the given keys now, with the same safety checks as the
    /// consumer; prints one JSON line per key.
    #[command(after_help = "Examples:\n  \
        s3-reconciler purge --dry-run 'topics/fleet/year=2026/month=12/day=01/part-0001.json'\n  \
        s3-reconciler purge 'topics/fleet/year=2026/month=12/day=01/part-0001.json'")]
    Purge {
        /// Object keys, exactly as stored (not URL-encoded).
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        /// Decide and log, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Probe the local `/livez` and exit 0 when it answers 200 (container health checks: the
    /// image has no curl).
    #[command(after_help = "Examples:\n  \
        s3-reconciler healthcheck\n  \
        s3-reconciler healthcheck --addr 127.0.0.1:9090 --timeout 1s")]
    Healthcheck {
        /// Address to probe; default: `http.listen`, with an unspecified IP replaced by loopback.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Give up after this long.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Sweep now: walk the source's and the target's versions under each prefix and find
    /// target keys the source no longer has. What it does with them follows `sweep.action`
    /// (default `report`: one JSON line per orphan, nothing deleted); `--purge` deletes them,
    /// within `sweep.max_deletes`, audited. Then a summary line. Exit 0 when the run completed
    /// within its guardrails.
    #[command(after_help = "Examples:\n  \
        s3-reconciler sweep                         # report the orphans under sweep.prefixes\n  \
        s3-reconciler sweep --prefix topics/fleet/  # report one prefix\n  \
        s3-reconciler sweep --purge                 # delete them (up to sweep.max_deletes)")]
    Sweep {
        /// Prefixes to sweep (repeatable); default `sweep.prefixes`.
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// Delete the orphans found (within `sweep.max_deletes`, each audited), whatever
        /// `sweep.action` says.
        #[arg(long, conflicts_with = "dry_run")]
        purge: bool,
        /// Decide every orphan as a purge would, delete nothing (audit lines say
        /// `would_delete`).
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
    /// probe document written and deleted under the state prefix. Exit 0 when nothing fails
    /// (warnings allowed).
    #[command(after_help = "Examples:\n  \
        s3-reconciler --config config.toml doctor\n  \
        s3-reconciler doctor --format json | jq 'select(.status != \"pass\")'")]
    Doctor {
        /// Output: `text` (one line per check, then its fix) or `json` (one object per line:
        /// check, status, resource, detail, fix).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Compare the synced partitions of the given dates (default: the date the schedule would
    /// pick) in the source and the target: one JSON line per partition, then a summary. Exit 0
    /// when every object is there, 1 when some are missing or of another size.
    #[command(after_help = "Examples:\n  \
        s3-reconciler verify\n  \
        s3-reconciler verify --date 2026-12-01 --date 2026-11-30")]
    Verify {
        /// Partition dates to verify, YYYY-MM-DD (repeatable); their lookback days too.
        #[arg(long = "date", value_name = "YYYY-MM-DD")]
        dates: Vec<chrono::NaiveDate>,
    },
    /// Run the daily sync now for the given dates (default: the date the schedule would pick).
    #[command(after_help = "Examples:\n  \
        s3-reconciler sync --dry-run                # the date, projects and filter values\n  \
        s3-reconciler sync --date 2026-12-01        # sync one date and wait for it\n  \
        s3-reconciler sync --date 2026-12-01 --no-wait")]
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
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:\n  \
        s3-reconciler completions bash > /etc/bash_completion.d/s3-reconciler\n  \
        s3-reconciler completions zsh > \"${fpath[1]}/_s3-reconciler\"\n  \
        s3-reconciler completions fish > ~/.config/fish/completions/s3-reconciler.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per command to a directory
    /// (`make man` writes them to target/man/).
    #[command(after_help = "Examples:\n  \
        s3-reconciler man > s3-reconciler.1 && man ./s3-reconciler.1\n  \
        s3-reconciler man --dir /usr/local/share/man/man1")]
    Man {
        /// Write s3-reconciler.1 and a page per subcommand (s3-reconciler-sweep.1, ...) here
        /// instead of printing the main page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// How `doctor` prints.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One line per check, then its fix.
    Text,
    /// One JSON object per line: check, status, resource, detail, fix.
    Json,
}

impl Command {
    /// The configuration the command needs; `None` for the ones that need none.
    pub(crate) fn purpose(&self) -> Option<Purpose> {
        Some(match self {
            Command::Run | Command::CheckConfig | Command::Doctor { .. } => Purpose::Daemon,
            Command::Purge { .. } => Purpose::Purge,
            Command::Healthcheck { .. } => Purpose::Healthcheck,
            Command::Sync { dry_run: true, .. } => Purpose::SyncPlan,
            Command::Verify { .. } => Purpose::Verify,
            Command::Sweep { prefixes, .. } => Purpose::Sweep {
                prefixes_given: !prefixes.is_empty(),
            },
            Command::Sync { .. } => Purpose::Sync,
            Command::Completions { .. } | Command::Man { .. } => return None,
        })
    }
}

/// What a manual sweep does: `--dry-run` decides only, `--purge` deletes, and without either
/// it does what `sweep.action` says (report unless configured to purge), so that running it
/// "to see what it does" deletes nothing.
pub(crate) fn sweep_kind(
    action: crate::config::SweepAction,
    purge: bool,
    dry_run: bool,
) -> crate::sweep::RunKind {
    use crate::config::SweepAction;
    use crate::sweep::RunKind;
    match (dry_run, purge, action) {
        (true, _, _) => RunKind::DryRun,
        (false, true, _) | (false, false, SweepAction::Purge) => RunKind::Purge,
        (false, false, SweepAction::Report) => RunKind::Report,
    }
}
