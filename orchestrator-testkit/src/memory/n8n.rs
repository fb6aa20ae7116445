//! `memory-n8n`: n8n's rules, from `backend_n8n::spec`.

use backend_n8n::spec::{self, N8nOptions};
use orchestrator_core::{Descriptor, Result, ScheduleRequest, TaskId, TaskIdError};

use super::{Flavor, Placement, State, memory_factory};

/// Descriptor of `memory-n8n`: the `n8n` spec under the fake's name.
pub const MEMORY_N8N: Descriptor = spec::DESCRIPTOR.renamed(
    "memory-n8n",
    "N8N",
    "in-memory INTEGRATION tasks with n8n's rules (tests, local runs)",
);

pub(super) struct N8n;

impl Flavor for N8n {
    fn descriptor(&self) -> &'static Descriptor {
        &MEMORY_N8N
    }

    fn default_concurrency(&self) -> usize {
        64
    }

    /// Integrations run by n8n workflow id, else by webhook URL.
    fn key_of(&self, req: &ScheduleRequest) -> String {
        let n = N8nOptions::of(req.options()).unwrap_or_default();
        n.workflow_id.or(n.webhook_url).unwrap_or_default()
    }

    /// A dispatch id (the fake signs nothing).
    fn check_id(&self, id: &TaskId) -> Result<()> {
        if uuid::Uuid::parse_str(id.native()).is_ok() {
            return Ok(());
        }
        Err(TaskIdError::Malformed {
            id: id.to_string(),
            reason: "an n8n task id names a dispatch".into(),
        }
        .into())
    }

    fn place(&self, _st: &mut State, _req: &ScheduleRequest) -> Result<Placement> {
        Ok(Placement::New(uuid::Uuid::new_v4().to_string()))
    }

    fn waiting_word(&self, _prioritized: bool) -> &'static str {
        "queued"
    }

    fn cancelled_word(&self) -> &'static str {
        "canceled"
    }
}

memory_factory!(MemoryN8nFactory, n8n, MEMORY_N8N, "The `memory-n8n` kind.");
