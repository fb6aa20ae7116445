//! The cases of the suite: generic ones, one per generic capability (honoured, or shown
//! not honoured by the engine itself), and the cases of each engine option.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_bullmq_compat::spec::{JobOptionsExt, RemovePolicy};
use backend_temporal::spec::{IdConflictPolicy, TemporalOptions};
use orchestrator_core::raw::AdmittedRequest;
use orchestrator_core::{
    Backoff, CancelOutcome, Capability, ErrorKind, ListFilter, Orchestrator, Result,
    ScheduleRequest, TaskId, TaskOptions, TaskState, TaskStatus, TaskType,
};
use serde_json::{Value, json};

use super::{Behavior, Gate, Harness, Worker, wait_finished, wait_gone, wait_until};
use crate::handler::Handler;

/// A fresh task name.
pub(super) fn unique(prefix: &str) -> String {
    format!(
        "conf-{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn schedule(h: &dyn Harness, name: &str, payload: Value, options: TaskOptions) -> TaskId {
    let req = ScheduleRequest::new(name, payload, options).expect("valid request");
    h.backend().schedule(req).await.expect("schedule")
}

/// Schedule past admission: what the engine itself does with options its descriptor
/// does not declare.
async fn schedule_raw(
    h: &dyn Harness,
    name: &str,
    payload: Value,
    options: TaskOptions,
) -> Result<TaskId> {
    let req = ScheduleRequest::new(name, payload, options).expect("valid request");
    h.backend()
        .raw()
        .schedule(AdmittedRequest::bypassing_admission(req))
        .await
}

async fn serve(h: &dyn Harness, name: &str, behavior: Behavior) -> Box<dyn Worker> {
    h.serve(name, behavior).await.expect("serve")
}

/// Stop `w`; a worker that failed meanwhile fails the case.
async fn stop(w: Box<dyn Worker>) {
    if let Err(e) = w.stop().await {
        panic!("the worker failed: {e}");
    }
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

/// Wait until `id` runs (or, on engines that park it, waits).
async fn wait_running(h: &dyn Harness, id: &TaskId) -> TaskStatus {
    wait_until(&h.backend(), id, h.pickup_timeout(), |s| {
        matches!(s.state, TaskState::Running | TaskState::Waiting)
    })
    .await
}

type Log = Arc<Mutex<Vec<Value>>>;

/// A handler that logs `pick(ctx)` for every attempt, then answers `outcome`.
fn logging(
    log: &Log,
    pick: fn(&crate::TaskContext) -> Value,
    outcome: crate::HandlerResult,
) -> Behavior {
    let log = log.clone();
    Behavior::Rust(Handler::new(move |ctx| {
        let log = log.clone();
        let outcome = outcome.clone();
        let picked = pick(&ctx);
        async move {
            log.lock().expect("log").push(picked);
            outcome
        }
    }))
}

/// A handler that logs each payload and completes with `result`.
fn recording(log: &Log, result: Value) -> Behavior {
    logging(log, |ctx| ctx.payload.clone(), Ok(result))
}

// ---------------------------------------------------------------------------------------
// Generic cases.

/// Schedule → status → completion: the result, label and attempt count come back.
pub async fn schedule_status_complete(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("complete");
    let w = serve(h, &name, Behavior::Echo).await;
    let id = schedule(h, &name, json!({"n": 1}), h.options(&name)).await;
    assert_eq!(id.backend(), b.name());
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.source, b.label());
    assert_eq!(s.task_id, id);
    assert_eq!(s.result, Some(json!({"echo": {"n": 1}})));
    assert!(s.finished_at.is_some());
    stop(w).await;
}

/// `wait` ends with the task: completed with its result, failed with its error.
pub async fn wait_returns_the_outcome(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("wait");
    let w = serve(h, &name, Behavior::OkOrBoom).await;
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
    stop(w).await;
}

/// A wait whose deadline comes first is `StillRunning` (not an error, not `TIMED_OUT`) and
/// lasts its timeout; a cancel ends a wait in progress as `CANCELLED`; a wait longer than
/// the maximum is refused.
pub async fn wait_deadline_and_cancel(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("waitd");
    // Where a running task can be cancelled it runs (held); elsewhere it stays pending.
    let gate = Gate::default();
    let running = b.capabilities().has(Capability::CancelRunning);
    let w = if running {
        Some(serve(h, &name, Behavior::Hold(gate.clone())).await)
    } else {
        None
    };
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    if running {
        wait_running(h, &id).await;
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
    gate.release();

    let e = b
        .wait(&id, orchestrator_core::MAX_WAIT + Duration::from_secs(1))
        .await
        .expect_err("too long");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    if let Some(w) = w {
        stop(w).await;
    }
}

/// Cancelling a finished task is refused as finished, and the task stays completed.
pub async fn cancel_finished(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("cancelf");
    let w = serve(h, &name, Behavior::Echo).await;
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );
    let s = b.status(&id).await.expect("status");
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    stop(w).await;
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
    assert_eq!(s.source, b.label());
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

/// Invalid input is a typed InvalidInput error from the orchestrator and from the request
/// constructor, before any I/O.
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
// One case per generic capability: honoured (an observable effect), or not honoured by
// the engine itself either (`raw_*`, past admission).

/// A delayed task is reported `DELAYED` and does not start before its 1.5 s delay: nothing
/// runs in the first second, and it completes no earlier than 1.4 s after scheduling.
pub async fn honours_delay(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("delay");
    let log: Log = Arc::default();
    let w = serve(h, &name, recording(&log, json!(1))).await;
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
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Completed);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(log.lock().expect("log").len(), 1);
    stop(w).await;
}

/// The engine, given a one-minute `delay` past admission, does not hold the task: it is
/// not `DELAYED`, and it completes long before the minute is out (the bound is loose so a
/// loaded engine still passes; an engine that honoured the delay could not).
pub async fn raw_delay(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rawdelay");
    let w = serve(h, &name, Behavior::Echo).await;
    let started = tokio::time::Instant::now();
    let delay = Duration::from_secs(60);
    let id = schedule_raw(h, &name, json!({}), h.options(&name).delay(delay))
        .await
        .expect("the engine takes the task");
    let s = b.status(&id).await.expect("status");
    assert_ne!(
        s.state,
        TaskState::Delayed,
        "the engine holds the task: declare `delay`"
    );
    let s = wait_finished(&b, &id, delay / 2).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert!(
        started.elapsed() < delay,
        "the engine delayed the task ({:?}): declare `delay`",
        started.elapsed()
    );
    stop(w).await;
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
    let w = serve(h, &name, recording(&log, json!(null))).await;
    for id in &ids {
        wait_finished(&b, id, h.pickup_timeout()).await;
    }
    assert_eq!(
        *log.lock().expect("log"),
        vec![json!(1), json!(2), json!(3), json!(4), json!(5)]
    );
    stop(w).await;
}

type Calls = Arc<Mutex<Vec<(String, u32, tokio::time::Instant)>>>;

fn attempt_handler(calls: Calls) -> Behavior {
    Behavior::Rust(Handler::new(move |ctx| {
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
    }))
}

fn attempts_of(calls: &Calls, id: &TaskId) -> Vec<(u32, tokio::time::Instant)> {
    calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|(t, _, _)| *t == id.to_string())
        .map(|(_, a, t)| (*a, *t))
        .collect()
}

