//! Status mapping: n8n execution states and outbox dispatch states to [`TaskState`].

use super::*;
use crate::outbox::DispatchState;

pub(crate) fn parse_time(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

/// The output of the last node n8n ran, from an execution read with `includeData=true`.
pub(crate) fn last_output(exec: &Value) -> Option<Value> {
    let result = exec.pointer("/data/resultData")?;
    let last = result.get("lastNodeExecuted")?.as_str()?;
    let runs = result.pointer("/runData")?.get(last)?.as_array()?;
    runs.last()?.pointer("/data/main/0/0/json").cloned()
}

pub(crate) fn untracked(id: &TaskId, response: Option<Value>) -> TaskStatus {
    let mut s = TaskStatus::new(
        id.clone(),
        spec::LABEL,
        TaskState::Unknown,
        "delivered, execution not tracked",
    );
    s.attempts_made = 1;
    s.result = response;
    s
}

/// n8n execution status → unified state, through [`spec::EXECUTION_STATES`].
pub(crate) fn map_execution(native: &str) -> TaskState {
    orchestrator_core::raw::map_native_state(spec::EXECUTION_STATES, native)
}

impl N8nBackend {
    pub(crate) async fn execution_status(&self, id: &TaskId, exec: &str) -> Result<TaskStatus> {
        let e = self.execution(id, exec).await?;
        let native = e
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let state = map_execution(&native);
        let mut s = TaskStatus::new(id.clone(), spec::LABEL, state, native);
        s.attempts_made = u32::from(state.is_finished());
        s.created_at = e
            .get("createdAt")
            .and_then(parse_time)
            .or_else(|| e.get("startedAt").and_then(parse_time));
        s.started_at = e.get("startedAt").and_then(parse_time);
        s.finished_at = if state.is_finished() {
            e.get("stoppedAt").and_then(parse_time)
        } else {
            None
        };
        if state == TaskState::Completed {
            s.result = last_output(&e);
        }
        if state == TaskState::Failed {
            s.error = e
                .pointer("/data/resultData/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| Some(format!("execution ended with status {}", s.native_state)));
        }
        Ok(s)
    }
}

/// Outbox dispatch state → unified state (a delivered dispatch reports its execution).
pub(crate) fn map_dispatch(state: DispatchState) -> TaskState {
    orchestrator_core::raw::map_native_state(spec::DISPATCH_STATES, state.as_str())
}
