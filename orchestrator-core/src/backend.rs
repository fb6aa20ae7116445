//! The [`Backend`] trait every engine implements.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::descriptor::{Capabilities, Descriptor};
use crate::error::{Error, ErrorKind, Result};
use crate::id::TaskId;
use crate::status::{CancelOutcome, Health, Source, TaskStatus};
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
    /// The kind whose descriptor admitted this request, so a backend's own check after the
    /// orchestrator's is free. Only core code sets it.
    admitted_by: Option<&'static str>,
    /// The tracking task the orchestrator will schedule for this COMPLEX task.
    tracking_task_id: Option<TaskId>,
}

impl ScheduleRequest {
    /// Validate `name`, `payload` and `options` (see [`crate::validate::task`]).
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
        let created_at = crate::now_ms();
        if let Err(e) = crate::validate::task(&name, &options, created_at) {
            // Refused arguments may be nested deep: drop them without recursion.
            let mut options = options;
            if let Some(t) = options.temporal.as_mut() {
                t.workflow_args
                    .drain(..)
                    .for_each(crate::validate::drop_deep);
            }
            return Err(e.into());
        }
        Ok(Self {
            name,
            payload,
            options,
            created_at,
            admitted_by: None,
            tracking_task_id: None,
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

    /// Whether `kind`'s descriptor already admitted this request.
    pub(crate) fn admitted_by(&self, kind: &str) -> bool {
        self.admitted_by == Some(kind)
    }

    /// Record that `kind`'s descriptor admitted this request.
    pub(crate) fn mark_admitted(&mut self, kind: &'static str) {
        self.admitted_by = Some(kind);
    }

    /// For a COMPLEX task with `trackingQueue`, the id its tracking task will have (set by
    /// the orchestrator before the workflow starts): a backend stores it with the task so
    /// its status can report it ([`TaskStatus::tracking_task_id`]).
    pub fn tracking_task_id(&self) -> Option<&TaskId> {
        self.tracking_task_id.as_ref()
    }

    pub(crate) fn set_tracking_task_id(&mut self, id: TaskId) {
        self.tracking_task_id = Some(id);
    }

    /// When the request was validated (epoch ms).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
}

/// One engine behind the orchestrator.
///
/// Object-safe and shared as `Arc<dyn Backend>`. Implementations map their engine's
/// errors to an [`crate::ErrorKind`] at this boundary and keep the original as `source()`.
#[async_trait]
pub trait Backend: Send + Sync + Debug + 'static {
    /// The backend instance's name: the prefix of every [`TaskId`] it returns.
    fn name(&self) -> &str;

    /// What this backend's kind is and can do. The orchestrator refuses, before any I/O,
    /// every request the descriptor does not admit ([`Descriptor::admit`]).
    fn descriptor(&self) -> &Descriptor;

    /// The source reported in statuses (`BULLMQ`, `TEMPORAL`, `N8N`).
    fn source(&self) -> Source {
        self.descriptor().source()
    }

    /// What this backend supports beyond the required operations.
    fn capabilities(&self) -> Capabilities {
        self.descriptor().capabilities
    }

    /// Schedule one task and return its id. The orchestrator only passes requests the
    /// descriptor admitted; a backend called directly should run
    /// `self.descriptor().admit(self.name(), &request)?` first (the in-tree ones do; it
    /// costs nothing for a request the orchestrator already admitted).
    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId>;

    /// Schedule many tasks: one result per request, in request order, so a failure on the
    /// engine never hides the ids of the tasks that were written. The outer error is for a
    /// batch refused before any I/O (a request the descriptor does not admit): then nothing
    /// was written. The default admits every request, then runs them with
    /// [`schedule_each`] (64 at a time); backends with a faster bulk path override it.
    async fn schedule_bulk(&self, requests: Vec<ScheduleRequest>) -> Result<Vec<Result<TaskId>>> {
        for r in &requests {
            self.descriptor().admit(self.name(), r)?;
        }
        Ok(schedule_each(self.name(), requests, 64, |r| self.schedule(r)).await)
    }

    /// The status of a task this backend returned. A task the engine does not know is
    /// [`Error::NotFound`].
    async fn status(&self, id: &TaskId) -> Result<TaskStatus>;

    /// Cancel a task this backend returned.
    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome>;

    /// Wait until the task finishes or `timeout` passes, whichever comes first; a deadline
    /// reached is [`WaitOutcome::StillRunning`], not an error. At most
    /// [`crate::wait::MAX_WAIT`]. The default polls [`Backend::status`] with a doubling
    /// pause ([`crate::wait::poll`]); backends whose engine can tell them (events, long
    /// polls) override it.
    async fn wait(&self, id: &TaskId, timeout: std::time::Duration) -> Result<WaitOutcome> {
        crate::wait::poll(self, id, timeout).await
    }

    /// Check that the engine is reachable and usable.
    async fn health(&self) -> Result<Health>;
}

/// The engine half of a bulk schedule, for requests already admitted: `schedule` runs for
/// each, `concurrency` at a time, one result per request in order. Once a call fails
/// `Unavailable` or `Timeout`, the requests not started yet are not sent
/// ([`Error::NotSent`]): a dead engine costs one timeout per wave of `concurrency`, not one
/// per task. `backend` names the backend in those errors.
pub async fn schedule_each<F, Fut>(
    backend: &str,
    requests: Vec<ScheduleRequest>,
    concurrency: usize,
    schedule: F,
) -> Vec<Result<TaskId>>
where
    F: Fn(ScheduleRequest) -> Fut,
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

/// A shared backend.
pub type SharedBackend = Arc<dyn Backend>;
