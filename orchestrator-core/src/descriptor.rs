//! What a backend kind is and can do: one [`Descriptor`] per kind, enforced centrally.
//!
//! A descriptor names the kind, the source its statuses report, the task types it runs,
//! the [`Capability`] set it honours and its engine-specific input rules. The orchestrator
//! checks every request against the target backend's descriptor before any I/O
//! ([`Descriptor::admit`]): an option the backend does not declare is refused with
//! [`Error::UnsupportedOption`] naming the option and the backend, never dropped. Routing a
//! task type to a backend that does not run it fails when the orchestrator is built.
//!
//! Backend crates implement [`BackendFactory`] (descriptor + typed configuration + build)
//! and register it with [`crate::register_backend!`]; nothing else is hand-written.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{ScheduleRequest, SharedBackend};
use crate::error::{Error, Result, ValidationError};
use crate::status::Source;
use crate::task::{RemovePolicy, TaskOptions, TaskType};

/// One thing a backend may or may not honour: a task option, or an operation beyond the
/// required ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Capability {
    /// Option `delay`: the task does not start before its time.
    Delay,
    /// Option `priority`: waiting tasks start in priority order.
    Priority,
    /// Option `attempts` (above 1): the task is retried until it succeeds or runs out.
    Attempts,
    /// Option `backoff`: the wait between attempts.
    Backoff,
    /// Option `jobId`: the caller's id is the engine's id; adding it again adds nothing.
    JobId,
    /// Option `jobName`: the job's name inside its queue.
    JobName,
    /// Option `lifo`: added at the head of the queue.
    Lifo,
    /// Option `removeOnComplete`: completed tasks are removed per the policy.
    RemoveOnComplete,
    /// Option `removeOnFail`: failed tasks are removed per the policy.
    RemoveOnFail,
    /// Option `deduplication`: while the id is reserved, adding again adds nothing.
    Deduplication,
    /// Option `temporal.workflowId`: the caller names the workflow.
    WorkflowId,
    /// Option `temporal.idConflictPolicy` (other than `FAIL`).
    IdConflictPolicy,
    /// Option `temporal.executionTimeoutMs`: the run ends `TIMED_OUT` after it.
    ExecutionTimeout,
    /// Option `temporal.trackingQueue`: a SIMPLE tracking task is scheduled alongside.
    TrackingQueue,
    /// Cancelling a task that has not started.
    CancelPending,
    /// Cancelling (or requesting cancellation of) a running task.
    CancelRunning,
    /// Progress reported by the task shows in its status.
    Progress,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 17] = [
        Capability::Delay,
        Capability::Priority,
        Capability::Attempts,
        Capability::Backoff,
        Capability::JobId,
        Capability::JobName,
        Capability::Lifo,
        Capability::RemoveOnComplete,
        Capability::RemoveOnFail,
        Capability::Deduplication,
        Capability::WorkflowId,
        Capability::IdConflictPolicy,
        Capability::ExecutionTimeout,
        Capability::TrackingQueue,
        Capability::CancelPending,
        Capability::CancelRunning,
        Capability::Progress,
    ];

    /// The option's name as the seed's option objects spell it (`delay`,
    /// `temporal.workflowId`…), or the operation's name (`cancel pending`…).
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Delay => "delay",
            Capability::Priority => "priority",
            Capability::Attempts => "attempts",
            Capability::Backoff => "backoff",
            Capability::JobId => "jobId",
            Capability::JobName => "jobName",
            Capability::Lifo => "lifo",
            Capability::RemoveOnComplete => "removeOnComplete",
            Capability::RemoveOnFail => "removeOnFail",
            Capability::Deduplication => "deduplication",
            Capability::WorkflowId => "temporal.workflowId",
            Capability::IdConflictPolicy => "temporal.idConflictPolicy",
            Capability::ExecutionTimeout => "temporal.executionTimeoutMs",
            Capability::TrackingQueue => "temporal.trackingQueue",
            Capability::CancelPending => "cancel pending",
            Capability::CancelRunning => "cancel running",
            Capability::Progress => "progress",
        }
    }

    /// Whether this is a task option (as opposed to an operation).
    pub const fn is_option(self) -> bool {
        !matches!(
            self,
            Capability::CancelPending | Capability::CancelRunning | Capability::Progress
        )
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`] values, buildable in `const` context.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Nothing optional.
    pub const NONE: Capabilities = Capabilities(0);

    /// The set of `list`.
    pub const fn of(list: &[Capability]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].bit();
            i += 1;
        }
        Capabilities(bits)
    }

    /// Whether `c` is in the set.
    pub const fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The members, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Engine-specific input rules, run before any I/O (after the core's own checks).
pub type InputRules = fn(&ScheduleRequest) -> Result<(), ValidationError>;

/// No rules beyond the core's.
pub fn no_rules(_: &ScheduleRequest) -> Result<(), ValidationError> {
    Ok(())
}

/// What one backend kind is and can do. Declare it as a `const`.
#[derive(Clone, Copy)]
pub struct Descriptor {
    /// The kind's name (`bullmq`, `temporal`, `n8n`, `memory-bullmq`…): its config table and
    /// default instance name.
    pub kind: &'static str,
    /// The source its statuses report (`BULLMQ`, …).
    pub source: &'static str,
    /// Task types it runs; routing another type to it is a configuration error.
    pub task_types: &'static [TaskType],
    /// What it honours beyond the required operations.
    pub capabilities: Capabilities,
    /// One line saying what it is.
    pub summary: &'static str,
    /// Engine-specific input rules (for BullMQ-like backends, [`crate::validate::bullmq_rules`]).
    pub input_rules: InputRules,
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptor")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("task_types", &self.task_types)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl Descriptor {
    /// The source as a [`Source`].
    pub fn source(&self) -> Source {
        Source::custom(self.source)
    }

    /// Whether this kind runs `task_type`.
    pub fn runs(&self, task_type: TaskType) -> bool {
        self.task_types.contains(&task_type)
    }

    /// Check `request` against this descriptor for the backend instance `backend`: the task
    /// type is one it runs, every option set is one it honours, and its input rules pass.
    /// No I/O; the orchestrator calls this before every schedule.
    pub fn admit(&self, backend: &str, request: &ScheduleRequest) -> Result<()> {
        if request.admitted_by(self.kind) {
            return Ok(());
        }
        let task_type = request.task_type();
        if !self.runs(task_type) {
            return Err(Error::WrongTaskType {
                backend: backend.to_string(),
                task_type,
                runs: self.task_types.to_vec(),
            });
        }
        if let Some(option) = options_used(request.options())
            .into_iter()
            .find(|c| !self.capabilities.has(*c))
        {
            return Err(Error::UnsupportedOption {
                backend: backend.to_string(),
                option,
            });
        }
        (self.input_rules)(request)?;
        Ok(())
    }
}

impl Descriptor {
    /// [`Descriptor::admit`] `request`, and mark it admitted so the backend's own check is
    /// not run again.
    pub(crate) fn admitted(
        &self,
        backend: &str,
        mut request: ScheduleRequest,
    ) -> Result<ScheduleRequest> {
        self.admit(backend, &request)?;
        request.mark_admitted(self.kind);
        Ok(request)
    }
}

fn remove_set(p: Option<RemovePolicy>) -> bool {
    !matches!(p, None | Some(RemovePolicy::Remove(false)))
}

/// The capabilities a request's options ask for. Neutral values ask for nothing: `delay: 0`,
/// `priority: 0`, `attempts: 1`, `lifo: false`, `removeOn*: false`, `idConflictPolicy: FAIL`.
pub fn options_used(o: &TaskOptions) -> Vec<Capability> {
    let t = o.temporal.as_ref();
    let used = [
        (Capability::Delay, o.delay.is_some_and(|d| d > 0)),
        (Capability::Priority, o.priority.is_some_and(|p| p > 0)),
        (Capability::Attempts, o.attempts.is_some_and(|a| a > 1)),
        (Capability::Backoff, o.backoff.is_some()),
        (Capability::JobId, o.job_id.is_some()),
        (Capability::JobName, o.job_name.is_some()),
        (Capability::Lifo, o.lifo == Some(true)),
        (
            Capability::RemoveOnComplete,
            remove_set(o.remove_on_complete),
        ),
        (Capability::RemoveOnFail, remove_set(o.remove_on_fail)),
        (Capability::Deduplication, o.deduplication.is_some()),
        (
            Capability::WorkflowId,
            t.is_some_and(|t| t.workflow_id.is_some()),
        ),
        (
            Capability::IdConflictPolicy,
            t.is_some_and(|t| t.id_conflict_policy != crate::IdConflictPolicy::Fail),
        ),
        (
            Capability::ExecutionTimeout,
            t.is_some_and(|t| t.execution_timeout_ms.is_some()),
        ),
        (
            Capability::TrackingQueue,
            t.is_some_and(|t| t.tracking_queue.is_some()),
        ),
    ];
    used.into_iter()
        .filter(|(_, u)| *u)
        .map(|(c, _)| c)
        .collect()
}

/// A backend kind: its descriptor, its typed configuration and how to build an instance.
///
/// Register it with [`crate::register_backend!`]; the registry then parses the kind's
/// configuration table into [`BackendFactory::Config`] (unknown keys are the config
/// type's business: use `#[serde(deny_unknown_fields)]`) and calls [`BackendFactory::build`].
pub trait BackendFactory: 'static {
    /// What the kind is and can do.
    const DESCRIPTOR: Descriptor;

    /// The kind's configuration table.
    type Config: DeserializeOwned + JsonSchema;

    /// The configuration used when no table is given (an explicit route with no table);
    /// `None` (the default) means the kind needs settings and says which.
    fn default_config() -> Option<Self::Config> {
        None
    }

    /// Build the instance called `instance` (its [`crate::Backend::name`] and the prefix of
    /// its task ids), validating `config; no I/O: backends connect on first use.
    fn build(instance: &str, config: Self::Config) -> Result<SharedBackend>;
}

