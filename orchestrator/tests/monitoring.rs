//! `list` and `counts` across instances (in-memory engines, and one that never answers):
//! exact paging over 830 tasks, the merged order, filters, partial answers within the
//! timeout, and bad input refused.
#![cfg(feature = "testkit")]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use orchestrator::raw::{AdmittedRequest, Backend, BackendPage, async_trait};
use orchestrator::testkit::MemoryBackend;
use orchestrator::{
    CancelOutcome, Capabilities, Capability, Descriptor, Error, ErrorKind, Health, ListFilter,
    Orchestrator, PageRequest, Result, TaskId, TaskOptions, TaskState, TaskStatus, TaskType,
    TemporalOptions,
};
use serde_json::json;

/// A backend that declares `list` and `counts` and never answers them.
#[derive(Debug)]
struct Silent;

const SILENT: Descriptor =
    Descriptor::new("silent", "SILENT", &[TaskType::Simple], "never answers")
        .with_capabilities(Capabilities::of(&[Capability::List, Capability::Counts]));

#[async_trait]
impl Backend for Silent {
    fn name(&self) -> &str {
        "silent"
    }
    fn descriptor(&self) -> &Descriptor {
        &SILENT
    }
    async fn schedule(&self, _: AdmittedRequest) -> Result<TaskId> {
        Err(Error::engine("silent", ErrorKind::Unavailable, "no"))
    }
    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        Err(Error::not_found(id))
    }
    async fn cancel(&self, _: &TaskId) -> Result<CancelOutcome> {
        Ok(CancelOutcome::NotFound)
    }
    async fn health(&self) -> Result<Health> {
        Err(Error::engine("silent", ErrorKind::Timeout, "silent"))
    }
    async fn list(&self, _: &ListFilter, _: Option<&str>, _: usize) -> Result<BackendPage> {
        std::future::pending().await
    }
    async fn counts(&self, _: &ListFilter) -> Result<Vec<(TaskState, u64)>> {
        std::future::pending().await
    }
}

/// A backend that declares neither `list` nor `counts`: the trait's defaults answer.
#[derive(Debug)]
struct Unlisted;

const UNLISTED: Descriptor = Descriptor::new(
    "unlisted",
    "UNLISTED",
    &[TaskType::Integration],
    "lists nothing",
);

#[async_trait]
impl Backend for Unlisted {
    fn name(&self) -> &str {
        "n"
    }
    fn descriptor(&self) -> &Descriptor {
        &UNLISTED
    }
    async fn schedule(&self, _: AdmittedRequest) -> Result<TaskId> {
        Err(Error::engine("n", ErrorKind::Unavailable, "no"))
    }
    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        Err(Error::not_found(id))
    }
    async fn cancel(&self, _: &TaskId) -> Result<CancelOutcome> {
        Ok(CancelOutcome::NotFound)
    }
    async fn health(&self) -> Result<Health> {
        Err(Error::engine("n", ErrorKind::Unavailable, "no"))
    }
}

struct World {
    orch: Orchestrator,
    a: MemoryBackend,
    /// What the listing instances hold (`n` cannot list).
    scheduled: HashSet<TaskId>,
}

/// The instances that answer `Unsupported`, as the errors of a first page name them.
const UNSUPPORTED: [&str; 1] = ["n"];

async fn world(with_silent: bool) -> World {
    let a = MemoryBackend::bullmq().named("a");
    let b = MemoryBackend::bullmq().named("b");
    let t = MemoryBackend::temporal().named("t");
    let mut builder = Orchestrator::builder()
        .backend(a.shared())
        .backend(b.shared())
        .backend(t.shared())
        .backend(orchestrator::BackendHandle::new(Unlisted))
        .route(TaskType::Simple, "a")
        .route(TaskType::Complex, "t");
    if with_silent {
        builder = builder.backend(orchestrator::BackendHandle::new(Silent));
    }
    let orch = builder.build().expect("orchestrator");
    let mut scheduled = HashSet::new();
    for i in 0..400 {
        scheduled.insert(
            orch.schedule_simple_task("qa", json!({ "i": i }), TaskOptions::simple())
                .await
                .expect("a"),
        );
        let request =
            orchestrator::ScheduleRequest::new("qb", json!({ "i": i }), TaskOptions::simple())
                .expect("request");
        scheduled.insert(b.shared().schedule(request).await.expect("b"));
    }
    for i in 0..30 {
        let o = TaskOptions::complex(TemporalOptions::new("flow", "flows"));
        scheduled.insert(
            orch.schedule_task("flow", json!({ "i": i }), o)
                .await
                .expect("t"),
        );
    }
    World { orch, a, scheduled }
}

