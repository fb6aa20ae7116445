//! Unified monitoring: one list and one count across every backend instance.
//!
//! [`crate::Orchestrator::list`] asks every instance in scope for a page of its tasks, at
//! once and each within the request's timeout, and merges the answers newest first (by
//! `createdAt`, ties by task id). An instance that fails or does not answer in time becomes
//! an entry of [`Page::errors`]; the others still answer.
//!
//! Paging is exact on a set that does not change: each backend pages through its tasks in
//! an order of its own and gives, with every task, a token that resumes just after it
//! ([`Listed::resume`]). The merged cursor ([`Page::next`]) holds one such token per
//! instance, so a task is returned once whatever the instances' speeds. The global order is
//! newest first wherever each backend's own order is; a backend whose engine has no index on
//! creation time documents the order it gives instead (BullMQ: queue by queue, state by
//! state), and the merge then interleaves it without reading every task's timestamp.
//!
//! [`crate::Orchestrator::counts`] asks every instance for its number of tasks per unified
//! state, with the same scope and timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result, ValidationError};
use crate::status::{EngineLabel, TaskState, TaskStatus};
use crate::task::TaskType;

/// The most tasks one page holds.
pub const MAX_PAGE: usize = 1000;
/// The latest `since`/`until` a filter takes (9999-12-31T23:59:59.999Z, epoch ms): the
/// last instant every engine's time format can state.
pub const MAX_TIME: u64 = 253_402_300_799_999;

/// Tasks per page when the caller does not say.
pub const DEFAULT_PAGE: usize = 100;

/// How long an instance may take to answer a `list` or `counts` call when the caller does
/// not say.
pub const DEFAULT_MONITOR_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest timeout a `list` or `counts` call accepts.
pub const MAX_MONITOR_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest cursor accepted (a cursor holds one short token per instance).
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// Where a task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Origin {
    /// Scheduled through the orchestrator.
    Orchestrator,
    /// Started outside it (a Node producer, the Temporal CLI, an n8n trigger).
    External,
    /// The engine keeps no mark that tells (BullMQ: our jobs are written by BullMQ's own
    /// scripts and look exactly like a Node producer's).
    #[default]
    Unknown,
}

impl Origin {
    /// The wire spelling (`orchestrator`, `external`, `unknown`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Orchestrator => "orchestrator",
            Origin::External => "external",
            Origin::Unknown => "unknown",
        }
    }
}

