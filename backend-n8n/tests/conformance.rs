//! The testkit's conformance suite against a real n8n, side by side with its fake
//! (`memory-n8n`), compared with `tests/parity.txt`. n8n runs workflows, not Rust
//! handlers: each behavior the suite asks for is a pre-provisioned workflow
//! (`interop/n8n/workflows.json`), and only the cases that need a Rust handler skip.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use backend_n8n::{N8nBackend, N8nOptions};
use orchestrator_core::raw::async_trait;
use orchestrator_core::{BackendHandle, Result, TaskOptions, TaskType};
use orchestrator_testkit::conformance::{Behavior, Harness, MemoryHarness, Suite, Worker};
use support::N8nServer;

/// Completes with `{"echo": <body>}`.
const ECHO: &str = "otConfEcho000001";
/// Completes with `{"done": 1}` when `body.ok` is true, else fails with `boom`.
const OK_OR_BOOM: &str = "otConfOkBoom0001";
/// Waits 60 s in a Wait node (execution `waiting`) unless stopped.
const HOLD: &str = "otWait0000000001";

struct N8nHarness {
    _server: N8nServer,
    backend: N8nBackend,
    /// The workflow serving each task name.
    served: Arc<Mutex<HashMap<String, &'static str>>>,
}

struct Served {
    served: Arc<Mutex<HashMap<String, &'static str>>>,
    name: String,
}

#[async_trait]
impl Worker for Served {
    async fn stop(self: Box<Self>) -> std::result::Result<(), String> {
        self.served.lock().expect("served").remove(&self.name);
        Ok(())
    }
}

#[async_trait]
impl Harness for N8nHarness {
    fn backend(&self) -> BackendHandle {
        BackendHandle::new(self.backend.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Integration
    }

    /// The workflow of the behavior served for `name`; the echo workflow otherwise.
    fn options(&self, name: &str) -> TaskOptions {
        let workflow = self
            .served
            .lock()
            .expect("served")
            .get(name)
            .copied()
            .unwrap_or(ECHO);
        TaskOptions::integration(N8nOptions::workflow(workflow))
    }

    fn runs_rust(&self) -> bool {
        false
    }

    fn unknown_id(&self, _name: &str) -> orchestrator_core::TaskId {
        // Signed as the backend signs: n8n's own "not found" answers, not the signature
        // check.
        support::signed_id(
            &self._server,
            "00000000-0000-4000-8000-000000000000",
            Some("987654321"),
        )
    }

    async fn serve(&self, name: &str, behavior: Behavior) -> Result<Box<dyn Worker>> {
        let workflow = match behavior {
            Behavior::Echo => ECHO,
            Behavior::OkOrBoom => OK_OR_BOOM,
            Behavior::Hold(_) => HOLD,
            other => {
                return Err(orchestrator_core::Error::Unsupported {
                    backend: "n8n".into(),
                    operation: format!("{other:?}: n8n runs workflows, not Rust handlers"),
                });
            }
        };
        self.served
            .lock()
            .expect("served")
            .insert(name.to_string(), workflow);
        Ok(Box::new(Served {
            served: self.served.clone(),
            name: name.to_string(),
        }))
    }
}

async fn setup() -> N8nHarness {
    let server = N8nServer::start();
    let backend = support::backend(&server);
    N8nHarness {
        _server: server,
        backend,
        served: Arc::default(),
    }
}

fn main() -> std::process::ExitCode {
    Suite::new(backend_n8n::spec::DESCRIPTOR)
        .without_rust_handlers("n8n runs workflows defined in n8n, not Rust handlers")
        .one_at_a_time()
        .run_with_parity(
            setup,
            Suite::new(orchestrator_testkit::MEMORY_N8N),
            || async { MemoryHarness::n8n() },
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity.txt"),
        )
}
