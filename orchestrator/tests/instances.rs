//! Two instances of one kind: two Redis deployments in one orchestrator, configured the
//! way a user would (TOML instance tables and the instance environment syntax).

use std::time::Duration;

use orchestrator::bullmq::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator::testkit::conformance::wait_finished;
use orchestrator::{
    CancelOutcome, Orchestrator, OrchestratorConfig, Registry, TaskOptions, TaskState,
    TemporalOptions,
};
use orchestrator_testkit::engines::{RedisServer, unique};
use serde_json::{Value, json};

async fn waiting(url: &str, queue: &str) -> usize {
    let b = BullmqBackend::new(BullmqConfig::new(url)).expect("backend");
    let q = b.queue(queue).await.expect("queue");
    q.get_waiting(0, -1).await.expect("waiting").len()
}

async fn two_bullmq_instances_route_by_id() {
    let (eu, us) = (RedisServer::start(), RedisServer::start());
    let config = OrchestratorConfig::from_toml_str(&format!(
        r#"
        [routing]
        simple = "bullmq-eu"
        complex = "memory-temporal"

        [backends.bullmq-eu]
        kind = "bullmq"
        url = "{}"
        "#,
        eu.url()
    ))
    .expect("toml");
    // The second instance comes from the environment syntax.
    let names = Registry::global().names();
    let env = OrchestratorConfig::from_vars(
        [
            (
                "ORCHESTRATOR_BACKENDS__BULLMQ_US__KIND",
                "bullmq".to_string(),
            ),
            ("ORCHESTRATOR_BACKENDS__BULLMQ_US__URL", us.url()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
        &names,
    )
    .expect("env");
    let orch = Orchestrator::builder()
        .config(config)
        .config(env)
        .build()
        .expect("orchestrator");
    let names: Vec<String> = orch.backends().into_iter().map(|b| b.name).collect();
    assert!(
        names.contains(&"bullmq-eu".into()) && names.contains(&"bullmq-us".into()),
        "{names:?}"
    );

    // Scheduled on the routed instance only.
    let q = unique("inst");
    let id = orch
        .schedule_simple_task(&q, json!({"n": 1}), TaskOptions::simple())
        .await
        .expect("schedule");
    assert_eq!(id.backend(), "bullmq-eu");
    assert_eq!(waiting(&eu.url(), &q).await, 1);
    assert_eq!(waiting(&us.url(), &q).await, 0);

    // Status and cancel route back by id.
    let s = orch.get_task_status(&id).await.expect("status");
    assert_eq!(s.state, TaskState::Pending, "{s:?}");
    assert_eq!(
        orch.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(waiting(&eu.url(), &q).await, 0);

    // The same job id on the other instance is another task.
    let us_backend = orch.backend("bullmq-us").expect("bullmq-us");
    let req =
        orchestrator::ScheduleRequest::new(q.as_str(), json!({"n": 2}), TaskOptions::simple())
            .expect("valid");
    let us_id = us_backend.schedule(req).await.expect("schedule on us");
    assert_eq!(us_id.backend(), "bullmq-us");
    assert_eq!(us_id.native(), id.native(), "both queues start at job 1");
    assert_eq!(
        orch.get_task_status(&us_id).await.expect("status").state,
        TaskState::Pending
    );
    assert_eq!(
        orch.get_task_status(&id)
            .await
            .expect("cancelled on eu")
            .state,
        TaskState::Cancelled
    );

    // A Rust worker on bullmq-eu sees task ids of its instance.
    let eu_backend = BullmqBackend::named("bullmq-eu", BullmqConfig::new(eu.url())).expect("eu");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let w = eu_backend
        .worker(
            &q,
            WorkerConfig::default(),
            move |ctx: JobContext<Value>| {
                let log = log.clone();
                async move {
                    log.lock().expect("log").push(ctx.task_id.to_string());
                    Ok::<_, HandlerError>(json!(null))
                }
            },
        )
        .await
        .expect("worker");
    let id2 = orch
        .schedule_simple_task(&q, json!({"n": 3}), TaskOptions::simple())
        .await
        .expect("schedule");
    wait_finished(
        &orch.backend("bullmq-eu").expect("eu"),
        &id2,
        Duration::from_secs(10),
    )
    .await;
    w.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(*seen.lock().expect("log"), vec![id2.to_string()]);
    assert!(id2.to_string().starts_with("bullmq-eu:"));

    // A tracking job goes to the instance the SIMPLE route names.
    let tq = unique("track");
    orch.schedule_complex_workflow(
        "wf",
        json!({}),
        TaskOptions::complex(TemporalOptions::new("wf", "q").tracking_queue(&tq)),
    )
    .await
    .expect("workflow");
    assert_eq!(waiting(&eu.url(), &tq).await, 1);
    assert_eq!(waiting(&us.url(), &tq).await, 0);
}

/// A bad setting of a named instance is named by its instance's key, not the kind's.
fn a_bad_instance_setting_names_its_instance() {
    for (kind, key, lines) in [
        ("bullmq", "url", "url = \"http://h\""),
        (
            "bullmq",
            "prefix",
            "url = \"redis://127.0.0.1:1\"\nprefix = \"a:b\"",
        ),
        ("n8n", "url", "url = \"redis://h\""),
        ("temporal", "url", "url = \"not a url\""),
    ] {
        let text = format!("[backends.eu-{kind}]\nkind = \"{kind}\"\n{lines}\n");
        let e = OrchestratorConfig::from_toml_str(&text)
            .and_then(|c| Orchestrator::builder().config(c).build())
            .map(|_| ())
            .expect_err(&text);
        let named = format!("backends.eu-{kind}.{key}");
        assert!(e.to_string().contains(&named), "{text}: {e}");
    }
}

orchestrator_testkit::engine_tests! {
    [Redis] async: two_bullmq_instances_route_by_id;
    [] sync: a_bad_instance_setting_names_its_instance;
}
