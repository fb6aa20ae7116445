//! One benchmark contender per process, so scripts/bench.py can alternate contenders and
//! read each one's peak RSS:
//!
//! ```text
//! orchestrator-bench schedule orch|direct|http REDIS_URL QUEUE JOBS CONCURRENCY
//! orchestrator-bench bulk     orch|direct  REDIS_URL QUEUE JOBS BATCH
//! orchestrator-bench worker   orch|direct  REDIS_URL QUEUE JOBS CONCURRENCY
//! orchestrator-bench latency  orch|direct  REDIS_URL QUEUE JOBS RATE_PER_S
//! orchestrator-bench temporal orch|direct  TEMPORAL_URL QUEUE JOBS CONCURRENCY
//! orchestrator-bench n8n      orch|direct  -         -     JOBS CONCURRENCY
//! orchestrator-bench status   orch|direct  REDIS_URL QUEUE CALLS JOB_ID
//! orchestrator-bench list     orch|direct  REDIS_URL QUEUE CALLS PAGE
//! orchestrator-bench counts   orch|direct  REDIS_URL QUEUE CALLS -
//! orchestrator-bench tlist    orch|direct  TEMPORAL_URL -  CALLS PAGE
//! orchestrator-bench tcounts  orch|direct  TEMPORAL_URL -  CALLS -
//! orchestrator-bench nfill    orch         N8N_URL      -  TASKS CONCURRENCY
//! orchestrator-bench nlist    orch|direct  N8N_URL      -  CALLS PAGE
//! orchestrator-bench ncounts  orch|direct  N8N_URL      -  CALLS -
//! ```
//!
//! The n8n kinds read the API key from `N8N_API_KEY`. `nfill` schedules TASKS to the
//! provisioned echo workflow (`otConfEcho000001`); `nlist`/`ncounts` read the first page
//! and the per-state counts through the orchestrator, against n8n's own API: one
//! `GET /api/v1/executions?limit=PAGE`, and paging that list to the end (250 a call),
//! which is what counting takes with n8n's API.
//!
//! `schedule http` schedules through the HTTP API (`POST /v1/tasks`, the
//! `orchestrator-server` router served in this process on loopback; keep-alive
//! connections, one per request in flight), against `schedule orch`, the library call.
//!
//! `latency` schedules at a fixed offered rate with a worker running and prints
//! `p50_ms`/`p99_ms` from schedule to handler start. `temporal` starts workflows (no worker:
//! only the start RPC is measured). `n8n` dispatches to a local HTTP sink in this process
//! that answers like an n8n webhook in respond-immediately mode.
//!
//! `status` reads one job's state CALLS times, one call at a time, after one warm-up call
//! (the orchestrator's `status`, or bullmq-official's `get_job_state`).
//!
//! `list`/`counts` read the first page of every task (`Orchestrator::list`, or
//! bullmq-official's `get_jobs` over every state) and the per-state counts
//! (`Orchestrator::counts`, or `get_job_counts`); `tlist`/`tcounts` the same on Temporal
//! against one raw `ListWorkflowExecutions` page and one raw `CountWorkflowExecutions … GROUP
//! BY ExecutionStatus`. One call at a time, after one warm-up call.
//!
//! Each prints one JSON line: `{"jobs": N, "seconds": s, "rate": jobs_per_s}`. The `worker`
//! contender expects the queue to be filled already and measures until all jobs completed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backend_bullmq_compat::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use futures::StreamExt;
use orchestrator_core::{
    BackendHandle, Orchestrator, PageRequest, ScheduleRequest, TaskOptions, TaskType,
};
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
        "http" => {
            let backend = BullmqBackend::new(BullmqConfig::new(url))?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend))
                .route(TaskType::Simple, "bullmq")
                .build()?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let app =
                orchestrator_server::router(orch, orchestrator_server::ServerConfig::default());
            tokio::spawn(async move { axum::serve(listener, app).await });
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(conc)
                .build()?;
            let endpoint = format!("http://{addr}/v1/tasks");
            let post = |i: usize| {
                let request = http.post(&endpoint).json(&json!({
                    "name": queue, "payload": payload(i), "options": {"taskType": "SIMPLE"}
                }));
                async move {
                    let r = request.send().await?;
                    if r.status() != reqwest::StatusCode::CREATED {
                        return Err(format!("{}: {}", r.status(), r.text().await?).into());
                    }
                    Res::Ok(())
                }
            };
            post(0).await?; // connect
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(post)
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
            // Through the orchestrator's handle, as every caller reaches a backend.
            let backend = BackendHandle::new(BullmqBackend::new(BullmqConfig::new(url))?);
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
                for r in backend.schedule_bulk(reqs).await? {
                    r?;
                }
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

