//! `list` and `counts` over n8n's executions API (`GET /api/v1/executions`), read-only.
//!
//! **A task is an execution.** One this deployment delivered carries, in its Webhook
//! node's data, the signed id we sent as [`TASK_ID_HEADER`]: it is listed with the id a
//! direct-mode `schedule` returned, `<instance>:<dispatch>:<execution>.<sig>`, `origin:
//! "orchestrator"`, and the task name of [`TASK_NAME_HEADER`]. Every other execution (a
//! trigger, a manual run, a webhook call without our signed id) is listed as
//! `<instance>:e<execution>.<sig>`, `origin: "external"`, named by its workflow id. Both
//! forms work with `status`, `cancel` and `wait`. An execution whose data is larger than
//! `max_response_bytes` cannot be told apart: it is listed in the second form with
//! `origin: "unknown"`. A direct-mode task whose workflow did not answer with its execution
//! id (`onReceived` webhooks) holds the id `<instance>:<dispatch>.<sig>`, which only says
//! "delivered, not tracked"; `list` names its execution in the first form.
//!
//! **With an outbox**, the dispatches it holds are tasks too: undelivered, failed,
//! cancelled, or delivered without an execution id, read from its Redis index (see
//! [`crate::outbox`]); a dispatch delivered as execution E is listed once, as E, under the
//! dispatch's id (the id `schedule` returned in outbox mode) while its record lives. Other
//! executions of ours have the `<dispatch>:<execution>` id: a redelivery's second run, a run
//! n8n started for a delivery the record calls failed, and the run of a delivery n8n named
//! no execution for (that dispatch is then listed twice: as its record, UNKNOWN, and as its
//! execution, as `counts` counts it).
//!
//! **Order**: the outbox's records (newest first), then running executions (n8n's
//! unfiltered list leaves them out), newest first, then every other execution, newest
//! first (n8n's order: by execution id, which grows with creation). A dispatch delivered
//! between two pages can show twice (as its record, then as its execution), like any task
//! that changes stream while one pages.
//!
//! **Filters**: a state goes to n8n as its `status=` word (one per unified state); type,
//! name and window are compared after reading.
//!
//! **Cost**: per call, executions pages of up to [`API_PAGE`] rows until `limit` tasks
//! or [`MAX_EXAMINED`] rows; per execution not seen before, one read of its data
//! (`GET /executions/{id}?includeData=true`, [`READS_AT_ONCE`] at a time) for its mark and
//! creation time, which never change: the last [`MAX_MARKS`] are kept. `counts` pages
//! through every execution (n8n has no count endpoint): `ceil(n / 250)` calls, and the
//! outbox's index 1,000 records a call, refused past [`MAX_COUNTED`] entries; by name it
//! also reads each unseen execution's data once.

use orchestrator_core::TaskType;
use orchestrator_core::raw::{BackendPage, Listed};

use super::api::message_of;
use super::status::parse_time;
use super::*;
use crate::outbox::Summary;

/// Executions read per API call (n8n's maximum).
pub(crate) const API_PAGE: usize = 250;
/// The most executions one `list` call examines; a sparse filter continues on the next.
pub(crate) const MAX_EXAMINED: usize = 1000;
/// Execution data read at once while listing.
pub(crate) const READS_AT_ONCE: usize = 8;
/// The most executions `counts` reads before refusing.
pub(crate) const MAX_COUNTED: usize = 20_000;
/// Execution marks kept between calls.
pub(crate) const MAX_MARKS: usize = 10_000;

/// The outbox records (outbox mode only), newest first.
const STREAM_RECORDS: u8 = 0;
/// Running executions, newest first.
const STREAM_RUNNING: u8 = 1;
/// Every other execution (or those of the filter's state), newest first.
const STREAM_EXECUTIONS: u8 = 2;

/// Where a listing resumes: the stream and the entry after which it goes on (`""`: the
/// stream's newest): an execution id, or `<created ms>:<dispatch>` in the records stream.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Position(u8, String);

