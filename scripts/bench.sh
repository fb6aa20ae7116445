#!/usr/bin/env bash
# The benchmark command: install what it needs, build the contenders in release mode, and
# run them side by side (see scripts/bench.py). Extra arguments go to bench.py
# (--jobs N, --rounds R).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release -p orchestrator-bench
exec python3 scripts/bench.py "$@"
