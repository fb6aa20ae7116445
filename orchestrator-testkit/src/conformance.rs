//! The conformance suite every backend passes, its fakes included.
//!
//! The suite is a table over the backend's [`Descriptor`]: for every [`Capability`] the
//! backend declares, a case shows it *observably* takes effect (the task sits delayed, run
//! order follows priority, `attempts_made` counts retries, the given id is the engine's id,
//! the task is gone after `removeOnComplete`…); for every option it does not declare, a
//! case shows the orchestrator refuses it with [`Error::UnsupportedOption`] naming the
//! option and the backend. Generic cases (round trips, unknown ids, invalid input, 1,000
//! concurrent schedules) run everywhere. A real backend and its fake declare the same
//! capabilities, so the same request gets the same answer from both.
//!
//! [`Suite::run`] is a `libtest-mimic` main (`harness = false`): every case is a trial
//! named `honours_<capability>`, `refuses_<capability>` or after the generic case; a case
//! that cannot run is listed as *ignored* with its reason as the trial's kind
//! (`[skip: …]`), so the output shows what ran and what did not. The harness is built once
//! per binary (one engine shared by every case); every case uses fresh task names.
//!
//! Not a semver-stable API: cases get added.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use orchestrator_core::{
    Backend, Backoff, CancelOutcome, Capability, Descriptor, Error, ErrorKind, IdConflictPolicy,
    N8nOptions, Orchestrator, RemovePolicy, Result, ScheduleRequest, SharedBackend, TaskId,
    TaskOptions, TaskState, TaskStatus, TaskType, TemporalOptions, async_trait,
};
use serde_json::{Value, json};

#[cfg(feature = "harness")]
pub use libtest_mimic;

use crate::handler::Handler;
use crate::memory::MemoryBackend;

/// A running worker (or registered handler); stops when dropped or on [`Worker::stop`].
#[async_trait]
pub trait Worker: Send {
    /// Stop taking tasks; let running ones finish.
    async fn stop(self: Box<Self>);
}

/// What the suite needs from a backend under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    fn backend(&self) -> SharedBackend;

    /// Options that make a task named `name` land on this backend, handled by the worker
    /// [`Harness::serve`] starts for `name`.
    fn options(&self, name: &str) -> TaskOptions {
        match self.task_type() {
            TaskType::Simple => TaskOptions::simple(),
            TaskType::Complex => TaskOptions::complex(TemporalOptions::new(name, name)),
            TaskType::Integration => TaskOptions::integration(N8nOptions::workflow(name)),
        }
    }

    /// The task type this backend runs.
    fn task_type(&self) -> TaskType;

    /// Start processing tasks named `name` with `handler`.
    async fn serve(&self, name: &str, handler: Handler) -> Result<Box<dyn Worker>>;

    /// A well-formed id of this backend that names no task.
    fn unknown_id(&self, name: &str) -> TaskId {
        let backend = self.backend();
        TaskId::new(backend.name(), &format!("{name}:does-not-exist"))
            .unwrap_or_else(|e| panic!("backend name {} is not valid: {e}", backend.name()))
    }

    /// How long a task may take to start once a worker is free (engines poll).
    fn pickup_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// A [`Harness`] over one [`MemoryBackend`].
#[derive(Debug, Clone)]
pub struct MemoryHarness {
    backend: MemoryBackend,
    task_type: TaskType,
}

impl MemoryHarness {
    /// Test `memory-bullmq`.
    pub fn bullmq() -> Self {
        Self {
            backend: MemoryBackend::bullmq(),
            task_type: TaskType::Simple,
        }
    }

    /// Test `memory-temporal`.
    pub fn temporal() -> Self {
        Self {
            backend: MemoryBackend::temporal(),
            task_type: TaskType::Complex,
        }
    }

    /// Test `memory-n8n`.
    pub fn n8n() -> Self {
        Self {
            backend: MemoryBackend::n8n(),
            task_type: TaskType::Integration,
        }
    }
}

struct MemoryWorker {
    backend: MemoryBackend,
    key: String,
}

