//! A run chain's status, and terminating it.

use super::*;

impl TemporalBackend {
    /// The status of task `id` and the id of the run it describes (the chain's current run).
    pub(super) async fn status_and_run(&self, id: &TaskId) -> Result<(TaskStatus, String)> {
        let (wf, _) = split_native(id)?;
        // The current run of this task's chain: continue-as-new and retries are followed, a
        // later separate start with the same workflow id is not.
        let (handle, desc) = self.chain_run(id).await?;
        let mut s = summary(id.clone(), &desc);
        let state = s.state;
        // A retry is a new run of the chain; its start event carries the attempt number.
        // Attempts made are those that ended: all of them once closed, the earlier ones
        // while a run is open.
        let attempt = self.run_attempt(id, wf, run_of(&desc)).await?;
        s.attempts_made = if state.is_finished() {
            attempt
        } else {
            attempt.saturating_sub(1)
        };
        if matches!(state, TaskState::Completed | TaskState::Failed) {
            let result = self
                .timed(
                    "get result",
                    handle.get_result(WorkflowGetResultOptions::default()),
                )
                .await?;
            match result {
                Ok(raw) => {
                    s.result = Some(
                        raw.payloads
                            .first()
                            .map(payload_json)
                            .unwrap_or(serde_json::Value::Null),
                    )
                }
                Err(WorkflowGetResultError::Failed(e)) => s.error = Some(e.to_string()),
                Err(other) => s.error = Some(other.to_string()),
            }
        }
        Ok((s, run_of(&desc).to_string()))
    }

    /// Terminate a running workflow at once (no cleanup runs in the workflow).
    pub async fn terminate(&self, id: &TaskId, reason: &str) -> Result<CancelOutcome> {
        let handle = match self.running(id).await? {
            Ok(h) => h,
            Err(outcome) => return Ok(outcome),
        };
        self.timed(
            "terminate",
            handle.terminate(
                WorkflowTerminateOptions::builder()
                    .reason(reason.to_string())
                    .build(),
            ),
        )
        .await?
        .map_err(|e| interaction(e, id, "terminate"))?;
        Ok(CancelOutcome::Cancelled)
    }
}

/// The native word of a workflow execution status.
pub(super) fn native_word(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::Paused => "Paused",
        _ => "Unknown",
    }
}

/// What one description of a task's current run says: state, origin, tracking task and
/// times (`status` adds attempts, result and error; `list` shows this).
pub(super) fn summary(id: TaskId, desc: &WorkflowExecutionDescription) -> TaskStatus {
    let native_state = native_word(desc.status());
    let mut state = spec::DESCRIPTOR.map_state(native_state);
    // No worker has picked the first workflow task yet: pending, not running.
    if state == TaskState::Running
        && desc.history_length() <= 2
        && desc
            .raw()
            .pending_workflow_task
            .as_ref()
            .is_some_and(|p| p.state == 1)
    {
        state = TaskState::Pending;
    }
    let mut s = TaskStatus::new(id, spec::LABEL, state, native_state);
    let memo = desc
        .raw()
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.memo.as_ref());
    s.tracking_task_id = memo
        .and_then(|m| m.fields.get(TRACKING_MEMO))
        .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
        .and_then(|t| t.parse().ok());
    // The orchestrator names every workflow it starts in the memo.
    s.origin = if memo.is_some_and(|m| m.fields.contains_key(NAME_MEMO)) {
        Origin::Orchestrator
    } else {
        Origin::External
    };
    s.created_at = millis(desc.start_time());
    s.started_at = millis(desc.execution_time());
    s.finished_at = millis(desc.close_time());
    s
}