async fn status(mode: &str, url: &str, queue: &str, calls: usize, job: usize) -> Res<f64> {
    let t;
    match mode {
        "orch" => {
            let backend = BackendHandle::new(BullmqBackend::new(BullmqConfig::new(url))?);
            let id = orchestrator_core::TaskId::new("bullmq", &format!("{queue}:{job}"))?;
            backend.status(&id).await?;
            t = Instant::now();
            for _ in 0..calls {
                backend.status(&id).await?;
            }
        }
        _ => {
            let q = bullmq::Queue::with_options(
                queue,
                bullmq::QueueOptions::new()
                    .connection(bullmq::options::RedisConnectionOptions::new().url(url)),
            )
            .await?;
            let id = job.to_string();
            q.get_job_state(&id).await?;
            t = Instant::now();
            for _ in 0..calls {
                q.get_job_state(&id).await?;
            }
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Every BullMQ state, as `get_jobs` names them.
const STATES: [&str; 8] = [
    "active",
    "waiting",
    "paused",
    "prioritized",
    "delayed",
    "waiting-children",
    "completed",
    "failed",
];

/// `calls` first pages (`page` tasks) or counts (`page` 0) of one Redis, one at a time.
async fn monitor(mode: &str, url: &str, queue: &str, calls: usize, page: usize) -> Res<f64> {
    let t;
    match mode {
        "orch" => {
            let orch = Orchestrator::builder()
                .backend(Arc::new(BullmqBackend::new(BullmqConfig::new(url))?))
                .route(TaskType::Simple, "bullmq")
                .build()?;
            return orch_monitor(&orch, calls, page).await;
        }
        _ => {
            let q = bullmq::Queue::with_options(
                queue,
                bullmq::QueueOptions::new()
                    .connection(bullmq::options::RedisConnectionOptions::new().url(url)),
            )
            .await?;
            let call = || async {
                if page == 0 {
                    q.get_job_counts().await?;
                } else {
                    let jobs = q.get_jobs(&STATES, 0, page as i64 - 1, false).await?;
                    if jobs.len() != page {
                        return Err(format!("short page: {}", jobs.len()).into());
                    }
                }
                Res::Ok(())
            };
            call().await?;
            t = Instant::now();
            for _ in 0..calls {
                call().await?;
            }
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `calls` first pages (`page` tasks) or counts (`page` 0) of one Temporal namespace.
/// `calls` first pages of `page` tasks (`0`: per-state counts) through `orch`, one at a
/// time after one warm-up call; the seconds they took.
async fn orch_monitor(orch: &Orchestrator, calls: usize, page: usize) -> Res<f64> {
    let all = orchestrator_core::ListFilter::all();
    let call = || async {
        if page == 0 {
            let c = orch.counts(&all, Duration::from_secs(30)).await?;
            if !c.errors.is_empty() {
                return Err(format!("{:?}", c.errors).into());
            }
        } else {
            let p = orch.list(&all, &PageRequest::first(page)).await?;
            if p.tasks.len() != page || !p.errors.is_empty() {
                return Err(format!("short page: {} {:?}", p.tasks.len(), p.errors).into());
            }
        }
        Res::Ok(())
    };
    call().await?;
    let t = Instant::now();
    for _ in 0..calls {
        call().await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn temporal_monitor(mode: &str, url: &str, calls: usize, page: usize) -> Res<f64> {
    use temporalio_client::grpc::WorkflowService;
    use temporalio_client::tonic;
    use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
    use temporalio_common::protos::temporal::api::workflowservice::v1::{
        CountWorkflowExecutionsRequest, ListWorkflowExecutionsRequest,
    };
    let t;
    match mode {
        "orch" => {
            let backend =
                backend_temporal::TemporalBackend::new(backend_temporal::TemporalConfig::new(url))?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend))
                .route(TaskType::Complex, "temporal")
                .build()?;
            return orch_monitor(&orch, calls, page).await;
        }
        _ => {
            let conn =
                Connection::connect(ConnectionOptions::new(url::Url::parse(url)?).build()).await?;
            let client = Client::new(conn, ClientOptions::new("default").build())?;
            let call = || {
                let mut svc = client.clone();
                async move {
                    if page == 0 {
                        svc.count_workflow_executions(tonic::Request::new(
                            CountWorkflowExecutionsRequest {
                                namespace: "default".into(),
                                query: "GROUP BY ExecutionStatus".into(),
                            },
                        ))
                        .await?;
                    } else {
                        let r = svc
                            .list_workflow_executions(tonic::Request::new(
                                ListWorkflowExecutionsRequest {
                                    namespace: "default".into(),
                                    page_size: i32::try_from(page)?,
                                    ..Default::default()
                                },
                            ))
                            .await?;
                        if r.get_ref().executions.len() != page {
                            return Err(
                                format!("short page: {}", r.get_ref().executions.len()).into()
                            );
                        }
                    }
                    Res::Ok(())
                }
            };
            call().await?;
            t = Instant::now();
            for _ in 0..calls {
                call().await?;
            }
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The n8n backend and an orchestrator on it, from `url` and `N8N_API_KEY`.
fn n8n_orchestrator(url: &str) -> Res<Orchestrator> {
    let key = std::env::var("N8N_API_KEY")?;
    let cfg = backend_n8n::N8nConfig::new(url).api_key(key);
    Ok(Orchestrator::builder()
        .backend(Arc::new(backend_n8n::N8nBackend::new(cfg)?))
        .route(TaskType::Integration, "n8n")
        .build()?)
}

async fn n8n_fill(url: &str, tasks: usize, conc: usize) -> Res<f64> {
    let orch = n8n_orchestrator(url)?;
    let opts = || TaskOptions::integration(backend_n8n::N8nOptions::workflow("otConfEcho000001"));
    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..tasks)
        .map(|i| {
            let orch = orch.clone();
            let o = opts();
            async move { orch.schedule_task("benchfill", payload(i), o).await }
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(t.elapsed().as_secs_f64())
}

async fn n8n_monitor(mode: &str, url: &str, calls: usize, page: usize) -> Res<f64> {
    if mode == "orch" {
        // The warm-up call reads each listed execution's data once (then cached).
        return orch_monitor(&n8n_orchestrator(url)?, calls, page).await;
    }
    let key = std::env::var("N8N_API_KEY")?;
    let http = reqwest::Client::new();
    let call = || async {
        let mut cursor: Option<String> = None;
        loop {
            let mut req = http
                .get(format!("{url}/api/v1/executions"))
                .header("X-N8N-API-KEY", &key)
                .query(&[("limit", if page == 0 { 250 } else { page })]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let v: Value = req.send().await?.error_for_status()?.json().await?;
            let rows = v["data"].as_array().map_or(0, Vec::len);
            if page != 0 {
                if rows != page {
                    return Err(format!("short page: {rows}").into());
                }
                return Res::Ok(());
            }
            match v["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Res::Ok(()),
            }
        }
    };
    call().await?;
    let t = Instant::now();
    for _ in 0..calls {
        call().await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Schedule `jobs` at `rate`/s with a worker running; latency from send to handler start.
async fn latency(mode: &str, url: &str, queue: &str, jobs: usize, rate: usize) -> Res<Vec<f64>> {
    let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(jobs)));
    let all = Arc::new(tokio::sync::Notify::new());
    let (l, a) = (lat.clone(), all.clone());
    let record = move |sent: u64| {
        let mut v = l.lock().unwrap_or_else(|p| p.into_inner());
        v.push(now_us().saturating_sub(sent) as f64 / 1000.0);
        if v.len() == jobs {
            a.notify_one();
        }
    };
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    match mode {
        "orch" => {
            let backend = BullmqBackend::new(BullmqConfig::new(url))?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend.clone()))
                .route(TaskType::Simple, "bullmq")
                .build()?;
            let w = backend
                .worker(
                    queue,
                    WorkerConfig::default().concurrency(50),
                    move |ctx: JobContext<Value>| {
                        record(ctx.data["sent"].as_u64().unwrap_or(0));
                        async { Ok::<_, HandlerError>(Value::Null) }
                    },
                )
                .await?;
            let mut tick = tokio::time::interval(interval);
            for _ in 0..jobs {
                tick.tick().await;
                let orch = orch.clone();
                let q = queue.to_string();
                tokio::spawn(async move {
                    orch.schedule_task(&q, json!({"sent": now_us()}), TaskOptions::simple())
                        .await
                });
            }
            all.notified().await;
            w.close(Duration::from_secs(5)).await?;
        }
        _ => {
            let conn = bullmq::options::RedisConnectionOptions::new().url(url);
            let q = bullmq::Queue::with_options(
                queue,
                bullmq::QueueOptions::new().connection(conn.clone()),
            )
            .await?;
            let w = bullmq::Worker::with_options(
                queue,
                move |job: bullmq::Job, _t| {
                    record(job.data()["sent"].as_u64().unwrap_or(0));
                    async { Ok(Value::Null) }
                },
                bullmq::WorkerOptions::new()
                    .connection(conn)
                    .concurrency(50),
            )
            .await?;
            let mut tick = tokio::time::interval(interval);
            for _ in 0..jobs {
                tick.tick().await;
                let q = q.clone();
                let name = queue.to_string();
                tokio::spawn(async move { q.add(&name, json!({"sent": now_us()})).await });
            }
            all.notified().await;
            w.close(5000).await?;
        }
    }
    let v = lat.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(v)
}

async fn temporal(mode: &str, url: &str, queue: &str, jobs: usize, conc: usize) -> Res<f64> {
    use temporalio_client::{
        Client, ClientOptions, Connection, ConnectionOptions, UntypedWorkflow, WorkflowStartOptions,
    };
    use temporalio_common::data_converters::RawValue;
    use temporalio_common::protos::temporal::api::common::v1::Payload;
    let t;
    match mode {
        "orch" => {
            let backend =
                backend_temporal::TemporalBackend::new(backend_temporal::TemporalConfig::new(url))?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend))
                .route(TaskType::Complex, "temporal")
                .build()?;
            let opts =
                || TaskOptions::complex(backend_temporal::TemporalOptions::new("bench", queue));
            orch.schedule_task("warmup", payload(0), opts()).await?;
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(|i| {
                    let orch = orch.clone();
                    async move { orch.schedule_task("bench", payload(i), opts()).await }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
        _ => {
            let conn =
                Connection::connect(ConnectionOptions::new(url::Url::parse(url)?).build()).await?;
            let client = Client::new(conn, ClientOptions::new("default").build())?;
            let start = |i: usize| {
                let client = client.clone();
                async move {
                    let p = Payload {
                        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                        data: serde_json::to_vec(&payload(i)).unwrap_or_default(),
                        ..Payload::default()
                    };
                    let id = format!("raw-{i}-{}", now_us());
                    client
                        .start_workflow(
                            UntypedWorkflow::new("bench"),
                            RawValue::new(vec![p]),
                            WorkflowStartOptions::new(queue, id).build(),
                        )
                        .await
                        .map(|_| ())
                }
            };
            start(usize::MAX).await?;
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(start)
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn n8n(mode: &str, jobs: usize, conc: usize) -> Res<f64> {
    let app = axum::Router::new().route(
        "/webhook/sink",
        axum::routing::post(|| async { axum::Json(json!({"message": "Workflow was started"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hook = format!("http://{addr}/webhook/sink");
    let t;
    match mode {
        "orch" => {
            let mut cfg = backend_n8n::N8nConfig::new(format!("http://{addr}")).delivery(
                Duration::from_secs(10),
                1,
                Duration::from_millis(10),
            );
            // Same concurrency as the raw client (the default limit is 32 in flight).
            cfg.max_in_flight = conc;
            let backend = backend_n8n::N8nBackend::new(cfg)?;
            let orch = Orchestrator::builder()
                .backend(Arc::new(backend))
                .route(TaskType::Integration, "n8n")
                .build()?;
            let opts = || TaskOptions::integration(backend_n8n::N8nOptions::webhook(hook.clone()));
            orch.schedule_task("warmup", payload(0), opts()).await?;
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(|i| {
                    let orch = orch.clone();
                    let o = opts();
                    async move { orch.schedule_task("bench", payload(i), o).await }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
        _ => {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?;
            http.post(&hook)
                .json(&payload(0))
                .send()
                .await?
                .error_for_status()?;
            t = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..jobs)
                .map(|i| {
                    let http = http.clone();
                    let hook = hook.clone();
                    async move {
                        let r = http
                            .post(&hook)
                            .json(&payload(i))
                            .send()
                            .await?
                            .error_for_status()?;
                        r.bytes().await.map(|_| ())
                    }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, mode, url, queue, jobs, param] = args.as_slice() else {
        eprintln!(
            "usage: orchestrator-bench schedule|bulk|worker|latency|temporal|n8n|status|list|counts|tlist|tcounts|nfill|nlist|ncounts orch|direct URL QUEUE JOBS PARAM"
        );
        std::process::exit(2);
    };
    let jobs: usize = jobs.parse()?;
    let param: usize = param.parse()?;
    if kind == "latency" {
        let mut v = latency(mode, url, queue, jobs, param).await?;
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{}",
            json!({"jobs": jobs, "p50_ms": percentile(&v, 0.5), "p99_ms": percentile(&v, 0.99)})
        );
        return Ok(());
    }
    let seconds = match kind.as_str() {
        "temporal" => temporal(mode, url, queue, jobs, param).await?,
        "n8n" => n8n(mode, jobs, param).await?,
        "schedule" => schedule(mode, url, queue, jobs, param).await?,
        "bulk" => bulk(mode, url, queue, jobs, param).await?,
        "worker" => worker(mode, url, queue, jobs, param).await?,
        "status" => status(mode, url, queue, jobs, param).await?,
        "list" => monitor(mode, url, queue, jobs, param.max(1)).await?,
        "counts" => monitor(mode, url, queue, jobs, 0).await?,
        "tlist" => temporal_monitor(mode, url, jobs, param.max(1)).await?,
        "tcounts" => temporal_monitor(mode, url, jobs, 0).await?,
        "nfill" => n8n_fill(url, jobs, param).await?,
        "nlist" => n8n_monitor(mode, url, jobs, param.max(1)).await?,
        "ncounts" => n8n_monitor(mode, url, jobs, 0).await?,
        other => return Err(format!("unknown benchmark {other}").into()),
    };
    println!(
        "{}",
        json!({"jobs": jobs, "seconds": seconds, "rate": jobs as f64 / seconds})
    );
    Ok(())
}
