//! The conformance suite every backend passes, its fakes included.
//!
//! The suite is a table over the backend's [`Descriptor`](orchestrator_core::Descriptor):
//!
//! * **generic cases** run everywhere: round trips, completion, failure, waiting,
//!   cancelling a finished task, unknown and malformed ids, invalid input, 1,000 concurrent
//!   schedules;
//! * for every generic [`Capability`] the backend declares, an `honours_<capability>` case
//!   shows it *observably* takes effect (the task sits delayed, run order follows priority,
//!   `attempts_made` counts retries, gaps between attempts follow the backoff…);
//! * for every generic capability it does **not** declare, a `raw_<capability>` case sends
//!   the option to the engine *past admission* ([`AdmittedRequest::bypassing_admission`])
//!   and shows the engine does not honour it either, so a descriptor that claims less than
//!   its engine is caught;
//! * for every engine option it owns (`jobId`, the `temporal` block…), the cases of that
//!   option.
//!
//! Refusals of undeclared options never reach an engine (the orchestrator's admission
//! refuses first); they are tested once, in `orchestrator-core`.
//!
//! Cases drive work through [`Behavior`]s every engine can run (echo, succeed-or-fail,
//! hold until cancelled), so real engines that run work defined elsewhere (n8n workflows)
//! run them too; only cases that must observe a handler from inside (attempt numbers,
//! progress) need Rust handlers.
//!
//! [`Suite::run`] is a `libtest-mimic` main (`harness = false`): each case is a trial named
//! `<kind>::<case>`; a case that cannot run is listed as *ignored* with its reason as the
//! trial's kind (`[skip: …]`), and fails if forced to run (`--include-ignored`). A real
//! engine's binary runs the same table on the engine and on its fake
//! ([`Suite::run_with_parity`]) and compares the outcomes and skip lists with a table
//! checked in beside the test. The harness is built once per binary (one engine shared by
//! every case); every case uses fresh task names.
//!
//! Not a semver-stable API: cases get added.
//!
//! [`AdmittedRequest::bypassing_admission`]: orchestrator_core::raw::AdmittedRequest::bypassing_admission

mod cases;
mod runner;

use std::sync::Arc;
use std::time::Duration;

use orchestrator_core::raw::async_trait;
use orchestrator_core::{
    BackendHandle, Capability, ErrorKind, Result, TaskId, TaskOptions, TaskStatus, TaskType,
};
use serde_json::json;

pub use cases::*;
#[cfg(feature = "harness")]
pub use runner::run_trials;
pub use runner::{Case, CaseFn, Suite};

#[cfg(feature = "harness")]
pub use libtest_mimic;

use crate::handler::Handler;
use crate::memory::MemoryBackend;

/// A running worker (or registered handler). Stop it with [`Worker::stop`], which says
/// whether the worker failed meanwhile; dropping it stops it without telling.
#[async_trait]
pub trait Worker: Send {
    /// Stop taking tasks; let running ones finish. `Err` when the worker failed.
    async fn stop(self: Box<Self>) -> std::result::Result<(), String>;
}

/// Releases the tasks a [`Behavior::Hold`] holds (on engines that run Rust handlers). A
/// release is remembered: a held task that starts after it completes at once.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Gate {
    /// Let every held task complete.
    pub fn release(&self) {
        self.0.send_replace(true);
    }

    /// Wait until released.
    async fn released(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as this gate: the wait ends only with a release.
        let _ = rx.wait_for(|released| *released).await;
    }
}

/// What a served task does, in terms every engine can run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Behavior {
    /// Complete with `{"echo": <payload>}`.
    Echo,
    /// Complete with `{"done": 1}` when the payload's `ok` is `true`; otherwise fail with a
    /// message containing `boom`.
    OkOrBoom,
    /// Keep running until cancelled, or (Rust handlers) until the gate is released, then
    /// complete with `"released"`. Engines without Rust handlers hold for at least a
    /// minute.
    Hold(Gate),
    /// Run this Rust handler; harnesses that cannot run Rust code refuse it.
    Rust(Handler),
}

impl Behavior {
    /// This behavior as a Rust handler.
    pub fn into_handler(self) -> Handler {
        match self {
            Behavior::Echo => Handler::new(|ctx| async move { Ok(json!({"echo": ctx.payload})) }),
            Behavior::OkOrBoom => Handler::new(|ctx| async move {
                if ctx.payload["ok"] == json!(true) {
                    Ok(json!({"done": 1}))
                } else {
                    Err("boom".to_string())
                }
            }),
            Behavior::Hold(gate) => Handler::new(move |_| {
                let gate = gate.clone();
                async move {
                    gate.released().await;
                    Ok(json!("released"))
                }
            }),
            Behavior::Rust(h) => h,
        }
    }
}

