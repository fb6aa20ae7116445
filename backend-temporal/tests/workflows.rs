//! Temporal-specific behaviour on a real dev server: closings, cross-language workers,
//! bad input and faults.

mod support;

use orchestrator_testkit::Checked;
use std::time::{Duration, Instant};

use backend_temporal::IdConflictPolicy;
use backend_temporal::TemporalOptions;
use backend_temporal::{TemporalBackend, TemporalConfig};
use orchestrator_core::raw::Backend;
use orchestrator_core::{
    CancelOutcome, ErrorKind, Orchestrator, ScheduleRequest, TaskOptions, TaskState, TaskType,
};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::json;
use support::{TemporalServer, TestWorker, unique};

fn complex(wf: &str, queue: &str, args: Vec<serde_json::Value>) -> TaskOptions {
    TaskOptions::complex(TemporalOptions::new(wf, queue).args(args))
}

async fn start(b: &TemporalBackend, name: &str, o: TaskOptions) -> orchestrator_core::TaskId {
    b.checked()
        .schedule(ScheduleRequest::new(name, json!(null), o).expect("valid"))
        .await
        .expect("schedule")
}

async fn cancel_terminate_fail_and_timeout_show_their_states() {
    let server = TemporalServer::start().await;
    let b = support::backend(&server);
    let q = unique("closings");
    let mut test_worker = TestWorker::start(&b, &q).await;

    let long = start(&b, "long", complex("sleep", &q, vec![json!(3600)])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.status(&long).await.expect("status").state,
        TaskState::Running
    );
    assert_eq!(
        b.cancel(&long).await.expect("cancel"),
        CancelOutcome::CancelRequested
    );
    let s = wait_finished(&b.checked(), &long, Duration::from_secs(10)).await;
    assert_eq!(
        (s.state, s.native_state.as_str()),
        (TaskState::Cancelled, "Canceled")
    );
    assert_eq!(
        b.cancel(&long).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );

    let other = start(&b, "long", complex("sleep", &q, vec![json!(3600)])).await;
    assert_eq!(
        b.terminate(&other, "test").await.expect("terminate"),
        CancelOutcome::Cancelled
    );
    let s = wait_finished(&b.checked(), &other, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Terminated);

    let failing = start(
        &b,
        "failing",
        complex("fail", &q, vec![json!("the migration broke")]),
    )
    .await;
    let s = wait_finished(&b.checked(), &failing, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Failed);
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("the migration broke"),
        "{s:?}"
    );

    let timed = TemporalOptions::new("sleep", &q)
        .args(vec![json!(60)])
        .execution_timeout(Duration::from_secs(1));
    let timed = start(&b, "timed", TaskOptions::complex(timed)).await;
    let s = wait_finished(&b.checked(), &timed, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::TimedOut);

    // Continue-as-new: the task's status follows the chain to the latest run.
    let chain = start(&b, "chain", complex("countdown", &q, vec![json!(3)])).await;
    let s = wait_finished(&b.checked(), &chain, Duration::from_secs(20)).await;
    assert_eq!(
        (s.state, s.result.clone()),
        (TaskState::Completed, Some(json!("done"))),
        "{s:?}"
    );

    let done = start(&b, "short", complex("sleep", &q, vec![json!(0)])).await;
    let s = wait_finished(&b.checked(), &done, Duration::from_secs(10)).await;
    assert_eq!(
        (s.state, s.result),
        (TaskState::Completed, Some(json!("slept")))
    );
    test_worker.stop().expect("the Temporal test worker");
}

