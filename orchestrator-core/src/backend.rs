//! The [`Backend`] trait every engine implements, and the requests it receives.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::descriptor::{Capabilities, Descriptor, Limits};
use crate::error::{Error, ErrorKind, Result};
use crate::id::TaskId;
use crate::monitor::{BackendPage, ListFilter};
use crate::status::{CancelOutcome, Health, TaskState, TaskStatus};
use crate::task::{TaskOptions, TaskType};
use crate::wait::WaitOutcome;

/// A validated request to schedule one task.
///
/// The only way to build one is [`ScheduleRequest::new`], which validates, so a backend
/// never sees input the core would reject.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRequest {
    name: String,
    payload: serde_json::Value,
    options: TaskOptions,
    created_at: u64,
}

impl ScheduleRequest {
    /// Validate `name`, `payload` and `options` against the task model: the name, the
    /// generic bounds (`attempts`, `delay`, `backoff`) and JSON nesting. What a backend
    /// honours is checked at admission.
    pub fn new(
        name: impl Into<String>,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<Self> {
        let name = name.into();
        // Serialized on a stack that grows as needed, then checked for depth without
        // recursion: a payload nested 10,000 deep is refused, never a stack overflow.
        let payload = payload
            .serialize(serde_stacker::Serializer::new(
                serde_json::value::Serializer,
            ))
            .map_err(|e| Error::invalid("payload", format!("cannot be serialized to JSON: {e}")))?;
        if let Err(e) = crate::validate::json_nesting("payload", &payload) {
            crate::validate::drop_deep(payload);
            return Err(e.into());
        }
        let created_at = crate::raw::now_ms();
        let mut options = options;
        if let Err(e) = crate::validate::task(&name, &options, created_at) {
            // Refused engine options may be nested deep: drop them without recursion.
            options
                .take_engine_options()
                .into_iter()
                .for_each(|(_, v)| crate::validate::drop_deep(v));
            return Err(e.into());
        }
        Ok(Self {
            name,
            payload,
            options,
            created_at,
        })
    }

    /// The task name (for SIMPLE tasks, the queue).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caller's payload.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }

    /// The validated options.
    pub fn options(&self) -> &TaskOptions {
        &self.options
    }

    /// The task type.
    pub fn task_type(&self) -> TaskType {
        self.options.task_type
    }

    /// The same request with `payload[key] = value` (the payload must be an object).
    pub(crate) fn with_payload_field(mut self, key: &str, value: serde_json::Value) -> Self {
        if let serde_json::Value::Object(map) = &mut self.payload {
            map.insert(key.to_string(), value);
        }
        self
    }

    /// When the request was validated (epoch ms).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
}

/// A request the target backend's descriptor and limits admitted: what
/// [`Backend::schedule`] receives. Only admission makes one ([`Descriptor::admit`], run
/// by [`crate::BackendHandle`] for every request), so a backend never sees an option it
/// does not honour or a payload over its limit, and never checks by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmittedRequest {
    request: ScheduleRequest,
    tracking_task_id: Option<TaskId>,
}

impl AdmittedRequest {
    pub(crate) fn new(request: ScheduleRequest) -> Self {
        Self {
            request,
            tracking_task_id: None,
        }
    }

    /// `request` as if admitted, without any check: only for tests that show what an
    /// engine itself does with an option its descriptor refuses (the conformance suite's
    /// `engine_ignores_*` trials). Never use it to schedule real work.
    pub fn bypassing_admission(request: ScheduleRequest) -> Self {
        Self::new(request)
    }

    /// For a task whose descriptor asked for a tracking task, the id that tracking task
    /// will have (chosen by the orchestrator before the task starts): a backend stores it
    /// with the task so its status can report it ([`TaskStatus::tracking_task_id`]).
    pub fn tracking_task_id(&self) -> Option<&TaskId> {
        self.tracking_task_id.as_ref()
    }

    pub(crate) fn set_tracking_task_id(&mut self, id: TaskId) {
        self.tracking_task_id = Some(id);
    }

    /// The request.
    pub fn request(&self) -> &ScheduleRequest {
        &self.request
    }

    pub(crate) fn with_payload_field(mut self, key: &str, value: serde_json::Value) -> Self {
        self.request = self.request.with_payload_field(key, value);
        self
    }
}

impl std::ops::Deref for AdmittedRequest {
    type Target = ScheduleRequest;

    fn deref(&self) -> &ScheduleRequest {
        &self.request
    }
}

