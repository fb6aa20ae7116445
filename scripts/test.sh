#!/usr/bin/env bash
# The README's test command: install what the tests need, then run every test with real
# engines required (a missing engine fails; nothing is skipped silently).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export ORCH_TEST_REQUIRE=1

# Everything, against Node BullMQ 6.x (what bullmq-official tracks).
cargo test --workspace --all-features

# The unit tests that need a real engine (ignored, with their reason, by a plain run).
cargo test --workspace --all-features --lib -- --ignored

# The same interop scenarios against the latest Node BullMQ 5.x.
BULLMQ_NODE_MAJOR=5 cargo test -p backend-bullmq-compat --test interop
