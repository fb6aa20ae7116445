//! The routes: one handler per operation of the orchestrator.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchestrator_core::{
    CancelOutcome, Error, ListFilter, MAX_PAGE, Orchestrator, PageRequest, TaskOptions, TaskStatus,
    WaitOutcome,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::error::{ApiError, Problem};
use crate::security::{ServerConfig, guard};

/// The most tasks one bulk request holds.
pub const MAX_BULK: usize = 1000;

#[derive(Clone)]
struct App {
    orch: Orchestrator,
    config: Arc<ServerConfig>,
    waits: Arc<Semaphore>,
    monitors: Arc<Semaphore>,
}

impl App {
    /// `status` as this server shows it: without `result` and `progress` when they are
    /// hidden.
    fn shown(&self, mut status: TaskStatus) -> TaskStatus {
        if self.config.hide_results {
            status.result = None;
            status.progress = None;
        }
        status
    }

    /// A slot of `pool`, or `429` saying which cap is full.
    fn slot<'a>(
        pool: &'a Semaphore,
        cap: usize,
        what: &str,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, Problem> {
        pool.try_acquire().map_err(|_| {
            Problem::http(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{cap} {what} requests are already being served; retry later"),
            )
        })
    }
}

pub(crate) fn router(orch: Orchestrator, config: ServerConfig) -> Router {
    let config = Arc::new(config);
    let app = App {
        orch,
        waits: Arc::new(Semaphore::new(config.max_waits)),
        monitors: Arc::new(Semaphore::new(config.max_monitor_requests)),
        config: config.clone(),
    };
    // Reads under the request timeout (`timed` lets writes and `wait` through).
    Router::new()
        .route("/v1/tasks", post(create).get(list))
        .route("/v1/tasks:bulk", post(bulk))
        .route("/v1/tasks/{id}", get(status).delete(cancel))
        .route("/v1/counts", get(counts))
        .route("/healthz", get(|| async { Json(json!({ "ok": true })) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/v1/tasks/{id}/wait", post(wait))
        .route_layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            timed,
        ))
        .fallback(|| async { Problem::http(StatusCode::NOT_FOUND, "no such route") })
        .with_state(app)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(config, guard))
}

/// The request timeout of reads: past it the handler (and its engine call) is dropped and
/// the answer is `504`. Writes (`POST`, `DELETE`) are not cut: an engine may have taken the
/// task already, and an answer without its id would invite a duplicate. Each engine call
/// they make is bounded by the backend's own timeouts.
async fn timed(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::GET {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(r) => r,
        Err(_) => Problem::http(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request took longer than this server's {} (serve.request_timeout_ms)",
                humantime::format_duration(limit)
            ),
        )
        .into_response(),
    }
}

/// A request body or query that does not parse, as a problem (`400`, or `413` for a body
/// over the limit).
fn rejected(status: StatusCode, text: String) -> Problem {
    let status = if status == StatusCode::PAYLOAD_TOO_LARGE {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    Problem::http(status, text)
}

fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    r.map(|Json(t)| t)
        .map_err(|e| rejected(e.status(), e.body_text()))
}

fn query<T>(r: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    r.map(|Query(t)| t)
        .map_err(|e| rejected(e.status(), e.body_text()))
}

fn invalid(field: &str, why: impl Into<String>) -> Problem {
    Problem::of(&Error::invalid(field, why))
}

/// A task to schedule: the seed's `scheduleTask(name, payload, options)`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewTask {
    name: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    options: TaskOptions,
}

async fn create(State(app): State<App>, task: Result<Json<NewTask>, JsonRejection>) -> Response {
    let task = match body(task) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    match app
        .orch
        .schedule_task(&task.name, task.payload, task.options)
        .await
    {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "taskId": id }))).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// Tasks to schedule at once (at most [`MAX_BULK`]).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bulk {
    tasks: Vec<NewTask>,
}