/// A failing task runs exactly `attempts` times, then fails with the last message; one that
/// fails twice then succeeds completes after 3 attempts. `attempts_made` counts them.
pub async fn honours_attempts(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("retry");
    let calls: Calls = Arc::default();
    let w = serve(h, &name, attempt_handler(calls.clone())).await;
    let failing = schedule(h, &name, json!({}), h.options(&name).attempts(3)).await;
    let flaky = schedule(
        h,
        &name,
        json!({"succeedAt": 3}),
        h.options(&name).attempts(3),
    )
    .await;
    let s = wait_finished(&b, &failing, h.pickup_timeout() * 2).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.attempts_made, 3, "{s:?}");
    assert_eq!(s.error.as_deref(), Some("boom 3"));
    let s = wait_finished(&b, &flaky, h.pickup_timeout() * 2).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.attempts_made, 3, "{s:?}");
    assert_eq!(s.result, Some(json!("ok")));
    for id in [&failing, &flaky] {
        let attempts: Vec<u32> = attempts_of(&calls, id)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            attempts,
            vec![1, 2, 3],
            "{id}: the handler saw these attempts"
        );
    }
    stop(w).await;
}

/// The engine, given `attempts: 3` past admission, runs a failing task once.
pub async fn raw_attempts(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rawattempts");
    let w = serve(h, &name, Behavior::OkOrBoom).await;
    let id = schedule_raw(h, &name, json!({"ok": false}), h.options(&name).attempts(3))
        .await
        .expect("the engine takes the task");
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    // Give a retry the time it would take, then look again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = b.status(&id).await.expect("status");
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert!(
        s.attempts_made <= 1,
        "the engine retried ({} attempts): declare `attempts`",
        s.attempts_made
    );
    stop(w).await;
}