#[async_trait]
impl Worker for MemoryWorker {
    async fn stop(self: Box<Self>) {
        self.backend.remove_handler(&self.key);
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn backend(&self) -> SharedBackend {
        self.backend.shared()
    }

    fn task_type(&self) -> TaskType {
        self.task_type
    }

    fn unknown_id(&self, name: &str) -> TaskId {
        // Shaped as the fake's engine shapes its ids (see `malformed_id_invalid`).
        let zero = uuid::Uuid::nil();
        let native = match self.task_type {
            TaskType::Simple => format!("{name}:does-not-exist"),
            TaskType::Complex => format!("{name}:{zero}"),
            TaskType::Integration => zero.to_string(),
        };
        TaskId::new(self.backend.name(), &native).expect("a valid id")
    }

    async fn serve(&self, name: &str, handler: Handler) -> Result<Box<dyn Worker>> {
        self.backend.set_handler(name, handler);
        Ok(Box::new(MemoryWorker {
            backend: self.backend.clone(),
            key: name.to_string(),
        }))
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "conf-{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn schedule(h: &dyn Harness, name: &str, payload: Value, options: TaskOptions) -> TaskId {
    let req = ScheduleRequest::new(name, payload, options).expect("valid request");
    h.backend().schedule(req).await.expect("schedule")
}

/// An orchestrator holding only the harness's backend, routed for its task type.
fn orchestrator_for(h: &dyn Harness) -> Orchestrator {
    let b = h.backend();
    Orchestrator::builder()
        .backend(b.clone())
        .route(h.task_type(), b.name())
        .build()
        .expect("orchestrator")
}

/// Poll until `id` is finished, or panic after `timeout`.
pub async fn wait_finished(b: &dyn Backend, id: &TaskId, timeout: Duration) -> TaskStatus {
    wait_until(b, id, timeout, |s| s.state.is_finished()).await
}

/// Poll until `id`'s status satisfies `done`, or panic after `timeout`.
pub async fn wait_until(
    b: &dyn Backend,
    id: &TaskId,
    timeout: Duration,
    done: impl Fn(&TaskStatus) -> bool,
) -> TaskStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = b.status(id).await.expect("status");
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} did not reach the expected state within {timeout:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until `id` is gone (`NotFound`), or panic after `timeout`.
async fn wait_gone(b: &dyn Backend, id: &TaskId, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match b.status(id).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} still there after {timeout:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Log = Arc<Mutex<Vec<Value>>>;

/// A handler that logs `pick(ctx)` for every attempt, then answers `outcome`.
fn logging(
    log: &Log,
    pick: fn(&crate::TaskContext) -> Value,
    outcome: crate::HandlerResult,
) -> Handler {
    let log = log.clone();
    Handler::new(move |ctx| {
        let log = log.clone();
        let outcome = outcome.clone();
        let picked = pick(&ctx);
        async move {
            log.lock().expect("log").push(picked);
            outcome
        }
    })
}

/// A handler that logs each payload and completes with `result`.
fn recording(log: &Log, result: Value) -> Handler {
    logging(log, |ctx| ctx.payload.clone(), Ok(result))
}

/// A handler that signals each start on the returned channel, then waits for `release`.
fn gated(release: Arc<tokio::sync::Notify>) -> (Handler, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let (started_tx, started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let handler = Handler::new(move |_| {
        let started = started_tx.clone();
        let gate = release.clone();
        async move {
            let _ = started.send(());
            gate.notified().await;
            Ok(json!("released"))
        }
    });
    (handler, started_rx)
}

// ---------------------------------------------------------------------------------------
// Generic cases.

/// Schedule → status → completion: the result, source and attempt count come back.
pub async fn schedule_status_complete(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("complete");
    let _w = h
        .serve(
            &name,
            Handler::new(|ctx| async move { Ok(json!({"echo": ctx.payload})) }),
        )
        .await
        .expect("serve");
    let id = schedule(h, &name, json!({"n": 1}), h.options(&name)).await;
    assert_eq!(id.backend(), b.name());
    let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.source, b.source());
    assert_eq!(s.task_id, id);
    assert_eq!(s.result, Some(json!({"echo": {"n": 1}})));
    assert!(s.finished_at.is_some());
}

/// `wait` ends with the task: completed with its result, failed with its error.
pub async fn wait_returns_the_outcome(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("wait");
    let _w = h
        .serve(
            &name,
            Handler::new(|ctx| async move {
                if ctx.payload["ok"] == json!(true) {
                    Ok(json!({"done": 1}))
                } else {
                    Err("boom".to_string())
                }
            }),
        )
        .await
        .expect("serve");
    let ok = schedule(h, &name, json!({"ok": true}), h.options(&name)).await;
    let bad = schedule(h, &name, json!({"ok": false}), h.options(&name)).await;
    let out = b.wait(&ok, h.pickup_timeout()).await.expect("wait");
    assert!(out.is_finished(), "{out:?}");
    assert_eq!(out.status().state, TaskState::Completed, "{out:?}");
    assert_eq!(out.status().result, Some(json!({"done": 1})), "{out:?}");
    let out = b.wait(&bad, h.pickup_timeout()).await.expect("wait");
    assert!(out.is_finished(), "{out:?}");
    assert_eq!(out.status().state, TaskState::Failed, "{out:?}");
    assert!(
        out.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("boom")),
        "{out:?}"
    );
    // Through the orchestrator too.
    let out = orchestrator_for(h)
        .wait(&ok, Duration::from_secs(1))
        .await
        .expect("wait");
    assert_eq!(out.status().state, TaskState::Completed, "{out:?}");
}

/// A wait whose deadline comes first is `StillRunning` (not an error, not `TIMED_OUT`) and
/// lasts its timeout; a cancel ends a wait in progress as `CANCELLED`; a wait longer than
/// the maximum is refused.
pub async fn wait_deadline_and_cancel(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("waitd");
    // Where a running task can be cancelled it runs (gated); elsewhere it stays pending.
    let release = Arc::new(tokio::sync::Notify::new());
    let running = b.capabilities().has(Capability::CancelRunning);
    let (handler, mut started) = gated(release.clone());
    let _w = if running {
        Some(h.serve(&name, handler).await.expect("serve"))
    } else {
        None
    };
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    if running {
        tokio::time::timeout(h.pickup_timeout(), started.recv())
            .await
            .expect("task started")
            .expect("channel open");
    }
    let t = tokio::time::Instant::now();
    let out = b.wait(&id, Duration::from_millis(300)).await.expect("wait");
    let took = t.elapsed();
    assert!(!out.is_finished(), "{out:?}");
    assert!(!out.status().state.is_finished(), "{out:?}");
    assert!(
        took >= Duration::from_millis(300),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned after {took:?}");

    let waiter = {
        let b = b.clone();
        let id = id.clone();
        tokio::spawn(async move { b.wait(&id, Duration::from_secs(60)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b.cancel(&id).await.expect("cancel").is_cancelled());
    let out = tokio::time::timeout(h.pickup_timeout(), waiter)
        .await
        .expect("the wait ended with the cancel")
        .expect("join")
        .expect("wait");
    assert!(out.is_finished(), "{out:?}");
    assert_eq!(out.status().state, TaskState::Cancelled, "{out:?}");
    release.notify_waiters();

    let e = b
        .wait(
            &id,
            orchestrator_core::wait::MAX_WAIT + Duration::from_secs(1),
        )
        .await
        .expect_err("too long");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// Cancelling a finished task is refused as finished, and the task stays completed.
pub async fn cancel_finished(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("cancelf");
    let _w = h
        .serve(&name, Handler::new(|_| async { Ok(json!(true)) }))
        .await
        .expect("serve");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );
    let s = b.status(&id).await.expect("status");
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
}

/// A task id survives `to_string` → `parse` and still finds its task.
pub async fn task_id_round_trip(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("roundtrip");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    let text = id.to_string();
    let parsed: TaskId = text.parse().expect("parse");
    assert_eq!(parsed, id);
    let json = serde_json::to_value(&id).expect("ser");
    assert_eq!(serde_json::from_value::<TaskId>(json).expect("de"), id);
    let s = b.status(&parsed).await.expect("status");
    assert_eq!(s.task_id, id);
    assert_eq!(s.source, b.source());
    let _ = b.cancel(&id).await;
}

/// An id that names nothing is NotFound for status and cancel, never pending.
pub async fn unknown_id_not_found(h: &dyn Harness) {
    let b = h.backend();
    let id = h.unknown_id(&unique("unknown"));
    let e = b.status(&id).await.expect_err("unknown id has no status");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::NotFound
    );
}

/// An id this backend could never have issued (no queue/run/signature part) is
/// `InvalidTaskId` for status and cancel, on the engine and on its fake alike.
pub async fn malformed_id_invalid(h: &dyn Harness) {
    let b = h.backend();
    let id = TaskId::new(b.name(), "nonsense").expect("well-formed outer id");
    let e = b.status(&id).await.expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{e}");
    let e = b.cancel(&id).await.expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{e}");
}

/// Invalid input is a typed InvalidInput error from the orchestrator and from the backend's
/// own request constructor, before any I/O.
pub async fn invalid_input_rejected(h: &dyn Harness) {
    let orch = orchestrator_for(h);
    let ty = h.task_type();
    let name = unique("invalid");
    let bad: Vec<(&str, String, TaskOptions)> = vec![
        ("attempts 0", name.clone(), h.options(&name).attempts(0)),
        ("empty name", String::new(), h.options(&name)),
        ("control char", format!("{name}\n"), h.options(&name)),
        (
            "delay",
            name.clone(),
            h.options(&name).delay(Duration::from_secs(u64::MAX / 2000)),
        ),
    ];
    for (case, n, o) in bad {
        let e = orch
            .schedule_task(&n, json!({}), o.clone().task_type(ty))
            .await
            .expect_err(case);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{case}: {e}");
        let e = ScheduleRequest::new(n, json!({}), o.task_type(ty)).expect_err(case);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{case}: {e}");
    }
}

/// 1,000 concurrent schedules all succeed with distinct ids, and each id has a status.
pub async fn concurrent_unique_ids(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("many");
    let opts = h.options(&name);
    let futures = (0..1000).map(|i| {
        let b = b.clone();
        let req =
            ScheduleRequest::new(name.as_str(), json!({"i": i}), opts.clone()).expect("valid");
        async move { b.schedule(req).await }
    });
    let ids: Vec<TaskId> = futures::future::join_all(futures)
        .await
        .into_iter()
        .collect::<Result<_>>()
        .expect("all scheduled");
    let distinct: HashSet<&TaskId> = ids.iter().collect();
    assert_eq!(distinct.len(), 1000);
    use futures::StreamExt;
    let statuses: Vec<Result<TaskStatus>> = futures::stream::iter(ids.clone())
        .map(|id| {
            let b = b.clone();
            async move { b.status(&id).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for s in statuses {
        let s = s.expect("every scheduled task has a status");
        assert!(distinct.contains(&s.task_id), "{s:?}");
    }
    for id in &ids {
        let _ = b.cancel(id).await;
    }
}

// ---------------------------------------------------------------------------------------
// One case per capability: honoured (observable effect) or refused.

/// A delayed task is reported `DELAYED` and does not start before its 1.5 s delay: nothing
/// runs in the first second, and it completes no earlier than 1.4 s after scheduling.
pub async fn honours_delay(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("delay");
    let log: Log = Arc::default();
    let _w = h
        .serve(&name, recording(&log, json!(1)))
        .await
        .expect("serve");
    let started = tokio::time::Instant::now();
    let id = schedule(
        h,
        &name,
        json!({}),
        h.options(&name).delay(Duration::from_millis(1500)),
    )
    .await;
    let s = b.status(&id).await.expect("status");
    assert_eq!(s.state, TaskState::Delayed, "{s:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        log.lock().expect("log").is_empty(),
        "delayed task ran early"
    );
    let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Completed);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(log.lock().expect("log").len(), 1);
}

/// Waiting tasks start in priority order (1 before 2 before 3).
pub async fn honours_priority(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("prio");
    let mut ids = Vec::new();
    for p in [5u32, 1, 3, 2, 4] {
        ids.push(schedule(h, &name, json!(p), h.options(&name).priority(p)).await);
    }
    let log: Log = Arc::default();
    let _w = h
        .serve(&name, recording(&log, json!(null)))
        .await
        .expect("serve");
    for id in &ids {
        wait_finished(&*b, id, h.pickup_timeout()).await;
    }
    assert_eq!(
        *log.lock().expect("log"),
        vec![json!(1), json!(2), json!(3), json!(4), json!(5)]
    );
}

fn attempt_handler(calls: Arc<Mutex<Vec<(String, u32, tokio::time::Instant)>>>) -> Handler {
    Handler::new(move |ctx| {
        let calls = calls.clone();
        async move {
            calls.lock().expect("calls").push((
                ctx.task_id.to_string(),
                ctx.attempt,
                tokio::time::Instant::now(),
            ));
            let succeed_at = ctx.payload["succeedAt"].as_u64().unwrap_or(u64::MAX);
            if u64::from(ctx.attempt) >= succeed_at {
                Ok(json!("ok"))
            } else {
                Err(format!("boom {}", ctx.attempt))
            }
        }
    })
}

/// A failing task runs exactly `attempts` times, then fails with the last message; one that
/// fails twice then succeeds completes after 3 attempts. `attempts_made` counts them.
pub async fn honours_attempts(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("retry");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let _w = h
        .serve(&name, attempt_handler(calls.clone()))
        .await
        .expect("serve");
    let failing = schedule(h, &name, json!({}), h.options(&name).attempts(3)).await;
    let flaky = schedule(
        h,
        &name,
        json!({"succeedAt": 3}),
        h.options(&name).attempts(3),
    )
    .await;
    let s = wait_finished(&*b, &failing, h.pickup_timeout() * 2).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.attempts_made, 3, "{s:?}");
    assert_eq!(s.error.as_deref(), Some("boom 3"));
    let s = wait_finished(&*b, &flaky, h.pickup_timeout() * 2).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.attempts_made, 3, "{s:?}");
    assert_eq!(s.result, Some(json!("ok")));
    let calls = calls.lock().expect("calls");
    for id in [&failing, &flaky] {
        let attempts: Vec<u32> = calls
            .iter()
            .filter(|(t, _, _)| *t == id.to_string())
            .map(|(_, a, _)| *a)
            .collect();
        assert_eq!(
            attempts,
            vec![1, 2, 3],
            "{id}: the handler saw these attempts"
        );
    }
}

/// The wait between attempts follows `backoff`: with a fixed 700 ms backoff the second
/// attempt starts at least 650 ms after the first.
pub async fn honours_backoff(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("backoff");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let _w = h
        .serve(&name, attempt_handler(calls.clone()))
        .await
        .expect("serve");
    let id = schedule(
        h,
        &name,
        json!({"succeedAt": 2}),
        h.options(&name).attempts(2).backoff(Backoff::fixed(700)),
    )
    .await;
    let s = wait_finished(&*b, &id, h.pickup_timeout() * 2).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    let calls = calls.lock().expect("calls");
    let times: Vec<tokio::time::Instant> = calls.iter().map(|(_, _, t)| *t).collect();
    assert_eq!(times.len(), 2, "{calls:?}");
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(650), "retried after {gap:?}");
}

/// A custom `jobId` is the engine's id: the task id ends with it, and adding it again adds
/// nothing and returns the same id (the first payload stays).
pub async fn honours_job_id(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("jobid");
    let job_id = format!("custom-{}", unique("j"));
    let first = schedule(h, &name, json!({"v": 1}), h.options(&name).job_id(&job_id)).await;
    assert!(first.native().ends_with(&job_id), "{first}");
    let second = schedule(h, &name, json!({"v": 2}), h.options(&name).job_id(&job_id)).await;
    assert_eq!(first, second);
    let log: Log = Arc::default();
    let _w = h
        .serve(&name, recording(&log, json!(null)))
        .await
        .expect("serve");
    wait_finished(&*b, &first, h.pickup_timeout()).await;
    assert_eq!(*log.lock().expect("log"), vec![json!({"v": 1})]);
}

/// `jobName` is the name the worker sees.
pub async fn honours_job_name(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("jobname");
    let seen: Log = Arc::default();
    let _w = h
        .serve(
            &name,
            logging(&seen, |ctx| json!(ctx.name), Ok(json!(null))),
        )
        .await
        .expect("serve");
    let id = schedule(
        h,
        &name,
        json!({}),
        h.options(&name).job_name("send-welcome"),
    )
    .await;
    wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(*seen.lock().expect("log"), vec![json!("send-welcome")]);
}

/// A `lifo` task added last runs first.
pub async fn honours_lifo(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("lifo");
    let mut ids = Vec::new();
    for i in 1..=3 {
        ids.push(schedule(h, &name, json!(i), h.options(&name)).await);
    }
    ids.push(schedule(h, &name, json!("head"), h.options(&name).lifo(true)).await);
    let log: Log = Arc::default();
    let _w = h
        .serve(&name, recording(&log, json!(null)))
        .await
        .expect("serve");
    for id in &ids {
        wait_finished(&*b, id, h.pickup_timeout()).await;
    }
    assert_eq!(
        *log.lock().expect("log"),
        vec![json!("head"), json!(1), json!(2), json!(3)]
    );
}

/// `removeOnComplete: true`: once completed the task is gone (`NotFound`), while a task
/// without it stays readable.
pub async fn honours_remove_on_complete(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rmc");
    let log: Log = Arc::default();
    let _w = h
        .serve(&name, recording(&log, json!(null)))
        .await
        .expect("serve");
    let kept = schedule(h, &name, json!("kept"), h.options(&name)).await;
    let removed = schedule(
        h,
        &name,
        json!("removed"),
        h.options(&name)
            .remove_on_complete(RemovePolicy::Remove(true)),
    )
    .await;
    wait_finished(&*b, &kept, h.pickup_timeout()).await;
    wait_gone(&*b, &removed, h.pickup_timeout()).await;
    assert!(
        log.lock().expect("log").contains(&json!("removed")),
        "it ran"
    );
}

/// `removeOnFail: true`: once failed the task is gone (`NotFound`).
pub async fn honours_remove_on_fail(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rmf");
    let ran: Log = Arc::default();
    let _w = h
        .serve(
            &name,
            logging(&ran, |ctx| ctx.payload.clone(), Err("always".to_string())),
        )
        .await
        .expect("serve");
    let kept = schedule(h, &name, json!("kept"), h.options(&name)).await;
    let removed = schedule(
        h,
        &name,
        json!("removed"),
        h.options(&name).remove_on_fail(RemovePolicy::Remove(true)),
    )
    .await;
    let s = wait_finished(&*b, &kept, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    wait_gone(&*b, &removed, h.pickup_timeout()).await;
    assert!(
        ran.lock().expect("log").contains(&json!("removed")),
        "it ran"
    );
}

/// While a task with a deduplication id waits, adding another with the same id adds nothing
/// and returns the first task's id; a different id adds a task.
pub async fn honours_deduplication(h: &dyn Harness) {
    let name = unique("dedup");
    let dedup = unique("d");
    let first = schedule(
        h,
        &name,
        json!(1),
        h.options(&name).deduplication(&dedup, None),
    )
    .await;
    let again = schedule(
        h,
        &name,
        json!(2),
        h.options(&name).deduplication(&dedup, None),
    )
    .await;
    assert_eq!(first, again);
    let other = schedule(
        h,
        &name,
        json!(3),
        h.options(&name).deduplication(unique("d"), None),
    )
    .await;
    assert_ne!(first, other);
    let b = h.backend();
    let _ = b.cancel(&first).await;
    let _ = b.cancel(&other).await;
}

fn with_temporal(mut o: TaskOptions, f: impl FnOnce(&mut TemporalOptions)) -> TaskOptions {
    if let Some(t) = o.temporal.as_mut() {
        f(t);
    }
    o
}

/// A given workflow id names the task; starting it again while it runs is `AlreadyExists`;
/// starting it again after it closed is a new task, the old id still names the old run.
pub async fn honours_workflow_id(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("wfid");
    let wf = unique("wf");
    // A worker, so a cancel is carried out (Temporal cancels through the worker).
    let release = Arc::new(tokio::sync::Notify::new());
    let (handler, _started) = gated(release.clone());
    let _w = h.serve(&name, handler).await.expect("serve");
    let opts = with_temporal(h.options(&name), |t| t.workflow_id = Some(wf.clone()));
    let id = schedule(h, &name, json!({}), opts.clone()).await;
    assert!(id.native().starts_with(&wf), "{id}");
    let req = ScheduleRequest::new(name.as_str(), json!({}), opts.clone()).expect("valid");
    let e = b.schedule(req).await.expect_err("duplicate workflow id");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    // Once the first run is cancelled, the workflow id may start again: that is another
    // task, and the first id keeps naming its own (cancelled) run.
    assert!(b.cancel(&id).await.expect("cancel").is_cancelled());
    let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    let again = schedule(h, &name, json!({}), opts).await;
    assert_ne!(again, id);
    assert_eq!(
        b.status(&id).await.expect("status").state,
        TaskState::Cancelled
    );
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );
    assert!(!b.status(&again).await.expect("status").state.is_finished());
    let _ = b.cancel(&again).await;
    release.notify_waiters();
}

/// `idConflictPolicy: USE_EXISTING` returns the running task's id instead of starting another.
pub async fn honours_id_conflict_policy(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("conflict");
    let wf = unique("wf");
    let opts = with_temporal(h.options(&name), |t| t.workflow_id = Some(wf.clone()));
    let id = schedule(h, &name, json!({}), opts.clone()).await;
    let reuse = with_temporal(opts, |t| {
        t.id_conflict_policy = IdConflictPolicy::UseExisting
    });
    let again = schedule(h, &name, json!({}), reuse).await;
    assert_eq!(id, again);
    let _ = b.cancel(&id).await;
}

/// A run still open after `executionTimeoutMs` ends `TIMED_OUT`.
pub async fn honours_execution_timeout(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("timeout");
    let release = Arc::new(tokio::sync::Notify::new());
    let (handler, _started) = gated(release.clone());
    let _w = h.serve(&name, handler).await.expect("serve");
    let opts = with_temporal(h.options(&name), |t| t.execution_timeout_ms = Some(1000));
    let id = schedule(h, &name, json!({}), opts).await;
    let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::TimedOut, "{s:?}");
    release.notify_waiters();
}

/// `trackingQueue`: the orchestrator also schedules a SIMPLE tracking task carrying the
/// workflow's id on that queue (here on a `memory-bullmq` SIMPLE route).
pub async fn honours_tracking_queue(h: &dyn Harness) {
    let b = h.backend();
    let simple = crate::MemoryBackend::bullmq();
    let orch = Orchestrator::builder()
        .backend(b.clone())
        .backend(simple.shared())
        .route(h.task_type(), b.name())
        .route(TaskType::Simple, "memory-bullmq")
        .build()
        .expect("orchestrator");
    let name = unique("track");
    let queue = unique("tq");
    let opts = with_temporal(h.options(&name), |t| t.tracking_queue = Some(queue.clone()));
    let id = orch
        .schedule_task(&name, json!({}), opts)
        .await
        .expect("schedule");
    let tracked = simple.scheduled();
    assert_eq!(tracked.len(), 1, "{tracked:?}");
    assert_eq!(tracked[0].name, queue);
    assert_eq!(tracked[0].payload["taskId"], json!(id.to_string()));
    let _ = b.cancel(&id).await;
}

async fn assert_cancelled_and_never_runs(h: &dyn Harness, name: &str, id: &TaskId) {
    let b = h.backend();
    let outcome = b.cancel(id).await.expect("cancel");
    assert!(outcome.is_cancelled(), "{outcome:?}");
    let log: Log = Arc::default();
    let _w = h
        .serve(name, recording(&log, json!(null)))
        .await
        .expect("serve");
    // A control task on the same queue/type proves the worker is up and taking tasks, so
    // "the cancelled task never ran" is observed while it could have run.
    let control = schedule(h, name, json!("control"), h.options(name)).await;
    wait_finished(&*b, &control, h.pickup_timeout()).await;
    if outcome == CancelOutcome::CancelRequested {
        let s = wait_finished(&*b, id, h.pickup_timeout()).await;
        assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    } else {
        // Every engine reads it back CANCELLED (BullMQ removes the job; our cancel remembers
        // it), and a second cancel finds it finished.
        let s = b.status(id).await.expect("a cancelled task has a status");
        assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
        assert!(s.finished_at.is_some(), "{s:?}");
        assert_eq!(
            b.cancel(id).await.expect("cancel again"),
            CancelOutcome::NotCancellableFinished
        );
    }
    let ran = log.lock().expect("log").clone();
    assert_eq!(ran, vec![json!("control")], "a cancelled task ran");
}

/// Cancelling a waiting task (and, where `delay` is honoured, a delayed one): cancelled,
/// never runs while a worker serves the queue.
pub async fn honours_cancel_pending(h: &dyn Harness) {
    let name = unique("cancelp");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    assert_cancelled_and_never_runs(h, &name, &id).await;
    if h.backend().capabilities().has(Capability::Delay) {
        let name = unique("canceld");
        let id = schedule(
            h,
            &name,
            json!({}),
            h.options(&name).delay(Duration::from_millis(300)),
        )
        .await;
        assert_cancelled_and_never_runs(h, &name, &id).await;
    }
}

async fn cancel_running_case(h: &dyn Harness, honoured: bool) {
    let b = h.backend();
    let name = unique("cancelr");
    let release = Arc::new(tokio::sync::Notify::new());
    let (handler, mut started) = gated(release.clone());
    let _w = h.serve(&name, handler).await.expect("serve");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    tokio::time::timeout(h.pickup_timeout(), started.recv())
        .await
        .expect("task started")
        .expect("channel open");
    let outcome = b.cancel(&id).await.expect("cancel");
    if honoured {
        assert!(outcome.is_cancelled(), "{outcome:?}");
        let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
        assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    } else {
        assert_eq!(outcome, CancelOutcome::NotCancellableRunning);
        release.notify_one();
        let s = wait_finished(&*b, &id, h.pickup_timeout()).await;
        assert_eq!(s.state, TaskState::Completed, "{s:?}");
    }
    release.notify_waiters();
}

/// Cancelling a running task: cancelled (or requested, then `CANCELLED`).
pub async fn honours_cancel_running(h: &dyn Harness) {
    cancel_running_case(h, true).await;
}

/// Cancelling a running task is refused as running, and the task goes on to complete.
pub async fn refuses_cancel_running(h: &dyn Harness) {
    cancel_running_case(h, false).await;
}

/// Progress the task reports shows in its status while it runs.
pub async fn honours_progress(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("progress");
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let _w = h
        .serve(
            &name,
            Handler::new(move |ctx| {
                let gate = gate.clone();
                async move {
                    ctx.report_progress(json!(42));
                    gate.notified().await;
                    Ok(json!(null))
                }
            }),
        )
        .await
        .expect("serve");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    let s = wait_until(&*b, &id, h.pickup_timeout(), |s| s.progress.is_some()).await;
    assert_eq!(s.progress, Some(json!(42)), "{s:?}");
    release.notify_waiters();
    wait_finished(&*b, &id, h.pickup_timeout()).await;
}

/// Options that set `option` on top of `base`; `None` where the option cannot be expressed
/// for this task type (the `temporal.*` block only exists on COMPLEX tasks).
fn options_setting(option: Capability, base: TaskOptions) -> Option<TaskOptions> {
    let o = match option {
        Capability::Delay => base.delay(Duration::from_secs(60)),
        Capability::Priority => base.priority(1),
        Capability::Attempts => base.attempts(2),
        Capability::Backoff => base.backoff(Backoff::fixed(10)),
        Capability::JobId => base.job_id("conformance-refused"),
        Capability::JobName => base.job_name("conformance-refused"),
        Capability::Lifo => base.lifo(true),
        Capability::RemoveOnComplete => base.remove_on_complete(RemovePolicy::Remove(true)),
        Capability::RemoveOnFail => base.remove_on_fail(RemovePolicy::Remove(true)),
        Capability::Deduplication => base.deduplication("conformance-refused", None),
        Capability::WorkflowId
        | Capability::IdConflictPolicy
        | Capability::ExecutionTimeout
        | Capability::TrackingQueue => {
            base.temporal.as_ref()?;
            with_temporal(base, |t| match option {
                Capability::WorkflowId => t.workflow_id = Some("conformance-refused".into()),
                Capability::IdConflictPolicy => {
                    t.id_conflict_policy = IdConflictPolicy::UseExisting;
                }
                Capability::ExecutionTimeout => t.execution_timeout_ms = Some(1000),
                _ => t.tracking_queue = Some("conformance-refused".into()),
            })
        }
        _ => return None,
    };
    Some(o)
}

/// An option the backend does not declare is refused with `UnsupportedOption` naming the
/// option and the backend, by the orchestrator and by the backend called directly.
pub async fn refuses_option(h: &dyn Harness, option: Capability) {
    let b = h.backend();
    let name = unique("refused");
    let opts = options_setting(option, h.options(&name)).expect("expressible option");
    let orch = orchestrator_for(h);
    let check = |e: Error| match e {
        Error::UnsupportedOption {
            backend,
            option: got,
        } => {
            assert_eq!(backend, b.name());
            assert_eq!(got, option);
        }
        other => panic!("expected UnsupportedOption({option}), got {other:?}"),
    };
    check(
        orch.schedule_task(&name, json!({}), opts.clone())
            .await
            .expect_err("refused"),
    );
    let req = ScheduleRequest::new(name.as_str(), json!({}), opts).expect("valid");
    check(b.schedule(req).await.expect_err("refused"));
}

// ---------------------------------------------------------------------------------------
// The table and its runner.

type CaseFn = for<'a> fn(&'a dyn Harness) -> BoxFuture<'a, ()>;

/// What to run for one trial.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "harness"), allow(dead_code))]
enum Run {
    Case(CaseFn),
    Refuse(Capability),
}

/// One row of the suite: a trial name and either what it runs or why it cannot run.
pub struct Case {
    /// The trial name.
    pub name: String,
    run: Result<Run, String>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("skip", &self.run.as_ref().err())
            .finish()
    }
}

impl Case {
    /// Why the case does not run, if it does not.
    pub fn skip_reason(&self) -> Option<&str> {
        self.run.as_ref().err().map(String::as_str)
    }
}

macro_rules! case_fn {
    ($f:ident) => {{
        fn boxed(h: &dyn Harness) -> BoxFuture<'_, ()> {
            Box::pin($f(h))
        }
        boxed as CaseFn
    }};
}

