//! The `n8n` backend: INTEGRATION tasks delivered to n8n webhooks, tracked through the
//! executions API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_core::raw::{AdmittedRequest, Backend, async_trait};
use orchestrator_core::{
    Backoff, CancelOutcome, Capabilities, Capability, Descriptor, Error, ErrorKind, Health, Limits,
    ListFilter, Origin, Result, TaskId, TaskIdError, TaskState, TaskStatus,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

mod api;
mod delivery;
mod dispatcher;
mod identity;
mod monitor;
mod status;

pub use delivery::{SIGNATURE_HEADER, SOURCE_HEADER, TASK_ID_HEADER, TASK_NAME_HEADER};
use delivery::{Target, execution_id_from, parse_body};
use status::{map_dispatch, map_execution, untracked};

use crate::config::N8nConfig;
use crate::outbox::{DispatchState, Outbox, Record};
use crate::spec::{self, N8nOptions};

/// The kind's name: errors name it, and the orchestrator's handle renames it to the
/// instance.
pub(crate) const NAME: &str = spec::KIND;

/// INTEGRATION tasks on n8n. See the crate docs for what each mode guarantees.
#[derive(Clone)]
pub struct N8nBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// The instance name: the prefix of task ids.
    name: String,
    /// Signs and checks task ids (see `identity`).
    id_key: Vec<u8>,
    config: N8nConfig,
    http: reqwest::Client,
    /// Resolved webhooks by workflow id; one resolution in flight per workflow.
    targets: Mutex<HashMap<String, Arc<orchestrator_core::raw::InitOnce<Target>>>>,
    owner_cookie: tokio::sync::Mutex<Option<String>>,
    in_flight: tokio::sync::Semaphore,
    outbox: Option<Outbox>,
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The dispatcher's latest failure, cleared by a clean round; `health` reports it, since
    /// a background loop has no caller to return it to.
    dispatcher_error: Mutex<Option<String>>,
    /// What each execution's data says of its origin, once it cannot change (`list`).
    marks: Mutex<lru::LruCache<String, monitor::Mark>>,
    /// Delivery outcomes the dispatcher could not record (a write that failed, a lease
    /// lost): those dispatches are delivered again.
    unrecorded: std::sync::atomic::AtomicU64,
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
    Error::engine(NAME, kind, message)
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
        format!("{what}: {e}; is n8n running at that address?"),
    )
    .with_source(e)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only whole-value inserts and reads happen under these locks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl N8nBackend {
    /// A backend for `config` (validated; no request yet).
    pub fn new(config: N8nConfig) -> Result<Self> {
        Self::named(NAME, config)
    }

    /// A backend instance called `name` (its task ids are `<name>:<dispatch>[:<execution>]`).
    pub fn named(name: &str, config: N8nConfig) -> Result<Self> {
        orchestrator_core::raw::check_instance_name(name)?;
        config.validate(name)?;
        // Redirects are never followed: a 3xx would carry the API key, auth headers and
        // signature to wherever it points.
        let http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .redirect(reqwest::redirect::Policy::none())
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
                name: name.to_string(),
                id_key: identity::id_key(&config),
                config,
                http,
                targets: Mutex::new(HashMap::new()),
                owner_cookie: tokio::sync::Mutex::new(None),
                in_flight: tokio::sync::Semaphore::new(max_in_flight),
                outbox,
                dispatcher: Mutex::new(None),
                dispatcher_error: Mutex::new(None),
                marks: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(monitor::MAX_MARKS)
                        .unwrap_or(std::num::NonZeroUsize::MIN),
                )),
                unrecorded: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The status of `id`, whatever its origin.
    async fn status_of(&self, id: &TaskId) -> Result<TaskStatus> {
        let (dispatch, exec) = self.verify(id)?;
        if let Some(exec) = exec {
            return self.execution_status(id, exec).await;
        }
        if let Some(outbox) = &self.inner.outbox {
            let (state, rec) = outbox
                .get(dispatch)
                .await?
                .ok_or_else(|| Error::not_found(id))?;
            if state == DispatchState::Delivered {
                if let Some(exec) = &rec.execution_id {
                    return self.execution_status(id, exec).await;
                }
                let mut s = untracked(id, rec.response);
                s.created_at = Some(rec.created_at);
                return Ok(s);
            }
            let mut s =
                TaskStatus::new(id.clone(), spec::LABEL, map_dispatch(state), state.as_str());
            s.attempts_made = rec.attempts_made;
            s.error = rec.error;
            s.created_at = Some(rec.created_at);
            s.finished_at = rec.finished_at;
            return Ok(s);
        }
        // Delivered, but n8n gave no execution id (respond-immediately mode): say so.
        Ok(untracked(id, None))
    }

    /// Refuse what this instance does not offer (see `capabilities`).
    fn offered(&self, c: Capability, operation: &str) -> Result<()> {
        if self.capabilities().has(c) {
            return Ok(());
        }
        let why = "needs n8n's public API: set this backend's `api_key`";
        Err(Error::Unsupported {
            backend: self.inner.name.clone(),
            operation: format!("{operation} {why}"),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &N8nConfig {
        &self.inner.config
    }
}

#[async_trait]
impl Backend for N8nBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn descriptor(&self) -> &Descriptor {
        &spec::DESCRIPTOR
    }

    /// Without an API key no execution can be read or stopped: running tasks cannot be
    /// cancelled, nor listed or counted.
    fn capabilities(&self) -> Capabilities {
        let mut caps = spec::CAPABILITIES;
        if self.inner.config.api_key.is_none() {
            caps = caps
                .without(Capability::CancelRunning)
                .without(Capability::List)
                .without(Capability::Counts);
        }
        caps
    }

    async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<orchestrator_core::raw::BackendPage> {
        self.offered(Capability::List, "list")?;
        self.list_tasks(filter, resume, limit).await
    }

    async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        self.offered(Capability::Counts, "counts")?;
        self.count_tasks(filter).await
    }

    fn limits(&self) -> Limits {
        Limits::max_payload(self.inner.config.max_payload_bytes)
    }

    async fn schedule_bulk(&self, requests: Vec<AdmittedRequest>) -> Vec<Result<TaskId>> {
        // Direct mode delivers within `max_in_flight` permits: more concurrent calls would
        // only queue behind them, and a dead n8n would cost one timeout per queued wave.
        let concurrency = if self.inner.outbox.is_some() {
            64
        } else {
            self.inner.config.max_in_flight
        };
        orchestrator_core::raw::schedule_each(self.name(), requests, concurrency, |r| {
            self.schedule(r)
        })
        .await
    }

    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId> {
        let n = N8nOptions::of(request.options())?;
        let n = &n;
        if let Some(url) = &n.webhook_url {
            self.check_allowed(url)?;
        }
        let body = serde_json::to_vec(request.payload())
            .map_err(|e| Error::invalid("payload", format!("cannot be serialized to JSON: {e}")))?;
        let dispatch = uuid::Uuid::new_v4().to_string();
        let headers = self.request_headers(&dispatch, request.name(), n, &body)?;

        if let Some(outbox) = &self.inner.outbox {
            // Persist first, deliver later: the id is returned once Redis has the record.
            let rec = Record {
                task_name: request.name().to_string(),
                url: n.webhook_url.clone(),
                workflow_id: n.workflow_id.clone(),
                body: String::from_utf8_lossy(&body).into_owned(),
                headers,
                attempts_made: 0,
                created_at: orchestrator_core::raw::now_ms(),
                finished_at: None,
                execution_id: None,
                response: None,
                error: None,
            };
            outbox.enqueue(&dispatch, &rec).await?;
            if outbox.cfg.dispatch_in_process {
                self.start_dispatcher();
            }
            return self.task_id(&dispatch, None);
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
            Some(exec) => self.task_id(&dispatch, Some(&exec)),
            None => self.task_id(&dispatch, None),
        }
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        let mut s = self.status_of(id).await?;
        s.origin = if self.verify(id)?.0.is_empty() {
            Origin::External
        } else {
            Origin::Orchestrator
        };
        Ok(s)
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        let (dispatch, exec) = match self.verify(id) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(CancelOutcome::NotFound),
            other => other?,
        };
        let exec = match (exec, &self.inner.outbox) {
            (Some(exec), _) => exec.to_string(),
            (None, Some(outbox)) => match outbox.cancel(dispatch).await? {
                Some(DispatchState::Queued | DispatchState::Retrying) => {
                    return Ok(CancelOutcome::Cancelled);
                }
                None => return Ok(CancelOutcome::NotFound),
                Some(DispatchState::Delivering) => {
                    return Ok(CancelOutcome::NotCancellableRunning);
                }
                Some(DispatchState::Delivered) => {
                    match outbox
                        .get(dispatch)
                        .await?
                        .and_then(|(_, r)| r.execution_id)
                    {
                        Some(exec) => exec,
                        None => return Ok(CancelOutcome::NotCancellableFinished),
                    }
                }
                Some(DispatchState::Failed | DispatchState::Cancelled) => {
                    return Ok(CancelOutcome::NotCancellableFinished);
                }
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
            warnings.extend(outbox.durability_warnings().await?);
            if let Some(e) = lock(&self.inner.dispatcher_error).clone() {
                warnings.push(format!("outbox dispatcher's last round failed: {e}"));
            }
        }
        if self.inner.config.api_key.is_some() {
            let (status, _) = self
                .api(Method::GET, &["workflows"], Some("limit=1"))
                .await?;
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
            backend: self.inner.name.clone(),
            ok: true,
            detail: format!("n8n ready at {}", orchestrator_core::raw::redact_url(base)),
            warnings,
        })
    }
}