async fn a_workflow_nobody_serves_is_pending_and_duplicates_follow_the_policy() {
    let server = TemporalServer::start().await;
    let b = support::backend(&server);
    let q = unique("noworker");
    let id = start(
        &b,
        "orphan",
        complex("sleep", &q, vec![json!(1)]).task_type(TaskType::Complex),
    )
    .await;
    assert_eq!(
        b.status(&id).await.expect("status").state,
        TaskState::Pending
    );

    let fixed = TemporalOptions::new("sleep", &q)
        .workflow_id("fixed-id")
        .args(vec![json!(1)]);
    let first = start(&b, "dup", TaskOptions::complex(fixed.clone())).await;
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new("dup", json!(null), TaskOptions::complex(fixed.clone()))
                .expect("valid"),
        )
        .await
        .expect_err("duplicate");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let same = start(
        &b,
        "dup",
        TaskOptions::complex(fixed.id_conflict_policy(IdConflictPolicy::UseExisting)),
    )
    .await;
    assert_eq!(same, first);

    // The seed's full example passes a payload *and* workflowArgs: the arguments go to the
    // workflow, the payload to its memo (`orchestratorPayload`), never dropped.
    let payload =
        json!({"projectId": "p1", "prepTaskId": "bullmq:prep:1", "options": {"dryRun": true}});
    let wf = unique("memo");
    let with_args = TaskOptions::complex(
        TemporalOptions::new("sleep", &q)
            .workflow_id(&wf)
            .args(vec![json!(1)]),
    );
    b.checked()
        .schedule(ScheduleRequest::new("memo", payload.clone(), with_args.clone()).expect("valid"))
        .await
        .expect("schedule");
    let client = b.client().await.expect("client");
    let desc = temporalio_client::WorkflowExecutionInfo::builder()
        .namespace("default".to_string())
        .workflow_id(wf.as_str())
        .build()
        .bind_untyped(client.clone())
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .expect("describe");
    let memo = desc
        .raw()
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.memo.as_ref())
        .and_then(|m| m.fields.get("orchestratorPayload"))
        .expect("payload in the memo");
    let kept: serde_json::Value = serde_json::from_slice(&memo.data).expect("JSON");
    assert_eq!(kept, payload);
    // Too big for the memo: refused before anything starts, with the limit in the message.
    let big = json!({"blob": "x".repeat(backend_temporal::spec::MAX_MEMO_PAYLOAD)});
    let wf2 = unique("memo-big");
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new(
                "memo",
                big,
                TaskOptions::complex(
                    TemporalOptions::new("sleep", &q)
                        .workflow_id(&wf2)
                        .args(vec![json!(1)]),
                ),
            )
            .expect("valid"),
        )
        .await
        .expect_err("too big");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("262144"), "{e}");
}

async fn a_python_worker_runs_a_workflow_the_orchestrator_started() {
    let server = TemporalServer::start().await;
    let q = unique("python");
    let mut worker = support::python_worker(&server, &q, 60).await;

    let orch = Orchestrator::builder()
        .backend(std::sync::Arc::new(support::backend(&server)))
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orch");
    let obj = json!({"k": "v", "nested": [1, {"x": null}], "unicode": "é✓"});
    let id = orch
        .schedule_complex_workflow(
            "py-task",
            json!({}),
            TaskOptions::complex(
                TemporalOptions::new("py_echo", &q).args(vec![obj.clone(), json!(42)]),
            ),
        )
        .await
        .expect("schedule");
    let b = orch.backend("temporal").expect("backend");
    let s = wait_finished(&b, &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(
        s.result,
        Some(json!({"lang": "python", "obj": obj, "n": 42, "workflowType": "py_echo"}))
    );
    let _ = worker.kill().await;
}

async fn server_down_is_unavailable_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let b = TemporalBackend::new(
        TemporalConfig::new(format!("http://127.0.0.1:{port}"))
            .timeouts(Duration::from_millis(800), Duration::from_secs(1)),
    )
    .expect("backend");
    let t = Instant::now();
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new("x", json!(null), complex("sleep", "q", vec![])).expect("valid"),
        )
        .await
        .expect_err("down");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

async fn unknown_namespace_is_a_typed_config_error() {
    let server = TemporalServer::start().await;
    let b = TemporalBackend::new(TemporalConfig::new(server.url()).namespace("no-such-namespace"))
        .expect("backend");
    let e = b.health().await.expect_err("namespace");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("no-such-namespace"), "{e}");
    let e = b
        .checked()
        .schedule(
            ScheduleRequest::new("x", json!(null), complex("sleep", "q", vec![])).expect("valid"),
        )
        .await
        .expect_err("namespace");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(
        support::backend(&server)
            .health()
            .await
            .expect("default namespace")
            .ok
    );
}