/// What the suite needs from a backend under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test, behind the orchestrator's checks.
    fn backend(&self) -> BackendHandle;

    /// Options that make a task named `name` land on this backend, handled by the worker
    /// [`Harness::serve`] started for `name`.
    fn options(&self, name: &str) -> TaskOptions {
        match self.task_type() {
            TaskType::Simple => TaskOptions::simple(),
            TaskType::Complex => {
                TaskOptions::complex(backend_temporal::spec::TemporalOptions::new(name, name))
            }
            TaskType::Integration => {
                TaskOptions::integration(backend_n8n::spec::N8nOptions::workflow(name))
            }
        }
    }

    /// The task type this backend runs.
    fn task_type(&self) -> TaskType;

    /// Start processing tasks named `name` as `behavior` says.
    async fn serve(&self, name: &str, behavior: Behavior) -> Result<Box<dyn Worker>>;

    /// Whether [`Behavior::Rust`] handlers can run here.
    fn runs_rust(&self) -> bool {
        true
    }

    /// A well-formed id of this backend that names no task.
    fn unknown_id(&self, name: &str) -> TaskId {
        let backend = self.backend();
        TaskId::new(backend.name(), &format!("{name}:does-not-exist"))
            .unwrap_or_else(|e| panic!("backend name {} is not valid: {e}", backend.name()))
    }

    /// How long a task may take to start once a worker is free (engines poll).
    fn pickup_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// A [`Harness`] over one [`MemoryBackend`].
#[derive(Debug, Clone)]
pub struct MemoryHarness {
    backend: MemoryBackend,
    task_type: TaskType,
}

impl MemoryHarness {
    /// Test `memory-bullmq`.
    pub fn bullmq() -> Self {
        Self::of(MemoryBackend::bullmq(), TaskType::Simple)
    }

    /// Test `memory-temporal`.
    pub fn temporal() -> Self {
        Self::of(MemoryBackend::temporal(), TaskType::Complex)
    }

    /// Test `memory-n8n`.
    pub fn n8n() -> Self {
        Self::of(MemoryBackend::n8n(), TaskType::Integration)
    }

    /// Test `backend`, which runs `task_type` tasks.
    pub fn of(backend: MemoryBackend, task_type: TaskType) -> Self {
        Self { backend, task_type }
    }
}

struct MemoryWorker {
    backend: MemoryBackend,
    key: String,
}

#[async_trait]
impl Worker for MemoryWorker {
    async fn stop(self: Box<Self>) -> std::result::Result<(), String> {
        self.backend.remove_handler(&self.key);
        Ok(())
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn backend(&self) -> BackendHandle {
        self.backend.shared()
    }

    fn task_type(&self) -> TaskType {
        self.task_type
    }

    fn unknown_id(&self, name: &str) -> TaskId {
        // Shaped as the fake's engine shapes its ids (see `malformed_id_invalid`).
        let zero = uuid::Uuid::nil();
        let native = match self.task_type {
            TaskType::Simple => format!("{name}:does-not-exist"),
            TaskType::Complex => format!("{name}:{zero}"),
            TaskType::Integration => zero.to_string(),
        };
        TaskId::new(
            orchestrator_core::raw::Backend::name(&self.backend),
            &native,
        )
        .expect("a valid id")
    }

    async fn serve(&self, name: &str, behavior: Behavior) -> Result<Box<dyn Worker>> {
        self.backend.set_handler(name, behavior.into_handler());
        Ok(Box::new(MemoryWorker {
            backend: self.backend.clone(),
            key: name.to_string(),
        }))
    }
}

/// Poll until `id` is finished, or panic after `timeout`.
pub async fn wait_finished(b: &BackendHandle, id: &TaskId, timeout: Duration) -> TaskStatus {
    wait_until(b, id, timeout, |s| s.state.is_finished()).await
}

/// Poll until `id`'s status satisfies `done`, or panic after `timeout`.
pub async fn wait_until(
    b: &BackendHandle,
    id: &TaskId,
    timeout: Duration,
    done: impl Fn(&TaskStatus) -> bool,
) -> TaskStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = b.status(id).await.expect("status");
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} did not reach the expected state within {timeout:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until `id` is gone (`NotFound`), or panic after `timeout`.
async fn wait_gone(b: &BackendHandle, id: &TaskId, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match b.status(id).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} still there after {timeout:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The descriptor's capability `c` as a trial-name suffix (`cancel_running`).
fn snake(c: Capability) -> String {
    let mut out = String::new();
    for ch in format!("{c:?}").chars() {
        if ch.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}
