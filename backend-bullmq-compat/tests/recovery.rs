//! Fault recovery against a real Redis (issue #15): Redis SIGKILLed and restarted under a
//! running worker, a black-holed Redis replaced by a real one, and 10,000 jobs with 1,000
//! concurrent cancels consumed by Node and Rust workers at once. Each prints its figures
//! (`-- --nocapture`); RELIABILITY.md records a run.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend_bullmq_compat::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator_core::{Backend, CancelOutcome, ScheduleRequest, TaskId, TaskOptions, TaskState};
use serde_json::{Value, json};
use support::{RedisServer, unique};

type Runs = Arc<Mutex<HashMap<String, u32>>>;

fn backend(url: String) -> BullmqBackend {
    BullmqBackend::new(
        BullmqConfig::new(url).timeouts(Duration::from_secs(1), Duration::from_secs(2)),
    )
    .expect("backend")
}

fn req(queue: &str, i: usize) -> ScheduleRequest {
    ScheduleRequest::new(queue, json!({ "i": i }), TaskOptions::simple()).expect("valid")
}

/// A Rust worker on `queue` that counts the runs of each job in `runs`, taking `work` per job.
async fn counting_worker(
    b: &BullmqBackend,
    queue: &str,
    config: WorkerConfig,
    work: Duration,
    runs: &Runs,
) -> backend_bullmq_compat::TaskWorker {
    let runs = Arc::clone(runs);
    b.worker(queue, config, move |ctx: JobContext<Value>| {
        let runs = Arc::clone(&runs);
        async move {
            *runs
                .lock()
                .expect("runs")
                .entry(ctx.job_id.clone())
                .or_default() += 1;
            tokio::time::sleep(work).await;
            Ok::<_, HandlerError>(json!({ "rust": true }))
        }
    })
    .await
    .expect("worker")
}

fn job_id(id: &TaskId) -> String {
    id.native()
        .split_once(':')
        .expect("queue:job")
        .1
        .to_string()
}

/// `n` jobs on `queue` in one bulk call, every one scheduled.
async fn schedule_n(b: &BullmqBackend, queue: &str, n: usize) -> Vec<TaskId> {
    let requests: Vec<ScheduleRequest> = (0..n).map(|i| req(queue, i)).collect();
    b.schedule_bulk(requests)
        .await
        .expect("admitted")
        .into_iter()
        .map(|r| r.expect("scheduled"))
        .collect()
}

/// States of `ids`, counted (an id whose status cannot be read counts as `Unknown`).
async fn states(b: &BullmqBackend, ids: &[TaskId]) -> HashMap<TaskState, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        let state = match b.status(id).await {
            Ok(s) => s.state,
            Err(_) => TaskState::Unknown,
        };
        *counts.entry(state).or_default() += 1;
    }
    counts
}