impl Position {
    fn token(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn bad(instance: &str) -> Error {
        Error::invalid(
            "cursor",
            format!(
                "is not a position in `{instance}`'s listing (it was given for another backend or altered)"
            ),
        )
    }

    fn parse(instance: &str, token: &str) -> Result<Self> {
        let p: Position = serde_json::from_str(token).map_err(|_| Self::bad(instance))?;
        let ok = match p.0 {
            _ if p.1.is_empty() => p.0 <= STREAM_EXECUTIONS,
            STREAM_RECORDS => Self::record_after(&p.1).is_some(),
            STREAM_RUNNING | STREAM_EXECUTIONS => {
                p.1.len() <= 32 && p.1.bytes().all(|b| b.is_ascii_digit())
            }
            _ => false,
        };
        if !ok {
            return Err(Self::bad(instance));
        }
        Ok(p)
    }

    /// `(created, dispatch)` of a records-stream position (`None` for `""` or junk).
    fn record_after(after: &str) -> Option<(u64, String)> {
        let (created, dispatch) = after.split_once(':')?;
        let created = created.parse().ok()?;
        uuid::Uuid::parse_str(dispatch).ok()?;
        Some((created, dispatch.to_string()))
    }
}

/// What an execution's data says of where it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mark {
    /// Our dispatch id, from its trigger's [`TASK_ID_HEADER`], and the task name in its
    /// [`TASK_NAME_HEADER`].
    ours: Option<(String, String)>,
    /// The `(task id, task name)` pairs found in `headers` objects, first ones first
    /// (at most [`MAX_CANDIDATES`]), before their signatures are checked.
    candidates: Vec<(String, String)>,
    /// When the execution was created.
    created_at: Option<u64>,
    /// Whether its data could be read at all.
    readable: bool,
    /// Whether this can no longer change (kept in the cache).
    settled: bool,
    /// Whether the execution was gone when its data was read (not listed, not cached).
    gone: bool,
}

/// The most `headers` objects with our header name an execution's data is searched for.
const MAX_CANDIDATES: usize = 8;
/// The most JSON values searched for the trigger's headers.
const MAX_VALUES_SEARCHED: usize = 100_000;

impl Mark {
    fn unreadable() -> Self {
        Self {
            settled: true,
            ..Self::default()
        }
    }

    fn gone() -> Self {
        Self {
            gone: true,
            ..Self::default()
        }
    }

    /// Search an execution read with `includeData=true` for a `headers` object holding
    /// our task id (the Webhook node's output), bounded.
    fn from_data(exec: &Value) -> Self {
        let id_key = TASK_ID_HEADER.to_ascii_lowercase();
        let name_key = TASK_NAME_HEADER.to_ascii_lowercase();
        let mut candidates = Vec::new();
        // Breadth first: the trigger's own headers come before anything nested in a body.
        let mut queue: std::collections::VecDeque<&Value> = exec.get("data").into_iter().collect();
        let mut searched = 0;
        while let Some(v) = queue.pop_front() {
            searched += 1;
            if searched > MAX_VALUES_SEARCHED {
                break;
            }
            match v {
                Value::Object(map) => {
                    if let Some(Value::Object(h)) = map.get("headers")
                        && let Some(id) = h.get(&id_key).and_then(Value::as_str)
                    {
                        let name = h.get(&name_key).and_then(Value::as_str).unwrap_or_default();
                        candidates.push((id.to_string(), name.to_string()));
                        if candidates.len() == MAX_CANDIDATES {
                            break;
                        }
                    }
                    queue.extend(map.values().filter(|v| v.is_object() || v.is_array()));
                }
                Value::Array(a) => queue.extend(a.iter().filter(|v| v.is_object() || v.is_array())),
                _ => {}
            }
        }
        let state = map_execution(
            exec.get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown"),
        );
        Mark {
            settled: state.is_finished(),
            ours: None,
            candidates,
            created_at: exec
                .get("createdAt")
                .and_then(parse_time)
                .or_else(|| exec.get("startedAt").and_then(parse_time)),
            readable: true,
            gone: false,
        }
    }
}