async fn bad_workflow_options_are_rejected_before_any_rpc() {
    // Port 1: nothing listens, so any RPC would fail as Unavailable, not InvalidInput.
    let b = TemporalBackend::new(TemporalConfig::new("http://127.0.0.1:1")).expect("backend");
    let orch = Orchestrator::builder()
        .backend(std::sync::Arc::new(b))
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orch");
    for (case, opts) in [
        (
            "empty workflow type",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "", "taskQueue": "q"}}),
        ),
        (
            "empty task queue",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "w", "taskQueue": ""}}),
        ),
        ("no temporal options", json!({"taskType": "COMPLEX"})),
    ] {
        let o = TaskOptions::from_json(opts).expect("parse");
        let e = orch
            .schedule_task("t", json!(null), o)
            .await
            .expect_err(case);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{case}: {e}");
    }
    // workflowArgs that are not a JSON array never become options.
    let e = TaskOptions::from_json(
        json!({"taskType": "COMPLEX", "temporal": {"workflowType": "w", "workflowArgs": {"a": 1}}}),
    )
    .expect_err("not an array");
    assert_eq!(e.field, "options");
    // No task queue anywhere: rejected before any RPC.
    let e = orch
        .schedule_task(
            "t",
            json!(null),
            TaskOptions::complex(TemporalOptions {
                workflow_type: "w".into(),
                ..Default::default()
            }),
        )
        .await
        .expect_err("no queue");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // Options Temporal cannot honour are refused, not dropped.
    let e = orch
        .schedule_task(
            "t",
            json!(null),
            complex("w", "q", vec![]).delay(Duration::from_secs(5)),
        )
        .await
        .expect_err("delay");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// A task id names the chain its first run began: a later, separate start with the same
/// workflow id is another task; status and cancel of the first id never touch it.
async fn a_task_id_names_its_own_run_chain_only() {
    let server = TemporalServer::start().await;
    let b = support::backend(&server);
    let q = unique("identity");
    let mut test_worker = TestWorker::start(&b, &q).await;
    let wf = unique("order");
    let opts = || {
        TaskOptions::complex(
            TemporalOptions::new("sleep", &q)
                .args(vec![json!(3600)])
                .workflow_id(&wf),
        )
    };
    let first = start(&b, "order", opts()).await;
    assert_eq!(
        b.cancel(&first).await.expect("cancel"),
        CancelOutcome::CancelRequested
    );
    let s = wait_finished(&b.checked(), &first, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Cancelled, "{s:?}");

    let second = start(&b, "order", opts()).await;
    assert_ne!(first, second, "a new start is a new task");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first id still reads its own (cancelled) run, not the new one.
    let s = b.status(&first).await.expect("status");
    assert_eq!(s.state, TaskState::Cancelled, "{s:?}");
    assert_eq!(
        b.cancel(&first).await.expect("cancel"),
        CancelOutcome::NotCancellableFinished
    );
    // ... and cancelling it left the second running.
    let s = b.status(&second).await.expect("status");
    assert_eq!(s.state, TaskState::Running, "{s:?}");

    // A duplicate start under FAIL names the running chain, run id included.
    let req = ScheduleRequest::new("order", json!(null), opts()).expect("valid");
    match b.checked().schedule(req).await {
        Err(orchestrator_core::Error::AlreadyExists { task_id }) => {
            assert_eq!(task_id, second.to_string());
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    // Malformed ids are typed errors before any RPC.
    for bad in [
        format!("temporal:{wf}"),
        format!("temporal:{wf}:42"),
        "temporal:order:not-a-uuid".to_string(),
    ] {
        let id: orchestrator_core::TaskId = bad.parse().expect("well-formed task id");
        let e = b.status(&id).await.expect_err(&bad);
        assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{bad}: {e}");
    }
    let _ = b.terminate(&second, "test done").await;
    test_worker.stop().expect("the Temporal test worker");
}

/// A payload of exactly `max_payload_bytes` (1.5 MiB by default, under Temporal's 2 MB
/// blob limit) starts a workflow whose activity receives all of it; one byte more is
/// refused before any call to the server.
async fn payloads_at_and_over_the_limit() {
    let server = TemporalServer::start().await;
    let b = support::backend(&server);
    let q = unique("limit");
    support::set_handler(
        &q,
        orchestrator_testkit::Handler::new(|ctx: orchestrator_testkit::TaskContext| async move {
            Ok(json!(ctx.payload["blob"].as_str().map_or(0, str::len)))
        }),
    );
    let mut test_worker = TestWorker::start(&b, &q).await;
    let limit = backend_temporal::spec::DEFAULT_MAX_PAYLOAD;
    // `{"blob":"…"}` is 11 bytes around the string.
    let blob = |size: usize| json!({"blob": "x".repeat(size - 11)});
    let req = |size: usize| {
        ScheduleRequest::new(
            "limit",
            blob(size),
            TaskOptions::complex(TemporalOptions::new("conformance", &q)),
        )
        .expect("valid")
    };
    let e = b
        .checked()
        .schedule(req(limit + 1))
        .await
        .expect_err("over the limit");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains(&limit.to_string()), "{e}");
    let id = b
        .checked()
        .schedule(req(limit))
        .await
        .expect("at the limit");
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!(limit - 11)));
    test_worker.stop().expect("the Temporal test worker");
}

