//! Tracking with real engines: a COMPLEX task with a tracking queue starts a Temporal
//! workflow (run by the Python worker) and a tracking job on a BullMQ queue, which the
//! tracker completes or fails with the workflow's outcome, as Node `QueueEvents` see it.
//! One Redis, one Temporal dev server and one Python worker serve every case.

use std::sync::Arc;
use std::time::Duration;

use orchestrator::bullmq::{BullmqBackend, BullmqConfig};
use orchestrator::temporal::{TemporalBackend, TemporalConfig};
use orchestrator::track::{TrackerConfig, track};
use orchestrator::{
    ErrorKind, Orchestrator, TaskId, TaskOptions, TaskState, TaskType, TemporalOptions, WaitOutcome,
};
use orchestrator_testkit::engines::{
    RedisServer, TemporalServer, node_output, node_spawn, python_worker, unique,
};
use serde_json::{Value, json};

struct Engines {
    redis: RedisServer,
    temporal: TemporalServer,
    _python: tokio::process::Child,
    queue: String,
    bullmq: BullmqBackend,
    orch: Orchestrator,
}

/// Redis, Temporal and a Python worker serving `py_echo`, `py_sleep`, `py_fail`.
async fn engines() -> Engines {
    let redis = RedisServer::start();
    let temporal = TemporalServer::start().await;
    let queue = unique("tracked");
    let worker = python_worker(&temporal, &queue, 300).await;
    let bullmq = BullmqBackend::new(BullmqConfig::new(redis.url())).expect("bullmq");
    let orch = Orchestrator::builder()
        .backend(Arc::new(bullmq.clone()))
        .backend(Arc::new(
            TemporalBackend::new(TemporalConfig::new(temporal.url())).expect("temporal"),
        ))
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orchestrator");
    Engines {
        redis,
        temporal,
        _python: worker,
        queue,
        bullmq,
        orch,
    }
}

fn tracked(workflow: &str, queue: &str, args: Vec<Value>, tracking: &str) -> TaskOptions {
    TaskOptions::complex(
        TemporalOptions::new(workflow, queue)
            .args(args)
            .tracking_queue(tracking),
    )
}

async fn tracking_id(orch: &Orchestrator, workflow: &TaskId) -> TaskId {
    orch.get_task_status(workflow)
        .await
        .expect("status")
        .tracking_task_id
        .expect("the workflow's status names its tracking task")
}

