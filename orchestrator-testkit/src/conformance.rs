//! The conformance suite every backend passes.
//!
//! Each case is a public `async fn` taking a [`Harness`]; [`crate::backend_conformance!`]
//! stamps one `#[tokio::test]` per case. Cases a backend's [`Capabilities`] rule out are
//! not run: they print `conformance: <case> not applicable to <backend>: …` instead, so
//! nothing is skipped silently. Not a semver-stable API: cases get added.
//!
//! Every case uses fresh task names (a random suffix), so cases can share one engine.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_core::{
    Backend, Backoff, CancelOutcome, Capabilities, ErrorKind, N8nOptions, Orchestrator, Result,
    ScheduleRequest, SharedBackend, TaskId, TaskOptions, TaskState, TaskStatus, TaskType,
    TemporalOptions, async_trait,
};
use serde_json::{Value, json};

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

    /// Whether [`Harness::serve`] can run arbitrary Rust handlers. Engines whose work is
    /// defined elsewhere (n8n workflows) answer `false`; cases that need custom handlers are
    /// then reported as not applicable.
    fn supports_handlers(&self) -> bool {
        true
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

fn not_applicable(case: &str, b: &dyn Backend, why: &str) {
    println!("conformance: {case} not applicable to {}: {why}", b.name());
}

async fn schedule(h: &dyn Harness, name: &str, payload: Value, options: TaskOptions) -> TaskId {
    let req = ScheduleRequest::new(name, payload, options).expect("valid request");
    h.backend().schedule(req).await.expect("schedule")
}

/// Poll until `id` is finished, or panic after `timeout`.
pub async fn wait_finished(b: &dyn Backend, id: &TaskId, timeout: Duration) -> TaskStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = b.status(id).await.expect("status");
        if s.state.is_finished() {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} not finished after {timeout:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Log = Arc<Mutex<Vec<Value>>>;

fn recording(log: &Log, result: Value) -> Handler {
    let log = log.clone();
    Handler::new(move |ctx| {
        let log = log.clone();
        let result = result.clone();
        async move {
            log.lock().expect("log").push(ctx.payload.clone());
            Ok(result)
        }
    })
}

/// Schedule → status → completion: the result, source and attempt count come back.
pub async fn schedule_status_complete(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "schedule_status_complete",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
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
    assert_eq!(s.attempts_made, 1);
    assert!(s.finished_at.is_some());
}

/// A delayed task is reported delayed and does not start before its time.
pub async fn delayed_not_started_early(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "delayed_not_started_early",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    if !b.capabilities().delay {
        return not_applicable("delayed_not_started_early", &*b, "no delay capability");
    }
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
}

/// Waiting tasks start in priority order (1 before 2 before 3).
pub async fn priority_order(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "priority_order",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    if !b.capabilities().priority {
        return not_applicable("priority_order", &*b, "no priority capability");
    }
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

/// A failing task is retried up to `attempts` times, then fails with the last message;
/// one that fails twice then succeeds completes after 3 attempts.
pub async fn retries_up_to_attempts(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "retries_up_to_attempts",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    if !b.capabilities().retries {
        return not_applicable("retries_up_to_attempts", &*b, "no retries capability");
    }
    let name = unique("retry");
    let calls = Arc::new(Mutex::new(HashSet::<(String, u32)>::new()));
    let seen = calls.clone();
    let _w = h
        .serve(
            &name,
            Handler::new(move |ctx| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .expect("calls")
                        .insert((ctx.task_id.to_string(), ctx.attempt));
                    let succeed_at = ctx.payload["succeedAt"].as_u64().unwrap_or(u64::MAX);
                    if u64::from(ctx.attempt) >= succeed_at {
                        Ok(json!("ok"))
                    } else {
                        Err(format!("boom {}", ctx.attempt))
                    }
                }
            }),
        )
        .await
        .expect("serve");
    let opts = h.options(&name).attempts(3).backoff(Backoff::fixed(50));
    let failing = schedule(h, &name, json!({}), opts.clone()).await;
    let flaky = schedule(
        h,
        &name,
        json!({"succeedAt": 3}),
        h.options(&name)
            .attempts(3)
            .backoff(Backoff::exponential(50)),
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
    if outcome == CancelOutcome::CancelRequested {
        // The engine lets the task wind down: it must end cancelled once a worker sees it.
        let s = wait_finished(&*b, id, h.pickup_timeout()).await;
        assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    } else {
        tokio::time::sleep(Duration::from_millis(800)).await;
        match b.status(id).await {
            Ok(s) => assert_eq!(s.state, TaskState::Cancelled, "{s:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        }
    }
    assert!(log.lock().expect("log").is_empty(), "a cancelled task ran");
}

/// Cancelling a waiting task: cancelled, never runs.
pub async fn cancel_pending(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "cancel_pending",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    if !b.capabilities().cancel_pending {
        return not_applicable("cancel_pending", &*b, "no cancel_pending capability");
    }
    let name = unique("cancelp");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    assert_cancelled_and_never_runs(h, &name, &id).await;
}

/// Cancelling a delayed task: cancelled, never runs.
pub async fn cancel_delayed(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "cancel_delayed",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    let caps = b.capabilities();
    if !(caps.cancel_pending && caps.delay) {
        return not_applicable("cancel_delayed", &*b, "needs delay and cancel_pending");
    }
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

/// Cancelling a finished task is refused as finished.
pub async fn cancel_finished(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "cancel_finished",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
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
}

/// Cancelling a running task: cancelled (or requested) where the engine can, refused as
/// running where it cannot (BullMQ).
pub async fn cancel_running(h: &dyn Harness) {
    let b = h.backend();
    if !h.supports_handlers() {
        return not_applicable(
            "cancel_running",
            &*b,
            "the harness cannot run custom handlers",
        );
    }
    let name = unique("cancelr");
    let (started_tx, started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let _w = h
        .serve(
            &name,
            Handler::new(move |_| {
                let started = started_tx.clone();
                let gate = gate.clone();
                async move {
                    let _ = started.send(());
                    gate.notified().await;
                    Ok(json!("released"))
                }
            }),
        )
        .await
        .expect("serve");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    let mut started_rx = started_rx;
    tokio::time::timeout(h.pickup_timeout(), started_rx.recv())
        .await
        .expect("task started")
        .expect("channel open");
    let outcome = b.cancel(&id).await.expect("cancel");
    if b.capabilities().cancel_running {
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

/// Invalid input is a typed InvalidInput error, before any I/O.
pub async fn invalid_options_rejected(h: &dyn Harness) {
    let b = h.backend();
    let ty = h.task_type();
    let orch = Orchestrator::builder()
        .backend(b.clone())
        .route(ty, b.name())
        .build()
        .expect("orchestrator");
    let name = unique("invalid");
    let bad: Vec<(&str, String, TaskOptions)> = vec![
        ("attempts 0", name.clone(), h.options(&name).attempts(0)),
        ("empty name", String::new(), h.options(&name)),
        ("control char", format!("{name}\n"), h.options(&name)),
        (
            "priority",
            name.clone(),
            h.options(&name).priority(3_000_000),
        ),
        (
            "delay",
            name.clone(),
            h.options(&name).delay(Duration::from_secs(u64::MAX / 2000)),
        ),
    ];
    for (case, n, o) in bad {
        let e = orch
            .schedule_task(&n, json!({}), o.task_type(ty))
            .await
            .expect_err(case);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{case}: {e}");
    }
}

/// 1,000 concurrent schedules all succeed with distinct ids.
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
    for id in ids.iter().take(5) {
        let _ = b.cancel(id).await;
    }
}

/// The capabilities a backend declares, printed so a test log shows what ran.
pub fn describe(b: &dyn Backend) -> Capabilities {
    let c = b.capabilities();
    println!(
        "conformance: backend {} ({}) capabilities {c:?}",
        b.name(),
        b.source()
    );
    c
}

/// Stamp one `#[tokio::test]` per conformance case.
///
/// `$setup` is an async fn (or path) returning a [`Harness`]:
///
/// ```ignore
/// orchestrator_testkit::backend_conformance!(memory_bullmq, async { MemoryHarness::bullmq() });
/// ```
#[macro_export]
macro_rules! backend_conformance {
    ($module:ident, $setup:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::backend_conformance!(@cases $setup;
                schedule_status_complete,
                delayed_not_started_early,
                priority_order,
                retries_up_to_attempts,
                cancel_pending,
                cancel_delayed,
                cancel_finished,
                cancel_running,
                task_id_round_trip,
                unknown_id_not_found,
                invalid_options_rejected,
                concurrent_unique_ids
            );
        }
    };
    (@cases $setup:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $setup.await;
                $crate::conformance::describe(&*$crate::conformance::Harness::backend(&harness));
                $crate::conformance::$case(&harness).await;
            }
        )*
    };
}
