//! The conformance suite against the in-memory backends.
use orchestrator_testkit::conformance::MemoryHarness;

orchestrator_testkit::backend_conformance!(memory_bullmq, async { MemoryHarness::bullmq() });
orchestrator_testkit::backend_conformance!(memory_temporal, async { MemoryHarness::temporal() });
orchestrator_testkit::backend_conformance!(memory_n8n, async { MemoryHarness::n8n() });
