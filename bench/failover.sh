#!/usr/bin/env bash
# hakv leader failover window, as seen by writers (the hakv twin of
# ../shared/peers/02b_etcd_failover.py). Per trial: a fresh 3-member cluster from bench/lib.sh
# with default timings (heartbeat 50 ms, election timeout 150 ms), every member pinned to
# SRV_CPU; bench/failover_writers.py writes through each member that will survive, kills the
# leader (SIGKILL, by its PID) after PRE_KILL s and reports each writer's window. Then the
# summary over all trials: windows, availability as successful / total writes and as uptime /
# total time (the seed's formula).
#
#   bench/failover.sh [TRIALS]        # default 12
# Knobs: HAKV, SRV_CPU (default 0), OUT (default /tmp/hakv-bench-failover), PORT_BASE (27410),
#   and the writers' PUT_TIMEOUT, PRE_KILL, PACE_FAILURES (bench/failover_writers.py).
# Every trial is bounded (~15 s); every process is stopped by its PID.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TRIALS=${1:-12}
HAKV=${HAKV:-$ROOT/target/release/hakv}; SRV_CPU=${SRV_CPU:-0}
OUT=${OUT:-/tmp/hakv-bench-failover}; PORT_BASE=${PORT_BASE:-27410}
TOKEN=hakv-bench-failover-token
for tool in curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "failover.sh: needs $tool" >&2; exit 2; }
done
[ -x "$HAKV" ] || { echo "failover.sh: no hakv binary at $HAKV (cargo build --release -p hakv)" >&2; exit 2; }

PIDS=()
. "$ROOT/bench/lib.sh"
trap stop_started EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"; : >"$OUT/windows.jsonl"

# committed_write ADDR: one write through ADDR, retried for up to 5 s (the new cluster's first).
committed_write() {
  local _ code
  for _ in $(seq 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 -X POST -H 'Content-Type: application/json' \
      -d '{"value": "hello world"}' "http://$1/data/fo-key")
    case $code in 2??) return 0 ;; esac
    sleep 0.1
  done
  return 1
}

for k in $(seq "$TRIALS"); do
  rm -rf "$OUT/cluster"; mkdir -p "$OUT/cluster"
  start_members "$HAKV" "$OUT/cluster" "$PORT_BASE" "$TOKEN" "$SRV_CPU"
  first=$(( ${#PIDS[@]} - 3 ))   # member i's PID is PIDS[first + i - 1]
  leader=$(leader_of "${MEMBERS[1]}") && committed_write "$leader" ||
    { echo "trial $k: the cluster did not agree on a leader (logs in $OUT/cluster)" >&2; exit 1; }
  survivors=()
  for i in 1 2 3; do
    if [ "${MEMBERS[$i]}" = "$leader" ]; then leader_id=$i; leader_pid=${PIDS[$((first + i - 1))]}
    else survivors+=("$i=${MEMBERS[$i]}"); fi
  done
  python3 "$ROOT/bench/failover_writers.py" trial "$k" "$leader_id" "$leader_pid" "${survivors[@]}" \
    >>"$OUT/windows.jsonl"
  { wait "$leader_pid"; } 2>/dev/null   # reaped here, without the shell's "Killed" line
  stop_started
done
rm -rf "$OUT/cluster"
python3 "$ROOT/bench/failover_writers.py" summary "$OUT/windows.jsonl"
