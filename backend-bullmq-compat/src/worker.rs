//! A Rust worker for BullMQ queues, with typed handler input and output.
//!
//! It runs on the `bullmq` crate's `Worker`, which uses BullMQ's own scripts: locks are
//! renewed, stalled jobs are recovered, retries follow the job's backoff, and Node
//! `QueueEvents` see its `active`, `progress`, `completed` and `failed` events.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bullmq::{Job, JobProgress, Queue, WorkerOptions};
use futures::FutureExt;
use orchestrator_core::{Error, Result, TaskId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::BullmqBackend;
use crate::error;

/// How a [`TaskWorker`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Jobs processed at once.
    pub concurrency: usize,
    /// Worker name, stored on processed jobs (`processedBy`).
    pub name: Option<String>,
    /// How long a job's lock lasts without renewal (renewed at half of it).
    pub lock_duration: Duration,
    /// How often to look for stalled jobs (jobs whose worker died).
    pub stalled_interval: Duration,
    /// How many times a job may stall before it fails.
    pub max_stalled_count: u32,
    /// How long the worker waits before fetching again after Redis failed it (BullMQ's
    /// `runRetryDelay`, 15 s by default, as in Node). This is also how long a worker can
    /// stay idle after Redis comes back from an outage.
    pub retry_delay: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            name: None,
            lock_duration: Duration::from_secs(30),
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            retry_delay: Duration::from_secs(15),
        }
    }
}

impl WorkerConfig {
    /// Process `n` jobs at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Name the worker.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Wait `delay` before fetching again after Redis failed a fetch (see
    /// [`WorkerConfig::retry_delay`]).
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Set the lock duration and stalled-check interval.
    #[must_use]
    pub fn stall_detection(mut self, lock_duration: Duration, stalled_interval: Duration) -> Self {
        self.lock_duration = lock_duration;
        self.stalled_interval = stalled_interval;
        self
    }
}

/// What a handler receives for one job.
pub struct JobContext<I> {
    /// The job's data, deserialized.
    pub data: I,
    /// The job's id in its queue.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// The task id the orchestrator reports for this job.
    pub task_id: TaskId,
    /// Which attempt this is, starting at 1.
    pub attempt: u32,
    queue: Arc<Queue>,
}

impl<I: std::fmt::Debug> std::fmt::Debug for JobContext<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("data", &self.data)
            .field("task_id", &self.task_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<I> JobContext<I> {
    /// Report progress (a number or any JSON); Node `QueueEvents` receive a `progress` event.
    pub async fn progress(&self, progress: serde_json::Value) -> Result<()> {
        self.queue
            .update_job_progress(&self.job_id, job_progress(progress))
            .await
            .map_err(error::map)
    }
}

impl<I> JobContext<I> {
    /// A synchronous progress reporter for callers that cannot await: each call updates the
    /// job's progress in the background (a failed update is logged, not returned).
    pub fn progress_sink(&self) -> impl Fn(serde_json::Value) + Send + Sync + 'static {
        let queue = Arc::clone(&self.queue);
        let job_id = self.job_id.clone();
        move |progress: serde_json::Value| {
            let (queue, job_id) = (Arc::clone(&queue), job_id.clone());
            tokio::spawn(async move {
                if let Err(e) = queue
                    .update_job_progress(&job_id, job_progress(progress))
                    .await
                {
                    tracing::warn!(job.id = %job_id, error = %e, "progress update failed");
                }
            });
        }
    }
}

/// BullMQ's progress value: a number as a number (Node's `updateProgress(42)`), anything
/// else as JSON.
fn job_progress(progress: serde_json::Value) -> JobProgress {
    match progress.as_f64() {
        Some(n) => JobProgress::Number(n),
        None => JobProgress::Object(progress),
    }
}

/// A handler's failure: its message becomes the job's `failedReason`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A handler's answer "not yet": return it as the error (`Err(Reschedule::after(d).into())`)
/// and the job goes back to `delayed` for `after`, then runs again, without counting an
/// attempt (Node BullMQ's `job.moveToDelayed` + `DelayedError`). The worker slot is free
/// meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reschedule {
    /// How long the job waits before it runs again.
    pub after: Duration,
}

impl Reschedule {
    /// Run the job again after `after`.
    pub fn after(after: Duration) -> Self {
        Self { after }
    }
}

impl std::fmt::Display for Reschedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rescheduled in {:?}", self.after)
    }
}

impl std::error::Error for Reschedule {}

/// A running worker. Stop it with [`TaskWorker::close`]; dropping it leaves it running
/// until the process ends.
pub struct TaskWorker {
    inner: Arc<bullmq::Worker>,
    events: tokio::task::JoinHandle<()>,
    errors: Arc<AtomicU64>,
    outcomes: Arc<Outcomes>,
}

