//! One benchmark contender per process, so scripts/bench.py can alternate contenders and
//! read each one's peak RSS:
//!
//! ```text
//! orchestrator-bench schedule orch|direct  REDIS_URL QUEUE JOBS CONCURRENCY
//! orchestrator-bench bulk     orch|direct  REDIS_URL QUEUE JOBS BATCH
//! orchestrator-bench worker   orch|direct  REDIS_URL QUEUE JOBS CONCURRENCY
//! ```
//!
//! Each prints one JSON line: `{"jobs": N, "seconds": s, "rate": jobs_per_s}`. The `worker`
//! contender expects the queue to be filled already and measures until all jobs completed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backend_bullmq_compat::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use futures::StreamExt;
use orchestrator_core::{Backend, Orchestrator, ScheduleRequest, TaskOptions, TaskType};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn payload(i: usize) -> Value {
    json!({"userId": i, "email": "user@example.com", "template": "welcome"})
}

async fn schedule(mode: &str, url: &str, queue: &str, jobs: usize, conc: usize) -> Res<f64> {
    let t;
    match mode {
        "orch" => {
            let backend = BullmqBackend::new(BullmqConfig::new(url))?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend))
                .route(TaskType::Simple, "bullmq")
                .build()?;
            orch.schedule_simple_task(queue, payload(0), TaskOptions::simple())
                .await?; // connect
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(|i| {
                    let orch = orch.clone();
                    async move {
                        orch.schedule_task(queue, payload(i), TaskOptions::simple())
                            .await
                    }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
        _ => {
            let q = bullmq::Queue::with_options(
                queue,
                bullmq::QueueOptions::new()
                    .connection(bullmq::options::RedisConnectionOptions::new().url(url)),
            )
            .await?;
            q.add(queue, payload(0)).await?;
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(|i| {
                    let q = q.clone();
                    async move { q.add(queue, payload(i)).await }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn bulk(mode: &str, url: &str, queue: &str, jobs: usize, batch: usize) -> Res<f64> {
    let t;
    match mode {
        "orch" => {
            let backend = BullmqBackend::new(BullmqConfig::new(url))?;
            backend
                .schedule(ScheduleRequest::new(
                    queue,
                    payload(0),
                    TaskOptions::simple(),
                )?)
                .await?;
            t = Instant::now();
            for start in (0..jobs).step_by(batch) {
                let reqs = (start..(start + batch).min(jobs))
                    .map(|i| ScheduleRequest::new(queue, payload(i), TaskOptions::simple()))
                    .collect::<Result<Vec<_>, _>>()?;
                backend.schedule_bulk(reqs).await?;
            }
        }
        _ => {
            let q = bullmq::Queue::with_options(
                queue,
                bullmq::QueueOptions::new()
                    .connection(bullmq::options::RedisConnectionOptions::new().url(url)),
            )
            .await?;
            q.add(queue, payload(0)).await?;
            t = Instant::now();
            for start in (0..jobs).step_by(batch) {
                let batch: Vec<bullmq::BulkJob> = (start..(start + batch).min(jobs))
                    .map(|i| bullmq::BulkJob::new(queue, payload(i)))
                    .collect();
                q.add_bulk(batch).await?;
            }
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn worker(mode: &str, url: &str, queue: &str, jobs: usize, conc: usize) -> Res<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(tokio::sync::Notify::new());
    let t = Instant::now();
    let d = done.clone();
    let a = all.clone();
    let finish = move || {
        if d.fetch_add(1, Ordering::Relaxed) + 1 == jobs {
            a.notify_one();
        }
    };
    match mode {
        "orch" => {
            let backend = BullmqBackend::new(BullmqConfig::new(url))?;
            let w = backend
                .worker(
                    queue,
                    WorkerConfig::default().concurrency(conc),
                    move |_ctx: JobContext<Value>| {
                        finish();
                        async { Ok::<_, HandlerError>(Value::Null) }
                    },
                )
                .await?;
            all.notified().await;
            let elapsed = t.elapsed().as_secs_f64();
            w.close(Duration::from_secs(5)).await?;
            Ok(elapsed)
        }
        _ => {
            let opts = bullmq::WorkerOptions::new()
                .connection(bullmq::options::RedisConnectionOptions::new().url(url))
                .concurrency(conc);
            let w = bullmq::Worker::with_options(
                queue,
                move |_job: bullmq::Job, _t| {
                    finish();
                    async { Ok(Value::Null) }
                },
                opts,
            )
            .await?;
            all.notified().await;
            let elapsed = t.elapsed().as_secs_f64();
            w.close(5000).await?;
            Ok(elapsed)
        }
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, mode, url, queue, jobs, param] = args.as_slice() else {
        eprintln!(
            "usage: orchestrator-bench schedule|bulk|worker orch|direct REDIS_URL QUEUE JOBS PARAM"
        );
        std::process::exit(2);
    };
    let jobs: usize = jobs.parse()?;
    let param: usize = param.parse()?;
    let seconds = match kind.as_str() {
        "schedule" => schedule(mode, url, queue, jobs, param).await?,
        "bulk" => bulk(mode, url, queue, jobs, param).await?,
        "worker" => worker(mode, url, queue, jobs, param).await?,
        other => return Err(format!("unknown benchmark {other}").into()),
    };
    println!(
        "{}",
        json!({"jobs": jobs, "seconds": seconds, "rate": jobs as f64 / seconds})
    );
    Ok(())
}
