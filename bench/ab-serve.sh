#!/usr/bin/env bash
# The fixed cost per request: two hakv builds and the HTTP ceiling (the peers' minimal in-memory
# axum KV) side by side, each a single server pinned to SRV_CPU with wrk on LOAD_CPU, keep-alive,
# 32 connections, the seed's request shapes (GET of one cached key; POST of
# `{"value": "hello world"}` to it, durable on hakv). REPS rounds; in each round every server
# takes every operation once, in turn, so each ratio compares adjacent windows. Prints one line
# per window: req/s, the server's CPU time per request (user + system, from /proc) and its
# context switches per request, and the ratio to the ceiling's rate in the same round.
#   bench/ab-serve.sh OLD_BINARY NEW_BINARY      (env: DUR=5, REPS=3, CONN=32)
# Needs: wrk, curl, taskset, bc, and the peers folder (PEERS, default ../shared/peers) to build
# the ceiling.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OLD=$1; NEW=$2
DUR=${DUR:-5}; REPS=${REPS:-3}; CONN=${CONN:-32}; SRV_CPU=${SRV_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" 2>/dev/null && pwd)}
OUT=${OUT:-/tmp/hakv-ab-serve}
for tool in wrk curl taskset bc; do
  command -v "$tool" >/dev/null || { echo "ab-serve.sh needs $tool" >&2; exit 2; }
done
[ -x "$PEERS/build_rust_kv.sh" ] || { echo "ab-serve.sh needs the peers folder (PEERS=$PEERS)" >&2; exit 2; }
PIDS=()
. "$ROOT/bench/lib.sh"
trap 'stop_started; rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM
rm -rf "$OUT"; mkdir -p "$OUT"

CEIL=$("$PEERS/build_rust_kv.sh" | tail -1)
declare -A PID PORT=([old]=17481 [new]=17482 [ceiling]=17483)
start_pinned old "$SRV_CPU" "$OLD" serve --listen 127.0.0.1:${PORT[old]} --data-dir "$OUT/old"; PID[old]=$LAST_PID
start_pinned new "$SRV_CPU" "$NEW" serve --listen 127.0.0.1:${PORT[new]} --data-dir "$OUT/new"; PID[new]=$LAST_PID
start_pinned ceiling "$SRV_CPU" "$CEIL" "${PORT[ceiling]}"; PID[ceiling]=$LAST_PID
LUA="$OUT/post.lua"
printf '%s\n' 'wrk.method = "POST"' "wrk.body = '{\"value\": \"hello world\"}'" \
  'wrk.headers["Content-Type"] = "application/json"' >"$LUA"
for target in old new ceiling; do
  url=http://127.0.0.1:${PORT[$target]}/data/k1
  for _ in $(seq 100); do
    curl -sf -X POST -H 'Content-Type: application/json' -d '{"value": "hello world"}' "$url" >/dev/null && break
    sleep 0.1
  done
  curl -sf "$url" >/dev/null || { echo "$target did not answer on $url" >&2; exit 1; }
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
# window TARGET OP: one wrk run; prints "req/s µs-per-request switches-per-request".
window() {
  local target=$1 op=$2 args=() t0 t1 s0 s1 out n
  [ "$op" = post ] && args=(-s "$LUA")
  t0=$(ticks "${PID[$target]}"); s0=$(switches "${PID[$target]}")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONN" -d"${DUR}s" "${args[@]}" "http://127.0.0.1:${PORT[$target]}/data/k1")
  t1=$(ticks "${PID[$target]}"); s1=$(switches "${PID[$target]}")
  if echo "$out" | grep -q "Non-2xx"; then echo "$target $op: non-2xx answers" >&2; exit 1; fi
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  printf '%s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "scale=2; ($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc)" \
    "$(echo "scale=3; ($s1 - $s0) / $n" | bc)"
}

echo "| round | op | server | req/s | CPU µs/request | context switches/request | vs ceiling |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$REPS"); do
  for op in get post; do
    declare -A R=()
    for target in old new ceiling; do R[$target]=$(window "$target" "$op"); done
    ceiling_rps=${R[ceiling]%% *}
    for target in old new ceiling; do
      read -r rps cpu cs <<<"${R[$target]}"
      echo "| $round | $op | $target | $rps | $cpu | $cs | $(echo "scale=2; $rps / $ceiling_rps" | bc) |"
    done
  done
done
