//! Starting a workflow: the `temporal` block, the payload and the retry policy mapped to
//! Temporal's start request.

use super::*;

impl TemporalBackend {
    /// Start the workflow of an admitted request.
    pub(super) async fn start(&self, request: AdmittedRequest) -> Result<TaskId> {
        let o = request.options();
        let t = TemporalOptions::of(o)?;
        // The payload is checked against the limit at admission; the arguments are sent
        // beside it, so they get the same limit here.
        let limit = self.inner.config.max_payload_bytes;
        let size: usize = t
            .workflow_args
            .iter()
            .map(orchestrator_core::raw::validate::json_size)
            .sum();
        if size > limit {
            return Err(Error::invalid(
                "temporal.workflowArgs",
                format!(
                    "are {size} bytes of JSON, above this backend's limit of {limit} bytes (max_payload_bytes)"
                ),
            ));
        }
        let task_queue = t
            .task_queue
            .clone()
            .or_else(|| self.inner.config.task_queue.clone())
            .ok_or_else(|| {
                Error::invalid(
                    "temporal.taskQueue",
                    format!(
                        "is required (or set backends.{}.task_queue as a default)",
                        self.inner.name
                    ),
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
        memo.insert(NAME_MEMO, request.name().to_string());
        if spec::payload_in_memo(&request, &t) {
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
        // The task name as a search attribute, so `list` and `counts` filter by it. Sent
        // unless the namespace is known not to have it: Temporal refuses a start naming an
        // unknown attribute (nothing started), and that start is sent again without it, so
        // scheduling never waits on a separate probe.
        let mut named = self.name_attribute_cached() != Some(false);
        let handle = loop {
            let search_attributes = named.then(|| {
                use temporalio_common::protos::temporal::api::common::v1::SearchAttributes as Proto;
                let mut keyword =
                    json_payload(&serde_json::Value::String(request.name().to_string()));
                keyword.metadata.insert("type".into(), b"Keyword".to_vec());
                temporalio_common::search_attributes::SearchAttributes::from_proto(&Proto {
                    indexed_fields: [(self.inner.config.name_attribute.clone(), keyword)].into(),
                })
            });
            let opts = WorkflowStartOptions::new(task_queue.clone(), workflow_id.clone())
                .maybe_search_attributes(search_attributes)
                .id_conflict_policy(match t.id_conflict_policy {
                    IdConflictPolicy::Fail => WorkflowIdConflictPolicy::Fail,
                    IdConflictPolicy::UseExisting => WorkflowIdConflictPolicy::UseExisting,
                    IdConflictPolicy::TerminateExisting => {
                        WorkflowIdConflictPolicy::TerminateExisting
                    }
                })
                .maybe_execution_timeout(t.execution_timeout_ms.map(Duration::from_millis))
                .maybe_retry_policy(retry.clone())
                .memo(memo.clone())
                .build();
            let client = self.client().await?;
            let started = self
                .timed(
                    "start workflow",
                    client.start_workflow(
                        UntypedWorkflow::new(t.workflow_type.clone()),
                        RawValue::new(args.clone()),
                        opts,
                    ),
                )
                .await?;
            match started {
                // Accepted says the attribute exists, not that it is a Keyword: only the
                // probe (for `list`) records a "yes".
                Ok(h) => break h,
                Err(WorkflowStartError::Rpc(s))
                    if named
                        && s.code() == tonic::Code::InvalidArgument
                        && s.message().contains(&self.inner.config.name_attribute) =>
                {
                    tracing::debug!(status = %s.message(), "the namespace lacks the task name attribute; starting without it");
                    self.cache_name_attribute(false);
                    named = false;
                }
                Err(WorkflowStartError::AlreadyStarted { run_id, source }) => {
                    // Every id returned carries a run id: ask for the running chain's first
                    // run when the server did not say.
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
                        &self.inner.name,
                        &self.inner.config.namespace,
                    )
                    .with_source(s));
                }
                Err(other) => {
                    return Err(Error::engine(
                        NAME,
                        ErrorKind::Unexpected,
                        format!("start workflow: {other}"),
                    )
                    .with_source(other));
                }
            }
        };
        let run_id = handle.info().run_id.clone().unwrap_or_default();
        self.task_id(&workflow_id, &run_id)
    }
}
