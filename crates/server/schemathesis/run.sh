#!/usr/bin/env bash
# Runs the OpenAPI checks of crates/server/openapi.json against live nodes (a single node, one
# with authentication on, a 3-member cluster's follower and leader). From the repo root:
#   pip install -r crates/server/schemathesis/requirements.txt
#   HAKV=target/release/hakv OUT=<scratch dir> bash crates/server/schemathesis/run.sh
# (VENV=<dir>: activate that virtualenv first; EXAMPLES: cases per operation, 100; SPEC=<file>:
# check another copy of the spec.) crates/hakv/tests/openapi.rs runs it in the test suite.
set -euo pipefail
HAKV=${HAKV:?path of a hakv binary}
OUT=${OUT:-$(mktemp -d)}
EXAMPLES=${EXAMPLES:-100}
SPEC=${SPEC:-crates/server/openapi.json}
CFG=crates/server/schemathesis
if [ -n "${VENV:-}" ]; then . "$VENV/bin/activate"; fi
export PYTHONPATH=$CFG SCHEMATHESIS_HOOKS=hooks
status=0

openapi-spec-validator "$SPEC"

start_node() { # name, extra serve flags...
  local name=$1; shift
  mkdir -p "$OUT/$name"
  "$HAKV" serve --listen 127.0.0.1:0 --data-dir "$OUT/$name/data" "$@" >"$OUT/$name/log" 2>&1 &
  echo $! >"$OUT/$name/pid"
  for _ in $(seq 100); do grep -q '^listening on' "$OUT/$name/log" && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$OUT/$name/log"
}
seed() { curl -sf -X PUT -H 'Content-Type: application/json' "${@:2}" -d '{"value":"seed"}' "$1/data/seed" >/dev/null; }
# --workers 1: with 2 workers, Python 3.11.7 + hypothesis 6.170.27 crashed once in the coverage
# phase ("AST constructor recursion depth mismatch", ast.parse is not thread-safe there).
st() { # name, config, url, extra args...
  local name=$1 config=$2 url=$3; shift 3
  local started=$SECONDS
  schemathesis --config-file "$CFG/$config" run "$SPEC" --url "$url" \
    --max-examples "$EXAMPLES" --seed 20261206 --workers 1 "$@" >"$OUT/$name.txt" 2>&1 \
    && echo "$name: clean in $((SECONDS - started)) s" \
    || { status=1; echo "$name: FAILED after $((SECONDS - started)) s (see $OUT/$name.txt)"; tail -5 "$OUT/$name.txt"; }
}

# 1. A single node, authentication off.
url=$(start_node single); seed "$url"
st single single.toml "$url"
kill "$(cat "$OUT/single/pid")"

# 2. A single node with authentication on: the admin token, then a token of limited grants.
admin=admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
url=$(HAKV_ADMIN_TOKEN=$admin start_node auth); seed "$url" -H "Authorization: Bearer $admin"
st auth-admin auth.toml "$url" -H "Authorization: Bearer $admin"
limited=$(curl -sf -X POST -H "Authorization: Bearer $admin" \
  -d '{"name":"limited","grants":[{"role":"read","prefix":"app/"},{"role":"write","prefix":"0"}]}' \
  "$url/auth/tokens" | python -c 'import json,sys; print(json.load(sys.stdin)["token"])')
st auth-limited auth.toml "$url" -H "Authorization: Bearer $limited"
kill "$(cat "$OUT/auth/pid")"

# 3. A 3-member cluster (hakv cluster up): a follower and the leader, without and with the
#    cluster token (membership changes with the token only on a follower: 421).
# Five free ports in a row: the balancer (base, its admin listener base+1), members base+2..4.
base=$(python3 -c '
import socket
for base in range(41000, 60000, 10):
    try:
        for port in range(base, base + 5):
            socket.create_server(("127.0.0.1", port)).close()
        print(base)
        break
    except OSError:
        pass
')
"$HAKV" cluster up --dir "$OUT/cluster" --base-port $((base + 1)) --listen "127.0.0.1:$base" >"$OUT/cluster.log" 2>&1 &
echo $! >"$OUT/cluster.pid"
for _ in $(seq 100); do grep -q 'cluster is up' "$OUT/cluster.log" && break; sleep 0.1; done
token=$(cat "$OUT/cluster/cluster-token")
leader=$(curl -sf "http://127.0.0.1:$((base + 2))/cluster" | python -c 'import json,sys; print(json.load(sys.stdin)["leader"]["addr"])')
follower=$(for p in $((base + 2)) $((base + 3)) $((base + 4)); do [ "127.0.0.1:$p" != "$leader" ] && echo "127.0.0.1:$p" && break; done)
seed "http://$leader"
st cluster-follower cluster.toml "http://$follower"
st cluster-follower-token cluster.toml "http://$follower" -H "Authorization: Bearer $token"
st cluster-leader cluster.toml "http://$leader"
kill -INT "$(cat "$OUT/cluster.pid")"
wait || true  # hakv cluster up, stopping on SIGINT
exit "$status"
