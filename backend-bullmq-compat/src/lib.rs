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
//! What the kind is and honours, with its state table: [`spec`] (feature-free). With
//! feature `client` (default): the backend, configured by `BullmqConfig`, registered as
//! `bullmq` (label `BULLMQ`).

pub mod spec;

#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod config;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
mod events;
#[cfg(feature = "client")]
mod monitor;
#[cfg(feature = "client")]
mod scripts;
#[cfg(feature = "client")]
mod worker;

#[cfg(feature = "client")]
pub use backend::{BullmqBackend, MAX_QUEUE_HANDLES};
#[cfg(feature = "client")]
pub use config::BullmqConfig;
#[cfg(feature = "client")]
pub use scripts::{CANCEL_MEMORY, CANCEL_MEMORY_MAX};
#[cfg(feature = "client")]
pub use worker::{HandlerError, JobContext, Reschedule, TaskWorker, WorkerConfig};

/// The `bullmq` crate this backend runs on, for what the wrapper does not expose.
#[cfg(feature = "client")]
pub use bullmq;

/// The `bullmq` backend kind: descriptor ([`spec::DESCRIPTOR`]), configuration,
/// constructor.
#[cfg(feature = "client")]
#[derive(Debug)]
pub struct BullmqFactory;

#[cfg(feature = "client")]
impl orchestrator_core::raw::BackendFactory for BullmqFactory {
    const DESCRIPTOR: orchestrator_core::Descriptor = spec::DESCRIPTOR;
    type Config = BullmqConfig;

    fn build(
        instance: &str,
        config: BullmqConfig,
    ) -> orchestrator_core::Result<orchestrator_core::raw::SharedBackend> {
        Ok(std::sync::Arc::new(BullmqBackend::named(instance, config)?))
    }
}

#[cfg(feature = "client")]
orchestrator_core::register_backend!(BullmqFactory);
