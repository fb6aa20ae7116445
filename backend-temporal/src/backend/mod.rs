//! The `temporal` backend: COMPLEX tasks as Temporal workflow executions.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orchestrator_core::raw::{AdmittedRequest, Backend, InitOnce, async_trait};
use orchestrator_core::{
    Backoff, CancelOutcome, Descriptor, Error, ErrorKind, Health, Limits, ListFilter, Origin,
    Result, TaskId, TaskState, TaskStatus, WaitOutcome,
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
use crate::spec::{self, IdConflictPolicy, TemporalOptions};

/// The kind's name: errors name it, and the orchestrator's handle renames it to the
/// instance.
pub(crate) const NAME: &str = spec::KIND;

mod chain;
mod codec;
mod errors;
mod monitor;
mod start;
mod status;

pub(crate) use chain::split_native;
use chain::{MAX_CHAIN_HOPS, first_run_of, run_of};
use codec::{NAME_MEMO, TRACKING_MEMO, millis};
pub(crate) use codec::{json_payload, payload_json};
use errors::{bad_namespace, interaction, map_status};
use status::summary;

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
    /// Whether the namespace has the name attribute, and when that was checked.
    name_attribute: std::sync::Mutex<Option<(bool, std::time::Instant)>>,
}

impl std::fmt::Debug for TemporalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalBackend")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl TemporalBackend {
    /// A backend for `config` (validated; no connection yet).
    pub fn new(config: TemporalConfig) -> Result<Self> {
        Self::named(NAME, config)
    }

    /// A backend instance called `name` (its task ids are `<name>:<workflow id>:<run id>`).
    pub fn named(name: &str, config: TemporalConfig) -> Result<Self> {
        orchestrator_core::raw::check_instance_name(name)?;
        config.validate(name)?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                client: InitOnce::new(),
                name_attribute: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TemporalConfig {
        &self.inner.config
    }
    async fn timed<T, E>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let limit = self.inner.config.rpc_timeout();
        tokio::time::timeout(limit, fut).await.map_err(|_| {
            Error::engine(
                NAME,
                ErrorKind::Timeout,
                format!(
                    "{what} took longer than {limit:?}; is Temporal reachable at backends.{}.url?",
                    self.inner.name
                ),
            )
        })
    }

    /// The connected client (connecting on first use).
    pub async fn client(&self) -> Result<&Client> {
        let c = &self.inner.config;
        let url_key = format!("backends.{}.url", self.inner.name);
        self.inner
            .client
            .get_or_try_init(|| async {
                let url = c.url.check(&url_key, &["http", "https"])?;
                let opts = ConnectionOptions::new(url)
                    .identity(c.identity.clone().unwrap_or_else(|| format!("orchestrator@{}", std::process::id())))
                    .maybe_api_key(c.api_key.as_ref().map(|k| k.expose().to_string()))
                    .connect_timeout(c.connect_timeout())
                    .build();
                let limit = c.connect_timeout();
                let conn = tokio::time::timeout(limit, Connection::connect(opts))
                    .await
                    .map_err(|_| {
                        Error::engine(
                            NAME,
                            ErrorKind::Unavailable,
                            format!("no Temporal server answered at {} within {limit:?}; start one or fix {url_key}", c.url),
                        )
                    })?
                    .map_err(|e| {
                        Error::engine(
                            NAME,
                            ErrorKind::Unavailable,
                            format!("cannot connect to Temporal at {}: {e}", c.url),
                        )
                        .with_source(e)
                    })?;
                Client::new(conn, ClientOptions::new(c.namespace.clone()).build()).map_err(|e| {
                    Error::engine(NAME, ErrorKind::InvalidConfig, format!("cannot create the Temporal client: {e}"))
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
}

#[async_trait]
impl Backend for TemporalBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn descriptor(&self) -> &Descriptor {
        &spec::DESCRIPTOR
    }

    fn limits(&self) -> Limits {
        Limits::max_payload(self.inner.config.max_payload_bytes)
    }
    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId> {
        self.start(request).await
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        Ok(self.status_and_run(id).await?.0)
    }

    /// Wait on the server: a long poll of the current run's close event, then the chain's
    /// status again (a run that continued as new or retried leaves the chain open).
    async fn wait(&self, id: &TaskId, timeout: Duration) -> Result<WaitOutcome> {
        let deadline = orchestrator_core::raw::wait::deadline(timeout)?;
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

    async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<orchestrator_core::raw::BackendPage> {
        self.list_tasks(filter, resume, limit).await
    }

    async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        self.count_tasks(filter).await
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
                backend: self.inner.name.clone(),
                ok: true,
                detail: format!(
                    "namespace {namespace} reachable at {}",
                    self.inner.config.url
                ),
                warnings: Vec::new(),
            }),
            Err(s) => {
                let msg = s.message().to_string();
                Err(bad_namespace(
                    map_status(s.code(), &msg, "describe namespace"),
                    &self.inner.name,
                    &namespace,
                )
                .with_source(s))
            }
        }
    }
}