/// Runs `temporal <args>` against `server` and returns its stdout (the CLI as an outside
/// producer).
async fn cli(server: &TemporalServer, args: &[&str]) -> String {
    let out = tokio::process::Command::new(support::temporal_cli())
        .args(args)
        .arg("--address")
        .arg(format!("127.0.0.1:{}", server.port))
        .output()
        .await
        .expect("temporal CLI");
    assert!(out.status.success(), "temporal {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every page of `filter`, `limit` at a time, once the listing holds `expected` tasks (the
/// visibility store is eventually consistent; at most 10 s).
async fn listed(
    b: &TemporalBackend,
    filter: &orchestrator_core::ListFilter,
    limit: usize,
    expected: usize,
) -> Vec<orchestrator_core::TaskStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut all: Vec<orchestrator_core::TaskStatus> = Vec::new();
        let mut resume: Option<String> = None;
        for _ in 0..100 {
            let page = b
                .checked()
                .list(filter, resume.as_deref(), limit)
                .await
                .expect("list");
            resume = page.tasks.last().map(|l| l.resume.clone()).or(page.end);
            for l in page.tasks {
                assert!(
                    all.iter().all(|s| s.task_id != l.status.task_id),
                    "{} listed twice",
                    l.status.task_id
                );
                all.push(l.status);
            }
            if page.exhausted {
                break;
            }
        }
        if all.len() == expected || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `list` shows each run chain once (continue-as-new and retries included) with the id
/// `status` takes, workflows started by the Temporal CLI as `external` (their ids work with
/// `status` and `cancel`), filters by name through the search attribute, and `counts`
/// reports the store's runs; a namespace without the attribute still schedules and lists,
/// and refuses name filters as `Unsupported`.
async fn list_shows_each_chain_once_and_outside_workflows_as_external() {
    use orchestrator_core::{ListFilter, Origin};
    let server = TemporalServer::start().await;
    let b = support::backend(&server);
    let q = unique("listing");
    let mut test_worker = TestWorker::start(&b, &q).await;
    let name = unique("listed");
    let chain = start(&b, &name, complex("countdown", &q, vec![json!(3)])).await;
    let retried = start(
        &b,
        &name,
        TaskOptions::complex(TemporalOptions::new("fail", &q).args(vec![json!("no")]))
            .attempts(2)
            .backoff(orchestrator_core::Backoff::Fixed { delay_ms: 1000 }),
    )
    .await;
    let running = start(&b, &name, complex("sleep", &q, vec![json!(3600)])).await;
    for id in [&chain, &retried] {
        wait_finished(&b.checked(), id, Duration::from_secs(30)).await;
    }
    let ext = unique("ext");
    cli(
        &server,
        &[
            "workflow",
            "start",
            "--type",
            "sleep",
            "--task-queue",
            &q,
            "--workflow-id",
            &ext,
            "--input",
            "3600",
        ],
    )
    .await;

    let all = listed(&b, &ListFilter::all(), 1, 4).await;
    assert_eq!(all.len(), 4, "{all:#?}");
    for s in &all {
        let again = b.status(&s.task_id).await.expect("status of a listed id");
        assert_eq!(
            (s.state, s.origin, s.created_at),
            (again.state, again.origin, again.created_at),
            "{}",
            s.task_id
        );
    }
    let find = |id: &orchestrator_core::TaskId| all.iter().find(|s| &s.task_id == id);
    assert_eq!(find(&chain).map(|s| s.state), Some(TaskState::Completed));
    assert_eq!(find(&retried).map(|s| s.state), Some(TaskState::Failed));
    assert_eq!(find(&running).map(|s| s.origin), Some(Origin::Orchestrator));
    let outside = all
        .iter()
        .find(|s| s.task_id.native().starts_with(&format!("{ext}:")))
        .expect("the CLI's workflow is listed");
    assert_eq!(outside.origin, Origin::External);
    assert_eq!(
        b.cancel(&outside.task_id).await.expect("cancel"),
        CancelOutcome::CancelRequested
    );
    let s = wait_finished(&b.checked(), &outside.task_id, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Cancelled);

    // By name: ours only (the CLI's workflow has no name attribute).
    let by_name = ListFilter::all().with_name(&name);
    let ours = listed(&b, &by_name, 2, 3).await;
    assert_eq!(ours.len(), 3, "{ours:#?}");
    let ours: std::collections::HashSet<_> = ours.into_iter().map(|s| s.task_id).collect();
    assert_eq!(
        ours,
        [chain.clone(), retried.clone(), running.clone()].into()
    );
    let failed = listed(&b, &by_name.clone().with_state(TaskState::Failed), 10, 1).await;
    assert_eq!(failed.len(), 1, "the retried chain once: {failed:#?}");
    // Counts are the store's runs: the failed attempt a retry followed counts too.
    let counts = b.checked().counts(&by_name).await.expect("counts");
    let of = |state| {
        counts
            .iter()
            .filter(|(s, _)| *s == state)
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    assert_eq!(
        (
            of(TaskState::Completed),
            of(TaskState::Failed),
            of(TaskState::Running)
        ),
        (1, 2, 1),
        "{counts:?}"
    );

    // A namespace without the attribute: scheduling works, name filters are refused.
    cli(
        &server,
        &["operator", "namespace", "create", "--namespace", "bare"],
    )
    .await;
    let bare = TemporalBackend::new(
        TemporalConfig::new(server.url())
            .namespace("bare")
            .timeouts(Duration::from_secs(5), Duration::from_secs(10)),
    )
    .expect("backend");
    let id = start(&bare, &name, complex("sleep", &q, vec![json!(1)])).await;
    let e = bare
        .checked()
        .list(&by_name, None, 10)
        .await
        .expect_err("no attribute");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("OrchestratorTaskName"), "{e}");
    let e = bare
        .checked()
        .counts(&by_name)
        .await
        .expect_err("no attribute");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let unnamed = listed(&bare, &ListFilter::all(), 10, 1).await;
    assert_eq!(
        unnamed.iter().map(|s| &s.task_id).collect::<Vec<_>>(),
        [&id]
    );
    let e = b
        .checked()
        .list(&ListFilter::all(), Some("[\"!!\",10,0,\"\"]"), 10)
        .await
        .expect_err("junk position");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // A start between two pages shifts the store's rows down: the listing goes on after
    // the last run it examined, neither repeating nor skipping one.
    let first = b
        .checked()
        .list(&ListFilter::all(), None, 1)
        .await
        .expect("list");
    let mut seen = vec![first.tasks[0].status.task_id.clone()];
    let mut resume = first.tasks[0].resume.clone();
    let newcomer = start(&b, &name, complex("sleep", &q, vec![json!(3600)])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b
        .checked()
        .list(&ListFilter::all(), None, 1)
        .await
        .expect("list")
        .tasks[0]
        .status
        .task_id
        != newcomer
    {
        assert!(Instant::now() < deadline, "the new start never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..50 {
        let page = b
            .checked()
            .list(&ListFilter::all(), Some(&resume), 1)
            .await
            .expect("list");
        for l in page.tasks {
            assert!(
                !seen.contains(&l.status.task_id),
                "{} listed again after a start shifted the rows",
                l.status.task_id
            );
            seen.push(l.status.task_id);
            resume = l.resume;
        }
        if page.exhausted {
            break;
        }
    }
    for id in [&chain, &retried, &running, &outside.task_id] {
        assert!(
            seen.contains(id),
            "{id} skipped after a start shifted the rows"
        );
    }
    let _ = b.terminate(&running, "test done").await;
    let _ = b.terminate(&newcomer, "test done").await;
    test_worker.stop().expect("the Temporal test worker");
}

orchestrator_testkit::engine_tests! {
    [Temporal, Python] async: cancel_terminate_fail_and_timeout_show_their_states, a_workflow_nobody_serves_is_pending_and_duplicates_follow_the_policy, a_python_worker_runs_a_workflow_the_orchestrator_started, server_down_is_unavailable_within_the_timeout, unknown_namespace_is_a_typed_config_error, bad_workflow_options_are_rejected_before_any_rpc, a_task_id_names_its_own_run_chain_only, payloads_at_and_over_the_limit, list_shows_each_chain_once_and_outside_workflows_as_external;
}
