//! In-memory backends that really run tasks, following each engine's rules.
//!
//! Each is built from its engine's spec (`backend_bullmq_compat::spec`,
//! `backend_temporal::spec`, `backend_n8n::spec`): the same capabilities, engine options,
//! input rules, native states and default limits, so the orchestrator refuses the same
//! requests it refuses for the real engine. One module per engine holds its rules.
//!
//! | rule                          | `memory-bullmq` (SIMPLE) | `memory-temporal` (COMPLEX) | `memory-n8n` (INTEGRATION) |
//! |-------------------------------|--------------------------|-----------------------------|----------------------------|
//! | source                        | `BULLMQ`                 | `TEMPORAL`                  | `N8N`                      |
//! | handler key                   | task name (queue)        | `temporal.workflowType`     | `n8n.workflowId`, else `n8n.webhookUrl` |
//! | handler sees as its name      | `jobName`, else the queue | the task name              | the task name              |
//! | delay, priority, lifo         | yes (BullMQ's order: no priority first, then 1, 2, …) | refused | refused |
//! | attempts + backoff            | yes                      | yes                         | refused (a failed workflow never re-runs) |
//! | cancel waiting/delayed        | removed, remembered → `CANCELLED` (`removed`) | → `CANCELLED` | → `CANCELLED` (not declared) |
//! | cancel running                | refused (`NotCancellableRunning`) | aborted → `CANCELLED` | aborted → `CANCELLED` |
//! | duplicate id                  | custom `jobId`, `deduplication` (until finished or `ttl`) | `idConflictPolicy` | — |
//! | remove on complete/fail       | `true` removes the job; a count or an age trims the set; `wait` still sees its end | refused | refused |
//! | execution timeout             | refused                  | → `TIMED_OUT`               | refused                    |
//! | progress                      | yes                      | not reported                | not reported               |
//!
//! A task whose key has no handler stays `PENDING`, like a job on a queue no worker
//! serves. All timing uses `tokio::time`, so tests may run under `tokio::time::pause()`.

mod bullmq;
mod n8n;
mod temporal;

pub use bullmq::{MEMORY_BULLMQ, MemoryBullmqFactory};
pub use n8n::{MEMORY_N8N, MemoryN8nFactory};
pub use temporal::{MEMORY_TEMPORAL, MemoryTemporalFactory};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use orchestrator_core::raw::{AdmittedRequest, Backend, BackendPage, Listed, async_trait, now_ms};
use orchestrator_core::{
    BackendHandle, CancelOutcome, Capability, Descriptor, Error, ErrorKind, Health, Limits,
    ListFilter, Origin, Result, ScheduleRequest, TaskId, TaskOptions, TaskState, TaskStatus,
    WaitOutcome,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::handler::{Handler, TaskContext};

/// Where a new task goes: an existing task answers for it, or a new one is inserted
/// under this native id.
enum Placement {
    Existing(TaskId),
    New(String),
}

/// One engine's rules, on top of the generic store and scheduler. Generic behaviour
/// follows the descriptor: priorities only where `Priority` is declared, retries only
/// where `Attempts` is, progress only where `Progress` is, a running task aborted by a
/// cancel only where `CancelRunning` is.
trait Flavor: Send + Sync + 'static {
    /// The fake's descriptor (its engine's spec, renamed).
    fn descriptor(&self) -> &'static Descriptor;

    /// Tasks of one key run at most this many at once by default.
    fn default_concurrency(&self) -> usize;

    /// The handler key of a request (queue, workflow type, n8n workflow).
    fn key_of(&self, req: &ScheduleRequest) -> String;

    /// Refuse an id of a shape this engine never issues, as the real backend does.
    fn check_id(&self, id: &TaskId) -> Result<()>;

    /// Where `req` goes: the engine's id rules (custom ids, deduplication, id conflicts).
    fn place(&self, st: &mut State, req: &ScheduleRequest) -> Result<Placement>;

    /// The engine's word for a new task that is not delayed.
    fn waiting_word(&self, prioritized: bool) -> &'static str;

    /// The engine's word for a task a cancel ended.
    fn cancelled_word(&self) -> &'static str;

    /// Whether the task is added at the head of its queue.
    fn lifo(&self, _options: &TaskOptions) -> bool {
        false
    }

    /// The name the handler sees (default: the task name).
    fn handler_name(&self, rec: &Record) -> String {
        rec.name.clone()
    }

    /// The workflow arguments the handler sees (default: none).
    fn handler_args(&self, _rec: &Record) -> Vec<Value> {
        Vec::new()
    }

    /// The run time after which an open task ends `TIMED_OUT`.
    fn execution_timeout_ms(&self, _options: &TaskOptions) -> Option<u64> {
        None
    }

    /// What to do once the record `native` finished (retention).
    fn after_finish(&self, _st: &mut State, _native: &str) {}

    /// What the engine can tell of a task's origin (every fake task was scheduled here).
    fn origin(&self) -> Origin {
        Origin::Orchestrator
    }

    /// Whether `list` shows the record (BullMQ's tracking jobs are not tasks of their own).
    fn listed(&self, _rec: &Record) -> bool {
        true
    }
}

