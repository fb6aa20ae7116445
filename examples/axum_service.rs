//! The NestJS `StandardizedOrchestratorService` counterpart: an axum app that keeps the
//! [`Orchestrator`] in its state.
//!
//! ```sh
//! cargo run --example axum_service            # in-memory engines, port 3000
//! ORCHESTRATOR_BULLMQ_URL=redis://127.0.0.1:6379 cargo run --example axum_service --features orchestrator/bullmq
//! curl -XPOST localhost:3000/tasks -H 'content-type: application/json' \
//!      -d '{"name":"emails","payload":{"to":"a@b.c"},"options":{"taskType":"SIMPLE","attempts":3}}'
//! curl localhost:3000/tasks/memory-bullmq:emails:1
//! curl -XDELETE localhost:3000/tasks/memory-bullmq:emails:1
//! ```
//!
//! Set `PORT` to listen elsewhere, `EXIT_AFTER_READY=1` to bind, print the address and exit
//! (used by the tests).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchestrator::{Orchestrator, TaskOptions};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewTask {
    name: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    options: TaskOptions,
}

/// An error as RFC 9457 problem+json, with the status of the one kind → status table
/// (`orchestrator_server::http_status`); `orchestrator serve` answers the same way.
struct ApiError(orchestrator::Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        orchestrator_server::Problem::of(&self.0).into_response()
    }
}

impl From<orchestrator::Error> for ApiError {
    fn from(e: orchestrator::Error) -> Self {
        ApiError(e)
    }
}

async fn create(
    State(orch): State<Orchestrator>,
    Json(task): Json<NewTask>,
) -> Result<impl IntoResponse, ApiError> {
    let id = orch
        .schedule_task(&task.name, task.payload, task.options)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "taskId": id }))))
}

async fn status(
    State(orch): State<Orchestrator>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(orch.get_task_status(id.as_str()).await?))
}

async fn cancel(
    State(orch): State<Orchestrator>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let outcome = orch.cancel(id.as_str()).await?;
    Ok(Json(
        json!({ "taskId": id, "outcome": outcome, "cancelled": outcome.is_cancelled() }),
    ))
}

fn app(orch: Orchestrator) -> Router {
    Router::new()
        .route("/tasks", post(create))
        .route("/tasks/{id}", get(status).delete(cancel))
        .with_state(orch)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    // Configured engines when ORCHESTRATOR_* is set, the in-memory ones otherwise.
    let configured = std::env::vars().any(|(k, _)| k.starts_with("ORCHESTRATOR_"));
    let orch = if configured {
        Orchestrator::from_env()?
    } else {
        orchestrator::testkit::in_memory().orchestrator
    };
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    if std::env::var("EXIT_AFTER_READY").is_ok() {
        return Ok(());
    }
    axum::serve(listener, app(orch))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
