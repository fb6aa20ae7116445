//! Core of the orchestrator: the task model, the [`Backend`] trait, the backend
//! [`Registry`], routing, configuration and the [`Orchestrator`] handle.
//!
//! Backend crates depend on this crate only; the `orchestrator` facade composes them.
//! Most users want the facade, which re-exports everything here.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod backend;
pub mod config;
pub mod descriptor;
pub mod error;
mod id;
pub mod init;
mod orchestrator;
pub mod registry;
mod status;
mod task;
pub mod validate;
pub mod wait;

pub use async_trait::async_trait;
pub use backend::{Backend, ScheduleRequest, SharedBackend, schedule_each};
pub use config::{Millis, OrchestratorConfig, RedactedUrl, Routing, Secret};
pub use descriptor::{BackendFactory, Capabilities, Capability, Descriptor};
pub use error::{BoxError, Error, ErrorKind, Result, ValidationError};
pub use id::{MAX_TASK_ID_LEN, TaskId, TaskIdError, is_backend_name};
pub use init::InitOnce;
pub use orchestrator::{BackendInfo, IntoTaskId, Orchestrator, OrchestratorBuilder};
pub use registry::{BackendRegistration, Registry};
pub use status::{CancelOutcome, Health, Source, TaskState, TaskStatus, native_states};
pub use task::{
    Backoff, Deduplication, IdConflictPolicy, N8nOptions, RemovePolicy, TaskOptions, TaskType,
    TemporalOptions,
};
pub use wait::WaitOutcome;

#[doc(hidden)]
pub use inventory;

/// Milliseconds since the Unix epoch, as every engine here stores time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// JSON Schemas of [`OrchestratorConfig`] and [`TaskOptions`], plus each registered
/// backend's configuration table, as one JSON document.
pub fn json_schemas(registry: &Registry) -> serde_json::Value {
    let backends: serde_json::Map<String, serde_json::Value> = registry
        .iter()
        .map(|r| (r.name().to_string(), r.config_schema().to_value()))
        .collect();
    serde_json::json!({
        "config": schemars::schema_for!(OrchestratorConfig),
        "taskOptions": schemars::schema_for!(TaskOptions),
        "taskStatus": schemars::schema_for!(TaskStatus),
        "backends": backends,
    })
}