/// The gaps between attempts follow `backoff`, both ways bounded: a fixed 1.2 s backoff
/// gives two equal gaps of 1.2 s (the default retry interval, or an exponential one, would
/// not), and an exponential 1 s backoff gives gaps of 1 s then 2 s. (Temporal waits at
/// least 1 s between workflow retries, so shorter backoffs are refused there.)
pub async fn honours_backoff(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("backoff");
    let calls: Calls = Arc::default();
    let w = serve(h, &name, attempt_handler(calls.clone())).await;
    let fixed = schedule(
        h,
        &name,
        json!({"succeedAt": 3}),
        h.options(&name).attempts(3).backoff(Backoff::fixed(1200)),
    )
    .await;
    let exponential = schedule(
        h,
        &name,
        json!({"succeedAt": 3}),
        h.options(&name)
            .attempts(3)
            .backoff(Backoff::exponential(1000)),
    )
    .await;
    for id in [&fixed, &exponential] {
        let s = wait_finished(&b, id, h.pickup_timeout() * 2).await;
        assert_eq!(s.state, TaskState::Completed, "{s:?}");
    }
    // What an engine adds to a backoff (picking the retry up) stays under this.
    let slack = Duration::from_millis(1000);
    let gaps = |id: &TaskId| -> Vec<Duration> {
        let times = attempts_of(&calls, id);
        assert_eq!(times.len(), 3, "{id}: {times:?}");
        times.windows(2).map(|w| w[1].1 - w[0].1).collect()
    };
    let g = gaps(&fixed);
    for gap in &g {
        assert!(
            *gap >= Duration::from_millis(1150) && *gap <= Duration::from_millis(1200) + slack,
            "fixed 1.2 s backoff, gaps {g:?}"
        );
    }
    assert!(
        g[0].abs_diff(g[1]) <= Duration::from_millis(500),
        "a fixed backoff gives equal gaps: {g:?}"
    );
    let g = gaps(&exponential);
    assert!(
        g[0] >= Duration::from_millis(980) && g[0] <= Duration::from_millis(1000) + slack,
        "exponential 1 s backoff, first gap {g:?}"
    );
    assert!(
        g[1] >= Duration::from_millis(1980) && g[1] <= Duration::from_millis(2000) + slack,
        "exponential 1 s backoff, second gap {g:?}"
    );
    assert!(
        g[1] > g[0] + Duration::from_millis(600),
        "an exponential backoff doubles: {g:?}"
    );
    stop(w).await;
}

