//! The `bullmq` backend: SIMPLE tasks as BullMQ jobs, through the official crate.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq::redis_connection::RedisConnection;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{DeduplicationOptions, JobProgress, JobState, Queue, QueueOptions};
use orchestrator_core::raw::{AdmittedRequest, Backend, BackendPage, InitOnce, async_trait};
use orchestrator_core::{
    Backoff, CancelOutcome, Descriptor, Error, Health, Limits, ListFilter, Result, TaskId,
    TaskOptions, TaskState, TaskStatus, WaitOutcome,
};

use crate::config::BullmqConfig;
use crate::error::{self, NAME};
use crate::spec::{self, JobOptions, RemovePolicy};

/// SIMPLE tasks on BullMQ queues. The task name is the queue name; the job is added with
/// BullMQ's own Lua scripts, so Node BullMQ workers, producers and dashboards see exactly
/// what a Node producer would have written.
///
/// Connects lazily on first use; clones share the connection and the queue handles.
#[derive(Clone)]
pub struct BullmqBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// The instance name: the prefix of task ids.
    name: String,
    config: BullmqConfig,
    conn: InitOnce<RedisConnection>,
    /// Queue handles by name; `Arc` because a `Queue` clone copies every key string.
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// The event-stream listeners of [`Backend::wait`].
    listeners: Arc<crate::events::Listeners>,
    /// Queues found by `list`/`counts` discovery, and when ([`crate::monitor`]).
    discovered: crate::monitor::Discovered,
}

impl std::fmt::Debug for BullmqBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullmqBackend")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Requests sent at once by [`Backend::schedule_bulk`].
const BULK_CONCURRENCY: usize = 1000;

/// Split a native id `queue:jobId` ([`spec::split_task_id`]).
pub(crate) fn split_native(id: &TaskId) -> Result<(&str, &str)> {
    Ok(spec::split_task_id(id)?)
}

fn remove_policy(p: RemovePolicy) -> RemoveOnFinish {
    match p {
        RemovePolicy::Remove(b) => RemoveOnFinish::Bool(b),
        RemovePolicy::KeepCount(n) => {
            RemoveOnFinish::Count(usize::try_from(n).unwrap_or(usize::MAX))
        }
        RemovePolicy::Keep { age, count } => RemoveOnFinish::Options(KeepJobs {
            age,
            count: count.map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
            limit: None,
        }),
    }
}

/// The BullMQ job options for an admitted request (whose job options [`spec::rules`]
/// already parsed).
pub(crate) fn job_options(o: &TaskOptions, job: JobOptions) -> bullmq::JobOptions {
    bullmq::JobOptions {
        delay: o.delay.filter(|d| *d > 0),
        priority: o.priority.filter(|p| *p > 0),
        attempts: o.attempts,
        backoff: o.backoff.map(|b| match b {
            Backoff::Fixed { delay_ms } => BackoffStrategy::Fixed(delay_ms),
            Backoff::Exponential { delay_ms } => BackoffStrategy::Exponential(delay_ms),
        }),
        lifo: job.lifo.filter(|l| *l),
        remove_on_complete: job.remove_on_complete.map(remove_policy),
        remove_on_fail: job.remove_on_fail.map(remove_policy),
        job_id: job.job_id,
        deduplication: job.deduplication.map(|d| DeduplicationOptions {
            id: d.id,
            ttl: d.ttl,
            extend: None,
            replace: None,
            keep_last_if_active: None,
        }),
        ..bullmq::JobOptions::default()
    }
}

/// BullMQ state → (unified state, BullMQ's word), through [`spec::NATIVE_STATES`].
pub(crate) fn map_state(s: JobState) -> (TaskState, &'static str) {
    let native = match s {
        JobState::Waiting => "waiting",
        JobState::Prioritized => "prioritized",
        JobState::Delayed => "delayed",
        JobState::Active => "active",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::WaitingChildren => "waiting-children",
        JobState::Unknown => "unknown",
    };
    (
        orchestrator_core::raw::map_native_state(spec::NATIVE_STATES, native),
        native,
    )
}

