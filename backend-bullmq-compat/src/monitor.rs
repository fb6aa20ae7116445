//! `list` and `counts` on BullMQ queues, read-only.
//!
//! **Queues**: those in the configuration (`queues`) and those discovered: every
//! `<prefix>:<queue>:meta` key (Node's and our `Queue` handles write it), found with `SCAN`
//! at most [`SCAN_CALLS`] calls of [`SCAN_COUNT`] per `list`/`counts` call and continued on
//! the next until one pass is complete; a complete pass is trusted for
//! [`DISCOVERY_TTL`]. At most [`MAX_QUEUE_HANDLES`] queues.
//!
//! **Order** (BullMQ keeps no index on creation time, so newest-first would read every
//! job): queue by queue in name order; within a queue, set by set — `active`, `wait`,
//! `paused`, `prioritized` (by priority), `delayed` (by due time), `waiting-children`,
//! `completed` and `failed` (newest finished first), and the jobs our cancels removed
//! (newest first); within a list, head first (the newest added, unless `lifo`).
//!
//! **Cost of a page**: one pipeline of `LLEN`/`ZCARD` (O(1) each) over the queues and sets
//! left, then one read-only script per non-empty set read, at most [`SCRIPT_CALLS`] scripts
//! and [`EXAMINE_MAX`] entries examined: O(log N + examined) on sorted sets, O(offset +
//! examined) on lists (a deep page of a long `wait` list walks the list to its offset). A
//! time window is checked on each job's `timestamp`, so a sparse window may give a page
//! with few tasks and a `next` that continues past the entries examined.
//!
//! **Tracking tasks** (job ids `track-…`) are not listed: they show as their COMPLEX
//! task's `trackingTaskId`. `counts` includes them (a count cannot tell them apart without
//! reading every job).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use orchestrator_core::raw::{BackendPage, Listed};
use orchestrator_core::{Error, ListFilter, Origin, Result, TaskState, TaskType};
use tokio::time::Instant;

use crate::backend::{BullmqBackend, MAX_QUEUE_HANDLES, status_from};
use crate::scripts::CANCELLED_KEY;
use crate::spec;

/// How long a complete discovery pass is trusted.
pub(crate) const DISCOVERY_TTL: Duration = Duration::from_secs(30);
/// `SCAN` calls per discovery step.
pub(crate) const SCAN_CALLS: usize = 50;
/// `COUNT` of each `SCAN` call.
pub(crate) const SCAN_COUNT: usize = 1000;
/// Read scripts per `list` call.
pub(crate) const SCRIPT_CALLS: usize = 64;
/// Entries examined per `list` call.
pub(crate) const EXAMINE_MAX: u64 = 5000;

/// A queue's sets as `list` reads them: key, how to read it, the state word of its jobs.
const SETS: [(&str, &str, &str); 9] = [
    ("active", "list", "active"),
    ("wait", "list", "waiting"),
    // A paused queue's jobs read as waiting, as `status` reads them.
    ("paused", "list", "waiting"),
    ("prioritized", "zasc", "prioritized"),
    ("delayed", "zasc", "delayed"),
    ("waiting-children", "zasc", "waiting-children"),
    ("completed", "zrev", "completed"),
    ("failed", "zrev", "failed"),
    (CANCELLED_KEY, "gone", "removed"),
];

fn set_state(set: usize) -> TaskState {
    orchestrator_core::raw::map_native_state(spec::NATIVE_STATES, SETS[set].2)
}

/// Queues found so far and where the `SCAN` stands.
#[derive(Default)]
pub(crate) struct Discovered(Mutex<Discovery>);

#[derive(Default)]
struct Discovery {
    found: BTreeSet<String>,
    scan: u64,
    fresh_until: Option<Instant>,
}

/// Where a listing resumes: queue, set (index in [`SETS`]), offset in the set.
type Token = (String, usize, u64);

fn bad_token() -> Error {
    Error::invalid(
        "cursor",
        "holds a BullMQ position this backend did not give",
    )
}

impl BullmqBackend {
    /// The queues in scope, sorted: `filter.name`, or the configured and discovered ones.
    async fn queues_in_scope(&self, filter: &ListFilter) -> Result<Vec<String>> {
        if let Some(name) = &filter.name {
            spec::queue_name("name", name)?;
            return Ok(vec![name.clone()]);
        }
        self.discover().await?;
        let found = self
            .discovered()
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut all: BTreeSet<String> = found.found.clone();
        all.extend(self.config().queues.iter().cloned());
        Ok(all.into_iter().take(MAX_QUEUE_HANDLES).collect())
    }

