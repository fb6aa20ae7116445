//! `list` and `counts` on real engines behind one orchestrator: a Redis holding 1,055 jobs
//! in four states (five added by a Node producer) and a Temporal dev server (a Python worker) holding completed, failed and
//! running workflows. Every task is listed exactly once across pages, each filter agrees
//! with a count made from the full listing, `counts` agrees with each engine's own count,
//! and a stopped Redis becomes an `errors` entry while Temporal still answers in time.
//! An n8n holding executions in four states, ours and three started by plain webhook
//! calls: each listed once with its origin, filters and counts agree with n8n's own lists,
//! an external id works with `status` and `cancel`, and a killed n8n is an `errors` entry.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::N8nOptions;
use orchestrator::bullmq::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator::n8n::{N8nBackend, N8nConfig};
use orchestrator::temporal::{TemporalBackend, TemporalConfig};
use orchestrator::{CancelOutcome, Origin};
use orchestrator::{
    ErrorKind, ListFilter, Orchestrator, PageRequest, TaskId, TaskOptions, TaskState, TaskStatus,
    TaskType, TemporalOptions,
};
use orchestrator_testkit::conformance::wait_finished;
use orchestrator_testkit::engines::{
    N8nServer, RedisServer, TemporalServer, node, python_worker, temporal_cli, unique,
};
use serde_json::{Value, json};

/// Every page of `filter`, `limit` at a time; panics on a task listed twice or an
/// instance in `errors`.
async fn listing(orch: &Orchestrator, filter: &ListFilter, limit: usize) -> Vec<TaskStatus> {
    let mut all: Vec<TaskStatus> = Vec::new();
    let mut seen = HashSet::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..1_000 {
        let p = orch.list(filter, &page).await.expect("list");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.tasks.len() <= limit);
        for s in p.tasks {
            assert!(seen.insert(s.task_id.clone()), "{} listed twice", s.task_id);
            all.push(s);
        }
        match p.next {
            Some(next) => page = PageRequest::first(limit).after(next),
            None => return all,
        }
    }
    panic!("more than 1,000 pages");
}

/// [`listing`] again until it holds `expected` tasks: Temporal's visibility store shows a
/// start or a close a moment after `status` does (at most 10 s).
async fn settled(
    orch: &Orchestrator,
    filter: &ListFilter,
    limit: usize,
    expected: usize,
) -> Vec<TaskStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = listing(orch, filter, limit).await;
        if all.len() == expected || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Temporal's own count of the runs `query` selects (`temporal workflow count`).
async fn temporal_count(server: &TemporalServer, query: &str) -> u64 {
    let out = tokio::process::Command::new(temporal_cli())
        .args(["workflow", "count", "--query", query, "--address"])
        .arg(format!("127.0.0.1:{}", server.port))
        .output()
        .await
        .expect("temporal CLI");
    assert!(out.status.success(), "temporal workflow count: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count in {text:?}"))
}

/// A first page of `limit` with a 2 s timeout while instance `down` is stopped: answered
/// within 4 s, `down` its only `errors` entry, `UNAVAILABLE`.
async fn list_with_one_down(orch: &Orchestrator, limit: usize, down: &str) -> orchestrator::Page {
    let t = Instant::now();
    let page = orch
        .list(
            &ListFilter::all(),
            &PageRequest::first(limit).timeout(Duration::from_secs(2)),
        )
        .await
        .expect("list");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(
        page.errors
            .iter()
            .map(|e| (e.backend.as_str(), e.kind))
            .collect::<Vec<_>>(),
        [(down, ErrorKind::Unavailable)],
        "{:?}",
        page.errors
    );
    page
}

fn of(rows: &[orchestrator::CountRow], backend: &str, state: TaskState) -> u64 {
    rows.iter()
        .filter(|r| r.backend == backend && r.state == state)
        .map(|r| r.count)
        .sum()
}

