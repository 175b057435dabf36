#!/usr/bin/env bash
# Load-balancer benchmark: hakv balance vs nginx vs HAProxy vs direct, in one run, in the
# arrangement of ../shared/peers/05_lb.sh: two anchor-kv backends (:18081, :18082) and the
# proxy under test share SRV_CPU (default core 0); wrk runs on LOAD_CPU (core 1).
# nginx and HAProxy use exactly 05_lb.sh's configs (extracted from it); hakv balance runs on
# :18092 with one thread (current-thread runtime) and round robin, like the others.
# Knobs (env): DUR, REPS, SRV_CPU, LOAD_CPU (see common.sh), OUT (default /tmp/hakv-lb-bench),
# HAKV (the hakv binary, default target/release/hakv), HAKV_B (optional: a second hakv binary,
# run as one more target "hakvb" on :18093, for A/B comparisons of two builds in one run).
# Repetitions are interleaved (every target
# once, then again), so a burst of background load hits all targets alike.
# Besides wrk's numbers, the CPU time (user and system, from /proc/PID/stat) each proxy process
# spent per request is written to $OUT/cpu.tsv.
# Usage: cargo build --release -p hakv && bench/lb.sh
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$ROOT/../shared/peers}
# Every baseline must be there: a missing one would leave rows of `nan`, not an error.
missing=()
for tool in wrk nginx haproxy curl python3 taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -f "$PEERS/common.sh" ] || missing+=("$PEERS/common.sh (the peers' kit; set PEERS)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "lb.sh needs: ${missing[*]} (apt-get install wrk nginx haproxy)" >&2
  exit 2
fi
export OUT=${OUT:-/tmp/hakv-lb-bench}
rm -rf "$OUT"
. "$PEERS/common.sh"
HAKV=${HAKV:-$ROOT/target/release/hakv}
[ -x "$HAKV" ] || { echo "build first: cargo build --release -p hakv" >&2; exit 1; }
BIN=$("$ANCH/build_rust_kv.sh" | tail -1)
D=/tmp/anchors-lb
rm -rf "$D"; mkdir -p "$D"
# The same nginx.conf and haproxy.cfg as 05_lb.sh.
sed -n '/^cat > "\$D\/nginx.conf" <<NGX/,/^HAP$/p' "$ANCH/05_lb.sh" > "$D/gen.sh"
. "$D/gen.sh"

start_bg kv-a "$BIN" 18081
start_bg kv-b "$BIN" 18082
wait_http http://127.0.0.1:18081/hello; wait_http http://127.0.0.1:18082/hello
for p in 18081 18082; do
  curl -s -X POST -H 'Content-Type: application/json' -d '{"value":"hello world"}' "http://127.0.0.1:$p/data/k1" >/dev/null
done
start_bg nginx nginx -p "$D/" -e "$D/nginx-error.log" -c "$D/nginx.conf"
NGINX_PID=$LAST_PID
start_bg haproxy haproxy -db -f "$D/haproxy.cfg"
HAPROXY_PID=$LAST_PID
# anchor-kv has no /ready: health-check /hello instead.
printf '[health]\npath = "/hello"\n' > "$D/hakv-lb.toml"
HAKV_LOG=warn start_bg hakv-lb "$HAKV" balance --listen 127.0.0.1:18092 --admin-listen 127.0.0.1:18192 --threads 1 \
  --algorithm round-robin --config "$D/hakv-lb.toml" \
  --backend 127.0.0.1:18081 --backend 127.0.0.1:18082
HAKV_PID=$LAST_PID
HAKV_B_PID=""
if [ -n "${HAKV_B:-}" ]; then
  HAKV_LOG=warn start_bg hakvb-lb "$HAKV_B" balance --listen 127.0.0.1:18093 --admin-listen 127.0.0.1:18193 --threads 1 \
    --algorithm round-robin --config "$D/hakv-lb.toml" \
    --backend 127.0.0.1:18081 --backend 127.0.0.1:18082
  HAKV_B_PID=$LAST_PID
  wait_http http://127.0.0.1:18093/hello
fi
wait_http http://127.0.0.1:18090/hello; wait_http http://127.0.0.1:18091/hello; wait_http http://127.0.0.1:18092/hello

NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
TARGETS="direct:18081: nginx:18090:$NGINX_WORKER haproxy:18091:$HAPROXY_PID hakv:18092:$HAKV_PID"
[ -n "$HAKV_B_PID" ] && TARGETS="$TARGETS hakvb:18093:$HAKV_B_PID"
KV_A=${PIDS[0]}
# jiffies (user, system) of a process
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
printf 'label\tconc\trequests\tproxy_user_us_per_req\tproxy_sys_us_per_req\tbackend_a_us_per_req\n' > "$OUT/cpu.tsv"
# measure LABEL CONC URL [LUA]: one wrk run, plus the proxy's and backend a's CPU per request.
measure() {
  local label=$1 conc=$2 pid=$3; shift 3
  local p0 p1 a0 a1 n
  p0=$( [ -n "$pid" ] && ticks "$pid" || echo "0 0"); a0=$(ticks "$KV_A")
  REPS=1 bench "$label" "$conc" "$@"
  p1=$( [ -n "$pid" ] && ticks "$pid" || echo "0 0"); a1=$(ticks "$KV_A")
  n=$(awk '/requests in/ {print $1}' "$OUT/$label-c$conc-r1.txt")
  echo "$label $conc $n $p0 $p1 $a0 $a1" | awk -v hz="$HZ" '{u=($6-$4)*1e6/hz/$3; s=($7-$5)*1e6/hz/$3; a=(($10+$11)-($8+$9))*1e6/hz/$3;
    printf "%s\t%s\t%s\t%.1f\t%.1f\t%.1f\n", $1, $2, $3, u, s, a}' >> "$OUT/cpu.tsv"
  mv "$OUT/$label-c$conc-r1.txt" "$OUT/$label-c$conc-rep$rep.txt"
}
for rep in $(seq "$REPS"); do
  for c in 32 1; do
    for target in $TARGETS; do
      IFS=: read -r name port pid <<< "$target"
      measure "lb-$name-get-hit" "$c" "$pid" "http://127.0.0.1:$port/data/k1"
      measure "lb-$name-post" "$c" "$pid" "http://127.0.0.1:$port/data/k1" post_json.lua
    done
  done
