//! The seed's task model: task types and the option object passed to `scheduleTask`.
//!
//! Every type here deserializes from the seed's TypeScript option objects unchanged
//! (camelCase keys, `"SIMPLE"`-style enum values) and rejects unknown keys, so an option
//! the orchestrator would not honour is an error instead of being dropped silently.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Which engine family a task belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskType {
    /// Short, stateless jobs on a BullMQ-compatible queue.
    #[default]
    Simple,
    /// Stateful, long-running workflows on Temporal.
    Complex,
    /// External integrations delivered to n8n.
    Integration,
}

impl TaskType {
    /// All task types, in routing order.
    pub const ALL: [TaskType; 3] = [TaskType::Simple, TaskType::Complex, TaskType::Integration];

    /// The seed's spelling: `SIMPLE`, `COMPLEX` or `INTEGRATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Simple => "SIMPLE",
            TaskType::Complex => "COMPLEX",
            TaskType::Integration => "INTEGRATION",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = ValidationError;

    /// Accepts `simple`/`SIMPLE`, `complex`/`COMPLEX`, `integration`/`INTEGRATION`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SIMPLE" => Ok(TaskType::Simple),
            "COMPLEX" => Ok(TaskType::Complex),
            "INTEGRATION" => Ok(TaskType::Integration),
            _ => Err(ValidationError::new(
                "taskType",
                format!("`{s}` is not one of SIMPLE, COMPLEX, INTEGRATION"),
            )),
        }
    }
}

/// How long to wait between attempts.
///
/// Deserializes from BullMQ's two spellings: a number (fixed delay in ms) or
/// `{ "type": "fixed" | "exponential", "delay": ms }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "BackoffRepr", into = "BackoffObject")]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed {
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// `delay * 2^(attempt-1)` before retry number `attempt`.
    Exponential {
        /// Base delay in milliseconds.
        delay_ms: u64,
    },
}

impl Backoff {
    /// A fixed backoff of `delay_ms` milliseconds.
    pub fn fixed(delay_ms: u64) -> Self {
        Backoff::Fixed { delay_ms }
    }

    /// An exponential backoff with base `delay_ms` milliseconds.
    pub fn exponential(delay_ms: u64) -> Self {
        Backoff::Exponential { delay_ms }
    }

    /// The delay before the retry that follows `attempts_made` failed attempts (≥ 1),
    /// computed as BullMQ does.
    pub fn delay_after(&self, attempts_made: u32) -> std::time::Duration {
        let ms = match *self {
            Backoff::Fixed { delay_ms } => delay_ms,
            Backoff::Exponential { delay_ms } => {
                let exp = attempts_made.saturating_sub(1).min(32);
                delay_ms.saturating_mul(1u64 << exp)
            }
        };
        std::time::Duration::from_millis(ms)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum BackoffRepr {
    Millis(u64),
    Object(BackoffObject),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BackoffObject {
    #[serde(rename = "type")]
    kind: BackoffKind,
    #[serde(default)]
    delay: u64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum BackoffKind {
    Fixed,
    Exponential,
}

impl From<BackoffRepr> for Backoff {
    fn from(r: BackoffRepr) -> Self {
        match r {
            BackoffRepr::Millis(delay_ms) => Backoff::Fixed { delay_ms },
            BackoffRepr::Object(o) => o.into(),
        }
    }
}

impl From<BackoffObject> for Backoff {
    fn from(o: BackoffObject) -> Self {
        match o.kind {
            BackoffKind::Fixed => Backoff::Fixed { delay_ms: o.delay },
            BackoffKind::Exponential => Backoff::Exponential { delay_ms: o.delay },
        }
    }
}

impl From<Backoff> for BackoffObject {
    fn from(b: Backoff) -> Self {
        match b {
            Backoff::Fixed { delay_ms } => BackoffObject {
                kind: BackoffKind::Fixed,
                delay: delay_ms,
            },
            Backoff::Exponential { delay_ms } => BackoffObject {
                kind: BackoffKind::Exponential,
                delay: delay_ms,
            },
        }
    }
}

/// What to do with a finished job: BullMQ's `removeOnComplete` / `removeOnFail`.
///
/// Deserializes from `true`/`false`, a number (keep that many) or `{ "age": s, "count": n }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RemovePolicy {
    /// `true` removes the job at once, `false` keeps every job.
    Remove(bool),
    /// Keep the newest `n` jobs.
    KeepCount(u64),
    /// Keep jobs younger than `age` seconds and/or the newest `count`.
    Keep {
        /// Maximum age in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        age: Option<u64>,
        /// Maximum number of jobs kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
}

/// BullMQ deduplication: while a job with this id exists, adding another adds nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deduplication {
    /// The deduplication id.
    pub id: String,
    /// How long (ms) the id stays reserved; forever (until the job is removed) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// What happens when a workflow id is already in use by a running workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdConflictPolicy {
    /// Fail with [`crate::ErrorKind::AlreadyExists`] (Temporal's default).
    #[default]
    Fail,
    /// Return the running workflow's id instead of starting another.
    UseExisting,
    /// Terminate the running workflow and start a new one.
    TerminateExisting,
}

/// Options of a COMPLEX task (a Temporal workflow).
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
        self.execution_timeout_ms = Some(duration_ms(timeout));
        self
    }

    /// What to do when the workflow id is already running.
    #[must_use]
    pub fn id_conflict_policy(mut self, policy: IdConflictPolicy) -> Self {
        self.id_conflict_policy = policy;
        self
    }
}

/// Options of an INTEGRATION task (an n8n workflow behind a webhook).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct N8nOptions {
    /// The n8n workflow id; its webhook URL is resolved through n8n's API when
    /// `webhook_url` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The webhook to POST the payload to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Where the integration comes from (`github`, `jenkins`, …), sent along as a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_source: Option<String>,
}

