//! What a bullmq task id names, and what reading it costs: O(log N) Redis work at any
//! depth, no writes for unknown queues or jobs, no ids that name a queue's own keys.

mod support;

use backend_bullmq_compat::spec::JobOptionsExt;
use orchestrator_testkit::Checked;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_bullmq_compat::{HandlerError, JobContext, WorkerConfig};
use orchestrator_core::raw::Backend;
use orchestrator_core::{CancelOutcome, ErrorKind, ScheduleRequest, TaskOptions, TaskState};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::json;
use support::{RedisServer, commandstats_of, redis_conn, unique, usec_per_call};

async fn dbsize(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("dbsize")
}

async fn status_costs_the_same_at_100k_jobs_waiting() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let q = unique("deep");
    let mut ids = Vec::new();
    for chunk in 0..100 {
        let requests: Vec<ScheduleRequest> = (0..1000)
            .map(|i| {
                ScheduleRequest::new(
                    q.as_str(),
                    json!({"i": chunk * 1000 + i}),
                    TaskOptions::simple(),
                )
                .expect("valid")
            })
            .collect();
        ids.extend(
            b.checked()
                .schedule_bulk(requests)
                .await
                .expect("bulk")
                .into_iter()
                .map(|r| r.expect("scheduled")),
        );
    }
    let mut conn = redis_conn(&redis).await;
    let depth: u64 = redis::cmd("LLEN")
        .arg(format!("bull:{q}:wait"))
        .query_async(&mut conn)
        .await
        .expect("llen");
    assert_eq!(depth, 100_000);
    // The first and the last job added: BullMQ's list scan is worst at one end.
    let stats = commandstats_of(&mut conn, async {
        for id in [&ids[0], &ids[99_999]] {
            for _ in 0..50 {
                let s = b.status(id).await.expect("status");
                assert_eq!(s.state, TaskState::Pending, "{s:?}");
            }
        }
    })
    .await;
    let per_call = usec_per_call(&stats, "evalsha");
    println!("status at 100,000 waiting: {per_call} µs of Redis time per call");
    assert!(per_call < 1000.0, "{stats}");
    for scan in ["cmdstat_lrange:", "cmdstat_lpos:"] {
        assert!(
            !stats.lines().any(|l| l.starts_with(scan)),
            "a status call scanned a list: {stats}"
        );
    }
}

async fn reads_and_cancels_of_unknown_jobs_write_nothing() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let mut conn = redis_conn(&redis).await;
    // One real job, so the server is not trivially empty.
    let q = unique("real");
    b.checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple()).expect("valid"),
        )
        .await
        .expect("schedule");
    let before = dbsize(&mut conn).await;
    for id in ["bullmq:typo:1", &format!("bullmq:{q}:424242")] {
        let id: orchestrator_core::TaskId = id.parse().expect("id");
        let e = b.status(&id).await.expect_err("unknown");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{id}: {e}");
        assert_eq!(
            b.cancel(&id).await.expect("cancel"),
            CancelOutcome::NotFound
        );
    }
    assert_eq!(dbsize(&mut conn).await, before, "a read wrote keys");
    // Ids naming a queue's own keys are not job ids.
    for key in ["meta", "wait", "events", "completed"] {
        let id: orchestrator_core::TaskId = format!("bullmq:{q}:{key}").parse().expect("id");
        let e = b.status(&id).await.expect_err("a key name");
        assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{id}: {e}");
    }
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple().job_id("meta"))
                .expect("valid request"),
        )
        .await
        .expect_err("meta is a key name");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// A 10 MB payload is stored and runs, and reading the task's status does not move it: the
/// script reads the fields a status needs, never the job's data.
async fn a_10_mb_payload_is_not_read_by_status() {
    let redis = RedisServer::start();
    // Above the 1 MiB default: this deployment raised max_payload_bytes.
    let b = backend_bullmq_compat::BullmqBackend::new(
        backend_bullmq_compat::BullmqConfig::new(redis.url()).max_payload_bytes(16 << 20),
    )
    .expect("backend");
    let q = unique("big");
    let big = "x".repeat(10 * 1024 * 1024);
    let id = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({ "blob": big }), TaskOptions::simple())
                .expect("valid"),
        )
        .await
        .expect("a 10 MB payload is accepted");
    let mut conn = redis_conn(&redis).await;
    let stats = commandstats_of(&mut conn, async {
        for _ in 0..20 {
            let s = b.status(&id).await.expect("status");
            assert_eq!(s.state, TaskState::Pending, "{s:?}");
        }
    })
    .await;
    let per_call = usec_per_call(&stats, "evalsha");
    println!("status of a 10 MB job: {per_call} µs of Redis time per call");
    assert!(per_call < 200.0, "status read the payload: {stats}");
    // The worker gets it whole.
    let w = b
        .worker(
            &q,
            backend_bullmq_compat::WorkerConfig::default(),
            |ctx: backend_bullmq_compat::JobContext<serde_json::Value>| async move {
                Ok::<_, backend_bullmq_compat::HandlerError>(json!(
                    ctx.data["blob"].as_str().map(str::len)
                ))
            },
        )
        .await
        .expect("worker");
    let s = orchestrator_testkit::conformance::wait_finished(
        &b.checked(),
        &id,
        std::time::Duration::from_secs(20),
    )
    .await;
    w.close(std::time::Duration::from_secs(5))
        .await
        .expect("close");
    assert_eq!(s.result, Some(json!(10 * 1024 * 1024)), "{s:?}");
}