/// Every page of `filter`, `limit` at a time.
async fn pages(orch: &Orchestrator, filter: &ListFilter, limit: usize) -> Vec<Vec<TaskStatus>> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = orch.list(filter, &request).await.expect("list");
        out.push(page.tasks);
        match page.next {
            Some(next) => request = PageRequest::first(limit).after(next),
            None => return out,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn pages_return_every_task_once_newest_first_with_filters() {
    let w = world(false).await;
    let all: Vec<TaskStatus> = pages(&w.orch, &ListFilter::all(), 97)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(all.len(), 830);
    let ids: HashSet<TaskId> = all.iter().map(|s| s.task_id.clone()).collect();
    assert!(ids == w.scheduled, "every task exactly once");
    for pair in all.windows(2) {
        let (x, y) = (&pair[0], &pair[1]);
        assert!(
            (x.created_at, &y.task_id) >= (y.created_at, &x.task_id),
            "out of order: {x:?} before {y:?}"
        );
    }
    let count = |f: ListFilter| {
        let orch = w.orch.clone();
        async move {
            pages(&orch, &f, 1000)
                .await
                .into_iter()
                .map(|p| p.len())
                .sum::<usize>()
        }
    };
    assert_eq!(count(ListFilter::all().with_backend("a")).await, 400);
    assert_eq!(count(ListFilter::all().with_name("qb")).await, 400);
    assert_eq!(
        count(ListFilter::all().with_type(TaskType::Complex)).await,
        30
    );
    assert_eq!(
        count(ListFilter::all().with_state(TaskState::Pending)).await,
        830
    );
    assert_eq!(
        count(ListFilter::all().with_state(TaskState::Running)).await,
        0
    );
    let cut = all[500].created_at.expect("time");
    let newer = count(ListFilter::all().with_window(Some(cut + 1), None)).await;
    let older = count(ListFilter::all().with_window(None, Some(cut + 1))).await;
    assert_eq!(newer + older, 830);
    assert!(newer > 0 && older > 0, "{newer} {older}");
    // An instance that cannot list: said once, then left out.
    let page = w
        .orch
        .list(&ListFilter::all(), &PageRequest::first(10))
        .await
        .expect("list");
    let mut unsupported: Vec<&str> = page
        .errors
        .iter()
        .filter(|e| e.kind == ErrorKind::Unsupported)
        .map(|e| e.backend.as_str())
        .collect();
    unsupported.sort_unstable();
    assert_eq!(unsupported, UNSUPPORTED, "{:?}", page.errors);
    assert_eq!(page.errors.len(), 1, "{:?}", page.errors);
    let next = page.next.expect("more");
    let page = w
        .orch
        .list(&ListFilter::all(), &PageRequest::first(10).after(next))
        .await
        .expect("list");
    assert!(page.errors.is_empty(), "{:?}", page.errors);
}

#[tokio::test]
async fn a_failing_or_silent_instance_is_reported_and_nothing_is_lost() {
    let w = world(true).await;
    let request = PageRequest::first(100).timeout(Duration::from_millis(300));
    let started = Instant::now();
    let page = w
        .orch
        .list(&ListFilter::all(), &request)
        .await
        .expect("list");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.tasks.len(), 100);
    let silent = page
        .errors
        .iter()
        .find(|e| e.backend == "silent")
        .expect("silent reported");
    assert_eq!(silent.kind, ErrorKind::Timeout);
    // `a` fails once: its tasks come on later pages, none lost.
    w.a.fail_next(1, ErrorKind::Unavailable);
    let mut seen: HashSet<TaskId> = page.tasks.iter().map(|s| s.task_id.clone()).collect();
    let mut next = page.next;
    let mut a_failed = false;
    for _ in 0..100 {
        let Some(cursor) = next.take() else { break };
        let page = w
            .orch
            .list(&ListFilter::all(), &request.clone().after(cursor))
            .await
            .expect("list");
        a_failed |= page
            .errors
            .iter()
            .any(|e| e.backend == "a" && e.kind == ErrorKind::Unavailable);
        for t in page.tasks {
            assert!(seen.insert(t.task_id.clone()), "{} twice", t.task_id);
        }
        if seen.len() == w.scheduled.len() {
            break;
        }
        next = page.next;
    }
    assert!(a_failed, "the injected failure was reported");
    assert!(
        seen == w.scheduled,
        "{} of {} seen",
        seen.len(),
        w.scheduled.len()
    );
    let counts = w
        .orch
        .counts(&ListFilter::all(), Duration::from_millis(300))
        .await
        .expect("counts");
    let total: u64 = counts.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 830);
    let of = |b: &str, state: TaskState| -> u64 {
        counts
            .counts
            .iter()
            .filter(|c| c.backend == b && c.state == state)
            .map(|c| c.count)
            .sum()
    };
    assert_eq!(
        (of("a", TaskState::Pending), of("b", TaskState::Pending)),
        (400, 400)
    );
    // Like Temporal, its fake counts the workflows no worker picked up as running.
    assert_eq!(
        (of("t", TaskState::Pending), of("t", TaskState::Running)),
        (0, 30)
    );
    let mut failed: Vec<_> = counts
        .errors
        .iter()
        .map(|e| (e.backend.as_str(), e.kind))
        .collect();
    failed.sort_by_key(|(b, _)| *b);
    assert_eq!(
        failed,
        [
            ("n", ErrorKind::Unsupported),
            ("silent", ErrorKind::Timeout)
        ]
    );
}