/// Configuration of an in-memory backend (`[backends.memory-bullmq]` and friends).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Tasks of one key (queue, workflow type, integration) run at most this many at once;
    /// by default 1 for `memory-bullmq` (one worker) and 64 for the others.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The largest payload (serialized JSON, bytes) accepted; by default the real engine
    /// backend's default (1 MiB SIMPLE, 1.5 MiB COMPLEX, 16 MiB INTEGRATION).
    #[serde(default)]
    pub max_payload_bytes: Option<usize>,
    /// The most tasks kept (default 100,000); see [`MemoryBackend::set_max_tasks`].
    #[serde(default)]
    pub max_tasks: Option<usize>,
}

/// A task as it was scheduled, for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledTask {
    /// Its id.
    pub task_id: TaskId,
    /// The task name.
    pub name: String,
    /// The payload.
    pub payload: Value,
    /// The options.
    pub options: TaskOptions,
}

#[derive(Debug)]
struct Record {
    id: TaskId,
    key: String,
    name: String,
    payload: Value,
    options: TaskOptions,
    state: TaskState,
    native: &'static str,
    attempts_made: u32,
    progress: Option<Value>,
    result: Option<Value>,
    error: Option<String>,
    created_at: u64,
    started_at: Option<u64>,
    finished_at: Option<u64>,
    due: Option<Instant>,
    order: (u8, u32, i64),
    run: Option<tokio::task::AbortHandle>,
    generation: u64,
    tracking_task_id: Option<TaskId>,
}

impl Record {
    /// End this record now as `state`, stopping its run.
    fn end(&mut self, state: TaskState, native: &'static str) {
        if let Some(run) = self.run.take() {
            run.abort();
        }
        self.generation += 1;
        self.state = state;
        self.native = native;
        self.finished_at = Some(now_ms());
    }
}

#[derive(Default)]
struct State {
    next_seq: i64,
    tasks: HashMap<String, Record>,
    counters: HashMap<String, u64>,
    handlers: HashMap<String, Handler>,
    concurrency: usize,
    max_payload: Option<usize>,
    faults: Vec<(usize, ErrorKind)>,
    log: std::collections::VecDeque<ScheduledTask>,
    max_tasks: usize,
    ends: Ends,
}

/// The ends of tasks removed as they finished (BullMQ's `removeOnComplete`), as BullMQ's
/// event stream keeps them: `wait` reads a removed task's end here. The newest
/// [`ENDS_KEPT`] only, as the stream is trimmed.
#[derive(Default)]
struct Ends {
    by_native: HashMap<String, (u64, TaskStatus)>,
    order: std::collections::VecDeque<(u64, String)>,
    seq: u64,
}

/// How many ends of removed tasks a memory backend keeps (BullMQ's default event stream
/// length).
const ENDS_KEPT: usize = 10_000;

impl Ends {
    fn push(&mut self, status: TaskStatus) {
        self.seq += 1;
        let native = status.task_id.native().to_string();
        self.order.push_back((self.seq, native.clone()));
        self.by_native.insert(native, (self.seq, status));
        while self.order.len() > ENDS_KEPT {
            if let Some((seq, native)) = self.order.pop_front() {
                if self.by_native.get(&native).is_some_and(|(s, _)| *s == seq) {
                    self.by_native.remove(&native);
                }
            }
        }
    }
}

