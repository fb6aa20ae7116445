//! Task handlers: the async functions that do a task's work in tests and in-memory runs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use orchestrator_core::TaskId;
use serde_json::Value;

/// What a handler receives.
#[derive(Clone)]
pub struct TaskContext {
    /// The task's id.
    pub task_id: TaskId,
    /// The task name (the queue for SIMPLE tasks).
    pub name: String,
    /// The caller's payload.
    pub payload: Value,
    /// Workflow arguments (COMPLEX tasks); empty otherwise.
    pub args: Vec<Value>,
    /// Which attempt this is, starting at 1.
    pub attempt: u32,
    progress: Option<Arc<dyn Fn(Value) + Send + Sync>>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("task_id", &self.task_id)
            .field("name", &self.name)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// A context; `progress` receives what [`TaskContext::report_progress`] reports.
    pub fn new(
        task_id: TaskId,
        name: impl Into<String>,
        payload: Value,
        args: Vec<Value>,
        attempt: u32,
        progress: Option<Arc<dyn Fn(Value) + Send + Sync>>,
    ) -> Self {
        Self {
            task_id,
            name: name.into(),
            payload,
            args,
            attempt,
            progress,
        }
    }

    /// Report progress (a number or any JSON); visible in the task's status.
    pub fn report_progress(&self, progress: Value) {
        if let Some(sink) = &self.progress {
            sink(progress);
        }
    }
}

/// The result of one attempt: a JSON value, or a failure message.
pub type HandlerResult = Result<Value, String>;

/// A shared async task handler.
#[derive(Clone)]
pub struct Handler(Arc<dyn Fn(TaskContext) -> BoxFuture<'static, HandlerResult> + Send + Sync>);

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

impl Handler {
    /// Wrap an async function.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler(Arc::new(move |ctx| Box::pin(f(ctx))))
    }

    /// Run one attempt.
    pub fn call(&self, ctx: TaskContext) -> BoxFuture<'static, HandlerResult> {
        (self.0)(ctx)
    }
}
