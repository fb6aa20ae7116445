#!/usr/bin/env bash
# Stop an n8n started by n8n-up.sh: scripts/n8n-down.sh PID|DATA_DIR
set -euo pipefail
arg=${1:?usage: n8n-down.sh PID|DATA_DIR}
if [ -d "$arg" ]; then pid=$(sed -n 's/^N8N_PID=//p' "$arg/n8n.env"); else pid=$arg; fi
grep -q n8n "/proc/$pid/cmdline" 2>/dev/null || { echo "n8n-down: $pid is not n8n" >&2; exit 0; }
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
kill -KILL -- "-$pid" 2>/dev/null || true
