//! COMPLEX tasks on Temporal — not implemented yet.
//!
//! The crate exists so the workspace, the facade's `temporal` feature and the registry
//! have their final shape. Its registration builds nothing: configuring `temporal` gives a
//! typed [`orchestrator_core::ErrorKind::Unsupported`] error that says so, instead of a
//! backend that pretends. The engine work is tracked in the Temporal backend issue (#4).

use orchestrator_core::{BackendRegistration, Error, Result, SharedBackend, TaskType};

fn build(_config: &serde_json::Value) -> Result<SharedBackend> {
    Err(Error::Unsupported {
        backend: "temporal".into(),
        operation: "running workflows in this version (the Temporal backend is not implemented yet; route COMPLEX tasks to `memory-temporal` meanwhile)".into(),
    })
}

fn schema() -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "description": "not implemented yet" })
}

/// The `temporal` registration.
pub const REGISTRATION: BackendRegistration = BackendRegistration {
    name: "temporal",
    source: "TEMPORAL",
    task_types: &[TaskType::Complex],
    summary: "Temporal workflows (not implemented yet)",
    config_schema: schema,
    build,
};

orchestrator_core::inventory::submit!(REGISTRATION);

/// Register `temporal` on `registry` explicitly.
pub fn register(registry: &mut orchestrator_core::Registry) {
    registry.register(&REGISTRATION);
}
