//! What Temporal is and honours, with no client dependency: the `temporal` kind's
//! [`DESCRIPTOR`], its option block ([`TemporalOptions`], the seed's `temporal` object),
//! input rules and native states. The `memory-temporal` fake of `orchestrator-testkit` is
//! built from this module (`default-features = false` compiles nothing else of this
//! crate).
//!
//! Workflow execution statuses (`WorkflowExecutionStatus`) and the unified state of each:
//!
//! | unified | Temporal |
//! |---|---|
//! | `PENDING` | Running, before a worker takes its first workflow task (the backend checks) |
//! | `RUNNING` | `Running` |
//! | `WAITING` | `Paused` |
//! | `COMPLETED` | `Completed` |
//! | `FAILED` | `Failed` |
//! | `CANCELLED` | `Canceled` |
//! | `TERMINATED` | `Terminated` |
//! | `TIMED_OUT` | `TimedOut` |
//! | `CONTINUED_AS_NEW` | `ContinuedAsNew` (status follows the new run when it can) |
//! | `UNKNOWN` | any status this version does not know |

use orchestrator_core::raw::validate;
use orchestrator_core::raw::{Tracking, TrackingHook};
use orchestrator_core::{
    Capabilities, Capability, Descriptor, EngineLabel, EngineOption, Limits, OptionBlock,
    ScheduleRequest, TaskId, TaskIdError, TaskOptions, TaskState, TaskType, ValidationError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind's name and default instance name.
pub const KIND: &str = "temporal";

/// The label statuses report as `source`.
pub const LABEL: EngineLabel = EngineLabel::new("TEMPORAL");

/// Largest payload accepted by default: under Temporal's 2 MB limit for one payload, with
/// room for the rest of the start request.
pub const DEFAULT_MAX_PAYLOAD: usize = 1536 * 1024;

/// The largest payload (serialized JSON, bytes) kept beside explicit `workflowArgs` in a
/// workflow's memo (`orchestratorPayload`): 256 KiB, well under Temporal's 2 MB blob limit
/// for the whole start request.
pub const MAX_MEMO_PAYLOAD: usize = 256 * 1024;

/// What Temporal honours through `temporalio-client`. Not `Delay` (the client has no start
/// delay), not `Priority` (BullMQ priorities have no Temporal meaning).
pub const CAPABILITIES: Capabilities = Capabilities::of(&[
    Capability::Attempts,
    Capability::Backoff,
    Capability::CancelPending,
    Capability::CancelRunning,
    Capability::List,
    Capability::Counts,
]);

/// The default Keyword search attribute holding a task's name (see the backend's
/// `name_attribute` setting).
pub const NAME_ATTRIBUTE: &str = "OrchestratorTaskName";

/// Temporal's visibility store does not see whether a worker picked a run up, so
/// `counts` reports a run `status` calls `PENDING` as `RUNNING`.
pub const COUNTS_FOLD: &[(TaskState, TaskState)] = &[(TaskState::Pending, TaskState::Running)];

/// The shortest wait between two workflow retries Temporal makes, whatever the retry
/// policy says (measured: a 400 ms exponential backoff waited 1.04 s then 1.02 s; a fixed
/// 1.2 s one, 1.2 s): a shorter `backoff` is refused rather than silently lengthened.
pub const MIN_RETRY_INTERVAL_MS: u64 = 1000;

/// The workflow statuses and their unified state.
pub const NATIVE_STATES: &[(&str, TaskState)] = &[
    ("Running", TaskState::Running),
    ("Completed", TaskState::Completed),
    ("Failed", TaskState::Failed),
    ("Canceled", TaskState::Cancelled),
    ("Terminated", TaskState::Terminated),
    ("TimedOut", TaskState::TimedOut),
    ("ContinuedAsNew", TaskState::ContinuedAsNew),
    ("Paused", TaskState::Waiting),
];

/// The `temporal` kind.
pub const DESCRIPTOR: Descriptor = Descriptor::new(
    KIND,
    "TEMPORAL",
    &[TaskType::Complex],
    "COMPLEX tasks as Temporal workflows (temporalio-client)",
)
.with_capabilities(CAPABILITIES)
.with_options(&[EngineOption::block::<TemporalOptions>(
    "the workflow: type, arguments, task queue, id, conflict policy, timeout, tracking queue",
)])
.with_input_rules(rules)
.with_native_states(NATIVE_STATES)
.with_limits(Limits::max_payload(DEFAULT_MAX_PAYLOAD))
.with_tracking(TRACKING)
.with_counts_fold(COUNTS_FOLD);

/// A tracking task is asked for by `temporal.trackingQueue`.
pub const TRACKING: TrackingHook = tracking;

fn tracking(o: &TaskOptions) -> Option<Tracking> {
    let t = o.block::<TemporalOptions>().ok()??;
    let queue = t.tracking_queue?;
    let mut fields = serde_json::Map::new();
    fields.insert("workflowType".into(), t.workflow_type.into());
    Some(Tracking {
        queue,
        option: "temporal.trackingQueue",
        fields,
    })
}

/// What happens when a workflow id is already in use by a running workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdConflictPolicy {
    /// Fail with `AlreadyExists` (Temporal's default).
    #[default]
    Fail,
    /// Return the running workflow's id instead of starting another.
    UseExisting,
    /// Terminate the running workflow and start a new one.
    TerminateExisting,
}

