//! COMPLEX tasks as Temporal workflows, through the official `temporalio-client`.
//!
//! | orchestrator | Temporal |
//! |---|---|
//! | `temporal.workflowType` | workflow type, started untyped |
//! | `temporal.workflowArgs` (or the payload when empty) | one `json/plain` payload per argument |
//! | `temporal.taskQueue` (default: `backends.temporal.task_queue`) | task queue |
//! | `temporal.workflowId` (default: `<task name>-<uuid>`) | workflow id |
//! | `temporal.idConflictPolicy` | `WorkflowIdConflictPolicy` (a duplicate under `FAIL` is `AlreadyExists`) |
//! | `temporal.executionTimeoutMs` | execution timeout |
//! | `attempts` + `backoff` | workflow retry policy |
//! | task name | memo `orchestratorTaskName` |
//! | task id `temporal:<workflow id>:<run id>` | execution; status follows continue-as-new to the latest run |
//! | cancel | cancellation request → `CancelRequested`; closed → `NotCancellableFinished` |
//! | [`TemporalBackend::terminate`] | terminate |
//!
//! `delay` and `priority` are refused with `Unsupported` (temporalio-client 1.1 has no start
//! delay; BullMQ priorities have no Temporal meaning) rather than dropped.
//!
//! States: `Running` → `RUNNING` (or `PENDING` while no worker has taken the first workflow
//! task), `Completed`, `Failed`, `Canceled` → `CANCELLED`, `Terminated`, `TimedOut`,
//! `ContinuedAsNew`, `Paused` → `WAITING`, anything newer → `UNKNOWN`.

mod backend;
mod config;

pub use backend::TemporalBackend;
pub use config::TemporalConfig;

use orchestrator_core::{BackendFactory, Descriptor, Result, SharedBackend, TaskType};

/// The `temporal` backend kind: descriptor, configuration, constructor.
#[derive(Debug)]
pub struct TemporalFactory;

impl BackendFactory for TemporalFactory {
    const DESCRIPTOR: Descriptor = Descriptor {
        kind: "temporal",
        source: "TEMPORAL",
        task_types: &[TaskType::Complex],
        capabilities: orchestrator_core::descriptor::engines::TEMPORAL,
        summary: "COMPLEX tasks as Temporal workflows (temporalio-client)",
        input_rules: orchestrator_core::validate::temporal_rules,
    };
    type Config = TemporalConfig;

    fn build(instance: &str, config: TemporalConfig) -> Result<SharedBackend> {
        Ok(std::sync::Arc::new(TemporalBackend::named(
            instance, config,
        )?))
    }
}

orchestrator_core::register_backend!(TemporalFactory);