impl State {
    /// Remove the finished record `native`, keeping its end for `wait`.
    fn remove_finished(&mut self, flavor: &dyn Flavor, native: &str) {
        if let Some(rec) = self.tasks.remove(native) {
            self.ends.push(status_of(flavor, &rec));
        }
    }
}

/// The status of `rec`.
fn status_of(flavor: &dyn Flavor, rec: &Record) -> TaskStatus {
    let (state, native) = match rec.state {
        // A delayed task whose time has come is waiting for a worker, as in BullMQ
        // before a worker promotes it.
        TaskState::Delayed if rec.due.is_some_and(|d| d <= Instant::now()) => {
            (TaskState::Pending, flavor.waiting_word(false))
        }
        s => (s, rec.native),
    };
    let label = flavor.descriptor().label();
    let mut s = TaskStatus::new(rec.id.clone(), label, state, native);
    s.attempts_made = rec.attempts_made;
    s.progress = rec.progress.clone();
    s.result = rec.result.clone();
    s.error = rec.error.clone();
    s.created_at = Some(rec.created_at);
    s.started_at = rec.started_at;
    s.finished_at = rec.finished_at;
    s.tracking_task_id.clone_from(&rec.tracking_task_id);
    s.origin = flavor.origin();
    s
}

/// A fake's resume token: the task's place in the newest-first order.
fn token(status: &TaskStatus) -> String {
    format!(
        "{}:{}",
        status.created_at.unwrap_or(0),
        status.task_id.native()
    )
}

fn parse_token(backend: &str, text: &str) -> Result<(u64, String)> {
    text.split_once(':')
        .and_then(|(at, native)| Some((at.parse().ok()?, native.to_string())))
        .ok_or_else(|| {
            Error::invalid(
                "cursor",
                format!("holds a position `{backend}` did not give"),
            )
        })
}

/// How many tasks a memory backend keeps by default (see
/// [`MemoryBackend::set_max_tasks`]).
pub const DEFAULT_MAX_TASKS: usize = 100_000;

/// Before a new task: at the cap, forget the oldest finished tasks (a tenth of the cap at
/// once, so the sort is rare); with none finished, refuse.
fn make_room(st: &mut State, backend: &str) -> Result<()> {
    if st.tasks.len() < st.max_tasks {
        return Ok(());
    }
    let mut finished: Vec<(u64, String)> = st
        .tasks
        .iter()
        .filter(|(_, r)| r.state.is_finished())
        .map(|(k, r)| (r.finished_at.unwrap_or(0), k.clone()))
        .collect();
    finished.sort_unstable();
    let target = st.max_tasks - st.max_tasks.div_ceil(10);
    let excess = st.tasks.len() - target.min(st.tasks.len() - 1);
    for (_, key) in finished.into_iter().take(excess) {
        st.tasks.remove(&key);
    }
    if st.tasks.len() >= st.max_tasks {
        return Err(Error::engine(
            backend,
            ErrorKind::RateLimited,
            format!(
                "the in-memory backend holds {} unfinished tasks (its limit); let some finish or cancel them, or raise it with set_max_tasks",
                st.tasks.len()
            ),
        ));
    }
    Ok(())
}

struct Engine {
    name: String,
    flavor: &'static dyn Flavor,
    state: Mutex<State>,
}

/// An in-memory backend. Clones share the same tasks.
#[derive(Clone)]
pub struct MemoryBackend {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("name", &self.engine.name)
            .field("kind", &self.engine.flavor.descriptor().kind)
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    fn with(name: &str, flavor: &'static dyn Flavor, concurrency: usize) -> Self {
        let state = State {
            concurrency: concurrency.max(1),
            max_tasks: DEFAULT_MAX_TASKS,
            ..State::default()
        };
        Self {
            engine: Arc::new(Engine {
                name: name.to_string(),
                flavor,
                state: Mutex::new(state),
            }),
        }
    }

