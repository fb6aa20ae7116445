//! What a bullmq task id names, and what reading it costs: O(log N) Redis work at any
//! depth, no writes for unknown queues or jobs, no ids that name a queue's own keys.

mod support;

use orchestrator_core::{
    Backend, CancelOutcome, ErrorKind, ScheduleRequest, TaskOptions, TaskState,
};
use serde_json::json;
use support::{RedisServer, commandstats_of, redis_conn, unique, usec_per_call};

async fn dbsize(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("dbsize")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_costs_the_same_at_100k_jobs_waiting() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
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
        ids.extend(b.schedule_bulk(requests).await.expect("bulk"));
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
    let per_call = usec_per_call(&stats, "eval");
    println!("status at 100,000 waiting: {per_call} µs of Redis time per call");
    assert!(per_call < 1000.0, "{stats}");
    for scan in ["cmdstat_lrange:", "cmdstat_lpos:"] {
        assert!(
            !stats.lines().any(|l| l.starts_with(scan)),
            "a status call scanned a list: {stats}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_cancels_of_unknown_jobs_write_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = support::backend(&redis);
    let mut conn = redis_conn(&redis).await;
    // One real job, so the server is not trivially empty.
    let q = unique("real");
    b.schedule(ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple()).expect("valid"))
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_payload_is_not_read_by_status() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = support::backend(&redis);
    let q = unique("big");
    let big = "x".repeat(10 * 1024 * 1024);
    let id = b
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
    let per_call = usec_per_call(&stats, "eval");
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
        &b,
        &id,
        std::time::Duration::from_secs(20),
    )
    .await;
    w.close(std::time::Duration::from_secs(5))
        .await
        .expect("close");
    assert_eq!(s.result, Some(json!(10 * 1024 * 1024)), "{s:?}");
}
