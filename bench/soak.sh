#!/usr/bin/env bash
# Soak: a 3-member cluster under sustained mixed load with 1 KB values, as users load it.
# Reports elections (term changes), failed requests, throughput per 10 s window and per minute
# (bench/flatness.py, which bench/soak-etcd.sh shares), and each member's peak RSS. Members
# and the load generator share both cores.
#   cargo build --release -p hakv && DUR=600 KEYS=1000000 bench/soak.sh
# Knobs: DUR (s, 120), KEYS (300000), VALUE (1024 bytes), CONN (64), WRITES (0.5),
# EXTRA (more `hakv serve` flags for every member), HAKV (the binary), OUT (work dir),
# PREFILL=1 (write every key once before the soak, so it runs on a state of its full size from
# the first second: without it the state grows during the run and throughput falls with it).
# SAMPLE=1: each member's CPU by thread group every second (bench/thread-cpu.py), reported per
# 10 s window with how the rate follows the storage workers and the leader's CPU per request.
# HAKV_BENCH_VALUE_FILL=random (read by `hakv bench`): values of random characters, which do not
# compress, so the state on disk is as large as the values (the default repeats one character).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
BIN=${HAKV:-$ROOT/target/release/hakv}
DUR=${DUR:-120}; KEYS=${KEYS:-300000}; VALUE=${VALUE:-1024}; CONN=${CONN:-64}
WRITES=${WRITES:-0.5}; D=${OUT:-/tmp/hakv-bench-soak}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "soak.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no hakv binary at $BIN (cargo build --release -p hakv)" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
# shellcheck disable=SC2086 # EXTRA is a list of flags
EXTRA_FLAGS=(${EXTRA:-})
start_members "$BIN" "$D" 17710 soak-check "" "${EXTRA_FLAGS[@]}"
L=$(leader_of "${MEMBERS[1]}") || { echo "no leader" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }
term_of() { curl -s -m 2 "http://$1/cluster" | field "d['term']"; }
leader_id() { curl -s -m 2 "http://$1/cluster" | field "(d.get('leader') or {}).get('id')"; }
if [ "${PREFILL:-0}" = 1 ]; then
  "$BIN" bench --target "http://$L" -c "$CONN" --keys "$KEYS" --value-size "$VALUE" --prefill -n 1 \
    --timeout 10s --threads 1 --json 2>/dev/null >"$D/prefill.json"
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['prefill']; print(f\"prefill: {p['requests']} writes ({p['failed']} failed) in {p['elapsed_seconds']:.0f}s, complete: {p['completed']}\")" "$D/prefill.json"
fi
T0=$(term_of "$L")
echo "leader $L, term $T0; ${DUR}s of ${WRITES} writes, ${VALUE}-byte values, ${KEYS} keys, ${CONN} connections"

# Sample every member's RSS and the leader each second while the load runs.
(
  while :; do
    line="$(date +%s)"
    for i in 1 2 3; do line+=" $(ps -o rss= -p "${PIDS[$((i - 1))]}" 2>/dev/null | tr -d ' ')"; done
    line+=" $(leader_id "${MEMBERS[1]}")"
    echo "$line" >>"$D/samples.txt"
    sleep 1
  done
) & SAMPLER=$!
THREADS=""
if [ "${SAMPLE:-0}" = 1 ]; then
  procs=(); for i in 1 2 3; do procs+=("m$i=${PIDS[$((i - 1))]}"); done
  python3 "$ROOT/bench/thread-cpu.py" sample "$D/thread-cpu.jsonl" "${procs[@]}" & THREADS=$!
fi

"$BIN" bench --target "http://$L" -c "$CONN" -d "${DUR}s" --keys "$KEYS" --key-dist uniform \
  --value-size "$VALUE" --write-ratio "$WRITES" --write-method put --timeout 10s --threads 1 \
  --json 2>"$D/progress.txt" >"$D/report.json"
kill "$SAMPLER" $THREADS 2>/dev/null
T1=$(term_of "$L")

python3 - "$D" "$T0" "$T1" "$ROOT" <<'EOF'
import json, re, subprocess, sys
d, t0, t1, root = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
r = json.load(open(f"{d}/report.json"))
print(f"requests {r['requests']} ok {r['successful']} failed {r['failed']} errors {r['errors']}")
print(f"qps {r['qps']:.0f}  p50 {r['latency_us']['p50']}us  p99 {r['latency_us']['p99']}us  "
      f"max {r['latency_us']['max']}us  availability {100 * r['availability']['by_requests']:.4f}%")
print(f"term before {t0} after {t1}: {int(t1) - int(t0) if t0 and t1 else '?'} elections")
# Progress lines: "[run   12s]   3456 req/s ..." -> per-10s-window mean.
rates = [int(m.group(1)) for m in re.finditer(r"\[run\s+\d+s\]\s+(\d+) req/s", open(f"{d}/progress.txt").read())]
windows = [sum(rates[i:i + 10]) / len(rates[i:i + 10]) for i in range(0, len(rates), 10) if rates[i:i + 10]]
sys.stdout.flush()
subprocess.run([sys.executable, f"{root}/bench/flatness.py", *(str(w) for w in windows)], check=False)
rows = [l.split() for l in open(f"{d}/samples.txt") if len(l.split()) >= 4]
for i in range(3):
    peak = max((int(r[1 + i]) for r in rows if r[1 + i].isdigit()), default=0)
    print(f"member {i + 1} peak RSS {peak / 1024:.0f} MiB")
leaders = [r[4] for r in rows if len(r) > 4]
changes = sum(1 for a, b in zip(leaders, leaders[1:]) if a != b)
print(f"leader changes seen in 1 s samples: {changes}")
EOF
du -sh "$D"/n1 | sed 's/^/data on member 1: /'
if [ -n "$THREADS" ]; then
  for i in 1 2 3; do [ "${MEMBERS[$i]}" = "$L" ] && LEADER="m$i"; done
  python3 "$ROOT/bench/thread-cpu.py" report "$D/thread-cpu.jsonl" "$D/progress.txt" "$LEADER"
fi
