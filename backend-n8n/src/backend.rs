//! The `n8n` backend: INTEGRATION tasks delivered to n8n webhooks, tracked through the
//! executions API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use orchestrator_core::{
    Backend, BackendFactory, Backoff, CancelOutcome, Descriptor, Error, ErrorKind, Health, Result,
    ScheduleRequest, Source, TaskId, TaskIdError, TaskState, TaskStatus, async_trait,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config::N8nConfig;
use crate::outbox::{CancelState, Outbox, Record};

pub(crate) const NAME: &str = <crate::N8nFactory as BackendFactory>::DESCRIPTOR.kind;

/// Header carrying the orchestrator's dispatch id (`n8n:<dispatch id>`); the task id gains
/// `:<execution id>` when n8n reports one.
pub const TASK_ID_HEADER: &str = "X-Orchestrator-Task-Id";
/// Header carrying the task name.
pub const TASK_NAME_HEADER: &str = "X-Orchestrator-Task-Name";
/// Header carrying `n8n.integrationSource`.
pub const SOURCE_HEADER: &str = "X-Orchestrator-Integration-Source";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when `hmac_secret` is set.
pub const SIGNATURE_HEADER: &str = "X-Orchestrator-Signature";

/// Where a workflow's webhook lives.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    method: Method,
    workflow_id: Option<String>,
}

/// INTEGRATION tasks on n8n. See the crate docs for what each mode guarantees.
#[derive(Clone)]
pub struct N8nBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: N8nConfig,
    http: reqwest::Client,
    /// Resolved webhooks by workflow id; one resolution in flight per workflow.
    targets: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Target>>>>,
    owner_cookie: tokio::sync::Mutex<Option<String>>,
    in_flight: tokio::sync::Semaphore,
    outbox: Option<Outbox>,
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The dispatcher's latest failure, cleared by a clean round; `health` reports it, since
    /// a background loop has no caller to return it to.
    dispatcher_error: Mutex<Option<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The dispatcher holds only a weak reference; stop it with its backend.
        if let Some(h) = lock(&self.dispatcher).take() {
            h.abort();
        }
    }
}

impl std::fmt::Debug for N8nBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("N8nBackend")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error::backend(NAME, kind, message)
}

fn transport(e: reqwest::Error, what: &str) -> Error {
    // reqwest's message names the URL, never our headers, so it is safe to show.
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    err(
        kind,
        format!("{what}: {e}; is n8n running at backends.n8n.url?"),
    )
    .with_source(e)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only whole-value inserts and reads happen under these locks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `<dispatch id>[:<execution id>]`.
fn split_native(id: &TaskId) -> Result<(&str, Option<&str>)> {
    let native = id.native();
    let (dispatch, exec) = match native.split_once(':') {
        Some((d, e)) => (d, Some(e)),
        None => (native, None),
    };
    if uuid::Uuid::parse_str(dispatch).is_err()
        || exec.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(TaskIdError::Malformed {
            id: id.to_string(),
            reason: "an n8n task id is `n8n:<dispatch uuid>[:<execution id>]`".into(),
        }
        .into());
    }
    Ok((dispatch, exec))
}

fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