async fn assert_cancelled_and_never_runs(
    h: &dyn Harness,
    name: &str,
    id: &TaskId,
    due: tokio::time::Instant,
) {
    let b = h.backend();
    let outcome = b.cancel(id).await.expect("cancel");
    assert!(outcome.is_cancelled(), "{outcome:?}");
    let log: Log = Arc::default();
    let w = serve(h, name, recording(&log, json!(null))).await;
    // A control task on the same queue/type proves the worker is up and taking tasks, so
    // "the cancelled task never ran" is observed while it could have run: after its due
    // time too.
    let control = schedule(h, name, json!("control"), h.options(name)).await;
    wait_finished(&b, &control, h.pickup_timeout()).await;
    tokio::time::sleep_until(due + Duration::from_millis(500)).await;
    if outcome == CancelOutcome::CancelRequested {
        let s = wait_finished(&b, id, h.pickup_timeout()).await;
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
    stop(w).await;
}

/// Cancelling a waiting task (and, where `delay` is honoured, a delayed one): cancelled,
/// never runs while a worker serves the queue, past the time it was due.
pub async fn honours_cancel_pending(h: &dyn Harness) {
    let name = unique("cancelp");
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    assert_cancelled_and_never_runs(h, &name, &id, tokio::time::Instant::now()).await;
    if h.backend().capabilities().has(Capability::Delay) {
        let name = unique("canceld");
        let delay = Duration::from_millis(1500);
        let due = tokio::time::Instant::now() + delay;
        let id = schedule(h, &name, json!({}), h.options(&name).delay(delay)).await;
        assert_cancelled_and_never_runs(h, &name, &id, due).await;
    }
}

/// Cancelling a running task: cancelled (or requested, then `CANCELLED`).
pub async fn honours_cancel_running(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("cancelr");
    let gate = Gate::default();
    let w = serve(h, &name, Behavior::Hold(gate.clone())).await;
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    wait_running(h, &id).await;
    let outcome = b.cancel(&id).await.expect("cancel");
    assert!(outcome.is_cancelled(), "{outcome:?}");
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    gate.release();
    stop(w).await;
}

/// The engine refuses to cancel a running task (`NotCancellableRunning`), and the task
/// goes on to complete.
pub async fn raw_cancel_running(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rawcancelr");
    let gate = Gate::default();
    let w = serve(h, &name, Behavior::Hold(gate.clone())).await;
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    wait_running(h, &id).await;
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::NotCancellableRunning,
        "the engine cancelled a running task: declare `cancel running`"
    );
    gate.release();
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    stop(w).await;
}

fn reporting(gate: &Gate) -> Behavior {
    let gate = gate.clone();
    Behavior::Rust(Handler::new(move |ctx| {
        let gate = gate.clone();
        async move {
            ctx.report_progress(json!(42));
            Behavior::Hold(gate).into_handler().call(ctx).await
        }
    }))
}

/// Progress the task reports shows in its status while it runs.
pub async fn honours_progress(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("progress");
    let gate = Gate::default();
    let w = serve(h, &name, reporting(&gate)).await;
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    let s = wait_until(&b, &id, h.pickup_timeout(), |s| s.progress.is_some()).await;
    assert_eq!(s.progress, Some(json!(42)), "{s:?}");
    gate.release();
    wait_finished(&b, &id, h.pickup_timeout()).await;
    stop(w).await;
}

/// The engine shows no progress a running task reports.
pub async fn raw_progress(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rawprogress");
    let gate = Gate::default();
    let w = serve(h, &name, reporting(&gate)).await;
    let id = schedule(h, &name, json!({}), h.options(&name)).await;
    wait_running(h, &id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = b.status(&id).await.expect("status");
    assert_eq!(
        s.progress, None,
        "the engine reports progress: declare `progress`"
    );
    gate.release();
    wait_finished(&b, &id, h.pickup_timeout()).await;
    stop(w).await;
}

// ---------------------------------------------------------------------------------------
// Cases of BullMQ's job options (`jobId`, `jobName`, `lifo`, `removeOnComplete`,
// `removeOnFail`, `deduplication`).

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
    let w = serve(h, &name, recording(&log, json!(null))).await;
    wait_finished(&b, &first, h.pickup_timeout()).await;
    assert_eq!(*log.lock().expect("log"), vec![json!({"v": 1})]);
    stop(w).await;
}

/// `jobName` is the name the worker sees.
pub async fn honours_job_name(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("jobname");
    let seen: Log = Arc::default();
    let w = serve(
        h,
        &name,
        logging(&seen, |ctx| json!(ctx.name), Ok(json!(null))),
    )
    .await;
    let id = schedule(
        h,
        &name,
        json!({}),
        h.options(&name).job_name("send-welcome"),
    )
    .await;
    wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(*seen.lock().expect("log"), vec![json!("send-welcome")]);
    stop(w).await;
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
    let w = serve(h, &name, recording(&log, json!(null))).await;
    for id in &ids {
        wait_finished(&b, id, h.pickup_timeout()).await;
    }
    assert_eq!(
        *log.lock().expect("log"),
        vec![json!("head"), json!(1), json!(2), json!(3)]
    );
    stop(w).await;
}

