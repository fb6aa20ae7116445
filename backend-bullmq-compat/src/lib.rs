//! SIMPLE tasks on BullMQ queues, wire-compatible with Node BullMQ.
//!
//! This crate wraps the official BullMQ Rust crate (`bullmq-official`), which runs
//! BullMQ's own Lua scripts: a job added here is exactly what Node's `Queue.add` writes,
//! and a Node `Worker` processes it unchanged; our [`TaskWorker`] processes jobs Node adds.
//!
//! | orchestrator | BullMQ |
//! |---|---|
//! | task name | queue name (no `:`) |
//! | `jobName` (default: task name) | job name |
//! | `priority`, `attempts`, `delay`, `backoff`, `lifo`, `jobId`, `removeOnComplete`, `removeOnFail`, `deduplication` | the same job options |
//! | task id `bullmq:<queue>:<job id>` | job id |
//! | cancel waiting / prioritized / delayed | `Queue.remove` → `Cancelled` (the job is gone: status is then `NotFound`) |
//! | cancel active | refused by BullMQ (locked) → `NotCancellableRunning` |
//! | cancel completed / failed | `NotCancellableFinished` |
//!
//! Configuration: see [`BullmqConfig`]. Registered as `bullmq` (source `BULLMQ`).

mod backend;
mod config;
mod error;
mod worker;

pub use backend::BullmqBackend;
pub use config::BullmqConfig;
pub use worker::{HandlerError, JobContext, TaskWorker, WorkerConfig};

/// The `bullmq` crate this backend runs on, for what the wrapper does not expose.
pub use bullmq;

use orchestrator_core::{BackendRegistration, Result, SharedBackend, TaskType};

fn build(table: &serde_json::Value) -> Result<SharedBackend> {
    let config: BullmqConfig = orchestrator_core::config::parse_backend_config("bullmq", table)?;
    Ok(std::sync::Arc::new(BullmqBackend::new(config)?))
}

fn schema() -> schemars::Schema {
    schemars::schema_for!(BullmqConfig)
}

/// The `bullmq` registration.
pub const REGISTRATION: BackendRegistration = BackendRegistration {
    name: "bullmq",
    source: "BULLMQ",
    task_types: &[TaskType::Simple],
    summary: "SIMPLE tasks on BullMQ-compatible Redis queues (Node BullMQ interop)",
    config_schema: schema,
    build,
};

orchestrator_core::inventory::submit!(REGISTRATION);

/// Register `bullmq` on `registry` explicitly (for builds without `inventory`).
pub fn register(registry: &mut orchestrator_core::Registry) {
    registry.register(&REGISTRATION);
}