fn parse_time(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

fn execution_id_from(headers: &reqwest::header::HeaderMap, body: &Value) -> Option<String> {
    let from_header = headers
        .get("x-n8n-execution-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let from_body = body.get("executionId").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    from_header
        .or(from_body)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// The output of the last node n8n ran, from an execution read with `includeData=true`.
fn last_output(exec: &Value) -> Option<Value> {
    let result = exec.pointer("/data/resultData")?;
    let last = result.get("lastNodeExecuted")?.as_str()?;
    let runs = result.pointer("/runData")?.get(last)?.as_array()?;
    runs.last()?.pointer("/data/main/0/0/json").cloned()
}

impl N8nBackend {
    /// A backend for `config` (validated; no request yet).
    pub fn new(config: N8nConfig) -> Result<Self> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .build()
            .map_err(|e| {
                err(
                    ErrorKind::InvalidConfig,
                    format!("cannot build the HTTP client: {e}"),
                )
                .with_source(e)
            })?;
        let max_in_flight = config.max_in_flight;
        let outbox = config
            .outbox
            .clone()
            .map(|o| Outbox::new(o, config.timeout()))
            .transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                targets: Mutex::new(HashMap::new()),
                owner_cookie: tokio::sync::Mutex::new(None),
                in_flight: tokio::sync::Semaphore::new(max_in_flight),
                outbox,
                dispatcher: Mutex::new(None),
                dispatcher_error: Mutex::new(None),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &N8nConfig {
        &self.inner.config
    }

    fn api_key(&self) -> Result<&str> {
        self.inner
            .config
            .api_key
            .as_ref()
            .map(|k| k.expose())
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidConfig,
                    "this needs n8n's public API: set backends.n8n.api_key (ORCHESTRATOR_N8N_API_KEY)",
                )
            })
    }

    async fn api(&self, method: Method, path: &str) -> Result<(StatusCode, String)> {
        let url = format!("{}/api/v1{path}", self.inner.config.base());
        let resp = self
            .inner
            .http
            .request(method, &url)
            .header("X-N8N-API-KEY", self.api_key()?)
            .send()
            .await
            .map_err(|e| transport(e, "n8n API"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| transport(e, "n8n API"))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(err(
                ErrorKind::Unauthorized,
                "n8n refused the API key (backends.n8n.api_key); create a key with the needed scopes",
            ));
        }
        Ok((status, body))
    }

    /// The webhook of workflow `workflow_id`, from n8n's API (cached; concurrent callers
    /// share one lookup).
    async fn resolve(&self, workflow_id: &str) -> Result<Target> {
        let cell = lock(&self.inner.targets)
            .entry(workflow_id.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.lookup(workflow_id))
            .await
            .cloned()
    }

    async fn lookup(&self, workflow_id: &str) -> Result<Target> {
        let (status, body) = self
            .api(Method::GET, &format!("/workflows/{workflow_id}"))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(err(
                ErrorKind::NotFound,
                format!("n8n workflow `{workflow_id}` does not exist"),
            ));
        }
        if !status.is_success() {
            return Err(err(
                ErrorKind::Unexpected,
                format!(
                    "reading n8n workflow `{workflow_id}`: {status} {}",
                    message_of(&body)
                ),
            ));
        }
        let wf: Value = serde_json::from_str(&body).map_err(|e| {
            err(
                ErrorKind::Unexpected,
                format!("n8n answered with invalid JSON: {e}"),
            )
        })?;
        if wf.get("active").and_then(Value::as_bool) != Some(true) {
            return Err(err(
                ErrorKind::Rejected,
                format!(
                    "n8n workflow `{workflow_id}` is not active: activate it so its production webhook exists"
                ),
            ));
        }
        let node = wf
            .get("nodes")
            .and_then(Value::as_array)
            .and_then(|nodes| {
                nodes.iter().find(|n| {
                    n.get("type").and_then(Value::as_str) == Some("n8n-nodes-base.webhook")
                })
            })
            .ok_or_else(|| {
                err(
                    ErrorKind::Rejected,
                    format!(
                        "n8n workflow `{workflow_id}` has no Webhook trigger node to deliver to"
                    ),
                )
            })?;
        let path = node
            .pointer("/parameters/path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if path.is_empty() {
            return Err(err(
                ErrorKind::Rejected,
                format!("the Webhook node of n8n workflow `{workflow_id}` has no path"),
            ));
        }
        let method = node
            .pointer("/parameters/httpMethod")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .parse::<Method>()
            .unwrap_or(Method::GET);
        Ok(Target {
            url: format!(
                "{}/webhook/{}",
                self.inner.config.base(),
                path.trim_start_matches('/')
            ),
            method,
            workflow_id: Some(workflow_id.to_string()),
        })
    }

    fn check_allowed(&self, url: &str) -> Result<()> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::invalid("n8n.webhookUrl", format!("`{url}` is not a URL: {e}")))?;
        if let Some(allowed) = &self.inner.config.allowed_hosts {
            let host = parsed.host_str().unwrap_or_default();
            if !allowed.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(Error::invalid(
                    "n8n.webhookUrl",
                    format!("host `{host}` is not in backends.n8n.allowed_hosts"),
                ));
            }
        }
        Ok(())
    }

    /// POST the body, retrying connection errors, 5xx and 429 with exponential backoff.
    async fn deliver(
        &self,
        target: &Target,
        body: Vec<u8>,
        headers: &[(String, String)],
        attempts: u32,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, String)> {
        let cfg = &self.inner.config;
        let backoff = Backoff::exponential(cfg.backoff_ms);
        let mut last: Option<Error> = None;
        for attempt in 1..=attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(backoff.delay_after(attempt - 1)).await;
            }
            let _permit = self
                .inner
                .in_flight
                .acquire()
                .await
                .map_err(|_| err(ErrorKind::Unexpected, "the delivery limiter was closed"))?;
            let mut req = self
                .inner
                .http
                .request(target.method.clone(), &target.url)
                .header("Content-Type", "application/json")
                .body(body.clone());
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(h) = &cfg.header_auth {
                req = req.header(&h.name, h.value.expose());
            }
            if let Some(b) = &cfg.basic_auth {
                req = req.basic_auth(&b.user, Some(b.password.expose()));
            }
            match req.send().await {
                Err(e) => last = Some(transport(e, "delivering to the n8n webhook")),
                Ok(resp) => {
                    let status = resp.status();
                    let resp_headers = resp.headers().clone();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok((status, resp_headers, text));
                    }
                    let msg = message_of(&text);
                    let name = target.workflow_id.as_deref().unwrap_or(&target.url);
                    let e = match status {
                        StatusCode::NOT_FOUND => {
                            return Err(err(
                                ErrorKind::Rejected,
                                format!(
                                    "n8n has no active webhook for `{name}` ({msg}); the workflow must be active"
                                ),
                            ));
                        }
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(err(
                                ErrorKind::Unauthorized,
                                format!(
                                    "the n8n webhook for `{name}` refused our credentials ({status}); check backends.n8n.header_auth / basic_auth"
                                ),
                            ));
                        }
                        StatusCode::INTERNAL_SERVER_ERROR if msg == "Error in workflow" => {
                            // The workflow ran and failed: running it again is not a retry
                            // of the delivery.
                            return Err(err(
                                ErrorKind::Rejected,
                                format!("the n8n workflow `{name}` failed: {msg}"),
                            ));
                        }
                        StatusCode::TOO_MANY_REQUESTS => err(
                            ErrorKind::RateLimited,
                            format!("n8n is throttling `{name}`: {msg}"),
                        ),
                        s if s.is_server_error() => err(
                            ErrorKind::Unavailable,
                            format!("n8n answered {s} for `{name}`: {msg}"),
                        ),
                        s => {
                            return Err(err(
                                ErrorKind::Rejected,
                                format!("n8n answered {s} for `{name}`: {msg}"),
                            ));
                        }
                    };
                    last = Some(e);
                }
            }
            tracing::debug!(attempt, "n8n delivery failed, retrying");
        }
        Err(last.unwrap_or_else(|| err(ErrorKind::Unexpected, "no delivery attempt ran")))
    }

    async fn owner_cookie(&self, refresh: bool) -> Result<String> {
        let mut guard = self.inner.owner_cookie.lock().await;
        if let (Some(c), false) = (guard.as_ref(), refresh) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.config;
        let (Some(email), Some(password)) = (&cfg.owner_email, &cfg.owner_password) else {
            return Err(Error::Unsupported {
                backend: NAME.into(),
                operation: "stopping executions on this n8n version (it has no public stop endpoint; set backends.n8n.owner_email and owner_password to use the internal one)".into(),
            });
        };
        let resp = self
            .inner
            .http
            .post(format!("{}/rest/login", cfg.base()))
            .json(&serde_json::json!({"emailOrLdapLoginId": email, "password": password.expose()}))
            .send()
            .await
            .map_err(|e| transport(e, "n8n login"))?;
        if !resp.status().is_success() {
            return Err(err(
                ErrorKind::Unauthorized,
                format!("n8n refused the owner login ({})", resp.status()),
            ));
        }
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.split(';')
                    .next()
                    .filter(|kv| kv.starts_with("n8n-auth="))
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                err(
                    ErrorKind::Unexpected,
                    "n8n login answered without an n8n-auth cookie",
                )
            })?;
        *guard = Some(cookie.clone());
        Ok(cookie)
    }

    /// Stop through the public API (n8n ≥ 2.10), falling back to the internal one.
    async fn stop(&self, id: &TaskId, exec: &str) -> Result<CancelOutcome> {
        let (status, body) = self
            .api(Method::POST, &format!("/executions/{exec}/stop"))
            .await?;
        match status {
            s if s.is_success() => return Ok(CancelOutcome::Cancelled),
            StatusCode::CONFLICT => return Ok(CancelOutcome::NotCancellableFinished),
            StatusCode::NOT_FOUND if message_of(&body) == "Failed to find execution to stop" => {
                return Ok(CancelOutcome::NotFound);
            }
            StatusCode::NOT_FOUND => {} // no public stop endpoint (n8n < 2.10)
            s => {
                return Err(err(
                    ErrorKind::Unexpected,
                    format!("stopping {id}: n8n answered {s} {}", message_of(&body)),
                ));
            }
        }
        for refresh in [false, true] {
            let cookie = self.owner_cookie(refresh).await?;
            let resp = self
                .inner
                .http
                .post(format!(
                    "{}/rest/executions/{exec}/stop",
                    self.inner.config.base()
                ))
                .header("Cookie", cookie)
                .send()
                .await
                .map_err(|e| transport(e, "n8n internal stop"))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok(CancelOutcome::Cancelled);
            }
            if status == StatusCode::UNAUTHORIZED {
                continue; // session expired: log in again once
            }
            let msg = message_of(&text);
            if msg.contains("Only running or waiting") {
                return Ok(CancelOutcome::NotCancellableFinished);
            }
            if msg.contains("Failed to find") {
                return Ok(CancelOutcome::NotFound);
            }
            return Err(err(
                ErrorKind::Unexpected,
                format!("stopping {id}: n8n answered {status} {msg}"),
            ));
        }
        Err(err(
            ErrorKind::Unauthorized,
            "n8n kept refusing the owner session",
        ))
    }

    async fn execution_status(&self, id: &TaskId, exec: &str) -> Result<TaskStatus> {
        let e = self.execution(id, exec).await?;
        let native = e
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let state = map_execution(&native);
        let mut s = TaskStatus::new(id.clone(), Source::N8N, state, native);
        s.attempts_made = u32::from(state.is_finished());
        s.created_at = e
            .get("createdAt")
            .and_then(parse_time)
            .or_else(|| e.get("startedAt").and_then(parse_time));
        s.started_at = e.get("startedAt").and_then(parse_time);
        s.finished_at = if state.is_finished() {
            e.get("stoppedAt").and_then(parse_time)
        } else {
            None
        };
        if state == TaskState::Completed {
            s.result = last_output(&e);
        }
        if state == TaskState::Failed {
            s.error = e
                .pointer("/data/resultData/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| Some(format!("execution ended with status {}", s.native_state)));
        }
        Ok(s)
    }

    /// Start the outbox dispatcher if the outbox is configured and none runs yet. It is
    /// started by the first `schedule`; call this at start-up to deliver what a previous
    /// process left pending. It stops when the last clone of this backend is dropped.
    pub fn start_dispatcher(&self) {
        if self.inner.outbox.is_none() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut slot = lock(&self.inner.dispatcher);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        *slot = Some(tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let backend = N8nBackend { inner };
                let poll = backend
                    .inner
                    .outbox
                    .as_ref()
                    .map(|o| o.cfg.poll_ms)
                    .unwrap_or(100);
                let busy = match backend.dispatch_round().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "n8n outbox dispatcher round failed");
                        *lock(&backend.inner.dispatcher_error) = Some(e.to_string());
                        false
                    }
                };
                drop(backend);
                if !busy {
                    tokio::time::sleep(Duration::from_millis(poll)).await;
                }
            }
        }));
    }

    /// Claim due dispatches and deliver them; returns how many were claimed.
    async fn dispatch_round(&self) -> Result<usize> {
        let Some(outbox) = &self.inner.outbox else {
            return Ok(0);
        };
        let ids = outbox
            .claim(orchestrator_core::now_ms(), self.inner.config.max_in_flight)
            .await?;
        let rounds = ids.iter().map(|id| self.dispatch_one(outbox, id));
        // A failed bookkeeping write leaves the lease to expire, so the dispatch is retried;
        // the round still reports the failure.
        let failed = futures::future::join_all(rounds)
            .await
            .into_iter()
            .find_map(Result::err);
        match failed {
            Some(e) => Err(e),
            None => {
                *lock(&self.inner.dispatcher_error) = None;
                Ok(ids.len())
            }
        }
    }

    async fn dispatch_one(&self, outbox: &Outbox, id: &str) -> Result<()> {
        let Some((_, mut rec)) = outbox.get(id).await? else {
            return Ok(());
        };
        let target = match (&rec.url, &rec.workflow_id) {
            (Some(url), wf) => Ok(Target {
                url: url.clone(),
                method: Method::POST,
                workflow_id: wf.clone(),
            }),
            (None, Some(wf)) => self.resolve(wf).await,
            (None, None) => Err(err(ErrorKind::Rejected, "dispatch has no target")),
        };
        let result = match target {
            Ok(t) => match self.check_allowed(&t.url) {
                Ok(()) => {
                    self.deliver(&t, rec.body.clone().into_bytes(), &rec.headers, 1)
                        .await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        rec.attempts_made += 1;
        let now = orchestrator_core::now_ms();
        match result {
            Ok((_, headers, text)) => {
                let response = parse_body(&text);
                rec.execution_id = execution_id_from(&headers, &response);
                rec.response = Some(response);
                rec.error = None;
                rec.finished_at = Some(now);
                outbox.finish(id, "delivered", &rec, None).await
            }
            Err(e) => {
                rec.error = Some(e.to_string());
                if e.is_retryable() && rec.attempts_made < outbox.cfg.max_attempts {
                    let wait = Backoff::exponential(self.inner.config.backoff_ms)
                        .delay_after(rec.attempts_made)
                        .min(Duration::from_millis(outbox.cfg.max_backoff_ms));
                    let at = now + u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    outbox.finish(id, "retrying", &rec, Some(at)).await
                } else {
                    rec.finished_at = Some(now);
                    outbox.finish(id, "failed", &rec, None).await
                }
            }
        }
    }

    async fn execution(&self, id: &TaskId, exec: &str) -> Result<Value> {
        let (status, body) = self
            .api(Method::GET, &format!("/executions/{exec}?includeData=true"))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(id));
        }
        if !status.is_success() {
            return Err(err(
                ErrorKind::Unexpected,
                format!("reading execution {exec}: {status} {}", message_of(&body)),
            ));
        }
        serde_json::from_str(&body).map_err(|e| {
            err(
                ErrorKind::Unexpected,
                format!("n8n answered with invalid JSON: {e}"),
            )
        })
    }
}

