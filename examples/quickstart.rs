//! The seed's "Exemple complet": a migration service that schedules a SIMPLE preparation
//! task, a COMPLEX migration workflow with a tracking queue, and an INTEGRATION CI/CD
//! notification, then reads each status and cancels one task.
//!
//! Runs on the embedded in-memory backends: no server needed.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use orchestrator::testkit::{InMemory, in_memory};
use orchestrator::{N8nOptions, Orchestrator, TaskId, TaskOptions, TemporalOptions};
use serde_json::{Value, json};

/// The seed's `MigrationService`.
#[derive(Clone)]
struct MigrationService {
    orchestrator: Orchestrator,
}

impl MigrationService {
    async fn migrer_projet(
        &self,
        project_id: &str,
        options: Value,
    ) -> orchestrator::Result<[TaskId; 3]> {
        // 1. Simple task: quick preparation (BullMQ).
        let prep_task_id = self
            .orchestrator
            .schedule_simple_task(
                "preparation-migration",
                json!({ "projectId": project_id }),
                TaskOptions::simple().priority(10).attempts(3),
            )
            .await?;

        // 2. Complex workflow: stateful migration (Temporal), tracked on a BullMQ queue.
        let migration_workflow_id = self
            .orchestrator
            .schedule_complex_workflow(
                "migration-workflow",
                json!({ "projectId": project_id, "prepTaskId": prep_task_id, "options": options }),
                TaskOptions::complex(
                    TemporalOptions::new("migrationWorkflow", "migrations")
                        .args(vec![json!(project_id), options.clone()])
                        .tracking_queue("migration-tracking"),
                ),
            )
            .await?;

        // 3. External integration: CI/CD notification (n8n).
        let notification_id = self
            .orchestrator
            .schedule_external_integration(
                "ci-cd-notification",
                json!({
                    "projectId": project_id,
                    "migrationWorkflowId": migration_workflow_id,
                    "status": "started",
                    "timestamp": now_ms(),
                }),
                TaskOptions::integration(
                    N8nOptions::workflow("ci-integration").integration_source("jenkins"),
                ),
            )
            .await?;

        Ok([prep_task_id, migration_workflow_id, notification_id])
    }
}

fn install_handlers(mem: &InMemory) {
    mem.simple
        .handle("preparation-migration", |ctx| async move {
            Ok(json!({ "prepared": ctx.payload["projectId"] }))
        });
    mem.complex.handle("migrationWorkflow", |ctx| async move {
        // A long-running workflow: it stays RUNNING while we look at it.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(json!({ "migrated": ctx.args.first() }))
    });
    mem.integration.handle("ci-integration", |ctx| async move {
        Ok(json!({ "notified": ctx.payload["status"] }))
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mem = in_memory();
    install_handlers(&mem);
    let service = MigrationService {
        orchestrator: mem.orchestrator.clone(),
    };

    let ids = service
        .migrer_projet("projet-42", json!({ "dryRun": false }))
        .await?;
    let orch = &service.orchestrator;
    // Wait for the preparation task and the notification (the workflow runs on).
    for id in [&ids[0], &ids[2]] {
        let outcome = orch.wait(id, Duration::from_secs(5)).await?;
        if !outcome.is_finished() {
            return Err(format!("{id} did not finish in 5 s").into());
        }
    }
    for id in &ids {
        let s = orch.get_task_status(id).await?;
        println!("{:<70} {:<10} {}", s.task_id, s.state.as_str(), s.source);
    }

    let tracking = mem
        .simple
        .scheduled()
        .into_iter()
        .filter(|t| t.name == "migration-tracking")
        .count();
    println!("tracking jobs on migration-tracking: {tracking}");

    let cancelled = orch.cancel_task(&ids[1]).await?;
    let after = orch.get_task_status(&ids[1]).await?;
    println!("cancel {} -> {cancelled} (now {})", ids[1], after.state);
    if !cancelled {
        return Err("the migration workflow should have been cancellable".into());
    }
    Ok(())
}

/// `Date.now()`: milliseconds since the Unix epoch.
fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
