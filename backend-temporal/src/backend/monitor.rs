//! `list` and `counts` through Temporal's visibility store (`ListWorkflowExecutions`,
//! `CountWorkflowExecutions`), read-only.
//!
//! **A task is a run chain** (continue-as-new, retries): the listing shows each chain once,
//! as its current run (the runs a chain left behind, `ContinuedAsNew` or followed by a
//! retry, are skipped), with the id `status` takes: `<instance>:<workflow id>:<first run
//! id>`. Workflows started outside the orchestrator are listed the same way with `origin:
//! "external"` (ours carry the task name in their memo).
//!
//! **Order**: the visibility store's own: open workflows first (newest started first),
//! then closed ones, most recently closed first.
//!
//! **Filters** go into the List Filter query: the state as `ExecutionStatus`, the window
//! as `StartTime`, the name as the Keyword search attribute `name_attribute` (default
//! `OrchestratorTaskName`), which the backend writes at start once it has seen it
//! registered on the namespace; without it, name filters answer `Unsupported`. `PENDING`
//! and `RUNNING` are both `Running` to the store: the split is made on each run's
//! description.
//!
//! **Cost of a page**: one `ListWorkflowExecutions` call per visibility page, plus per
//! task listed one `DescribeWorkflowExecution` (its first run id: the store does not keep
//! it) and, for a run that closed `Failed`, `TimedOut` or `Completed`, one one-event
//! history read (did a retry follow?), [`READS_AT_ONCE`] at a time; at most
//! [`MAX_EXAMINED`] runs examined per call. `counts` is one `CountWorkflowExecutions …
//! GROUP BY ExecutionStatus`: it counts *runs*, so a failed attempt a retry followed
//! counts as `FAILED` too, and a run no worker picked up counts as `RUNNING`
//! ([`crate::spec::COUNTS_FOLD`]).

use std::time::Instant;

use base64::Engine as _;
use orchestrator_core::TaskType;
use orchestrator_core::raw::{BackendPage, Listed};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::workflow::v1::WorkflowExecutionInfo;

use super::*;

/// Runs described at once while listing.
pub(crate) const READS_AT_ONCE: usize = 16;
/// The most runs one `list` call examines; a sparse filter continues on the next call.
pub(crate) const MAX_EXAMINED: usize = 2000;
/// Visibility pages read per call (however few rows they hold).
const MAX_PAGES: usize = 50;
/// How long a check of the name attribute's registration is trusted.
const ATTRIBUTE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a listing resumes: a visibility page (its token, empty for the first), the page
/// size it was read with, how many of its runs were already examined, and the run id of
/// the last one. The page is read again on resume and the listing goes on after that run
/// where it still is (a start or a close shifts the rows before it), after `skip` rows
/// otherwise.
#[derive(serde::Serialize, serde::Deserialize)]
struct Position(String, usize, usize, String);

impl Position {
    fn token(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn parse(instance: &str, token: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "cursor",
                format!(
                    "is not a position in `{instance}`'s listing (it was given for another backend or altered)"
                ),
            )
        };
        let p: Position = serde_json::from_str(token).map_err(|_| bad())?;
        if p.1 == 0 || p.1 > orchestrator_core::MAX_PAGE || p.2 > p.1 {
            return Err(bad());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&p.0)
            .map_err(|_| bad())?;
        Ok(p)
    }
}

/// A List Filter string literal: `'` doubled. `None` for text the store cannot match
/// exactly (its parser does not take `"` or `\` inside a literal).
fn literal(text: &str) -> Option<String> {
    (!text.contains(['"', '\\'])).then(|| format!("'{}'", text.replace('\'', "''")))
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The Keyword value of search attribute `name` on a listed run.
fn keyword(info: &WorkflowExecutionInfo, name: &str) -> Option<String> {
    let p = info.search_attributes.as_ref()?.indexed_fields.get(name)?;
    match payload_json(p) {
        serde_json::Value::String(s) => Some(s),
        // Keyword lists (and old servers) give an array.
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_string),
        _ => None,
    }
}

/// Whether `state` can come from a run in `status` (the store's view).
fn store_statuses(state: TaskState) -> Vec<&'static str> {
    let from_pending = if state == TaskState::Pending {
        TaskState::Running
    } else {
        state
    };
    spec::NATIVE_STATES
        .iter()
        .filter(|(word, s)| *s == from_pending && *word != "ContinuedAsNew")
        .map(|(word, _)| *word)
        .collect()
}