fn untracked(id: &TaskId, response: Option<Value>) -> TaskStatus {
    let mut s = TaskStatus::new(
        id.clone(),
        Source::N8N,
        TaskState::Unknown,
        "delivered, execution not tracked",
    );
    s.attempts_made = 1;
    s.result = response;
    s
}

fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text.to_string())
        }
    })
}

fn map_execution(native: &str) -> TaskState {
    match native {
        "new" => TaskState::Pending,
        "running" => TaskState::Running,
        "waiting" => TaskState::Waiting,
        "success" => TaskState::Completed,
        "error" | "crashed" => TaskState::Failed,
        "canceled" => TaskState::Cancelled,
        _ => TaskState::Unknown,
    }
}

#[async_trait]
impl Backend for N8nBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn descriptor(&self) -> &Descriptor {
        &<crate::N8nFactory as BackendFactory>::DESCRIPTOR
    }

    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId> {
        self.descriptor().admit(self.name(), &request)?;
        let o = request.options();
        let n = o
            .n8n
            .as_ref()
            .ok_or_else(|| Error::invalid("n8n", "INTEGRATION tasks need `n8n` options"))?;
        if let Some(url) = &n.webhook_url {
            self.check_allowed(url)?;
        }
        let body = serde_json::to_vec(request.payload())
            .map_err(|e| Error::invalid("payload", format!("cannot be serialized to JSON: {e}")))?;
        let dispatch = uuid::Uuid::new_v4().to_string();
        let mut headers = vec![
            (TASK_ID_HEADER.to_string(), format!("{NAME}:{dispatch}")),
            (TASK_NAME_HEADER.to_string(), request.name().to_string()),
        ];
        if let Some(src) = &n.integration_source {
            headers.push((SOURCE_HEADER.to_string(), src.clone()));
        }
        if let Some(secret) = &self.inner.config.hmac_secret {
            let mut mac =
                <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
                    .map_err(|_| {
                        err(
                            ErrorKind::InvalidConfig,
                            "backends.n8n.hmac_secret is not usable as an HMAC key",
                        )
                    })?;
            mac.update(&body);
            headers.push((
                SIGNATURE_HEADER.to_string(),
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            ));
        }

        if let Some(outbox) = &self.inner.outbox {
            // Persist first, deliver later: the id is returned once Redis has the record.
            let rec = Record {
                task_name: request.name().to_string(),
                url: n.webhook_url.clone(),
                workflow_id: n.workflow_id.clone(),
                body: String::from_utf8_lossy(&body).into_owned(),
                headers,
                attempts_made: 0,
                created_at: orchestrator_core::now_ms(),
                finished_at: None,
                execution_id: None,
                response: None,
                error: None,
            };
            outbox.enqueue(&dispatch, &rec).await?;
            self.start_dispatcher();
            return Ok(TaskId::new(NAME, &dispatch)?);
        }

        let target = match (&n.webhook_url, &n.workflow_id) {
            (Some(url), wf) => Target {
                url: url.clone(),
                method: Method::POST,
                workflow_id: wf.clone(),
            },
            (None, Some(wf)) => self.resolve(wf).await?,
            (None, None) => return Err(Error::invalid("n8n", "give `workflowId` or `webhookUrl`")),
        };
        self.check_allowed(&target.url)?;
        let (_, resp_headers, text) = self
            .deliver(&target, body, &headers, self.inner.config.attempts)
            .await?;
        let response = parse_body(&text);
        // Without an execution id the answer is only n8n's "Workflow was started": nothing
        // worth keeping (a per-process cache of it grew without bound).
        match execution_id_from(&resp_headers, &response) {
            Some(exec) => Ok(TaskId::new(NAME, &format!("{dispatch}:{exec}"))?),
            None => Ok(TaskId::new(NAME, &dispatch)?),
        }
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        let (dispatch, exec) = split_native(id)?;
        if let Some(exec) = exec {
            return self.execution_status(id, exec).await;
        }
        if let Some(outbox) = &self.inner.outbox {
            let (state, rec) = outbox
                .get(dispatch)
                .await?
                .ok_or_else(|| Error::not_found(id))?;
            if state == "delivered" {
                if let Some(exec) = &rec.execution_id {
                    return self.execution_status(id, exec).await;
                }
                return Ok(untracked(id, rec.response));
            }
            let unified = match state.as_str() {
                "queued" | "delivering" => TaskState::Pending,
                "retrying" => TaskState::Delayed,
                "failed" => TaskState::Failed,
                "cancelled" => TaskState::Cancelled,
                _ => TaskState::Unknown,
            };
            let mut s = TaskStatus::new(id.clone(), Source::N8N, unified, state);
            s.attempts_made = rec.attempts_made;
            s.error = rec.error;
            s.created_at = Some(rec.created_at);
            s.finished_at = rec.finished_at;
            return Ok(s);
        }
        // Delivered, but n8n gave no execution id (respond-immediately mode): say so.
        Ok(untracked(id, None))
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        let (dispatch, exec) = split_native(id)?;
        let exec = match (exec, &self.inner.outbox) {
            (Some(exec), _) => exec.to_string(),
            (None, Some(outbox)) => match outbox.cancel(dispatch).await? {
                CancelState::Cancelled => return Ok(CancelOutcome::Cancelled),
                CancelState::Missing => return Ok(CancelOutcome::NotFound),
                CancelState::Other(state) if state == "delivering" => {
                    return Ok(CancelOutcome::NotCancellableRunning);
                }
                CancelState::Other(state) if state == "delivered" => {
                    match outbox
                        .get(dispatch)
                        .await?
                        .and_then(|(_, r)| r.execution_id)
                    {
                        Some(exec) => exec,
                        None => return Ok(CancelOutcome::NotCancellableFinished),
                    }
                }
                CancelState::Other(_) => return Ok(CancelOutcome::NotCancellableFinished),
            },
            // The webhook call is over and n8n named no execution we could stop.
            (None, None) => return Ok(CancelOutcome::NotCancellableFinished),
        };
        let e = match self.execution(id, &exec).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(CancelOutcome::NotFound),
            other => other?,
        };
        let state = map_execution(e.get("status").and_then(Value::as_str).unwrap_or("unknown"));
        if state.is_finished() {
            return Ok(CancelOutcome::NotCancellableFinished);
        }
        self.stop(id, &exec).await
    }

    async fn health(&self) -> Result<Health> {
        let base = self.inner.config.base();
        let resp = self
            .inner
            .http
            .get(format!("{base}/healthz/readiness"))
            .send()
            .await
            .map_err(|e| transport(e, "n8n health"))?;
        if !resp.status().is_success() {
            return Err(err(
                ErrorKind::Unavailable,
                format!("n8n is not ready ({})", resp.status()),
            ));
        }
        let mut warnings = Vec::new();
        if let Some(outbox) = &self.inner.outbox {
            outbox.ping().await?;
            if let Some(e) = lock(&self.inner.dispatcher_error).clone() {
                warnings.push(format!("outbox dispatcher's last round failed: {e}"));
            }
        }
        if self.inner.config.api_key.is_some() {
            let (status, _) = self.api(Method::GET, "/workflows?limit=1").await?;
            if !status.is_success() {
                return Err(err(
                    ErrorKind::Unexpected,
                    format!("n8n API check answered {status}"),
                ));
            }
        } else {
            warnings.push(
                "no api_key: workflow ids cannot be resolved and executions cannot be tracked"
                    .into(),
            );
        }
        Ok(Health {
            backend: NAME.into(),
            ok: true,
            detail: format!(
                "n8n ready at {}",
                orchestrator_core::config::redact_url(base)
            ),
            warnings,
        })
    }
}
