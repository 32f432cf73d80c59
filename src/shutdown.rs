//! Signal handling: the first SIGTERM/SIGINT cancels the token (graceful drain); the second
//! makes [`watch`] return so the caller can exit at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Cancels `token` on the first signal; returns on the second one.
pub(crate) async fn watch(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(
        signal = name,
        "shutdown requested; a second signal forces exit"
    );
    token.cancel();
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    warn!(signal = name, "second signal: forcing exit");
    Ok(())
}