async fn every_task_listed_once_counts_agree_and_a_stopped_engine_is_reported() {
    let (mut redis, temporal) = (RedisServer::start(), TemporalServer::start().await);
    let pyq = unique("listpy");
    let _python = python_worker(&temporal, &pyq, 300).await;
    let bullmq = BullmqBackend::new(BullmqConfig::new(redis.url())).expect("bullmq");
    let orch = Orchestrator::builder()
        .backend(Arc::new(bullmq.clone()))
        .backend(Arc::new(
            TemporalBackend::new(TemporalConfig::new(temporal.url())).expect("temporal"),
        ))
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orchestrator");
    let mut scheduled: HashSet<TaskId> = HashSet::new();

    // BullMQ: 1,000 waiting and 10 delayed jobs on one queue; 40 run by a Rust worker on
    // another, half completing and half failing.
    let bulk_q = unique("bulkq");
    let ids = orch
        .schedule_bulk(
            (0..1_000).map(|i| (bulk_q.clone(), json!({ "i": i }), TaskOptions::simple())),
        )
        .await
        .expect("bulk");
    scheduled.extend(ids.into_iter().map(|r| r.expect("scheduled")));
    for i in 0..10 {
        let opts = TaskOptions::simple().delay(Duration::from_secs(3_600));
        scheduled.insert(
            orch.schedule_simple_task(&bulk_q, json!({ "late": i }), opts)
                .await
                .expect("delayed"),
        );
    }
    let work_q = unique("workq");
    let worker = bullmq
        .worker(
            &work_q,
            WorkerConfig::default(),
            |ctx: JobContext<Value>| async move {
                if ctx.data["ok"] == json!(true) {
                    Ok(json!("done"))
                } else {
                    Err(HandlerError::from("refused"))
                }
            },
        )
        .await
        .expect("worker");
    let mut worked = Vec::new();
    for i in 0..40 {
        let id = orch
            .schedule_simple_task(&work_q, json!({ "ok": i % 2 == 0 }), TaskOptions::simple())
            .await
            .expect("schedule");
        worked.push(id);
    }
    // A Node producer's jobs: listed like ours (origin `unknown`: BullMQ keeps no mark).
    let node_q = unique("nodeq");
    let jobs: Vec<Value> = (0..5)
        .map(|i| json!({"name": "n", "data": {"node": i}}))
        .collect();
    let added = node(
        &redis.url(),
        "add.js",
        &[&node_q, &Value::from(jobs).to_string()],
    )
    .await;
    let node_ids: Vec<TaskId> = added["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| {
            let id = id.as_str().expect("id");
            TaskId::new("bullmq", &format!("{node_q}:{id}")).expect("task id")
        })
        .collect();
    assert_eq!(node_ids.len(), 5);
    scheduled.extend(node_ids.iter().cloned());
    let handle = orch.backend("bullmq").expect("bullmq");
    for id in &worked {
        wait_finished(&handle, id, Duration::from_secs(30)).await;
    }
    worker.close(Duration::from_secs(5)).await.expect("close");
    scheduled.extend(worked);

    // Temporal: 10 completed, 5 failed, 5 running.
    let complex = |wf: &str, args: Vec<Value>| {
        TaskOptions::complex(TemporalOptions::new(wf, &pyq).args(args))
    };
    let mut finishing = Vec::new();
    for i in 0..10 {
        let opts = complex("py_echo", vec![json!({ "k": i }), json!(1)]);
        finishing.push(
            orch.schedule_complex_workflow("echoed", json!(null), opts)
                .await
                .expect("start"),
        );
    }
    let mut failing = HashSet::new();
    for _ in 0..5 {
        let opts = complex("py_fail", vec![json!("intentional")]);
        let id = orch
            .schedule_complex_workflow("failing", json!(null), opts)
            .await
            .expect("start");
        failing.insert(id.clone());
        finishing.push(id);
    }
    for _ in 0..5 {
        let opts = complex("py_sleep", vec![json!(3_600)]);
        scheduled.insert(
            orch.schedule_complex_workflow("sleeping", json!(null), opts)
                .await
                .expect("start"),
        );
    }
    let temporal_handle = orch.backend("temporal").expect("temporal");
    for id in &finishing {
        wait_finished(&temporal_handle, id, Duration::from_secs(60)).await;
    }
    scheduled.extend(finishing);
    assert_eq!(scheduled.len(), 1_075);

    // Every task exactly once, in pages of 97 (not a divisor of any set's size).
    let all = settled(&orch, &ListFilter::all(), 97, scheduled.len()).await;
    let listed: HashSet<TaskId> = all.iter().map(|s| s.task_id.clone()).collect();
    assert_eq!(
        listed.symmetric_difference(&scheduled).count(),
        0,
        "listed but not scheduled, or scheduled but not listed"
    );
    let by_id: HashMap<&TaskId, &TaskStatus> = all.iter().map(|s| (&s.task_id, s)).collect();
    // What `list` says of a task is what `status` says (every Temporal task, and a sample
    // of BullMQ's).
    for s in all
        .iter()
        .filter(|s| s.task_id.backend() == "temporal")
        .chain(all.iter().step_by(37))
    {
        let direct = orch.get_task_status(&s.task_id).await.expect("status");
        assert_eq!(
            (direct.state, direct.origin, direct.created_at),
            (s.state, s.origin, s.created_at),
            "{}",
            s.task_id
        );
    }

    // Each filter against a count made from the full listing.
    let count = |pred: &dyn Fn(&TaskStatus) -> bool| all.iter().filter(|s| pred(s)).count();
    let ids_where = |pred: &dyn Fn(&TaskStatus) -> bool| -> HashSet<TaskId> {
        all.iter()
            .filter(|s| pred(s))
            .map(|s| s.task_id.clone())
            .collect()
    };
    let ids =
        |v: &[TaskStatus]| -> HashSet<TaskId> { v.iter().map(|s| s.task_id.clone()).collect() };
    for state in [
        TaskState::Pending,
        TaskState::Delayed,
        TaskState::Running,
        TaskState::Completed,
        TaskState::Failed,
    ] {
        let some = listing(&orch, &ListFilter::all().with_state(state), 250).await;
        assert_eq!(ids(&some), ids_where(&|s| s.state == state), "{state:?}");
    }
    assert_eq!(
        (
            count(&|s| s.state == TaskState::Pending),
            count(&|s| s.state == TaskState::Delayed)
        ),
        (1_005, 10)
    );
    for id in &node_ids {
        assert_eq!(by_id[id].origin, orchestrator::Origin::Unknown, "{id}");
    }
    let named = listing(&orch, &ListFilter::all().with_name(&work_q), 7).await;
    let on_work_q: HashSet<TaskId> = scheduled
        .iter()
        .filter(|id| id.native().starts_with(&format!("{work_q}:")))
        .cloned()
        .collect();
    assert_eq!((ids(&named), on_work_q.len()), (on_work_q, 40));
    let named = listing(&orch, &ListFilter::all().with_name("failing"), 2).await;
    assert_eq!(ids(&named), failing);
    assert!(named.iter().all(|s| s.state == TaskState::Failed));
    let complex_tasks = listing(&orch, &ListFilter::all().with_type(TaskType::Complex), 6).await;
    assert_eq!(
        (ids(&complex_tasks), complex_tasks.len()),
        (ids_where(&|s| s.task_id.backend() == "temporal"), 20)
    );
    let on_temporal = listing(&orch, &ListFilter::all().with_backend("temporal"), 50).await;
    assert_eq!(
        on_temporal
            .iter()
            .map(|s| &s.task_id)
            .collect::<HashSet<_>>(),
        complex_tasks
            .iter()
            .map(|s| &s.task_id)
            .collect::<HashSet<_>>()
    );
    let mut created: Vec<u64> = all.iter().filter_map(|s| s.created_at).collect();
    created.sort_unstable();
    assert_eq!(
        created.len(),
        all.len(),
        "every listed task has a creation time"
    );
    let (since, until) = (created[created.len() / 3], created[2 * created.len() / 3]);
    let window = listing(
        &orch,
        &ListFilter::all().with_window(Some(since), Some(until)),
        113,
    )
    .await;
    assert_eq!(
        ids(&window),
        ids_where(&|s| s.created_at.is_some_and(|t| since <= t && t < until)),
        "since {since} until {until}"
    );

    // `counts` against the listing, and against each engine's own count.
    let counts = orch
        .counts(&ListFilter::all(), Duration::from_secs(5))
        .await
        .expect("counts");
    assert!(counts.errors.is_empty(), "{:?}", counts.errors);
    for backend in ["bullmq", "temporal"] {
        for state in [
            TaskState::Pending,
            TaskState::Delayed,
            TaskState::Running,
            TaskState::Completed,
            TaskState::Failed,
        ] {
            let listed = all
                .iter()
                .filter(|s| s.task_id.backend() == backend && s.state == state)
                .count() as u64;
            assert_eq!(
                of(&counts.counts, backend, state),
                listed,
                "{backend} {state:?}"
            );
        }
    }
    let mut own = (0, 0, 0, 0);
    for q in [&bulk_q, &work_q, &node_q] {
        let c = bullmq
            .queue(q)
            .await
            .expect("queue")
            .get_job_counts()
            .await
            .expect("counts");
        own = (
            own.0 + c.waiting,
            own.1 + c.delayed,
            own.2 + c.completed,
            own.3 + c.failed,
        );
    }
    assert_eq!(
        own,
        (
            of(&counts.counts, "bullmq", TaskState::Pending),
            of(&counts.counts, "bullmq", TaskState::Delayed),
            of(&counts.counts, "bullmq", TaskState::Completed),
            of(&counts.counts, "bullmq", TaskState::Failed)
        ),
        "bullmq-official's getJobCounts"
    );
    for (query, state) in [
        ("ExecutionStatus='Completed'", TaskState::Completed),
        ("ExecutionStatus='Failed'", TaskState::Failed),
        ("ExecutionStatus='Running'", TaskState::Running),
    ] {
        assert_eq!(
            temporal_count(&temporal, query).await,
            of(&counts.counts, "temporal", state),
            "{query}"
        );
    }

    // Redis stopped: Temporal still lists and counts within the timeout; BullMQ is an
    // `errors` entry.
    redis.stop();
    let page = list_with_one_down(&orch, 100, "bullmq").await;
    assert_eq!(page.tasks.len(), 20, "{:?}", page.errors);
    assert!(page.tasks.iter().all(|s| s.task_id.backend() == "temporal"));
    let t = Instant::now();
    let counts = orch
        .counts(&ListFilter::all(), Duration::from_secs(2))
        .await
        .expect("counts");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(of(&counts.counts, "temporal", TaskState::Running), 5);
    assert_eq!(
        counts
            .errors
            .iter()
            .map(|e| e.backend.as_str())
            .collect::<Vec<_>>(),
        ["bullmq"]
    );
}