/// Options of a COMPLEX task: the seed's `temporal` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemporalOptions {
    /// The workflow type name the worker registered (e.g. `migrationWorkflow`).
    pub workflow_type: String,
    /// Positional workflow arguments, one JSON payload each.
    #[serde(default)]
    pub workflow_args: Vec<serde_json::Value>,
    /// Task queue the workers poll; the backend's configured default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_queue: Option<String>,
    /// When set, the orchestrator also schedules a SIMPLE tracking task on this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_queue: Option<String>,
    /// Workflow id; derived from the task name plus a unique suffix when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Maximum run time of the whole workflow execution, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout_ms: Option<u64>,
    /// What to do when `workflow_id` is already running.
    #[serde(default)]
    pub id_conflict_policy: IdConflictPolicy,
}

impl OptionBlock for TemporalOptions {
    const KEY: &'static str = "temporal";
}

impl TemporalOptions {
    /// Options for workflow type `workflow_type` on `task_queue`.
    pub fn new(workflow_type: impl Into<String>, task_queue: impl Into<String>) -> Self {
        Self {
            workflow_type: workflow_type.into(),
            task_queue: Some(task_queue.into()),
            ..Self::default()
        }
    }

    /// Append one workflow argument.
    #[must_use]
    pub fn arg(mut self, arg: serde_json::Value) -> Self {
        self.workflow_args.push(arg);
        self
    }

    /// Set every workflow argument.
    #[must_use]
    pub fn args(mut self, args: Vec<serde_json::Value>) -> Self {
        self.workflow_args = args;
        self
    }

    /// Also schedule a SIMPLE tracking task on `queue`.
    #[must_use]
    pub fn tracking_queue(mut self, queue: impl Into<String>) -> Self {
        self.tracking_queue = Some(queue.into());
        self
    }

    /// Use this workflow id.
    #[must_use]
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = Some(id.into());
        self
    }

    /// Limit the execution's total run time.
    #[must_use]
    pub fn execution_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.execution_timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// What to do when the workflow id is already running.
    #[must_use]
    pub fn id_conflict_policy(mut self, policy: IdConflictPolicy) -> Self {
        self.id_conflict_policy = policy;
        self
    }

    /// The block of an admitted request (its rules required it).
    pub fn of(options: &TaskOptions) -> Result<Self, ValidationError> {
        options.block::<Self>()?.ok_or_else(|| {
            ValidationError::new(
                "temporal",
                "COMPLEX tasks on Temporal need `temporal` options (at least `workflowType`)",
            )
        })
    }
}

type V = Result<(), ValidationError>;

