//! The [`Orchestrator`] handle: the seed's `StandardizedOrchestrator` in Rust.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tracing::Instrument;

use crate::backend::{AdmittedRequest, ScheduleRequest};
use crate::config::OrchestratorConfig;
use crate::descriptor::Capabilities;
use crate::error::{Error, Result};
use crate::handle::BackendHandle;
use crate::id::TaskId;
use crate::monitor::{CountRow, Counts, Cursor, InstanceError, ListFilter, Page, PageRequest};
use crate::registry::Registry;
use crate::status::{CancelOutcome, EngineLabel, Health, TaskStatus};
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
    /// The label its statuses report as `source`.
    pub source: EngineLabel,
    /// Task types routed to it.
    pub routed: Vec<TaskType>,
    /// What it supports.
    pub capabilities: Capabilities,
}

/// Where a task type goes: a backend instance, or why none.
#[derive(Debug, Clone)]
enum Route {
    To(String),
    Missing(String),
}

struct Inner {
    backends: BTreeMap<String, BackendHandle>,
    /// One per [`TaskType::ALL`] entry.
    routes: [Route; 3],
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
            .field("routes", &self.inner.routes)
            .finish()
    }
}

/// Builds an [`Orchestrator`] from backend instances and/or configuration.
#[derive(Default)]
pub struct OrchestratorBuilder {
    registry: Option<Registry>,
    config: OrchestratorConfig,
    instances: BTreeMap<String, BackendHandle>,
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

    /// Add an already built backend under its own name (wrapped in a [`BackendHandle`]
    /// if it is not one yet).
    #[must_use]
    pub fn backend(mut self, backend: impl Into<BackendHandle>) -> Self {
        let backend = backend.into();
        self.instances.insert(backend.name().to_string(), backend);
        self
    }

    /// Route `task_type` to the backend called `backend`.
    #[must_use]
    pub fn route(mut self, task_type: TaskType, backend: impl Into<String>) -> Self {
        self.config.routing.set(task_type, backend.into());
        self
    }

    /// Build every configured backend (no I/O: backends connect on first use) and resolve
    /// the routes: an explicit route names a backend (one with no table is built with its
    /// kind's defaults) whose descriptor runs that task type; a task type without a route
    /// goes to the one configured backend that runs it, if there is exactly one.
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
        let routing = &self.config.routing;
        for t in TaskType::ALL {
            if let Some(name) = routing.backend_for(t) {
                if !backends.contains_key(name) {
                    let backend = registry.build(name, name, &serde_json::Value::Null)?;
                    backends.insert(name.to_string(), backend);
                }
            }
        }
        let mut resolved = Vec::with_capacity(3);
        for t in TaskType::ALL {
            let route = match routing.backend_for(t) {
                Some(name) => Route::To(name.to_string()),
                None => default_route(t, &backends, registry),
            };
            if let Route::To(name) = &route {
                let d = backends[name.as_str()].descriptor();
                if !d.accepts(t) {
                    return Err(Error::config(format!(
                        "{t} tasks are routed to backend `{name}` (kind `{}`), which runs only {} tasks; \
                         route {t} to a backend that runs it (ORCHESTRATOR_ROUTE_{t}=<backend> or [routing] {} = \"…\")",
                        d.kind,
                        crate::error::join_types(d.task_types),
                        t.as_str().to_ascii_lowercase(),
                    )));
                }
            }
            resolved.push(route);
        }
        let routes: [Route; 3] = resolved
            .try_into()
            .unwrap_or_else(|_| unreachable!("one route per task type"));
        Ok(Orchestrator {
            inner: Arc::new(Inner { backends, routes }),
        })
    }
}