impl N8nOptions {
    /// Target the n8n workflow `workflow_id`.
    pub fn workflow(workflow_id: impl Into<String>) -> Self {
        Self {
            workflow_id: Some(workflow_id.into()),
            ..Self::default()
        }
    }

    /// Target the webhook `url` directly.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self {
            webhook_url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Record where the integration comes from.
    #[must_use]
    pub fn integration_source(mut self, source: impl Into<String>) -> Self {
        self.integration_source = Some(source.into());
        self
    }

    /// Use this webhook URL.
    #[must_use]
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }
}

/// The option object of `scheduleTask`: the seed's fields plus the BullMQ options a seed
/// user spreads in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskOptions {
    /// Which engine family runs the task (`SIMPLE` when omitted).
    #[serde(default)]
    pub task_type: TaskType,
    /// BullMQ priority: 1 is the highest, 2 097 151 the lowest; unset or 0 means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Total attempts (first run included); at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay before the task may start, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// Wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Custom job id (SIMPLE): adding an id that exists adds nothing and returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Job name inside the queue (SIMPLE); the task name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// What to keep of completed jobs (SIMPLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_on_complete: Option<RemovePolicy>,
    /// What to keep of failed jobs (SIMPLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_on_fail: Option<RemovePolicy>,
    /// Add at the head of the queue instead of the tail (SIMPLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifo: Option<bool>,
    /// BullMQ deduplication (SIMPLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication: Option<Deduplication>,
    /// Workflow options; required for COMPLEX tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal: Option<TemporalOptions>,
    /// Integration options; required for INTEGRATION tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n8n: Option<N8nOptions>,
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TaskOptions {
    /// Options for a SIMPLE task.
    pub fn simple() -> Self {
        Self::default()
    }

    /// Options for a COMPLEX task running `temporal`.
    pub fn complex(temporal: TemporalOptions) -> Self {
        Self {
            task_type: TaskType::Complex,
            temporal: Some(temporal),
            ..Self::default()
        }
    }

    /// Options for an INTEGRATION task delivered per `n8n`.
    pub fn integration(n8n: N8nOptions) -> Self {
        Self {
            task_type: TaskType::Integration,
            n8n: Some(n8n),
            ..Self::default()
        }
    }

    /// Parse the seed's JSON option object, turning serde's message into a typed error.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ValidationError> {
        // Deserializing recurses with the nesting: refuse deep input first.
        if let Err(e) = crate::validate::json_nesting("options", &value) {
            crate::validate::drop_deep(value);
            return Err(e);
        }
        // The path of the offending key goes in the message (`backoff.delay: invalid …`).
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ValidationError::new("options", inner.to_string())
            } else {
                ValidationError::new("options", format!("{path}: {inner}"))
            }
        })
    }

    /// Set the priority (1 = highest).
    #[must_use]
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Set the total number of attempts.
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Delay the start.
    #[must_use]
    pub fn delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = Some(duration_ms(delay));
        self
    }

    /// Wait between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Use a custom job id.
    #[must_use]
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = Some(id.into());
        self
    }

    /// Name the job inside its queue.
    #[must_use]
    pub fn job_name(mut self, name: impl Into<String>) -> Self {
        self.job_name = Some(name.into());
        self
    }

    /// What to keep of completed jobs.
    #[must_use]
    pub fn remove_on_complete(mut self, policy: RemovePolicy) -> Self {
        self.remove_on_complete = Some(policy);
        self
    }

    /// What to keep of failed jobs.
    #[must_use]
    pub fn remove_on_fail(mut self, policy: RemovePolicy) -> Self {
        self.remove_on_fail = Some(policy);
        self
    }

    /// Add at the head of the queue.
    #[must_use]
    pub fn lifo(mut self, lifo: bool) -> Self {
        self.lifo = Some(lifo);
        self
    }

    /// Deduplicate on `id`.
    #[must_use]
    pub fn deduplication(mut self, id: impl Into<String>, ttl_ms: Option<u64>) -> Self {
        self.deduplication = Some(Deduplication {
            id: id.into(),
            ttl: ttl_ms,
        });
        self
    }

    /// Force the task type.
    #[must_use]
    pub fn task_type(mut self, task_type: TaskType) -> Self {
        self.task_type = task_type;
        self
    }
}
