//! The testkit's conformance suite against the n8n backend. n8n runs workflows, not Rust
//! handlers, so cases that need custom handlers are reported as not applicable.

mod support;

use backend_n8n::N8nBackend;
use orchestrator_core::{N8nOptions, Result, SharedBackend, TaskOptions, TaskType, async_trait};
use orchestrator_testkit::Handler;
use orchestrator_testkit::conformance::{Harness, Suite, Worker};
use support::N8nServer;

struct N8nHarness {
    _server: N8nServer,
    backend: N8nBackend,
}

#[async_trait]
impl Harness for N8nHarness {
    fn backend(&self) -> SharedBackend {
        std::sync::Arc::new(self.backend.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Integration
    }

    fn options(&self, _name: &str) -> TaskOptions {
        TaskOptions::integration(N8nOptions::workflow("otRespondNode001"))
    }

    fn unknown_id(&self, _name: &str) -> orchestrator_core::TaskId {
        "n8n:00000000-0000-4000-8000-000000000000:987654.00000000000000000000000000000000"
            .parse()
            .expect("id")
    }

    async fn serve(&self, _name: &str, _handler: Handler) -> Result<Box<dyn Worker>> {
        Err(orchestrator_core::Error::Unsupported {
            backend: "n8n".into(),
            operation: "custom handlers".into(),
        })
    }
}

async fn setup() -> N8nHarness {
    let server =
        N8nServer::start().unwrap_or_else(|| panic!("n8n missing (run scripts/n8n-install.sh)"));
    let backend = support::backend(&server);
    N8nHarness {
        _server: server,
        backend,
    }
}

fn main() -> std::process::ExitCode {
    use orchestrator_core::BackendFactory;
    let descriptor = backend_n8n::N8nFactory::DESCRIPTOR;
    assert_eq!(
        descriptor.capabilities,
        orchestrator_testkit::MEMORY_N8N.capabilities
    );
    Suite::new(descriptor)
        .without_handlers("n8n runs workflows defined in n8n, not Rust handlers")
        .run(setup)
}