#[tokio::test]
async fn bad_monitoring_input_is_refused_before_any_call() {
    let w = world(false).await;
    let list = |f: ListFilter, r: PageRequest| {
        let orch = w.orch.clone();
        async move { orch.list(&f, &r).await.expect_err("refused") }
    };
    for (f, r, field) in [
        (ListFilter::all(), PageRequest::first(0), "limit"),
        (ListFilter::all(), PageRequest::first(1001), "limit"),
        (
            ListFilter::all(),
            PageRequest::first(5).timeout(Duration::ZERO),
            "timeout",
        ),
        (
            ListFilter::all(),
            PageRequest::first(5).timeout(Duration::from_secs(3600)),
            "timeout",
        ),
        (
            ListFilter::all(),
            PageRequest::first(5).after("%%%"),
            "cursor",
        ),
        (
            ListFilter::all().with_name(""),
            PageRequest::first(5),
            "name",
        ),
        (
            ListFilter::all().with_window(Some(10), Some(10)),
            PageRequest::first(5),
            "since",
        ),
        // Past year 9999 no engine's time format can state it (humantime panicked).
        (
            ListFilter::all().with_window(None, Some(orchestrator::MAX_TIME + 1)),
            PageRequest::first(5),
            "until",
        ),
        (
            ListFilter::all().with_window(Some(u64::MAX), None),
            PageRequest::first(5),
            "since",
        ),
    ] {
        match list(f, r).await {
            Error::InvalidInput(v) => assert_eq!(v.field, field),
            e => panic!("{field}: {e:?}"),
        }
    }
    // A cursor is bound to its filters.
    let page = w
        .orch
        .list(&ListFilter::all(), &PageRequest::first(5))
        .await
        .expect("list");
    let e = list(
        ListFilter::all().with_state(TaskState::Failed),
        PageRequest::first(5).after(page.next.expect("next")),
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = list(
        ListFilter::all().with_backend("nowhere"),
        PageRequest::first(5),
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::NoBackend, "{e}");
    let e = w
        .orch
        .counts(
            &ListFilter::all().with_state(TaskState::Failed),
            Duration::from_secs(1),
        )
        .await
        .expect_err("state is not a counts filter");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