    fn of(flavor: &'static dyn Flavor) -> Self {
        Self::with(
            flavor.descriptor().kind,
            flavor,
            flavor.default_concurrency(),
        )
    }

    /// SIMPLE tasks with BullMQ's rules, named `memory-bullmq`, label `BULLMQ`.
    pub fn bullmq() -> Self {
        Self::of(&bullmq::Bullmq)
    }

    /// COMPLEX tasks with Temporal's rules, named `memory-temporal`, label `TEMPORAL`.
    pub fn temporal() -> Self {
        Self::of(&temporal::Temporal)
    }

    /// INTEGRATION tasks with n8n's rules, named `memory-n8n`, label `N8N`.
    pub fn n8n() -> Self {
        Self::of(&n8n::N8n)
    }

    /// A fresh backend of the same kind and concurrency called `name` (task ids start with
    /// it), for several instances of one kind. Tasks are not carried over.
    #[must_use]
    pub fn named(&self, name: &str) -> Self {
        let concurrency = self.lock().concurrency;
        Self::with(name, self.engine.flavor, concurrency)
    }

    /// This backend behind the orchestrator's checks (what an orchestrator holds).
    pub fn shared(&self) -> BackendHandle {
        BackendHandle::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a record half-written (every update
        // is a single assignment), so a poisoned lock is safe to keep using.
        self.engine.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `handler` for every task of `key` (the queue for SIMPLE, the workflow type for
    /// COMPLEX, the n8n workflow id or webhook URL for INTEGRATION). Tasks already waiting
    /// start now.
    pub fn handle<F, Fut>(&self, key: &str, handler: F) -> &Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = crate::HandlerResult> + Send + 'static,
    {
        self.set_handler(key, Handler::new(handler));
        self
    }

    /// Like [`MemoryBackend::handle`], with a ready-made [`Handler`].
    pub fn set_handler(&self, key: &str, handler: Handler) {
        self.lock().handlers.insert(key.to_string(), handler);
        self.pump();
    }

    /// Stop running tasks of `key` (running ones finish).
    pub fn remove_handler(&self, key: &str) {
        self.lock().handlers.remove(key);
    }

    /// Accept payloads up to `bytes` of JSON (as the real backend's `max_payload_bytes`).
    pub fn set_max_payload_bytes(&self, bytes: usize) {
        self.lock().max_payload = Some(bytes);
    }

    fn max_payload(&self) -> usize {
        self.lock()
            .max_payload
            .unwrap_or(self.engine.flavor.descriptor().limits.max_payload_bytes)
    }

    /// How many tasks of one key may run at once.
    pub fn set_concurrency(&self, concurrency: usize) {
        self.lock().concurrency = concurrency.max(1);
        self.pump();
    }

    /// Every task scheduled so far, in order (including removed ones), the last
    /// [`MemoryBackend::set_max_tasks`] of them.
    pub fn scheduled(&self) -> Vec<ScheduledTask> {
        self.lock().log.iter().cloned().collect()
    }

    /// Keep at most `n` tasks (default [`DEFAULT_MAX_TASKS`]): past it the oldest finished
    /// ones are forgotten (their status is then `NotFound`, as after BullMQ's
    /// `removeOnComplete`), and when every task kept is unfinished a new one is refused
    /// with `RateLimited`. Memory stays bounded in a long-running process.
    pub fn set_max_tasks(&self, n: usize) {
        self.lock().max_tasks = n.max(1);
    }

    /// Make the next `count` backend calls (schedule, status, cancel, health) fail with an
    /// engine error of `kind`.
    pub fn fail_next(&self, count: usize, kind: ErrorKind) {
        self.lock().faults.push((count, kind));
    }

    /// Finish a pending or running task by hand with `result`.
    pub fn complete(&self, id: &TaskId, result: Value) -> Result<()> {
        self.finish_by_hand(id, Ok(result))
    }

    /// Fail a pending or running task by hand (no retry).
    pub fn fail(&self, id: &TaskId, message: &str) -> Result<()> {
        self.finish_by_hand(id, Err(message.to_string()))
    }

    fn finish_by_hand(&self, id: &TaskId, outcome: Result<Value, String>) -> Result<()> {
        {
            let mut st = self.lock();
            let rec = st
                .tasks
                .get_mut(id.native())
                .filter(|r| r.id == *id)
                .ok_or_else(|| Error::not_found(id))?;
            if rec.state.is_finished() {
                return Err(Error::engine(
                    &self.engine.name,
                    ErrorKind::Rejected,
                    format!("task {id} already finished as {}", rec.state),
                ));
            }
            rec.attempts_made += 1;
            match outcome {
                Ok(v) => {
                    rec.end(TaskState::Completed, "completed");
                    rec.result = Some(v);
                }
                Err(e) => {
                    rec.end(TaskState::Failed, "failed");
                    rec.error = Some(e);
                }
            }
            let key = rec.id.native().to_string();
            self.engine.flavor.after_finish(&mut st, &key);
        }
        self.pump();
        Ok(())
    }

    /// Like its engine's backend, a fake whose spec does not declare `c` cannot do it.
    fn declares(&self, c: Capability, operation: &str) -> Result<()> {
        if self.engine.flavor.descriptor().capabilities.has(c) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                backend: self.engine.name.clone(),
                operation: operation.into(),
            })
        }
    }

