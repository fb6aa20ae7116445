//! What BullMQ is and honours, with no client dependency: the `bullmq` kind's
//! [`DESCRIPTOR`], its engine options, input rules and native states. The `memory-bullmq`
//! fake of `orchestrator-testkit` is built from this module (`default-features = false`
//! compiles nothing else of this crate).
//!
//! Native states (`Job.getState()`) and the unified state each maps to:
//!
//! | unified | BullMQ |
//! |---|---|
//! | `PENDING` | `waiting`, `prioritized` |
//! | `DELAYED` | `delayed` (first run or retry wait) |
//! | `RUNNING` | `active` |
//! | `WAITING` | `waiting-children` |
//! | `COMPLETED` | `completed` |
//! | `FAILED` | `failed` |
//! | `CANCELLED` | `removed` (by the orchestrator's cancel) |
//! | `UNKNOWN` | `unknown`, or a state this version does not know |
//!
//! BullMQ removes a cancelled job; the orchestrator's cancel remembers the removal (24
//! hours, 100,000 cancels per queue), so the status of a job it cancelled reads
//! `CANCELLED` (`removed`), then `NotFound` once forgotten. A job removed by anything else
//! (Node's `job.remove()`, retention) is `NotFound`.

use orchestrator_core::raw::validate;
use orchestrator_core::{
    Capabilities, Capability, Descriptor, EngineLabel, EngineOption, Limits, ScheduleRequest,
    TaskId, TaskIdError, TaskOptions, TaskState, TaskType, ValidationError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind's name and default instance name.
pub const KIND: &str = "bullmq";

/// The label statuses report as `source`.
pub const LABEL: EngineLabel = EngineLabel::new("BULLMQ");

/// Largest job data (serialized JSON) accepted by default: Redis keeps every job's data in
/// memory. `[backends.<bullmq>] max_payload_bytes` changes it.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// Highest BullMQ priority value (`PRIORITY_LIMIT`, 2^21 - 1).
pub const MAX_PRIORITY: u32 = 2_097_151;

/// What BullMQ honours. Not `CancelRunning`: BullMQ refuses to remove a job a worker holds
/// locked.
pub const CAPABILITIES: Capabilities = Capabilities::of(&[
    Capability::Delay,
    Capability::Priority,
    Capability::Attempts,
    Capability::Backoff,
    Capability::CancelPending,
    Capability::Progress,
    Capability::List,
    Capability::Counts,
]);

/// BullMQ's job options a seed user spreads into the option object.
pub const OPTIONS: &[EngineOption] = &[
    EngineOption::new::<String>(
        "jobId",
        "custom job id: the caller's id is the engine's id; adding it again adds nothing",
    ),
    EngineOption::new::<String>(
        "jobName",
        "the job's name inside its queue (default: the queue)",
    ),
    EngineOption::new::<bool>("lifo", "add at the head of the queue"),
    EngineOption::new::<RemovePolicy>("removeOnComplete", "what to keep of completed jobs"),
    EngineOption::new::<RemovePolicy>("removeOnFail", "what to keep of failed jobs"),
    EngineOption::new::<Deduplication>(
        "deduplication",
        "while the id is reserved, adding again adds nothing",
    ),
];

/// `Job.getState()` words and their unified state.
pub const NATIVE_STATES: &[(&str, TaskState)] = &[
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

/// The `bullmq` kind.
pub const DESCRIPTOR: Descriptor = Descriptor::new(
    KIND,
    "BULLMQ",
    &[TaskType::Simple],
    "SIMPLE tasks on BullMQ-compatible Redis queues (Node BullMQ interop)",
)
.with_capabilities(CAPABILITIES)
.with_options(OPTIONS)
.with_input_rules(rules)
.with_native_states(NATIVE_STATES)
.with_limits(Limits::max_payload(DEFAULT_MAX_PAYLOAD));

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

/// BullMQ's job options of a request, typed: what [`OPTIONS`] declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOptions {
    /// `jobId`.
    pub job_id: Option<String>,
    /// `jobName`.
    pub job_name: Option<String>,
    /// `lifo`.
    pub lifo: Option<bool>,
    /// `removeOnComplete`.
    pub remove_on_complete: Option<RemovePolicy>,
    /// `removeOnFail`.
    pub remove_on_fail: Option<RemovePolicy>,
    /// `deduplication`.
    pub deduplication: Option<Deduplication>,
}

impl JobOptions {
    /// The job options set in `options`; a value of the wrong shape is `InvalidInput`
    /// naming the key.
    pub fn of(options: &TaskOptions) -> Result<Self, ValidationError> {
        fn field<T: serde::de::DeserializeOwned>(
            o: &TaskOptions,
            key: &str,
        ) -> Result<Option<T>, ValidationError> {
            match o.get_engine_option(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => serde_path_to_error::deserialize(v).map(Some).map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." {
                        key.to_string()
                    } else {
                        format!("{key}.{path}")
                    };
                    ValidationError::new(field, e.into_inner().to_string())
                }),
            }
        }
        Ok(Self {
            job_id: field(options, "jobId")?,
            job_name: field(options, "jobName")?,
            lifo: field(options, "lifo")?,
            remove_on_complete: field(options, "removeOnComplete")?,
            remove_on_fail: field(options, "removeOnFail")?,
            deduplication: field(options, "deduplication")?,
        })
    }
}

