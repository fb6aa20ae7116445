//! # orchestrator
//!
//! One task API over three engines, the Rust counterpart of the "standardized
//! orchestrator" guide:
//!
//! | task type | engine | use it for |
//! |---|---|---|
//! | [`TaskType::Simple`] | BullMQ-compatible Redis queues (feature `bullmq`) | short, stateless jobs |
//! | [`TaskType::Complex`] | Temporal (feature `temporal`) | stateful, long-running workflows |
//! | [`TaskType::Integration`] | n8n (feature `n8n`) | external integrations (CI/CD, webhooks) |
//!
//! Feature `testkit` (on by default) adds in-memory backends for all three, which need no
//! server: [`testkit::in_memory`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> orchestrator::Result<()> {
//! use orchestrator::{TaskOptions, TemporalOptions};
//! use serde_json::json;
//!
//! let mem = orchestrator::testkit::in_memory();
//! let orch = mem.orchestrator.clone();
//! let id = orch
//!     .schedule_simple_task("preparation-migration", json!({"projectId": "p1"}), TaskOptions::simple().priority(10).attempts(3))
//!     .await?;
//! let status = orch.get_task_status(&id).await?;
//! println!("{id}: {} from {}", status.state, status.source);
//! assert!(orch.cancel_task(&id).await?);
//! # Ok(()) }
//! ```
//!
//! Configured engines come from [`Orchestrator::from_env`] (`ORCHESTRATOR_BULLMQ_URL`, …)
//! or [`Orchestrator::from_config`] (TOML, see [`OrchestratorConfig`]).
//!
//! ## The surface
//!
//! The root is the task API: [`Orchestrator`], [`TaskOptions`] and each engine's option
//! types ([`TemporalOptions`], [`N8nOptions`], BullMQ's job options through
//! [`JobOptionsExt`]), ids, statuses, errors, configuration, and [`BackendHandle`] for
//! one backend. What a backend author needs (the `Backend` trait and its factory, admitted
//! requests, validation and time helpers, registration) is in [`raw`]; internals are not
//! exported at all:
//!
//! ```compile_fail
//! use orchestrator::Backend; // the backend author's trait is `orchestrator::raw::Backend`
//! ```
//! ```compile_fail
//! let _ = orchestrator::now_ms(); // `orchestrator::raw::now_ms`
//! ```
//! ```compile_fail
//! orchestrator::validate::drop_deep(serde_json::json!(1)); // `orchestrator::raw::validate`
//! ```
//! ```compile_fail
//! let _ = orchestrator::KNOWN_BACKENDS; // gone: kinds come from registrations
//! ```
//! ```compile_fail
//! let _ = orchestrator::descriptor::engines::BULLMQ; // gone: each engine's spec has its facts
//! ```
//! ```compile_fail
//! let _ = orchestrator::config::redact(serde_json::json!({})); // `orchestrator::raw::redact`
//! ```
//! ```
//! // The same items, where a backend author finds them.
//! use orchestrator::raw::{Backend, BackendFactory, InitOnce};
//! let _ = orchestrator::raw::now_ms();
//! orchestrator::raw::validate::drop_deep(serde_json::json!(1));
//! let _ = orchestrator::raw::redact(serde_json::json!({}));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use orchestrator_core::*;

// Each engine's option types, always available (its spec is light).
pub use backend_bullmq_compat::spec::{Deduplication, JobOptionsExt, RemovePolicy};
pub use backend_n8n::spec::N8nOptions;
pub use backend_temporal::spec::{IdConflictPolicy, TemporalOptions};

/// Everything to build and schedule tasks: `use orchestrator::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Backoff, IdConflictPolicy, JobOptionsExt, N8nOptions, Orchestrator, RemovePolicy, TaskId,
        TaskOptions, TaskState, TaskType, TemporalOptions, WaitOutcome,
    };
}

// Naming each enabled backend crate keeps its `inventory` registration linked; a backend
// whose feature is off is registered as absent, so asking for it names the feature.
#[cfg(feature = "bullmq")]
pub use backend_bullmq_compat as bullmq;
#[cfg(feature = "n8n")]
pub use backend_n8n as n8n;
#[cfg(feature = "temporal")]
pub use backend_temporal as temporal;
#[cfg(feature = "testkit")]
pub use orchestrator_testkit as testkit;

#[cfg(not(feature = "bullmq"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "bullmq", "bullmq"
));
#[cfg(not(feature = "temporal"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "temporal", "temporal"
));
#[cfg(not(feature = "n8n"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "n8n", "n8n"
));
#[cfg(not(feature = "testkit"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "memory-bullmq",
    "testkit"
));
#[cfg(not(feature = "testkit"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "memory-temporal",
    "testkit"
));
#[cfg(not(feature = "testkit"))]
orchestrator_core::raw::inventory::submit!(orchestrator_core::raw::BackendRegistration::absent(
    "memory-n8n",
    "testkit"
));

#[cfg(feature = "bullmq")]
pub mod track;
