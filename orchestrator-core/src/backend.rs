//! The [`Backend`] trait every engine implements.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::TaskId;
use crate::status::{CancelOutcome, Health, Source, TaskStatus};
use crate::task::{TaskOptions, TaskType};

/// What a backend can do beyond the required operations. The conformance suite reads
/// these to decide which cases apply, and prints the cases it does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Capabilities {
    /// Honours `delay`.
    pub delay: bool,
    /// Honours `priority` ordering.
    pub priority: bool,
    /// Retries up to `attempts`, waiting `backoff` in between.
    pub retries: bool,
    /// Can cancel a task that has not started.
    pub cancel_pending: bool,
    /// Can cancel (or request cancellation of) a running task.
    pub cancel_running: bool,
    /// Reports progress.
    pub progress: bool,
}

impl Capabilities {
    /// Nothing optional.
    pub const NONE: Capabilities = Capabilities {
        delay: false,
        priority: false,
        retries: false,
        cancel_pending: false,
        cancel_running: false,
        progress: false,
    };

    /// Everything.
    pub const ALL: Capabilities = Capabilities {
        delay: true,
        priority: true,
        retries: true,
        cancel_pending: true,
        cancel_running: true,
        progress: true,
    };
}

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
    /// Validate `name`, `payload` and `options` (see [`crate::validate::task`]).
    pub fn new(
        name: impl Into<String>,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<Self> {
        let name = name.into();
        let payload = serde_json::to_value(payload)
            .map_err(|e| Error::invalid("payload", format!("cannot be serialized to JSON: {e}")))?;
        let created_at = crate::now_ms();
        crate::validate::task(&name, &options, created_at)?;
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
    /// The backend's name: the prefix of every [`TaskId`] it returns.
    fn name(&self) -> &str;

    /// The source reported in statuses (`BULLMQ`, `TEMPORAL`, `N8N`).
    fn source(&self) -> Source;

    /// What this backend supports beyond the required operations.
    fn capabilities(&self) -> Capabilities;

    /// Schedule one task and return its id.
    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId>;

    /// Schedule many tasks; ids come back in request order. The default runs
    /// [`Backend::schedule`] concurrently (up to 64 at a time) and stops at the first
    /// error; backends with a native bulk call override it.
    async fn schedule_bulk(&self, requests: Vec<ScheduleRequest>) -> Result<Vec<TaskId>> {
        use futures::StreamExt;
        futures::stream::iter(requests)
            .map(|r| self.schedule(r))
            .buffered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// The status of a task this backend returned. A task the engine does not know is
    /// [`Error::NotFound`].
    async fn status(&self, id: &TaskId) -> Result<TaskStatus>;

    /// Cancel a task this backend returned.
    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome>;

    /// Check that the engine is reachable and usable.
    async fn health(&self) -> Result<Health>;
}

/// A shared backend.
pub type SharedBackend = Arc<dyn Backend>;
