//! What a bullmq task id names, and what reading it costs: O(log N) Redis work at any
//! depth, no writes for unknown queues or jobs, no ids that name a queue's own keys.

mod support;

use orchestrator_core::{
    Backend, CancelOutcome, ErrorKind, ScheduleRequest, TaskOptions, TaskState,
};
use serde_json::json;
use support::{RedisServer, unique};

async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn")
}

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
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .expect("resetstat");
    // The first and the last job added: BullMQ's list scan is worst at one end.
    for id in [&ids[0], &ids[99_999]] {
        for _ in 0..50 {
            let s = b.status(id).await.expect("status");
            assert_eq!(s.state, TaskState::Pending, "{s:?}");
        }
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("info");
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_eval:"))
        .unwrap_or_else(|| panic!("no EVAL ran: {stats}"));
    let per_call: f64 = line
        .split(',')
        .find_map(|f| f.strip_prefix("usec_per_call="))
        .and_then(|v| v.parse().ok())
        .expect("usec_per_call");
    println!("status at 100,000 waiting: {per_call} µs of Redis time per call ({line})");
    assert!(per_call < 1000.0, "{line}");
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