impl TemporalBackend {
    /// What the last check or start said of the name attribute, if under
    /// [`ATTRIBUTE_TTL`] old.
    pub(super) fn name_attribute_cached(&self) -> Option<bool> {
        let cached = *self.inner.name_attribute.lock().expect("lock");
        cached
            .filter(|(_, at)| at.elapsed() < ATTRIBUTE_TTL)
            .map(|(known, _)| known)
    }

    pub(super) fn cache_name_attribute(&self, known: bool) {
        *self.inner.name_attribute.lock().expect("lock") = Some((known, Instant::now()));
    }

    /// Whether the namespace has the name attribute as a Keyword (read at most every
    /// [`ATTRIBUTE_TTL`]; a failed read is the listing's error, not a "no").
    async fn name_attribute_registered(&self) -> Result<bool> {
        if let Some(known) = self.name_attribute_cached() {
            return Ok(known);
        }
        let known = self.probe_name_attribute().await?;
        self.cache_name_attribute(known);
        Ok(known)
    }

    async fn probe_name_attribute(&self) -> Result<bool> {
        use temporalio_common::protos::temporal::api::operatorservice::v1::ListSearchAttributesRequest;
        let mut op = self.client().await?.connection().operator_service();
        let reply = self
            .timed(
                "list search attributes",
                op.list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
                    namespace: self.inner.config.namespace.clone(),
                })),
            )
            .await?
            .map_err(|s| {
                let msg = s.message().to_string();
                map_status(s.code(), &msg, "list search attributes").with_source(s)
            })?
            .into_inner();
        Ok(reply
            .custom_attributes
            .get(&self.inner.config.name_attribute)
            .is_some_and(|t| *t == IndexedValueType::Keyword as i32))
    }

    /// The List Filter query of `filter` (`None`: nothing can match), and whether each
    /// run's name must still be compared (a name the query cannot state exactly).
    async fn query(&self, filter: &ListFilter, operation: &str) -> Result<Option<(String, bool)>> {
        if filter.task_type.is_some_and(|t| t != TaskType::Complex) {
            return Ok(None);
        }
        let mut parts = vec!["ExecutionStatus != 'ContinuedAsNew'".to_string()];
        if let Some(state) = filter.state {
            let words = store_statuses(state);
            if words.is_empty() {
                return Ok(None);
            }
            let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            parts.push(format!("ExecutionStatus IN ({})", words.join(", ")));
        }
        if let Some(since) = filter.since {
            parts.push(format!("StartTime >= '{}'", rfc3339(since)));
        }
        if let Some(until) = filter.until {
            parts.push(format!("StartTime < '{}'", rfc3339(until)));
        }
        let mut compare_names = false;
        if let Some(name) = &filter.name {
            let attribute = &self.inner.config.name_attribute;
            if !self.name_attribute_registered().await? {
                return Err(Error::Unsupported {
                    backend: self.inner.name.clone(),
                    operation: format!(
                        "{operation} by name: namespace `{}` has no Keyword search attribute `{attribute}` (start the dev server with --search-attribute {attribute}=Keyword, or run `temporal operator search-attribute create --name {attribute} --type Keyword`)",
                        self.inner.config.namespace
                    ),
                });
            }
            match literal(name) {
                Some(l) => parts.push(format!("{attribute} = {l}")),
                None => {
                    // The longest prefix the store can state, then an exact comparison.
                    let cut = name.find(['"', '\\']).unwrap_or(name.len());
                    if let Some(l) = literal(&name[..cut]).filter(|l| l.len() > 2) {
                        parts.push(format!("{attribute} STARTS_WITH {l}"));
                    }
                    compare_names = true;
                }
            }
        }
        Ok(Some((parts.join(" AND "), compare_names)))
    }

    pub(super) async fn list_tasks(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        let at = resume
            .map(|t| Position::parse(&self.inner.name, t))
            .transpose()?;
        let Some((query, compare_names)) = self.query(filter, "list").await? else {
            return Ok(BackendPage {
                tasks: Vec::new(),
                exhausted: true,
                end: None,
            });
        };
        let Position(mut page, size, mut skip, mut last) = at.unwrap_or_else(|| {
            Position(
                String::new(),
                limit.clamp(10, orchestrator_core::MAX_PAGE),
                0,
                String::new(),
            )
        });
        let mut tasks = Vec::new();
        let (mut examined, mut pages) = (0, 0);
        loop {
            pages += 1;
            let (runs, next) = self.visibility_page(&query, &page, size).await?;
            let run_id = |info: &WorkflowExecutionInfo| {
                info.execution
                    .as_ref()
                    .map(|e| e.run_id.clone())
                    .unwrap_or_default()
            };
            if !last.is_empty()
                && let Some(i) = runs.iter().position(|info| run_id(info) == last)
            {
                skip = i + 1;
            }
            let runs: Vec<WorkflowExecutionInfo> = runs.into_iter().skip(skip).collect();
            let mut runs = runs.into_iter();
            loop {
                let chunk: Vec<WorkflowExecutionInfo> = runs.by_ref().take(READS_AT_ONCE).collect();
                if chunk.is_empty() {
                    break;
                }
                // The chunk is at most READS_AT_ONCE long: all its reads run together.
                let mut reads = Vec::with_capacity(chunk.len());
                for info in &chunk {
                    reads.push(self.listed_run(info));
                }
                let read = futures::future::join_all(reads).await;
                for (info, status) in chunk.iter().zip(read) {
                    skip += 1;
                    examined += 1;
                    last = run_id(info);
                    let Some(status) = status? else { continue };
                    let named = !compare_names
                        || filter.name.as_deref().is_some_and(|n| {
                            keyword(info, &self.inner.config.name_attribute).as_deref() == Some(n)
                        });
                    if named
                        && filter.state.is_none_or(|s| s == status.state)
                        && filter.in_window(status.created_at)
                    {
                        tasks.push(Listed {
                            status,
                            resume: Position(page.clone(), size, skip, last.clone()).token(),
                        });
                        if tasks.len() == limit {
                            return Ok(BackendPage {
                                tasks,
                                exhausted: false,
                                end: None,
                            });
                        }
                    }
                }
            }
            if next.is_empty() {
                return Ok(BackendPage {
                    tasks,
                    exhausted: true,
                    end: None,
                });
            }
            page = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&next);
            skip = 0;
            last.clear();
            if examined >= MAX_EXAMINED || pages >= MAX_PAGES {
                return Ok(BackendPage {
                    tasks,
                    exhausted: false,
                    end: Some(Position(page, size, 0, String::new()).token()),
                });
            }
        }
    }

    /// One page of the visibility store: its runs, and the next page's token (empty at
    /// the end).
    async fn visibility_page(
        &self,
        query: &str,
        page: &str,
        size: usize,
    ) -> Result<(Vec<WorkflowExecutionInfo>, Vec<u8>)> {
        use temporalio_client::grpc::WorkflowService;
        use temporalio_common::protos::temporal::api::workflowservice::v1::ListWorkflowExecutionsRequest;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(page)
            .unwrap_or_default();
        let mut svc = self.client().await?.clone();
        let reply = self
            .timed(
                "list workflows",
                svc.list_workflow_executions(tonic::Request::new(ListWorkflowExecutionsRequest {
                    namespace: self.inner.config.namespace.clone(),
                    page_size: i32::try_from(size).unwrap_or(1000),
                    next_page_token: token,
                    query: query.to_string(),
                })),
            )
            .await?
            .map_err(|s| {
                let msg = s.message().to_string();
                bad_namespace(
                    map_status(s.code(), &msg, "list workflows"),
                    &self.inner.name,
                    &self.inner.config.namespace,
                )
                .with_source(s)
            })?
            .into_inner();
        Ok((reply.executions, reply.next_page_token))
    }

    /// The task a listed run is the current run of (`None`: a run its chain left behind,
    /// or one gone since the store listed it).
    async fn listed_run(&self, info: &WorkflowExecutionInfo) -> Result<Option<TaskStatus>> {
        let Some(run) = info.execution.as_ref() else {
            return Ok(None);
        };
        let (wf, run) = (run.workflow_id.as_str(), run.run_id.as_str());
        // An id an outside client gave that our ids cannot carry: not listable, and it
        // must not stop the listing of everything after it.
        let Ok(probe) = TaskId::new(&self.inner.name, &format!("{wf}:{run}")) else {
            tracing::warn!(workflow_id = %wf.escape_debug(), "not listed: the workflow id cannot be part of a task id");
            return Ok(None);
        };
        let gone = |e: &Error| e.kind() == ErrorKind::NotFound;
        // The description, not the store's row (which lags), says whether the run ended
        // and may have a successor.
        let desc = match self.describe(&probe, wf, Some(run)).await {
            Ok((_, desc)) => desc,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        match desc.status() {
            WorkflowExecutionStatus::ContinuedAsNew => return Ok(None),
            WorkflowExecutionStatus::Failed
            | WorkflowExecutionStatus::TimedOut
            | WorkflowExecutionStatus::Completed => match self.next_run(&probe, wf, run).await {
                Ok(Some(_)) => return Ok(None),
                Ok(None) => {}
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(e),
            },
            _ => {}
        }
        let first = match first_run_of(&desc) {
            "" => run,
            first => first,
        };
        let Ok(id) = self.task_id(wf, first) else {
            return Ok(None);
        };
        Ok(Some(summary(id, &desc)))
    }

    pub(super) async fn count_tasks(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        use temporalio_client::grpc::WorkflowService;
        use temporalio_common::protos::temporal::api::workflowservice::v1::CountWorkflowExecutionsRequest;
        let Some((query, compare_names)) = self.query(filter, "counts").await? else {
            return Ok(Vec::new());
        };
        if compare_names {
            return Err(Error::Unsupported {
                backend: self.inner.name.clone(),
                operation:
                    "counts of a name holding `\"` or `\\` (Temporal's List Filter cannot state it)"
                        .into(),
            });
        }
        let mut svc = self.client().await?.clone();
        let reply = self
            .timed(
                "count workflows",
                svc.count_workflow_executions(tonic::Request::new(
                    CountWorkflowExecutionsRequest {
                        namespace: self.inner.config.namespace.clone(),
                        query: format!("{query} GROUP BY ExecutionStatus"),
                    },
                )),
            )
            .await?
            .map_err(|s| {
                let msg = s.message().to_string();
                bad_namespace(
                    map_status(s.code(), &msg, "count workflows"),
                    &self.inner.name,
                    &self.inner.config.namespace,
                )
                .with_source(s)
            })?
            .into_inner();
        let mut counts: Vec<(TaskState, u64)> = Vec::new();
        for group in reply.groups {
            let word = match group.group_values.first().map(payload_json) {
                Some(serde_json::Value::String(w)) => w,
                _ => continue,
            };
            let state = spec::DESCRIPTOR.counted_as(spec::DESCRIPTOR.map_state(&word));
            let n = u64::try_from(group.count).unwrap_or(0);
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some((_, total)) => *total += n,
                None => counts.push((state, n)),
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_and_refuse_what_the_store_cannot_match() {
        assert_eq!(literal("a'b").as_deref(), Some("'a''b'"));
        assert_eq!(literal("emails").as_deref(), Some("'emails'"));
        assert_eq!(literal("c\"d"), None);
        assert_eq!(literal("e\\f"), None);
        assert_eq!(rfc3339(1_000), "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn states_map_to_the_store_statuses_they_can_come_from() {
        assert_eq!(store_statuses(TaskState::Pending), ["Running"]);
        assert_eq!(store_statuses(TaskState::Running), ["Running"]);
        assert_eq!(store_statuses(TaskState::Cancelled), ["Canceled"]);
        assert!(store_statuses(TaskState::ContinuedAsNew).is_empty());
        assert!(store_statuses(TaskState::Delayed).is_empty());
    }

    #[test]
    fn positions_round_trip_and_junk_is_invalid_input() {
        let p = Position("AAEC".into(), 100, 7, "run".into()).token();
        let back = Position::parse("t", &p).expect("position");
        assert_eq!(
            (back.0.as_str(), back.1, back.2, back.3.as_str()),
            ("AAEC", 100, 7, "run")
        );
        for junk in [
            "not a token",
            "[\"\",10,0]",
            "[\"!!\",100,0,\"\"]",
            "[\"\",0,0,\"\"]",
            "[\"\",10,11,\"\"]",
            "[\"\",5000,0,\"\"]",
        ] {
            let e = Position::parse("t", junk).map(|_| ()).expect_err(junk);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{junk}");
        }
    }
}
