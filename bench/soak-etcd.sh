#!/usr/bin/env bash
# The soak of bench/soak.sh against etcd 3.4 (3 members, Debian's etcd-server), for the same
# comparison: half puts of 1 KB values, half linearizable reads, uniform keys, CONN
# connections through one member, DUR seconds. Reports leader changes, errors (non-2xx and
# socket errors), throughput and each member's peak RSS. etcd keeps every revision until it is
# compacted, so its default 2 GiB quota may end the run early ("database space exceeded").
#   DUR=600 KEYS=1000000 bench/soak-etcd.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
DUR=${DUR:-120}; KEYS=${KEYS:-300000}; CONN=${CONN:-64}; D=${OUT:-/tmp/hakv-bench-soak-etcd}
for tool in etcd wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "soak-etcd.sh needs $tool (apt-get install etcd-server wrk)" >&2; exit 2; }
done
rm -rf "$D"; mkdir -p "$D"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
for i in 1 2 3; do etcd_member "$i" new "$D" 17810 soak "$D/e$i.log" --log-level warn; done
for _ in $(seq 100); do L=$(etcd_leader_port 17811 17812 17813) && break; sleep 0.2; done
[ -n "${L:-}" ] || { echo "no etcd leader" >&2; exit 1; }
leader_id() { etcd_status "$L" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])' 2>/dev/null; }
term() { etcd_status "$L" | python3 -c 'import json,sys; print(json.load(sys.stdin)["raftTerm"])' 2>/dev/null; }
T0=$(term)
echo "etcd leader on $L, term $T0; ${DUR}s, ${KEYS} keys, ${CONN} connections"
(
  while :; do
    line="$(date +%s)"
    for p in "${PIDS[@]}"; do line+=" $(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ')"; done
    echo "$line $(leader_id)" >>"$D/samples.txt"
    sleep 1
  done
) & SAMPLER=$!
: >"$D/windows.txt"
KEYS=$KEYS WINDOWS="$D/windows.txt" wrk -t1 -c"$CONN" -d"${DUR}s" --timeout 10s -s "$ROOT/bench/lua/etcd_soak.lua" \
  "http://127.0.0.1:$L" >"$D/wrk.txt" 2>&1
kill "$SAMPLER" 2>/dev/null
T1=$(term)
cat "$D/wrk.txt" | grep -E 'Requests/sec|Non-2xx|Socket errors|requests in|Latency'
echo "term before $T0 after $T1"
grep -c 'database space exceeded' "$D"/e*.log | sed 's/^/quota errors logged: /'
python3 - "$D" "$ROOT" <<'EOF'
import subprocess, sys
d, root = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(f"{d}/samples.txt") if len(l.split()) >= 4]
for i in range(3):
    peak = max((int(r[1 + i]) for r in rows if r[1 + i].isdigit()), default=0)
    print(f"member {i + 1} peak RSS {peak / 1024:.0f} MiB")
leaders = [r[4] for r in rows if len(r) > 4]
# Answers per 10 s window (bench/lua/etcd_soak.lua), judged as bench/soak.sh judges hakv's.
# The Lua writes no line for a window without answers: place each count by its window number.
counted = dict(tuple(map(int, l.split())) for l in open(f"{d}/windows.txt") if len(l.split()) == 2)
windows = [counted.get(i, 0) for i in range(max(counted) + 1)] if counted else []
sys.stdout.flush()
subprocess.run([sys.executable, f"{root}/bench/flatness.py", *(str(n / 10) for n in windows)], check=False)
print(f"leader changes seen in 1 s samples: {sum(1 for a, b in zip(leaders, leaders[1:]) if a != b)}")
EOF
du -sh "$D"/e1 | sed 's/^/data on member 1: /'
