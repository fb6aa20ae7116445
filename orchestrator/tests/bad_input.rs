//! Bad input gets a typed error and never a panic: a table of cases through the public API.

use orchestrator::{ErrorKind, TaskOptions};
use serde_json::{Value, json};

fn opts(v: Value) -> TaskOptions {
    TaskOptions::from_json(v).expect("options parse")
}

/// (case, task name, options as the seed's JSON, expected error field)
fn schedule_cases() -> Vec<(&'static str, String, Value, &'static str)> {
    let long = "x".repeat(600);
    vec![
        ("empty name", String::new(), json!({}), "name"),
        ("whitespace name", " q".into(), json!({}), "name"),
        ("control char in name", "q\u{7}".into(), json!({}), "name"),
        ("name too long", long, json!({}), "name"),
        ("queue name with colon", "a:b".into(), json!({}), "name"),
        (
            "attempts zero",
            "q".into(),
            json!({"attempts": 0}),
            "attempts",
        ),
        (
            "priority above limit",
            "q".into(),
            json!({"priority": 2_097_152}),
            "priority",
        ),
        (
            "delay too far",
            "q".into(),
            json!({"delay": 900_000_000_000_000u64}),
            "delay",
        ),
        (
            "attempts above 1000",
            "q".into(),
            json!({"attempts": 1_000_000_000}),
            "attempts",
        ),
        (
            "backoff delay u64::MAX",
            "q".into(),
            json!({"attempts": 2, "backoff": {"type": "fixed", "delay": u64::MAX}}),
            "backoff.delay",
        ),
        (
            "exponential retry horizon past the cap",
            "q".into(),
            json!({"attempts": 100, "backoff": {"type": "exponential", "delay": 1000}}),
            "backoff",
        ),
        (
            "deduplication ttl u64::MAX",
            "q".into(),
            json!({"deduplication": {"id": "d", "ttl": u64::MAX}}),
            "deduplication.ttl",
        ),
        ("job id zero", "q".into(), json!({"jobId": "0"}), "jobId"),
        (
            "job id 0: prefix",
            "q".into(),
            json!({"jobId": "0:abc"}),
            "jobId",
        ),
        (
            "integer job id",
            "q".into(),
            json!({"jobId": "123"}),
            "jobId",
        ),
        (
            "job id with one colon",
            "q".into(),
            json!({"jobId": "a:b"}),
            "jobId",
        ),
        ("empty job id", "q".into(), json!({"jobId": ""}), "jobId"),
        (
            "lifo with priority",
            "q".into(),
            json!({"lifo": true, "priority": 3}),
            "lifo",
        ),
        (
            "complex without temporal",
            "w".into(),
            json!({"taskType": "COMPLEX"}),
            "temporal",
        ),
        (
            "empty workflow type",
            "w".into(),
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": ""}}),
            "temporal.workflowType",
        ),
        (
            "empty task queue",
            "w".into(),
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf", "taskQueue": ""}}),
            "temporal.taskQueue",
        ),
        (
            "tracking queue with colon",
            "w".into(),
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf", "trackingQueue": "a:b"}}),
            "temporal.trackingQueue",
        ),
        (
            "zero execution timeout",
            "w".into(),
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf", "executionTimeoutMs": 0}}),
            "temporal.executionTimeoutMs",
        ),
        (
            "integration without n8n",
            "i".into(),
            json!({"taskType": "INTEGRATION"}),
            "n8n",
        ),
        (
            "n8n without target",
            "i".into(),
            json!({"taskType": "INTEGRATION", "n8n": {"integrationSource": "github"}}),
            "n8n",
        ),
        (
            "webhook not a URL",
            "i".into(),
            json!({"taskType": "INTEGRATION", "n8n": {"webhookUrl": "not a url"}}),
            "n8n.webhookUrl",
        ),
        (
            "webhook ftp scheme",
            "i".into(),
            json!({"taskType": "INTEGRATION", "n8n": {"webhookUrl": "ftp://h/x"}}),
            "n8n.webhookUrl",
        ),
    ]
}

