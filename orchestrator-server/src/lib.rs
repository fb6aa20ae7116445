//! The orchestrator over HTTP.
//!
//! [`router`] gives an axum [`Router`](axum::Router) over an [`Orchestrator`]: mount it in
//! your own axum app, or run it with [`serve`]. Routes (bodies and answers are JSON, the
//! seed's option object unchanged):
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/tasks` `{name, payload, options}` | `201 {"taskId"}` |
//! | `POST /v1/tasks:bulk` `{tasks: [{name, payload, options}, …]}` | `200 {"results": [{"taskId"} \| {"error": problem}]}`, one per task, in order |
//! | `GET /v1/tasks/{id}` | the task's status (`status --json`) |
//! | `DELETE /v1/tasks/{id}` | `{"taskId", "outcome", "cancelled"}`; `404` when not found |
//! | `POST /v1/tasks/{id}/wait?timeout=30s` | `{"outcome": "FINISHED" \| "STILL_RUNNING", "status"}` |
//! | `GET /v1/tasks?backend&type&state&name&since&until&limit&cursor&timeout` | `{"tasks", "next", "errors"}` |
//! | `GET /v1/counts?backend&type&name&timeout` | `{"counts", "errors"}` |
//! | `GET /healthz` | `200 {"ok": true}` while the process serves |
//! | `GET /readyz` | `{"backends": [{"backend", "ok"}]}`; `503` unless all are ok |
//! | `GET /metrics` | the metrics in Prometheus text format, when [`ServerConfig::metrics`] is set (`404` otherwise) |
//! | `GET /openapi.json` | this API as OpenAPI 3.1 ([`openapi`]), schemas from the same schemars types |
//!
//! Errors are RFC 9457 `application/problem+json` carrying the orchestrator's error kind;
//! [`http_status`] is the one table from kind to status.
//!
//! Security defaults ([`ServerConfig`]): a token (`Authorization: Bearer …`, compared in
//! constant time) guards every route but the health ones when set, and [`serve`] refuses a
//! non-loopback address without one; the `Host` header must name an allowed host (by
//! default the loopback names) and a request carrying an `Origin` must come from an
//! allowed origin (none by default), so a web page elsewhere cannot drive a server on
//! loopback (DNS rebinding, CSRF); bodies are capped ([`ServerConfig::max_body_bytes`]; one
//! announced over the cap is refused before it is read); every read but `wait` has a
//! timeout ([`ServerConfig::request_timeout`], then `504`); `wait` is capped
//! ([`ServerConfig::max_wait`], [`ServerConfig::max_waits`]) and so are concurrent
//! `list`/`counts` ([`ServerConfig::max_monitor_requests`]); results can be left out of
//! every answer ([`ServerConfig::hide_results`]).
//!
//! [`ServeSettings`] reads the configuration's `[serve]` table into a [`ServerConfig`] (what
//! `orchestrator serve` does).

mod error;
mod openapi;
mod routes;
mod security;
mod settings;

pub use routes::MAX_BULK;

pub use error::{Problem, http_status};
pub use openapi::{ROUTES, document as openapi};
pub use security::{MetricsText, ServerConfig};
pub use settings::{DEFAULT_BIND, ServeSettings, read_token_file};

use std::net::SocketAddr;

use orchestrator_core::{Error, Orchestrator, Result};

/// The HTTP API over `orch`, guarded as `config` says. Without a token, bind what serves
/// it to loopback only: the `Host` check stops DNS rebinding, not other clients (see
/// [`ServerConfig::allowed_hosts`]); [`serve`] enforces this, a router you mount yourself
/// is bound where you bind it.
pub fn router(orch: Orchestrator, config: ServerConfig) -> axum::Router {
    routes::router(orch, config)
}

/// Serve [`router`] on `addr` until `shutdown` resolves, then finish the requests in
/// flight. A non-loopback `addr` without a token is refused (`InvalidConfig`).
pub async fn serve(
    orch: Orchestrator,
    config: ServerConfig,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.check_bind(addr)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
    serve_on(orch, config, listener, shutdown).await
}

/// [`serve`] on a listener already bound (checked like [`serve`]'s address).
pub async fn serve_on(
    orch: Orchestrator,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::config(format!("the listener has no address: {e}")))?;
    config.check_bind(addr)?;
    tracing::info!(%addr, "serving the orchestrator API");
    axum::serve(listener, router(orch, config))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::config(format!("serving on {addr}: {e}")))
}