/// `removeOnComplete: true`: once completed the task is gone (`NotFound`), while a task
/// without it stays readable. A wait started before it ended, or after it was removed,
/// still sees it completed (so `wait ID && next-step` works with the option).
pub async fn honours_remove_on_complete(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rmc");
    let log: Log = Arc::default();
    let kept = schedule(h, &name, json!("kept"), h.options(&name)).await;
    let removed = schedule(
        h,
        &name,
        json!("removed"),
        h.options(&name)
            .remove_on_complete(RemovePolicy::Remove(true)),
    )
    .await;
    let (waited, w) = tokio::join!(b.wait(&removed, h.pickup_timeout()), async {
        // The wait is under way (pending job) before a worker exists.
        tokio::time::sleep(Duration::from_millis(300)).await;
        serve(h, &name, recording(&log, json!(null))).await
    });
    let waited = waited.expect("wait on a job removed on completion");
    assert_eq!(waited.status().state, TaskState::Completed, "{waited:?}");
    wait_finished(&b, &kept, h.pickup_timeout()).await;
    wait_gone(&b, &removed, h.pickup_timeout()).await;
    let after = b
        .wait(&removed, Duration::from_secs(1))
        .await
        .expect("wait after the removal");
    assert_eq!(after.status().state, TaskState::Completed, "{after:?}");
    assert!(
        log.lock().expect("log").contains(&json!("removed")),
        "it ran"
    );
    stop(w).await;
}

/// `removeOnFail: true`: once failed the task is gone (`NotFound`).
pub async fn honours_remove_on_fail(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("rmf");
    let ran: Log = Arc::default();
    let kept = schedule(h, &name, json!("kept"), h.options(&name)).await;
    let removed = schedule(
        h,
        &name,
        json!("removed"),
        h.options(&name).remove_on_fail(RemovePolicy::Remove(true)),
    )
    .await;
    let (waited, w) = tokio::join!(b.wait(&removed, h.pickup_timeout()), async {
        // The wait is under way (pending job) before a worker exists.
        tokio::time::sleep(Duration::from_millis(300)).await;
        serve(
            h,
            &name,
            logging(&ran, |ctx| ctx.payload.clone(), Err("always".to_string())),
        )
        .await
    });
    let waited = waited.expect("wait on a job removed on failure");
    assert_eq!(waited.status().state, TaskState::Failed, "{waited:?}");
    assert_eq!(
        waited.status().error.as_deref(),
        Some("always"),
        "{waited:?}"
    );
    let s = wait_finished(&b, &kept, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    wait_gone(&b, &removed, h.pickup_timeout()).await;
    let after = b
        .wait(&removed, Duration::from_secs(1))
        .await
        .expect("wait after the removal");
    assert_eq!(after.status().state, TaskState::Failed, "{after:?}");
    assert_eq!(after.status().error.as_deref(), Some("always"), "{after:?}");
    assert!(
        ran.lock().expect("log").contains(&json!("removed")),
        "it ran"
    );
    stop(w).await;
}

/// While a task with a deduplication id waits, adding another with the same id adds nothing
/// and returns the first task's id; a different id adds a task. A worker then runs exactly
/// the first and the other task.
pub async fn honours_deduplication(h: &dyn Harness) {
    let b = h.backend();
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
    let log: Log = Arc::default();
    let w = serve(h, &name, recording(&log, json!(null))).await;
    for id in [&first, &other] {
        wait_finished(&b, id, h.pickup_timeout()).await;
    }
    let mut ran = log.lock().expect("log").clone();
    ran.sort_by_key(|v| v.as_i64());
    assert_eq!(ran, vec![json!(1), json!(3)], "what ran");
    stop(w).await;
}

// ---------------------------------------------------------------------------------------
// Cases of the `temporal` block.

fn with_temporal(o: TaskOptions, f: impl FnOnce(&mut TemporalOptions)) -> TaskOptions {
    let mut t = TemporalOptions::of(&o).expect("a COMPLEX harness sets `temporal`");
    f(&mut t);
    o.with(t)
}

/// A given workflow id names the task; starting it again while it runs is `AlreadyExists`;
/// starting it again after it closed is a new task, the old id still names the old run.
pub async fn honours_workflow_id(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("wfid");
    let wf = unique("wf");
    // A worker, so a cancel is carried out (Temporal cancels through the worker).
    let gate = Gate::default();
    let w = serve(h, &name, Behavior::Hold(gate.clone())).await;
    let opts = with_temporal(h.options(&name), |t| t.workflow_id = Some(wf.clone()));
    let id = schedule(h, &name, json!({}), opts.clone()).await;
    assert!(id.native().starts_with(&wf), "{id}");
    let req = ScheduleRequest::new(name.as_str(), json!({}), opts.clone()).expect("valid");
    let e = b.schedule(req).await.expect_err("duplicate workflow id");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    // Once the first run is cancelled, the workflow id may start again: that is another
    // task, and the first id keeps naming its own (cancelled) run.
    assert!(b.cancel(&id).await.expect("cancel").is_cancelled());
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
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
    gate.release();
    stop(w).await;
}

/// `idConflictPolicy: USE_EXISTING` returns the running task's id instead of starting another.
pub async fn honours_id_conflict_policy(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("conflict");
    let wf = unique("wf");
    let opts = with_temporal(h.options(&name), |t| t.workflow_id = Some(wf.clone()));
    let id = schedule(h, &name, json!({}), opts.clone()).await;
    let reuse = with_temporal(opts, |t| {
        t.id_conflict_policy = IdConflictPolicy::UseExisting;
    });
    let again = schedule(h, &name, json!({}), reuse).await;
    assert_eq!(id, again);
    let _ = b.cancel(&id).await;
}

/// A run still open after `executionTimeoutMs` ends `TIMED_OUT`.
pub async fn honours_execution_timeout(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("timeout");
    let gate = Gate::default();
    let w = serve(h, &name, Behavior::Hold(gate.clone())).await;
    let opts = with_temporal(h.options(&name), |t| t.execution_timeout_ms = Some(1000));
    let id = schedule(h, &name, json!({}), opts).await;
    let s = wait_finished(&b, &id, h.pickup_timeout()).await;
    assert_eq!(s.state, TaskState::TimedOut, "{s:?}");
    gate.release();
    stop(w).await;
}

/// `trackingQueue`: the orchestrator also schedules a SIMPLE tracking task carrying the
/// workflow's id on that queue (here on a `memory-bullmq` SIMPLE route), and the workflow's
/// status names it.
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
    let s = b.status(&id).await.expect("status");
    assert_eq!(
        s.tracking_task_id.as_ref(),
        Some(&tracked[0].task_id),
        "{s:?}"
    );
    let _ = b.cancel(&id).await;
}

