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

use orchestrator_core::{BackendRegistration, Result, SharedBackend, TaskType};

fn build(table: &serde_json::Value) -> Result<SharedBackend> {
    let config: TemporalConfig =
        orchestrator_core::config::parse_backend_config("temporal", table)?;
    Ok(std::sync::Arc::new(TemporalBackend::new(config)?))
}

fn schema() -> schemars::Schema {
    schemars::schema_for!(TemporalConfig)
}

/// The `temporal` registration.
pub const REGISTRATION: BackendRegistration = BackendRegistration {
    name: "temporal",
    source: "TEMPORAL",
    task_types: &[TaskType::Complex],
    summary: "COMPLEX tasks as Temporal workflows (temporalio-client)",
    config_schema: schema,
    build,
};

orchestrator_core::inventory::submit!(REGISTRATION);

/// Register `temporal` on `registry` explicitly (for builds without `inventory`).
pub fn register(registry: &mut orchestrator_core::Registry) {
    registry.register(&REGISTRATION);
}
