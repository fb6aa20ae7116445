//! Unified task status.
//!
//! Each engine has its own states; [`TaskState`] is the small common vocabulary and
//! [`TaskStatus::native_state`] keeps the engine's own word. Mapping table:
//!
//! | unified      | BullMQ                               | Temporal                    | n8n (dispatch / execution)          |
//! |--------------|--------------------------------------|-----------------------------|-------------------------------------|
//! | `PENDING`    | `waiting`, `prioritized`             | Running, before a worker takes its first task | dispatch `queued`, `delivering`; execution `new` |
//! | `DELAYED`    | `delayed` (first run or retry wait)  | —                           | dispatch `retrying`                 |
//! | `RUNNING`    | `active`                             | `Running`                   | `running`                           |
//! | `WAITING`    | `waiting-children`                   | `Paused`                    | `waiting`                           |
//! | `COMPLETED`  | `completed`                          | `Completed`                 | `success`                           |
//! | `FAILED`     | `failed`                             | `Failed`                    | `error`, `crashed`, dispatch `failed` |
//! | `CANCELLED`  | `removed` (by our cancel: see below) | `Canceled`                  | `canceled`, dispatch `cancelled`    |
//! | `TERMINATED` | —                                    | `Terminated`                | —                                   |
//! | `TIMED_OUT`  | —                                    | `TimedOut`                  | —                                   |
//! | `CONTINUED_AS_NEW` | —                              | `ContinuedAsNew`            | —                                   |
//! | `UNKNOWN`    | `unknown`, or a state this version does not know | any future status | delivered, execution not tracked |
//!
//! The rows are [`native_states`]; the backends map through those tables and a unit test
//! checks this table against them, so the docs and the code cannot drift.
//!
//! A task the engine does not know is an [`crate::Error::NotFound`], never a pending
//! state. BullMQ removes a cancelled job; the orchestrator's cancel remembers the removal
//! (24 hours, 100,000 cancels per queue), so the status of a job it cancelled reads
//! `CANCELLED` (`removed`), then `NotFound` once forgotten. A job removed by anything else
//! (Node's `job.remove()`, retention) is `NotFound`. Temporal keeps cancelled workflows.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::TaskId;

/// The engine family that runs a task, as the seed prints it (`BULLMQ`, `TEMPORAL`, `N8N`,
/// or a custom backend's own name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(Cow<'static, str>);

impl Source {
    /// BullMQ-compatible Redis queues.
    pub const BULLMQ: Source = Source(Cow::Borrowed("BULLMQ"));
    /// Temporal.
    pub const TEMPORAL: Source = Source(Cow::Borrowed("TEMPORAL"));
    /// n8n.
    pub const N8N: Source = Source(Cow::Borrowed("N8N"));

    /// A custom backend's source name.
    pub fn custom(name: impl Into<Cow<'static, str>>) -> Self {
        Source(name.into())
    }

    /// The source as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "BULLMQ" => Source::BULLMQ,
            "TEMPORAL" => Source::TEMPORAL,
            "N8N" => Source::N8N,
            _ => Source(Cow::Owned(s)),
        })
    }
}

impl JsonSchema for Source {
    fn schema_name() -> Cow<'static, str> {
        "Source".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "BULLMQ, TEMPORAL, N8N or a custom backend's name"
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
    /// The engine family (`BULLMQ`, `TEMPORAL`, `N8N`).
    pub source: Source,
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
}

