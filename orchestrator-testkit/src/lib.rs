//! Test support for orchestrator users and backend authors.
//!
//! * [`MemoryBackend`]: in-memory backends for all three task types that really run
//!   tasks, each built from its engine's spec (capabilities, engine options, rules, native
//!   states, limits) and reporting the same labels as the real engines. They are also the
//!   embedded default behind [`in_memory`], which needs no server.
//! * Test helpers on [`MemoryBackend`]: [`MemoryBackend::scheduled`] to inspect what was
//!   scheduled, [`MemoryBackend::complete`] / [`MemoryBackend::fail`] to drive a task by
//!   hand, [`MemoryBackend::fail_next`] to inject faults. All timing uses `tokio::time`,
//!   so tests may run under `tokio::time::pause()`.
//! * [`conformance`]: the suite every backend passes, run from a `harness = false` test
//!   binary with [`conformance::Suite::run`].
//! * `engines` (feature `engines`): throwaway real engines for integration tests (Redis,
//!   a Temporal dev server, n8n, Node BullMQ scripts).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> orchestrator_core::Result<()> {
//! use orchestrator_core::{TaskOptions, TaskState};
//! use serde_json::json;
//!
//! let mem = orchestrator_testkit::in_memory();
//! mem.simple.handle("emails", |ctx| async move { Ok(json!({"sent": ctx.payload["to"]})) });
//! let id = mem.orchestrator.schedule_simple_task("emails", json!({"to": "a@b.c"}), TaskOptions::simple()).await?;
//! let status = orchestrator_testkit::conformance::wait_finished(
//!     &mem.simple.shared(), &id, std::time::Duration::from_secs(5)).await;
//! assert_eq!(status.state, TaskState::Completed);
//! # Ok(()) }
//! ```

pub mod conformance;
#[cfg(feature = "engines")]
pub mod engines;
mod handler;
mod memory;

pub use handler::{Handler, HandlerResult, TaskContext};
pub use memory::{
    DEFAULT_MAX_TASKS, MEMORY_BULLMQ, MEMORY_N8N, MEMORY_TEMPORAL, MemoryBackend,
    MemoryBullmqFactory, MemoryConfig, MemoryN8nFactory, MemoryTemporalFactory, ScheduledTask,
    register,
};

use orchestrator_core::{Orchestrator, TaskType};

/// An orchestrator routed to three fresh in-memory backends, with handles to them.
#[derive(Debug, Clone)]
pub struct InMemory {
    /// Routes SIMPLE → `memory-bullmq`, COMPLEX → `memory-temporal`,
    /// INTEGRATION → `memory-n8n`.
    pub orchestrator: Orchestrator,
    /// The SIMPLE backend (register queue handlers here).
    pub simple: MemoryBackend,
    /// The COMPLEX backend (register workflow-type handlers here).
    pub complex: MemoryBackend,
    /// The INTEGRATION backend (register n8n workflow handlers here).
    pub integration: MemoryBackend,
}

/// Build an [`InMemory`] orchestrator: the embedded default that needs no server.
pub fn in_memory() -> InMemory {
    let simple = MemoryBackend::bullmq();
    let complex = MemoryBackend::temporal();
    let integration = MemoryBackend::n8n();
    let orchestrator = Orchestrator::builder()
        .backend(simple.shared())
        .backend(complex.shared())
        .backend(integration.shared())
        .route(TaskType::Simple, "memory-bullmq")
        .route(TaskType::Complex, "memory-temporal")
        .route(TaskType::Integration, "memory-n8n")
        .build()
        .unwrap_or_else(|e| unreachable!("in-memory routes always resolve: {e}"));
    InMemory {
        orchestrator,
        simple,
        complex,
        integration,
    }
}

/// The checked handle of a backend built by hand, as an orchestrator would hold it: for
/// tests that call a typed backend's task API (`b.checked().schedule(request)`).
pub trait Checked {
    /// This backend behind the orchestrator's checks.
    fn checked(&self) -> orchestrator_core::BackendHandle;
}

impl<B: orchestrator_core::raw::Backend + Clone> Checked for B {
    fn checked(&self) -> orchestrator_core::BackendHandle {
        orchestrator_core::BackendHandle::new(self.clone())
    }
}
