//! Temporal-specific behaviour on a real dev server: closings, cross-language workers,
//! bad input and faults.

mod support;

use std::time::{Duration, Instant};

use backend_temporal::{TemporalBackend, TemporalConfig};
use orchestrator_core::{
    Backend, CancelOutcome, ErrorKind, IdConflictPolicy, Orchestrator, ScheduleRequest,
    TaskOptions, TaskState, TaskType, TemporalOptions,
};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::json;
use support::{TemporalServer, TestWorker, unique};

fn complex(wf: &str, queue: &str, args: Vec<serde_json::Value>) -> TaskOptions {
    TaskOptions::complex(TemporalOptions::new(wf, queue).args(args))
}

async fn start(b: &TemporalBackend, name: &str, o: TaskOptions) -> orchestrator_core::TaskId {
    b.schedule(ScheduleRequest::new(name, json!(null), o).expect("valid"))
        .await
        .expect("schedule")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_terminate_fail_and_timeout_show_their_states() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
    let b = support::backend(&server);
    let q = unique("closings");
    let _w = TestWorker::start(&b, &q).await;

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
    let s = wait_finished(&b, &long, Duration::from_secs(10)).await;
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
    let s = wait_finished(&b, &other, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Terminated);

    let failing = start(
        &b,
        "failing",
        complex("fail", &q, vec![json!("the migration broke")]),
    )
    .await;
    let s = wait_finished(&b, &failing, Duration::from_secs(10)).await;
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
    let s = wait_finished(&b, &timed, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::TimedOut);

    // Continue-as-new: the task's status follows the chain to the latest run.
    let chain = start(&b, "chain", complex("countdown", &q, vec![json!(3)])).await;
    let s = wait_finished(&b, &chain, Duration::from_secs(20)).await;
    assert_eq!(
        (s.state, s.result.clone()),
        (TaskState::Completed, Some(json!("done"))),
        "{s:?}"
    );

    let done = start(&b, "short", complex("sleep", &q, vec![json!(0)])).await;
    let s = wait_finished(&b, &done, Duration::from_secs(10)).await;
    assert_eq!(
        (s.state, s.result),
        (TaskState::Completed, Some(json!("slept")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_nobody_serves_is_pending_and_duplicates_follow_the_policy() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
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
    b.schedule(ScheduleRequest::new("memo", payload.clone(), with_args.clone()).expect("valid"))
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
    let big = json!({"blob": "x".repeat(orchestrator_core::validate::MAX_MEMO_PAYLOAD)});
    let wf2 = unique("memo-big");
    let e = b
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_runs_a_workflow_the_orchestrator_started() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
    let q = unique("python");
    let Some(mut worker) = support::python_worker(&server, &q, 60).await else {
        return;
    };

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
    let s = wait_finished(&*b, &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(
        s.result,
        Some(json!({"lang": "python", "obj": obj, "n": 42, "workflowType": "py_echo"}))
    );
    let _ = worker.kill().await;
}

#[tokio::test]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_a_typed_config_error() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
    let b = TemporalBackend::new(TemporalConfig::new(server.url()).namespace("no-such-namespace"))
        .expect("backend");
    let e = b.health().await.expect_err("namespace");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("no-such-namespace"), "{e}");
    let e = b
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

#[tokio::test]
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_id_names_its_own_run_chain_only() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
    let b = support::backend(&server);
    let q = unique("identity");
    let _w = TestWorker::start(&b, &q).await;
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
    let s = wait_finished(&b, &first, Duration::from_secs(10)).await;
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
    match b.schedule(req).await {
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
}

/// A payload of exactly `max_payload_bytes` (1.5 MiB by default, under Temporal's 2 MB
/// blob limit) starts a workflow whose activity receives all of it; one byte more is
/// refused before any call to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_at_and_over_the_limit() {
    let Some(server) = TemporalServer::start().await else {
        return;
    };
    let b = support::backend(&server);
    let q = unique("limit");
    support::set_handler(
        &q,
        orchestrator_testkit::Handler::new(|ctx: orchestrator_testkit::TaskContext| async move {
            Ok(json!(ctx.payload["blob"].as_str().map_or(0, str::len)))
        }),
    );
    let _w = TestWorker::start(&b, &q).await;
    let limit = orchestrator_core::validate::DEFAULT_MAX_PAYLOAD_COMPLEX;
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
        .schedule(req(limit + 1))
        .await
        .expect_err("over the limit");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains(&limit.to_string()), "{e}");
    let id = b.schedule(req(limit)).await.expect("at the limit");
    let s = wait_finished(&b, &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!(limit - 11)));
}