/// BullMQ's job options as builder methods on [`TaskOptions`].
///
/// ```
/// use backend_bullmq_compat::spec::{JobOptionsExt, RemovePolicy};
/// use orchestrator_core::TaskOptions;
/// let o = TaskOptions::simple().job_id("order-42").remove_on_complete(RemovePolicy::Remove(true));
/// assert_eq!(o.get_engine_option("jobId"), Some(&serde_json::json!("order-42")));
/// ```
pub trait JobOptionsExt: Sized {
    /// Use a custom job id.
    #[must_use]
    fn job_id(self, id: impl Into<String>) -> Self;
    /// Name the job inside its queue.
    #[must_use]
    fn job_name(self, name: impl Into<String>) -> Self;
    /// Add at the head of the queue.
    #[must_use]
    fn lifo(self, lifo: bool) -> Self;
    /// What to keep of completed jobs.
    #[must_use]
    fn remove_on_complete(self, policy: RemovePolicy) -> Self;
    /// What to keep of failed jobs.
    #[must_use]
    fn remove_on_fail(self, policy: RemovePolicy) -> Self;
    /// Deduplicate on `id` (for `ttl_ms`, or until the job finishes).
    #[must_use]
    fn deduplication(self, id: impl Into<String>, ttl_ms: Option<u64>) -> Self;
}

fn json<T: Serialize>(value: T) -> serde_json::Value {
    // Plain data with string keys: serializing it cannot fail.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl JobOptionsExt for TaskOptions {
    fn job_id(self, id: impl Into<String>) -> Self {
        self.engine_option("jobId", id.into().into())
    }
    fn job_name(self, name: impl Into<String>) -> Self {
        self.engine_option("jobName", name.into().into())
    }
    fn lifo(self, lifo: bool) -> Self {
        self.engine_option("lifo", lifo.into())
    }
    fn remove_on_complete(self, policy: RemovePolicy) -> Self {
        self.engine_option("removeOnComplete", json(policy))
    }
    fn remove_on_fail(self, policy: RemovePolicy) -> Self {
        self.engine_option("removeOnFail", json(policy))
    }
    fn deduplication(self, id: impl Into<String>, ttl_ms: Option<u64>) -> Self {
        self.engine_option(
            "deduplication",
            json(Deduplication {
                id: id.into(),
                ttl: ttl_ms,
            }),
        )
    }
}

/// Key names BullMQ (and the orchestrator's cancel, `orchestrator-cancelled`) use inside a
/// queue (`<prefix>:<queue>:<name>`); a job id equal to one would name that key instead of a
/// job.
pub const KEY_NAMES: &[&str] = &[
    "id",
    "meta",
    "events",
    "wait",
    "paused",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "waiting-children",
    "stalled",
    "stalled-check",
    "limiter",
    "marker",
    "pc",
    "de",
    "repeat",
    "metrics",
    "orchestrator-cancelled",
];

type V = Result<(), ValidationError>;

/// Check a BullMQ queue name: a name without `:` (BullMQ builds keys as `prefix:queue:…`).
pub fn queue_name(field: &str, value: &str) -> V {
    validate::name(field, value)?;
    if value.contains(':') {
        return Err(ValidationError::new(
            field,
            "a queue name must not contain `:` (BullMQ builds its keys as `prefix:queue:suffix`)",
        ));
    }
    Ok(())
}

/// Check a custom BullMQ job id the way Node BullMQ does before adding, and refuse the
/// queue's own key names.
pub fn job_id(field: &str, id: &str) -> V {
    validate::name(field, id)?;
    if KEY_NAMES.contains(&id) {
        return Err(ValidationError::new(
            field,
            format!("`{id}` is one of BullMQ's key names inside a queue; choose another job id"),
        ));
    }
    if id == "0" || id.starts_with("0:") {
        return Err(ValidationError::new(
            field,
            "a job id must not be `0` or start with `0:` (BullMQ reserves them)",
        ));
    }
    if id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            field,
            "a custom job id must not be an integer: it would collide with BullMQ's automatic ids",
        ));
    }
    if id.contains(':') && id.split(':').count() != 3 {
        return Err(ValidationError::new(
            field,
            "a job id may contain `:` only in BullMQ's legacy `a:b:c` form",
        ));
    }
    Ok(())
}