/// A job's status from the state word and hash fields a read script returned.
pub(crate) fn status_from(
    id: &TaskId,
    native: &str,
    fields: &HashMap<String, String>,
) -> Result<TaskStatus> {
    let job_id = split_native(id)?.1;
    if native == "removed" {
        // Removed by our cancel (remembered for `CANCEL_MEMORY`).
        let state = orchestrator_core::raw::map_native_state(spec::NATIVE_STATES, "removed");
        let mut s = TaskStatus::new(id.clone(), spec::LABEL, state, "removed");
        s.finished_at = fields.get("finishedOn").and_then(|t| t.parse().ok());
        return Ok(s);
    }
    let job = bullmq::Job::from_redis_hash(job_id, fields).map_err(error::map)?;
    let (state, native_state) = map_state(crate::scripts::job_state(native));
    let mut s = TaskStatus::new(id.clone(), spec::LABEL, state, native_state);
    s.attempts_made = job.attempts_made();
    s.created_at = Some(job.timestamp());
    s.started_at = job.processed_on();
    s.finished_at = job.finished_on();
    if state == TaskState::Completed {
        s.result = Some(parse_json_text(job.returnvalue()));
    }
    if !job.failed_reason().is_empty() {
        s.error = Some(job.failed_reason().to_string());
    }
    s.progress = match job.progress() {
        JobProgress::Number(n) if *n == 0.0 => None,
        // Node stores `42` for `updateProgress(42)`; report it as the integer it was.
        #[allow(clippy::cast_possible_truncation)]
        JobProgress::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Some(serde_json::json!(*n as i64))
        }
        p => serde_json::to_value(p).ok(),
    };
    Ok(s)
}

fn parse_json_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// The most queue handles a backend keeps (one per queue name used).
pub const MAX_QUEUE_HANDLES: usize = 1024;

impl BullmqBackend {
    /// A backend for `config` (validated; no connection yet).
    pub fn new(config: BullmqConfig) -> Result<Self> {
        Self::named(NAME, config)
    }