/// Which tasks a `list` or `counts` call is about. Every field narrows; none set means
/// every task of every instance. Built with the `with_*` methods, checked by
/// [`ListFilter::validate`] (the orchestrator calls it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListFilter {
    /// Only this backend instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Only tasks of this type.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub task_type: Option<TaskType>,
    /// Only tasks in this unified state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    /// Only tasks of this name (the queue for SIMPLE tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only tasks created at or after this time (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Only tasks created before this time (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl ListFilter {
    /// Every task.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only instance `backend`.
    #[must_use]
    pub fn with_backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// Only tasks of type `t`.
    #[must_use]
    pub fn with_type(mut self, t: TaskType) -> Self {
        self.task_type = Some(t);
        self
    }

    /// Only tasks in state `s`.
    #[must_use]
    pub fn with_state(mut self, s: TaskState) -> Self {
        self.state = Some(s);
        self
    }

    /// Only tasks named `name`.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only tasks created in `[since, until)` (epoch ms; either end open).
    #[must_use]
    pub fn with_window(mut self, since: Option<u64>, until: Option<u64>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// Check the filter: names well formed, the window not empty.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(b) = &self.backend {
            if !crate::id::is_backend_name(b) {
                return Err(ValidationError::new(
                    "backend",
                    "is not a backend instance name (letters, digits, `-`, `_`)",
                ));
            }
        }
        if let Some(n) = &self.name {
            crate::validate::name("name", n)?;
        }
        for (field, at) in [("since", self.since), ("until", self.until)] {
            if at.is_some_and(|t| t > MAX_TIME) {
                return Err(ValidationError::new(
                    field,
                    "is after 9999-12-31T23:59:59.999Z (epoch milliseconds)",
                ));
            }
        }
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s >= u {
                return Err(ValidationError::new(
                    "since",
                    format!("({s}) must be before `until` ({u})"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `status` (of a task named `name`, of type `task_type`) passes the filter's
    /// task-level parts (type, state, name, window). For backends that filter after
    /// reading, and for tests.
    pub fn matches(&self, task_type: TaskType, name: &str, status: &TaskStatus) -> bool {
        self.task_type.is_none_or(|t| t == task_type)
            && self.state.is_none_or(|s| s == status.state)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self.in_window(status.created_at)
    }

    /// Whether a creation time falls in the window (an unknown time only when there is no
    /// window).
    pub fn in_window(&self, created_at: Option<u64>) -> bool {
        match created_at {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// One task of a backend's page, and where the backend's listing resumes after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The task's status as the listing read it (the summary fields; `status` reads the
    /// result and error).
    pub status: TaskStatus,
    /// An opaque token, at most [`MAX_TOKEN_LEN`] bytes: given back to the backend's
    /// [`crate::raw::Backend::list`], the listing continues just after this task.
    pub resume: String,
}

/// The longest resume token a backend may give.
pub const MAX_TOKEN_LEN: usize = 2048;

/// What a backend's [`crate::raw::Backend::list`] returns: up to `limit` tasks in the
/// backend's order, and whether the listing ends with them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendPage {
    /// The tasks, in the backend's order.
    pub tasks: Vec<Listed>,
    /// `true` when no task follows the last one.
    pub exhausted: bool,
    /// Where the listing resumes after everything this call examined, when that is past
    /// the last task returned (a filter that skipped entries): lets a sparse listing
    /// advance with few or no tasks per call instead of examining without bound.
    pub end: Option<String>,
}

/// An instance that could not answer a `list` or `counts` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceError {
    /// The instance.
    pub backend: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The error, as its `Display` says it.
    pub message: String,
}

impl InstanceError {
    pub(crate) fn of(backend: &str, e: &Error) -> Self {
        Self {
            backend: backend.to_string(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// How much of a listing to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many tasks (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// Where to continue: a previous page's [`Page::next`].
    pub cursor: Option<String>,
    /// How long each instance may take (at most [`MAX_MONITOR_TIMEOUT`]).
    pub timeout: Duration,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            cursor: None,
            timeout: DEFAULT_MONITOR_TIMEOUT,
        }
    }
}

impl PageRequest {
    /// The first page of `limit` tasks.
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Each instance may take `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One page of [`crate::Orchestrator::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// The tasks, newest first (see the module docs for each engine's order).
    pub tasks: Vec<TaskStatus>,
    /// The cursor of the next page; `null` once every instance is exhausted.
    pub next: Option<String>,
    /// The instances that did not answer, and why.
    pub errors: Vec<InstanceError>,
}

/// Tasks of one instance in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountRow {
    /// The instance.
    pub backend: String,
    /// Its engine's label.
    pub source: EngineLabel,
    /// The unified state.
    pub state: TaskState,
    /// How many tasks.
    pub count: u64,
}

/// What [`crate::Orchestrator::counts`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// One row per instance and state the instance reports.
    pub counts: Vec<CountRow>,
    /// The instances that did not answer, and why.
    pub errors: Vec<InstanceError>,
}

/// Check a page request's bounds.
pub(crate) fn check_request(page: &PageRequest) -> Result<(), ValidationError> {
    if page.limit == 0 || page.limit > MAX_PAGE {
        return Err(ValidationError::new(
            "limit",
            format!("must be 1 to {MAX_PAGE}, not {}", page.limit),
        ));
    }
    check_timeout(page.timeout)
}

pub(crate) fn check_timeout(timeout: Duration) -> Result<(), ValidationError> {
    if timeout.is_zero() || timeout > MAX_MONITOR_TIMEOUT {
        return Err(ValidationError::new(
            "timeout",
            format!(
                "must be more than 0 and at most {} s",
                MAX_MONITOR_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok(())
}

/// The merged cursor: the filter it was made for, and per instance the token after its
/// last task returned (`""` = from the start). An instance absent from `at` is exhausted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cursor {
    v: u8,
    q: ListFilter,
    pub(crate) at: BTreeMap<String, String>,
}

impl Cursor {
    pub(crate) fn start(filter: &ListFilter, instances: impl Iterator<Item = String>) -> Self {
        Self {
            v: 1,
            q: filter.clone(),
            at: instances.map(|i| (i, String::new())).collect(),
        }
    }

    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decode `text`, made for `filter`.
    pub(crate) fn decode(text: &str, filter: &ListFilter) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::new("cursor", why.to_string());
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad("is longer than any cursor this orchestrator gives"));
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad("is not a cursor this orchestrator gave (not base64url)"))?;
        let c: Cursor = serde_json::from_slice(&json)
            .map_err(|_| bad("is not a cursor this orchestrator gave"))?;
        if c.v != 1 {
            return Err(bad("comes from another version of the orchestrator"));
        }
        if &c.q != filter {
            return Err(bad(
                "was given for other filters: repeat the filters of the first page, or start again without a cursor",
            ));
        }
        if c.at.values().any(|t| t.len() > MAX_TOKEN_LEN) {
            return Err(bad("holds a token longer than any backend gives"));
        }
        Ok(c)
    }
}

/// The order of a merged page: newest `createdAt` first (unknown last), then task id.
pub(crate) fn newest_first(a: &TaskStatus, b: &TaskStatus) -> std::cmp::Ordering {
    b.created_at
        .unwrap_or(0)
        .cmp(&a.created_at.unwrap_or(0))
        .then_with(|| a.task_id.cmp(&b.task_id))
}

/// Merge instances' pages (each in its own order) into one page of at most `limit`, and
/// move `cursor` to just after the tasks taken. `answers` holds, per instance that
/// answered, its page.
pub(crate) fn merge(
    cursor: &mut Cursor,
    answers: Vec<(String, BackendPage)>,
    limit: usize,
) -> Vec<TaskStatus> {
    let mut queues: Vec<(
        String,
        std::collections::VecDeque<Listed>,
        bool,
        Option<String>,
    )> = answers
        .into_iter()
        .map(|(name, page)| (name, page.tasks.into(), page.exhausted, page.end))
        .collect();
    let mut taken = Vec::with_capacity(limit);
    while taken.len() < limit {
        let best = queues
            .iter()
            .enumerate()
            .filter_map(|(i, (_, q, _, _))| q.front().map(|l| (i, l)))
            .min_by(|(_, a), (_, b)| newest_first(&a.status, &b.status))
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let (name, q, _, _) = &mut queues[i];
        if let Some(l) = q.pop_front() {
            cursor.at.insert(name.clone(), l.resume);
            taken.push(l.status);
        }
    }
    for (name, q, exhausted, end) in queues {
        if !q.is_empty() {
            continue;
        }
        if exhausted {
            // Everything it had was taken and nothing follows: done with this instance.
            cursor.at.remove(&name);
        } else if let Some(end) = end {
            // Everything it returned was taken: skip what it examined and left out too.
            cursor.at.insert(name, end);
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TaskId;

    fn listed(id: &str, at: u64) -> Listed {
        let task_id: TaskId = id.parse().expect("id");
        let mut status = TaskStatus::new(task_id, EngineLabel::new("X"), TaskState::Pending, "p");
        status.created_at = Some(at);
        Listed {
            status,
            resume: id.to_string(),
        }
    }

    fn page(tasks: Vec<Listed>, exhausted: bool) -> BackendPage {
        BackendPage {
            tasks,
            exhausted,
            end: None,
        }
    }

    #[test]
    fn the_merge_takes_newest_first_and_resumes_each_instance_after_its_last_taken_task() {
        let f = ListFilter::all();
        let mut c = Cursor::start(&f, ["a".to_string(), "b".to_string()].into_iter());
        let taken = merge(
            &mut c,
            vec![
                (
                    "a".into(),
                    page(vec![listed("a:1", 30), listed("a:2", 10)], true),
                ),
                (
                    "b".into(),
                    page(vec![listed("b:1", 20), listed("b:2", 5)], false),
                ),
            ],
            2,
        );
        let ids: Vec<_> = taken.iter().map(|s| s.task_id.to_string()).collect();
        assert_eq!(ids, ["a:1", "b:1"]);
        assert_eq!(c.at.get("a").map(String::as_str), Some("a:1"));
        assert_eq!(c.at.get("b").map(String::as_str), Some("b:1"));
        // Ties on time go by id; an exhausted instance whose page was all taken leaves.
        let taken = merge(
            &mut c,
            vec![
                ("a".into(), page(vec![listed("a:2", 10)], true)),
                ("b".into(), page(vec![listed("b:0", 10)], true)),
            ],
            5,
        );
        let ids: Vec<_> = taken.iter().map(|s| s.task_id.to_string()).collect();
        assert_eq!(ids, ["a:2", "b:0"]);
        assert!(c.at.is_empty(), "{c:?}");
        // A sparse page moves to where the backend stopped examining, once all was taken.
        let mut c = Cursor::start(&f, ["a".to_string()].into_iter());
        let mut sparse = page(vec![listed("a:9", 1)], false);
        sparse.end = Some("past".into());
        merge(&mut c, vec![("a".into(), sparse.clone())], 5);
        assert_eq!(c.at.get("a").map(String::as_str), Some("past"));
        sparse.tasks.push(listed("a:10", 0));
        merge(&mut c, vec![("a".into(), sparse)], 1);
        assert_eq!(c.at.get("a").map(String::as_str), Some("a:9"));
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk_and_other_filters() {
        let f = ListFilter::all().with_name("emails");
        let c = Cursor::start(&f, ["a".to_string()].into_iter());
        let text = c.encode();
        assert_eq!(Cursor::decode(&text, &f).expect("decode"), c);
        for junk in ["", "!!", "e30", &"A".repeat(MAX_CURSOR_LEN + 1)] {
            let e = Cursor::decode(junk, &f).expect_err(junk);
            assert_eq!(e.field, "cursor");
        }
        let e = Cursor::decode(&text, &ListFilter::all()).expect_err("other filter");
        assert!(e.reason.contains("other filters"), "{e}");
    }

    #[test]
    fn filters_are_checked_and_matched() {
        assert!(
            ListFilter::all()
                .with_window(Some(5), Some(5))
                .validate()
                .is_err()
        );
        assert!(ListFilter::all().with_name(" x").validate().is_err());
        assert!(ListFilter::all().with_backend("a b").validate().is_err());
        let f = ListFilter::all()
            .with_state(TaskState::Pending)
            .with_window(Some(10), Some(20));
        let l = listed("a:1", 10);
        assert!(f.matches(TaskType::Simple, "q", &l.status));
        assert!(!f.matches(TaskType::Simple, "q", &listed("a:1", 20).status));
        assert!(f.in_window(Some(19)) && !f.in_window(None));
        assert!(ListFilter::all().in_window(None));
    }
}
