//! The [`Orchestrator`] handle: the seed's `StandardizedOrchestrator` in Rust.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tracing::Instrument;

use crate::backend::{ScheduleRequest, SharedBackend};
use crate::config::{OrchestratorConfig, Routing};
use crate::descriptor::Capabilities;
use crate::error::{Error, Result};
use crate::id::TaskId;
use crate::registry::Registry;
use crate::status::{CancelOutcome, Health, Source, TaskStatus};
use crate::task::{TaskOptions, TaskType};
use crate::wait::WaitOutcome;

/// Anything that names a task: a [`TaskId`] or its string form.
pub trait IntoTaskId {
    /// Parse or clone into a [`TaskId`].
    fn into_task_id(self) -> Result<TaskId>;
}

impl IntoTaskId for TaskId {
    fn into_task_id(self) -> Result<TaskId> {
        Ok(self)
    }
}

impl IntoTaskId for &TaskId {
    fn into_task_id(self) -> Result<TaskId> {
        Ok(self.clone())
    }
}

impl IntoTaskId for &str {
    fn into_task_id(self) -> Result<TaskId> {
        Ok(self.parse()?)
    }
}

impl IntoTaskId for &String {
    fn into_task_id(self) -> Result<TaskId> {
        Ok(self.parse()?)
    }
}

impl IntoTaskId for String {
    fn into_task_id(self) -> Result<TaskId> {
        Ok(self.parse()?)
    }
}

/// A backend as [`Orchestrator::backends`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    /// The backend's name.
    pub name: String,
    /// The source its statuses report.
    pub source: Source,
    /// Task types routed to it.
    pub routed: Vec<TaskType>,
    /// What it supports.
    pub capabilities: Capabilities,
}

struct Inner {
    backends: BTreeMap<String, SharedBackend>,
    routing: Routing,
}

/// One API to schedule, inspect and cancel tasks on whichever engine runs them.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`: keep one in your axum state.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("backends", &self.inner.backends.keys().collect::<Vec<_>>())
            .field("routing", &self.inner.routing)
            .finish()
    }
}

/// Builds an [`Orchestrator`] from backend instances and/or configuration.
#[derive(Default)]
pub struct OrchestratorBuilder {
    registry: Option<Registry>,
    config: OrchestratorConfig,
    instances: BTreeMap<String, SharedBackend>,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("config", &self.config)
            .field("instances", &self.instances.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OrchestratorBuilder {
    /// Use `registry` instead of [`Registry::global`] to build configured backends.
    #[must_use]
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Merge `config` (see [`OrchestratorConfig::merge`]).
    #[must_use]
    pub fn config(mut self, config: OrchestratorConfig) -> Self {
        self.config.merge(config);
        self
    }

    /// Add an already built backend under its own name.
    #[must_use]
    pub fn backend(mut self, backend: SharedBackend) -> Self {
        self.instances.insert(backend.name().to_string(), backend);
        self
    }

    /// Route `task_type` to the backend called `backend`.
    #[must_use]
    pub fn route(mut self, task_type: TaskType, backend: impl Into<String>) -> Self {
        let b = Some(backend.into());
        match task_type {
            TaskType::Simple => self.config.routing.simple = b,
            TaskType::Complex => self.config.routing.complex = b,
            TaskType::Integration => self.config.routing.integration = b,
        }
        self
    }

    /// Build every configured backend (no I/O: backends connect on first use) and check
    /// that explicit routes point at a backend, and that every route points at a backend
    /// whose descriptor runs that task type.
    pub fn build(self) -> Result<Orchestrator> {
        let registry = self.registry.as_ref().unwrap_or_else(|| Registry::global());
        let mut backends = self.instances;
        for (instance, kind, table) in self.config.instances()? {
            if backends.contains_key(&instance) {
                continue;
            }
            let backend = registry.build(&kind, &instance, &table)?;
            backends.insert(instance, backend);
        }
        // An explicit route to a registered backend with no table builds it with its
        // defaults (its factory says what is missing if it needs settings).
        for t in TaskType::ALL {
            let name = self.config.routing.backend_for(t);
            if self.config.routing.is_explicit(t) && !backends.contains_key(name) {
                backends.insert(
                    name.to_string(),
                    registry.build(name, name, &serde_json::Value::Null)?,
                );
            }
        }
        for t in TaskType::ALL {
            let name = self.config.routing.backend_for(t);
            if let Some(b) = backends.get(name) {
                let d = b.descriptor();
                if !d.runs(t) {
                    return Err(Error::config(format!(
                        "{t} tasks are routed to backend `{name}` (kind `{}`), which runs only {} tasks; \
                         route {t} to a backend that runs it (ORCHESTRATOR_ROUTE_{t}=<backend> or [routing] {} = \"…\")",
                        d.kind,
                        crate::error::join_types(d.task_types),
                        t.as_str().to_ascii_lowercase(),
                    )));
                }
            }
        }
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                backends,
                routing: self.config.routing,
            }),
        })
    }
}

