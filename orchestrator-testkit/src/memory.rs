//! In-memory backends that really run tasks, following each engine's rules.
//!
//! Each declares exactly its engine's [`engines`] capability set (see the README table), so
//! the orchestrator refuses the same options it refuses for the real engine.
//!
//! | rule                          | `memory-bullmq` (SIMPLE) | `memory-temporal` (COMPLEX) | `memory-n8n` (INTEGRATION) |
//! |-------------------------------|--------------------------|-----------------------------|----------------------------|
//! | source                        | `BULLMQ`                 | `TEMPORAL`                  | `N8N`                      |
//! | handler key                   | task name (queue)        | `temporal.workflowType`     | `n8n.workflowId`, else `n8n.webhookUrl` |
//! | handler sees as its name      | `jobName`, else the queue | the task name              | the task name              |
//! | delay, priority, lifo         | yes (BullMQ's order: no priority first, then 1, 2, …) | refused | refused |
//! | attempts + backoff            | yes                      | yes                         | refused (a failed workflow never re-runs) |
//! | cancel waiting/delayed        | removes the job (status → NotFound) | → `CANCELLED`    | → `CANCELLED` (not declared) |
//! | cancel running                | refused (`NotCancellableRunning`) | aborted → `CANCELLED` | aborted → `CANCELLED` |
//! | duplicate id                  | custom `jobId`, `deduplication` (until finished or `ttl`) | `idConflictPolicy` | — |
//! | remove on complete/fail       | `true` removes the job; a count or an age trims the set | refused | refused |
//! | execution timeout             | refused                  | → `TIMED_OUT`               | refused                    |
//! | progress                      | yes                      | not reported                | not reported               |
//!
//! A task whose key has no handler stays `PENDING`, like a job on a queue no worker
//! serves. All timing uses `tokio::time`, so tests may run under `tokio::time::pause()`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use orchestrator_core::{
    Backend, BackendFactory, CancelOutcome, Capability, Descriptor, Error, ErrorKind, Health,
    IdConflictPolicy, RemovePolicy, Result, ScheduleRequest, SharedBackend, TaskId, TaskOptions,
    TaskState, TaskStatus, TaskType, async_trait, descriptor::engines, now_ms,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::handler::{Handler, TaskContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Simple,
    Complex,
    Integration,
}

