//! Waiting for a task to finish: [`WaitOutcome`], the deadline rules, and the polling wait
//! every backend gets unless its engine offers better (events, long polls).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::{Error, Result, TaskId, TaskStatus};

/// The longest wait one call accepts (24 hours): a longer one is `InvalidInput`. Callers
/// that need longer loop, which also bounds how long a lost connection goes unnoticed.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The polling wait's first pause between two status reads; it doubles up to
/// [`MAX_POLL_INTERVAL`].
pub const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The polling wait's longest pause between two status reads.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How a wait ended: the task finished, or the deadline came first. A deadline reached is
/// an outcome, not an error, and not the task's own `TIMED_OUT` state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(
    tag = "outcome",
    content = "status",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
#[non_exhaustive]
pub enum WaitOutcome {
    /// The task reached a terminal state (completed, failed, cancelled, terminated, timed
    /// out); its final status.
    Finished(TaskStatus),
    /// The deadline passed while the task was still pending or running; the last status
    /// read.
    StillRunning(TaskStatus),
}

impl WaitOutcome {
    /// The status the wait ended with.
    pub fn status(&self) -> &TaskStatus {
        match self {
            WaitOutcome::Finished(s) | WaitOutcome::StillRunning(s) => s,
        }
    }

    /// The status the wait ended with, by value.
    pub fn into_status(self) -> TaskStatus {
        match self {
            WaitOutcome::Finished(s) | WaitOutcome::StillRunning(s) => s,
        }
    }

    /// `true` when the task finished before the deadline.
    pub fn is_finished(&self) -> bool {
        matches!(self, WaitOutcome::Finished(_))
    }

    /// The outcome for a status read at some point of the wait.
    pub fn of(status: TaskStatus) -> Self {
        if status.state.is_finished() {
            WaitOutcome::Finished(status)
        } else {
            WaitOutcome::StillRunning(status)
        }
    }
}

/// Refuse a wait longer than [`MAX_WAIT`]; return the deadline of one that is not.
pub fn deadline(timeout: Duration) -> Result<tokio::time::Instant> {
    if timeout > MAX_WAIT {
        return Err(Error::invalid(
            "timeout",
            format!(
                "a wait lasts at most {MAX_WAIT:?} (got {timeout:?}); wait again to wait longer"
            ),
        ));
    }
    Ok(tokio::time::Instant::now() + timeout)
}

/// Wait by reading the status, pausing [`FIRST_POLL_INTERVAL`] then twice as long each
/// time up to [`MAX_POLL_INTERVAL`], never past the deadline. The status read at the
/// deadline is the last one; a read that fails ends the wait with its error.
pub async fn poll<B: Backend + ?Sized>(
    backend: &B,
    id: &TaskId,
    timeout: Duration,
) -> Result<WaitOutcome> {
    let deadline = deadline(timeout)?;
    let mut pause = FIRST_POLL_INTERVAL;
    loop {
        let status = backend.status(id).await?;
        let now = tokio::time::Instant::now();
        if status.state.is_finished() || now >= deadline {
            return Ok(WaitOutcome::of(status));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_POLL_INTERVAL);
    }
}