// ---------------------------------------------------------------------------------------
// Monitoring cases.

/// Tasks named `name` (payloads `{"n": n}`) that stay unfinished until cancelled: with no
/// worker on an engine that keeps tasks for one (it declares `CancelPending`); held
/// running by a [`Behavior::Hold`] on one that starts a task as it takes it (n8n), whose
/// worker and gate come back for [`release`].
async fn open_tasks(
    h: &dyn Harness,
    name: &str,
    ns: std::ops::Range<u32>,
) -> (Vec<TaskId>, Option<(Box<dyn Worker>, Gate)>) {
    let held = if h.backend().capabilities().has(Capability::CancelPending) {
        None
    } else {
        let gate = Gate::default();
        Some((serve(h, name, Behavior::Hold(gate.clone())).await, gate))
    };
    let mut ids = Vec::new();
    for n in ns {
        ids.push(schedule(h, name, json!({ "n": n }), h.options(name)).await);
    }
    if held.is_some() {
        for id in &ids {
            wait_running(h, id).await;
        }
    }
    (ids, held)
}

/// Let go of what [`open_tasks`] held.
async fn release(held: Option<(Box<dyn Worker>, Gate)>) {
    if let Some((w, gate)) = held {
        gate.release();
        stop(w).await;
    }
}

