//! Core of the orchestrator: the task model, the [`Orchestrator`] handle, routing,
//! configuration, errors, and the machinery every backend plugs into.
//!
//! Core knows no engine. Each engine's crate declares what it is and can do (its label,
//! task types, capabilities, engine options, input rules, native states, limits) in a
//! [`Descriptor`]; the [`Registry`] builds backends by kind, and every backend is reached
//! through one checking layer, [`BackendHandle`].
//!
//! End users want the `orchestrator` facade, which re-exports this crate's task API.
//! Backend authors find what they need in [`raw`].
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod backend;
mod config;
mod descriptor;
mod error;
mod handle;
mod id;
mod init;
pub mod instruments;
mod monitor;
mod orchestrator;
mod registry;
mod status;
mod task;
mod validate;
mod wait;

pub use backend::ScheduleRequest;
pub use config::{Millis, OrchestratorConfig, RedactedUrl, Routing, Secret};
pub use descriptor::{Capabilities, Capability, Descriptor, EngineOption, Limits};
pub use error::{BoxError, Error, ErrorKind, Result, ValidationError};
pub use handle::BackendHandle;
pub use id::{MAX_TASK_ID_LEN, TaskId, TaskIdError};
pub use monitor::{
    CountRow, Counts, DEFAULT_MONITOR_TIMEOUT, DEFAULT_PAGE, InstanceError, ListFilter,
    MAX_CURSOR_LEN, MAX_MONITOR_TIMEOUT, MAX_PAGE, MAX_TIME, Origin, Page, PageRequest,
};
pub use orchestrator::{BackendInfo, IntoTaskId, Orchestrator, OrchestratorBuilder};
pub use registry::Registry;
pub use status::{CancelOutcome, EngineLabel, Health, TaskState, TaskStatus};
pub use task::{Backoff, OptionBlock, TaskOptions, TaskType};
pub use wait::{MAX_WAIT, WaitOutcome};

/// What a backend author needs beyond the task API (OpenDAL's `raw`): the [`raw::Backend`]
/// trait and its factory, admitted requests, the validation and time helpers engines build
/// their rules from, and the registration machinery. Not needed to use the orchestrator.
pub mod raw {
    pub use crate::backend::{AdmittedRequest, Backend, SharedBackend, schedule_each};
    pub use crate::config::{
        MAX_CONFIG_BYTES, NON_CONFIG_VARS, check_instance_name, is_instance_name,
        parse_backend_config, read_capped, redact, redact_url,
    };
    pub use crate::descriptor::{
        BackendFactory, DEFAULT_MAX_PAYLOAD, InputRules, NativeStates, Tracking, TrackingHook,
        check_state_table, map_native_state, no_rules, options_used,
    };
    pub use crate::id::is_backend_name;
    pub use crate::init::InitOnce;
    pub use crate::monitor::{BackendPage, Listed, MAX_TOKEN_LEN};
    pub use crate::orchestrator::TRACKING_ID_PREFIX;
    pub use crate::registry::BackendRegistration;
    pub use async_trait::async_trait;

    #[doc(hidden)]
    pub use inventory;

    /// Input validation helpers (names, sizes, nesting, durations) for engine rules.
    pub mod validate {
        pub use crate::validate::{
            MAX_ATTEMPTS, MAX_DELAY_MS, MAX_JSON_DEPTH, MAX_NAME_LEN, MAX_RETRY_HORIZON_MS,
            drop_deep, duration_ms, http_url, json_depth, json_nesting, json_size, name,
            payload_size, retry_horizon_ms,
        };
    }

    /// The polling wait and its bounds, for backends without a better way to wait.
    pub mod wait {
        pub use crate::wait::{FIRST_POLL_INTERVAL, MAX_POLL_INTERVAL, deadline, poll};
    }

    /// Milliseconds since the Unix epoch, as every engine here stores time.
    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// JSON Schemas of [`OrchestratorConfig`] and [`TaskOptions`] (with every registered
/// engine option), [`TaskStatus`], and each registered backend's configuration table, as
/// one JSON document.
pub fn json_schemas(registry: &Registry) -> serde_json::Value {
    let backends: serde_json::Map<String, serde_json::Value> = registry
        .iter()
        .filter_map(|r| Some((r.name().to_string(), r.config_schema()?.to_value())))
        .collect();
    let mut options = schemars::schema_for!(TaskOptions).to_value();
    if let Some(props) = options
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for d in registry.iter().filter_map(|r| r.descriptor()) {
            for o in d.options {
                let mut schema = o.schema().to_value();
                if let Some(obj) = schema.as_object_mut() {
                    obj.remove("$schema");
                    obj.insert(
                        "description".into(),
                        format!("{} (engine option of `{}`)", o.summary, d.kind).into(),
                    );
                }
                props.entry(o.key.to_string()).or_insert(schema);
            }
        }
    }
    if let Some(obj) = options.as_object_mut() {
        obj.insert("additionalProperties".into(), false.into());
    }
    serde_json::json!({
        "config": schemars::schema_for!(OrchestratorConfig),
        "taskOptions": options,
        "taskStatus": schemars::schema_for!(TaskStatus),
        "backends": backends,
    })
}
