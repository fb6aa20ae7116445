//! End to end with real engines: a COMPLEX task with a tracking queue starts a Temporal
//! workflow and lands a tracking job carrying the workflow's task id on a BullMQ queue.
#![cfg(all(feature = "bullmq", feature = "temporal"))]

use orchestrator_testkit::engines::{RedisServer, TemporalServer};

use std::sync::Arc;

use orchestrator::{Orchestrator, TaskOptions, TaskType, TemporalOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_job_lands_on_the_bullmq_queue() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(temporal) = TemporalServer::start().await else {
        return;
    };
    let bullmq = orchestrator::bullmq::BullmqBackend::new(orchestrator::bullmq::BullmqConfig::new(
        redis.url(),
    ))
    .expect("bullmq");
    let orch = Orchestrator::builder()
        .backend(Arc::new(bullmq.clone()))
        .backend(Arc::new(
            orchestrator::temporal::TemporalBackend::new(
                orchestrator::temporal::TemporalConfig::new(temporal.url()),
            )
            .expect("temporal"),
        ))
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "temporal")
        .build()
        .expect("orchestrator");
    let id = orch
        .schedule_complex_workflow(
            "migration-workflow",
            json!({"projectId": "p1"}),
            TaskOptions::complex(
                TemporalOptions::new("migrationWorkflow", "migrations")
                    .args(vec![json!("p1"), json!({"dryRun": true})])
                    .tracking_queue("migration-tracking"),
            ),
        )
        .await
        .expect("scheduled");
    assert_eq!(id.backend(), "temporal");
    let status = orch.get_task_status(&id).await.expect("status");
    assert_eq!(status.source.as_str(), "TEMPORAL");

    let queue = bullmq.queue("migration-tracking").await.expect("queue");
    let waiting = queue.get_waiting(0, -1).await.expect("waiting");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].data()["taskId"], json!(id.to_string()));
    assert_eq!(waiting[0].data()["name"], json!("migration-workflow"));
    assert_eq!(waiting[0].name(), "migration-workflow");
}