/// 1,000 cancels racing a worker that completes jobs as fast as it can: a job reported
/// cancelled never ran, and a job that ran is never reported cancelled, its result kept.
async fn cancel_racing_completion_never_loses_a_result() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let q = unique("race");
    let ran: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen = Arc::clone(&ran);
    let worker = b
        .worker(
            &q,
            WorkerConfig::default().concurrency(4),
            move |ctx: JobContext<serde_json::Value>| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().expect("lock").insert(ctx.job_id.clone());
                    Ok::<_, HandlerError>(json!({"job": ctx.job_id}))
                }
            },
        )
        .await
        .expect("worker");
    let mut outcomes = Vec::new();
    let handle = b.checked();
    for _ in 0..20 {
        let ids = futures::future::join_all((0..50).map(|_| {
            handle.schedule(
                ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple()).expect("valid"),
            )
        }))
        .await;
        let ids: Vec<_> = ids.into_iter().map(|r| r.expect("schedule")).collect();
        let cancels = futures::future::join_all(ids.iter().map(|id| b.cancel(id))).await;
        outcomes.extend(
            ids.into_iter()
                .zip(cancels.into_iter().map(|c| c.expect("cancel"))),
        );
    }
    let (mut cancelled, mut finished, mut running) = (0, 0, 0);
    for (id, outcome) in &outcomes {
        let job = id.native().split_once(':').expect("native").1;
        match outcome {
            CancelOutcome::Cancelled => {
                cancelled += 1;
                let s = b.status(id).await.expect("a cancel is remembered");
                assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
            }
            CancelOutcome::NotCancellableFinished | CancelOutcome::NotCancellableRunning => {
                if *outcome == CancelOutcome::NotCancellableFinished {
                    finished += 1;
                } else {
                    running += 1;
                }
                let s = wait_finished(&b.checked(), id, Duration::from_secs(10)).await;
                assert_eq!(s.state, TaskState::Completed, "{s:?}");
                assert_eq!(s.result, Some(json!({"job": job})), "{s:?}");
            }
            other => panic!("{id}: unexpected {other:?}"),
        }
    }
    worker.close(Duration::from_secs(5)).await.expect("close");
    let ran = ran.lock().expect("lock");
    for (id, outcome) in &outcomes {
        let job = id.native().split_once(':').expect("native").1;
        assert_eq!(
            ran.contains(job),
            *outcome != CancelOutcome::Cancelled,
            "{id}: {outcome:?}, ran: {}",
            ran.contains(job)
        );
    }
    println!("1,000 races: {cancelled} cancelled, {finished} finished first, {running} running");
    assert!(
        cancelled > 0 && finished + running > 0,
        "the race was not exercised"
    );
}

/// Job data over `max_payload_bytes` (1 MiB by default) is refused before any I/O, the
/// limit in the message, nothing reaching Redis; data of exactly the limit is stored and a
/// Node BullMQ worker processes it whole.
async fn payloads_at_and_over_the_limit() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let mut conn = redis_conn(&redis).await;
    let before = dbsize(&mut conn).await;
    let limit = backend_bullmq_compat::spec::DEFAULT_MAX_PAYLOAD;
    // `{"blob":"…"}` is 11 bytes around the string.
    let blob = |size: usize| json!({"blob": "x".repeat(size - 11)});
    let q = unique("limit");
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), blob(limit + 1), TaskOptions::simple())
                .expect("valid"),
        )
        .await
        .expect_err("over the limit");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("1048576"), "{e}");
    assert_eq!(dbsize(&mut conn).await, before);

    let id = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), blob(limit), TaskOptions::simple()).expect("valid"),
        )
        .await
        .expect("at the limit");
    let out = support::node(&redis.url(), "worker.js", &[&q, "echo", "1000"]).await;
    let processed = out["processed"].as_array().expect("processed");
    assert_eq!(processed.len(), 1, "{}", processed.len());
    assert_eq!(processed[0]["data"], blob(limit));
    let s = b.status(&id).await.expect("status");
    assert_eq!(
        s.state,
        orchestrator_core::TaskState::Completed,
        "{:?}",
        s.state
    );
    assert_eq!(s.result.expect("result")["data"], blob(limit));
}

orchestrator_testkit::engine_tests! {
    [Redis, Node] async: status_costs_the_same_at_100k_jobs_waiting, reads_and_cancels_of_unknown_jobs_write_nothing, a_10_mb_payload_is_not_read_by_status, cancel_racing_completion_never_loses_a_result, payloads_at_and_over_the_limit;
}
