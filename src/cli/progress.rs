//! The sweep's progress bar on a terminal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Whether `sweep` draws its progress bar: for a person at a terminal, not for a pipe, a
/// log collector reading JSON, or whoever said not to.
pub(super) fn show_progress(
    stderr_is_terminal: bool,
    log: crate::config::LogFormat,
    off: bool,
) -> bool {
    stderr_is_terminal && log == crate::config::LogFormat::Text && !off
}

pub(super) fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{bar:24} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Redraws `bar` from `progress` a few times a second until `stop`, then clears it.
pub(super) async fn draw_progress(
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