    /// The statuses of the listed tasks that pass `filter`.
    fn matching(&self, filter: &ListFilter) -> Vec<TaskStatus> {
        let flavor = self.engine.flavor;
        let Some(task_type) = flavor.descriptor().task_types.first().copied() else {
            return Vec::new();
        };
        let st = self.lock();
        st.tasks
            .values()
            .filter(|r| flavor.listed(r))
            .map(|r| (r, status_of(flavor, r)))
            .filter(|(r, s)| filter.matches(task_type, &r.name, s))
            .map(|(_, s)| s)
            .collect()
    }

    fn injected_fault(&self) -> Result<()> {
        let mut st = self.lock();
        if let Some(first) = st.faults.first_mut() {
            let kind = first.1;
            first.0 -= 1;
            if first.0 == 0 {
                st.faults.remove(0);
            }
            return Err(Error::engine(
                &self.engine.name,
                kind,
                format!("injected {kind} fault"),
            ));
        }
        Ok(())
    }

    /// Start every task that may start now; called after anything changes.
    fn pump(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        let concurrency = st.concurrency;
        let mut running: HashMap<String, usize> = HashMap::new();
        for r in st.tasks.values() {
            if r.state == TaskState::Running {
                *running.entry(r.key.clone()).or_default() += 1;
            }
        }
        // Candidates in engine order: BullMQ serves its wait list (no priority) before the
        // prioritized set (1 first), FIFO inside each unless LIFO.
        let mut ready: Vec<(String, (u8, u32, i64), String)> = st
            .tasks
            .iter()
            .filter(|(_, r)| match r.state {
                TaskState::Pending => true,
                TaskState::Delayed => r.due.is_none_or(|d| d <= now),
                _ => false,
            })
            .filter(|(_, r)| st.handlers.contains_key(&r.key))
            .map(|(k, r)| (r.key.clone(), r.order, k.clone()))
            .collect();
        ready.sort();
        for (key, _, native) in ready {
            let n = running.entry(key.clone()).or_default();
            if *n >= concurrency {
                continue;
            }
            *n += 1;
            let Some(handler) = st.handlers.get(&key).cloned() else {
                continue;
            };
            let Some(rec) = st.tasks.get_mut(&native) else {
                continue;
            };
            rec.state = TaskState::Running;
            rec.native = "active";
            rec.started_at = Some(now_ms());
            rec.generation += 1;
            let generation = rec.generation;
            let flavor = self.engine.flavor;
            let ctx = TaskContext::new(
                rec.id.clone(),
                flavor.handler_name(rec),
                rec.payload.clone(),
                flavor.handler_args(rec),
                rec.attempts_made + 1,
                // Only engines that report progress get a sink (Temporal and n8n do not).
                flavor
                    .descriptor()
                    .capabilities
                    .has(Capability::Progress)
                    .then(|| self.progress_sink(native.clone(), generation)),
            );
            let attempt = tokio::spawn(handler.call(ctx));
            rec.run = Some(attempt.abort_handle());
            let this = self.clone();
            tokio::spawn(async move {
                let outcome = match attempt.await {
                    Ok(outcome) => outcome,
                    Err(e) if e.is_panic() => Err("handler panicked".to_string()),
                    Err(_) => return, // aborted by cancel or by hand: already recorded
                };
                this.finish_attempt(&native, generation, outcome);
            });
        }
    }