fn honour_case(c: Capability) -> CaseFn {
    match c {
        Capability::Delay => case_fn!(honours_delay),
        Capability::Priority => case_fn!(honours_priority),
        Capability::Attempts => case_fn!(honours_attempts),
        Capability::Backoff => case_fn!(honours_backoff),
        Capability::JobId => case_fn!(honours_job_id),
        Capability::JobName => case_fn!(honours_job_name),
        Capability::Lifo => case_fn!(honours_lifo),
        Capability::RemoveOnComplete => case_fn!(honours_remove_on_complete),
        Capability::RemoveOnFail => case_fn!(honours_remove_on_fail),
        Capability::Deduplication => case_fn!(honours_deduplication),
        Capability::WorkflowId => case_fn!(honours_workflow_id),
        Capability::IdConflictPolicy => case_fn!(honours_id_conflict_policy),
        Capability::ExecutionTimeout => case_fn!(honours_execution_timeout),
        Capability::TrackingQueue => case_fn!(honours_tracking_queue),
        Capability::CancelPending => case_fn!(honours_cancel_pending),
        Capability::CancelRunning => case_fn!(honours_cancel_running),
        _ => case_fn!(honours_progress),
    }
}

/// Cases of [`Capability`] `c` that need the harness to run Rust handlers.
fn needs_handlers(c: Capability) -> bool {
    !matches!(
        c,
        Capability::JobId
            | Capability::Deduplication
            | Capability::IdConflictPolicy
            | Capability::TrackingQueue
    )
}