impl Flavor {
    /// Refuse an id of a shape this engine never issues, as the real backends do: BullMQ
    /// `<queue>:<job id>` (not one of the queue's key names), Temporal
    /// `<workflow id>:<run id UUID>`, n8n a dispatch UUID.
    fn check_id(self, id: &TaskId) -> Result<()> {
        let native = id.native();
        let ok = match self {
            Flavor::Simple => native.split_once(':').is_some_and(|(q, j)| {
                !q.is_empty()
                    && !j.is_empty()
                    && !orchestrator_core::validate::BULLMQ_KEY_NAMES.contains(&j)
            }),
            Flavor::Complex => native
                .rsplit_once(':')
                .is_some_and(|(wf, run)| !wf.is_empty() && uuid::Uuid::parse_str(run).is_ok()),
            Flavor::Integration => uuid::Uuid::parse_str(native).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(orchestrator_core::TaskIdError::Malformed {
                id: id.to_string(),
                reason: match self {
                    Flavor::Simple => "a BullMQ task id is `<instance>:<queue>:<job id>`",
                    Flavor::Complex => "a Temporal task id is `<instance>:<workflow id>:<run id>`",
                    Flavor::Integration => "an n8n task id names a dispatch",
                }
                .into(),
            }
            .into())
        }
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
        return Err(Error::backend(
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
    descriptor: &'static Descriptor,
    flavor: Flavor,
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
            .field("kind", &self.engine.descriptor.kind)
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    fn with(
        name: &str,
        descriptor: &'static Descriptor,
        flavor: Flavor,
        concurrency: usize,
    ) -> Self {
        let state = State {
            concurrency: concurrency.max(1),
            max_tasks: DEFAULT_MAX_TASKS,
            ..State::default()
        };
        Self {
            engine: Arc::new(Engine {
                name: name.to_string(),
                descriptor,
                flavor,
                state: Mutex::new(state),
            }),
        }
    }

    /// SIMPLE tasks with BullMQ's rules, named `memory-bullmq`, source `BULLMQ`.
    pub fn bullmq() -> Self {
        Self::with(MEMORY_BULLMQ.kind, &MEMORY_BULLMQ, Flavor::Simple, 1)
    }

    /// COMPLEX tasks with Temporal's rules, named `memory-temporal`, source `TEMPORAL`.
    pub fn temporal() -> Self {
        Self::with(MEMORY_TEMPORAL.kind, &MEMORY_TEMPORAL, Flavor::Complex, 64)
    }

    /// INTEGRATION tasks with n8n's rules, named `memory-n8n`, source `N8N`.
    pub fn n8n() -> Self {
        Self::with(MEMORY_N8N.kind, &MEMORY_N8N, Flavor::Integration, 64)
    }

    /// A fresh backend of the same kind and concurrency called `name` (task ids start with
    /// it), for several instances of one kind. Tasks are not carried over.
    #[must_use]
    pub fn named(&self, name: &str) -> Self {
        let concurrency = self.lock().concurrency;
        Self::with(
            name,
            self.engine.descriptor,
            self.engine.flavor,
            concurrency,
        )
    }

    /// This backend as a shared trait object.
    pub fn shared(&self) -> SharedBackend {
        Arc::new(self.clone())
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
        self.lock().max_payload.unwrap_or(match self.engine.flavor {
            Flavor::Simple => orchestrator_core::validate::DEFAULT_MAX_PAYLOAD_SIMPLE,
            Flavor::Complex => orchestrator_core::validate::DEFAULT_MAX_PAYLOAD_COMPLEX,
            Flavor::Integration => orchestrator_core::validate::DEFAULT_MAX_PAYLOAD_INTEGRATION,
        })
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
                return Err(Error::backend(
                    &self.engine.name,
                    ErrorKind::Rejected,
                    format!("task {id} already finished as {}", rec.state),
                ));
            }
            if let Some(run) = rec.run.take() {
                run.abort();
            }
            rec.generation += 1;
            rec.attempts_made += 1;
            rec.finished_at = Some(now_ms());
            match outcome {
                Ok(v) => {
                    rec.state = TaskState::Completed;
                    rec.native = "completed";
                    rec.result = Some(v);
                }
                Err(e) => {
                    rec.state = TaskState::Failed;
                    rec.native = "failed";
                    rec.error = Some(e);
                }
            }
            let key = rec.id.native().to_string();
            self.apply_retention(&mut st, &key);
        }
        self.pump();
        Ok(())
    }

    fn injected_fault(&self) -> Result<()> {
        let mut st = self.lock();
        if let Some(first) = st.faults.first_mut() {
            let kind = first.1;
            first.0 -= 1;
            if first.0 == 0 {
                st.faults.remove(0);
            }
            return Err(Error::backend(
                &self.engine.name,
                kind,
                format!("injected {kind} fault"),
            ));
        }
        Ok(())
    }

    fn key_of(&self, req: &ScheduleRequest) -> String {
        let o = req.options();
        match self.engine.flavor {
            Flavor::Simple => req.name().to_string(),
            Flavor::Complex => o
                .temporal
                .as_ref()
                .map(|t| t.workflow_type.clone())
                .unwrap_or_default(),
            Flavor::Integration => o
                .n8n
                .as_ref()
                .and_then(|n| n.workflow_id.clone().or_else(|| n.webhook_url.clone()))
                .unwrap_or_default(),
        }
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
            let ctx = TaskContext::new(
                rec.id.clone(),
                // A BullMQ worker sees the job name, which defaults to the queue name.
                rec.options
                    .job_name
                    .clone()
                    .unwrap_or_else(|| rec.name.clone()),
                rec.payload.clone(),
                rec.options
                    .temporal
                    .as_ref()
                    .map(|t| t.workflow_args.clone())
                    .unwrap_or_default(),
                rec.attempts_made + 1,
                // Only engines that report progress get a sink (Temporal and n8n do not).
                self.engine
                    .descriptor
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
                    // n8n's `attempts` are delivery retries: a failed workflow never re-runs.
                    let attempts = match self.engine.flavor {
                        Flavor::Integration => 1,
                        _ => rec.options.attempts.unwrap_or(1),
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
            self.apply_retention(&mut st, native);
        }
        self.pump();
    }

    /// BullMQ's removeOnComplete/removeOnFail for the record `native` that just finished.
    fn apply_retention(&self, st: &mut State, native: &str) {
        if self.engine.flavor != Flavor::Simple {
            return;
        }
        let Some(rec) = st.tasks.get(native) else {
            return;
        };
        let policy = match rec.state {
            TaskState::Completed => rec.options.remove_on_complete,
            TaskState::Failed => rec.options.remove_on_fail,
            _ => None,
        };
        let (age, count) = match policy {
            None | Some(RemovePolicy::Remove(false)) => return,
            // `true` removes this job only; a count or an age trims the whole finished set.
            Some(RemovePolicy::Remove(true)) => {
                st.tasks.remove(native);
                return;
            }
            Some(RemovePolicy::KeepCount(n)) => (None, Some(n)),
            Some(RemovePolicy::Keep { age, count }) => (age, count),
        };
        let (queue, state) = (rec.key.clone(), rec.state);
        let now = now_ms();
        let mut finished: Vec<(u64, String)> = st
            .tasks
            .iter()
            .filter(|(_, r)| r.key == queue && r.state == state)
            .map(|(k, r)| (r.finished_at.unwrap_or(0), k.clone()))
            .collect();
        finished.sort_by(|a, b| b.cmp(a));
        for (i, (at, k)) in finished.into_iter().enumerate() {
            let too_many = count.is_some_and(|c| i as u64 >= c);
            let too_old = age.is_some_and(|a| at.saturating_add(a * 1000) < now);
            if too_many || too_old {
                st.tasks.remove(&k);
            }
        }
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
                if let Some(run) = rec.run.take() {
                    run.abort();
                }
                rec.generation += 1;
                rec.state = TaskState::TimedOut;
                rec.native = "timed_out";
                rec.finished_at = Some(now_ms());
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

    fn insert(
        &self,
        st: &mut State,
        req: &ScheduleRequest,
        native: String,
        key: String,
    ) -> Result<TaskId> {
        let o = req.options();
        let id = TaskId::new(&self.engine.name, &native)?;
        make_room(st, &self.engine.name)?;
        st.next_seq += 1;
        let seq = if o.lifo == Some(true) {
            -st.next_seq
        } else {
            st.next_seq
        };
        let priority = if self.engine.flavor == Flavor::Simple {
            o.priority.unwrap_or(0)
        } else {
            0
        };
        let delayed = o.delay.is_some_and(|d| d > 0);
        let due = o
            .delay
            .map(|d| Instant::now() + std::time::Duration::from_millis(d));
        let (state, native_state) = match (delayed, self.engine.flavor, priority > 0) {
            (true, _, _) => (TaskState::Delayed, "delayed"),
            (false, Flavor::Simple, true) => (TaskState::Pending, "prioritized"),
            (false, Flavor::Simple, false) => (TaskState::Pending, "waiting"),
            (false, Flavor::Complex, _) => (TaskState::Pending, "scheduled"),
            (false, Flavor::Integration, _) => (TaskState::Pending, "queued"),
        };
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
        if let Some(ms) = o.temporal.as_ref().and_then(|t| t.execution_timeout_ms) {
            self.time_out_at(
                id.native().to_string(),
                Instant::now() + std::time::Duration::from_millis(ms),
            );
        }
        Ok(id)
    }

    fn schedule_locked(&self, st: &mut State, req: &ScheduleRequest) -> Result<TaskId> {
        let key = self.key_of(req);
        let o = req.options();
        match self.engine.flavor {
            Flavor::Simple => {
                let queue = req.name();
                if let Some(job_id) = &o.job_id {
                    let native = format!("{queue}:{job_id}");
                    // BullMQ ignores an add whose id exists; a job our cancel removed is gone.
                    if let Some(existing) = st
                        .tasks
                        .get(&native)
                        .filter(|r| r.state != TaskState::Cancelled)
                    {
                        return Ok(existing.id.clone());
                    }
                    return self.insert(st, req, native, key);
                }
                if let Some(d) = &o.deduplication {
                    // BullMQ keeps the id reserved until the job finishes, or for `ttl` ms.
                    let now = now_ms();
                    if let Some(existing) = st.tasks.values().find(|r| {
                        r.key == queue
                            && !r.state.is_finished()
                            && r.options.deduplication.as_ref().is_some_and(|x| {
                                x.id == d.id
                                    && x.ttl
                                        .is_none_or(|ttl| r.created_at.saturating_add(ttl) > now)
                            })
                    }) {
                        return Ok(existing.id.clone());
                    }
                }
                let counter = st.counters.entry(queue.to_string()).or_default();
                *counter += 1;
                let native = format!("{queue}:{counter}");
                self.insert(st, req, native, key)
            }
            Flavor::Complex => {
                let t = o.temporal.as_ref().ok_or_else(|| {
                    Error::invalid("temporal", "COMPLEX tasks need `temporal` options")
                })?;
                let workflow_id = t
                    .workflow_id
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}", req.name(), uuid::Uuid::new_v4()));
                // As on Temporal, an id names one run chain (`<workflow id>:<run id>`): a
                // later start with the same workflow id is another task.
                let running = st.tasks.values_mut().find(|r| {
                    !r.state.is_finished()
                        && r.id.native().rsplit_once(':').map(|(wf, _)| wf) == Some(&*workflow_id)
                });
                if let Some(existing) = running {
                    match t.id_conflict_policy {
                        IdConflictPolicy::Fail => {
                            return Err(Error::AlreadyExists {
                                task_id: existing.id.to_string(),
                            });
                        }
                        IdConflictPolicy::UseExisting => return Ok(existing.id.clone()),
                        IdConflictPolicy::TerminateExisting => {
                            if let Some(run) = existing.run.take() {
                                run.abort();
                            }
                            existing.generation += 1;
                            existing.state = TaskState::Terminated;
                            existing.native = "terminated";
                            existing.finished_at = Some(now_ms());
                        }
                    }
                }
                let native = format!("{workflow_id}:{}", uuid::Uuid::new_v4());
                self.insert(st, req, native, key)
            }
            Flavor::Integration => {
                let native = uuid::Uuid::new_v4().to_string();
                self.insert(st, req, native, key)
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
        self.engine.descriptor
    }

    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId> {
        self.descriptor().admit(self.name(), &request)?;
        orchestrator_core::validate::payload_size(request.payload(), self.max_payload())?;
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
        let (state, native) = match rec.state {
            // A delayed task whose time has come is waiting for a worker, as in BullMQ
            // before a worker promotes it.
            TaskState::Delayed if rec.due.is_some_and(|d| d <= Instant::now()) => {
                (TaskState::Pending, "waiting")
            }
            s => (s, rec.native),
        };
        let mut s = TaskStatus::new(id.clone(), self.source(), state, native);
        s.attempts_made = rec.attempts_made;
        s.progress = rec.progress.clone();
        s.result = rec.result.clone();
        s.error = rec.error.clone();
        s.created_at = Some(rec.created_at);
        s.started_at = rec.started_at;
        s.finished_at = rec.finished_at;
        s.tracking_task_id.clone_from(&rec.tracking_task_id);
        Ok(s)
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        self.injected_fault()?;
        self.engine.flavor.check_id(id)?;
        let mut st = self.lock();
        let Some(rec) = st.tasks.get_mut(id.native()).filter(|r| r.id == *id) else {
            return Ok(CancelOutcome::NotFound);
        };
        let outcome = match rec.state {
            s if s.is_finished() => CancelOutcome::NotCancellableFinished,
            TaskState::Running if self.engine.flavor == Flavor::Simple => {
                CancelOutcome::NotCancellableRunning
            }
            _ if self.engine.flavor == Flavor::Simple => {
                // As the bullmq backend: the job is removed and the cancel remembered.
                rec.state = TaskState::Cancelled;
                rec.native = "removed";
                rec.finished_at = Some(now_ms());
                CancelOutcome::Cancelled
            }
            _ => {
                if let Some(run) = rec.run.take() {
                    run.abort();
                }
                rec.generation += 1;
                rec.state = TaskState::Cancelled;
                rec.native = "canceled";
                rec.finished_at = Some(now_ms());
                CancelOutcome::Cancelled
            }
        };
        Ok(outcome)
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

/// Descriptor of `memory-bullmq`: BullMQ's capabilities and input rules.
pub const MEMORY_BULLMQ: Descriptor = Descriptor {
    kind: "memory-bullmq",
    source: "BULLMQ",
    task_types: &[TaskType::Simple],
    capabilities: engines::BULLMQ,
    summary: "in-memory SIMPLE tasks with BullMQ's rules (tests, local runs)",
    input_rules: orchestrator_core::validate::bullmq_rules,
};

/// Descriptor of `memory-temporal`: Temporal's capabilities.
pub const MEMORY_TEMPORAL: Descriptor = Descriptor {
    kind: "memory-temporal",
    source: "TEMPORAL",
    task_types: &[TaskType::Complex],
    capabilities: engines::TEMPORAL,
    summary: "in-memory COMPLEX workflows with Temporal's rules (tests, local runs)",
    input_rules: orchestrator_core::validate::temporal_rules,
};

/// Descriptor of `memory-n8n`: n8n's capabilities.
pub const MEMORY_N8N: Descriptor = Descriptor {
    kind: "memory-n8n",
    source: "N8N",
    task_types: &[TaskType::Integration],
    capabilities: engines::N8N,
    summary: "in-memory INTEGRATION tasks with n8n's rules (tests, local runs)",
    input_rules: orchestrator_core::validate::n8n_rules,
};

macro_rules! memory_factory {
    ($factory:ident, $ctor:ident, $descriptor:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $factory;

        impl BackendFactory for $factory {
            const DESCRIPTOR: Descriptor = $descriptor;
            type Config = MemoryConfig;

            fn default_config() -> Option<MemoryConfig> {
                Some(MemoryConfig::default())
            }

            fn build(instance: &str, config: MemoryConfig) -> Result<SharedBackend> {
                let b = MemoryBackend::$ctor().named(instance);
                if let Some(n) = config.concurrency {
                    b.set_concurrency(n);
                }
                if let Some(n) = config.max_payload_bytes {
                    b.set_max_payload_bytes(n);
                }
                if let Some(n) = config.max_tasks {
                    b.set_max_tasks(n);
                }
                Ok(b.shared())
            }
        }

        orchestrator_core::register_backend!($factory);
    };
}

memory_factory!(
    MemoryBullmqFactory,
    bullmq,
    MEMORY_BULLMQ,
    "The `memory-bullmq` kind."
);
memory_factory!(
    MemoryTemporalFactory,
    temporal,
    MEMORY_TEMPORAL,
    "The `memory-temporal` kind."
);
memory_factory!(MemoryN8nFactory, n8n, MEMORY_N8N, "The `memory-n8n` kind.");

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

    use orchestrator_core::{Backend, ScheduleRequest, TaskOptions};
    use serde_json::json;

    use super::*;
    use crate::conformance::wait_finished;

    fn req() -> ScheduleRequest {
        ScheduleRequest::new("q", json!({}), TaskOptions::simple()).expect("valid")
    }

    #[tokio::test]
    async fn the_task_cap_forgets_finished_tasks_first_and_refuses_when_none_finished() {
        let b = MemoryBackend::bullmq();
        b.set_max_tasks(10);
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(b.schedule(req()).await.expect("room"));
        }
        // No handler: all ten wait, and nothing can be forgotten.
        let e = b.schedule(req()).await.expect_err("full");
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert!(e.is_retryable());
        b.handle("q", |_| async { Ok(json!(1)) });
        for id in &ids {
            wait_finished(&b, id, Duration::from_secs(5)).await;
        }
        for _ in 0..25 {
            let id = b.schedule(req()).await.expect("room once tasks finished");
            wait_finished(&b, &id, Duration::from_secs(5)).await;
            assert!(b.lock().tasks.len() <= 10);
        }
        // The oldest finished went first; the log is capped too.
        let e = b.status(&ids[0]).await.expect_err("forgotten");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(b.scheduled().len(), 10);
    }
}
