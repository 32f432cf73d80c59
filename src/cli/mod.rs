//! Command line. This is the edge of the program: each command loads the configuration it
//! needs ([`Purpose`](crate::config::Purpose)), gets a typed result, prints it, and maps it to
//! an exit code (0 ok, 1 runtime failure, 64 bad usage or configuration, 130 forced by a
//! second signal). `args` defines the commands, `run` runs them, `progress` draws the sweep's
//! bar.

mod args;
mod progress;
mod run;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::config::Config;
use args::{Cli, Command, EXIT_USAGE};

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let Some(purpose) = cli.command.purpose() else {
        return generate(&cli.command);
    };
    let config = match Config::load(cli.config.as_deref(), purpose) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match &cli.command {
        Command::CheckConfig => {
            print!("{}", config.to_redacted_toml());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck { addr, timeout } => {
            return run::healthcheck(&config, *addr, *timeout);
        }
        Command::Sweep { prefixes, .. } => {
            if let Err(e) = config.check_sweep_prefixes(prefixes) {
                eprint!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
        _ => {}
    }
    crate::telemetry::init(&config.log);
    run::on_runtime(config, cli.command)
}

/// `--help` and `--version` print to stdout and succeed; any other parse error is a usage
/// error, exit 64 like a bad configuration (clap's own default would be 2).
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The commands that need no configuration: completions and the man page.
fn generate(command: &Command) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "s3-reconciler", &mut out);
            ExitCode::SUCCESS
        }
        Command::Man { dir } => {
            let written = match dir {
                Some(dir) => clap_mangen::generate_to(cmd, dir),
                None => clap_mangen::Man::new(cmd).render(&mut out),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SweepAction;
    use crate::sweep::RunKind;

    /// An operator reads `--help` for what an argument does: every one has a line, and every
    /// subcommand shows examples.
    #[test]
    fn every_argument_is_documented_and_every_command_has_examples() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            if !sub
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Examples:"))
            {
                missing.push(format!("{name}: no examples"));
            }
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && arg.get_help().is_none() {
                    missing.push(format!("{name} {id}: no help"));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
        let help = cmd.clone().render_long_help().to_string();
        for code in ["  0 ", "  1 ", "  64 ", "  130 "] {
            assert!(help.contains(code), "exit code {code:?} in --help");
        }
    }

    #[test]
    fn a_manual_sweep_deletes_only_when_told() {
        use SweepAction::{Purge, Report};
        assert_eq!(args::sweep_kind(Report, false, false), RunKind::Report);
        assert_eq!(args::sweep_kind(Report, true, false), RunKind::Purge);
        assert_eq!(args::sweep_kind(Purge, false, false), RunKind::Purge);
        assert_eq!(args::sweep_kind(Report, false, true), RunKind::DryRun);
        assert_eq!(args::sweep_kind(Purge, false, true), RunKind::DryRun);
        let both = Cli::try_parse_from(["s3-reconciler", "sweep", "--purge", "--dry-run"]);
        assert!(both.is_err(), "--purge and --dry-run contradict each other");
    }

    #[test]
    fn usage_errors_exit_64_and_help_exits_0() {
        let bad = Cli::try_parse_from(["s3-reconciler", "sweep", "--bogus"]).unwrap_err();
        assert_eq!(usage_error(&bad), ExitCode::from(EXIT_USAGE));
        let help = Cli::try_parse_from(["s3-reconciler", "--help"]).unwrap_err();
        assert_eq!(usage_error(&help), ExitCode::SUCCESS);
    }

    #[test]
    fn completions_and_the_man_page_cover_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "s3-reconciler", &mut out);
            let text = String::from_utf8_lossy(&out);
            for word in ["check-config", "sweep", "purge", "no-progress"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
        let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(page("s3-reconciler.1").contains("Exit codes:"));
        for name in ["s3-reconciler-sweep.1", "s3-reconciler-doctor.1"] {
            let text = page(name);
            assert!(text.contains(".TH") && text.contains("Examples:"), "{name}");
        }
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8_lossy(&man);
        assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
        assert!(man.contains("s3\\-reconciler") || man.contains("s3-reconciler"));
        assert!(man.contains("sweep"));
    }
}
