//! [`BackendHandle`]: the one checking layer every backend is reached through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{AdmittedRequest, Backend, ScheduleRequest, SharedBackend};
use crate::descriptor::{Capabilities, Capability, Descriptor, Limits};
use crate::error::{Error, Result};
use crate::id::TaskId;
use crate::instruments::InstanceLabels;
use crate::monitor::{BackendPage, ListFilter};
use crate::status::{CancelOutcome, EngineLabel, Health, TaskState, TaskStatus};
use crate::task::TaskType;
use crate::wait::WaitOutcome;

/// A backend instance behind the orchestrator's checks. Every backend the registry builds,
/// and every backend given to [`crate::OrchestratorBuilder::backend`], is wrapped in one,
/// once:
///
/// * **admission** before any I/O: the request's task type, generic options and engine
///   options against the instance's descriptor and capabilities, the kind's input rules,
///   and the instance's [`Limits`] (payload size);
/// * **error context**: engine errors name the instance (`bullmq-eu`), not the kind;
/// * **ids**: a task id of another instance is `NotFound` here, never read elsewhere.
///
/// Cheap to clone. [`BackendHandle::downcast`] gives the typed backend back (a
/// `BullmqBackend` for its workers, a `TemporalBackend` for `terminate`).
#[derive(Clone)]
pub struct BackendHandle {
    inner: SharedBackend,
    labels: InstanceLabels,
}

impl fmt::Debug for BackendHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl From<SharedBackend> for BackendHandle {
    fn from(inner: SharedBackend) -> Self {
        let labels = InstanceLabels::new(inner.name(), inner.descriptor().kind);
        Self { inner, labels }
    }
}

impl<T: Backend> From<Arc<T>> for BackendHandle {
    fn from(inner: Arc<T>) -> Self {
        let inner: SharedBackend = inner;
        Self::from(inner)
    }
}

impl BackendHandle {
    /// Wrap `backend`.
    pub fn new(backend: impl Backend) -> Self {
        Self::from(Arc::new(backend))
    }

