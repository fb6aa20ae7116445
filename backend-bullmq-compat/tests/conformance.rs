//! The testkit's conformance suite against the real BullMQ backend on a real Redis.

mod support;

use std::time::Duration;

use backend_bullmq_compat::{BullmqBackend, TaskWorker, WorkerConfig};
use orchestrator_core::{Result, SharedBackend, TaskType, async_trait};
use orchestrator_testkit::conformance::{Harness, Suite, Worker};
use orchestrator_testkit::{Handler, TaskContext};
use support::RedisServer;

struct BullmqHarness {
    _redis: RedisServer,
    backend: BullmqBackend,
}

struct Guard(Option<TaskWorker>);

#[async_trait]
impl Worker for Guard {
    async fn stop(mut self: Box<Self>) {
        if let Some(w) = self.0.take() {
            let _ = w.close(Duration::from_secs(5)).await;
        }
    }
}

#[async_trait]
impl Harness for BullmqHarness {
    fn backend(&self) -> SharedBackend {
        std::sync::Arc::new(self.backend.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Simple
    }

    async fn serve(&self, name: &str, handler: Handler) -> Result<Box<dyn Worker>> {
        let worker = self
            .backend
            .worker(
                name,
                WorkerConfig::default(),
                move |ctx: backend_bullmq_compat::JobContext<serde_json::Value>| {
                    let handler = handler.clone();
                    async move {
                        let sink = ctx.progress_sink();
                        let tc = TaskContext::new(
                            ctx.task_id.clone(),
                            ctx.job_name.clone(),
                            ctx.data,
                            Vec::new(),
                            ctx.attempt,
                            Some(std::sync::Arc::new(sink)),
                        );
                        handler.call(tc).await.map_err(Into::into)
                    }
                },
            )
            .await?;
        Ok(Box::new(Guard(Some(worker))))
    }
}

async fn setup() -> BullmqHarness {
    let redis = RedisServer::start()
        .unwrap_or_else(|| panic!("redis-server missing (run scripts/test.sh)"));
    let backend = support::backend(&redis);
    BullmqHarness {
        _redis: redis,
        backend,
    }
}

fn main() -> std::process::ExitCode {
    use orchestrator_core::BackendFactory;
    let descriptor = backend_bullmq_compat::BullmqFactory::DESCRIPTOR;
    // The fake users test against declares exactly what the engine honours.
    assert_eq!(
        descriptor.capabilities,
        orchestrator_testkit::MEMORY_BULLMQ.capabilities
    );
    Suite::new(descriptor).run(setup)
}
