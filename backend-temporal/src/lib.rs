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
//! States: see [`spec`] (`Running` → `RUNNING`, or `PENDING` while no worker has taken
//! the first workflow task; `Canceled` → `CANCELLED`; `Paused` → `WAITING`; anything newer
//! → `UNKNOWN`). Without feature `client` (default) the crate is only its [`spec`].

pub mod spec;

#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod config;

#[cfg(feature = "client")]
pub use backend::TemporalBackend;
#[cfg(feature = "client")]
pub use config::TemporalConfig;
pub use spec::{IdConflictPolicy, TemporalOptions};

/// The `temporal` backend kind: descriptor ([`spec::DESCRIPTOR`]), configuration,
/// constructor.
#[cfg(feature = "client")]
#[derive(Debug)]
pub struct TemporalFactory;

#[cfg(feature = "client")]
impl orchestrator_core::raw::BackendFactory for TemporalFactory {
    const DESCRIPTOR: orchestrator_core::Descriptor = spec::DESCRIPTOR;
    type Config = TemporalConfig;

    fn build(
        instance: &str,
        config: TemporalConfig,
    ) -> orchestrator_core::Result<orchestrator_core::raw::SharedBackend> {
        Ok(std::sync::Arc::new(TemporalBackend::named(
            instance, config,
        )?))
    }
}

#[cfg(feature = "client")]
orchestrator_core::register_backend!(TemporalFactory);