    fn progress_sink(&self, native: String, generation: u64) -> Arc<dyn Fn(Value) + Send + Sync> {
        let this = self.clone();
        Arc::new(move |p| {
            if let Some(r) = this.lock().tasks.get_mut(&native) {
                if r.generation == generation {
                    r.progress = Some(p);
                }
            }
        })
    }

    fn finish_attempt(&self, native: &str, generation: u64, outcome: Result<Value, String>) {
        {
            let mut st = self.lock();
            let Some(rec) = st.tasks.get_mut(native) else {
                return;
            };
            if rec.generation != generation || rec.state != TaskState::Running {
                return;
            }
            rec.run = None;
            rec.attempts_made += 1;
            match outcome {
                Ok(v) => {
                    rec.state = TaskState::Completed;
                    rec.native = "completed";
                    rec.result = Some(v);
                    rec.error = None;
                    rec.finished_at = Some(now_ms());
                }
                Err(e) => {
                    rec.error = Some(e);
                    // An engine without retries never re-runs a failed task (n8n).
                    let retries = self
                        .engine
                        .flavor
                        .descriptor()
                        .capabilities
                        .has(Capability::Attempts);
                    let attempts = if retries {
                        rec.options.attempts.unwrap_or(1)
                    } else {
                        1
                    };
                    if rec.attempts_made < attempts {
                        let wait = rec
                            .options
                            .backoff
                            .map(|b| b.delay_after(rec.attempts_made))
                            .unwrap_or_default();
                        rec.state = TaskState::Delayed;
                        rec.native = "delayed";
                        rec.due = Some(Instant::now() + wait);
                        self.wake_at(Instant::now() + wait);
                    } else {
                        rec.state = TaskState::Failed;
                        rec.native = "failed";
                        rec.finished_at = Some(now_ms());
                    }
                }
            }
            self.engine.flavor.after_finish(&mut st, native);
        }
        self.pump();
    }

