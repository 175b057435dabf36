#!/usr/bin/env bash
# hakv serve against the HTTP ceiling (a minimal in-memory axum KV) and the seed's Flask app,
# measured in one run with wrk, the way ../shared/peers/ does: every server pinned to SRV_CPU,
# wrk pinned to LOAD_CPU, keep-alive, closed loop. Also etcd (1 member) for durable puts when
# `etcd` is installed, and hakv's RSS idle and under load.
#
#   bench/serve.sh                      # DUR=10 REPS=2 by default
#   DUR=5 REPS=1 bench/serve.sh         # quicker
# Needs: wrk, python3 + flask, the peers folder (PEERS, default ../shared/peers), a release
# build of hakv (cargo build --release -p hakv). Prints a markdown table on stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" 2>/dev/null && pwd)}
DUR=${DUR:-10}; REPS=${REPS:-2}; SRV_CPU=${SRV_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-/tmp/hakv-bench-serve}
HAKV=${HAKV:-$ROOT/target/release/hakv}
mkdir -p "$OUT"; rm -rf "$OUT/hakv-data" "$OUT/etcd-data"

PIDS=()
. "$ROOT/bench/lib.sh"
cleanup() { stop_started; }
trap cleanup EXIT

start() { start_pinned "$1" "$SRV_CPU" "${@:2}"; } # start NAME CMD...: pinned to SRV_CPU
wait_http() {
  for _ in $(seq 200); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.05; done
  echo "timeout waiting for $1" >&2; return 1
}
rss_mib() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

LUA="$OUT/post.lua"
cat >"$LUA" <<'LUA'
wrk.method = "POST"
wrk.body = '{"value": "hello world"}'
wrk.headers["Content-Type"] = "application/json"
LUA
ETCD_LUA="$OUT/etcd_put.lua"
cat >"$ETCD_LUA" <<'LUA'
wrk.method = "POST"
wrk.body = '{"key": "azE=", "value": "aGVsbG8gd29ybGQ="}'
wrk.headers["Content-Type"] = "application/json"
LUA

# row SYSTEM OP CONC URL [LUA]: REPS wrk runs, one markdown row each.
row() {
  local system=$1 op=$2 conc=$3 url=$4 lua=${5:-} r f args=()
  [ -n "$lua" ] && args=(-s "$lua")
  for r in $(seq "$REPS"); do
    f="$OUT/${system// /_}-$op-c$conc-r$r.txt"
    taskset -c "$LOAD_CPU" wrk -t1 -c"$conc" -d"${DUR}s" --timeout 5s --latency "${args[@]}" "$url" >"$f" 2>&1
    awk -v s="$system" -v o="$op" -v c="$conc" '
      /Requests\/sec:/ {rps=$2} /^ +50% / {p50=$2} /^ +99% / {p99=$2}
      /Non-2xx/ {n2=$NF} /Socket errors/ {se=$0; sub(/.*errors: /,"",se)}
      END {printf "| %s | %s | %s | %.0f | %s | %s | %s |\n", s, o, c, rps, p50, p99, (n2==""?"0":n2) (se==""?"":", " se)}' "$f"
  done
}

# brow SYSTEM OP CONC URL WRITE_RATIO: REPS runs of hakv bench (1 key, prefilled), one row each.
brow() {
  local system=$1 op=$2 conc=$3 url=$4 writes=$5 r f
  for r in $(seq "$REPS"); do
    f="$OUT/${system// /_}-$op-c$conc-r$r.json"
    taskset -c "$LOAD_CPU" "$HAKV" bench --target "$url" -c "$conc" -d "${DUR}s" --keys 1 --prefill \
      --write-ratio "$writes" --value-size 11 --json -q >"$f" 2>/dev/null || true
    python3 - "$f" "$system" "$op" "$conc" <<'PY'
import json, sys
f, system, op, conc = sys.argv[1:]
try:
    r = json.load(open(f))
except Exception as e:
    print(f"| {system} | {op} (hakv bench) | {conc} | failed: {e} | | | |"); sys.exit()
lat = r.get("latency_us") or {}
fmt = lambda us: "-" if us is None else (f"{us/1000:.2f}ms" if us >= 1000 else f"{us:.0f}us")
print(f"| {system} | {op} (hakv bench) | {conc} | {r['qps']:.0f} | {fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | {r['failed']} |")
PY
  done
}

echo "| system | operation | conc | req/s | p50 | p99 | non-2xx / errors |"
echo "|---|---|---|---|---|---|---|"

# hakv serve, durable (fsync per group-commit batch), default cache.
start hakv "$HAKV" serve --listen 127.0.0.1:17379 --data-dir "$OUT/hakv-data"
HAKV_PID=$LAST_PID
wait_http http://127.0.0.1:17379/health
sleep 1
IDLE_RSS=$(rss_mib "$HAKV_PID")
for c in 32 1; do
  row "hakv serve" "POST set (durable)" "$c" http://127.0.0.1:17379/data/k1 "$LUA"
  row "hakv serve" "GET hit (cached)" "$c" http://127.0.0.1:17379/data/k1
  row "hakv serve" "GET miss (404)" "$c" http://127.0.0.1:17379/data/nokey
  brow "hakv serve" "POST set (durable)" "$c" http://127.0.0.1:17379 1
  brow "hakv serve" "GET hit (cached)" "$c" http://127.0.0.1:17379 0
done
LOAD_RSS=$(rss_mib "$HAKV_PID")
cleanup

# The HTTP ceiling: minimal axum in-memory KV with the seed's JSON shapes.
CEIL=$("$PEERS/build_rust_kv.sh" | tail -1)
start ceiling "$CEIL" 18080
wait_http http://127.0.0.1:18080/hello
for c in 32 1; do
  row "ceiling (axum, in-memory)" "POST set" "$c" http://127.0.0.1:18080/data/k1 "$LUA"
  row "ceiling (axum, in-memory)" "GET hit" "$c" http://127.0.0.1:18080/data/k1
  brow "ceiling (axum, in-memory)" "POST set" "$c" http://127.0.0.1:18080 1
  brow "ceiling (axum, in-memory)" "GET hit" "$c" http://127.0.0.1:18080 0
done
cleanup

# The seed program, verbatim, as shipped (Flask dev server, debug=True).
start flask bash -c "cd '$PEERS' && exec python3 seed_flask_app.py"
wait_http http://127.0.0.1:5000/data/x || true
curl -s -X POST -H 'Content-Type: application/json' -d '{"value":"hello world"}' http://127.0.0.1:5000/data/k1 >/dev/null
for c in 32 1; do
  row "seed Flask app" "POST set" "$c" http://127.0.0.1:5000/data/k1 "$LUA"
  row "seed Flask app" "GET hit" "$c" http://127.0.0.1:5000/data/k1
done
cleanup

if command -v etcd >/dev/null 2>&1; then
  start etcd etcd --data-dir "$OUT/etcd-data" --listen-client-urls http://127.0.0.1:12379 \
    --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380
  wait_http http://127.0.0.1:12379/health
  for c in 32 1; do
    row "etcd 1 member (JSON gateway)" "put" "$c" http://127.0.0.1:12379/v3/kv/put "$ETCD_LUA"
  done
  cleanup
fi

echo
echo "hakv RSS: idle ${IDLE_RSS} MiB, after the load above ${LOAD_RSS} MiB (cache bound 64 MiB)."
