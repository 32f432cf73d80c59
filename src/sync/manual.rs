//! `s3-reconciler sync`: run dates now, or show exactly what would be sent (`--dry-run`).

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::plan;
use super::runner::{DateOutcome, RunOpts, Syncer};
use crate::config::Config;

pub async fn run(config: Config, dates: Vec<NaiveDate>, dry_run: bool, no_wait: bool) -> ExitCode {
    if !config.sync.enabled {
        eprintln!("sync.enabled is false: set it (and sync.task_arn, state.bucket) to use `sync`");
        return ExitCode::from(crate::cli::EXIT_CONFIG);
    }
    let metrics = match crate::metrics::Metrics::new() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tz: Tz = config.sync.timezone.parse().unwrap_or(chrono_tz::UTC);
    let dates = if dates.is_empty() {
        vec![plan::target_date(Utc::now(), tz, config.sync.lag_days)]
    } else {
        dates
    };
    let clients = crate::aws::Clients::new(&config).await;
    let config = Arc::new(config);
    let syncer = Syncer::new(
        config.clone(),
        clients.source.clone(),
        clients.source,
        clients.datasync,
        metrics,
    );
    let mut failed = false;
    for date in dates {
        if dry_run {
            match syncer.plan(date).await {
                Ok(p) => {
                    let window: Vec<String> = p.dates.iter().map(|d| d.to_string()).collect();
                    println!(
                        "date {date} (partitions {}): {} project(s), {} pattern(s), {} filter(s)",
                        window.join(", "),
                        p.projects,
                        p.patterns,
                        p.filters.len()
                    );
                    for (i, f) in p.filters.iter().enumerate() {
                        println!(
                            "filter {}/{} ({} chars): {f}",
                            i + 1,
                            p.filters.len(),
                            f.len()
                        );
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
            continue;
        }
        let never = CancellationToken::new();
        let res = syncer
            .run_date(
                date,
                RunOpts {
                    force: true,
                    wait: !no_wait,
                },
                &never,
            )
            .await;
        let line = match &res {
            Ok(o) => {
                serde_json::json!({"date": date, "result": o.label(), "detail": format!("{o:?}")})
            }
            Err(e) => serde_json::json!({"date": date, "result": "failed", "error": e.to_string()}),
        };
        println!("{line}");
        failed |= !matches!(
            res,
            Ok(DateOutcome::Success { .. } | DateOutcome::Started { .. })
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
