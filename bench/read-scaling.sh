#!/usr/bin/env bash
# Read scaling, the seed's QPS = n × p: clusters of n members, every member capped at SHARE of
# one core (a cgroup v1 CPU quota), for n in SIZES (1: one voter; 3: three voters; 5: three
# voters and two read replicas added with `hakv cluster add --learner`). Loads KEYS keys of
# VALUE bytes, then runs DUR-second windows, REPS times: stale reads and linearizable reads
# with one `hakv bench` per member at once (CONN connections each; their rates add up), and
# writes through the leader. p is the 1-member rate of the same kind; each rate is printed
# against n × p. EXTRA holds more `hakv serve` flags for every member (e.g. EXTRA="--lease-reads
# false"). READS_OFF_LEADER=1 sends the read windows to the followers and replicas only (for
# n > 1), as `hakv balance --reads-off-leader` would. Needs root (cgroups).
#   cargo build --release -p hakv && bench/read-scaling.sh        (env: SIZES="1 3 5" SHARE=0.25)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${HAKV:-$ROOT/target/release/hakv}
SIZES=${SIZES:-1 3 5}; SHARE=${SHARE:-0.25}; KEYS=${KEYS:-10000}; VALUE=${VALUE:-1024}
DUR=${DUR:-10}; CONN=${CONN:-64}; REPS=${REPS:-2}; D=${OUT:-/tmp/hakv-bench-read-scaling}
EXTRA=${EXTRA:-}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "read-scaling.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no hakv binary at $BIN (cargo build --release -p hakv)" >&2; exit 2; }
[ -w /sys/fs/cgroup/cpu ] || { echo "read-scaling.sh needs root and cgroup v1 at /sys/fs/cgroup/cpu" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"; OUT=$D
PIDS=()
. "$ROOT/bench/lib.sh"
stop_cluster() {
  local i
  stop_started
  for i in 1 2 3 4 5 6 7 8 9; do uncap_cpu "hakv-read-scaling-$i"; done
}
trap 'stop_cluster; rm -rf "$D"/c*' EXIT
trap 'exit 130' INT TERM
TOKEN=read-scaling

# applied_everywhere N: waits until every member's applied index reaches the leader's commit.
applied_everywhere() {
  python3 - "$@" <<'PY'
import json, sys, time, urllib.request
members = sys.argv[1:]
view = lambda m: json.load(urllib.request.urlopen(f"http://{m}/cluster", timeout=2))
target = max(view(m)["commit_index"] or 0 for m in members)
for _ in range(600):
    if all((view(m)["applied_index"] or 0) >= target for m in members):
        sys.exit(0)
    time.sleep(0.1)
sys.exit("members did not apply the load")
PY
}

# window NAME TARGET... -- BENCH-FLAGS: one `hakv bench` per target at once; prints the sum.
window() {
  local name=$1 targets=() t i=0 pids=(); shift
  while [ "$1" != -- ]; do targets+=("$1"); shift; done; shift
  for t in "${targets[@]}"; do
    "$BIN" bench --target "http://$t" -c "$CONN" -d "${DUR}s" --keys "$KEYS" --value-size "$VALUE" \
      --write-method put "$@" -q --json >"$D/$name-$i.json" &
    pids+=($!); i=$((i + 1))
  done
  wait "${pids[@]}"
  python3 - "$D" "$name" "$i" <<'PY'
import json, sys
d, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [json.load(open(f"{d}/{name}-{i}.json")) for i in range(n)]
qps = sum(r["qps"] for r in runs)
p99 = max(r["latency_us"]["p99"] for r in runs) / 1e3
failed = sum(r["failed"] for r in runs)
print(f"{qps:.0f} {p99:.2f} {failed}")
PY
}

for rep in $(seq "$REPS"); do
  for n in $SIZES; do
    dir=$D/c$n; rm -rf "$dir"; mkdir -p "$dir"
    # shellcheck disable=SC2086 # EXTRA is a list of flags
    VOTERS=$((n < 3 ? n : 3)) start_members "$BIN" "$dir" 17830 "$TOKEN" "" $EXTRA
    VOTERS=$((n < 3 ? n : 3))
    L=$(leader_of "${MEMBERS[1]}") || { echo "no leader (n=$n)" >&2; exit 1; }
    for i in $(seq $((VOTERS + 1)) "$n"); do
      # shellcheck disable=SC2086
      add_read_replica "$BIN" "$dir" 17830 "$TOKEN" "$i" $EXTRA || { echo "adding replica $i failed" >&2; exit 1; }
    done
    for i in $(seq "$n"); do cap_cpu "hakv-read-scaling-$i" "${PIDS[$((i - 1))]}" "$SHARE" || exit 1; done
    "$BIN" bench --target "http://$L" -c 32 --keys "$KEYS" --value-size "$VALUE" --prefill -n 1 \
      --write-method put --timeout 10s -q --json >"$dir/load.json" || { echo "load failed" >&2; exit 1; }
    applied_everywhere "${MEMBERS[@]:1:$n}" || exit 1
    readers=("${MEMBERS[@]:1:$n}")
    if [ "${READS_OFF_LEADER:-0}" = 1 ] && [ "$n" -gt 1 ]; then
      readers=(); for m in "${MEMBERS[@]:1:$n}"; do [ "$m" != "$L" ] && readers+=("$m"); done
    fi
    stale=$(window "stale-$n" "${readers[@]}" -- --write-ratio 0 --stale-reads)
    linear=$(window "linear-$n" "${readers[@]}" -- --write-ratio 0)
    writes=$(window "writes-$n" "$L" -- --write-ratio 1)
    echo "$rep $n $stale $linear $writes" | tee -a "$D/rows"
    stop_cluster
  done
done

python3 - "$D/rows" "$SHARE" <<'PY'
import sys
from collections import defaultdict
rows = [line.split() for line in open(sys.argv[1])]
print(f"every member capped at {sys.argv[2]} CPU; rates in requests/s (p99 ms, failed)")
print(f"{'rep':>3} {'n':>2} | {'stale reads':>24} {'vs n×p':>7} | {'linearizable reads':>24} {'vs n×p':>7} | {'writes via leader':>24}")
p = {}
for r in rows:
    rep, n = int(r[0]), int(r[1])
    s, l, w = [(float(r[i]), float(r[i + 1]), int(r[i + 2])) for i in (2, 5, 8)]
    if n == 1:
        p[rep] = (s[0], l[0])
    ps, pl = p.get(rep, (float("nan"), float("nan")))
    cell = lambda x: f"{x[0]:9.0f} ({x[1]:6.2f} ms, {x[2]})"
    print(f"{rep:>3} {n:>2} | {cell(s):>24} {s[0] / (n * ps):6.2f}x | {cell(l):>24} {l[0] / (n * pl):6.2f}x | {cell(w):>24}")
PY
