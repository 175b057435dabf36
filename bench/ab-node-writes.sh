#!/usr/bin/env bash
# A/B of two hakv builds on one node under a sustained write load: 1 KB values over KEYS
# uniform keys (far more than the caches), `hakv bench` with 32 connections for DUR seconds
# on core 1, the node on both cores; REPS interleaved pairs (A, B, A, B, ...) on fresh data
# directories. Prints per run: writes/s, p99, failures, and the CPU time of the node's
# storage-engine workers (threads named fjall:worker) against the whole node's, and its peak RSS.
#   bench/ab-node-writes.sh OLD_BINARY NEW_BINARY      (env: DUR=25, REPS=3, KEYS=2000000)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A=$1; B=$2; DUR=${DUR:-25}; REPS=${REPS:-3}; KEYS=${KEYS:-2000000}
OUT=${OUT:-/tmp/hakv-ab-node-writes}; ADDR=127.0.0.1:17901
for tool in curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "ab-node-writes.sh needs $tool" >&2; exit 2; }
done
PIDS=()
. "$ROOT/bench/lib.sh"
trap 'stop_started; rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM
# cpu_seconds PID [THREAD_NAME]: user + system CPU seconds of PID's threads (named THREAD_NAME).
cpu_seconds() {
  local t name ticks=0
  for t in /proc/"$1"/task/*; do
    read -r name <"$t/comm"
    [ -z "${2:-}" ] || [ "$name" = "$2" ] && ticks=$((ticks + $(awk '{print $14 + $15}' "$t/stat")))
  done
  python3 -c "print(f'{$ticks / $(getconf CLK_TCK):.1f}')"
}
run() { # run BINARY LABEL
  local bin=$1 label=$2
  rm -rf "$OUT"; mkdir -p "$OUT"
  start_node "$bin" 0,1 "$ADDR" "$OUT" || return
  taskset -c 1 "$bin" bench --target "http://$ADDR" -c 32 -d "${DUR}s" --keys "$KEYS" \
    --key-dist uniform --value-size 1024 --write-ratio 1 --write-method put -q --json >"$OUT/b.json"
  local workers all peak
  workers=$(cpu_seconds "$LAST_PID" fjall:worker); all=$(cpu_seconds "$LAST_PID")
  peak=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$LAST_PID/status")
  stop_started
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]} {r['qps']:8.0f} writes/s  p99 {r['latency_us']['p99']/1e3:6.1f} ms  failed {r['failed']}  storage workers {sys.argv[3]} s CPU of the node's {sys.argv[4]} s  peak RSS {sys.argv[5]} MiB\")" \
    "$OUT/b.json" "$label" "$workers" "$all" "$peak"
}
for _ in $(seq "$REPS"); do run "$A" A; run "$B" B; done