/// Every task of the harness's name, paged `limit` at a time through the backend's
/// listing; panics on a task listed twice.
async fn list_all(h: &dyn Harness, filter: &ListFilter, limit: usize) -> Vec<TaskStatus> {
    let b = h.backend();
    let mut out: Vec<TaskStatus> = Vec::new();
    let mut resume: Option<String> = None;
    for _ in 0..1000 {
        let page = b
            .list(filter, resume.as_deref(), limit)
            .await
            .expect("list");
        assert!(page.tasks.len() <= limit, "{} > {limit}", page.tasks.len());
        resume = page
            .tasks
            .last()
            .map(|l| l.resume.clone())
            .or(page.end.clone())
            .or(resume);
        // Checked one by one, so a task twice in one page is caught too.
        for l in page.tasks {
            assert!(
                out.iter().all(|s| s.task_id != l.status.task_id),
                "{} listed twice",
                l.status.task_id
            );
            out.push(l.status);
        }
        if page.exhausted {
            return out;
        }
    }
    panic!("the listing did not end within 1000 pages");
}

/// [`list_all`] again until `settled` holds, for at most 10 s: an engine's listing may
/// show a change a moment after `status` does (Temporal's visibility store is eventually
/// consistent). The last listing is returned either way, for the caller to assert on.
async fn list_settled(
    h: &dyn Harness,
    filter: &ListFilter,
    limit: usize,
    settled: impl Fn(&[TaskStatus]) -> bool,
) -> Vec<TaskStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = list_all(h, filter, limit).await;
        if settled(&all) || tokio::time::Instant::now() >= deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `counts` again until `settled` holds, for at most 10 s (see [`list_settled`]).
