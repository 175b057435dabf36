#!/usr/bin/env bash
# Load-balancer benchmark: hakv balance vs nginx vs HAProxy vs direct, in one run, in the
# arrangement of ../shared/peers/05_lb.sh: two anchor-kv backends (:18081, :18082) and the
# proxy under test share SRV_CPU (default core 0); wrk runs on LOAD_CPU (core 1).
# nginx and HAProxy use exactly 05_lb.sh's configs (extracted from it); hakv balance runs on
# :18092 with one thread (current-thread runtime) and round robin, like the others.
# Knobs (env): DUR, REPS, SRV_CPU, LOAD_CPU (see common.sh), OUT (default /tmp/hakv-lb-bench),
# HAKV (the hakv binary, default target/release/hakv).
# Usage: cargo build --release -p hakv && bench/lb.sh
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$ROOT/../shared/peers}
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
start_bg haproxy haproxy -db -f "$D/haproxy.cfg"
# anchor-kv has no /ready: health-check /hello instead.
printf '[health]\npath = "/hello"\n' > "$D/hakv-lb.toml"
HAKV_LOG=warn start_bg hakv-lb "$HAKV" balance --listen 127.0.0.1:18092 --threads 1 \
  --algorithm round-robin --config "$D/hakv-lb.toml" \
  --backend 127.0.0.1:18081 --backend 127.0.0.1:18082
HAKV_PID=$LAST_PID
wait_http http://127.0.0.1:18090/hello; wait_http http://127.0.0.1:18091/hello; wait_http http://127.0.0.1:18092/hello

for c in 32 1; do
  for target in direct:18081 nginx:18090 haproxy:18091 hakv:18092; do
    name=${target%%:*}; port=${target##*:}
    bench "lb-$name-get-hit" "$c" "http://127.0.0.1:$port/data/k1"
    bench "lb-$name-post" "$c" "http://127.0.0.1:$port/data/k1" post_json.lua
  done
done
curl -s http://127.0.0.1:18092/lb/status > "$OUT/hakv-lb-status.json"
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
        for t in ("direct", "nginx", "haproxy", "hakv"):
            rs = rows[(f"lb-{t}-{op}", conc)]
            rps = statistics.median(float(r[3]) for r in rs)
            p50 = statistics.median(us(r[4]) for r in rs)
            p99 = statistics.median(us(r[5]) for r in rs)
            errs = "/".join(sorted({f"{r[6]} / {r[7]}" for r in rs}))
            print(f"| {t} | {op} | {conc} | {rps:,.0f} | {p50:.0f} µs | {p99:.0f} µs | {rps/base:.2f}× | {errs} |")
PY