    /// Temporal's execution timeout: a run still open at `at` ends `TIMED_OUT`.
    fn time_out_at(&self, native: String, at: Instant) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            {
                let mut st = this.lock();
                let Some(rec) = st.tasks.get_mut(&native) else {
                    return;
                };
                if rec.state.is_finished() {
                    return;
                }
                rec.end(TaskState::TimedOut, "timed_out");
            }
            this.pump();
        });
    }

    fn wake_at(&self, at: Instant) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            this.pump();
        });
    }

    fn insert(&self, st: &mut State, req: &AdmittedRequest, native: String) -> Result<TaskId> {
        let o = req.options();
        let flavor = self.engine.flavor;
        let id = TaskId::new(&self.engine.name, &native)?;
        make_room(st, &self.engine.name)?;
        st.next_seq += 1;
        let seq = if flavor.lifo(o) {
            -st.next_seq
        } else {
            st.next_seq
        };
        let priority = if flavor.descriptor().capabilities.has(Capability::Priority) {
            o.priority.unwrap_or(0)
        } else {
            0
        };
        // As its engine, a fake ignores an option its descriptor does not declare (only a
        // request past admission carries one: the `raw_*` conformance cases).
        let delay = o
            .delay
            .filter(|d| *d > 0 && flavor.descriptor().capabilities.has(Capability::Delay));
        let delayed = delay.is_some();
        let due = delay.map(|d| Instant::now() + std::time::Duration::from_millis(d));
        let (state, native_state) = if delayed {
            (TaskState::Delayed, "delayed")
        } else {
            (TaskState::Pending, flavor.waiting_word(priority > 0))
        };
        let key = flavor.key_of(req);
        st.tasks.insert(
            native,
            Record {
                id: id.clone(),
                key,
                name: req.name().to_string(),
                payload: req.payload().clone(),
                options: o.clone(),
                state,
                native: native_state,
                attempts_made: 0,
                progress: None,
                result: None,
                error: None,
                created_at: req.created_at(),
                started_at: None,
                finished_at: None,
                due,
                order: (u8::from(priority > 0), priority, seq),
                run: None,
                generation: 0,
                tracking_task_id: req.tracking_task_id().cloned(),
            },
        );
        if st.log.len() >= st.max_tasks {
            st.log.pop_front();
        }
        st.log.push_back(ScheduledTask {
            task_id: id.clone(),
            name: req.name().to_string(),
            payload: req.payload().clone(),
            options: o.clone(),
        });
        if let Some(due) = due.filter(|_| delayed) {
            self.wake_at(due);
        }
        if let Some(ms) = flavor.execution_timeout_ms(o) {
            self.time_out_at(
                id.native().to_string(),
                Instant::now() + std::time::Duration::from_millis(ms),
            );
        }
        Ok(id)
    }

    fn schedule_locked(&self, st: &mut State, req: &AdmittedRequest) -> Result<TaskId> {
        match self.engine.flavor.place(st, req)? {
            Placement::Existing(id) => Ok(id),
            Placement::New(native) => {
                // A re-added job: the end of the one removed before is not its end.
                st.ends.by_native.remove(&native);
                self.insert(st, req, native)
            }
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        &self.engine.name
    }

    fn descriptor(&self) -> &Descriptor {
        self.engine.flavor.descriptor()
    }

    fn limits(&self) -> Limits {
        Limits::max_payload(self.max_payload())
    }

    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId> {
        self.injected_fault()?;
        let id = {
            let mut st = self.lock();
            self.schedule_locked(&mut st, &request)?
        };
        self.pump();
        Ok(id)
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        self.injected_fault()?;
        self.engine.flavor.check_id(id)?;
        let st = self.lock();
        let rec = st
            .tasks
            .get(id.native())
            .filter(|r| r.id == *id)
            .ok_or_else(|| Error::not_found(id))?;
        Ok(status_of(self.engine.flavor, rec))
    }

    /// Polls [`Backend::status`]; a task removed as it finished reads as it ended (the
    /// bullmq backend finds that end in the queue's event stream).
    async fn wait(&self, id: &TaskId, timeout: std::time::Duration) -> Result<WaitOutcome> {
        match orchestrator_core::raw::wait::poll(self, id, timeout).await {
            Err(Error::NotFound { .. }) => self
                .lock()
                .ends
                .by_native
                .get(id.native())
                .filter(|(_, s)| s.task_id == *id)
                .map(|(_, s)| WaitOutcome::of(s.clone()))
                .ok_or_else(|| Error::not_found(id)),
            outcome => outcome,
        }
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        self.injected_fault()?;
        self.engine.flavor.check_id(id)?;
        let mut st = self.lock();
        let Some(rec) = st.tasks.get_mut(id.native()).filter(|r| r.id == *id) else {
            return Ok(CancelOutcome::NotFound);
        };
        let flavor = self.engine.flavor;
        let running_cancellable = flavor
            .descriptor()
            .capabilities
            .has(Capability::CancelRunning);
        let outcome = match rec.state {
            s if s.is_finished() => CancelOutcome::NotCancellableFinished,
            TaskState::Running if !running_cancellable => CancelOutcome::NotCancellableRunning,
            _ => {
                rec.end(TaskState::Cancelled, flavor.cancelled_word());
                CancelOutcome::Cancelled
            }
        };
        Ok(outcome)
    }

    /// Newest first by `createdAt`, ties by task id: the order the orchestrator merges in.
    /// Reads every kept task (at most [`DEFAULT_MAX_TASKS`] by default).
    async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        self.injected_fault()?;
        self.declares(Capability::List, "list")?;
        let after = resume
            .map(|t| parse_token(&self.engine.name, t))
            .transpose()?;
        let mut tasks = self.matching(filter);
        tasks.retain(|s| {
            after.as_ref().is_none_or(|(at, native)| {
                let key = (
                    std::cmp::Reverse(s.created_at.unwrap_or(0)),
                    s.task_id.native(),
                );
                key > (std::cmp::Reverse(*at), native.as_str())
            })
        });
        tasks.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.task_id.cmp(&b.task_id))
        });
        let exhausted = tasks.len() <= limit;
        tasks.truncate(limit);
        Ok(BackendPage {
            tasks: tasks
                .into_iter()
                .map(|status| Listed {
                    resume: token(&status),
                    status,
                })
                .collect(),
            exhausted,
            end: None,
        })
    }

    async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        self.injected_fault()?;
        self.declares(Capability::Counts, "counts")?;
        let descriptor = self.engine.flavor.descriptor();
        let mut counts: Vec<(TaskState, u64)> = Vec::new();
        for s in self.matching(filter) {
            // Like its engine, a fake counts the states it cannot tell apart as one.
            let counted = descriptor.counted_as(s.state);
            match counts.iter_mut().find(|(state, _)| *state == counted) {
                Some((_, n)) => *n += 1,
                None => counts.push((counted, 1)),
            }
        }
        Ok(counts)
    }

    async fn health(&self) -> Result<Health> {
        self.injected_fault()?;
        Ok(Health {
            backend: self.engine.name.clone(),
            ok: true,
            detail: "in-memory".into(),
            warnings: Vec::new(),
        })
    }
}