/// The capability sets of the engines this workspace ships, shared by each real backend and
/// its in-memory fake so the two cannot drift: a request the fake admits, the engine admits.
pub mod engines {
    use super::{Capabilities, Capability};

    /// What BullMQ honours. Not `CancelRunning`: BullMQ refuses to remove a job a worker holds
    /// locked. The `memory-bullmq` fake declares exactly this set.
    pub const BULLMQ: Capabilities = Capabilities::of(&[
        Capability::Delay,
        Capability::Priority,
        Capability::Attempts,
        Capability::Backoff,
        Capability::JobId,
        Capability::JobName,
        Capability::Lifo,
        Capability::RemoveOnComplete,
        Capability::RemoveOnFail,
        Capability::Deduplication,
        Capability::CancelPending,
        Capability::Progress,
    ]);

    /// What Temporal honours through `temporalio-client`. Not `Delay` (the client has no start
    /// delay), not `Priority` (BullMQ priorities have no Temporal meaning), not the BullMQ job
    /// options. The `memory-temporal` fake declares exactly this set.
    pub const TEMPORAL: Capabilities = Capabilities::of(&[
        Capability::Attempts,
        Capability::Backoff,
        Capability::WorkflowId,
        Capability::IdConflictPolicy,
        Capability::ExecutionTimeout,
        Capability::TrackingQueue,
        Capability::CancelPending,
        Capability::CancelRunning,
    ]);

    /// What n8n honours. Not `Attempts`/`Backoff`: n8n never re-runs a workflow that failed
    /// (delivery retries on connection errors, 5xx and 429 are the backend's configuration,
    /// not a task option). Not `Delay` or `Priority` (a webhook call happens now), not
    /// `CancelPending` (direct mode returns once n8n took the call). The `memory-n8n` fake
    /// declares exactly this set.
    pub const N8N: Capabilities = Capabilities::of(&[Capability::CancelRunning]);
}
