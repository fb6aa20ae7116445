//! The `temporal` backend: COMPLEX tasks as Temporal workflow executions.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orchestrator_core::InitOnce;
use orchestrator_core::{
    Backend, BackendFactory, Backoff, CancelOutcome, Descriptor, Error, ErrorKind, Health,
    IdConflictPolicy, Result, ScheduleRequest, Source, TaskId, TaskIdError, TaskState, TaskStatus,
    WaitOutcome, async_trait,
};
use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowStartError,
};
use temporalio_client::tonic;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, UntypedWorkflow, WorkflowCancelOptions,
    WorkflowDescribeOptions, WorkflowExecutionDescription, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowStartOptions,
    WorkflowTerminateOptions,
};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::history::v1::history_event;
use temporalio_common::{MemoValues, RetryPolicy};

use crate::config::TemporalConfig;

pub(crate) const NAME: &str = <crate::TemporalFactory as BackendFactory>::DESCRIPTOR.kind;

/// COMPLEX tasks as Temporal workflows, started by type name with JSON arguments
/// (`json/plain` payloads, one per argument: what every official SDK's worker decodes).
///
/// Connects lazily on first use; clones share the connection.
#[derive(Clone)]
pub struct TemporalBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// The instance name: the prefix of task ids.
    name: String,
    config: TemporalConfig,
    client: InitOnce<Client>,
}

impl std::fmt::Debug for TemporalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalBackend")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A JSON value as a Temporal payload, the way every SDK's default converter writes it.
/// The memo field holding a workflow's tracking task id.
const TRACKING_MEMO: &str = "orchestratorTrackingTaskId";

pub(crate) fn json_payload(v: &serde_json::Value) -> Payload {
    if v.is_null() {
        return Payload {
            metadata: [("encoding".to_string(), b"binary/null".to_vec())].into(),
            ..Payload::default()
        };
    }
    Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(v).unwrap_or_default(),
        ..Payload::default()
    }
}

/// A payload back to JSON: `json/plain` parsed, `binary/null` or no encoding as null,
/// anything else as a description (never a panic).
pub(crate) fn payload_json(p: &Payload) -> serde_json::Value {
    match p.metadata.get("encoding").map(Vec::as_slice) {
        Some(b"json/plain") => serde_json::from_slice(&p.data).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&p.data).into_owned())
        }),
        None | Some(b"binary/null") => serde_json::Value::Null,
        Some(other) => serde_json::json!({
            "encoding": String::from_utf8_lossy(other),
            "bytes": p.data.len(),
        }),
    }
}

/// `workflowId:runId` → (workflow id, run id of the chain's first run). Run ids are UUIDs,
/// so the last `:` splits; anything else is malformed (`temporal:order:42` is not workflow
/// `order`, run `42`).
pub(crate) fn split_native(id: &TaskId) -> Result<(&str, &str)> {
    match id.native().rsplit_once(':') {
        Some((wf, run)) if !wf.is_empty() && uuid::Uuid::parse_str(run).is_ok() => Ok((wf, run)),
        _ => Err(Error::from(TaskIdError::Malformed {
            id: id.to_string(),
            reason: "a temporal task id is `<instance>:<workflow id>:<run id (a UUID)>`".into(),
        })),
    }
}

/// Runs followed from a chain's first run before giving up (continue-as-new, retries, cron).
const MAX_CHAIN_HOPS: usize = 256;

fn first_run_of(desc: &WorkflowExecutionDescription) -> &str {
    desc.raw()
        .workflow_execution_info
        .as_ref()
        .map_or("", |i| i.first_run_id.as_str())
}

fn run_of(desc: &WorkflowExecutionDescription) -> &str {
    desc.raw()
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.execution.as_ref())
        .map_or("", |e| e.run_id.as_str())
}

