#!/usr/bin/env bash
# Runs the OpenAPI checks of crates/balancer/openapi.json against a live balancer's admin
# listener: two `hakv serve` single nodes on loopback behind a `hakv balance`, checked once
# without an admin token and once (a fresh balancer) with one, sent with every request.
# From the repo root:
#   pip install -r crates/balancer/schemathesis/requirements.txt
#   HAKV=target/release/hakv OUT=<scratch dir> bash crates/balancer/schemathesis/run.sh
# (VENV=<dir>: activate that virtualenv first; EXAMPLES: cases per operation, 30; SPEC=<file>:
# check another copy of the spec.) Every process it starts is stopped, by its PID, on exit.
#
# Only 127.0.0.1 is contacted. schemathesis adds backends with made-up addresses (any host
# name); the balancer looks a backend up and connects to it only for a health check or a
# proxied request. Nothing is sent to the proxy port, and the health checks run once at start
# (on the two nodes) and then every hour (--health-interval-ms 1h), i.e. never during the run.
set -euo pipefail
HAKV=${HAKV:?path of a hakv binary}
OUT=${OUT:-$(mktemp -d)}
EXAMPLES=${EXAMPLES:-30}
SPEC=${SPEC:-crates/balancer/openapi.json}
CFG=crates/balancer/schemathesis
if [ -n "${VENV:-}" ]; then . "$VENV/bin/activate"; fi
status=0
started_at=$SECONDS
# The balancers get their settings from the flags below only (and the token from this script).
for var in $(compgen -e | grep '^HAKV_BALANCE_' || true); do unset "$var"; done

pids=() # of the processes started here and still running
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Forgets the PID of a process started here that has exited.
forget() { # pid
  local rest=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || rest+=("$pid"); done
  pids=("${rest[@]}")
}

# Stops one process started here (SIGTERM: a balancer drains and exits 0).
stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" || true
  forget "$1"
}

openapi-spec-validator "$SPEC"

# Waits for a line starting with $2 in the log $1 and prints the rest of it (empty on timeout).
await_line() {
  for _ in $(seq 100); do grep -q "^$2" "$1" && break; sleep 0.1; done
  sed -n "s|^$2||p" "$1" | head -1
}

# Starts `hakv serve` (a single node, data under $OUT/NAME) and sets $addr to its HOST:PORT.
start_node() { # name
  mkdir -p "$OUT/$1"
  "$HAKV" serve --listen 127.0.0.1:0 --data-dir "$OUT/$1/data" >"$OUT/$1/log" 2>&1 &
  pids+=($!)
  addr=$(await_line "$OUT/$1/log" 'listening on http://')
  [ -n "$addr" ] || { echo "$1 did not start (see $OUT/$1/log)" >&2; exit 1; }
}

# Starts `hakv balance` in front of both nodes (HAKV_BALANCE_ADMIN_TOKEN from the environment,
# if set); sets $balancer to its PID and $admin to its admin listener's HOST:PORT.
start_balancer() { # name
  mkdir -p "$OUT/$1"
  "$HAKV" balance --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --backend "$node_a" --backend "$node_b" --threads 1 --health-interval-ms 1h \
    >"$OUT/$1/log" 2>&1 &
  balancer=$!
  pids+=("$balancer")
  admin=$(await_line "$OUT/$1/log" 'admin on http://')
  [ -n "$admin" ] || { echo "$1 did not start (see $OUT/$1/log)" >&2; exit 1; }
}

# --workers 1, a fixed seed: the same cases every run (see crates/server/schemathesis/run.sh).
# In the background, so that a signal to this script stops it at once (a foreground child would
# delay the traps until it is done).
st() { # name, config, url, extra args...
  local name=$1 config=$2 url=$3; shift 3
  local started=$SECONDS pid
  schemathesis --config-file "$CFG/$config" run "$SPEC" --url "$url" \
    --max-examples "$EXAMPLES" --seed 20261206 --workers 1 "$@" >"$OUT/$name.txt" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait "$pid"; then
    echo "$name: clean in $((SECONDS - started)) s"
  else
    status=1
    echo "$name: FAILED after $((SECONDS - started)) s (see $OUT/$name.txt)"
    tail -5 "$OUT/$name.txt"
  fi
  forget "$pid"
}

start_node node-a; node_a=$addr
start_node node-b; node_b=$addr

# 1. No admin token: changes need none.
start_balancer lb-notoken
st lb-notoken notoken.toml "http://$admin"
stop "$balancer"

# 2. An admin token (in the balancer's environment, not its command line), sent with every
#    request; schemathesis also tries the changes without it and with a wrong one.
token=admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
HAKV_BALANCE_ADMIN_TOKEN=$token start_balancer lb-token
st lb-token token.toml "http://$admin" -H "Authorization: Bearer $token"
stop "$balancer"

echo "balancer OpenAPI checks: $((SECONDS - started_at)) s"
exit "$status"