    /// The instance's name: the prefix of its task ids.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Its kind's descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        self.inner.descriptor()
    }

    /// The label its statuses report as `source`.
    pub fn label(&self) -> EngineLabel {
        self.inner.descriptor().label()
    }

    /// What this instance honours (its kind's capabilities, or less).
    pub fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// This instance's limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits()
    }

    /// The backend itself, unchecked.
    pub fn raw(&self) -> &SharedBackend {
        &self.inner
    }

    /// The typed backend, when it is a `T`.
    pub fn downcast<T: Backend>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn std::any::Any + Send + Sync> = self.inner.clone();
        any.downcast::<T>().ok()
    }

    /// Admit `request` for this instance (see the type's docs); no I/O.
    /// A refusal is counted in `orchestrator_schedule_total` (see [`crate::instruments`]).
    pub fn admit(&self, request: ScheduleRequest) -> Result<AdmittedRequest> {
        let task_type = request.task_type();
        let admitted = self.admit_unrecorded(request);
        if admitted.is_err() {
            self.labels.scheduled(task_type, &admitted);
        }
        admitted
    }

    fn admit_unrecorded(&self, request: ScheduleRequest) -> Result<AdmittedRequest> {
        let d = self.inner.descriptor();
        let admitted = d.admit(self.name(), self.inner.capabilities(), request)?;
        crate::validate::payload_size(admitted.payload(), self.limits().max_payload_bytes)?;
        Ok(admitted)
    }

    /// Admit and schedule one task.
    pub async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId> {
        let admitted = self.admit(request)?;
        self.schedule_admitted(admitted).await
    }

    pub(crate) async fn schedule_admitted(&self, request: AdmittedRequest) -> Result<TaskId> {
        let task_type = request.request().task_type();
        let started = Instant::now();
        let r = self
            .inner
            .schedule(request)
            .await
            .map_err(|e| self.context(e));
        self.labels.operation("schedule", started, r.is_ok());
        self.labels.scheduled(task_type, &r);
        r
    }

    /// Admit every request, then schedule them all: one result per request, in order. A
    /// request refused at admission fails the whole call before anything is written.
    pub async fn schedule_bulk(
        &self,
        requests: Vec<ScheduleRequest>,
    ) -> Result<Vec<Result<TaskId>>> {
        let admitted = requests
            .into_iter()
            .map(|r| self.admit(r))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.schedule_bulk_admitted(admitted).await)
    }

    pub(crate) async fn schedule_bulk_admitted(
        &self,
        requests: Vec<AdmittedRequest>,
    ) -> Vec<Result<TaskId>> {
        let expected = requests.len();
        let types: Vec<TaskType> = requests.iter().map(|r| r.request().task_type()).collect();
        let started = Instant::now();
        let mut results: Vec<Result<TaskId>> = self
            .inner
            .schedule_bulk(requests)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| self.context(e)))
            .collect();
        // One result per request, whatever the backend returned.
        results.truncate(expected);
        while results.len() < expected {
            results.push(Err(Error::engine(
                self.name(),
                crate::ErrorKind::Unexpected,
                "the backend returned fewer results than tasks",
            )));
        }
        self.labels
            .operation("schedule_bulk", started, results.iter().all(Result::is_ok));
        for (task_type, r) in types.into_iter().zip(&results) {
            self.labels.scheduled(task_type, r);
        }
        results
    }

    /// The status of a task of this instance.
    pub async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        self.check_owner(id)?;
        let started = Instant::now();
        let r = self.inner.status(id).await.map_err(|e| self.context(e));
        self.labels.operation("status", started, r.is_ok());
        r
    }

    /// Cancel a task of this instance.
    pub async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
        if self.check_owner(id).is_err() {
            return Ok(CancelOutcome::NotFound);
        }
        let started = Instant::now();
        let r = self.inner.cancel(id).await.map_err(|e| self.context(e));
        self.labels.operation("cancel", started, r.is_ok());
        r
    }

    /// Wait for a task of this instance (at most [`crate::MAX_WAIT`]).
    pub async fn wait(&self, id: &TaskId, timeout: Duration) -> Result<WaitOutcome> {
        crate::wait::deadline(timeout)?;
        self.check_owner(id)?;
        let started = Instant::now();
        let r = self
            .inner
            .wait(id, timeout)
            .await
            .map_err(|e| self.context(e));
        self.labels.operation("wait", started, r.is_ok());
        r
    }

    /// Check the engine.
    pub async fn health(&self) -> Result<Health> {
        let started = Instant::now();
        let r = self.inner.health().await.map_err(|e| self.context(e));
        self.labels.operation("health", started, r.is_ok());
        r
    }

    /// A page of this instance's tasks (see [`Backend::list`]); `Unsupported` unless it
    /// declares [`Capability::List`]. Tasks of other instances or of the wrong filter in
    /// the backend's answer are dropped, and the page is cut at `limit`.
    pub async fn list(
        &self,
        filter: &ListFilter,
        resume: Option<&str>,
        limit: usize,
    ) -> Result<BackendPage> {
        self.require(Capability::List, "list")?;
        let started = Instant::now();
        let page = self
            .inner
            .list(filter, resume, limit)
            .await
            .map_err(|e| self.context(e));
        self.labels.operation("list", started, page.is_ok());
        let mut page = page?;
        if page.tasks.len() > limit {
            page.tasks.truncate(limit);
            page.exhausted = false;
            page.end = None;
        }
        if page
            .end
            .as_ref()
            .is_some_and(|e| e.len() > crate::monitor::MAX_TOKEN_LEN)
        {
            page.end = None;
        }
        if let Some(bad) = page.tasks.iter().find(|l| {
            l.status.task_id.backend() != self.name()
                || l.resume.len() > crate::monitor::MAX_TOKEN_LEN
                || filter.state.is_some_and(|s| s != l.status.state)
        }) {
            return Err(Error::engine(
                self.name(),
                crate::ErrorKind::Unexpected,
                format!(
                    "the backend listed `{}`, which is not one of its tasks in the filter (or its resume token is too long)",
                    bad.status.task_id
                ),
            ));
        }
        Ok(page)
    }

    /// This instance's task counts per state (see [`Backend::counts`]); `Unsupported`
    /// unless it declares [`Capability::Counts`].
    pub async fn counts(&self, filter: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        self.require(Capability::Counts, "counts")?;
        let started = Instant::now();
        let r = self.inner.counts(filter).await.map_err(|e| self.context(e));
        self.labels.operation("counts", started, r.is_ok());
        r
    }

    /// Set `orchestrator_tasks` for this instance from `counts` (see [`crate::instruments`]).
    pub(crate) fn record_counts(&self, counts: &[(TaskState, u64)]) {
        for (state, n) in counts {
            self.labels.tasks(state.as_str(), *n);
        }
    }

    fn require(&self, c: Capability, operation: &str) -> Result<()> {
        if self.capabilities().has(c) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                backend: self.name().to_string(),
                operation: operation.to_string(),
            })
        }
    }

    fn check_owner(&self, id: &TaskId) -> Result<()> {
        if id.backend() == self.name() {
            Ok(())
        } else {
            Err(Error::not_found(id))
        }
    }

    fn context(&self, e: Error) -> Error {
        e.in_instance(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Limits;
    use crate::error::ErrorKind;
    use crate::status::TaskState;
    use crate::task::{TaskOptions, TaskType};

    /// A backend whose every call fails as its kind (`tiny`) would name it.
    #[derive(Debug)]
    struct Tiny;

    const TINY: Descriptor = Descriptor::new("tiny", "TINY", &[TaskType::Simple], "test")
        .with_limits(Limits::max_payload(64));

    #[async_trait::async_trait]
    impl Backend for Tiny {
        fn name(&self) -> &str {
            "tiny-eu"
        }
        fn descriptor(&self) -> &Descriptor {
            &TINY
        }
        async fn schedule(&self, _: AdmittedRequest) -> Result<TaskId> {
            Err(Error::engine("tiny", ErrorKind::Unavailable, "down"))
        }
        async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
            Ok(TaskStatus::new(
                id.clone(),
                TINY.label(),
                TaskState::Pending,
                "queued",
            ))
        }
        async fn cancel(&self, _: &TaskId) -> Result<CancelOutcome> {
            Ok(CancelOutcome::Cancelled)
        }
        async fn health(&self) -> Result<Health> {
            Err(Error::engine("tiny", ErrorKind::Timeout, "silent"))
        }
    }

    fn request(payload: serde_json::Value) -> ScheduleRequest {
        ScheduleRequest::new("q", payload, TaskOptions::simple()).expect("valid")
    }

    /// The documented metrics, with their labels, after a refused, a failed and a read
    /// operation (see `instruments`).
    #[test]
    fn every_operation_is_measured_with_the_documented_names_and_labels() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(async {
                    let h = BackendHandle::new(Tiny);
                    let ours: TaskId = "tiny-eu:q:1".parse().expect("id");
                    let big = serde_json::json!("x".repeat(100));
                    assert!(h.schedule(request(big)).await.is_err());
                    assert!(h.schedule(request(serde_json::json!({}))).await.is_err());
                    assert!(h.status(&ours).await.is_ok());
                    assert!(h.health().await.is_err());
                    h.record_counts(&[(TaskState::Pending, 3)]);
                });
        });
        let mut seen: Vec<String> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (kind, key) = key.into_parts();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let value = match value {
                    DebugValue::Counter(n) => format!("{n}"),
                    DebugValue::Gauge(g) => format!("{}", g.into_inner()),
                    DebugValue::Histogram(v) => format!("{} samples", v.len()),
                };
                format!("{kind:?} {}{{{}}} {value}", key.name(), labels.join(","))
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "Counter orchestrator_schedule_total{backend=tiny-eu,kind=tiny,outcome=invalid_input,type=SIMPLE} 1",
                "Counter orchestrator_schedule_total{backend=tiny-eu,kind=tiny,outcome=unavailable,type=SIMPLE} 1",
                "Gauge orchestrator_tasks{backend=tiny-eu,kind=tiny,state=PENDING} 3",
                "Histogram orchestrator_operation_duration_seconds{backend=tiny-eu,kind=tiny,op=health,outcome=error} 1 samples",
                "Histogram orchestrator_operation_duration_seconds{backend=tiny-eu,kind=tiny,op=schedule,outcome=error} 1 samples",
                "Histogram orchestrator_operation_duration_seconds{backend=tiny-eu,kind=tiny,op=status,outcome=ok} 1 samples",
            ]
        );
    }

    #[tokio::test]
    async fn the_handle_checks_limits_names_the_instance_and_keeps_to_its_ids() {
        let h = BackendHandle::new(Tiny);
        let big = serde_json::json!("x".repeat(100));
        let e = h.schedule(request(big)).await.expect_err("over the limit");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("64"), "{e}");
        // One refused request refuses the whole batch before any I/O.
        let e = h
            .schedule_bulk(vec![
                request(serde_json::json!(1)),
                request(serde_json::json!("x".repeat(100))),
            ])
            .await
            .expect_err("batch refused");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = h
            .schedule(request(serde_json::json!({})))
            .await
            .expect_err("engine down");
        assert!(e.to_string().starts_with("tiny-eu:"), "{e}");
        let e = h.health().await.expect_err("silent");
        assert!(e.to_string().starts_with("tiny-eu:"), "{e}");
        let theirs: TaskId = "other:q:1".parse().expect("id");
        assert_eq!(
            h.status(&theirs).await.expect_err("foreign").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            h.cancel(&theirs).await.expect("cancel"),
            CancelOutcome::NotFound
        );
        let ours: TaskId = "tiny-eu:q:1".parse().expect("id");
        assert_eq!(
            h.status(&ours).await.expect("ours").state,
            TaskState::Pending
        );
        let e = h
            .wait(&ours, crate::MAX_WAIT + Duration::from_secs(1))
            .await
            .expect_err("too long");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(h.downcast::<Tiny>().is_some());
    }
}
