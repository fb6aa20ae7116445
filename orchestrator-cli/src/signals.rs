//! Shutdown signals for the long-running commands (`worker`, `track`, `dispatch`, `serve`).

use orchestrator::Error;

/// SIGTERM and Ctrl-C, one at a time.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Self, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind| {
            signal(kind).map_err(|e| Error::config(format!("cannot listen for signals: {e}")))
        };
        Ok(Self {
            term: listen(SignalKind::terminate())?,
            int: listen(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Start a long-running command's engine work with `start`, trying again every `pause`
/// while it fails with a retryable error (the engine is down or silent, as when a worker
/// starts before Redis): Node BullMQ workers wait for Redis the same way. Any other error
/// ends it; a signal meanwhile ends it with `None`.
#[cfg(feature = "bullmq")]
pub(crate) async fn start_retrying<T, F, Fut>(
    signals: &mut Signals,
    what: &str,
    pause: std::time::Duration,
    mut start: F,
) -> Result<Option<T>, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        let attempt = tokio::select! {
            r = start() => r,
            () = signals.next() => return Ok(None),
        };
        match attempt {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_retryable() => {
                eprintln!(
                    "{what}: not started ({e}); trying again in {}",
                    humantime::format_duration(pause)
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = signals.next() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
}