    /// A backend instance called `name` (its task ids are `<name>:<queue>:<job id>`), for
    /// several Redis deployments in one orchestrator.
    pub fn named(name: &str, config: BullmqConfig) -> Result<Self> {
        orchestrator_core::raw::check_instance_name(name)?;
        config.validate(name)?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                conn: InitOnce::new(),
                queues: Mutex::new(HashMap::new()),
                listeners: Arc::default(),
                discovered: crate::monitor::Discovered::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BullmqConfig {
        &self.inner.config
    }

    pub(crate) fn discovered(&self) -> &crate::monitor::Discovered {
        &self.inner.discovered
    }

    pub(crate) async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, bullmq::Error>>,
    ) -> Result<T> {
        let limit = self.inner.config.command_timeout();
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r.map_err(error::map),
            Err(_) => Err(error::timeout(what, limit)),
        }
    }

    pub(crate) async fn connection(&self) -> Result<&RedisConnection> {
        let config = &self.inner.config;
        self.inner
            .conn
            .get_or_try_init(|| async {
                let limit = config.connect_timeout();
                // One plain connection first: the managed connection retries refused
                // credentials until the timeout, which would turn `Unauthorized` into
                // `Timeout`. This one fails fast with Redis's own answer (NOAUTH, WRONGPASS).
                let client = redis::Client::open(config.connection().url.as_str())
                    .map_err(|e| error::map_redis(&e, e.to_string()).with_source(e))?;
                match tokio::time::timeout(limit, client.get_multiplexed_async_connection()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(error::map_redis(&e, e.to_string()).with_source(e)),
                    Err(_) => return Err(error::timeout("connecting to Redis", limit)),
                }
                match tokio::time::timeout(
                    limit,
                    RedisConnection::new_managed_only(&config.connection()),
                )
                .await
                {
                    Ok(r) => r.map_err(error::map),
                    Err(_) => Err(error::timeout("connecting to Redis", limit)),
                }
            })
            .await
    }

    /// The `bullmq` crate's queue handle for `name` (cached, at most [`MAX_QUEUE_HANDLES`]
    /// queues).
    pub async fn queue(&self, name: &str) -> Result<Arc<Queue>> {
        if let Some(q) = self.lock_queues().get(name) {
            return Ok(Arc::clone(q));
        }
        spec::queue_name("name", name)?;
        let conn = self.connection().await?.clone();
        let opts = QueueOptions::new()
            .connection(self.inner.config.connection())
            .prefix(self.inner.config.prefix.clone());
        let q = self
            .timed(
                "opening the queue",
                Queue::with_connection(name, conn, opts),
            )
            .await?;
        let mut queues = self.lock_queues();
        if queues.len() >= MAX_QUEUE_HANDLES && !queues.contains_key(name) {
            // Queue names come from callers: keep the cache bounded. Handles in use stay
            // valid (they are `Arc`s); the others are rebuilt on their next use.
            queues.clear();
        }
        Ok(Arc::clone(
            queues
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(q)),
        ))
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Queue>>> {
        // Only inserts and clones happen under this lock; a poisoned map is still whole.
        self.inner.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run one of [`crate::scripts`] (EVALSHA; the text is loaded once) within the timeout.
    pub(crate) async fn script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: redis::ScriptInvocation<'static>,
    ) -> Result<T> {
        let mut conn = self.connection().await?.connection();
        let limit = self.inner.config.command_timeout();
        match tokio::time::timeout(limit, invocation.invoke_async(&mut conn)).await {
            Ok(r) => r.map_err(|e| error::map_redis(&e, e.to_string()).with_source(e)),
            Err(_) => Err(error::timeout(what, limit)),
        }
    }

    /// A job's state and status fields through [`crate::scripts::read`].
    pub(crate) async fn read_job(
        &self,
        queue: &str,
        job_id: &str,
    ) -> Result<crate::scripts::Answer> {
        let prefix = &self.inner.config.prefix;
        self.script("reading a job", crate::scripts::read(prefix, queue, job_id))
            .await
    }

    /// The id of the newest entry of the event stream `stream` (`0-0` when it is empty).
    async fn newest_event(&self, stream: &str) -> Result<String> {
        let conn = self.connection().await?;
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
        let newest: redis::streams::StreamRangeReply = self
            .timed("reading the event stream", conn.cmd(&mut cmd))
            .await?;
        Ok(newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.id.clone()))
    }

    /// The end of job `job`, gone from Redis, as the queue's event stream `stream` recorded
    /// it in entries after `since` (an `XREVRANGE` bound): looked back through page by page,
    /// newest first, at most [`LOOKBACK_MAX`](crate::events::LOOKBACK_MAX) entries. `NotFound`
    /// when the stream does not record it (or records its removal).
    async fn ended_and_removed(
        &self,
        id: &TaskId,
        stream: &str,
        job: &str,
        since: &str,
    ) -> Result<WaitOutcome> {
        use crate::events::{LOOKBACK_MAX, LOOKBACK_PAGE, last_word};
        let conn = self.connection().await?;
        let mut end = "+".to_string();
        let mut seen = 0;
        while seen < LOOKBACK_MAX {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(stream)
                .arg(&end)
                .arg(since)
                .arg("COUNT")
                .arg(LOOKBACK_PAGE);
            let page: redis::streams::StreamRangeReply = self
                .timed("reading the event stream", conn.cmd(&mut cmd))
                .await?;
            match last_word(&page.ids, job) {
                Some(Some(ended)) => {
                    let native = if ended.completed {
                        "completed"
                    } else {
                        "failed"
                    };
                    let state =
                        orchestrator_core::raw::map_native_state(spec::NATIVE_STATES, native);
                    let mut s = TaskStatus::new(id.clone(), spec::LABEL, state, native);
                    s.finished_at = ended.at_ms;
                    if ended.completed {
                        s.result = Some(parse_json_text(&ended.value));
                    } else {
                        s.error = Some(ended.value);
                    }
                    return Ok(WaitOutcome::of(s));
                }
                Some(None) => break,
                None => {}
            }
            let Some(last) = page.ids.last() else { break };
            if page.ids.len() < LOOKBACK_PAGE {
                break;
            }
            seen += page.ids.len();
            end = format!("({}", last.id);
        }
        Err(Error::not_found(id))
    }

    /// Add one admitted request with BullMQ's own scripts.
    async fn schedule_one(&self, request: &AdmittedRequest) -> Result<TaskId> {
        let queue = request.name();
        let mut job = JobOptions::of(request.options())?;
        let q = self.queue(queue).await?;
        let job_name = job.job_name.take();
        let job_name = job_name.as_deref().unwrap_or(queue);
        let add = q
            .add(job_name, request.payload())
            .options(job_options(request.options(), job));
        let job = self.timed("adding a job", add.into_future()).await?;
        self.job_task_id(queue, job.id())
    }

    pub(crate) fn job_task_id(&self, queue: &str, job_id: &str) -> Result<TaskId> {
        Ok(TaskId::new(&self.inner.name, &format!("{queue}:{job_id}"))?)
    }
}