/// Options the routed backend does not honour: `Unsupported`, naming option and backend.
#[tokio::test]
async fn unsupported_options_name_option_and_backend() {
    let mem = orchestrator::testkit::in_memory();
    let cases = [
        (
            "jobId on complex",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf"}, "jobId": "abc"}),
            "memory-temporal",
            "jobId",
        ),
        (
            "delay on complex (Temporal has no start delay)",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf"}, "delay": 1000}),
            "memory-temporal",
            "delay",
        ),
        (
            "priority on complex",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf"}, "priority": 2}),
            "memory-temporal",
            "priority",
        ),
        (
            "lifo on integration",
            json!({"taskType": "INTEGRATION", "n8n": {"workflowId": "x"}, "lifo": true}),
            "memory-n8n",
            "lifo",
        ),
        (
            "a temporal block on a SIMPLE task",
            json!({"temporal": {"workflowType": "wf"}}),
            "memory-bullmq",
            "temporal",
        ),
        (
            "an n8n block on a COMPLEX task",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "wf"}, "n8n": {"workflowId": "x"}}),
            "memory-temporal",
            "n8n",
        ),
        (
            "attempts on integration (n8n never re-runs a workflow)",
            json!({"taskType": "INTEGRATION", "n8n": {"workflowId": "x"}, "attempts": 3}),
            "memory-n8n",
            "attempts",
        ),
    ];
    for (case, options, backend, option) in cases {
        let err = mem
            .orchestrator
            .schedule_task("t", json!({}), opts(options))
            .await
            .expect_err(case);
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{case}: {err}");
        match &err {
            orchestrator::Error::UnsupportedOption {
                backend: b,
                option: o,
            } => {
                assert_eq!((b.as_str(), o.as_str()), (backend, option), "{case}");
            }
            other => panic!("{case}: expected UnsupportedOption, got {other:?}"),
        }
        assert!(err.to_string().contains(option), "{case}: {err}");
    }
    assert!(mem.complex.scheduled().is_empty());
    assert!(mem.integration.scheduled().is_empty());
}

#[tokio::test]
async fn invalid_schedules_are_typed_errors() {
    let mem = orchestrator::testkit::in_memory();
    for (case, name, options, field) in schedule_cases() {
        let err = mem
            .orchestrator
            .schedule_task(&name, json!({}), opts(options))
            .await
            .expect_err(case);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}: {err}");
        match &err {
            orchestrator::Error::InvalidInput(v) => assert_eq!(v.field, field, "{case}: {err}"),
            other => panic!("{case}: expected InvalidInput, got {other:?}"),
        }
    }
    // Nothing reached any backend.
    assert!(mem.simple.scheduled().is_empty());
    assert!(mem.complex.scheduled().is_empty());
    assert!(mem.integration.scheduled().is_empty());
}

#[test]
fn malformed_option_objects_are_typed_errors() {
    for (case, v) in [
        ("unknown key", json!({"timeout": 5})),
        ("wrong type", json!({"priority": "high"})),
        ("negative attempts", json!({"attempts": -1})),
        ("bad task type", json!({"taskType": "FAST"})),
        (
            "bad backoff type",
            json!({"backoff": {"type": "linear", "delay": 5}}),
        ),
        (
            "unknown temporal key",
            json!({"taskType": "COMPLEX", "temporal": {"workflowType": "w", "args": []}}),
        ),
    ] {
        let err = TaskOptions::from_json(v).expect_err(case);
        assert_eq!(err.field, "options", "{case}");
    }
}

#[test]
fn seed_option_objects_deserialize_unchanged() {
    let o = opts(
        json!({"taskType": "SIMPLE", "priority": 1, "attempts": 3, "backoff": 300,
        "removeOnComplete": true, "removeOnFail": {"age": 3600, "count": 10}, "delay": 50}),
    );
    assert_eq!(o.backoff, Some(orchestrator::Backoff::fixed(300)));
    let o = opts(
        json!({"taskType": "COMPLEX", "temporal": {"workflowType": "workflowType",
        "workflowArgs": [1, "two"], "taskQueue": "task-queue-name", "trackingQueue": "tracking-queue-name"}}),
    );
    let t: orchestrator::TemporalOptions = o.block().expect("shape").expect("temporal");
    assert_eq!(t.workflow_args.len(), 2);
    let o = opts(
        json!({"taskType": "INTEGRATION", "n8n": {"workflowId": "workflow-id-n8n",
        "webhookUrl": "https://n8n.example.com/webhook/trigger", "integrationSource": "github"}}),
    );
    let n: orchestrator::N8nOptions = o.block().expect("shape").expect("n8n");
    assert_eq!(n.integration_source.as_deref(), Some("github"));
}