/// Redis (AOF, fsync always) SIGKILLed while a worker has jobs in flight, restarted on the
/// same port a second later: every acknowledged job completes, none is lost; the jobs in
/// flight at the kill run again once their lock expires and the stalled check hands them
/// back (their first completion could not be recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_a_worker_loses_nothing() {
    let dir = std::env::temp_dir().join(unique("recovery-aof"));
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
    let Some(mut redis) = RedisServer::start_with(&aof) else {
        return;
    };
    let b = backend(redis.url());
    let q = unique("restart");
    let runs: Runs = Arc::default();
    let lock = Duration::from_secs(2);
    let worker = counting_worker(
        &b,
        &q,
        WorkerConfig::default()
            .concurrency(4)
            .stall_detection(lock, Duration::from_secs(1)),
        Duration::from_millis(100),
        &runs,
    )
    .await;
    let n = 200;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(b.schedule(req(&q, i)).await.expect("schedule"));
    }
    // Kill once a quarter has run, with four in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs.lock().expect("runs").len() < n / 4 {
        assert!(Instant::now() < deadline, "the worker never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.stop();
    let killed_at = Instant::now();
    let ran_before = runs.lock().expect("runs").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let restarted_at = Instant::now();
    // Every acknowledged job completes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<TaskId> = ids.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            match b.status(&id).await {
                Ok(s) if s.state == TaskState::Completed => {}
                Ok(s) => {
                    assert!(!s.state.is_finished(), "{id}: {s:?}");
                    still.push(id);
                }
                Err(e) => {
                    // LOADING while the AOF replays, then a fresh connection.
                    assert!(e.is_retryable(), "{id}: {e}");
                    still.push(id);
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} jobs never completed after the restart: {:?}",
                pending.len(),
                states(&b, &pending).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let recovered = restarted_at.elapsed();
    let runs = runs.lock().expect("runs").clone();
    assert_eq!(runs.len(), n, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, c)| **c > 1).collect();
    // Only the jobs in flight at the kill (at most the concurrency) may run twice.
    assert!(twice.len() <= 4, "ran more than once: {twice:?}");
    assert!(twice.iter().all(|(_, c)| **c == 2), "{twice:?}");
    println!(
        "FIGURES redis_restart: {n} jobs acknowledged, 0 lost; {ran_before} started before the \
         SIGKILL; {} ran twice (in flight at the kill); Redis down {:.2} s; every job completed \
         {:.2} s after the restart (lock {:?}, stalled check every 1 s)",
        twice.len(),
        (restarted_at - killed_at).as_secs_f64(),
        recovered.as_secs_f64(),
        lock,
    );
    worker.close(Duration::from_secs(5)).await.expect("close");
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}

/// A port that accepts TCP and never answers, holding every connection.
struct SilentPort {
    accept: tokio::task::JoinHandle<()>,
    held: Arc<Mutex<Vec<tokio::net::TcpStream>>>,
}

impl SilentPort {
    async fn bind(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the silent port");
        let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
        let accept = {
            let held = Arc::clone(&held);
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    held.lock().expect("held").push(s);
                }
            })
        };
        Self { accept, held }
    }

    /// Close the listener and every connection it holds.
    async fn close(self) {
        self.accept.abort();
        let _ = self.accept.await;
        self.held.lock().expect("held").clear();
    }
}

