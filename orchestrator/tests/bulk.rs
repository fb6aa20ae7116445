//! `schedule_bulk` across backends when the engines fail part of the batch: one result per
//! task, and every id written comes back.

use std::sync::Arc;
use std::time::Duration;

use orchestrator::{
    ErrorKind, IdConflictPolicy, Orchestrator, TaskOptions, TaskType, TemporalOptions,
};
use orchestrator_testkit::engines::{RedisServer, TemporalServer, unique};
use serde_json::{Value, json};

fn bullmq(url: String) -> Arc<orchestrator::bullmq::BullmqBackend> {
    Arc::new(
        orchestrator::bullmq::BullmqBackend::new(
            orchestrator::bullmq::BullmqConfig::new(url)
                .timeouts(Duration::from_secs(2), Duration::from_secs(2)),
        )
        .expect("bullmq"),
    )
}

/// A duplicate workflow id under the `FAIL` policy fails that task alone; the SIMPLE and
/// COMPLEX tasks around it are scheduled and their ids returned.
async fn a_duplicate_workflow_id_fails_only_its_task() {
    let redis = RedisServer::start();
    let temporal = TemporalServer::start().await;
    let orch = Orchestrator::builder()
        .backend(bullmq(redis.url()))
        .backend(Arc::new(
            orchestrator::temporal::TemporalBackend::new(
                orchestrator::temporal::TemporalConfig::new(temporal.url()),
            )
            .expect("temporal"),
        ))
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orchestrator");
    let wf = unique("dup");
    let complex = |id: &str| {
        TaskOptions::complex(
            TemporalOptions::new("neverRuns", "bulk-test")
                .workflow_id(id)
                .id_conflict_policy(IdConflictPolicy::Fail),
        )
    };
    let tasks: Vec<(String, Value, TaskOptions)> = vec![
        ("emails".into(), json!({"i": 0}), TaskOptions::simple()),
        ("wf".into(), json!({}), complex(&wf)),
        ("emails".into(), json!({"i": 1}), TaskOptions::simple()),
        ("wf".into(), json!({}), complex(&wf)),
        ("wf".into(), json!({}), complex(&unique("other"))),
    ];
    let results = orch.schedule_bulk(tasks).await.expect("admitted");
    assert_eq!(results.len(), 5);
    // The tasks of a batch run concurrently: one of the two duplicates wins.
    let (one, other) = (&results[1], &results[3]);
    let lost = match (one, other) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        _ => panic!("exactly one duplicate must be scheduled: {one:?} {other:?}"),
    };
    assert_eq!(lost.kind(), ErrorKind::AlreadyExists, "{lost}");
    for r in results.iter().filter(|r| r.is_ok()) {
        let id = r.as_ref().expect("ok");
        let s = orch.get_task_status(id).await.expect("written");
        assert!(!s.state.is_finished(), "{s:?}");
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
}

/// Redis killed while a 5,000-task batch is being written: the tasks acknowledged before
/// come back with ids and are in Redis (AOF, fsync always, read by a new server); the
/// chunks after the failure are not sent and fail `Unavailable`; the tasks of the other
/// backend in the batch are scheduled.
async fn redis_killed_mid_batch_returns_every_written_id() {
    let dir = std::env::temp_dir().join(unique("bulk-aof"));
    std::fs::create_dir_all(&dir).expect("dir");
    let dir_arg = dir.to_string_lossy().into_owned();
    let aof = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir_arg.as_str(),
    ];
    let mut redis = RedisServer::start_with(&aof);
    let orch = Orchestrator::builder()
        .backend(bullmq(redis.url()))
        .backend(orchestrator::testkit::MemoryBackend::temporal().shared())
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "memory-temporal")
        .build()
        .expect("orchestrator");
    let q = unique("bulk");
    let mut tasks: Vec<(String, Value, TaskOptions)> = (0..5000)
        .map(|i| (q.clone(), json!({"i": i}), TaskOptions::simple()))
        .collect();
    tasks.push((
        "wf".into(),
        json!({}),
        TaskOptions::complex(TemporalOptions::new("wf", "q")),
    ));
    let mut conn = redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let bulk = {
        let orch = orch.clone();
        tokio::spawn(async move { orch.schedule_bulk(tasks).await })
    };
    // Kill Redis once the first chunk is in.
    let wait_key = format!("bull:{q}:wait");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let len: u64 = redis::cmd("LLEN")
            .arg(&wait_key)
            .query_async(&mut conn)
            .await
            .expect("llen");
        if len >= 1000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first chunk never landed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    redis.stop();
    let results = bulk.await.expect("join").expect("admitted");
    assert_eq!(results.len(), 5001);
    assert!(
        results[5000].is_ok(),
        "the memory-temporal task: {:?}",
        results[5000]
    );
    let written: Vec<String> = results[..5000]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|id| id.native().split_once(':').expect("native").1.to_string())
        .collect();
    let failed: Vec<&orchestrator::Error> = results[..5000]
        .iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert!(written.len() >= 1000, "{} written", written.len());
    assert!(!failed.is_empty(), "Redis died before the batch ended");
    for e in &failed {
        assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{e}"
        );
    }
    // What Redis acknowledged survived; what failed was (apart from replies lost in flight,
    // at most one chunk) never written.
    let again = RedisServer::start_with(&aof);
    let mut conn = redis::Client::open(again.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    // The new server answers LOADING until it has replayed the AOF.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let in_redis: u64 = loop {
        match redis::cmd("LLEN")
            .arg(&wait_key)
            .query_async(&mut conn)
            .await
        {
            Ok(n) => break n,
            Err(e) if e.to_string().contains("oading") => {
                assert!(tokio::time::Instant::now() < deadline, "AOF never loaded");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("llen: {e}"),
        }
    };
    for job in &written {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("bull:{q}:{job}"))
            .query_async(&mut conn)
            .await
            .expect("exists");
        assert!(exists, "job {job} was acknowledged but is not in Redis");
    }
    let written = u64::try_from(written.len()).expect("len");
    assert!(
        in_redis >= written,
        "{in_redis} in Redis, {written} acknowledged"
    );
    assert!(
        in_redis - written <= 1000,
        "{in_redis} in Redis, {written} acknowledged"
    );
    let not_sent = failed
        .iter()
        .filter(|e| matches!(e, orchestrator::Error::NotSent { .. }))
        .count();
    assert!(
        not_sent >= 1000,
        "whole chunks after the failure are not sent: {not_sent}"
    );
    println!(
        "5,000 tasks, Redis killed mid-batch: {written} acknowledged, {} failed ({not_sent} not sent), {in_redis} in Redis after restart",
        failed.len()
    );
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

orchestrator_testkit::engine_tests! {
    [Redis, Temporal] async: a_duplicate_workflow_id_fails_only_its_task, redis_killed_mid_batch_returns_every_written_id;
}