/// BullMQ's own rules (the `bullmq` backend and its `memory-bullmq` fake): the task name is
/// a queue name (no `:`), job options have BullMQ's shapes and bounds, custom job ids follow
/// Node BullMQ's client-side checks (its Lua enforces none of them), priorities stay under
/// `PRIORITY_LIMIT`, and `lifo` cannot be combined with a priority.
pub fn rules(request: &ScheduleRequest) -> V {
    let o = request.options();
    queue_name("name", request.name())?;
    if let Some(p) = o.priority {
        if p > MAX_PRIORITY {
            return Err(ValidationError::new(
                "priority",
                format!("{p} is above BullMQ's limit of {MAX_PRIORITY}"),
            ));
        }
    }
    let job = JobOptions::of(o)?;
    if let Some(id) = &job.job_id {
        job_id("jobId", id)?;
    }
    if let Some(n) = &job.job_name {
        validate::name("jobName", n)?;
    }
    if let Some(d) = &job.deduplication {
        validate::name("deduplication.id", &d.id)?;
        if let Some(ttl) = d.ttl {
            validate::duration_ms("deduplication.ttl", ttl)?;
        }
    }
    for (field, policy) in [
        ("removeOnComplete", job.remove_on_complete),
        ("removeOnFail", job.remove_on_fail),
    ] {
        if let Some(RemovePolicy::Keep { age: Some(age), .. }) = policy {
            let limit = validate::MAX_DELAY_MS / 1000;
            if age > limit {
                return Err(ValidationError::new(
                    field,
                    format!("age {age} s is above the limit of {limit} s"),
                ));
            }
        }
    }
    if job.lifo == Some(true) && o.priority.is_some_and(|p| p > 0) {
        return Err(ValidationError::new(
            "lifo",
            "cannot be combined with a priority (BullMQ orders prioritized jobs by priority only)",
        ));
    }
    Ok(())
}

/// Whether job id `job` is a tracking task's (chosen by the orchestrator for a COMPLEX
/// task's `trackingQueue`): listed as its COMPLEX task's `trackingTaskId`, not as a task
/// of its own.
pub fn is_tracking_job(job: &str) -> bool {
    job.starts_with(orchestrator_core::raw::TRACKING_ID_PREFIX)
}

/// Split a task id's native part `queue:jobId` (queue names never contain `:`). An id of
/// another shape, or whose job id is one of the queue's own key names (`meta`, `wait`, …),
/// is `InvalidTaskId`: it would read that key.
pub fn split_task_id(id: &TaskId) -> Result<(&str, &str), TaskIdError> {
    id.native()
        .split_once(':')
        .filter(|(q, j)| !q.is_empty() && names_a_job(j))
        .ok_or_else(|| TaskIdError::Malformed {
            id: id.to_string(),
            reason: "a BullMQ task id is `<instance>:<queue>:<job id>`, the job id not one of the queue's key names (`repeat:…`, `…:logs`)".into(),
        })
}

/// Whether `job` can name a job hash rather than another key of the queue: not a key name
/// (`meta`, `repeat`, …), and with `:` only in the three-part form (`a:b:c`, which job
/// schedulers use: `repeat:<scheduler>:<millis>`). Two parts name a key that is not a job
/// (`repeat:<scheduler>`, `de:<id>`, `42:logs`, `42:lock`): custom ids never have two
/// parts ([`job_id`]), so no job does.
fn names_a_job(job: &str) -> bool {
    let parts: Vec<&str> = job.split(':').collect();
    match parts.as_slice() {
        [one] => !one.is_empty() && !KEY_NAMES.contains(one),
        [a, b, c] => !a.is_empty() && !b.is_empty() && !c.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_table_matches_the_code() {
        let docs = include_str!("spec.rs");
        assert_eq!(
            orchestrator_core::raw::check_state_table(docs, NATIVE_STATES),
            Ok(())
        );
    }

    #[test]
    fn ids_naming_the_queue_s_own_keys_are_refused() {
        for native in [
            "q:repeat:daily",
            "q:42:logs",
            "q:42:lock",
            "q:de:abc",
            "q:meta",
            "q:a:b:c:d",
            "q:a::c",
            "q:",
        ] {
            let id = TaskId::new("bullmq", native).expect("id");
            assert!(split_task_id(&id).is_err(), "{native} was accepted");
        }
        // A job scheduler's jobs: `repeat:<scheduler id>:<millis>`.
        for native in [
            "q:42",
            "q:order-7",
            "q:a:b:c",
            "q:repeat:daily:1764806400000",
        ] {
            let id = TaskId::new("bullmq", native).expect("id");
            assert!(split_task_id(&id).is_ok(), "{native} was refused");
        }
    }

    #[test]
    fn job_options_are_typed_with_their_path() {
        let o = TaskOptions::simple().engine_option("removeOnComplete", "yes".into());
        let e = JobOptions::of(&o).expect_err("wrong shape");
        assert_eq!(e.field, "removeOnComplete");
        let o = TaskOptions::simple().deduplication("d", Some(5));
        assert_eq!(
            JobOptions::of(&o).expect("ok").deduplication,
            Some(Deduplication {
                id: "d".into(),
                ttl: Some(5)
            })
        );
    }
}