async fn tracking_jobs_mirror_their_workflows() {
    let e = engines().await;
    let (orch, q) = (&e.orch, e.queue.as_str());

    // --- A workflow that completes and one that fails, seen by Node QueueEvents.
    let trk = unique("trk");
    let events = node_spawn(&e.redis.url(), "events.js", &[&trk, "2"]);
    tokio::time::sleep(Duration::from_millis(700)).await; // let QueueEvents connect
    let ok = orch
        .schedule_complex_workflow(
            "echo",
            json!({"projectId": "p1"}),
            tracked("py_echo", q, vec![json!({"k": 1}), json!(7)], &trk),
        )
        .await
        .expect("scheduled");
    let bad = orch
        .schedule_complex_workflow(
            "fail",
            json!({}),
            tracked("py_fail", q, vec![json!("intentional failure")], &trk),
        )
        .await
        .expect("scheduled");
    let (ok_track, bad_track) = (tracking_id(orch, &ok).await, tracking_id(orch, &bad).await);
    let tracker = track(
        orch,
        &e.bullmq,
        &trk,
        TrackerConfig {
            hold: Duration::from_millis(500),
            recheck: Duration::from_millis(300),
            concurrency: 4,
        },
    )
    .await
    .expect("tracker");
    let done = orch
        .wait(&ok_track, Duration::from_secs(30))
        .await
        .expect("wait");
    let WaitOutcome::Finished(s) = done else {
        panic!("tracking job still open: {done:?}");
    };
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    let workflow_result = orch.get_task_status(&ok).await.expect("status").result;
    assert_eq!(s.result, workflow_result);
    let failed = orch
        .wait(&bad_track, Duration::from_secs(30))
        .await
        .expect("wait")
        .into_status();
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    let reason = failed.error.unwrap_or_default();
    assert!(
        reason.contains("FAILED") && reason.contains("intentional failure"),
        "{reason}"
    );

    let v = node_output(events, Duration::from_secs(25)).await;
    assert!(v.get("timeout").is_none(), "events.js timed out: {v}");
    let job = |id: &TaskId| json!(id.native().split_once(':').expect("native").1);
    let of = |event: &str, id: &TaskId| {
        v["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|ev| ev["event"] == event && ev["jobId"] == job(id))
            .cloned()
            .collect::<Vec<_>>()
    };
    let completed = of("completed", &ok_track);
    assert_eq!(completed.len(), 1, "{v}");
    let returned = match &completed[0]["returnvalue"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    assert_eq!(Some(returned), workflow_result, "{v}");
    assert_eq!(of("failed", &bad_track).len(), 1, "{v}");
    tracker.close(Duration::from_secs(5)).await.expect("close");

    // --- 100 open tracked workflows: the tracker holds no slot or connection per workflow.
    // With one slot, a tracker that held its slot until the workflow closed would keep one
    // job active and the other 99 waiting; this one parks each check's job as delayed, so
    // nearly all of them are seen delayed at once while their workflows still run.
    let trk = unique("trk100");
    let mut ids = Vec::new();
    for i in 0..100 {
        let id = orch
            .schedule_complex_workflow(
                "sleepy",
                json!({"i": i}),
                tracked("py_sleep", q, vec![json!(12)], &trk),
            )
            .await
            .expect("scheduled");
        ids.push(tracking_id(orch, &id).await);
    }
    let mut conn = redis::Client::open(e.redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let clients = |info: String| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let before: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut conn)
        .await
        .expect("info");
    let tracker = track(
        orch,
        &e.bullmq,
        &trk,
        TrackerConfig {
            hold: Duration::from_millis(20),
            // Longer than one pass over the 100 jobs, shorter than the workflows.
            recheck: Duration::from_secs(8),
            concurrency: 1,
        },
    )
    .await
    .expect("tracker");
    let (mut max_active, mut max_delayed, mut max_clients) = (0u64, 0u64, 0u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(11);
    while tokio::time::Instant::now() < deadline && max_delayed < 75 {
        let active: u64 = redis::cmd("LLEN")
            .arg(format!("bull:{trk}:active"))
            .query_async(&mut conn)
            .await
            .expect("llen");
        let delayed: u64 = redis::cmd("ZCARD")
            .arg(format!("bull:{trk}:delayed"))
            .query_async(&mut conn)
            .await
            .expect("zcard");
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut conn)
            .await
            .expect("info");
        max_active = max_active.max(active);
        max_delayed = max_delayed.max(delayed);
        max_clients = max_clients.max(clients(info));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let added_clients = max_clients.saturating_sub(clients(before));
    println!(
        "100 open tracked workflows, one tracker slot: at most {max_active} tracking job active, \
         {max_delayed} delayed at once, {added_clients} Redis connections added by the tracker"
    );
    assert!(max_active <= 1, "{max_active} tracking jobs active at once");
    // A tracker that held its slot would show none delayed; 75 leaves room for a slow pass.
    assert!(
        max_delayed >= 75,
        "only {max_delayed} of 100 tracking jobs were ever delayed at once: a check holds its slot"
    );
    assert!(added_clients <= 8, "{added_clients} connections added");
    for id in &ids {
        let s = orch
            .wait(id, Duration::from_secs(60))
            .await
            .expect("wait")
            .into_status();
        assert_eq!(s.state, TaskState::Completed, "{s:?}");
        assert_eq!(s.result, Some(json!({"slept": 12.0})), "{s:?}");
    }
    tracker.close(Duration::from_secs(5)).await.expect("close");

    a_missing_tracking_route_fails_before_the_workflow_starts(&e).await;
}

/// A tracking queue without a SIMPLE route fails before any workflow starts.
async fn a_missing_tracking_route_fails_before_the_workflow_starts(e: &Engines) {
    let temporal_only = Orchestrator::builder()
        .backend(Arc::new(
            TemporalBackend::new(TemporalConfig::new(e.temporal.url())).expect("temporal"),
        ))
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orchestrator");
    let wf = unique("untracked");
    let options = |id: &str| {
        TaskOptions::complex(
            TemporalOptions::new("py_sleep", &e.queue)
                .workflow_id(id)
                .args(vec![json!(1)])
                .tracking_queue("trk"),
        )
    };
    let err = temporal_only
        .schedule_complex_workflow("w", json!({}), options(&wf))
        .await
        .expect_err("no SIMPLE route");
    assert_eq!(err.kind(), ErrorKind::NoBackend, "{err}");
    // Nothing started: the same workflow id starts now under the FAIL policy.
    e.orch
        .schedule_complex_workflow("w", json!({}), options(&wf))
        .await
        .expect("the workflow id was never used");
}

orchestrator_testkit::engine_tests! {
    [Redis, Temporal, Node, Python] async: tracking_jobs_mirror_their_workflows;
}
