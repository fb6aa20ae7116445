//! The conformance suite against the three in-memory backends, one shared table.

use orchestrator_testkit::conformance::{MemoryHarness, Suite, run_trials};
use orchestrator_testkit::{MEMORY_BULLMQ, MEMORY_N8N, MEMORY_TEMPORAL};

fn main() -> std::process::ExitCode {
    let mut trials = Suite::new(MEMORY_BULLMQ).trials(|| async { MemoryHarness::bullmq() });
    trials.extend(Suite::new(MEMORY_TEMPORAL).trials(|| async { MemoryHarness::temporal() }));
    trials.extend(Suite::new(MEMORY_N8N).trials(|| async { MemoryHarness::n8n() }));
    run_trials(trials)
}
