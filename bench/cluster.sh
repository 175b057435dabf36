#!/usr/bin/env bash
# hakv 3-member cluster against etcd 3.4 with 3 members, in one run, in the arrangement of
# ../shared/peers/02_etcd.sh: every member pinned to SRV_CPU (core 0), wrk to LOAD_CPU (core 1),
# keep-alive, closed loop, 32 connections. Rows: writes via the leader, writes via a follower,
# linearizable reads on the leader and on a follower (etcd: JSON gateway put / range, as 02_etcd.sh),
# plus hakv bench writes through the leader. Then leader failover: bench/failover.sh (hakv,
# default timings) and ../shared/peers/02b_etcd_failover.py (etcd default, and tuned 250/50 ms).
#
#   bench/cluster.sh                       # DUR=10 REPS=2
#   DUR=3 REPS=1 FO_KILLS=3 ETCD_FO_TRIALS=1 bench/cluster.sh   # smoke
# Knobs: DUR, REPS, SRV_CPU, LOAD_CPU, OUT (default /tmp/hakv-bench-cluster), HAKV, PEERS,
#   FO_KILLS (hakv leader kills, default 12), ETCD_FO_TRIALS (default 5, 2 windows each),
#   ETCD_FO_TUNED (1: also etcd at --election-timeout 250 --heartbeat-interval 50; default 1).
# Needs: wrk, etcd 3.4, python3, a release build (cargo build --release -p hakv).
# Prints markdown tables on stdout; raw outputs stay in $OUT.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" 2>/dev/null && pwd)}
DUR=${DUR:-10}; REPS=${REPS:-2}; SRV_CPU=${SRV_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-/tmp/hakv-bench-cluster}
HAKV=${HAKV:-$ROOT/target/release/hakv}
FO_KILLS=${FO_KILLS:-12}; ETCD_FO_TRIALS=${ETCD_FO_TRIALS:-5}; ETCD_FO_TUNED=${ETCD_FO_TUNED:-1}
TOKEN=hakv-bench-cluster-token
HPORT=27420      # hakv members on 27421..27423
ECP=24790; EPP=24800   # etcd client 24791..24793, peer 24801..24803
export SRV_CPU HAKV
mkdir -p "$OUT"; rm -rf "$OUT/hakv" "$OUT/etcd"
TSV="$OUT/results.tsv"; : >"$TSV"
STARTED=$(date +%s)

