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
//! or [`Orchestrator::from_config`] (TOML, see [`config`]).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use orchestrator_core::*;

// Naming each enabled backend crate keeps its `inventory` registration linked.
#[cfg(feature = "bullmq")]
pub use backend_bullmq_compat as bullmq;
#[cfg(feature = "n8n")]
pub use backend_n8n as n8n;
#[cfg(feature = "temporal")]
pub use backend_temporal as temporal;
#[cfg(feature = "testkit")]
pub use orchestrator_testkit as testkit;

#[cfg(feature = "bullmq")]
pub mod track;

/// Backends this build was compiled with (by Cargo feature), as registry names.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "bullmq") {
        names.push("bullmq");
    }
    if cfg!(feature = "temporal") {
        names.push("temporal");
    }
    if cfg!(feature = "n8n") {
        names.push("n8n");
    }
    if cfg!(feature = "testkit") {
        names.extend(["memory-bullmq", "memory-temporal", "memory-n8n"]);
    }
    names
}