#[tokio::test]
async fn bad_task_ids_and_routes_are_typed() {
    let mem = orchestrator::testkit::in_memory();
    let o = &mem.orchestrator;
    for bad in ["", "nocolon", "UPPER:1", "memory-bullmq:", "x:\u{0}"] {
        let e = o.get_task_status(bad).await.expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{bad}: {e}");
        let e = o.cancel_task(bad).await.expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::InvalidTaskId, "{bad}: {e}");
    }
    let e = o
        .get_task_status("elsewhere:1")
        .await
        .expect_err("unknown backend");
    assert_eq!(e.kind(), ErrorKind::NoBackend);
    let e = o
        .get_task_status("memory-bullmq:q:999")
        .await
        .expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(!o.cancel_task("memory-bullmq:q:999").await.expect("cancel"));

    // No backend for a task type: the error names what to configure.
    let bare = orchestrator::Orchestrator::builder()
        .build()
        .expect("empty orchestrator");
    let e = bare
        .schedule_simple_task("q", json!({}), TaskOptions::simple())
        .await
        .expect_err("no route");
    assert_eq!(e.kind(), ErrorKind::NoBackend);
    assert!(e.to_string().contains("ORCHESTRATOR_<KIND>_<KEY>"), "{e}");
    assert!(e.to_string().contains("memory-bullmq"), "{e}");

    // A payload that cannot become JSON.
    let mut map = std::collections::HashMap::new();
    map.insert((1, 2), "tuple keys are not JSON");
    let e = o
        .schedule_simple_task("q", map, TaskOptions::simple())
        .await
        .expect_err("payload");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn faults_injected_in_the_testkit_surface_as_typed_errors() {
    let mem = orchestrator::testkit::in_memory();
    mem.simple.fail_next(1, ErrorKind::Unavailable);
    let e = mem
        .orchestrator
        .schedule_simple_task("q", json!({}), TaskOptions::simple())
        .await
        .expect_err("fault");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    mem.orchestrator
        .schedule_simple_task("q", json!({}), TaskOptions::simple())
        .await
        .expect("next call works");
}

#[tokio::test]
async fn tracking_queue_schedules_a_simple_task_with_the_workflow_id() {
    let mem = orchestrator::testkit::in_memory();
    let id = mem
        .orchestrator
        .schedule_complex_workflow(
            "migration-workflow",
            json!({}),
            TaskOptions::complex(
                orchestrator::TemporalOptions::new("migrationWorkflow", "migrations")
                    .tracking_queue("migration-tracking"),
            ),
        )
        .await
        .expect("scheduled");
    let tracking: Vec<_> = mem
        .simple
        .scheduled()
        .into_iter()
        .filter(|t| t.name == "migration-tracking")
        .collect();
    assert_eq!(tracking.len(), 1);
    assert_eq!(tracking[0].payload["taskId"], json!(id.to_string()));
    assert_eq!(tracking[0].payload["name"], json!("migration-workflow"));
}

#[tokio::test(start_paused = true)]
async fn testkit_works_under_paused_time() {
    let mem = orchestrator::testkit::in_memory();
    mem.simple.handle("later", |_| async { Ok(json!("done")) });
    let id = mem
        .orchestrator
        .schedule_simple_task(
            "later",
            json!({}),
            TaskOptions::simple().delay(std::time::Duration::from_secs(3600)),
        )
        .await
        .expect("scheduled");
    let s = mem.orchestrator.get_task_status(&id).await.expect("status");
    assert_eq!(s.state, orchestrator::TaskState::Delayed);
    tokio::time::sleep(std::time::Duration::from_secs(3601)).await;
    let s = mem.orchestrator.get_task_status(&id).await.expect("status");
    assert_eq!(s.state, orchestrator::TaskState::Completed, "{s:?}");
}

/// The tracking task failing after the workflow started is `TrackingFailed`: it carries
/// the started workflow's id and is never retryable (a retry would start a second one).
#[tokio::test]
async fn tracking_failed_names_the_started_workflow_and_is_not_retryable() {
    let mem = orchestrator::testkit::in_memory();
    mem.simple.fail_next(1, ErrorKind::Unavailable);
    let e = mem
        .orchestrator
        .schedule_complex_workflow(
            "migration",
            json!({}),
            TaskOptions::complex(
                orchestrator::TemporalOptions::new("migrationWorkflow", "q")
                    .tracking_queue("tracking"),
            ),
        )
        .await
        .expect_err("tracking failed");
    assert_eq!(e.kind(), ErrorKind::TrackingFailed, "{e}");
    assert!(!e.is_retryable(), "{e}");
    let orchestrator::Error::TrackingFailed { task_id, .. } = &e else {
        panic!("{e:?}");
    };
    let s = mem
        .orchestrator
        .get_task_status(task_id)
        .await
        .expect("the workflow started");
    assert_eq!(s.source.as_str(), "TEMPORAL");
    assert!(s.tracking_task_id.is_some(), "{s:?}");
}

/// A payload over the backend's limit is refused before any I/O, the limit in the message
/// (1 MiB for SIMPLE by default, the real bullmq backend's default too).
#[tokio::test]
async fn a_payload_over_the_limit_is_refused() {
    let mem = orchestrator::testkit::in_memory();
    let big = json!({"blob": "x".repeat(orchestrator::bullmq::spec::DEFAULT_MAX_PAYLOAD)});
    let e = mem
        .orchestrator
        .schedule_simple_task("q", big, TaskOptions::simple())
        .await
        .expect_err("too big");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("1048576"), "{e}");
    assert!(mem.simple.scheduled().is_empty());
}