PIDS=()
. "$ROOT/bench/lib.sh"
cleanup() { stop_started; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { start_pinned "$1" "$SRV_CPU" "${@:2}"; } # start NAME CMD...: pinned to SRV_CPU
# bounded NAME SECS CMD...: run CMD in its own process group (it and its children, e.g. the
# members a failover script starts), output in $OUT/NAME.txt; killed after SECS.
bounded() {
  local name=$1 secs=$2 pid i; shift 2
  setsid "$@" >"$OUT/$name.txt" 2>&1 &
  pid=$!; PIDS+=("$pid")
  for i in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name: still running after ${secs}s, stopped" >&2
    kill -TERM -- "-$pid" 2>/dev/null; sleep 2; kill -KILL -- "-$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
}

cpu_snap() { awk '/^cpu[01] /{b=$2+$3+$4+$7+$8+$9; printf "%d %d ", b, b+$5+$6}' /proc/stat; }

POST_LUA="$OUT/post.lua"
cat >"$POST_LUA" <<'LUA'
wrk.method = "POST"
wrk.body = '{"value": "hello world"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# run SYSTEM ROW URL [LUA]: REPS wrk runs at 32 connections (only repetition $ONLY_REP when
# set); one TSV line each: system row rep req/s p50 p99 errors busy%core0/core1
run() {
  local system=$1 rowname=$2 url=$3 lua=${4:-} r f s0 s1 busy args=()
  [ -n "$lua" ] && args=(-s "$lua")
  for r in ${ONLY_REP:-$(seq "$REPS")}; do
    f="$OUT/$system-$rowname-r$r.txt"
    s0=$(cpu_snap)
    taskset -c "$LOAD_CPU" wrk -t1 -c32 -d"${DUR}s" --timeout 5s --latency "${args[@]}" "$url" >"$f" 2>&1
    s1=$(cpu_snap)
    busy=$(echo "$s0 $s1" | awk '{printf "%.0f/%.0f", 100*($5-$1)/($6-$2), 100*($7-$3)/($8-$4)}')
    awk -v s="$system" -v o="$rowname" -v r="$r" -v busy="$busy" '
      /Requests\/sec:/ {rps=$2} /^ +50% / {p50=$2} /^ +99% / {p99=$2}
      /Non-2xx/ {n2=$NF} /Socket errors/ {se=$0; sub(/.*errors: /,"",se)}
      END {printf "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\n", s, o, r, rps, p50, p99, (n2==""?"0":n2) (se==""?"":", " se), busy}' "$f" | tee -a "$TSV" >&2
  done
}
# brun SYSTEM ROW URL: REPS runs of hakv bench, writes over 1000 keys
brun() {
  local system=$1 rowname=$2 url=$3 r f
  for r in $(seq "$REPS"); do
    f="$OUT/$system-$rowname-r$r.json"
    taskset -c "$LOAD_CPU" timeout $((DUR + 30)) "$HAKV" bench --target "$url" -c 32 -d "${DUR}s" \
      --keys 1000 --write-ratio 1 --json -q >"$f" 2>"$OUT/$system-$rowname-r$r.err" || true
    python3 - "$f" "$system" "$rowname" "$r" <<'PY' | tee -a "$TSV" >&2
import json, sys
f, system, row, r = sys.argv[1:]
try:
    j = json.load(open(f))
except Exception as e:
    print(f"{system}\t{row}\t{r}\t0\t-\t-\tfailed: {e}\t-"); sys.exit()
lat = j.get("latency_us") or {}
fmt = lambda us: "-" if us is None else (f"{us/1000:.2f}ms" if us >= 1000 else f"{us:.0f}us")
print(f"{system}\t{row}\t{r}\t{j['qps']:.0f}\t{fmt(lat.get('p50'))}\t{fmt(lat.get('p99'))}\t{j['failed']}\t-")
PY
  done
}

hakv_cluster_json() { curl -s --max-time 1 "http://127.0.0.1:$1/cluster"; }
hakv_term() { hakv_cluster_json "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["term"], (s.get("leader") or {}).get("id"))' 2>/dev/null; }
etcd_is_leader() {
  curl -s --max-time 2 -X POST "http://127.0.0.1:$1/v3/maintenance/status" -d '{}' |
    python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["header"]["member_id"]==s["leader"] else 1)'
}

{
echo "# bench/cluster.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
echo "# DUR=$DUR REPS=$REPS SRV_CPU=$SRV_CPU LOAD_CPU=$LOAD_CPU FO_KILLS=$FO_KILLS ETCD_FO_TRIALS=$ETCD_FO_TRIALS; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(etcd --version 2>/dev/null | head -1), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
} | tee "$OUT/meta.txt"

# ---------- hakv, 3 members ----------
mkdir -p "$OUT/hakv"
start_members "$HAKV" "$OUT/hakv" "$HPORT" "$TOKEN" "$SRV_CPU"
HL=$(leader_of "${MEMBERS[1]}") || { echo "hakv cluster has no leader" >&2; exit 1; }
HL=${HL##*:}
HF=$(for i in 1 2 3; do [ $((HPORT + i)) != "$HL" ] && echo $((HPORT + i)); done | head -1)
curl -s -X POST -H 'Content-Type: application/json' -d '{"value": "hello world"}' "http://127.0.0.1:$HL/data/k1" >/dev/null
sleep 1
echo "hakv leader :$HL, follower used :$HF; term/leader before: $(hakv_term "$HL")" | tee -a "$OUT/meta.txt" >&2
# The two write rows alternate (L F, F L, ...): their ratio is a target, and a row that always
# came second would carry the machine's drift and the cluster's growing state alone.
writes_interleaved() { # writes_interleaved SYSTEM LEADER_URL FOLLOWER_URL LUA
  local r
  for r in $(seq "$REPS"); do
    if [ $((r % 2)) = 1 ]; then
      ONLY_REP=$r run "$1" write-leader "$2" "$4"; ONLY_REP=$r run "$1" write-follower "$3" "$4"
    else
      ONLY_REP=$r run "$1" write-follower "$3" "$4"; ONLY_REP=$r run "$1" write-leader "$2" "$4"
    fi
  done
}
writes_interleaved hakv "http://127.0.0.1:$HL/data/k1" "http://127.0.0.1:$HF/data/k1" "$POST_LUA"
run hakv read-lin-leader "http://127.0.0.1:$HL/data/k1"
run hakv read-lin-follower "http://127.0.0.1:$HF/data/k1"
brun hakv bench-write-leader "http://127.0.0.1:$HL"
echo "hakv term/leader after: $(hakv_term "$HL"); sanity read on the follower: $(curl -s --max-time 2 "http://127.0.0.1:$HF/data/k1")" | tee -a "$OUT/meta.txt" >&2
cleanup

# ---------- etcd 3.4, 3 members (etcd_lib.sh's commands) ----------
IC="m1=http://127.0.0.1:$((EPP + 1)),m2=http://127.0.0.1:$((EPP + 2)),m3=http://127.0.0.1:$((EPP + 3))"
for i in 1 2 3; do
  cp=$((ECP + i)); pp=$((EPP + i))
  start "etcd-m$i" etcd --name "m$i" --data-dir "$OUT/etcd/m$i" \
    --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "$IC" --initial-cluster-state new --initial-cluster-token hakv-bench-cluster \
    --logger zap --log-outputs stderr --log-level warn
done
for i in 1 2 3; do
  for _ in $(seq 200); do
    curl -s --max-time 1 "http://127.0.0.1:$((ECP + i))/health" | grep -q '"health":"true"' && break; sleep 0.1
  done
done
sleep 1
EL=; EF=
for i in 1 2 3; do if etcd_is_leader $((ECP + i)); then EL=$((ECP + i)); else EF=$((ECP + i)); fi; done
[ -n "$EL" ] || { echo "etcd has no leader" >&2; exit 1; }
curl -s -X POST "http://127.0.0.1:$EL/v3/kv/put" -d '{"key":"YW5jaG9yLWtleQ==","value":"aGVsbG8gd29ybGQ="}' >/dev/null
echo "etcd leader :$EL, follower used :$EF" | tee -a "$OUT/meta.txt" >&2
writes_interleaved etcd "http://127.0.0.1:$EL/v3/kv/put" "http://127.0.0.1:$EF/v3/kv/put" \
  "$PEERS/lua/etcd_put.lua"
run etcd read-lin-leader "http://127.0.0.1:$EL/v3/kv/range" "$PEERS/lua/etcd_range.lua"
run etcd read-lin-follower "http://127.0.0.1:$EF/v3/kv/range" "$PEERS/lua/etcd_range.lua"
echo "etcd leader after: $(for i in 1 2 3; do etcd_is_leader $((ECP + i)) && echo $((ECP + i)); done); sanity range: $(curl -s --max-time 2 -X POST "http://127.0.0.1:$EF/v3/kv/range" -d '{"key":"YW5jaG9yLWtleQ=="}' | head -c 200)" | tee -a "$OUT/meta.txt" >&2
cleanup
rm -rf "$OUT/hakv" "$OUT/etcd"

# ---------- failover ----------
# The writers run on LOAD_CPU; the members each script starts are pinned to SRV_CPU.
bounded fo-hakv $((FO_KILLS * 20 + 30)) taskset -c "$LOAD_CPU" "$ROOT/bench/failover.sh" "$FO_KILLS"
cat "$OUT/fo-hakv.txt" >&2
if [ "$ETCD_FO_TRIALS" -gt 0 ]; then
  bounded fo-etcd-default $((ETCD_FO_TRIALS * 20 + 30)) taskset -c "$LOAD_CPU" python3 "$PEERS/02b_etcd_failover.py" "$ETCD_FO_TRIALS"
  cat "$OUT/fo-etcd-default.txt" >&2
  if [ "$ETCD_FO_TUNED" = 1 ]; then
    bounded fo-etcd-tuned $((ETCD_FO_TRIALS * 20 + 30)) taskset -c "$LOAD_CPU" python3 "$PEERS/02b_etcd_failover.py" "$ETCD_FO_TRIALS" 250 50
    cat "$OUT/fo-etcd-tuned.txt" >&2
  fi
fi

# ---------- tables ----------
python3 - "$OUT" <<'PY'
import os, re, statistics, sys
out = sys.argv[1]
rows = {}
for line in open(f"{out}/results.tsv"):
    s, row, rep, rps, p50, p99, err, busy = line.rstrip("\n").split("\t")
    rows.setdefault((s, row), []).append((float(rps), p50, p99, err, busy))
names = {"write-leader": "write (POST / put) via the leader", "write-follower": "write via a follower (forwarded)",
         "read-lin-leader": "linearizable read on the leader", "read-lin-follower": "linearizable read on a follower",
         "bench-write-leader": "write via the leader, `hakv bench` (1000 keys)"}
med = lambda k: statistics.median(r[0] for r in rows[k]) if k in rows else None
print("\n### Throughput, 32 connections (req/s per run, median; wrk p50 / p99 per run)\n")
print("| system | operation | req/s per run | median | p50 | p99 | non-2xx / errors | busy % core0/core1 |")
print("|---|---|---|---|---|---|---|---|")
for (s, row), rs in rows.items():
    j = lambda i: " / ".join(str(r[i]) for r in rs)
    print(f"| {s} | {names.get(row, row)} | {' / '.join(f'{r[0]:,.0f}' for r in rs)} | **{med((s, row)):,.0f}** | {j(1)} | {j(2)} | {j(3)} | {j(4)} |")
def ratio(a, b):
    x, y = med(a), med(b)
    return "-" if not x or not y else f"{x / y:.2f}×"
print("\n### Ratios within this run (medians)\n")
print("| ratio | value | issue 3 target |")
print("|---|---|---|")
print(f"| hakv / etcd, writes via the leader | {ratio(('hakv','write-leader'), ('etcd','write-leader'))} | ≥ 3× |")
print(f"| hakv / etcd, writes via the leader (`hakv bench` vs etcd wrk) | {ratio(('hakv','bench-write-leader'), ('etcd','write-leader'))} | |")
print(f"| hakv / etcd, linearizable reads on the leader | {ratio(('hakv','read-lin-leader'), ('etcd','read-lin-leader'))} | ≥ 5× |")
print(f"| hakv / etcd, linearizable reads on a follower | {ratio(('hakv','read-lin-follower'), ('etcd','read-lin-follower'))} | |")
print(f"| hakv follower / leader writes | {ratio(('hakv','write-follower'), ('hakv','write-leader'))} | ≥ 0.8× |")
print(f"| etcd follower / leader writes | {ratio(('etcd','write-follower'), ('etcd','write-leader'))} | (≈ 0.5× in RESULTS.md) |")

print("\n### Leader failover (`kill -9` of the leader; window = kill → first successful write started after it)\n")
print("| system | settings | kills | windows (ms, one per surviving writer) | min / median / max | availability |")
print("|---|---|---|---|---|---|")
def read(name):
    p = f"{out}/{name}.txt"
    return open(p).read() if os.path.exists(p) else ""
h = read("fo-hakv")
m = re.search(r"^SUMMARY hakv kills=(\d+) windows=\d+ \(ms\) \[([^\]]*)\], min (\d+) median (\d+) max (\d+); unrecovered writers: (\d+); "
              r"availability successful/total = (\d+)/(\d+) = ([\d.]+)%; uptime/total time = ([\d.]+)/([\d.]+) s = ([\d.]+)%", h, re.M)
if m:
    k, w, mn, md, mx, un, ok, tot, av, up, span, avt = m.groups()
    print(f"| hakv | default (heartbeat 50 ms, election timeout 150 ms) | {k} | {w} | **{int(mn)/1000:.2f} / {int(md)/1000:.2f} / {int(mx)/1000:.2f} s** | "
          f"{ok}/{tot} writes = {av}%; uptime/total time {up}/{span} s = {avt}%; {un} writers unrecovered |")
else:
    print("| hakv | default | - | no summary (see fo-hakv.txt) | | |")
for name, label in (("fo-etcd-default", "default (election 1000 ms, heartbeat 100 ms)"), ("fo-etcd-tuned", "tuned (election 250 ms, heartbeat 50 ms)")):
    e = read(name)
    if not e:
        continue
    m = re.search(r"^SUMMARY election=\d+ms: windows \(ms\) \[([^\]]*)\], min (\d+) median (\d+) max (\d+); unrecovered writers: (\d+)", e, re.M)
    trials = len(set(re.findall(r"^trial (\d+)", e, re.M)))
    fails = [int(x) for x in re.findall(r"failed_puts_after_kill=(\d+)", e)]
    if m:
        w, mn, md, mx, un = m.groups()
        md = statistics.median(int(x) for x in w.split(", "))  # 02b prints the upper median
        print(f"| etcd 3.4 (02b_etcd_failover.py) | {label} | {trials} | {w} | **{int(mn)/1000:.2f} / {int(md)/1000:.2f} / {int(mx)/1000:.2f} s** | "
              f"failed puts per writer after the kill: {min(fails)}–{max(fails)} (02b reports no totals); {un} writers unrecovered |")
    else:
        print(f"| etcd 3.4 | {label} | - | no summary (see {name}.txt) | | |")
PY
echo
echo "Wall time: $(( $(date +%s) - STARTED )) s. Raw outputs: $OUT"
