//! INTEGRATION tasks delivered to n8n webhooks and tracked through n8n's API.
//!
//! ## Delivery
//! `schedule` POSTs the caller's payload (unchanged JSON) to the workflow's production
//! webhook: `n8n.webhookUrl` when given, otherwise resolved once from `n8n.workflowId`
//! through the public API (the workflow's Webhook node: path and method; a missing,
//! inactive or webhook-less workflow is a typed error). Headers trace the run back:
//! `X-Orchestrator-Task-Id` (the dispatch's signed task id), `X-Orchestrator-Task-Name`,
//! `X-Orchestrator-Integration-Source`, and `X-Orchestrator-Signature: sha256=<hex>` when
//! `hmac_secret` is set. Connection errors, 5xx and 429 are retried with exponential
//! backoff up to `attempts`; other 4xx never are. A 404 means the webhook is not registered:
//! the workflow must be active.
//!
//! **Direct mode guarantees:** `schedule` returns only after n8n acknowledged the call;
//! otherwise it returns a typed error (`Unavailable`, `Timeout`, `Rejected`,
//! `Unauthorized`…) and the caller decides. Nothing is acknowledged and then lost.
//!
//! **Outbox mode** ([`OutboxConfig`], Redis through bb8-redis): `schedule` stores the
//! request and returns its id at once; a dispatcher (started by the first schedule, or by
//! [`N8nBackend::start_dispatcher`]) delivers with exponential backoff up to
//! `max_attempts`, and status shows `queued` → `retrying` → `delivered` (then the
//! execution's own state) or `failed`. Pending dispatches survive a process restart and are
//! delivered once n8n is back. Delivery is at least once: a dispatcher that dies between
//! n8n's acknowledgement and recording it lets the lease expire and the call is repeated.
//!
//! ## Making a workflow trackable
//! n8n reports an execution id only if the workflow sends it back:
//! * **Respond to Webhook** mode (recommended): Webhook node `Respond: Using 'Respond to
//!   Webhook' node`, then a Respond to Webhook node early in the flow answering
//!   `{{ { executionId: $execution.id } }}` and/or header `X-N8N-Execution-Id:
//!   {{ $execution.id }}`. The caller gets the id in milliseconds and the workflow goes on.
//! * **Last node** mode: the last node's output includes `executionId: $execution.id`.
//!
//! With an id the task id is `n8n:<dispatch id>:<execution id>.<signature>`, and status follows the
//! execution (`new`→`PENDING`, `running`→`RUNNING`, `waiting`→`WAITING`,
//! `success`→`COMPLETED` with the last node's output as result, `error`/`crashed`→`FAILED`
//! with n8n's message, `canceled`→`CANCELLED`). In **respond immediately** mode n8n
//! answers `Workflow was started` with no id: the task id is `n8n:<dispatch id>.<signature>` and its
//! status says so honestly: `UNKNOWN`, "delivered, execution not tracked".
//!
//! ## Identity
//! Task ids are signed (HMAC-SHA256 with `id_key`, else bound to the n8n `url`), so
//! any process configured for the same deployment reads the ids another issued, across
//! restarts, while a made-up id or an execution id spliced onto another dispatch is
//! `NotFound`. Ids issued before signing existed are malformed (`InvalidTaskId`).
//!
//! ## Cancel
//! A running or waiting execution is stopped through `POST /api/v1/executions/{id}/stop`
//! (n8n ≥ 2.10), or, on older versions, through the internal endpoint with the configured
//! owner login. Finished → `NotCancellableFinished`; unknown → `NotFound`.
//!
//! What the kind is and honours, with its state table: [`spec`] (feature-free). With
//! feature `client` (default): registered as `n8n` (label `N8N`); configuration:
//! [`N8nConfig`].

pub mod spec;

#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod config;
#[cfg(feature = "client")]
mod outbox;

#[cfg(feature = "client")]
pub use backend::{N8nBackend, SIGNATURE_HEADER, SOURCE_HEADER, TASK_ID_HEADER, TASK_NAME_HEADER};
#[cfg(feature = "client")]
pub use config::{BasicAuth, HeaderAuth, MAX_DIRECT_SCHEDULE, N8nConfig, OutboxConfig};
pub use spec::N8nOptions;

/// The `n8n` backend kind: descriptor ([`spec::DESCRIPTOR`]), configuration, constructor.
#[cfg(feature = "client")]
#[derive(Debug)]
pub struct N8nFactory;

#[cfg(feature = "client")]
impl orchestrator_core::raw::BackendFactory for N8nFactory {
    const DESCRIPTOR: orchestrator_core::Descriptor = spec::DESCRIPTOR;
    type Config = N8nConfig;

    fn build(
        instance: &str,
        config: N8nConfig,
    ) -> orchestrator_core::Result<orchestrator_core::raw::SharedBackend> {
        Ok(std::sync::Arc::new(N8nBackend::named(instance, config)?))
    }
}

#[cfg(feature = "client")]
orchestrator_core::register_backend!(N8nFactory);