/// The route of a task type nobody routed: the one configured backend that runs it, or a
/// hint saying what to configure.
fn default_route(
    t: TaskType,
    backends: &BTreeMap<String, BackendHandle>,
    registry: &Registry,
) -> Route {
    let running: Vec<&str> = backends
        .iter()
        .filter(|(_, b)| b.descriptor().accepts(t))
        .map(|(n, _)| n.as_str())
        .collect();
    let lower = t.as_str().to_ascii_lowercase();
    match running.as_slice() {
        [one] => Route::To((*one).to_string()),
        [] => {
            let kinds = registry.kinds_running(t);
            Route::Missing(match kinds.first() {
                None => format!(
                    "no backend kind in this build runs {t} tasks; enable one with a Cargo feature of the `orchestrator` crate"
                ),
                Some(first) => format!(
                    "configure one: a [backends.<instance>] table whose kind is one of {}, or ORCHESTRATOR_<KIND>_<KEY> (e.g. ORCHESTRATOR_{}_URL); or route {t} elsewhere (ORCHESTRATOR_ROUTE_{t}=<backend>)",
                    kinds.join(", "),
                    first.to_ascii_uppercase().replace('-', "_")
                ),
            })
        }
        several => Route::Missing(format!(
            "several backends run them ({}); choose one: ORCHESTRATOR_ROUTE_{t}=<backend> or [routing] {lower} = \"…\"",
            several.join(", ")
        )),
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
        let names = Registry::global().known_names();
        Self::from_config(OrchestratorConfig::from_env(&names)?)
    }

    fn route(&self, task_type: TaskType) -> Result<&BackendHandle> {
        let i = TaskType::ALL
            .iter()
            .position(|t| *t == task_type)
            .unwrap_or_default();
        match &self.inner.routes[i] {
            Route::To(name) => Ok(&self.inner.backends[name.as_str()]),
            Route::Missing(hint) => Err(Error::NoRoute {
                task_type,
                hint: hint.clone(),
            }),
        }
    }

    fn routed_name(&self, task_type: TaskType) -> Option<&str> {
        match self.route(task_type) {
            Ok(b) => Some(b.name()),
            Err(_) => None,
        }
    }

    fn owner(&self, id: &TaskId) -> Result<&BackendHandle> {
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
            let tracking = backend.descriptor().tracking_of(request.options());
            let mut request = backend.admit(request)?;
            // The tracking task is checked before the task starts, so a missing or refusing
            // SIMPLE route never leaves a started task behind an error. Its id is chosen now
            // and stored with the task, whose status reports it.
            let tracking = match tracking {
                Some(t) => Some(self.tracking_request(name, t)?),
                None => None,
            };
            if let Some((_, Some(tracking_id))) = &tracking {
                request.set_tracking_task_id(tracking_id.clone());
            }
            let id = backend.schedule_admitted(request).await?;
            tracing::debug!(task.id = %id, "scheduled");
            if let Some((tracking, _)) = tracking {
                self.schedule_tracking(&id, backend.label(), tracking)
                    .await?;
            }
            Ok(id)
        }
        .instrument(span)
        .await
    }

    /// The SIMPLE request of a tracking task, admitted by the SIMPLE route, and the task id
    /// it will have (its job id is chosen here when the SIMPLE backend takes custom ids);
    /// its payload's `taskId` and `source` are filled in once the task started.
    fn tracking_request(
        &self,
        name: &str,
        tracking: crate::descriptor::Tracking,
    ) -> Result<(AdmittedRequest, Option<TaskId>)> {
        let crate::descriptor::Tracking {
            queue,
            option,
            fields,
        } = tracking;
        let mut payload = serde_json::Map::new();
        payload.insert("taskId".into(), serde_json::Value::Null);
        payload.insert("name".into(), name.into());
        payload.extend(fields);
        let simple = self.route(TaskType::Simple)?;
        // A SIMPLE backend that takes custom job ids gets one, so the id is known up front.
        let job_id = simple
            .descriptor()
            .owns("jobId")
            .then(|| format!("{TRACKING_ID_PREFIX}{}", uuid::Uuid::new_v4()));
        let mut options = TaskOptions::simple();
        if simple.descriptor().owns("jobName") {
            options = options.engine_option("jobName", name.into());
        }
        if let Some(job_id) = &job_id {
            options = options.engine_option("jobId", job_id.clone().into());
        }
        let request =
            ScheduleRequest::new(queue.as_str(), serde_json::Value::Object(payload), options)
                .and_then(|r| simple.admit(r))
                .map_err(|e| match e {
                    // The tracking request's name is the tracking queue.
                    Error::InvalidInput(v) if v.field == "name" => {
                        Error::InvalidInput(crate::ValidationError::new(option, v.reason))
                    }
                    e => e,
                })?;
        let id = job_id
            .map(|j| TaskId::new(simple.name(), &format!("{queue}:{j}")))
            .transpose()?;
        Ok((request, id))
    }

    async fn schedule_tracking(
        &self,
        id: &TaskId,
        source: EngineLabel,
        request: AdmittedRequest,
    ) -> Result<()> {
        let queue = request.name().to_string();
        let request = request
            .with_payload_field("taskId", serde_json::json!(id))
            .with_payload_field("source", serde_json::json!(source));
        let result = async {
            self.route(TaskType::Simple)?
                .schedule_admitted(request)
                .await
        }
        .await;
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
            let mut groups: BTreeMap<&str, (Vec<usize>, Vec<AdmittedRequest>)> = BTreeMap::new();
            let mut count = 0;
            for (i, (name, payload, options)) in tasks.into_iter().enumerate() {
                let backend = self.route(options.task_type)?;
                let request = ScheduleRequest::new(name, payload, options)?;
                if let Some(t) = backend.descriptor().tracking_of(request.options()) {
                    return Err(Error::invalid(
                        t.option,
                        "is not supported by schedule_bulk; use schedule_task",
                    ));
                }
                let request = backend.admit(request)?;
                let group = groups.entry(backend.name()).or_default();
                group.0.push(i);
                group.1.push(request);
                count = i + 1;
            }
            let mut results: Vec<Option<Result<TaskId>>> = Vec::new();
            results.resize_with(count, || None);
            for (name, (positions, requests)) in groups {
                let backend = &self.inner.backends[name];
                let got = backend.schedule_bulk_admitted(requests).await;
                for (pos, r) in positions.into_iter().zip(got) {
                    results[pos] = Some(r);
                }
            }
            Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(Error::engine(
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
        async { self.owner(&id)?.status(&id).await }
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
            self.owner(&id)?.wait(&id, timeout).await
        }
        .instrument(span)
        .await
    }

    /// Cancel a task and say what happened.
    pub async fn cancel(&self, task_id: impl IntoTaskId) -> Result<CancelOutcome> {
        let id = task_id.into_task_id()?;
        let span = tracing::info_span!("orchestrator.cancel", task.id = %id);
        async { self.owner(&id)?.cancel(&id).await }
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

    /// One page of tasks across every instance in the filter's scope, newest first (see
    /// [`crate::ListFilter`] and the `monitor` module docs for each engine's order).
    ///
    /// Each instance answers within `page.timeout`; one that fails or is silent becomes an
    /// entry of [`Page::errors`] (its place in the cursor is kept, so the next page asks it
    /// again) and the others still answer. An instance that cannot list at all (no
    /// [`crate::Capability::List`]) is reported once, `UNSUPPORTED`, and left out of the
    /// cursor. Errors only for bad input: the filter, the limit, the timeout, a cursor made
    /// for other filters, an unknown instance.
    ///
    /// ```
    /// # async fn demo(orch: orchestrator_core::Orchestrator) -> orchestrator_core::Result<()> {
    /// use orchestrator_core::{ListFilter, PageRequest, TaskState};
    /// let filter = ListFilter::all().with_state(TaskState::Failed);
    /// let mut page = orch.list(&filter, &PageRequest::first(50)).await?;
    /// loop {
    ///     for t in &page.tasks {
    ///         println!("{} {} {:?}", t.task_id, t.state, t.error);
    ///     }
    ///     let Some(next) = page.next.take() else { break };
    ///     page = orch.list(&filter, &PageRequest::first(50).after(next)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, filter: &ListFilter, page: &PageRequest) -> Result<Page> {
        filter.validate()?;
        crate::monitor::check_request(page)?;
        let scope = self.scope(filter)?;
        let mut cursor = match &page.cursor {
            Some(text) => Cursor::decode(text, filter)?,
            None => Cursor::start(filter, scope.iter().map(|b| b.name().to_string())),
        };
        let asked = scope
            .into_iter()
            .filter_map(|b| {
                let resume = cursor.at.get(b.name())?.clone();
                Some((b, resume))
            })
            .collect::<Vec<_>>();
        let span = tracing::info_span!("orchestrator.list", instances = asked.len());
        let answers = futures::future::join_all(asked.into_iter().map(|(b, resume)| {
            let limit = page.limit;
            async move {
                let resume = (!resume.is_empty()).then_some(resume);
                let answer =
                    tokio::time::timeout(page.timeout, b.list(filter, resume.as_deref(), limit))
                        .await
                        .unwrap_or_else(|_| Err(silent(b.name(), "list", page.timeout)));
                (b.name().to_string(), answer)
            }
        }))
        .instrument(span)
        .await;
        let mut pages = Vec::new();
        let mut errors = Vec::new();
        for (name, answer) in answers {
            match answer {
                Ok(p) => pages.push((name, p)),
                Err(e) => {
                    if e.kind() == crate::ErrorKind::Unsupported {
                        cursor.at.remove(&name);
                    }
                    errors.push(InstanceError::of(&name, &e));
                }
            }
        }
        let tasks = crate::monitor::merge(&mut cursor, pages, page.limit);
        let next = (!cursor.at.is_empty()).then(|| cursor.encode());
        Ok(Page {
            tasks,
            next,
            errors,
        })
    }

    /// The number of tasks per instance and unified state, for every instance in the
    /// filter's scope (its `backend`, `type` and `name`; state and time filters are
    /// refused: count per state is what this answers). Each instance answers within
    /// `timeout`; one that fails or is silent becomes an entry of [`Counts::errors`].
    pub async fn counts(
        &self,
        filter: &ListFilter,
        timeout: std::time::Duration,
    ) -> Result<Counts> {
        filter.validate()?;
        crate::monitor::check_timeout(timeout)?;
        for (field, set) in [
            ("state", filter.state.is_some()),
            ("since", filter.since.is_some()),
            ("until", filter.until.is_some()),
        ] {
            if set {
                return Err(crate::ValidationError::new(
                    field,
                    "is not a filter of counts (counts are per state, over every task kept)",
                )
                .into());
            }
        }
        let scope = self.scope(filter)?;
        let answers = futures::future::join_all(scope.into_iter().map(|b| async move {
            let answer = tokio::time::timeout(timeout, b.counts(filter))
                .await
                .unwrap_or_else(|_| Err(silent(b.name(), "counts", timeout)));
            (b, answer)
        }))
        .await;
        let mut counts = Vec::new();
        let mut errors = Vec::new();
        for (b, answer) in answers {
            match answer {
                Ok(rows) => counts.extend(rows.into_iter().map(|(state, count)| CountRow {
                    backend: b.name().to_string(),
                    source: b.label(),
                    state,
                    count,
                })),
                Err(e) => errors.push(InstanceError::of(b.name(), &e)),
            }
        }
        Ok(Counts { counts, errors })
    }

    /// Read every instance's [`Orchestrator::counts`] and set the `orchestrator_tasks`
    /// gauge from them ([`crate::instruments`]): what a metrics sampler calls every period.
    /// An instance that does not answer keeps its last values and is in the answer's
    /// `errors`. Reads only, like `counts`.
    pub async fn record_task_counts(&self, timeout: std::time::Duration) -> Result<Counts> {
        let counts = self.counts(&ListFilter::all(), timeout).await?;
        for row in &counts.counts {
            if let Some(b) = self.backend(&row.backend) {
                b.record_counts(&[(row.state, row.count)]);
            }
        }
        Ok(counts)
    }

    /// The instances a monitoring filter is about: its `backend` (which must exist), or
    /// every instance that runs its `type`.
    fn scope(&self, filter: &ListFilter) -> Result<Vec<BackendHandle>> {
        if let Some(name) = &filter.backend {
            let b = self.backend(name).ok_or_else(|| Error::UnknownBackend {
                name: name.clone(),
                available: self.inner.backends.keys().cloned().collect(),
                feature: None,
            })?;
            return Ok(vec![b]);
        }
        Ok(self
            .inner
            .backends
            .values()
            .filter(|b| filter.task_type.is_none_or(|t| b.descriptor().accepts(t)))
            .cloned()
            .collect())
    }

    /// The backends this orchestrator holds and the task types routed to each.
    pub fn backends(&self) -> Vec<BackendInfo> {
        self.inner
            .backends
            .iter()
            .map(|(name, b)| BackendInfo {
                name: name.clone(),
                source: b.label(),
                routed: TaskType::ALL
                    .into_iter()
                    .filter(|t| self.routed_name(*t) == Some(name.as_str()))
                    .collect(),
                capabilities: b.capabilities(),
            })
            .collect()
    }

    /// The backend called `name`, for backend-specific calls
    /// ([`BackendHandle::downcast`] gives the typed backend).
    pub fn backend(&self, name: &str) -> Option<BackendHandle> {
        self.inner.backends.get(name).cloned()
    }

    /// The backend that runs `task_type`, if one is configured.
    pub fn backend_for(&self, task_type: TaskType) -> Option<BackendHandle> {
        self.route(task_type).ok().cloned()
    }
}

/// The prefix of the job id the orchestrator gives a tracking task (on SIMPLE backends that
/// take custom ids): `list` recognises tracking tasks by it.
pub const TRACKING_ID_PREFIX: &str = "track-";

/// The error of an instance that did not answer a monitoring call in time.
fn silent(backend: &str, operation: &str, limit: std::time::Duration) -> Error {
    Error::engine(
        backend,
        crate::ErrorKind::Timeout,
        format!("{operation} got no answer within {} ms", limit.as_millis()),
    )
}
