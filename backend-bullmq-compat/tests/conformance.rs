//! The testkit's conformance suite against the real BullMQ backend on a real Redis, side by
//! side with its fake (`memory-bullmq`), compared with `tests/parity.txt`.

mod support;

use std::time::Duration;

use backend_bullmq_compat::{BullmqBackend, TaskWorker, WorkerConfig};
use orchestrator_core::raw::async_trait;
use orchestrator_core::{BackendHandle, Result, TaskType};
use orchestrator_testkit::TaskContext;
use orchestrator_testkit::conformance::{Behavior, Harness, MemoryHarness, Suite, Worker};
use support::RedisServer;

struct BullmqHarness {
    _redis: RedisServer,
    backend: BullmqBackend,
}

struct Guard(Option<TaskWorker>);

#[async_trait]
impl Worker for Guard {
    async fn stop(mut self: Box<Self>) -> std::result::Result<(), String> {
        let Some(w) = self.0.take() else {
            return Ok(());
        };
        w.close(Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        match w.errors() {
            0 => Ok(()),
            n => Err(format!("the worker could not record {n} outcomes")),
        }
    }
}

#[async_trait]
impl Harness for BullmqHarness {
    fn backend(&self) -> BackendHandle {
        BackendHandle::new(self.backend.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Simple
    }

    async fn serve(&self, name: &str, behavior: Behavior) -> Result<Box<dyn Worker>> {
        let handler = behavior.into_handler();
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
    let redis = RedisServer::start();
    let backend = support::backend(&redis);
    BullmqHarness {
        _redis: redis,
        backend,
    }
}

fn main() -> std::process::ExitCode {
    Suite::new(backend_bullmq_compat::spec::DESCRIPTOR).run_with_parity(
        setup,
        Suite::new(orchestrator_testkit::MEMORY_BULLMQ),
        || async { MemoryHarness::bullmq() },
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity.txt"),
    )
}