#[async_trait]
impl Backend for BullmqBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn descriptor(&self) -> &Descriptor {
        &spec::DESCRIPTOR
    }

    fn limits(&self) -> Limits {
        Limits::max_payload(self.inner.config.max_payload_bytes)
    }

    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId> {
        self.schedule_one(&request).await
    }

    /// One add per request, 1,000 in flight on the multiplexed connection, each with its
    /// own result (BullMQ's `add_bulk` fails the whole call when one add fails, losing the
    /// ids written). Once Redis was unreachable, the rest are not sent: they fail with
    /// [`Error::NotSent`].
    async fn schedule_bulk(&self, requests: Vec<AdmittedRequest>) -> Vec<Result<TaskId>> {
        orchestrator_core::raw::schedule_each(
            self.name(),
            requests,
            BULK_CONCURRENCY,
            |r| async move { self.schedule_one(&r).await },
        )
        .await
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        let (queue, job_id) = split_native(id)?;
        // State and hash in one atomic, read-only script: no queue handle, no writes.
        let (native, fields) = self
            .read_job(queue, job_id)
            .await?
            .ok_or_else(|| Error::not_found(id))?;
        status_from(id, &native, &fields)
    }

    async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        use crate::scripts::Cancel;
        let (queue, job_id) = split_native(id)?;
        // Check and remove in one script: a job a worker finishes meanwhile is never removed,
        // and an unknown queue or job writes nothing.
        let prefix = &self.inner.config.prefix;
        let word: String = self
            .script(
                "cancelling a job",
                crate::scripts::cancel(prefix, queue, job_id),
            )
            .await?;
        Ok(match crate::scripts::cancel_outcome(&word) {
            Cancel::Removed => CancelOutcome::Cancelled,
            Cancel::Missing => CancelOutcome::NotFound,
            Cancel::AlreadyCancelled => CancelOutcome::NotCancellableFinished,
            Cancel::Finished => CancelOutcome::NotCancellableFinished,
            Cancel::Active => CancelOutcome::NotCancellableRunning,
            Cancel::Flow => {
                // BullMQ's removeJob handles parents and children; it refuses a locked job
                // (or a locked child) but not a finished one, hence the state check first.
                let q = self.queue(queue).await?;
                let state = self
                    .timed("reading a job's state", q.get_job_state(job_id))
                    .await?;
                match state {
                    JobState::Completed | JobState::Failed => CancelOutcome::NotCancellableFinished,
                    JobState::Active => CancelOutcome::NotCancellableRunning,
                    JobState::Unknown => CancelOutcome::NotFound,
                    _ if self.timed("removing a job", q.remove(job_id)).await? => {
                        CancelOutcome::Cancelled
                    }
                    _ => CancelOutcome::NotCancellableRunning,
                }
            }
        })
    }

    /// Wait on the queue's event stream (one shared listener per queue), re-reading the status on
    /// each finished job of the queue and at least every 5 s. A job gone from Redis (removed on
    /// completion or failure, `removeOnComplete`/`removeOnFail`) reads as it ended when the
    /// stream still records its end: looked back through since the wait began, or through the
    /// newest 10,000 entries (BullMQ's default stream length) when it was gone already.
    async fn wait(&self, id: &TaskId, timeout: Duration) -> Result<WaitOutcome> {
        use tokio::sync::broadcast::error::RecvError;
        let deadline = orchestrator_core::raw::wait::deadline(timeout)?;
        let (queue, job) = split_native(id)?;
        let config = &self.inner.config;
        let stream = format!("{}:{queue}:events", config.prefix);
        // Taken before the first read: an end recorded after it happened during the wait.
        let mark = self.newest_event(&stream).await?;
        let first = match self.status(id).await {
            Err(Error::NotFound { .. }) => {
                return self.ended_and_removed(id, &stream, job, "-").await;
            }
            read => read?,
        };
        // A finished task needs no listener (and its connection).
        if first.state.is_finished() || timeout.is_zero() {
            return Ok(WaitOutcome::of(first));
        }
        let since = format!("({mark}");
        let url = config.connection().url;
        let Some(mut finished) = self
            .inner
            .listeners
            .subscribe(&url, stream.clone(), queue, config.command_timeout())
            .await?
        else {
            return match orchestrator_core::raw::wait::poll(self, id, timeout).await {
                Err(Error::NotFound { .. }) => {
                    self.ended_and_removed(id, &stream, job, &since).await
                }
                outcome => outcome,
            };
        };
        loop {
            let status = match self.status(id).await {
                Err(Error::NotFound { .. }) => {
                    return self.ended_and_removed(id, &stream, job, &since).await;
                }
                read => read?,
            };
            let now = tokio::time::Instant::now();
            if status.state.is_finished() || now >= deadline {
                return Ok(WaitOutcome::of(status));
            }
            let nap = (deadline - now).min(crate::events::RECHECK);
            let closed = tokio::time::timeout(nap, async {
                loop {
                    match finished.recv().await {
                        Ok(j) if &*j == job => return false,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return false,
                        Err(RecvError::Closed) => return true,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if closed {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                return match orchestrator_core::raw::wait::poll(self, id, left).await {
                    Err(Error::NotFound { .. }) => {
                        self.ended_and_removed(id, &stream, job, &since).await
                    }
                    outcome => outcome,
                };
            }
        }
    }

    async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        self.list_page(filter, resume, limit).await
    }

    async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        self.count_states(filter).await
    }

    async fn health(&self) -> Result<Health> {
        let conn = self.connection().await?;
        let info: String = self
            .timed("INFO server", conn.cmd(redis::cmd("INFO").arg("server")))
            .await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let mut warnings = Vec::new();
        let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        if parts.len() >= 2 && (parts[0], parts[1]) < (6, 2) {
            warnings.push(format!(
                "Redis {version} is older than 6.2: BullMQ needs 6.2 or newer for every feature (upgrade Redis)"
            ));
        }
        Ok(Health {
            backend: self.name().into(),
            ok: true,
            detail: format!("redis {version}"),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use orchestrator_core::{BackendHandle, ScheduleRequest, TaskOptions};
    use orchestrator_testkit::engines::{RedisServer, unique};

    use super::*;

    /// The lookback pages through the stream (pages of 200, exclusive bounds), stops at
    /// `since`, and gives up after `LOOKBACK_MAX` entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: scripts/test.sh runs the ignored unit tests (cargo test --lib -- --ignored)"]
    async fn a_removed_job_s_end_is_looked_up_page_by_page_within_bounds() {
        let redis = RedisServer::start();
        let b = BullmqBackend::new(BullmqConfig::new(redis.url())).expect("backend");
        let queue = unique("lookback");
        let stream = format!("{}:{queue}:events", b.inner.config.prefix);
        let id = b.job_task_id(&queue, "7").expect("id");
        let conn = b.connection().await.expect("connect");
        let add = |fields: &[(&str, &str)]| {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&stream).arg("*");
            for (k, v) in fields {
                cmd.arg(*k).arg(*v);
            }
            cmd
        };
        let end: String = conn
            .cmd(&mut add(&[
                ("event", "completed"),
                ("jobId", "7"),
                ("returnvalue", "42"),
            ]))
            .await
            .expect("xadd");
        let others = |n: usize| async move {
            let mut pipe = redis::pipe();
            for i in 0..n {
                pipe.add_command(add(&[
                    ("event", "progress"),
                    ("jobId", "8"),
                    ("data", &i.to_string()),
                ]))
                .ignore();
            }
            let () = conn.pipe(&pipe).await.expect("xadd");
        };
        others(450).await;
        let found = b
            .ended_and_removed(&id, &stream, "7", "-")
            .await
            .expect("found three pages back");
        assert_eq!(found.status().state, TaskState::Completed);
        assert_eq!(found.status().result, Some(serde_json::json!(42)));
        let after_its_end = format!("({end}");
        let e = b
            .ended_and_removed(&id, &stream, "7", &after_its_end)
            .await
            .expect_err("ended before `since`");
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        others(crate::events::LOOKBACK_MAX).await;
        let e = b
            .ended_and_removed(&id, &stream, "7", "-")
            .await
            .expect_err("past the lookback bound");
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: scripts/test.sh runs the ignored unit tests (cargo test --lib -- --ignored)"]
    async fn queue_handles_stay_bounded() {
        let redis = RedisServer::start();
        let b = BullmqBackend::new(BullmqConfig::new(redis.url())).expect("backend");
        let handle = BackendHandle::new(b.clone());
        let prefix = unique("q");
        for i in 0..MAX_QUEUE_HANDLES + 10 {
            let request = ScheduleRequest::new(
                format!("{prefix}-{i}"),
                serde_json::json!({}),
                TaskOptions::simple(),
            )
            .expect("valid");
            handle.schedule(request).await.expect("schedule");
            assert!(b.lock_queues().len() <= MAX_QUEUE_HANDLES);
        }
    }
}
