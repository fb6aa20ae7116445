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
mod events;
mod scripts;
mod worker;

pub use backend::{BullmqBackend, MAX_QUEUE_HANDLES};
pub use config::BullmqConfig;
pub use scripts::{CANCEL_MEMORY, CANCEL_MEMORY_MAX};
pub use worker::{HandlerError, JobContext, Reschedule, TaskWorker, WorkerConfig};

/// The `bullmq` crate this backend runs on, for what the wrapper does not expose.
pub use bullmq;

use orchestrator_core::{BackendFactory, Descriptor, Result, SharedBackend, TaskType};

/// The `bullmq` backend kind: descriptor, configuration, constructor.
#[derive(Debug)]
pub struct BullmqFactory;

impl BackendFactory for BullmqFactory {
    const DESCRIPTOR: Descriptor = Descriptor {
        kind: "bullmq",
        source: "BULLMQ",
        task_types: &[TaskType::Simple],
        capabilities: orchestrator_core::descriptor::engines::BULLMQ,
        summary: "SIMPLE tasks on BullMQ-compatible Redis queues (Node BullMQ interop)",
        input_rules: orchestrator_core::validate::bullmq_rules,
    };
    type Config = BullmqConfig;

    fn build(instance: &str, config: BullmqConfig) -> Result<SharedBackend> {
        Ok(std::sync::Arc::new(BullmqBackend::named(instance, config)?))
    }
}

orchestrator_core::register_backend!(BullmqFactory);