async fn bulk(State(app): State<App>, tasks: Result<Json<Bulk>, JsonRejection>) -> Response {
    let tasks = match body(tasks) {
        Ok(b) => b.tasks,
        Err(p) => return p.into_response(),
    };
    if tasks.len() > MAX_BULK {
        return invalid(
            "tasks",
            format!("holds {} tasks; at most {MAX_BULK}", tasks.len()),
        )
        .into_response();
    }
    let requests = tasks.into_iter().map(|t| (t.name, t.payload, t.options));
    match app.orch.schedule_bulk(requests).await {
        Ok(results) => {
            let results: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!({ "taskId": id }),
                    Err(e) => json!({ "error": Problem::of(&e) }),
                })
                .collect();
            Json(json!({ "results": results })).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

async fn status(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.orch.get_task_status(id.as_str()).await {
        Ok(s) => Json(app.shown(s)).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn cancel(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.orch.cancel(id.as_str()).await {
        Ok(outcome) => {
            let code = if outcome == CancelOutcome::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let body =
                json!({ "taskId": id, "outcome": outcome, "cancelled": outcome.is_cancelled() });
            (code, Json(body)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// A duration in humantime form (`30s`, `2m`).
fn duration(field: &str, text: &str) -> Result<Duration, Problem> {
    humantime::parse_duration(text).map_err(|e| {
        invalid(
            field,
            format!("`{text}` is not a duration like 30s or 2m: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    timeout: Option<String>,
}

async fn wait(
    State(app): State<App>,
    Path(id): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    let timeout = match q
        .timeout
        .as_deref()
        .map(|t| duration("timeout", t))
        .transpose()
    {
        Ok(t) => t.unwrap_or(Duration::from_secs(30)),
        Err(p) => return p.into_response(),
    };
    if timeout > app.config.max_wait {
        return invalid(
            "timeout",
            format!(
                "is over this server's limit of {}",
                humantime::format_duration(app.config.max_wait)
            ),
        )
        .into_response();
    }
    let _slot = match App::slot(&app.waits, app.config.max_waits, "wait") {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    match app.orch.wait(id.as_str(), timeout).await {
        Ok(outcome) => {
            let finished = outcome.is_finished();
            let status = app.shown(outcome.into_status());
            let outcome = if finished {
                WaitOutcome::Finished(status)
            } else {
                WaitOutcome::StillRunning(status)
            };
            Json(outcome).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// An instant: epoch milliseconds, or RFC 3339.
fn instant(field: &str, text: &str) -> Result<u64, Problem> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            invalid(
                field,
                format!("`{text}` is neither epoch milliseconds nor RFC 3339"),
            )
        })
}

/// A `SCREAMING_SNAKE_CASE` enum word, in any case.
fn word<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, Problem> {
    serde_json::from_value(Value::String(text.to_ascii_uppercase()))
        .map_err(|_| invalid(field, format!("`{text}` is not a {field}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    backend: Option<String>,
    #[serde(rename = "type")]
    task_type: Option<String>,
    state: Option<String>,
    name: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    timeout: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<ListFilter, Problem> {
        let mut f = ListFilter::all();
        f.backend = self.backend.clone();
        f.task_type = self
            .task_type
            .as_deref()
            .map(|t| word("type", t))
            .transpose()?;
        f.state = self
            .state
            .as_deref()
            .map(|s| word("state", s))
            .transpose()?;
        f.name = self.name.clone();
        f.since = self
            .since
            .as_deref()
            .map(|s| instant("since", s))
            .transpose()?;
        f.until = self
            .until
            .as_deref()
            .map(|s| instant("until", s))
            .transpose()?;
        Ok(f)
    }

    fn timeout(&self) -> Result<Duration, Problem> {
        Ok(self
            .timeout
            .as_deref()
            .map(|t| duration("timeout", t))
            .transpose()?
            .unwrap_or(orchestrator_core::DEFAULT_MONITOR_TIMEOUT))
    }
}

async fn list(State(app): State<App>, q: Result<Query<ListQuery>, QueryRejection>) -> Response {
    let page = async {
        let q = query(q)?;
        let _slot = App::slot(
            &app.monitors,
            app.config.max_monitor_requests,
            "list/counts",
        )?;
        let filter = q.filter()?;
        let mut request = PageRequest::first(
            q.limit
                .unwrap_or(orchestrator_core::DEFAULT_PAGE)
                .min(MAX_PAGE + 1),
        )
        .timeout(q.timeout()?);
        if let Some(c) = &q.cursor {
            request = request.after(c.clone());
        }
        let mut page = app
            .orch
            .list(&filter, &request)
            .await
            .map_err(|e| Problem::of(&e))?;
        page.tasks = page.tasks.into_iter().map(|t| app.shown(t)).collect();
        Ok::<_, Problem>(page)
    };
    match page.await {
        Ok(p) => Json(p).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn counts(State(app): State<App>, q: Result<Query<ListQuery>, QueryRejection>) -> Response {
    let counts = async {
        let q = query(q)?;
        let _slot = App::slot(
            &app.monitors,
            app.config.max_monitor_requests,
            "list/counts",
        )?;
        let filter = q.filter()?;
        app.orch
            .counts(&filter, q.timeout()?)
            .await
            .map_err(|e| Problem::of(&e))
    };
    match counts.await {
        Ok(c) => Json(c).into_response(),
        Err(p) => p.into_response(),
    }
}

/// The metrics as the application's recorder renders them (Prometheus text format).
async fn metrics(State(app): State<App>) -> Response {
    match &app.config.metrics {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text.render(),
        )
            .into_response(),
        None => Problem::http(
            StatusCode::NOT_FOUND,
            "metrics are not enabled on this server (serve.metrics, or ServerConfig::metrics)",
        )
        .into_response(),
    }
}

/// Each instance's name and whether it is ok: no details (they can name hosts and carry
/// engine messages), since this route answers without the token by default.
async fn ready(State(app): State<App>) -> Response {
    let health = app.orch.health().await;
    let code = if health.iter().all(|h| h.ok) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let backends: Vec<Value> = health
        .iter()
        .map(|h| json!({ "backend": h.backend, "ok": h.ok }))
        .collect();
    (code, Json(json!({ "backends": backends }))).into_response()
}
