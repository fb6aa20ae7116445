//! A Rust test worker (temporalio-sdk) on its own thread, with the test workflows.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use backend_temporal::TemporalBackend;
use orchestrator_testkit::{Handler, TaskContext};
use serde_json::Value;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, ContinueAsNewOptions, Runtime,
    TimerResult, Worker, WorkerOptions, WorkflowContext, WorkflowResult, WorkflowTermination,
};

/// Handlers the `conformance` workflow's activity runs, by task queue.
static HANDLERS: LazyLock<Mutex<HashMap<String, Handler>>> = LazyLock::new(Default::default);

pub fn set_handler(task_queue: &str, handler: Handler) {
    HANDLERS
        .lock()
        .expect("handlers")
        .insert(task_queue.to_string(), handler);
}

/// Workflow `conformance`: runs the registered handler for its task queue in an activity.
#[workflow]
#[derive(Default)]
pub struct ConformanceWorkflow;

#[workflow_methods]
impl ConformanceWorkflow {
    #[run(name = "conformance")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: Value) -> WorkflowResult<Value> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
            .retry_policy(
                temporalio_common::RetryPolicy::builder()
                    .maximum_attempts(1)
                    .build(),
            )
            .build();
        // The handler sees the orchestrator's task id (the chain's first run) and the
        // workflow attempt (each retry is a new run of the chain).
        let info = ctx.info();
        let input = serde_json::json!({
            "input": input,
            "attempt": info.attempt(),
            "taskId": format!("temporal:{}:{}", info.workflow_id(), info.first_execution_run_id()),
        });
        match ctx
            .execute_activity(TestActivities::run_handler, input, opts)
            .await
        {
            Ok(v) => Ok(v),
            Err(ActivityExecutionError::Cancelled(_)) => Err(WorkflowTermination::cancelled()),
            Err(e) => Err(ApplicationFailure::new(
                e.cause()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| e.to_string()),
            )
            .into()),
        }
    }
}

/// Workflow `sleep`: waits `secs` seconds on a durable timer; ends Canceled when cancelled.
#[workflow]
#[derive(Default)]
pub struct SleepWorkflow;

#[workflow_methods]
impl SleepWorkflow {
    #[run(name = "sleep")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, secs: u64) -> WorkflowResult<String> {
        match ctx.timer(Duration::from_secs(secs)).await {
            TimerResult::Fired => Ok("slept".into()),
            TimerResult::Cancelled => Err(WorkflowTermination::cancelled()),
        }
    }
}

/// Workflow `fail`: fails with the given message.
#[workflow]
#[derive(Default)]
pub struct FailWorkflow;

#[workflow_methods]
impl FailWorkflow {
    #[run(name = "fail")]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, message: String) -> WorkflowResult<Value> {
        Err(ApplicationFailure::new(message).into())
    }
}

/// Workflow `countdown`: continues as new until `n` reaches 0, then returns "done".
#[workflow]
#[derive(Default)]
pub struct CountdownWorkflow;

#[workflow_methods]
impl CountdownWorkflow {
    #[run(name = "countdown")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u64) -> WorkflowResult<String> {
        if n == 0 {
            return Ok("done".into());
        }
        ctx.timer(Duration::from_millis(50)).await;
        ctx.continue_as_new(n - 1, ContinueAsNewOptions::default())?;
        Ok("unreachable".into())
    }
}

pub struct TestActivities;

#[activities]
impl TestActivities {
    #[activity(name = "run_handler")]
    pub async fn run_handler(ctx: ActivityContext, input: Value) -> Result<Value, ActivityError> {
        let queue = ctx.info().task_queue.clone();
        let handler = HANDLERS.lock().expect("handlers").get(&queue).cloned();
        let Some(handler) = handler else {
            return Err(
                ApplicationFailure::new(format!("no handler for task queue {queue}")).into(),
            );
        };
        let task_id: orchestrator_core::TaskId = input["taskId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the conformance workflow passes a task id: {input}"));
        let attempt = input["attempt"]
            .as_u64()
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or_else(|| panic!("the conformance workflow passes its attempt: {input}"));
        let tc = TaskContext::new(
            task_id,
            queue,
            input["input"].clone(),
            Vec::new(),
            attempt,
            None,
        );
        handler
            .call(tc)
            .await
            .map_err(|m| ApplicationFailure::new(m).into())
    }
}

/// A Rust worker on its own thread (`Worker::run` is `!Send`).
pub struct TestWorker {
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl TestWorker {
    pub async fn start(backend: &TemporalBackend, task_queue: &str) -> TestWorker {
        let client = backend.client().await.expect("client").clone();
        let queue = task_queue.to_string();
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn Fn() + Send + Sync>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let runtime = Runtime::from_current_tokio(Default::default()).expect("sdk runtime");
                let opts = WorkerOptions::new(queue)
                    .register_workflow::<ConformanceWorkflow>()
                    .expect("register")
                    .register_workflow::<SleepWorkflow>()
                    .expect("register")
                    .register_workflow::<FailWorkflow>()
                    .expect("register")
                    .register_workflow::<CountdownWorkflow>()
                    .expect("register")
                    .register_activities(TestActivities)
                    .build();
                let mut worker = Worker::new(&runtime, client, opts).expect("worker");
                let handle = worker.shutdown_handle();
                let _ = tx.send(Box::new(handle));
                worker.run().await.map_err(|e| e.to_string())
            })
        });
        let shutdown = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("worker started");
        TestWorker {
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Shut the worker down and wait for it: `Err` when the worker failed (or its thread
    /// panicked), so a test fails instead of passing silently.
    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(s) = self.shutdown.take() {
            s();
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(format!("the Temporal test worker failed: {e}")),
            Some(Err(_)) => Err("the Temporal test worker's thread panicked".into()),
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            s();
        }
    }
}