fn millis(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn map_status(code: tonic::Code, message: &str, operation: &str) -> Error {
    use tonic::Code;
    let (kind, hint) = match code {
        Code::Unavailable => (
            ErrorKind::Unavailable,
            "is the Temporal server running at backends.temporal.url?",
        ),
        Code::DeadlineExceeded => (ErrorKind::Timeout, "the server did not answer in time"),
        Code::Unauthenticated | Code::PermissionDenied => (
            ErrorKind::Unauthorized,
            "check backends.temporal.api_key and TLS settings",
        ),
        Code::NotFound => (ErrorKind::NotFound, ""),
        Code::AlreadyExists => (ErrorKind::AlreadyExists, ""),
        Code::InvalidArgument | Code::FailedPrecondition => (ErrorKind::Rejected, ""),
        Code::ResourceExhausted => (ErrorKind::RateLimited, "the server is throttling requests"),
        _ => (ErrorKind::Unexpected, ""),
    };
    let mut text = format!("{operation}: {message}");
    if !hint.is_empty() {
        text.push_str("; ");
        text.push_str(hint);
    }
    Error::backend(NAME, kind, text)
}

fn interaction(e: WorkflowInteractionError, id: &TaskId, operation: &str) -> Error {
    match e {
        WorkflowInteractionError::NotFound(_) => Error::not_found(id),
        WorkflowInteractionError::Rpc(s) => {
            let msg = s.message().to_string();
            map_status(s.code(), &msg, operation).with_source(s)
        }
        other => Error::backend(NAME, ErrorKind::Unexpected, format!("{operation}: {other}"))
            .with_source(other),
    }
}

fn bad_namespace(e: Error, namespace: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::backend(
            NAME,
            ErrorKind::InvalidConfig,
            format!(
                "namespace `{namespace}` does not exist on the server (backends.temporal.namespace)"
            ),
        )
    } else {
        e
    }
}

impl TemporalBackend {
    /// A backend for `config` (validated; no connection yet).
    pub fn new(config: TemporalConfig) -> Result<Self> {
        Self::named(NAME, config)
    }

