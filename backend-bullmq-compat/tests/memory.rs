//! A long-running worker's memory, measured alone in its own test binary: resident memory
//! is the whole process's, so no other test may run beside it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use backend_bullmq_compat::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator_core::{ScheduleRequest, TaskId, TaskOptions};
use orchestrator_testkit::Checked;
use serde_json::{Value, json};
use support::{RedisServer, unique};

fn backend(url: String) -> BullmqBackend {
    BullmqBackend::new(
        BullmqConfig::new(url).timeouts(Duration::from_secs(1), Duration::from_secs(2)),
    )
    .expect("backend")
}

async fn schedule_n(b: &BullmqBackend, queue: &str, n: usize) -> Vec<TaskId> {
    let requests: Vec<ScheduleRequest> = (0..n)
        .map(|i| {
            ScheduleRequest::new(queue, json!({ "i": i }), TaskOptions::simple()).expect("valid")
        })
        .collect();
    b.checked()
        .schedule_bulk(requests)
        .await
        .expect("admitted")
        .into_iter()
        .map(|r| r.expect("scheduled"))
        .collect()
}

/// Resident memory of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// A long-running worker's memory does not grow with the jobs it processed: the `bullmq`
/// crate reports every job (with its result) on an unbounded event channel, which the
/// worker must drain. 2,000 jobs returning 200 KB each would keep 400 MB otherwise.
async fn a_worker_does_not_keep_what_it_processed() {
    let redis = RedisServer::start();
    let b = backend(redis.url());
    let q = unique("memory");
    let n = 2_000;
    let ids = schedule_n(&b, &q, n).await;
    let big = Arc::new("x".repeat(200 * 1024));
    let before = rss_bytes();
    let worker = {
        let big = Arc::clone(&big);
        b.worker(
            &q,
            WorkerConfig::default().concurrency(8),
            move |_: JobContext<Value>| {
                let big = Arc::clone(&big);
                async move { Ok::<_, HandlerError>(json!({ "blob": *big })) }
            },
        )
        .await
        .expect("worker")
    };
    orchestrator_testkit::conformance::wait_finished(
        &b.checked(),
        &ids[n - 1],
        Duration::from_secs(120),
    )
    .await;
    // Let the last completions land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "FIGURES worker_memory: {n} jobs of 200 KB results: resident memory grew {:.1} MB",
        grown as f64 / 1e6
    );
    assert!(grown < 150_000_000, "grew {grown} bytes");
    worker.close(Duration::from_secs(5)).await.expect("close");
    // Redis keeps the results; drop them from its memory before the next test.
    let mut conn = support::redis_conn(&redis).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("flush");
}

orchestrator_testkit::engine_tests! {
    [Redis] async: a_worker_does_not_keep_what_it_processed;
}