/// The factory of a memory kind: `MemoryBackend::$ctor()` named after the instance, with
/// its configuration applied.
macro_rules! memory_factory {
    ($factory:ident, $ctor:ident, $descriptor:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $factory;

        impl orchestrator_core::raw::BackendFactory for $factory {
            const DESCRIPTOR: orchestrator_core::Descriptor = $descriptor;
            type Config = super::MemoryConfig;

            fn default_config() -> Option<super::MemoryConfig> {
                Some(super::MemoryConfig::default())
            }

            fn build(
                instance: &str,
                config: super::MemoryConfig,
            ) -> orchestrator_core::Result<orchestrator_core::raw::SharedBackend> {
                let b = super::MemoryBackend::$ctor().named(instance);
                config.apply(&b);
                Ok(std::sync::Arc::new(b))
            }
        }

        orchestrator_core::register_backend!($factory);
    };
}
use memory_factory;

impl MemoryConfig {
    fn apply(&self, b: &MemoryBackend) {
        if let Some(n) = self.concurrency {
            b.set_concurrency(n);
        }
        if let Some(n) = self.max_payload_bytes {
            b.set_max_payload_bytes(n);
        }
        if let Some(n) = self.max_tasks {
            b.set_max_tasks(n);
        }
    }
}

/// Register the three in-memory kinds on `registry` (for builds without `inventory`).
pub fn register(registry: &mut orchestrator_core::Registry) {
    registry
        .register_factory::<MemoryBullmqFactory>()
        .register_factory::<MemoryTemporalFactory>()
        .register_factory::<MemoryN8nFactory>();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use orchestrator_core::{ScheduleRequest, TaskOptions};
    use serde_json::json;

    use super::*;
    use crate::conformance::wait_finished;

    fn req() -> ScheduleRequest {
        ScheduleRequest::new("q", json!({}), TaskOptions::simple()).expect("valid")
    }

    #[tokio::test]
    async fn the_task_cap_forgets_finished_tasks_first_and_refuses_when_none_finished() {
        let mem = MemoryBackend::bullmq();
        let b = mem.shared();
        mem.set_max_tasks(10);
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(b.schedule(req()).await.expect("room"));
        }
        // No handler: all ten wait, and nothing can be forgotten.
        let e = b.schedule(req()).await.expect_err("full");
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert!(e.is_retryable());
        mem.handle("q", |_| async { Ok(json!(1)) });
        for id in &ids {
            wait_finished(&b, id, Duration::from_secs(5)).await;
        }
        for _ in 0..25 {
            let id = b.schedule(req()).await.expect("room once tasks finished");
            wait_finished(&b, &id, Duration::from_secs(5)).await;
            assert!(mem.lock().tasks.len() <= 10);
        }
        // The oldest finished went first; the log is capped too.
        let e = b.status(&ids[0]).await.expect_err("forgotten");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(mem.scheduled().len(), 10);
    }
}
