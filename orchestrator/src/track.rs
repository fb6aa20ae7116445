//! The tracker: it makes each tracking job mirror its workflow.
//!
//! A COMPLEX task scheduled with `trackingQueue` gets a tracking job on that BullMQ queue
//! (its id is the workflow status's `trackingTaskId`). [`track`] serves the queue: for
//! each tracking job it waits a little ([`TrackerConfig::hold`]) for the workflow to
//! close; if it has not, the job goes back to `delayed` for [`TrackerConfig::recheck`]
//! and is looked at again then. When the workflow closes, the job completes with the
//! workflow's result, or fails with its state and error, so Node `QueueEvents`,
//! bull-board and `orchestrator wait` see workflow outcomes on the queue.
//!
//! Bounded: an open workflow holds no worker slot and no connection between checks (its
//! job is `delayed`); at most [`TrackerConfig::concurrency`] checks run at once, each at
//! most `hold` long. A workflow that closes is seen within `recheck` + `hold`.
//!
//! `orchestrator track QUEUE` runs it from the command line.

use std::time::Duration;

use serde::Deserialize;

use crate::bullmq::{
    BullmqBackend, HandlerError, JobContext, Reschedule, TaskWorker, WorkerConfig,
};
use crate::{Error, Orchestrator, Result, TaskId, TaskState, WaitOutcome};

/// How the tracker checks its workflows.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// How long one check waits for the workflow to close (default 1 s).
    pub hold: Duration,
    /// How long a job of a still-running workflow stays delayed before the next check
    /// (default 5 s).
    pub recheck: Duration,
    /// Checks run at once (default 16).
    pub concurrency: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(1),
            recheck: Duration::from_secs(5),
            concurrency: 16,
        }
    }
}

/// The tracking job's data, as the orchestrator writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackingJob {
    task_id: TaskId,
}

/// Serve tracking queue `queue` of `bullmq`, reading workflow statuses through `orch`.
/// Stop it with [`TaskWorker::close`].
pub async fn track(
    orch: &Orchestrator,
    bullmq: &BullmqBackend,
    queue: &str,
    config: TrackerConfig,
) -> Result<TaskWorker> {
    if config.recheck < Duration::from_millis(100) {
        return Err(Error::invalid("recheck", "must be at least 100ms"));
    }
    // The lock must outlive one check, or another worker would take the job meanwhile.
    let lock = (config.hold * 2).max(Duration::from_secs(30));
    let worker_config = WorkerConfig::default()
        .concurrency(config.concurrency)
        .stall_detection(lock, lock);
    let orch = orch.clone();
    bullmq
        .worker(queue, worker_config, move |ctx: JobContext<TrackingJob>| {
            let orch = orch.clone();
            let config = config.clone();
            async move { check(&orch, &ctx.data.task_id, &config).await }
        })
        .await
}

/// One check of one tracking job.
async fn check(
    orch: &Orchestrator,
    workflow: &TaskId,
    config: &TrackerConfig,
) -> std::result::Result<serde_json::Value, HandlerError> {
    match orch.wait(workflow, config.hold).await? {
        WaitOutcome::Finished(s) if s.state == TaskState::Completed => {
            Ok(s.result.unwrap_or(serde_json::Value::Null))
        }
        WaitOutcome::Finished(s) => Err(format!(
            "workflow {workflow} ended {}{}",
            s.state,
            s.error.map(|e| format!(": {e}")).unwrap_or_default()
        )
        .into()),
        _ => Err(Reschedule::after(config.recheck).into()),
    }
}
