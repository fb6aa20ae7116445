//! A Rust Temporal worker for the seed's `migrationWorkflow` on task queue `migrations`,
//! so the seed's full example runs against a real Temporal server.
//!
//! ```sh
//! .cache/venv/bin/temporal server start-dev --headless --ip 127.0.0.1 --port 7233 \
//!     --search-attribute OrchestratorTaskName=Keyword &
//! ORCHESTRATOR_TEMPORAL_URL=http://127.0.0.1:7233 \
//!   cargo run --example temporal_worker --features orchestrator-examples/temporal-worker
//! # elsewhere:
//! ORCHESTRATOR_TEMPORAL_URL=http://127.0.0.1:7233 orchestrator schedule migration-workflow --type complex \
//!   --options '{"temporal":{"workflowType":"migrationWorkflow","workflowArgs":["p1",{"dryRun":true}],"taskQueue":"migrations"}}'
//! ```
//!
//! `migrationWorkflow(projectId, options)` runs three activities (prepare, copy, verify)
//! and returns a summary; a cancellation request ends it as `Canceled`.
//! Set `EXIT_AFTER_SECS` to stop by itself (used by scripts).

// The workflow macros generate undocumented public constants.
#![allow(missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::data_converters::MultiArgs2;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext,
    WorkflowResult, WorkflowTermination,
};

/// The seed's migration workflow.
#[workflow]
#[derive(Default)]
pub struct MigrationWorkflow;

#[workflow_methods]
impl MigrationWorkflow {
    /// `migrationWorkflow(projectId, options)`.
    #[run(name = "migrationWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        args: MultiArgs2<String, Value>,
    ) -> WorkflowResult<Value> {
        let MultiArgs2(project_id, options) = args;
        let mut steps = Vec::new();
        for step in ["prepare", "copy", "verify"] {
            let input = json!({ "projectId": project_id, "step": step, "options": options });
            let opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(60));
            match ctx
                .execute_activity(MigrationActivities::run_step, input, opts)
                .await
            {
                Ok(done) => steps.push(done),
                Err(ActivityExecutionError::Cancelled(_)) => {
                    return Err(WorkflowTermination::cancelled());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(json!({ "projectId": project_id, "steps": steps }))
    }
}

/// The migration's activities.
pub struct MigrationActivities;

#[activities]
impl MigrationActivities {
    /// One migration step.
    #[activity(name = "migrationStep")]
    pub async fn run_step(_ctx: ActivityContext, input: Value) -> Result<Value, ActivityError> {
        Ok(json!({ "step": input["step"], "ok": true }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("ORCHESTRATOR_TEMPORAL_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:7233".into());
    let namespace =
        std::env::var("ORCHESTRATOR_TEMPORAL_NAMESPACE").unwrap_or_else(|_| "default".into());
    let conn = Connection::connect(ConnectionOptions::new(url::Url::parse(&url)?).build()).await?;
    let client = Client::new(conn, ClientOptions::new(namespace).build())?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let opts = WorkerOptions::new("migrations")
        .register_workflow::<MigrationWorkflow>()?
        .register_activities(MigrationActivities)
        .build();
    let mut worker = Worker::new(&runtime, client, opts)?;
    let shutdown = worker.shutdown_handle();
    println!("worker serving migrationWorkflow on task queue `migrations` at {url}");
    let stop = async move {
        match std::env::var("EXIT_AFTER_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        shutdown();
    };
    let (run, ()) = tokio::join!(worker.run(), stop);
    run?;
    Ok(())
}
