//! A backend written outside the workspace's crates, registered through `inventory`, and
//! routed to by configuration.
//!
//! ```sh
//! cargo run --example custom_backend
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orchestrator::{
    Backend, BackendRegistration, CancelOutcome, Capabilities, Health, Orchestrator,
    OrchestratorConfig, Result, ScheduleRequest, SharedBackend, Source, TaskId, TaskOptions,
    TaskState, TaskStatus, TaskType, async_trait,
};
use serde_json::json;

/// A toy engine that "runs" every task at once and remembers nothing else.
#[derive(Debug, Default)]
struct EchoBackend {
    next: AtomicU64,
}

#[async_trait]
impl Backend for EchoBackend {
    fn name(&self) -> &str {
        "echo"
    }

    fn source(&self) -> Source {
        Source::custom("ECHO")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    async fn schedule(&self, request: ScheduleRequest) -> Result<TaskId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(TaskId::new("echo", &format!("{}:{n}", request.name()))?)
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        let mut s = TaskStatus::new(id.clone(), self.source(), TaskState::Completed, "echoed");
        s.attempts_made = 1;
        s.result = Some(json!({ "echo": id.native() }));
        Ok(s)
    }

    async fn cancel(&self, _id: &TaskId) -> Result<CancelOutcome> {
        Ok(CancelOutcome::NotCancellableFinished)
    }

    async fn health(&self) -> Result<Health> {
        Ok(Health {
            backend: "echo".into(),
            ok: true,
            detail: "always".into(),
            warnings: vec![],
        })
    }
}

fn build_echo(_config: &serde_json::Value) -> Result<SharedBackend> {
    Ok(Arc::new(EchoBackend::default()))
}

inventory::submit! {
    BackendRegistration {
        name: "echo",
        source: "ECHO",
        task_types: &[TaskType::Simple],
        summary: "example backend that completes every task at once",
        config_schema: || schemars_free_schema(),
        build: build_echo,
    }
}

fn schemars_free_schema() -> orchestrator::registry::Schema {
    orchestrator::registry::Schema::default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = OrchestratorConfig::from_toml_str(
        r#"
        [routing]
        simple = "echo"

        [backends.echo]
        "#,
    )?;
    let orch = Orchestrator::from_config(config)?;
    let id = orch
        .schedule_task("greetings", json!({"hi": true}), TaskOptions::simple())
        .await?;
    let s = orch.get_task_status(&id).await?;
    println!(
        "{} {} {} result={}",
        s.task_id,
        s.source,
        s.state,
        s.result.unwrap_or_default()
    );
    Ok(())
}
