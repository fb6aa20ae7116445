//! A backend written outside the workspace's crates: one [`Descriptor`] says what it is and
//! what it honours, a `BackendFactory` (from `orchestrator::raw`, the backend author's
//! module) builds it from a typed configuration table, and `register_backend!` makes it
//! available to configuration by name.
//!
//! The orchestrator enforces the descriptor: this backend declares no capability, so a
//! `delay` (or any option it cannot honour) is refused with `UnsupportedOption` before the
//! backend is called, and routing COMPLEX tasks to it fails when the orchestrator is built.
//! The backend itself only talks to its engine: it never checks a request by hand.
//!
//! ```sh
//! cargo run --example custom_backend
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orchestrator::raw::{AdmittedRequest, Backend, BackendFactory, SharedBackend, async_trait};
use orchestrator::{
    CancelOutcome, Descriptor, Health, Orchestrator, OrchestratorConfig, Result, TaskId,
    TaskOptions, TaskState, TaskStatus, TaskType,
};
use serde_json::json;

/// The `echo` kind: SIMPLE tasks only, nothing optional honoured.
struct EchoFactory;

impl BackendFactory for EchoFactory {
    const DESCRIPTOR: Descriptor = Descriptor::new(
        "echo",
        "ECHO",
        &[TaskType::Simple],
        "example backend that completes every task at once",
    )
    .with_native_states(&[("echoed", TaskState::Completed)]);
    type Config = EchoConfig;

    // `[backends.echo]` may be omitted: a route to `echo` builds it with the defaults.
    fn default_config() -> Option<EchoConfig> {
        Some(EchoConfig::default())
    }

    fn build(instance: &str, config: EchoConfig) -> Result<SharedBackend> {
        Ok(Arc::new(EchoBackend {
            name: instance.to_string(),
            config,
            next: AtomicU64::new(0),
        }))
    }
}

orchestrator::register_backend!(EchoFactory);

/// `[backends.echo]`: typed, documented, unknown keys refused.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoConfig {
    /// Added to every result.
    #[serde(default)]
    greeting: Option<String>,
}

/// A toy engine that "runs" every task at once and remembers nothing else.
#[derive(Debug)]
struct EchoBackend {
    /// The instance name (`[backends.<name>] kind = "echo"`): the prefix of its task ids.
    name: String,
    config: EchoConfig,
    next: AtomicU64,
}

#[async_trait]
impl Backend for EchoBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn descriptor(&self) -> &Descriptor {
        &EchoFactory::DESCRIPTOR
    }

    async fn schedule(&self, request: AdmittedRequest) -> Result<TaskId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(TaskId::new(&self.name, &format!("{}:{n}", request.name()))?)
    }

    async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
        let d = self.descriptor();
        let mut s = TaskStatus::new(id.clone(), d.label(), d.map_state("echoed"), "echoed");
        s.attempts_made = 1;
        s.result = Some(json!({ "echo": id.native(), "greeting": self.config.greeting }));
        Ok(s)
    }

    async fn cancel(&self, _id: &TaskId) -> Result<CancelOutcome> {
        Ok(CancelOutcome::NotCancellableFinished)
    }

    async fn health(&self) -> Result<Health> {
        Ok(Health {
            backend: self.name.clone(),
            ok: true,
            detail: "always".into(),
            warnings: vec![],
        })
    }
}

fn orchestrator() -> Result<Orchestrator> {
    let config = OrchestratorConfig::from_toml_str(
        r#"
        [routing]
        simple = "echo"

        [backends.echo]
        greeting = "hello"
        "#,
    )?;
    Orchestrator::from_config(config)
}

#[tokio::main]
async fn main() -> Result<()> {
    let orch = orchestrator()?;
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
    let refused = orch
        .schedule_task(
            "greetings",
            json!({}),
            TaskOptions::simple().delay(std::time::Duration::from_secs(5)),
        )
        .await
        .expect_err("echo declares no delay");
    println!("with a delay: {refused}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator::{Error, ErrorKind};

    #[tokio::test]
    async fn the_core_refuses_what_echo_does_not_declare() {
        let orch = orchestrator().expect("orchestrator");
        let e = orch
            .schedule_task(
                "greetings",
                json!({}),
                TaskOptions::simple().delay(std::time::Duration::from_secs(5)),
            )
            .await
            .expect_err("no delay capability");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            matches!(&e, Error::UnsupportedOption { backend, option } if backend == "echo" && option == "delay"),
            "{e:?}"
        );
        // BullMQ's queue-name rules are BullMQ's: a custom SIMPLE backend does not get them.
        orch.schedule_task("a:b", json!({}), TaskOptions::simple())
            .await
            .expect("echo has no queue-name rule");
    }

    #[test]
    fn routing_complex_to_echo_fails_at_build() {
        let e = Orchestrator::builder()
            .route(TaskType::Complex, "echo")
            .build()
            .expect_err("echo runs only SIMPLE tasks");
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let msg = e.to_string();
        assert!(msg.contains("COMPLEX") && msg.contains("`echo`"), "{msg}");
    }
}