done
curl -s http://127.0.0.1:18192/lb/status > "$OUT/hakv-lb-status.json"
# Did every proxy reuse backend connections? (new connections = Tcp ActiveOpens; see 05b)
echo "hakv balance pid $HAKV_PID; status in $OUT/hakv-lb-status.json"
cleanup
rm -rf "$D"
# Summary: median req/s and p50 per row, and the ratio against nginx at the same concurrency.
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    f = line.split('\t')
    rows[(f[0], f[1])].append(f)
def us(v):
    return float(v[:-2]) if v.endswith('us') else float(v[:-2]) * 1000 if v.endswith('ms') else float(v[:-1]) * 1e6
print("| target | operation | conc | req/s (median) | p50 (median) | p99 (median) | req/s vs nginx | non-2xx / socket errors |")
print("|---|---|---|---|---|---|---|---|")
for conc in ("32", "1"):
    for op in ("get-hit", "post"):
        base = statistics.median(float(r[3]) for r in rows[(f"lb-nginx-{op}", conc)])
        for t in ("direct", "nginx", "haproxy", "hakv", "hakvb"):
            rs = rows[(f"lb-{t}-{op}", conc)]
            if not rs:
                continue
            rps = statistics.median(float(r[3]) for r in rs)
            p50 = statistics.median(us(r[4]) for r in rs)
            p99 = statistics.median(us(r[5]) for r in rs)
            errs = ", ".join(sorted({f"{r[6]} / {r[7]}" for r in rs}))
            print(f"| {t} | {op} | {conc} | {rps:,.0f} | {p50:.0f} µs | {p99:.0f} µs | {rps/base:.2f}× | {errs} |")
PY
# CPU per request (medians): where each proxy spends its share of core 0.
python3 - "$OUT/cpu.tsv" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    f = line.split('\t')
    rows[(f[0], f[1])].append([float(x) for x in f[3:]])
print()
print("| target | operation | conc | proxy user µs/req | proxy sys µs/req | backend a µs/req (user+sys) |")
print("|---|---|---|---|---|---|")
for (label, conc), v in rows.items():
    med = [statistics.median(x[i] for x in v) for i in range(3)]
    parts = label.split('-')
    print(f"| {parts[1]} | {'-'.join(parts[2:])} | {conc} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} |")
PY
