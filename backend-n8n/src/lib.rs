//! INTEGRATION tasks on n8n — not implemented yet.
//!
//! The crate exists so the workspace, the facade's `n8n` feature and the registry
//! have their final shape. Its registration builds nothing: configuring `n8n` gives a
//! typed [`orchestrator_core::ErrorKind::Unsupported`] error that says so, instead of a
//! backend that pretends. The engine work is tracked in the n8n backend issue (#5).

use orchestrator_core::{BackendRegistration, Error, Result, SharedBackend, TaskType};

fn build(_config: &serde_json::Value) -> Result<SharedBackend> {
    Err(Error::Unsupported {
        backend: "n8n".into(),
        operation: "delivering integrations in this version (the n8n backend is not implemented yet; route INTEGRATION tasks to `memory-n8n` meanwhile)".into(),
    })
}

fn schema() -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "description": "not implemented yet" })
}

/// The `n8n` registration.
pub const REGISTRATION: BackendRegistration = BackendRegistration {
    name: "n8n",
    source: "N8N",
    task_types: &[TaskType::Integration],
    summary: "n8n integrations (not implemented yet)",
    config_schema: schema,
    build,
};

orchestrator_core::inventory::submit!(REGISTRATION);

/// Register `n8n` on `registry` explicitly.
pub fn register(registry: &mut orchestrator_core::Registry) {
    registry.register(&REGISTRATION);
}