/// One row of n8n's executions list.
struct Row {
    id: String,
    status: String,
    workflow_id: String,
    started_at: Option<u64>,
    stopped_at: Option<u64>,
}

impl Row {
    fn of(v: &Value) -> Option<Self> {
        let id = match v.get("id")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Row {
            id,
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            workflow_id: v
                .get("workflowId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            started_at: v.get("startedAt").and_then(parse_time),
            stopped_at: v.get("stoppedAt").and_then(parse_time),
        })
    }
}

/// The n8n `status=` word of unified state `state` (`None`: no execution is in it).
fn status_word(state: TaskState) -> Option<&'static str> {
    // `error` also matches `crashed`: both are FAILED.
    spec::EXECUTION_STATES
        .iter()
        .find(|(word, s)| *s == state && *word != "crashed")
        .map(|(word, _)| *word)
}

/// n8n's list cursor resuming after execution `after` (its own format: base64 of
/// `{"lastId","limit"}`).
fn api_cursor(after: &str, limit: usize) -> String {
    use base64::Engine as _;
    let json = serde_json::json!({ "lastId": after, "limit": limit }).to_string();
    base64::engine::general_purpose::STANDARD.encode(json)
}

impl N8nBackend {
    /// One page of executions after `after` (`""`: from the newest), `status` one n8n
    /// status word or none, and whether more follow.
    async fn rows(&self, status: Option<&str>, after: &str, n: usize) -> Result<(Vec<Row>, bool)> {
        let mut query = format!("limit={n}");
        if let Some(s) = status {
            query.push_str("&status=");
            query.push_str(s);
        }
        if !after.is_empty() {
            query.push_str("&cursor=");
            query.push_str(
                &url::form_urlencoded::byte_serialize(api_cursor(after, n).as_bytes())
                    .collect::<String>(),
            );
        }
        let (code, body) = self.api(Method::GET, &["executions"], Some(&query)).await?;
        if !code.is_success() {
            return Err(err(
                ErrorKind::Unexpected,
                format!(
                    "listing executions: n8n answered {code} {}",
                    message_of(&body)
                ),
            ));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            err(
                ErrorKind::Unexpected,
                format!("n8n answered with invalid JSON: {e}"),
            )
        })?;
        let rows: Vec<Row> = v
            .get("data")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Row::of).collect())
            .unwrap_or_default();
        let more = v.get("nextCursor").is_some_and(|c| !c.is_null()) && !rows.is_empty();
        Ok((rows, more))
    }

    /// What execution `exec`'s data says of its origin (cached once read).
    pub(crate) async fn mark(&self, exec: &str) -> Result<Mark> {
        if let Some(m) = lock(&self.inner.marks).get(exec) {
            return Ok(m.clone());
        }
        let probe = self.external_id(exec)?;
        let mark = match self.execution(&probe, exec).await {
            Ok(data) => self.mark_of(&data),
            // Larger than `max_response_bytes`: it stays so (kept, not read again).
            Err(e) if e.kind() == ErrorKind::Rejected => Mark::unreadable(),
            // Deleted or pruned since the list page named it.
            Err(e) if e.kind() == ErrorKind::NotFound => Mark::gone(),
            Err(e) => return Err(e),
        };
        if mark.settled {
            lock(&self.inner.marks).put(exec.to_string(), mark.clone());
        }
        Ok(mark)
    }

    /// The mark in an execution read with its data: ours when a `headers` object holds an
    /// id this instance signed for a dispatch (a copy in a body, another instance's id, a
    /// forged one do not count).
    pub(crate) fn mark_of(&self, data: &Value) -> Mark {
        let mut mark = Mark::from_data(data);
        mark.ours = mark.candidates.iter().find_map(|(id, name)| {
            let id = id.parse::<TaskId>().ok()?;
            if id.backend() != self.inner.name {
                return None;
            }
            match self.verify(&id).ok()? {
                (dispatch, None) if !dispatch.is_empty() => {
                    Some((dispatch.to_string(), name.clone()))
                }
                _ => None,
            }
        });
        mark.candidates.clear();
        // Found, it cannot change; not found, it can until the execution ends (its data may
        // not be saved yet).
        mark.settled |= mark.ours.is_some();
        mark
    }

    /// The task of a listed execution; `recorded`: its dispatch still has an outbox record
    /// (then its id is the dispatch's, as `schedule` returned it in outbox mode).
    fn listed_status(
        &self,
        row: &Row,
        mark: &Mark,
        recorded: bool,
    ) -> Result<(TaskStatus, String)> {
        let (id, origin, name) = match &mark.ours {
            Some((dispatch, name)) => (
                self.task_id(dispatch, (!recorded).then_some(row.id.as_str()))?,
                Origin::Orchestrator,
                name.clone(),
            ),
            None => (
                self.external_id(&row.id)?,
                if mark.readable {
                    Origin::External
                } else {
                    Origin::Unknown
                },
                row.workflow_id.clone(),
            ),
        };
        let state = map_execution(&row.status);
        let mut s = TaskStatus::new(id, spec::LABEL, state, row.status.clone());
        s.attempts_made = u32::from(state.is_finished());
        s.created_at = mark.created_at.or(row.started_at);
        s.started_at = row.started_at;
        s.finished_at = if state.is_finished() {
            row.stopped_at
        } else {
            None
        };
        s.origin = origin;
        Ok((s, name))
    }

    /// The task of an outbox record as `status` reads it, unless its execution stands for
    /// it (`None`).
    pub(crate) fn record_status(
        &self,
        dispatch: &str,
        state: DispatchState,
        sum: &Summary,
    ) -> Result<Option<TaskStatus>> {
        let id = self.task_id(dispatch, None)?;
        let mut s = match state {
            DispatchState::Delivered if sum.execution_id.is_some() => return Ok(None),
            DispatchState::Delivered => untracked(&id, None),
            _ => {
                let mut s = TaskStatus::new(id, spec::LABEL, map_dispatch(state), state.as_str());
                s.attempts_made = sum.attempts_made;
                s.error = sum.error.clone();
                s.finished_at = sum.finished_at;
                s
            }
        };
        s.created_at = Some(sum.created_at);
        s.origin = Origin::Orchestrator;
        Ok(Some(s))
    }

    /// For each of `rows` (with its mark): whether the execution stands for its dispatch's
    /// outbox record — the record says it was delivered as exactly this execution — so its
    /// id is the dispatch's, as `schedule` returned it in outbox mode. Any other execution
    /// of ours (a redelivery's second run, one whose record says it failed, or one of a
    /// delivery n8n named no execution for) is listed under `<dispatch>:<execution>`.
    async fn recorded(&self, rows: &[Row], marks: &[Mark]) -> Result<Vec<bool>> {
        let Some(outbox) = &self.inner.outbox else {
            return Ok(vec![false; marks.len()]);
        };
        let ours: Vec<String> = marks
            .iter()
            .filter_map(|m| m.ours.as_ref().map(|(d, _)| d.clone()))
            .collect();
        let mut sums = outbox.summaries(&ours).await?.into_iter();
        Ok(rows
            .iter()
            .zip(marks)
            .map(|(row, m)| {
                m.ours.is_some()
                    && matches!(
                        sums.next().flatten(),
                        Some((DispatchState::Delivered, sum)) if sum.execution_id.as_deref() == Some(row.id.as_str())
                    )
            })
            .collect())
    }

    pub(crate) async fn list_tasks(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        let page = |tasks, exhausted, end| BackendPage {
            tasks,
            exhausted,
            end,
        };
        let at = resume
            .map(|t| Position::parse(&self.inner.name, t))
            .transpose()?;
        if filter.task_type.is_some_and(|t| t != TaskType::Integration) {
            return Ok(page(Vec::new(), true, None));
        }
        // A state no execution is in is only listed from the outbox records; with a state,
        // one executions stream (STREAM_EXECUTIONS) has it.
        let state_word = filter.state.map(status_word);
        let streams: Vec<u8> = [STREAM_RECORDS, STREAM_RUNNING, STREAM_EXECUTIONS]
            .into_iter()
            .filter(|s| match *s {
                STREAM_RECORDS => self.inner.outbox.is_some(),
                STREAM_RUNNING => state_word.is_none(),
                _ => !matches!(state_word, Some(None)),
            })
            .collect();
        let Some(&first) = streams.first() else {
            return Ok(page(Vec::new(), true, None));
        };
        let Position(mut stream, mut after) = at.unwrap_or(Position(first, String::new()));
        if !streams.contains(&stream) {
            return Err(Position::bad(&self.inner.name));
        }
        let mut tasks = Vec::new();
        let mut examined = 0;
        loop {
            let n = API_PAGE.min(MAX_EXAMINED - examined).max(1);
            let more = if stream == STREAM_RECORDS {
                let outbox = self
                    .inner
                    .outbox
                    .as_ref()
                    .ok_or_else(|| Position::bad(&self.inner.name))?;
                let from = Position::record_after(&after);
                let ids = outbox
                    .newest(from.as_ref().map(|(c, d)| (*c, d.as_str())), n)
                    .await?;
                let names: Vec<String> = ids.iter().map(|(d, _)| d.clone()).collect();
                let sums = outbox.summaries(&names).await?;
                for ((dispatch, created), sum) in ids.iter().zip(sums) {
                    examined += 1;
                    after = format!("{created}:{dispatch}");
                    let Some((state, sum)) = sum else { continue };
                    let Some(status) = self.record_status(dispatch, state, &sum)? else {
                        continue;
                    };
                    if filter.matches(TaskType::Integration, &sum.task_name, &status) {
                        tasks.push(Listed {
                            status,
                            resume: Position(stream, after.clone()).token(),
                        });
                        if tasks.len() == limit {
                            return Ok(page(tasks, false, None));
                        }
                    }
                }
                ids.len() == n
            } else {
                let status = if stream == STREAM_RUNNING {
                    Some("running")
                } else {
                    state_word.flatten()
                };
                let (rows, more) = self.rows(status, &after, n).await?;
                let fetched_last = rows.last().map(|r| r.id.clone());
                // Running executions are listed by their own stream.
                let rows: Vec<Row> = rows
                    .into_iter()
                    .filter(|r| {
                        stream == STREAM_RUNNING || state_word.is_some() || r.status != "running"
                    })
                    .collect();
                for chunk in rows.chunks(READS_AT_ONCE) {
                    let marks: Vec<Mark> =
                        futures::future::join_all(chunk.iter().map(|r| self.mark(&r.id)))
                            .await
                            .into_iter()
                            .collect::<Result<_>>()?;
                    let recorded = self.recorded(chunk, &marks).await?;
                    for ((row, mark), recorded) in chunk.iter().zip(&marks).zip(recorded) {
                        examined += 1;
                        after = row.id.clone();
                        if mark.gone {
                            continue;
                        }
                        let (status, name) = self.listed_status(row, mark, recorded)?;
                        if filter.matches(TaskType::Integration, &name, &status) {
                            tasks.push(Listed {
                                status,
                                resume: Position(stream, after.clone()).token(),
                            });
                            if tasks.len() == limit {
                                return Ok(page(tasks, false, None));
                            }
                        }
                    }
                }
                if let Some(last) = fetched_last {
                    after = last;
                }
                more
            };
            if !more {
                match streams
                    .iter()
                    .position(|s| *s == stream)
                    .and_then(|i| streams.get(i + 1))
                {
                    Some(next) => {
                        stream = *next;
                        after.clear();
                    }
                    None => return Ok(page(tasks, true, None)),
                }
            }
            if examined >= MAX_EXAMINED {
                return Ok(page(tasks, false, Some(Position(stream, after).token())));
            }
        }
    }

    pub(crate) async fn count_tasks(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        if filter.task_type.is_some_and(|t| t != TaskType::Integration) {
            return Ok(Vec::new());
        }
        let mut counts: Vec<(TaskState, u64)> = Vec::new();
        let mut add = |state: TaskState| match counts.iter_mut().find(|(s, _)| *s == state) {
            Some((_, total)) => *total += 1,
            None => counts.push((state, 1)),
        };
        let mut seen = 0usize;
        let too_many = || {
            err(
                ErrorKind::Rejected,
                format!(
                    "counts would read more than {MAX_COUNTED} executions and dispatches (n8n has no count endpoint): list with filters instead, or prune executions (EXECUTIONS_DATA_MAX_AGE)"
                ),
            )
        };
        if let Some(outbox) = &self.inner.outbox {
            let mut after: Option<(u64, String)> = None;
            loop {
                let ids = outbox
                    .newest(after.as_ref().map(|(c, d)| (*c, d.as_str())), 1000)
                    .await?;
                seen += ids.len();
                if seen > MAX_COUNTED {
                    return Err(too_many());
                }
                let names: Vec<String> = ids.iter().map(|(d, _)| d.clone()).collect();
                for ((dispatch, _), sum) in ids.iter().zip(outbox.summaries(&names).await?) {
                    let Some((state, sum)) = sum else { continue };
                    if filter.name.as_ref().is_some_and(|n| *n != sum.task_name) {
                        continue;
                    }
                    if let Some(s) = self.record_status(dispatch, state, &sum)? {
                        add(s.state);
                    }
                }
                match ids.last() {
                    Some((d, c)) if ids.len() == 1000 => after = Some((*c, d.clone())),
                    _ => break,
                }
            }
        }
        for stream in [STREAM_RUNNING, STREAM_EXECUTIONS] {
            let mut after = String::new();
            loop {
                let status = (stream == STREAM_RUNNING).then_some("running");
                let (rows, more) = self.rows(status, &after, API_PAGE).await?;
                seen += rows.len();
                if seen > MAX_COUNTED {
                    return Err(too_many());
                }
                if let Some(last) = rows.last() {
                    after = last.id.clone();
                }
                let rows: Vec<Row> = rows
                    .into_iter()
                    .filter(|r| stream == STREAM_RUNNING || r.status != "running")
                    .collect();
                for chunk in rows.chunks(READS_AT_ONCE) {
                    let names: Vec<String> = match &filter.name {
                        None => Vec::new(),
                        Some(_) => {
                            futures::future::join_all(chunk.iter().map(|r| self.mark(&r.id)))
                                .await
                                .into_iter()
                                .zip(chunk)
                                .map(|(m, row)| {
                                    m.map(|m| {
                                        m.ours.map_or_else(|| row.workflow_id.clone(), |(_, n)| n)
                                    })
                                })
                                .collect::<Result<_>>()?
                        }
                    };
                    for (i, row) in chunk.iter().enumerate() {
                        if filter
                            .name
                            .as_ref()
                            .is_some_and(|n| names.get(i) != Some(n))
                        {
                            continue;
                        }
                        add(map_execution(&row.status));
                    }
                }
                if !more {
                    break;
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::N8nConfig;
    use serde_json::json;

    fn backend() -> N8nBackend {
        N8nBackend::named("n8n-eu", N8nConfig::new("http://127.0.0.1:1").api_key("k"))
            .expect("backend")
    }

    fn execution(headers: Value, status: &str) -> Value {
        json!({
            "id": "7", "status": status, "createdAt": "2026-12-05T10:00:00.000Z",
            "startedAt": "2026-12-05T10:00:01.000Z",
            "data": {"resultData": {"runData": {"Webhook": [{"data": {"main": [[{"json": {
                "headers": headers, "body": {"headers": {"x-orchestrator-task-id": "decoy"}}
            }}]]}}]}}}
        })
    }

    #[test]
    fn an_execution_is_ours_only_with_an_id_this_instance_signed() {
        let b = backend();
        let mine = b
            .task_id("6f1c2d3e-0000-4000-8000-000000000001", None)
            .expect("id");
        let m = b.mark_of(&execution(
            json!({"x-orchestrator-task-id": mine.to_string(), "x-orchestrator-task-name": "emails"}),
            "success",
        ));
        assert_eq!(
            m.ours,
            Some((
                "6f1c2d3e-0000-4000-8000-000000000001".into(),
                "emails".into()
            ))
        );
        assert!(m.settled && m.readable);
        assert_eq!(m.created_at, Some(1_796_464_800_000));
        // Another instance's id, an execution-bound id, a forged signature, the body's
        // copy: none makes it ours.
        let other = N8nBackend::named("n8n-us", N8nConfig::new("http://127.0.0.1:1"))
            .expect("backend")
            .task_id("6f1c2d3e-0000-4000-8000-000000000001", None)
            .expect("id");
        let spliced = b
            .task_id("6f1c2d3e-0000-4000-8000-000000000001", Some("7"))
            .expect("id");
        let forged = format!(
            "n8n-eu:6f1c2d3e-0000-4000-8000-000000000001.{}",
            "0".repeat(32)
        );
        for id in [other.to_string(), spliced.to_string(), forged] {
            let m = b.mark_of(&execution(json!({"x-orchestrator-task-id": id}), "success"));
            assert_eq!(m.ours, None, "{id}");
            assert!(m.settled);
        }
        // No mark yet on a running execution: asked again next time.
        let m = b.mark_of(&execution(json!({}), "running"));
        assert!(m.ours.is_none() && !m.settled);
    }

    #[test]
    fn listed_ids_are_accepted_by_status_and_name_one_execution() {
        let b = backend();
        let ext = b.external_id("42").expect("id");
        assert!(ext.native().starts_with("e42."), "{ext}");
        assert_eq!(b.verify(&ext).expect("verify"), ("", Some("42")));
        let ours = b
            .task_id("6f1c2d3e-0000-4000-8000-000000000001", Some("42"))
            .expect("id");
        assert_eq!(
            b.verify(&ours).expect("verify"),
            ("6f1c2d3e-0000-4000-8000-000000000001", Some("42"))
        );
        // The external form's signature does not carry over to another execution.
        let moved: TaskId = ext
            .to_string()
            .replace(":e42.", ":e43.")
            .parse()
            .expect("id");
        assert_eq!(
            b.verify(&moved).expect_err("moved").kind(),
            ErrorKind::NotFound
        );
        // A UUID starting with `e` is a dispatch, not an execution.
        let d = b
            .task_id("e1c2d3e4-0000-4000-8000-000000000001", None)
            .expect("id");
        assert_eq!(
            b.verify(&d).expect("verify"),
            ("e1c2d3e4-0000-4000-8000-000000000001", None)
        );
    }

    #[test]
    fn positions_round_trip_and_junk_is_invalid_input() {
        let p = Position(STREAM_EXECUTIONS, "15".into()).token();
        let back = Position::parse("n8n", &p).expect("position");
        assert_eq!((back.0, back.1.as_str()), (STREAM_EXECUTIONS, "15"));
        let r = Position(
            STREAM_RECORDS,
            "17:6f1c2d3e-0000-4000-8000-000000000001".into(),
        );
        assert!(Position::parse("n8n", &r.token()).is_ok());
        for junk in [
            "x",
            "[3,\"\"]",
            "[1,\"1a\"]",
            "[1]",
            "[0,\"17\"]",
            "[0,\"x:6f1c2d3e-0000-4000-8000-000000000001\"]",
            &format!("[2,\"{}\"]", "9".repeat(33)),
        ] {
            let e = Position::parse("n8n", junk).map(|_| ()).expect_err(junk);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{junk}");
        }
    }

    #[test]
    fn each_state_is_one_status_word_and_cursors_are_n8n_s_own() {
        assert_eq!(status_word(TaskState::Failed), Some("error"));
        assert_eq!(status_word(TaskState::Pending), Some("new"));
        assert_eq!(status_word(TaskState::Cancelled), Some("canceled"));
        assert_eq!(status_word(TaskState::Delayed), None);
        use base64::Engine as _;
        let c = base64::engine::general_purpose::STANDARD
            .decode(api_cursor("15", 250))
            .expect("base64");
        assert_eq!(
            serde_json::from_slice::<Value>(&c).expect("json"),
            json!({"lastId": "15", "limit": 250})
        );
    }
}
