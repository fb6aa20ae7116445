//! The testkit's conformance suite against a real Temporal dev server with a Rust worker,
//! side by side with its fake (`memory-temporal`), compared with `tests/parity.txt`.

mod support;

use backend_temporal::{TemporalBackend, TemporalOptions};
use orchestrator_core::raw::async_trait;
use orchestrator_core::{BackendHandle, Result, TaskOptions, TaskType};
use orchestrator_testkit::conformance::{Behavior, Harness, MemoryHarness, Suite, Worker};
use support::{TemporalServer, TestWorker};

struct TemporalHarness {
    _server: TemporalServer,
    backend: TemporalBackend,
}

struct Guard(TestWorker);

#[async_trait]
impl Worker for Guard {
    async fn stop(mut self: Box<Self>) -> std::result::Result<(), String> {
        tokio::task::block_in_place(|| self.0.stop())
    }
}

#[async_trait]
impl Harness for TemporalHarness {
    fn backend(&self) -> BackendHandle {
        BackendHandle::new(self.backend.clone())
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

    async fn serve(&self, name: &str, behavior: Behavior) -> Result<Box<dyn Worker>> {
        support::set_handler(name, behavior.into_handler());
        Ok(Box::new(Guard(
            TestWorker::start(&self.backend, name).await,
        )))
    }
}

async fn setup() -> TemporalHarness {
    let server = TemporalServer::start().await;
    let backend = support::backend(&server);
    TemporalHarness {
        _server: server,
        backend,
    }
}

fn main() -> std::process::ExitCode {
    Suite::new(backend_temporal::spec::DESCRIPTOR).run_with_parity(
        setup,
        Suite::new(orchestrator_testkit::MEMORY_TEMPORAL),
        || async { MemoryHarness::temporal() },
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity.txt"),
    )
}