/// The outcomes the worker produced, until each is known recorded.
#[derive(Default)]
struct Outcomes {
    /// Jobs whose handler returned, by id, with the attempt it ran as; removed once
    /// BullMQ reports the outcome (`Completed` comes only once it is stored).
    settling: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Outcomes known not recorded (a failure BullMQ reported but Redis does not show).
    lost: AtomicU64,
    /// Set by `close`: the drain task ends once the event channel is quiet.
    closing: std::sync::atomic::AtomicBool,
}

impl Outcomes {
    fn settling(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u32>> {
        self.settling.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for TaskWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWorker")
            .field("id", &self.inner.id())
            .finish()
    }
}

impl TaskWorker {
    fn new(
        worker: bullmq::Worker,
        outcomes: Arc<Outcomes>,
        backend: BullmqBackend,
        queue: String,
    ) -> Self {
        let inner = Arc::new(worker);
        let errors = Arc::new(AtomicU64::new(0));
        let events = tokio::spawn(drain_events(
            Arc::clone(&inner),
            Arc::clone(&errors),
            Arc::clone(&outcomes),
            backend,
            queue,
        ));
        Self {
            inner,
            events,
            errors,
            outcomes,
        }
    }

    /// How many job outcomes this worker produced that were not recorded in Redis (a
    /// completion or failure that could not be written): those jobs run again once their
    /// lock expires. Exact after [`TaskWorker::close`]; while running, outcomes in flight
    /// count until BullMQ reports them.
    pub fn unrecorded(&self) -> u64 {
        let settling = u64::try_from(self.outcomes.settling().len()).unwrap_or(u64::MAX);
        self.outcomes.lost.load(Ordering::Relaxed) + settling
    }