impl TaskStatus {
    /// A status with only the required fields set.
    pub fn new(
        task_id: TaskId,
        source: Source,
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

/// Each engine's native states and the unified state each maps to: the one mapping table
/// the backends (and the module docs' table) follow.
pub mod native_states {
    use super::TaskState;

    /// BullMQ job states (`Job.getState()`).
    pub const BULLMQ: &[(&str, TaskState)] = &[
        ("waiting", TaskState::Pending),
        ("prioritized", TaskState::Pending),
        ("delayed", TaskState::Delayed),
        ("active", TaskState::Running),
        ("waiting-children", TaskState::Waiting),
        ("completed", TaskState::Completed),
        ("failed", TaskState::Failed),
        ("removed", TaskState::Cancelled),
        ("unknown", TaskState::Unknown),
    ];

    /// Temporal workflow execution statuses (`WorkflowExecutionStatus`). A `Running`
    /// workflow no worker has taken yet is reported `PENDING` by the backend.
    pub const TEMPORAL: &[(&str, TaskState)] = &[
        ("Running", TaskState::Running),
        ("Completed", TaskState::Completed),
        ("Failed", TaskState::Failed),
        ("Canceled", TaskState::Cancelled),
        ("Terminated", TaskState::Terminated),
        ("TimedOut", TaskState::TimedOut),
        ("ContinuedAsNew", TaskState::ContinuedAsNew),
        ("Paused", TaskState::Waiting),
    ];

    /// n8n execution statuses (`GET /api/v1/executions/{id}`).
    pub const N8N_EXECUTION: &[(&str, TaskState)] = &[
        ("new", TaskState::Pending),
        ("running", TaskState::Running),
        ("waiting", TaskState::Waiting),
        ("success", TaskState::Completed),
        ("error", TaskState::Failed),
        ("crashed", TaskState::Failed),
        ("canceled", TaskState::Cancelled),
    ];

    /// States of a dispatch in the n8n backend's outbox (a `delivered` dispatch reports its
    /// execution instead).
    pub const N8N_DISPATCH: &[(&str, TaskState)] = &[
        ("queued", TaskState::Pending),
        ("delivering", TaskState::Pending),
        ("retrying", TaskState::Delayed),
        ("failed", TaskState::Failed),
        ("cancelled", TaskState::Cancelled),
    ];

    /// The unified state of `native` in `table`; `UNKNOWN` for a word it does not list.
    pub fn map(table: &[(&str, TaskState)], native: &str) -> TaskState {
        table
            .iter()
            .find(|(n, _)| *n == native)
            .map_or(TaskState::Unknown, |(_, s)| *s)
    }
}

#[cfg(test)]
mod doc_table_tests {
    use super::TaskState;
    use super::native_states::*;

    /// `(unified state, cell)` for each row of the module docs' table, column `col`
    /// (1 BullMQ, 2 Temporal, 3 n8n).
    fn column(col: usize) -> Vec<(String, String)> {
        include_str!("status.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter(|l| l.starts_with("//! | `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_start_matches("//!").split('|').collect();
                (
                    cells[1].trim().trim_matches('`').to_string(),
                    cells[col + 1].to_string(),
                )
            })
            .collect()
    }

    fn backticked(cell: &str) -> Vec<&str> {
        cell.split('`').skip(1).step_by(2).collect()
    }

    fn check(col: usize, tables: &[&[(&str, TaskState)]]) {
        let rows = column(col);
        assert!(rows.len() >= 10, "table not found: {rows:?}");
        let rows_of = |state: TaskState| -> Vec<&str> {
            rows.iter()
                .filter(|(u, _)| u == state.as_str())
                .flat_map(|(_, cell)| backticked(cell))
                .collect()
        };
        for table in tables {
            for (native, state) in *table {
                assert!(
                    rows_of(*state).contains(native),
                    "`{native}` → {state} is in the code's table but not in the docs' column {col}"
                );
            }
        }
        for (unified, cell) in &rows {
            for word in backticked(cell) {
                assert!(
                    tables
                        .iter()
                        .any(|t| t.iter().any(|(n, s)| *n == word && s.as_str() == unified)),
                    "the docs map `{word}` to {unified} in column {col}, the code does not"
                );
            }
        }
    }

    #[test]
    fn docs_table_matches_the_code() {
        check(1, &[BULLMQ]);
        check(2, &[TEMPORAL]);
        check(3, &[N8N_EXECUTION, N8N_DISPATCH]);
    }
}