fn snake(c: Capability) -> String {
    let mut out = String::new();
    for ch in format!("{c:?}").chars() {
        if ch.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The suite for one backend: its descriptor, and whether its harness runs Rust handlers.
#[derive(Debug, Clone)]
pub struct Suite {
    descriptor: Descriptor,
    no_handlers: Option<String>,
    unobservable: Vec<(Capability, String)>,
}

impl Suite {
    /// The suite for a backend of `descriptor`'s kind.
    pub fn new(descriptor: Descriptor) -> Self {
        Self {
            descriptor,
            no_handlers: None,
            unobservable: Vec::new(),
        }
    }

    /// The harness cannot observe declared capability `c` yet (say why, and which issue
    /// tracks it): its `honours_` case is listed as skipped with `why`, never passed.
    #[must_use]
    pub fn unobservable(mut self, c: Capability, why: impl Into<String>) -> Self {
        self.unobservable.push((c, why.into()));
        self
    }

    /// The harness cannot run Rust handlers (the engine runs work defined elsewhere, like
    /// n8n workflows); cases that need one are listed as skipped with `why`.
    #[must_use]
    pub fn without_handlers(mut self, why: impl Into<String>) -> Self {
        self.no_handlers = Some(why.into());
        self
    }

    /// Every case, in order, each runnable or with its skip reason.
    pub fn cases(&self) -> Vec<Case> {
        let handlers = |needs: bool, run: Run| match (&self.no_handlers, needs) {
            (Some(why), true) => Err(format!("needs Rust handlers: {why}")),
            _ => Ok(run),
        };
        let mut cases: Vec<Case> = [
            (
                "schedule_status_complete",
                case_fn!(schedule_status_complete),
                true,
            ),
            ("cancel_finished", case_fn!(cancel_finished), true),
            (
                "wait_returns_the_outcome",
                case_fn!(wait_returns_the_outcome),
                true,
            ),
            (
                "wait_deadline_and_cancel",
                case_fn!(wait_deadline_and_cancel),
                true,
            ),
            ("task_id_round_trip", case_fn!(task_id_round_trip), false),
            (
                "unknown_id_not_found",
                case_fn!(unknown_id_not_found),
                false,
            ),
            (
                "malformed_id_invalid",
                case_fn!(malformed_id_invalid),
                false,
            ),
            (
                "invalid_input_rejected",
                case_fn!(invalid_input_rejected),
                false,
            ),
            (
                "concurrent_unique_ids",
                case_fn!(concurrent_unique_ids),
                false,
            ),
        ]
        .into_iter()
        .map(|(name, f, needs)| Case {
            name: name.to_string(),
            run: handlers(needs, Run::Case(f)),
        })
        .collect();
        let caps = self.descriptor.capabilities;
        let task_type = self
            .descriptor
            .task_types
            .first()
            .copied()
            .unwrap_or_default();
        for c in Capability::ALL {
            let unobservable = self.unobservable.iter().find(|(u, _)| *u == c);
            let (name, run) = if let (true, Some((_, why))) = (caps.has(c), unobservable) {
                (
                    format!("honours_{}", snake(c)),
                    Err(format!("unobservable here: {why}")),
                )
            } else if caps.has(c) {
                (
                    format!("honours_{}", snake(c)),
                    handlers(needs_handlers(c), Run::Case(honour_case(c))),
                )
            } else if c == Capability::CancelRunning {
                (
                    format!("refuses_{}", snake(c)),
                    handlers(true, Run::Case(case_fn!(refuses_cancel_running))),
                )
            } else if !c.is_option() {
                (
                    format!("refuses_{}", snake(c)),
                    Err(format!("`{c}` is not declared; nothing to observe")),
                )
            } else if options_setting(c, crate_options(task_type)).is_none() {
                (
                    format!("refuses_{}", snake(c)),
                    Err(format!("`{c}` cannot be set on {task_type} tasks")),
                )
            } else {
                (format!("refuses_{}", snake(c)), Ok(Run::Refuse(c)))
            };
            cases.push(Case { name, run });
        }
        cases
    }

    #[cfg(feature = "harness")]
    /// The suite as `libtest-mimic` trials over the harness `setup` builds, once, on the
    /// first trial that runs. Checks that the harness's backend has this suite's descriptor.
    pub fn trials<H, F, Fut>(self, setup: F) -> Vec<libtest_mimic::Trial>
    where
        H: Harness + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = H> + Send + 'static,
    {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}")),
        );
        let setup: Arc<Mutex<Option<F>>> = Arc::new(Mutex::new(Some(setup)));
        let harness: Arc<tokio::sync::OnceCell<H>> = Arc::new(tokio::sync::OnceCell::new());
        let kind = self.descriptor.kind;
        self.cases()
            .into_iter()
            .map(|case| match case.run {
                Err(why) => libtest_mimic::Trial::test(format!("{kind}::{}", case.name), || Ok(()))
                    .with_kind(format!("skip: {why}"))
                    .with_ignored_flag(true),
                Ok(run) => {
                    let (rt, setup, harness) = (rt.clone(), setup.clone(), harness.clone());
                    libtest_mimic::Trial::test(format!("{kind}::{}", case.name), move || {
                        rt.block_on(async move {
                            let h = harness
                                .get_or_init(|| async {
                                    let f = setup.lock().expect("setup").take();
                                    let f = f.unwrap_or_else(|| {
                                        panic!("the harness setup failed in an earlier case; see its message")
                                    });
                                    f().await
                                })
                                .await;
                            let backend = h.backend();
                            assert_eq!(backend.descriptor().kind, kind, "harness backend kind");
                            match run {
                                Run::Case(f) => f(h).await,
                                Run::Refuse(c) => refuses_option(h, c).await,
                            }
                        });
                        Ok(())
                    })
                }
            })
            .collect()
    }

    #[cfg(feature = "harness")]
    /// Run the suite as a test binary's `main` (`harness = false`), parsing libtest's
    /// command line (filters, `--ignored`, `--list`…).
    pub fn run<H, F, Fut>(self, setup: F) -> std::process::ExitCode
    where
        H: Harness + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = H> + Send + 'static,
    {
        run_trials(self.trials(setup))
    }
}

#[cfg(feature = "harness")]
/// Run `trials` (of one or several suites) as a test binary's `main`.
pub fn run_trials(trials: Vec<libtest_mimic::Trial>) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Baseline options of a task type, used to decide whether an option can be expressed.
fn crate_options(task_type: TaskType) -> TaskOptions {
    match task_type {
        TaskType::Simple => TaskOptions::simple(),
        TaskType::Complex => TaskOptions::complex(TemporalOptions::new("t", "q")),
        TaskType::Integration => TaskOptions::integration(N8nOptions::workflow("w")),
    }
}
