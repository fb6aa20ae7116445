//! Unified task status.
//!
//! Each engine has its own states; [`TaskState`] is the small common vocabulary and
//! [`TaskStatus::native_state`] keeps the engine's own word. Each engine's crate declares
//! its mapping table in its descriptor ([`crate::Descriptor::native_states`]) and documents
//! it beside the code (a test per engine keeps the two equal).
//!
//! A task the engine does not know is an [`crate::Error::NotFound`], never a pending
//! state.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::TaskId;

/// The label of the engine that runs a task, as the seed prints it in `source` (`BULLMQ`,
/// `TEMPORAL`, `N8N`, or a custom backend's own label). Each engine's descriptor declares
/// its label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EngineLabel(Cow<'static, str>);

impl EngineLabel {
    /// A label.
    pub const fn new(label: &'static str) -> Self {
        EngineLabel(Cow::Borrowed(label))
    }

    /// A label known only at run time.
    pub fn owned(label: impl Into<String>) -> Self {
        EngineLabel(Cow::Owned(label.into()))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for EngineLabel {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EngineLabel {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for EngineLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EngineLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EngineLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(EngineLabel::owned(String::deserialize(d)?))
    }
}

impl JsonSchema for EngineLabel {
    fn schema_name() -> Cow<'static, str> {
        "EngineLabel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "The engine's label: BULLMQ, TEMPORAL, N8N or a custom backend's"
        })
    }
}

/// The unified state of a task. See the module docs for the mapping from each engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TaskState {
    /// Accepted, waiting for a worker.
    Pending,
    /// Waiting for a start time: a delay, or the backoff before a retry.
    Delayed,
    /// A worker is running it.
    Running,
    /// Paused by the engine, waiting for something else (children, a signal, a webhook).
    Waiting,
    /// Finished successfully.
    Completed,
    /// Finished with an error after its last attempt.
    Failed,
    /// Cancelled before or while running.
    Cancelled,
    /// Stopped by force (Temporal terminate).
    Terminated,
    /// Stopped because it ran out of time.
    TimedOut,
    /// Closed and replaced by a new run (Temporal continue-as-new); status follows the new run
    /// when the backend can, so this shows only when it cannot.
    ContinuedAsNew,
    /// The engine reports something this version cannot map; see `native_state`.
    Unknown,
}

impl TaskState {
    /// Whether the task will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Completed
                | TaskState::Failed
                | TaskState::Cancelled
                | TaskState::Terminated
                | TaskState::TimedOut
                | TaskState::ContinuedAsNew
        )
    }

    /// The seed's spelling (`PENDING`, `RUNNING`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Delayed => "DELAYED",
            TaskState::Running => "RUNNING",
            TaskState::Waiting => "WAITING",
            TaskState::Completed => "COMPLETED",
            TaskState::Failed => "FAILED",
            TaskState::Cancelled => "CANCELLED",
            TaskState::Terminated => "TERMINATED",
            TaskState::TimedOut => "TIMED_OUT",
            TaskState::ContinuedAsNew => "CONTINUED_AS_NEW",
            TaskState::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `get_task_status` returns. Timestamps are Unix epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The task's id.
    pub task_id: TaskId,
    /// The engine's label (`BULLMQ`, `TEMPORAL`, `N8N`).
    pub source: EngineLabel,
    /// Unified state.
    pub state: TaskState,
    /// The engine's own state word, unchanged.
    pub native_state: String,
    /// Attempts made so far (finished or failed runs).
    pub attempts_made: u32,
    /// Last progress the task reported, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
    /// The task's result, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The failure message, once failed (or of the last failed attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the task was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
    /// When the current or last run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// When the task finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// For a COMPLEX task scheduled with `trackingQueue`: the id of its tracking task (a
    /// BullMQ job that `orchestrator track` completes with the workflow's outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_task_id: Option<TaskId>,
    /// Whether the orchestrator scheduled it, or something else started it.
    #[serde(default)]
    pub origin: crate::monitor::Origin,
}

impl TaskStatus {
    /// A status with only the required fields set.
    pub fn new(
        task_id: TaskId,
        source: EngineLabel,
        state: TaskState,
        native_state: impl Into<String>,
    ) -> Self {
        Self {
            task_id,
            source,
            state,
            native_state: native_state.into(),
            attempts_made: 0,
            progress: None,
            result: None,
            error: None,
            created_at: None,
            started_at: None,
            finished_at: None,
            tracking_task_id: None,
            origin: crate::monitor::Origin::Unknown,
        }
    }
}

/// What `cancel_task` did, in a form a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The task was removed or cancelled; it will not run (again).
    Cancelled,
    /// Cancellation was requested; the engine lets the running task wind down
    /// (Temporal workflows, n8n executions).
    CancelRequested,
    /// The task is running and the engine cannot interrupt it (a locked BullMQ job).
    NotCancellableRunning,
    /// The task already finished.
    NotCancellableFinished,
    /// No such task.
    NotFound,
}

impl CancelOutcome {
    /// The seed's boolean: `true` when the task was (or is being) cancelled.
    pub fn is_cancelled(self) -> bool {
        matches!(
            self,
            CancelOutcome::Cancelled | CancelOutcome::CancelRequested
        )
    }
}

/// What a backend's health check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The backend's name.
    pub backend: String,
    /// Whether the engine answered and is usable.
    pub ok: bool,
    /// Engine version or other detail ("redis 7.0.15").
    pub detail: String,
    /// Problems that do not stop it from working (an old Redis, for example).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