/// A Redis address that accepts TCP and never answers: scheduling and starting a worker
/// there are a typed `Timeout` within the timeouts. A running worker whose Redis is
/// replaced by such a port (killed, a silent listener on its port for 3 s, then a real Redis
/// again) keeps trying and processes new jobs once a real server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_recovers_when_a_real_redis_takes_a_silent_port() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let port = redis.port;
    redis.stop();
    let silent = SilentPort::bind(port).await;
    let b = backend(redis.url());
    let q = unique("silent");
    let runs: Runs = Arc::default();
    let t = Instant::now();
    let e = b.schedule(req(&q, 0)).await.expect_err("silent");
    let schedule_took = t.elapsed();
    assert_eq!(e.kind(), orchestrator_core::ErrorKind::Timeout, "{e}");
    assert!(
        schedule_took < Duration::from_millis(2500),
        "{schedule_took:?}"
    );
    let t = Instant::now();
    let e = b
        .worker(&q, WorkerConfig::default(), |_: JobContext<Value>| async {
            Ok::<_, HandlerError>(())
        })
        .await
        .expect_err("silent");
    let worker_took = t.elapsed();
    assert_eq!(e.kind(), orchestrator_core::ErrorKind::Timeout, "{e}");
    assert!(worker_took < Duration::from_millis(2500), "{worker_took:?}");
    silent.close().await;

    // A real Redis, a running worker, one job done.
    redis.restart();
    let worker = counting_worker(
        &b,
        &q,
        WorkerConfig::default().retry_delay(Duration::from_secs(1)),
        Duration::from_millis(1),
        &runs,
    )
    .await;
    let id = b.schedule(req(&q, 1)).await.expect("schedule");
    let s =
        orchestrator_testkit::conformance::wait_finished(&b, &id, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");

    // Redis dies; a silent listener takes its port for 3 s; then a real Redis again.
    redis.stop();
    let silent = SilentPort::bind(port).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    silent.close().await;
    redis.restart();
    let up = Instant::now();
    let id = loop {
        match b.schedule(req(&q, 2)).await {
            Ok(id) => break id,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(
                    up.elapsed() < Duration::from_secs(10),
                    "never scheduled: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let scheduled = up.elapsed();
    let s =
        orchestrator_testkit::conformance::wait_finished(&b, &id, Duration::from_secs(60)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    let completed = up.elapsed();
    // The restarted Redis had no persistence, so job ids start again at 1: count runs.
    assert_eq!(runs.lock().expect("runs").values().sum::<u32>(), 2);
    println!(
        "FIGURES silent_redis: against the silent port schedule gave Timeout after {:.3} s and \
         worker start Timeout after {:.3} s (connect timeout 1 s); a running worker (retry \
         delay 1 s) whose Redis was silent for 3 s: a job scheduled {:.3} s after the real Redis came back completed \
         {:.3} s after it came back",
        schedule_took.as_secs_f64(),
        worker_took.as_secs_f64(),
        scheduled.as_secs_f64(),
        completed.as_secs_f64(),
    );
    worker.close(Duration::from_secs(5)).await.expect("close");
}

/// 10,000 jobs consumed by a Node BullMQ worker and a Rust worker at once while 1,000 of
/// them are cancelled concurrently: a job whose cancel answered `Cancelled` never runs; every
/// other job runs exactly once (nothing stalls here: locks last 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_a_thousand_cancels_node_and_rust_workers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = Arc::new(backend(redis.url()));
    let q = unique("mixed");
    let n = 10_000;
    let ids = schedule_n(&b, &q, n).await;
    // Both workers start on a full queue, then the cancels race them.
    let Some(node) = support::node_spawn(&redis.url(), "worker.js", &[&q, "echo", "3000", "8"])
    else {
        return;
    };
    let runs: Runs = Arc::default();
    let rust = counting_worker(
        &b,
        &q,
        WorkerConfig::default().concurrency(8),
        Duration::ZERO,
        &runs,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let targets: Vec<TaskId> = ids.iter().step_by(10).cloned().collect();
    let started = Instant::now();
    let outcomes = futures::future::join_all(targets.iter().map(|id| {
        let b = Arc::clone(&b);
        async move { (id.clone(), b.cancel(id).await.expect("cancel")) }
    }))
    .await;
    let cancel_time = started.elapsed();
    let mut by_outcome: HashMap<String, usize> = HashMap::new();
    let mut cancelled = HashSet::new();
    for (id, o) in &outcomes {
        *by_outcome.entry(format!("{o:?}")).or_default() += 1;
        if *o == CancelOutcome::Cancelled {
            cancelled.insert(job_id(id));
        }
    }
    let node_out = support::node_output(node, Duration::from_secs(120)).await;
    rust.close(Duration::from_secs(5)).await.expect("close");
    let mut all_runs: HashMap<String, u32> = runs.lock().expect("runs").clone();
    let rust_runs = all_runs.values().sum::<u32>();
    let node_list = node_out["processed"].as_array().expect("processed");
    for p in node_list {
        *all_runs
            .entry(p["id"].as_str().expect("id").to_string())
            .or_default() += 1;
    }
    for id in &cancelled {
        assert!(!all_runs.contains_key(id), "cancelled job {id} ran");
    }
    for id in &ids {
        let job = job_id(id);
        if !cancelled.contains(&job) {
            assert_eq!(all_runs.get(&job), Some(&1), "job {job} runs");
        }
    }
    assert_eq!(all_runs.len(), n - cancelled.len());
    let counts = states(&b, &targets).await;
    assert_eq!(
        counts.get(&TaskState::Cancelled).copied().unwrap_or(0),
        cancelled.len(),
        "{counts:?}"
    );
    println!(
        "FIGURES mixed_cancels: {n} jobs, 1,000 cancels sent at once in {:.2} s: {by_outcome:?}; \
         runs: Rust {rust_runs}, Node {}; cancelled that ran: 0; others run exactly once: {}",
        cancel_time.as_secs_f64(),
        node_list.len(),
        n - cancelled.len(),
    );
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_does_not_keep_what_it_processed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
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
    orchestrator_testkit::conformance::wait_finished(&b, &ids[n - 1], Duration::from_secs(120))
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