/// n8n's own number of executions in `status` (paging its list).
async fn n8n_count(server: &N8nServer, status: &str) -> u64 {
    let http = reqwest::Client::new();
    let mut cursor = String::new();
    let mut n = 0;
    loop {
        let mut url = format!(
            "{}/api/v1/executions?status={status}&limit=250",
            server.url()
        );
        if !cursor.is_empty() {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let v: Value = http
            .get(url)
            .header("X-N8N-API-KEY", server.api_key())
            .send()
            .await
            .expect("executions")
            .json()
            .await
            .expect("json");
        n += v["data"].as_array().expect("data").len() as u64;
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return n,
        }
    }
}

async fn n8n_executions_listed_once_with_their_origin_and_counts_agree() {
    let mut server = N8nServer::start();
    let backend = N8nBackend::new(
        N8nConfig::new(server.url())
            .api_key(server.api_key())
            .delivery(Duration::from_secs(10), 3, Duration::from_millis(100)),
    )
    .expect("n8n");
    let orch = Orchestrator::builder()
        .backend(Arc::new(backend))
        .build()
        .expect("orchestrator");
    let to = |wf: &str| TaskOptions::integration(N8nOptions::workflow(wf));
    let mut ours: HashSet<TaskId> = HashSet::new();
    // 260 completed (more than one page of n8n's list), 3 failed, 2 held, 1 cancelled.
    let echoed = orch
        .schedule_bulk((0..260).map(|i| {
            (
                "echoed".to_string(),
                json!({ "i": i }),
                to("otConfEcho000001"),
            )
        }))
        .await
        .expect("bulk");
    ours.extend(echoed.into_iter().map(|r| r.expect("scheduled")));
    for i in 0..3 {
        ours.insert(
            orch.schedule_external_integration(
                "failing",
                json!({ "i": i }),
                to("otFailTracked001"),
            )
            .await
            .expect("schedule"),
        );
    }
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(
            orch.schedule_external_integration(
                "held",
                json!({ "i": i, "seconds": 60 }),
                to("otWait0000000001"),
            )
            .await
            .expect("schedule"),
        );
    }
    assert!(orch.cancel_task(&held[2]).await.expect("cancel"));
    ours.extend(held.iter().cloned());
    // Three executions started by plain webhook calls: one completes, two wait.
    let http = reqwest::Client::new();
    for (path, body) in [
        ("orchestrator-conf-echo", json!({"outside": 1})),
        ("orchestrator-test-wait", json!({"seconds": 60})),
        ("orchestrator-test-wait", json!({"seconds": 60})),
    ] {
        let r = http
            .post(format!("{}/webhook/{path}", server.url()))
            .json(&body)
            .send()
            .await
            .expect("webhook");
        assert!(r.status().is_success(), "{r:?}");
    }
    let handle = orch.backend("n8n").expect("n8n");
    for id in &ours {
        if !held.contains(id) {
            wait_finished(&handle, id, Duration::from_secs(30)).await;
        }
    }

    // Every execution exactly once, pages of 7; ours under the ids `schedule` returned.
    let all = settled(&orch, &ListFilter::all(), 7, ours.len() + 3).await;
    let listed: HashSet<TaskId> = all.iter().map(|s| s.task_id.clone()).collect();
    assert!(ours.is_subset(&listed), "some of ours not listed");
    let external: Vec<&TaskStatus> = all.iter().filter(|s| !ours.contains(&s.task_id)).collect();
    assert_eq!(external.len(), 3, "{external:#?}");
    assert!(
        external.iter().all(|s| s.origin == Origin::External),
        "{external:#?}"
    );
    assert!(
        all.iter()
            .filter(|s| ours.contains(&s.task_id))
            .all(|s| s.origin == Origin::Orchestrator)
    );
    for s in &all {
        let direct = orch.get_task_status(&s.task_id).await.expect("status");
        assert_eq!(
            (direct.state, direct.origin, direct.created_at),
            (s.state, s.origin, s.created_at),
            "{}",
            s.task_id
        );
    }
    let ids =
        |v: &[TaskStatus]| -> HashSet<TaskId> { v.iter().map(|s| s.task_id.clone()).collect() };
    let ids_where = |pred: &dyn Fn(&TaskStatus) -> bool| -> HashSet<TaskId> {
        all.iter()
            .filter(|s| pred(s))
            .map(|s| s.task_id.clone())
            .collect()
    };
    for (state, n) in [
        (TaskState::Completed, 261),
        (TaskState::Failed, 3),
        (TaskState::Running, 4),
        (TaskState::Cancelled, 1),
    ] {
        let some = listing(&orch, &ListFilter::all().with_state(state), 50).await;
        assert_eq!(ids(&some), ids_where(&|s| s.state == state), "{state:?}");
        assert_eq!(some.len(), n, "{state:?}");
    }
    let named = listing(&orch, &ListFilter::all().with_name("held"), 2).await;
    assert_eq!(ids(&named), held.iter().cloned().collect::<HashSet<_>>());
    let by_workflow = listing(&orch, &ListFilter::all().with_name("otWait0000000001"), 2).await;
    assert_eq!(
        by_workflow.len(),
        2,
        "external executions are named by workflow id"
    );
    let mut created: Vec<u64> = all.iter().filter_map(|s| s.created_at).collect();
    created.sort_unstable();
    assert_eq!(created.len(), all.len());
    let (since, until) = (created[created.len() / 3], created[2 * created.len() / 3]);
    let window = listing(
        &orch,
        &ListFilter::all().with_window(Some(since), Some(until)),
        31,
    )
    .await;
    assert_eq!(
        ids(&window),
        ids_where(&|s| s.created_at.is_some_and(|t| since <= t && t < until))
    );

    // `counts` against the listing and n8n's own lists.
    let counts = orch
        .counts(&ListFilter::all(), Duration::from_secs(5))
        .await
        .expect("counts");
    assert!(counts.errors.is_empty(), "{:?}", counts.errors);
    for (state, word) in [
        (TaskState::Completed, "success"),
        (TaskState::Failed, "error"),
        (TaskState::Running, "running"),
        (TaskState::Cancelled, "canceled"),
    ] {
        let listed = all.iter().filter(|s| s.state == state).count() as u64;
        assert_eq!(of(&counts.counts, "n8n", state), listed, "{state:?}");
        assert_eq!(n8n_count(&server, word).await, listed, "n8n's own {word}");
    }
    let named = orch
        .counts(&ListFilter::all().with_name("held"), Duration::from_secs(5))
        .await
        .expect("counts");
    assert_eq!(
        (
            of(&named.counts, "n8n", TaskState::Running),
            of(&named.counts, "n8n", TaskState::Cancelled)
        ),
        (2, 1)
    );

    // An external id from `list` works with `status` and `cancel`.
    let waiting = external
        .iter()
        .find(|s| s.state == TaskState::Running)
        .expect("a running external execution");
    assert_eq!(
        handle.cancel(&waiting.task_id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    let s = wait_finished(&handle, &waiting.task_id, Duration::from_secs(30)).await;
    assert_eq!(
        (s.state, s.origin),
        (TaskState::Cancelled, Origin::External)
    );
    let done = external
        .iter()
        .find(|s| s.state == TaskState::Completed)
        .expect("a completed external execution");
    assert_eq!(
        handle.cancel(&done.task_id).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );
    for id in &held[..2] {
        orch.cancel_task(id).await.expect("cancel");
    }

    // n8n killed: an `errors` entry within the timeout.
    server.kill();
    let page = list_with_one_down(&orch, 10, "n8n").await;
    assert!(page.tasks.is_empty());
}

orchestrator_testkit::engine_tests! {
    [Redis, Temporal, Python, Node] async: every_task_listed_once_counts_agree_and_a_stopped_engine_is_reported;
    [N8n] async: n8n_executions_listed_once_with_their_origin_and_counts_agree;
}
