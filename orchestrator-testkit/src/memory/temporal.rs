//! `memory-temporal`: Temporal's rules, from `backend_temporal::spec`.

use backend_temporal::spec::{self, IdConflictPolicy, TemporalOptions};
use orchestrator_core::{
    Descriptor, Error, Result, ScheduleRequest, TaskId, TaskOptions, TaskState,
};
use serde_json::Value;

use super::{Flavor, Placement, Record, State, memory_factory};

/// Descriptor of `memory-temporal`: the `temporal` spec under the fake's name.
pub const MEMORY_TEMPORAL: Descriptor = spec::DESCRIPTOR.renamed(
    "memory-temporal",
    "TEMPORAL",
    "in-memory COMPLEX workflows with Temporal's rules (tests, local runs)",
);

pub(super) struct Temporal;

fn block(o: &TaskOptions) -> TemporalOptions {
    // Admission required and parsed the block already.
    TemporalOptions::of(o).unwrap_or_default()
}

impl Flavor for Temporal {
    fn descriptor(&self) -> &'static Descriptor {
        &MEMORY_TEMPORAL
    }

    fn default_concurrency(&self) -> usize {
        64
    }

    /// Workflows run by type.
    fn key_of(&self, req: &ScheduleRequest) -> String {
        block(req.options()).workflow_type
    }

    fn check_id(&self, id: &TaskId) -> Result<()> {
        spec::split_task_id(id)?;
        Ok(())
    }

    fn place(&self, st: &mut State, req: &ScheduleRequest) -> Result<Placement> {
        let t = block(req.options());
        let workflow_id = t
            .workflow_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", req.name(), uuid::Uuid::new_v4()));
        // As on Temporal, an id names one run chain (`<workflow id>:<run id>`): a later
        // start with the same workflow id is another task.
        let running = st.tasks.values_mut().find(|r| {
            !r.state.is_finished()
                && r.id.native().rsplit_once(':').map(|(wf, _)| wf) == Some(&*workflow_id)
        });
        if let Some(existing) = running {
            match t.id_conflict_policy {
                IdConflictPolicy::Fail => {
                    return Err(Error::AlreadyExists {
                        task_id: existing.id.to_string(),
                    });
                }
                IdConflictPolicy::UseExisting => {
                    return Ok(Placement::Existing(existing.id.clone()));
                }
                IdConflictPolicy::TerminateExisting => {
                    existing.end(TaskState::Terminated, "terminated");
                }
            }
        }
        Ok(Placement::New(format!(
            "{workflow_id}:{}",
            uuid::Uuid::new_v4()
        )))
    }

    fn waiting_word(&self, _prioritized: bool) -> &'static str {
        "scheduled"
    }

    fn cancelled_word(&self) -> &'static str {
        "canceled"
    }

    fn handler_args(&self, rec: &Record) -> Vec<Value> {
        block(&rec.options).workflow_args
    }

    fn execution_timeout_ms(&self, options: &TaskOptions) -> Option<u64> {
        block(options).execution_timeout_ms
    }
}

memory_factory!(
    MemoryTemporalFactory,
    temporal,
    MEMORY_TEMPORAL,
    "The `memory-temporal` kind."
);