    /// One bounded discovery step, unless a complete pass is fresh.
    async fn discover(&self) -> Result<()> {
        let mut scan = {
            let d = self
                .discovered()
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if d.fresh_until.is_some_and(|t| Instant::now() < t) {
                return Ok(());
            }
            d.scan
        };
        let prefix = format!("{}:", self.config().prefix);
        let pattern = format!("{prefix}*:meta");
        let conn = self.connection().await?;
        let mut found = Vec::new();
        let mut complete = false;
        for _ in 0..SCAN_CALLS {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(scan)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<String>) =
                self.timed("discovering queues", conn.cmd(&mut cmd)).await?;
            found.extend(keys.into_iter().filter_map(|k| {
                let q = k.strip_prefix(&prefix)?.strip_suffix(":meta")?;
                (!q.is_empty() && !q.contains(':')).then(|| q.to_string())
            }));
            scan = next;
            if scan == 0 {
                complete = true;
                break;
            }
        }
        let mut d = self
            .discovered()
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for q in found {
            if d.found.len() >= MAX_QUEUE_HANDLES {
                break;
            }
            d.found.insert(q);
        }
        d.scan = scan;
        if complete {
            d.fresh_until = Some(Instant::now() + DISCOVERY_TTL);
        }
        Ok(())
    }

    /// The sizes of `sets` of each of `queues`, in one pipeline (O(1) per set).
    async fn sizes(&self, queues: &[String], sets: &[usize]) -> Result<Vec<u64>> {
        if queues.is_empty() || sets.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = &self.config().prefix;
        let mut pipe = redis::pipe();
        for q in queues {
            for &s in sets {
                let (key, how, _) = SETS[s];
                let cmd = if how == "list" { "LLEN" } else { "ZCARD" };
                pipe.cmd(cmd).arg(format!("{prefix}:{q}:{key}"));
            }
        }
        let conn = self.connection().await?;
        self.timed("counting jobs", conn.pipe(&pipe)).await
    }

    /// The sets (indexes in [`SETS`]) whose jobs pass the filter's state.
    fn sets_of(filter: &ListFilter) -> Vec<usize> {
        (0..SETS.len())
            .filter(|s| filter.state.is_none_or(|want| set_state(*s) == want))
            .collect()
    }

    pub(crate) async fn count_states(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        if filter.task_type.is_some_and(|t| t != TaskType::Simple) {
            return Ok(Vec::new());
        }
        let queues = self.queues_in_scope(filter).await?;
        let sets: Vec<usize> = (0..SETS.len()).collect();
        let sizes = self.sizes(&queues, &sets).await?;
        let mut counts: Vec<(TaskState, u64)> = Vec::new();
        for (i, n) in sizes.into_iter().enumerate() {
            let state = set_state(i % SETS.len());
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some((_, total)) => *total += n,
                None => counts.push((state, n)),
            }
        }
        Ok(counts)
    }

    pub(crate) async fn list_page(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        let sets = Self::sets_of(filter);
        if filter.task_type.is_some_and(|t| t != TaskType::Simple) || sets.is_empty() {
            return Ok(done(Vec::new()));
        }
        let from: Option<Token> = resume
            .map(|t| serde_json::from_str::<Token>(t).map_err(|_| bad_token()))
            .transpose()?;
        if from.as_ref().is_some_and(|(_, s, _)| *s >= SETS.len()) {
            return Err(bad_token());
        }
        let mut queues = self.queues_in_scope(filter).await?;
        // Resume at the token's queue (or the first after it, if it went away).
        if let Some((q, _, _)) = &from {
            let at = queues.partition_point(|x| x < q);
            queues.drain(..at);
        }
        // Sizes of every (queue, set) left, to read only the sets that hold jobs.
        let sizes = self.sizes(&queues, &sets).await?;
        let prefix = &self.config().prefix;
        let mut tasks = Vec::new();
        let (mut examined, mut calls) = (0u64, 0usize);
        for (qi, queue) in queues.iter().enumerate() {
            for (k, &set) in sets.iter().enumerate() {
                let mut offset = match &from {
                    Some((q, s, o)) if q == queue => {
                        if set < *s {
                            continue;
                        }
                        if set == *s { *o } else { 0 }
                    }
                    _ => 0,
                };
                let size = sizes.get(qi * sets.len() + k).copied().unwrap_or(0);
                while offset < size {
                    if calls >= SCRIPT_CALLS || examined >= EXAMINE_MAX {
                        let end = serde_json::to_string(&(queue, set, offset)).ok();
                        return Ok(BackendPage {
                            tasks,
                            exhausted: false,
                            end,
                        });
                    }
                    calls += 1;
                    let want = limit - tasks.len();
                    let budget = usize::try_from(EXAMINE_MAX - examined).unwrap_or(usize::MAX);
                    let (key, how, native) = SETS[set];
                    let (seen, fetched, jobs): crate::scripts::ListAnswer = self
                        .script(
                            "listing jobs",
                            crate::scripts::list(
                                &format!("{prefix}:{queue}"),
                                key,
                                how,
                                offset,
                                want,
                                budget.min(want.max(100) * 4),
                                (filter.since, filter.until),
                            ),
                        )
                        .await?;
                    for (job, index, fields) in jobs {
                        let id = self.job_task_id(queue, &job)?;
                        let mut status = status_from(&id, native, &fields)?;
                        status.origin = Origin::Unknown;
                        let resume = serde_json::to_string(&(queue, set, offset + index))
                            .map_err(|_| bad_token())?;
                        tasks.push(Listed { status, resume });
                    }
                    examined += seen;
                    if tasks.len() >= limit {
                        return Ok(BackendPage {
                            tasks,
                            exhausted: false,
                            end: None,
                        });
                    }
                    offset += seen;
                    if fetched == 0 || seen < fetched {
                        // The set ended (it shrank since it was counted).
                        break;
                    }
                }
            }
        }
        Ok(done(tasks))
    }
}

fn done(tasks: Vec<Listed>) -> BackendPage {
    BackendPage {
        tasks,
        exhausted: true,
        end: None,
    }
}
