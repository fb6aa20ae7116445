//! The testkit's conformance suite against a real Temporal dev server with a Rust worker.

mod support;

use backend_temporal::TemporalBackend;
use orchestrator_core::{
    Result, SharedBackend, TaskOptions, TaskType, TemporalOptions, async_trait,
};
use orchestrator_testkit::Handler;
use orchestrator_testkit::conformance::{Harness, Suite, Worker};
use support::{TemporalServer, TestWorker};

struct TemporalHarness {
    _server: TemporalServer,
    backend: TemporalBackend,
}

struct Guard(TestWorker);

#[async_trait]
impl Worker for Guard {
    async fn stop(mut self: Box<Self>) {
        tokio::task::block_in_place(|| self.0.stop());
    }
}

#[async_trait]
impl Harness for TemporalHarness {
    fn backend(&self) -> SharedBackend {
        std::sync::Arc::new(self.backend.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Complex
    }

    // One workflow type runs every case's handler; the task queue tells them apart.
    fn options(&self, name: &str) -> TaskOptions {
        TaskOptions::complex(TemporalOptions::new("conformance", name))
    }

    fn unknown_id(&self, name: &str) -> orchestrator_core::TaskId {
        orchestrator_core::TaskId::new(
            "temporal",
            &format!("{name}:00000000-0000-0000-0000-000000000000"),
        )
        .expect("id")
    }

    async fn serve(&self, name: &str, handler: Handler) -> Result<Box<dyn Worker>> {
        support::set_handler(name, handler);
        Ok(Box::new(Guard(
            TestWorker::start(&self.backend, name).await,
        )))
    }
}

async fn setup() -> TemporalHarness {
    let server = TemporalServer::start()
        .await
        .unwrap_or_else(|| panic!("temporal CLI missing (run scripts/setup.sh)"));
    let backend = support::backend(&server);
    TemporalHarness {
        _server: server,
        backend,
    }
}

fn main() -> std::process::ExitCode {
    use orchestrator_core::BackendFactory;
    let descriptor = backend_temporal::TemporalFactory::DESCRIPTOR;
    assert_eq!(
        descriptor.capabilities,
        orchestrator_testkit::MEMORY_TEMPORAL.capabilities
    );
    Suite::new(descriptor).run(setup)
}