async fn counts_settled(
    h: &dyn Harness,
    filter: &ListFilter,
    settled: impl Fn(&[(TaskState, u64)]) -> bool,
) -> Vec<(TaskState, u64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts = h.backend().counts(filter).await.expect("counts");
        if settled(&counts) || tokio::time::Instant::now() >= deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(list: &[TaskStatus]) -> HashSet<TaskId> {
    list.iter().map(|s| s.task_id.clone()).collect()
}

/// `list`: every task of a name exactly once through pages of 2, each as `status` reads
/// it (state, source, origin, creation time); state, type and time filters select exactly
/// the tasks they name; a resume token the backend did not give is `InvalidInput`.
pub async fn honours_list(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("list");
    let w = serve(h, &name, Behavior::Echo).await;
    let mut done = Vec::new();
    for n in 0..3 {
        let id = schedule(h, &name, json!({ "n": n }), h.options(&name)).await;
        wait_finished(&b, &id, h.pickup_timeout()).await;
        done.push(id);
    }
    stop(w).await;
    let (open, held) = open_tasks(h, &name, 3..5).await;
    let by_name = ListFilter::all().with_name(&name);
    let expected: HashSet<TaskId> = done.iter().chain(&open).cloned().collect();
    let all = list_settled(h, &by_name, 2, |all| ids(all) == expected).await;
    assert_eq!(ids(&all), expected, "{all:#?}");
    for listed in &all {
        let s = b.status(&listed.task_id).await.expect("status");
        assert_eq!(
            (
                listed.state,
                &listed.source,
                listed.origin,
                listed.created_at
            ),
            (s.state, &s.source, s.origin, s.created_at),
            "list and status disagree on {}",
            s.task_id
        );
    }
    let done_ids: HashSet<TaskId> = done.iter().cloned().collect();
    let completed = list_settled(
        h,
        &by_name.clone().with_state(TaskState::Completed),
        10,
        |l| ids(l) == done_ids,
    )
    .await;
    assert_eq!(ids(&completed), done_ids);
    let open_state = b.status(&open[0]).await.expect("status").state;
    let open_ids: HashSet<TaskId> = open.iter().cloned().collect();
    let waiting = list_settled(h, &by_name.clone().with_state(open_state), 10, |l| {
        ids(l) == open_ids
    })
    .await;
    assert_eq!(ids(&waiting), open_ids);
    let other = TaskType::ALL
        .into_iter()
        .find(|t| *t != h.task_type())
        .expect("another type");
    assert!(
        list_all(h, &by_name.clone().with_type(other), 10)
            .await
            .is_empty()
    );
    let first = all
        .iter()
        .filter_map(|s| s.created_at)
        .min()
        .expect("times");
    let last = all
        .iter()
        .filter_map(|s| s.created_at)
        .max()
        .expect("times");
    let window = list_settled(
        h,
        &by_name.clone().with_window(Some(first), Some(last + 1)),
        10,
        |l| ids(l) == expected,
    )
    .await;
    assert_eq!(ids(&window), expected);
    let after = list_all(h, &by_name.clone().with_window(Some(last + 1), None), 10).await;
    assert!(after.is_empty(), "{after:?}");
    let before = list_all(h, &by_name.clone().with_window(None, Some(first)), 10).await;
    assert!(before.is_empty(), "{before:?}");
    let e = b
        .list(&by_name, Some("not a token"), 10)
        .await
        .expect_err("junk token");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    for id in &open {
        b.cancel(id).await.expect("cancel");
    }
    release(held).await;
}

/// `counts` per state agree with what `list` shows, and follow a cancel and completions.
pub async fn honours_counts(h: &dyn Harness) {
    let b = h.backend();
    let name = unique("counts");
    let by_name = ListFilter::all().with_name(&name);
    let count = |counts: &[(TaskState, u64)], state: TaskState| -> u64 {
        counts
            .iter()
            .filter(|(s, _)| *s == state)
            .map(|(_, n)| n)
            .sum()
    };
    let (ids, held) = open_tasks(h, &name, 0..3).await;
    // What `counts` calls the state `status` reports (an engine may count two as one).
    let counted = |state: TaskState| b.descriptor().counted_as(state);
    let open_state = b.status(&ids[0]).await.expect("status").state;
    let counts = counts_settled(h, &by_name, |c| count(c, counted(open_state)) == 3).await;
    assert_eq!(count(&counts, counted(open_state)), 3, "{counts:?}");
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 3, "{counts:?}");
    assert!(b.cancel(&ids[0]).await.expect("cancel").is_cancelled());
    // The others end: run by a worker where they wait for one, cancelled where held.
    let ended = if held.is_none() {
        let w = serve(h, &name, Behavior::Echo).await;
        for id in &ids[1..] {
            wait_finished(&b, id, h.pickup_timeout()).await;
        }
        stop(w).await;
        TaskState::Completed
    } else {
        for id in &ids[1..] {
            assert!(b.cancel(id).await.expect("cancel").is_cancelled());
            wait_finished(&b, id, h.pickup_timeout()).await;
        }
        release(held).await;
        TaskState::Cancelled
    };
    let (completed, cancelled) = if ended == TaskState::Completed {
        (2, 1)
    } else {
        (0, 3)
    };
    let counts = counts_settled(h, &by_name, |c| {
        count(c, TaskState::Completed) == completed
            && count(c, TaskState::Cancelled) == cancelled
            && count(c, counted(open_state)) == 0
            && c.iter().map(|(_, n)| n).sum::<u64>() == 3
    })
    .await;
    assert_eq!(
        count(&counts, TaskState::Completed),
        completed,
        "{counts:?}"
    );
    assert_eq!(
        count(&counts, TaskState::Cancelled),
        cancelled,
        "{counts:?}"
    );
    let listed = list_all(h, &by_name, 10).await;
    for state in [
        TaskState::Completed,
        TaskState::Cancelled,
        counted(open_state),
    ] {
        let in_list = listed.iter().filter(|s| counted(s.state) == state).count() as u64;
        assert_eq!(
            count(&counts, state),
            in_list,
            "{state}: {counts:?} vs {listed:#?}"
        );
    }
    let other = TaskType::ALL
        .into_iter()
        .find(|t| *t != h.task_type())
        .expect("another type");
    let none = b
        .counts(&by_name.clone().with_type(other))
        .await
        .expect("counts");
    assert_eq!(none.iter().map(|(_, n)| n).sum::<u64>(), 0, "{none:?}");
}

/// An undeclared `list` or `counts`: the backend itself answers `Unsupported`.
pub async fn raw_list(h: &dyn Harness) {
    let e = h
        .backend()
        .raw()
        .list(&ListFilter::all(), None, 10)
        .await
        .expect_err("not declared");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// See [`raw_list`].
pub async fn raw_counts(h: &dyn Harness) {
    let e = h
        .backend()
        .raw()
        .counts(&ListFilter::all())
        .await
        .expect_err("not declared");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}