/// One engine behind the orchestrator: what a backend author implements.
///
/// Object-safe and shared as `Arc<dyn Backend>`; callers reach it through a
/// [`crate::BackendHandle`], which admits every request (descriptor, capabilities, limits)
/// and names the instance in errors, so an implementation only talks to its engine.
/// Implementations map their engine's errors to an [`crate::ErrorKind`] at this boundary
/// and keep the original as `source()`.
#[async_trait]
pub trait Backend: std::any::Any + Send + Sync + Debug {
    /// The backend instance's name: the prefix of every [`TaskId`] it returns.
    fn name(&self) -> &str;

    /// What this backend's kind is and can do.
    fn descriptor(&self) -> &Descriptor;

    /// What this instance honours: its kind's capabilities by default; a backend whose
    /// configuration or engine version does less reports less, and admission follows it.
    fn capabilities(&self) -> Capabilities {
        self.descriptor().capabilities
    }

    /// This instance's limits: its kind's defaults unless its configuration changed them.
    fn limits(&self) -> Limits {
        self.descriptor().limits
    }

    /// Schedule one admitted task and return its id.
    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId>;

    /// Schedule many admitted tasks: one result per request, in request order, so a
    /// failure on the engine never hides the ids of the tasks that were written. The
    /// default runs [`schedule_each`] (64 at a time); backends with a faster bulk path
    /// override it.
    async fn schedule_bulk(&self, requests: Vec<AdmittedRequest>) -> Vec<Result<TaskId>> {
        schedule_each(self.name(), requests, 64, |r| self.schedule(r)).await
    }

    /// The status of a task this backend returned. A task the engine does not know is
    /// [`Error::NotFound`]. Never writes.
    async fn status(&self, id: &TaskId) -> Result<TaskStatus>;

    /// Cancel a task this backend returned.
    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome>;

    /// Wait until the task finishes or `timeout` passes, whichever comes first; a deadline
    /// reached is [`WaitOutcome::StillRunning`], not an error. At most
    /// [`crate::MAX_WAIT`] (the handle refuses longer). The default polls
    /// [`Backend::status`] with a doubling pause ([`crate::raw::wait::poll`]); backends
    /// whose engine can tell them (events, long polls) override it.
    async fn wait(&self, id: &TaskId, timeout: std::time::Duration) -> Result<WaitOutcome> {
        crate::wait::poll(self, id, timeout).await
    }

    /// Check that the engine is reachable and usable.
    async fn health(&self) -> Result<Health>;

    /// Up to `limit` of this instance's tasks that pass `filter`, in the backend's own
    /// order, starting just after the task whose [`crate::raw::Listed::resume`] token is `resume`
    /// (from the start when `None`). Tasks started outside the orchestrator are listed
    /// too, with ids [`Backend::status`] and [`Backend::cancel`] accept. Never writes; its
    /// cost must not grow with the number of tasks beyond what the engine's indexes allow
    /// (document the bound). Declared by [`crate::Capability::List`]; the default answers
    /// `Unsupported`.
    async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        let _ = (filter, resume, limit);
        Err(unsupported(self.name(), "list"))
    }

    /// How many of this instance's tasks pass `filter` (its type and name; the
    /// orchestrator refuses state and time filters here), per unified state. Cheap enough
    /// to call every second. Declared by [`crate::Capability::Counts`]; the default
    /// answers `Unsupported`.
    async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        let _ = filter;
        Err(unsupported(self.name(), "counts"))
    }
}

fn unsupported(backend: &str, operation: &str) -> Error {
    Error::Unsupported {
        backend: backend.to_string(),
        operation: operation.to_string(),
    }
}

/// The engine half of a bulk schedule, for requests already admitted: `schedule` runs for
/// each, `concurrency` at a time, one result per request in order. Once a call fails
/// `Unavailable` or `Timeout`, the requests not started yet are not sent
/// ([`Error::NotSent`]): a dead engine costs one timeout per wave of `concurrency`, not one
/// per task. `backend` names the backend in those errors.
pub async fn schedule_each<F, Fut>(
    backend: &str,
    requests: Vec<AdmittedRequest>,
    concurrency: usize,
    schedule: F,
) -> Vec<Result<TaskId>>
where
    F: Fn(AdmittedRequest) -> Fut,
    Fut: std::future::Future<Output = Result<TaskId>>,
{
    use futures::StreamExt;
    let broken: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (broken, schedule) = (&broken, &schedule);
    futures::stream::iter(requests)
        .map(|r| async move {
            if let Some(reason) = broken.get() {
                return Err(Error::NotSent {
                    backend: backend.to_string(),
                    reason: reason.clone(),
                });
            }
            let result = schedule(r).await;
            if let Err(e) = &result {
                if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) {
                    let _ = broken.set(e.to_string());
                }
            }
            result
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// A shared backend, as a factory builds it (unchecked: wrap it in a
/// [`crate::BackendHandle`] to use it).
pub type SharedBackend = Arc<dyn Backend>;