impl Orchestrator {
    /// Start building an orchestrator.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder::default()
    }

    /// Build from a configuration, with the backends linked into this binary.
    pub fn from_config(config: OrchestratorConfig) -> Result<Self> {
        Self::builder().config(config).build()
    }

    /// Build from `ORCHESTRATOR_CONFIG` and `ORCHESTRATOR_*` variables.
    pub fn from_env() -> Result<Self> {
        let names = Registry::global().names();
        Self::from_config(OrchestratorConfig::from_env(&names)?)
    }

    fn route(&self, task_type: TaskType) -> Result<&SharedBackend> {
        let name = self.inner.routing.backend_for(task_type);
        self.inner.backends.get(name).ok_or_else(|| Error::NoRoute {
            task_type,
            hint: format!(
                "configure backend `{name}` ([backends.{name}] in the config file, or ORCHESTRATOR_{}_URL), \
                 or route {task_type} elsewhere (ORCHESTRATOR_ROUTE_{task_type}=<backend>)",
                name.to_ascii_uppercase().replace('-', "_")
            ),
        })
    }

    fn owner(&self, id: &TaskId) -> Result<&SharedBackend> {
        self.inner
            .backends
            .get(id.backend())
            .ok_or_else(|| Error::UnknownBackend {
                name: id.backend().to_string(),
                available: self.inner.backends.keys().cloned().collect(),
                feature: None,
            })
    }

    /// Schedule a task on the engine its `task_type` routes to; the seed's `scheduleTask`.
    ///
    /// Input is validated before any I/O. For a COMPLEX task with a `tracking_queue`, a
    /// SIMPLE tracking task carrying the workflow's id is also scheduled on that queue.
    pub async fn schedule_task(
        &self,
        name: &str,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<TaskId> {
        let task_type = options.task_type;
        let span = tracing::info_span!("orchestrator.schedule", task.name = name, task.r#type = %task_type);
        async move {
            let request = ScheduleRequest::new(name, payload, options)?;
            let backend = self.route(task_type)?;
            let mut request = backend.descriptor().admitted(backend.name(), request)?;
            // The tracking task is checked before the workflow starts, so a missing or
            // refusing SIMPLE route never leaves a started workflow behind an error. Its id
            // is chosen now and stored with the workflow, whose status reports it.
            let tracking = match request.options().temporal.as_ref() {
                Some(t) => match &t.tracking_queue {
                    Some(queue) => Some(self.tracking_request(name, queue, &t.workflow_type)?),
                    None => None,
                },
                None => None,
            };
            if let Some((_, Some(tracking_id))) = &tracking {
                request.set_tracking_task_id(tracking_id.clone());
            }
            let id = backend
                .schedule(request)
                .await
                .map_err(|e| e.in_instance(backend.name()))?;
            tracing::debug!(task.id = %id, "scheduled");
            if let Some((tracking, _)) = tracking {
                self.schedule_tracking(&id, tracking).await?;
            }
            Ok(id)
        }
        .instrument(span)
        .await
    }

    /// The SIMPLE request of a tracking task, admitted by the SIMPLE route, and the task id
    /// it will have (its job id is chosen here); its payload's `taskId` is filled in once
    /// the workflow started.
    fn tracking_request(
        &self,
        name: &str,
        queue: &str,
        workflow_type: &str,
    ) -> Result<(ScheduleRequest, Option<TaskId>)> {
        let payload = serde_json::json!({
            "taskId": null,
            "name": name,
            "workflowType": workflow_type,
        });
        let simple = self.route(TaskType::Simple)?;
        // A SIMPLE backend that takes custom job ids gets one, so the id is known up front.
        let job_id = simple
            .capabilities()
            .has(crate::Capability::JobId)
            .then(|| format!("track-{}", uuid::Uuid::new_v4()));
        let mut options = TaskOptions::simple().job_name(name);
        if let Some(job_id) = &job_id {
            options = options.job_id(job_id.clone());
        }
        let request = ScheduleRequest::new(queue, payload, options)?;
        let request = simple
            .descriptor()
            .admitted(simple.name(), request)
            .map_err(|e| match e {
                // The tracking request's name is the tracking queue.
                Error::InvalidInput(v) if v.field == "name" => Error::InvalidInput(
                    crate::ValidationError::new("temporal.trackingQueue", v.reason),
                ),
                e => e,
            })?;
        let id = job_id
            .map(|j| TaskId::new(simple.name(), &format!("{queue}:{j}")))
            .transpose()?;
        Ok((request, id))
    }

    async fn schedule_tracking(&self, id: &TaskId, request: ScheduleRequest) -> Result<()> {
        let queue = request.name().to_string();
        let source = self
            .owner(id)
            .map(|b| b.source())
            .unwrap_or(Source::TEMPORAL);
        let request = request
            .with_payload_field("taskId", serde_json::json!(id))
            .with_payload_field("source", serde_json::json!(source));
        let result = async { self.route(TaskType::Simple)?.schedule(request).await }.await;
        match result {
            Ok(tracking_id) => {
                tracing::debug!(tracking.id = %tracking_id, "tracking task scheduled");
                Ok(())
            }
            Err(e) => Err(Error::TrackingFailed {
                task_id: id.clone(),
                queue,
                source: Box::new(e),
            }),
        }
    }

    /// Schedule a SIMPLE task (BullMQ); the seed's `scheduleSimpleTask`.
    pub async fn schedule_simple_task(
        &self,
        name: &str,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<TaskId> {
        self.schedule_task(name, payload, options.task_type(TaskType::Simple))
            .await
    }

    /// Schedule a COMPLEX workflow (Temporal); the seed's `scheduleComplexWorkflow`.
    pub async fn schedule_complex_workflow(
        &self,
        name: &str,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<TaskId> {
        self.schedule_task(name, payload, options.task_type(TaskType::Complex))
            .await
    }

    /// Schedule an INTEGRATION (n8n); the seed's `scheduleExternalIntegration`.
    pub async fn schedule_external_integration(
        &self,
        name: &str,
        payload: impl Serialize,
        options: TaskOptions,
    ) -> Result<TaskId> {
        self.schedule_task(name, payload, options.task_type(TaskType::Integration))
            .await
    }

    /// Schedule many tasks at once, across backends: one result per task, in input order.
    ///
    /// Every task is validated and routed before any is sent; if one is refused, the call
    /// fails and nothing is written. Then the tasks are grouped per backend and sent
    /// through each backend's bulk call; an engine failure fails only the tasks it hit, so
    /// every id written comes back (a task whose result is an error was not scheduled,
    /// except for a timeout, which cannot tell: see [`Error::is_retryable`]). Tracking
    /// queues are not supported here (use [`Self::schedule_task`]).
    ///
    /// ```
    /// # async fn demo(orch: orchestrator_core::Orchestrator) -> orchestrator_core::Result<()> {
    /// use orchestrator_core::TaskOptions;
    /// let tasks = (0..3).map(|i| ("emails".to_string(), serde_json::json!({"i": i}), TaskOptions::simple()));
    /// for (i, result) in orch.schedule_bulk(tasks).await?.into_iter().enumerate() {
    ///     match result {
    ///         Ok(id) => println!("task {i}: {id}"),
    ///         Err(e) => println!("task {i} not scheduled: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schedule_bulk<P: Serialize>(
        &self,
        tasks: impl IntoIterator<Item = (String, P, TaskOptions)>,
    ) -> Result<Vec<Result<TaskId>>> {
        let span = tracing::info_span!("orchestrator.schedule_bulk");
        async move {
            let mut groups: BTreeMap<&str, (Vec<usize>, Vec<ScheduleRequest>)> = BTreeMap::new();
            let mut count = 0;
            for (i, (name, payload, options)) in tasks.into_iter().enumerate() {
                if options
                    .temporal
                    .as_ref()
                    .is_some_and(|t| t.tracking_queue.is_some())
                {
                    return Err(Error::invalid(
                        "temporal.trackingQueue",
                        "is not supported by schedule_bulk; use schedule_task",
                    ));
                }
                let backend = self.route(options.task_type)?;
                let request = ScheduleRequest::new(name, payload, options)?;
                let request = backend.descriptor().admitted(backend.name(), request)?;
                let group = groups.entry(backend.name()).or_default();
                group.0.push(i);
                group.1.push(request);
                count = i + 1;
            }
            let mut results: Vec<Option<Result<TaskId>>> = Vec::new();
            results.resize_with(count, || None);
            for (name, (positions, requests)) in groups {
                let backend = &self.inner.backends[name];
                match backend.schedule_bulk(requests).await {
                    Ok(got) => {
                        for (pos, r) in positions.into_iter().zip(got) {
                            results[pos] = Some(r.map_err(|e| e.in_instance(name)));
                        }
                    }
                    // Refused before any I/O by this backend: its tasks fail, the tasks
                    // other backends wrote keep their ids.
                    Err(e) => {
                        let e = e.in_instance(name);
                        let (kind, text) = (e.kind(), e.to_string());
                        let mut first = Some(e);
                        for pos in positions {
                            let err = first.take().unwrap_or_else(|| {
                                Error::backend(name.to_string(), kind, text.clone())
                            });
                            results[pos] = Some(Err(err));
                        }
                    }
                }
            }
            Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(Error::backend(
                            "orchestrator",
                            crate::ErrorKind::Unexpected,
                            "a backend returned fewer results than tasks",
                        ))
                    })
                })
                .collect())
        }
        .instrument(span)
        .await
    }

    /// The status of a task, whichever engine runs it; the seed's `getTaskStatus`.
    pub async fn get_task_status(&self, task_id: impl IntoTaskId) -> Result<TaskStatus> {
        let id = task_id.into_task_id()?;
        let span = tracing::info_span!("orchestrator.status", task.id = %id);
        async {
            let b = self.owner(&id)?;
            b.status(&id).await.map_err(|e| e.in_instance(b.name()))
        }
        .instrument(span)
        .await
    }

    /// Wait until a task finishes or `timeout` (at most [`crate::wait::MAX_WAIT`]) passes:
    /// [`WaitOutcome::Finished`] with its final status, or [`WaitOutcome::StillRunning`]
    /// with the last status read. Each engine waits its own way: BullMQ on the queue's
    /// events, Temporal on a long poll of the run's close event, n8n by polling with a
    /// doubling pause.
    ///
    /// The seed's flow (a prep task, then a workflow that uses it) without polling by hand:
    ///
    /// ```
    /// # async fn demo(orch: orchestrator_core::Orchestrator, prep: orchestrator_core::TaskId)
    /// # -> orchestrator_core::Result<()> {
    /// use std::time::Duration;
    /// use orchestrator_core::WaitOutcome;
    /// match orch.wait(&prep, Duration::from_secs(30)).await? {
    ///     WaitOutcome::Finished(s) => println!("prep ended {:?}", s.state),
    ///     WaitOutcome::StillRunning(s) => println!("still {:?} after 30 s", s.state),
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait(
        &self,
        task_id: impl IntoTaskId,
        timeout: std::time::Duration,
    ) -> Result<WaitOutcome> {
        let id = task_id.into_task_id()?;
        let span = tracing::info_span!("orchestrator.wait", task.id = %id);
        async {
            crate::wait::deadline(timeout)?;
            let b = self.owner(&id)?;
            b.wait(&id, timeout)
                .await
                .map_err(|e| e.in_instance(b.name()))
        }
        .instrument(span)
        .await
    }

    /// Cancel a task and say what happened.
    pub async fn cancel(&self, task_id: impl IntoTaskId) -> Result<CancelOutcome> {
        let id = task_id.into_task_id()?;
        let span = tracing::info_span!("orchestrator.cancel", task.id = %id);
        async {
            let b = self.owner(&id)?;
            b.cancel(&id).await.map_err(|e| e.in_instance(b.name()))
        }
        .instrument(span)
        .await
    }

    /// The seed's `cancelTask`: `true` when the task was (or is being) cancelled.
    pub async fn cancel_task(&self, task_id: impl IntoTaskId) -> Result<bool> {
        Ok(self.cancel(task_id).await?.is_cancelled())
    }

    /// Check every backend; a failing check is reported as `ok: false`, not an error.
    pub async fn health(&self) -> Vec<Health> {
        let checks = self.inner.backends.iter().map(|(name, b)| async move {
            b.health().await.unwrap_or_else(|e| Health {
                backend: name.clone(),
                ok: false,
                detail: e.to_string(),
                warnings: Vec::new(),
            })
        });
        futures::future::join_all(checks).await
    }

    /// The backends this orchestrator holds and the task types routed to each.
    pub fn backends(&self) -> Vec<BackendInfo> {
        self.inner
            .backends
            .iter()
            .map(|(name, b)| BackendInfo {
                name: name.clone(),
                source: b.source(),
                routed: TaskType::ALL
                    .into_iter()
                    .filter(|t| self.inner.routing.backend_for(*t) == name)
                    .collect(),
                capabilities: b.capabilities(),
            })
            .collect()
    }

    /// The backend called `name`, for backend-specific calls.
    pub fn backend(&self, name: &str) -> Option<SharedBackend> {
        self.inner.backends.get(name).cloned()
    }

    /// The backend that runs `task_type`, if one is configured.
    pub fn backend_for(&self, task_type: TaskType) -> Option<SharedBackend> {
        self.route(task_type).ok().cloned()
    }
}