    /// A backend instance called `name` (its task ids are `<name>:<workflow id>:<run id>`).
    pub fn named(name: &str, config: TemporalConfig) -> Result<Self> {
        orchestrator_core::config::check_instance_name(name)?;
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                client: InitOnce::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TemporalConfig {
        &self.inner.config
    }

    /// One event of run `run` of `wf`, from a one-event history page: its start event, or
    /// with `close_event` its close event (`None` while the run is open). A run the server
    /// does not know is `NotFound` for task `id`.
    async fn first_event(
        &self,
        id: &TaskId,
        wf: &str,
        run: &str,
        close_event: bool,
    ) -> Result<Option<history_event::Attributes>> {
        self.history_event(id, wf, run, close_event, None).await
    }

    /// [`Self::first_event`]; with `long_poll`, the server holds the call until the event
    /// exists, up to that long (`None` when it did not come in time).
    async fn history_event(
        &self,
        id: &TaskId,
        wf: &str,
        run: &str,
        close_event: bool,
        long_poll: Option<Duration>,
    ) -> Result<Option<history_event::Attributes>> {
        use temporalio_client::grpc::WorkflowService;
        use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
        use temporalio_common::protos::temporal::api::enums::v1::HistoryEventFilterType;
        use temporalio_common::protos::temporal::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;
        let filter = if close_event {
            HistoryEventFilterType::CloseEvent
        } else {
            HistoryEventFilterType::AllEvent
        };
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: self.inner.config.namespace.clone(),
            execution: Some(WorkflowExecution {
                workflow_id: wf.to_string(),
                run_id: run.to_string(),
            }),
            maximum_page_size: 1,
            history_event_filter_type: filter as i32,
            wait_new_event: long_poll.is_some(),
            ..Default::default()
        };
        let mut svc = self.client().await?.clone();
        let call = svc.get_workflow_execution_history(tonic::Request::new(request));
        let reply = match long_poll {
            None => self.timed("reading a run's history", call).await?,
            Some(limit) => match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => return Ok(None),
            },
        }
        .map_err(|s| {
            if s.code() == tonic::Code::NotFound {
                return Error::not_found(id);
            }
            let msg = s.message().to_string();
            map_status(s.code(), &msg, "read history").with_source(s)
        })?;
        Ok(reply
            .into_inner()
            .history
            .and_then(|h| h.events.into_iter().next())
            .and_then(|e| e.attributes))
    }

    /// The attempt number of run `run` (from its start event; 1 when absent).
    async fn run_attempt(&self, id: &TaskId, wf: &str, run: &str) -> Result<u32> {
        let attempt = match self.first_event(id, wf, run, false).await? {
            Some(history_event::Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
                a.attempt
            }
            _ => 1,
        };
        Ok(u32::try_from(attempt).unwrap_or(1).max(1))
    }

    async fn timed<T, E>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let limit = self.inner.config.rpc_timeout();
        tokio::time::timeout(limit, fut).await.map_err(|_| {
            Error::backend(
                NAME,
                ErrorKind::Timeout,
                format!("{what} took longer than {limit:?}; is Temporal reachable at backends.temporal.url?"),
            )
        })
    }

    /// The connected client (connecting on first use).
    pub async fn client(&self) -> Result<&Client> {
        let c = &self.inner.config;
        self.inner
            .client
            .get_or_try_init(|| async {
                let url = c.url.check("backends.temporal.url", &["http", "https"])?;
                let opts = ConnectionOptions::new(url)
                    .identity(c.identity.clone().unwrap_or_else(|| format!("orchestrator@{}", std::process::id())))
                    .maybe_api_key(c.api_key.as_ref().map(|k| k.expose().to_string()))
                    .connect_timeout(c.connect_timeout())
                    .build();
                let limit = c.connect_timeout();
                let conn = tokio::time::timeout(limit, Connection::connect(opts))
                    .await
                    .map_err(|_| {
                        Error::backend(
                            NAME,
                            ErrorKind::Unavailable,
                            format!("no Temporal server answered at {} within {limit:?}; start one (scripts/temporal-dev.sh) or fix backends.temporal.url", c.url),
                        )
                    })?
                    .map_err(|e| {
                        Error::backend(
                            NAME,
                            ErrorKind::Unavailable,
                            format!("cannot connect to Temporal at {}: {e}", c.url),
                        )
                        .with_source(e)
                    })?;
                Client::new(conn, ClientOptions::new(c.namespace.clone()).build()).map_err(|e| {
                    Error::backend(NAME, ErrorKind::InvalidConfig, format!("cannot create the Temporal client: {e}"))
                        .with_source(e)
                })
            })
            .await
    }

    fn task_id(&self, workflow_id: &str, run_id: &str) -> Result<TaskId> {
        Ok(TaskId::new(
            &self.inner.name,
            &format!("{workflow_id}:{run_id}"),
        )?)
    }

    /// A handle on run `run` of workflow `wf` (`None`: the latest run).
    async fn handle(
        &self,
        wf: &str,
        run: Option<&str>,
    ) -> Result<temporalio_client::UntypedWorkflowHandle<Client>> {
        let client = self.client().await?;
        Ok(temporalio_client::WorkflowExecutionInfo::builder()
            .namespace(self.inner.config.namespace.clone())
            .workflow_id(wf)
            .maybe_run_id(run.map(str::to_string))
            .build()
            .bind_untyped(client.clone()))
    }

    async fn describe(
        &self,
        id: &TaskId,
        wf: &str,
        run: Option<&str>,
    ) -> Result<(
        temporalio_client::UntypedWorkflowHandle<Client>,
        WorkflowExecutionDescription,
    )> {
        let handle = self.handle(wf, run).await?;
        let desc = self
            .timed(
                "describe",
                handle.describe(WorkflowDescribeOptions::default()),
            )
            .await?
            .map_err(|e| interaction(e, id, "describe"))?;
        Ok((handle, desc))
    }

    /// The run that follows `run` in its chain (continue-as-new, retry, cron), from its close
    /// event; `None` while `run` is open or when the chain ended with it.
    async fn next_run(&self, id: &TaskId, wf: &str, run: &str) -> Result<Option<String>> {
        use history_event::Attributes as A;
        let next = match self.first_event(id, wf, run, true).await? {
            Some(A::WorkflowExecutionContinuedAsNewEventAttributes(a)) => a.new_execution_run_id,
            Some(A::WorkflowExecutionFailedEventAttributes(a)) => a.new_execution_run_id,
            Some(A::WorkflowExecutionTimedOutEventAttributes(a)) => a.new_execution_run_id,
            Some(A::WorkflowExecutionCompletedEventAttributes(a)) => a.new_execution_run_id,
            _ => String::new(),
        };
        Ok(Some(next).filter(|r| !r.is_empty()))
    }

    /// The current run of the chain task `id` names (the chain its first run began): the
    /// latest run of the workflow id when it belongs to that chain, otherwise the chain
    /// followed run by run from its first run. A later, separate start with the same
    /// workflow id is never this task.
    async fn chain_run(
        &self,
        id: &TaskId,
    ) -> Result<(
        temporalio_client::UntypedWorkflowHandle<Client>,
        WorkflowExecutionDescription,
    )> {
        let (wf, first) = split_native(id)?;
        let latest = self.describe(id, wf, None).await?;
        if first_run_of(&latest.1) == first || run_of(&latest.1) == first {
            return Ok(latest);
        }
        let mut run = first.to_string();
        for _ in 0..MAX_CHAIN_HOPS {
            match self.next_run(id, wf, &run).await? {
                Some(next) => run = next,
                None => return self.describe(id, wf, Some(&run)).await,
            }
        }
        Err(Error::backend(
            NAME,
            ErrorKind::Unexpected,
            format!("{id}: the chain has more than {MAX_CHAIN_HOPS} runs; not followed further"),
        ))
    }

    /// A handle on the running run of task `id`'s chain, or the outcome to report when the
    /// chain is gone or closed.
    async fn running(
        &self,
        id: &TaskId,
    ) -> Result<std::result::Result<temporalio_client::UntypedWorkflowHandle<Client>, CancelOutcome>>
    {
        match self.chain_run(id).await {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Err(CancelOutcome::NotFound)),
            Err(e) => Err(e),
            Ok((_, d)) if d.status() != WorkflowExecutionStatus::Running => {
                Ok(Err(CancelOutcome::NotCancellableFinished))
            }
            Ok((_, d)) => {
                let (wf, _) = split_native(id)?;
                Ok(Ok(self.handle(wf, Some(run_of(&d))).await?))
            }
        }
    }

    /// The status of task `id` and the id of the run it describes (the chain's current run).
    async fn status_and_run(&self, id: &TaskId) -> Result<(TaskStatus, String)> {
        let (wf, _) = split_native(id)?;
        // The current run of this task's chain: continue-as-new and retries are followed, a
        // later separate start with the same workflow id is not.
        let (handle, desc) = self.chain_run(id).await?;
        let native_state = match desc.status() {
            WorkflowExecutionStatus::Running => "Running",
            WorkflowExecutionStatus::Completed => "Completed",
            WorkflowExecutionStatus::Failed => "Failed",
            WorkflowExecutionStatus::Canceled => "Canceled",
            WorkflowExecutionStatus::Terminated => "Terminated",
            WorkflowExecutionStatus::TimedOut => "TimedOut",
            WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
            WorkflowExecutionStatus::Paused => "Paused",
            _ => "Unknown",
        };
        let mut state = orchestrator_core::native_states::map(
            orchestrator_core::native_states::TEMPORAL,
            native_state,
        );
        // No worker has picked the first workflow task yet: pending, not running.
        if state == TaskState::Running
            && desc.history_length() <= 2
            && desc
                .raw()
                .pending_workflow_task
                .as_ref()
                .is_some_and(|p| p.state == 1)
        {
            state = TaskState::Pending;
        }
        let mut s = TaskStatus::new(id.clone(), Source::TEMPORAL, state, native_state);
        s.tracking_task_id = desc
            .raw()
            .workflow_execution_info
            .as_ref()
            .and_then(|i| i.memo.as_ref())
            .and_then(|m| m.fields.get(TRACKING_MEMO))
            .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
            .and_then(|t| t.parse().ok());
        s.created_at = millis(desc.start_time());
        s.started_at = millis(desc.execution_time());
        s.finished_at = millis(desc.close_time());
        // A retry is a new run of the chain; its start event carries the attempt number.
        // Attempts made are those that ended: all of them once closed, the earlier ones
        // while a run is open.
        let attempt = self.run_attempt(id, wf, run_of(&desc)).await?;
        s.attempts_made = if state.is_finished() {
            attempt
        } else {
            attempt.saturating_sub(1)
        };
        if matches!(state, TaskState::Completed | TaskState::Failed) {
            let result = self
                .timed(
                    "get result",
                    handle.get_result(WorkflowGetResultOptions::default()),
                )
                .await?;
            match result {
                Ok(raw) => {
                    s.result = Some(
                        raw.payloads
                            .first()
                            .map(payload_json)
                            .unwrap_or(serde_json::Value::Null),
                    )
                }
                Err(WorkflowGetResultError::Failed(e)) => s.error = Some(e.to_string()),
                Err(other) => s.error = Some(other.to_string()),
            }
        }
        Ok((s, run_of(&desc).to_string()))
    }

    /// Terminate a running workflow at once (no cleanup runs in the workflow).
    pub async fn terminate(&self, id: &TaskId, reason: &str) -> Result<CancelOutcome> {
        let handle = match self.running(id).await? {
            Ok(h) => h,
            Err(outcome) => return Ok(outcome),
        };
        self.timed(
            "terminate",
            handle.terminate(
                WorkflowTerminateOptions::builder()
                    .reason(reason.to_string())
                    .build(),
            ),
        )
        .await?
        .map_err(|e| interaction(e, id, "terminate"))?;
        Ok(CancelOutcome::Cancelled)
    }
}