/// Whether a request's payload is carried beside its `workflowArgs` (in the memo): when
/// there are explicit arguments and the payload is neither `null` nor `{}`. Without
/// arguments the payload is the workflow's single argument.
pub fn payload_in_memo(request: &ScheduleRequest, t: &TemporalOptions) -> bool {
    let p = request.payload();
    let empty = p.is_null() || p.as_object().is_some_and(serde_json::Map::is_empty);
    !t.workflow_args.is_empty() && !empty
}

/// Temporal's rules (the `temporal` backend and `memory-temporal`): the `temporal` block
/// is there and well formed (names, a positive execution timeout within 10 years), a
/// backoff is at least [`MIN_RETRY_INTERVAL_MS`], and a payload sent beside `workflowArgs`
/// fits [`MAX_MEMO_PAYLOAD`].
pub fn rules(request: &ScheduleRequest) -> V {
    let t = TemporalOptions::of(request.options())?;
    if let Some(b) = request.options().backoff {
        let (orchestrator_core::Backoff::Fixed { delay_ms }
        | orchestrator_core::Backoff::Exponential { delay_ms }) = b;
        if delay_ms < MIN_RETRY_INTERVAL_MS {
            return Err(ValidationError::new(
                "backoff.delay",
                format!(
                    "{delay_ms} ms is shorter than Temporal's shortest wait between workflow retries ({MIN_RETRY_INTERVAL_MS} ms); use at least {MIN_RETRY_INTERVAL_MS}"
                ),
            ));
        }
    }
    validate::name("temporal.workflowType", &t.workflow_type)?;
    if let Some(q) = &t.task_queue {
        validate::name("temporal.taskQueue", q)?;
    }
    if let Some(q) = &t.tracking_queue {
        validate::name("temporal.trackingQueue", q)?;
    }
    if let Some(id) = &t.workflow_id {
        validate::name("temporal.workflowId", id)?;
    }
    if t.execution_timeout_ms == Some(0) {
        return Err(ValidationError::new(
            "temporal.executionTimeoutMs",
            "must be greater than 0 (leave it unset for no timeout)",
        ));
    }
    if let Some(ms) = t.execution_timeout_ms {
        validate::duration_ms("temporal.executionTimeoutMs", ms)?;
    }
    if payload_in_memo(request, &t) {
        let size = validate::json_size(request.payload());
        if size > MAX_MEMO_PAYLOAD {
            return Err(ValidationError::new(
                "payload",
                format!(
                    "is {size} bytes; beside workflowArgs it is kept in the workflow memo, at most {MAX_MEMO_PAYLOAD} bytes (pass it as an argument instead)"
                ),
            ));
        }
    }
    Ok(())
}

/// `workflowId:runId` → (workflow id, run id of the chain's first run). Run ids are UUIDs,
/// so the last `:` splits; anything else is malformed (`temporal:order:42` is not workflow
/// `order`, run `42`).
pub fn split_task_id(id: &TaskId) -> Result<(&str, &str), TaskIdError> {
    match id.native().rsplit_once(':') {
        Some((wf, run)) if !wf.is_empty() && uuid::Uuid::parse_str(run).is_ok() => Ok((wf, run)),
        _ => Err(TaskIdError::Malformed {
            id: id.to_string(),
            reason: "a Temporal task id is `<instance>:<workflow id>:<run id (a UUID)>`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_table_matches_the_code() {
        assert_eq!(
            orchestrator_core::raw::check_state_table(include_str!("spec.rs"), NATIVE_STATES),
            Ok(())
        );
    }

    #[test]
    fn run_ids_are_uuids() {
        let ok: TaskId = "temporal:wf:00000000-0000-0000-0000-000000000000"
            .parse()
            .expect("id");
        assert_eq!(split_task_id(&ok).expect("ok").0, "wf");
        for bad in [
            "temporal:wf:42",
            "temporal:wf",
            "temporal::00000000-0000-0000-0000-000000000000",
        ] {
            let id: TaskId = bad.parse().expect("id");
            assert!(split_task_id(&id).is_err(), "{bad}");
        }
    }
}