    /// How many errors the worker met so far (Redis unreachable while fetching, an outcome
    /// it could not record, …); each is logged as a `tracing` warning.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The worker's unique id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// Stop taking jobs and wait up to `grace` for running ones to finish; then let the
    /// last events be accounted for (at most a few seconds), so [`TaskWorker::unrecorded`]
    /// is exact.
    pub async fn close(&self, grace: Duration) -> Result<()> {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let closed = self.inner.close(ms).await.map_err(error::map);
        self.outcomes.closing.store(true, Ordering::SeqCst);
        // The drain ends once the channel is quiet (nothing is reported after a close); a
        // verification read against a dead Redis is bounded by its command timeout.
        let drained = tokio::time::timeout(DRAIN_AFTER_CLOSE, async {
            while !self.events.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if drained.is_err() {
            self.events.abort();
        }
        closed
    }

    /// The underlying `bullmq` worker, for what this wrapper does not expose. Its events
    /// (`next_event`) are already drained by this wrapper, which logs the errors.
    pub fn as_bullmq(&self) -> &bullmq::Worker {
        &self.inner
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .map(|m| format!("handler panicked: {m}"))
        .unwrap_or_else(|| "handler panicked".to_string())
}

impl BullmqBackend {
    /// Start a worker on `queue` that runs `handler` for each job.
    ///
    /// The job's data is deserialized into `I` (a mismatch fails the job without retry);
    /// the handler's `O` is stored as the job's return value. A handler error fails the
    /// attempt (retried per the job's `attempts` and `backoff`); a panic fails the attempt
    /// and the worker keeps running.
    pub async fn worker<I, O, F, Fut>(
        &self,
        queue: &str,
        config: WorkerConfig,
        handler: F,
    ) -> Result<TaskWorker>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(JobContext<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<O, HandlerError>> + Send + 'static,
    {
        crate::spec::queue_name("queue", queue)?;
        if config.concurrency == 0 {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&config.retry_delay) {
            return Err(Error::invalid("retry_delay", "must be between 10ms and 1h"));
        }
        let queue_handle = self.queue(queue).await?;
        let handler = Arc::new(handler);
        let queue_name = queue.to_string();
        let instance = orchestrator_core::raw::Backend::name(self).to_string();
        let outcomes = Arc::new(Outcomes::default());
        let processor = {
            let outcomes = Arc::clone(&outcomes);
            move |job: Job, _token: bullmq::worker::CancellationToken| {
                let handler = handler.clone();
                let queue_handle = queue_handle.clone();
                let queue_name = queue_name.clone();
                let instance = instance.clone();
                let outcomes = Arc::clone(&outcomes);
                async move {
                    let (id, attempt) = (job.id().to_string(), job.attempts_made() + 1);
                    let result =
                        Self::process(job, handler, queue_handle, queue_name, instance).await;
                    // An outcome to record (not a reschedule): settling until BullMQ reports it.
                    if !matches!(result, Err(bullmq::Error::Delayed)) {
                        outcomes.settling().insert(id, attempt);
                    }
                    result
                }
            }
        };
        let cfg = self.config();
        let mut opts = WorkerOptions::new()
            .connection(cfg.connection())
            .prefix(cfg.prefix.clone())
            .concurrency(config.concurrency)
            .lock_duration(config.lock_duration)
            .stalled_interval(config.stalled_interval)
            .max_stalled_count(config.max_stalled_count)
            .run_retry_delay(config.retry_delay);
        if let Some(name) = config.name {
            opts = opts.name(name);
        }
        let limit = cfg.connect_timeout();
        let worker =
            tokio::time::timeout(limit, bullmq::Worker::with_options(queue, processor, opts))
                .await
                .map_err(|_| error::timeout("starting a worker", limit))?
                .map_err(error::map)?;
        Ok(TaskWorker::new(
            worker,
            outcomes,
            self.clone(),
            queue.to_string(),
        ))
    }

    /// Run `handler` on `job`: the job's data as the handler's input, its output as the
    /// job's return value, a panic or an error as this attempt's failure, a
    /// [`Reschedule`] as a move to delayed.
    async fn process<I, O, F, Fut>(
        job: Job,
        handler: Arc<F>,
        queue_handle: Arc<Queue>,
        queue_name: String,
        instance: String,
    ) -> std::result::Result<serde_json::Value, bullmq::Error>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(JobContext<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<O, HandlerError>> + Send + 'static,
    {
        let data: I = serde_json::from_value(job.data().clone()).map_err(|e| {
            bullmq::Error::Unrecoverable(format!(
                "job data does not match the handler's input type: {e}"
            ))
        })?;
        let task_id = TaskId::new(&instance, &format!("{queue_name}:{}", job.id()))
            .map_err(|e| bullmq::Error::Unrecoverable(e.to_string()))?;
        let ctx = JobContext {
            data,
            job_id: job.id().to_string(),
            job_name: job.name().to_string(),
            task_id,
            attempt: job.attempts_made() + 1,
            queue: queue_handle,
        };
        // Catch a panic so it fails this attempt only and the worker lives.
        let output = match std::panic::AssertUnwindSafe(handler(ctx))
            .catch_unwind()
            .await
            .map_err(|p| bullmq::Error::ProcessingError(panic_message(p)))?
        {
            Ok(output) => output,
            Err(e) => match e.downcast_ref::<Reschedule>() {
                Some(r) => {
                    let now = orchestrator_core::raw::now_ms();
                    let after = u64::try_from(r.after.as_millis()).unwrap_or(u64::MAX);
                    job.move_to_delayed(now.saturating_add(after)).await?;
                    return Err(bullmq::Error::Delayed);
                }
                None => return Err(bullmq::Error::ProcessingError(e.to_string())),
            },
        };
        serde_json::to_value(output)
            .map_err(|e| bullmq::Error::ProcessingError(format!("handler output is not JSON: {e}")))
    }
}

/// How long `close` lets the drain task account for the last events.
const DRAIN_AFTER_CLOSE: Duration = Duration::from_secs(10);

/// Drain the `bullmq` worker's event channel: it is unbounded and gets every job's events
/// (with its result), so an undrained worker keeps everything it ever processed (414 MB
/// after 2,000 jobs of 200 KB in `tests/recovery.rs`). Errors are logged and counted.
async fn drain_events(
    worker: Arc<bullmq::Worker>,
    errors: Arc<AtomicU64>,
    outcomes: Arc<Outcomes>,
    backend: BullmqBackend,
    queue: String,
) {
    loop {
        let event = if outcomes.closing.load(Ordering::SeqCst) {
            // Closed: what is queued is all there will be.
            match tokio::time::timeout(Duration::from_millis(200), worker.next_event()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => return,
            }
        } else {
            match worker.next_event().await {
                Some(event) => event,
                None => return,
            }
        };
        match event {
            bullmq::worker::WorkerEvent::Error(error) => {
                errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(worker.id = %worker.id(), %error, "worker error");
            }
            bullmq::worker::WorkerEvent::Stalled { job_id } => {
                tracing::info!(worker.id = %worker.id(), job.id = %job_id, "stalled job moved back to wait");
            }
            bullmq::worker::WorkerEvent::Completed { job_id, .. } => {
                outcomes.settling().remove(&job_id);
            }
            bullmq::worker::WorkerEvent::Failed { job_id, .. } => {
                // BullMQ reports a failure even when it could not store it: look.
                let attempt = outcomes.settling().remove(&job_id);
                if let Some(attempt) = attempt {
                    if !failure_recorded(&backend, &queue, &job_id, attempt).await {
                        outcomes.lost.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(worker.id = %worker.id(), job.id = %job_id, "a failure could not be recorded; the job will run again");
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether attempt `attempt` of job `job_id` is recorded as made (a job already gone was
/// removed on failure: recorded). A read that fails cannot confirm it: not recorded.
async fn failure_recorded(
    backend: &BullmqBackend,
    queue: &str,
    job_id: &str,
    attempt: u32,
) -> bool {
    match backend.read_job(queue, job_id).await {
        Ok(None) => true,
        Ok(Some((_, fields))) => fields
            .get("atm")
            .and_then(|a| a.parse::<u32>().ok())
            .is_some_and(|made| made >= attempt),
        Err(_) => false,
    }
}
