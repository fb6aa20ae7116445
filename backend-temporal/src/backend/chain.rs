//! A task's run chain: the first run a start began, followed through continue-as-new and
//! retries (never to a later start that reuses the workflow id), and its history events.

use super::*;

/// `workflowId:runId` → (workflow id, run id of the chain's first run)
/// ([`spec::split_task_id`]).
pub(crate) fn split_native(id: &TaskId) -> Result<(&str, &str)> {
    Ok(spec::split_task_id(id)?)
}

/// Runs followed from a chain's first run before giving up (continue-as-new, retries, cron).
pub(super) const MAX_CHAIN_HOPS: usize = 256;

pub(super) fn first_run_of(desc: &WorkflowExecutionDescription) -> &str {
    desc.raw()
        .workflow_execution_info
        .as_ref()
        .map_or("", |i| i.first_run_id.as_str())
}

pub(super) fn run_of(desc: &WorkflowExecutionDescription) -> &str {
    desc.raw()
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.execution.as_ref())
        .map_or("", |e| e.run_id.as_str())
}

impl TemporalBackend {
    /// One event of run `run` of `wf`, from a one-event history page: its start event, or
    /// with `close_event` its close event (`None` while the run is open). A run the server
    /// does not know is `NotFound` for task `id`.
    pub(super) async fn first_event(
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
    pub(super) async fn history_event(
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
    pub(super) async fn run_attempt(&self, id: &TaskId, wf: &str, run: &str) -> Result<u32> {
        let attempt = match self.first_event(id, wf, run, false).await? {
            Some(history_event::Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
                a.attempt
            }
            _ => 1,
        };
        Ok(u32::try_from(attempt).unwrap_or(1).max(1))
    }

    /// A handle on run `run` of workflow `wf` (`None`: the latest run).
    pub(super) async fn handle(
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

    pub(super) async fn describe(
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
    pub(super) async fn next_run(
        &self,
        id: &TaskId,
        wf: &str,
        run: &str,
    ) -> Result<Option<String>> {
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
    pub(super) async fn chain_run(
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
        Err(Error::engine(
            NAME,
            ErrorKind::Unexpected,
            format!("{id}: the chain has more than {MAX_CHAIN_HOPS} runs; not followed further"),
        ))
    }

    /// A handle on the running run of task `id`'s chain, or the outcome to report when the
    /// chain is gone or closed.
    pub(super) async fn running(
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
}
