#!/usr/bin/env bash
# Reads on a state far larger than the caches (one node): loads KEYS keys of VALUE bytes, then
# runs GET windows of DUR seconds, REPS rounds of: one hot key, uniform over every key, Zipf
# 0.99 over every key. The node is pinned to SRV_CPU and `hakv bench` (CONN connections) to
# LOAD_CPU. EXTRA holds more `hakv serve` flags (cache settings to compare). Prints each
# window's rate, p99 and value-cache hit ratio, and the uniform and Zipf rates as ratios of the hot-key rate.
# OVERWRITE=<seconds>: after loading, that long of uniform overwrites of every key (64
# connections), so the reads meet the state as a node that has run for a while holds it (moved
# down the storage engine's levels by compactions), not as a fresh load leaves it.
# HAKV_BENCH_VALUE_FILL=random (read by `hakv bench`): values of random characters, which do not
# compress, so the state on disk is as large as the values.
#   cargo build --release -p hakv && KEYS=1500000 bench/read-miss.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${HAKV:-$ROOT/target/release/hakv}
KEYS=${KEYS:-1500000}; VALUE=${VALUE:-1024}; DUR=${DUR:-10}; REPS=${REPS:-2}; CONN=${CONN:-32}
SRV_CPU=${SRV_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}; D=${OUT:-/tmp/hakv-bench-read-miss}; EXTRA=${EXTRA:-}
for tool in curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "read-miss.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no hakv binary at $BIN (cargo build --release -p hakv)" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"; OUT=$D
PIDS=()
. "$ROOT/bench/lib.sh"
trap 'stop_started; rm -rf "$D/node"' EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC2086 # EXTRA is a list of flags
start_node "$BIN" "$SRV_CPU" 127.0.0.1:17795 "$D" $EXTRA || exit 1
T=http://127.0.0.1:17795
"$BIN" bench --target "$T" -c 64 --keys "$KEYS" --value-size "$VALUE" --prefill -n 1 --write-method put \
  --timeout 10s -q --json >"$D/load.json"
python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['prefill']; print(f\"loaded {p['requests']} keys in {p['elapsed_seconds']:.0f}s\")" "$D/load.json"
if [ "${OVERWRITE:-0}" -gt 0 ]; then
  "$BIN" bench --target "$T" -c 64 -d "${OVERWRITE}s" --keys "$KEYS" --key-dist uniform --value-size "$VALUE" \
    --write-ratio 1 --write-method put --timeout 10s -q --json >"$D/overwrite.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"overwrote for {sys.argv[2]}s: {r['requests']} writes, {r['failed']} failed\")" "$D/overwrite.json" "$OVERWRITE"
fi
du -sh "$D/node" | sed 's/^/data directory: /'
window() { # window NAME BENCH-FLAGS…
  local name=$1 before after; shift
  before=$(cache_counts)
  taskset -c "$LOAD_CPU" "$BIN" bench --target "$T" -c "$CONN" -d "${DUR}s" --write-ratio 0 "$@" \
    -q --json >"$D/$name.json"
  after=$(cache_counts)
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); h0,m0=map(float,sys.argv[3].split()); h1,m1=map(float,sys.argv[4].split()); print(f\"{sys.argv[2]:>10}  {r['qps']:9.0f} GET/s  p99 {r['latency_us']['p99']/1e3:6.2f} ms  failed {r['failed']}  cache hits {100*(h1-h0)/max(1,(h1-h0)+(m1-m0)):5.1f} %\")" "$D/$name.json" "$name" "$before" "$after"
}
# cache_counts: the node's value-cache hits and misses so far.
cache_counts() {
  curl -s "$T/metrics" | awk '/^hakv_cache_hits_total / {h=$2} /^hakv_cache_misses_total / {m=$2} END {print h+0, m+0}'
}
for rep in $(seq "$REPS"); do
  window "hot-$rep" --keys 1
  window "uniform-$rep" --keys "$KEYS" --key-dist uniform
  window "zipf-$rep" --keys "$KEYS" --key-dist zipf --zipf-s 0.99
done
python3 - "$D" "$REPS" <<'PY'
import json, sys
d, reps = sys.argv[1], int(sys.argv[2])
q = lambda n: json.load(open(f"{d}/{n}.json"))["qps"]
for rep in range(1, reps + 1):
    hot = q(f"hot-{rep}")
    print(f"round {rep}: uniform {q(f'uniform-{rep}') / hot:.2f}x, zipf {q(f'zipf-{rep}') / hot:.2f}x the hot-key rate")
PY
grep -h "RSS\|VmRSS" /proc/"${PIDS[0]}"/status 2>/dev/null | sed 's/^/node /'