#[async_trait]
impl Backend for TemporalBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn descriptor(&self) -> &Descriptor {
        &<crate::TemporalFactory as BackendFactory>::DESCRIPTOR
    }

    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId> {
        self.descriptor().admit(self.name(), &request)?;
        let limit = self.inner.config.max_payload_bytes;
        orchestrator_core::validate::payload_size(request.payload(), limit)?;
        if let Some(t) = &request.options().temporal {
            let size: usize = t
                .workflow_args
                .iter()
                .map(orchestrator_core::validate::json_size)
                .sum();
            if size > limit {
                return Err(Error::invalid(
                    "temporal.workflowArgs",
                    format!(
                        "are {size} bytes of JSON, above this backend's limit of {limit} bytes (max_payload_bytes)"
                    ),
                ));
            }
        }
        let o = request.options();
        let t = o
            .temporal
            .as_ref()
            .ok_or_else(|| Error::invalid("temporal", "COMPLEX tasks need `temporal` options"))?;
        let task_queue = t
            .task_queue
            .clone()
            .or_else(|| self.inner.config.task_queue.clone())
            .ok_or_else(|| {
                Error::invalid(
                    "temporal.taskQueue",
                    "is required (or set backends.temporal.task_queue as a default)",
                )
            })?;
        let workflow_id = t
            .workflow_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", request.name(), uuid::Uuid::new_v4()));
        // The seed passes workflow arguments explicitly; without them the payload is the
        // single argument, with them it is kept in the memo (size checked at admission).
        let args: Vec<Payload> = if t.workflow_args.is_empty() {
            vec![json_payload(request.payload())]
        } else {
            t.workflow_args.iter().map(json_payload).collect()
        };
        let mut memo = MemoValues::new();
        memo.insert("orchestratorTaskName", request.name().to_string());
        if orchestrator_core::validate::payload_in_memo(&request) {
            memo.insert("orchestratorPayload", request.payload().clone());
        }
        if let Some(tracking) = request.tracking_task_id() {
            memo.insert(TRACKING_MEMO, tracking.to_string());
        }
        let retry = o.attempts.map(|attempts| {
            let (initial, coefficient) = match o.backoff {
                Some(Backoff::Fixed { delay_ms }) => (Duration::from_millis(delay_ms.max(1)), 1.0),
                Some(Backoff::Exponential { delay_ms }) => {
                    (Duration::from_millis(delay_ms.max(1)), 2.0)
                }
                None => (Duration::from_secs(1), 2.0),
            };
            RetryPolicy::builder()
                .maximum_attempts(attempts)
                .initial_interval(initial)
                .backoff_coefficient(coefficient)
                .build()
        });
        let opts = WorkflowStartOptions::new(task_queue, workflow_id.clone())
            .id_conflict_policy(match t.id_conflict_policy {
                IdConflictPolicy::Fail => WorkflowIdConflictPolicy::Fail,
                IdConflictPolicy::UseExisting => WorkflowIdConflictPolicy::UseExisting,
                IdConflictPolicy::TerminateExisting => WorkflowIdConflictPolicy::TerminateExisting,
            })
            .maybe_execution_timeout(t.execution_timeout_ms.map(Duration::from_millis))
            .maybe_retry_policy(retry)
            .memo(memo)
            .build();
        let client = self.client().await?;
        let started = self
            .timed(
                "start workflow",
                client.start_workflow(
                    UntypedWorkflow::new(t.workflow_type.clone()),
                    RawValue::new(args),
                    opts,
                ),
            )
            .await?;
        let handle = match started {
            Ok(h) => h,
            Err(WorkflowStartError::AlreadyStarted { run_id, source }) => {
                // Every id returned carries a run id: ask for the running chain's first run
                // when the server did not say.
                let run = match run_id.filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None => {
                        let probe = TaskId::new(&self.inner.name, &workflow_id)?;
                        let (_, d) = self.describe(&probe, &workflow_id, None).await?;
                        match first_run_of(&d) {
                            "" => run_of(&d).to_string(),
                            first => first.to_string(),
                        }
                    }
                };
                let existing = format!("{}:{workflow_id}:{run}", self.inner.name);
                tracing::debug!(%existing, status = %source.message(), "workflow id already running");
                return Err(Error::AlreadyExists { task_id: existing });
            }
            Err(WorkflowStartError::Rpc(s)) => {
                let msg = s.message().to_string();
                return Err(bad_namespace(
                    map_status(s.code(), &msg, "start workflow"),
                    &self.inner.config.namespace,
                )
                .with_source(s));
            }
            Err(other) => {
                return Err(Error::backend(
                    NAME,
                    ErrorKind::Unexpected,
                    format!("start workflow: {other}"),
                )
                .with_source(other));
            }
        };
        let run_id = handle.info().run_id.clone().unwrap_or_default();
        self.task_id(&workflow_id, &run_id)
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        Ok(self.status_and_run(id).await?.0)
    }

    /// Wait on the server: a long poll of the current run's close event, then the chain's
    /// status again (a run that continued as new or retried leaves the chain open).
    async fn wait(&self, id: &TaskId, timeout: Duration) -> Result<WaitOutcome> {
        let deadline = orchestrator_core::wait::deadline(timeout)?;
        let (wf, _) = split_native(id)?;
        // Each hop of the chain costs one long poll; the chain walk itself is bounded.
        for _ in 0..=MAX_CHAIN_HOPS {
            let (status, run) = self.status_and_run(id).await?;
            let now = tokio::time::Instant::now();
            if status.state.is_finished() || now >= deadline {
                return Ok(WaitOutcome::of(status));
            }
            self.history_event(id, wf, &run, true, Some(deadline - now))
                .await?;
        }
        Ok(WaitOutcome::of(self.status(id).await?))
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        let handle = match self.running(id).await? {
            Ok(h) => h,
            Err(outcome) => return Ok(outcome),
        };
        self.timed(
            "cancel",
            handle.cancel(
                WorkflowCancelOptions::builder()
                    .reason("cancelled through the orchestrator".to_string())
                    .build(),
            ),
        )
        .await?
        .map_err(|e| interaction(e, id, "cancel"))?;
        Ok(CancelOutcome::CancelRequested)
    }

    async fn health(&self) -> Result<Health> {
        use temporalio_client::grpc::WorkflowService;
        use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
        let client = self.client().await?;
        let namespace = self.inner.config.namespace.clone();
        let mut svc = client.clone();
        let reply = self
            .timed(
                "describe namespace",
                svc.describe_namespace(tonic::Request::new(DescribeNamespaceRequest {
                    namespace: namespace.clone(),
                    ..Default::default()
                })),
            )
            .await?;
        match reply {
            Ok(_) => Ok(Health {
                backend: NAME.into(),
                ok: true,
                detail: format!(
                    "namespace {namespace} reachable at {}",
                    self.inner.config.url
                ),
                warnings: Vec::new(),
            }),
            Err(s) => {
                let msg = s.message().to_string();
                Err(
                    bad_namespace(map_status(s.code(), &msg, "describe namespace"), &namespace)
                        .with_source(s),
                )
            }
        }
    }
}
