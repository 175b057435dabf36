#!/usr/bin/env bash
# Would HTTP/1.1 pipelining to the load-balancer anchor's backends save CPU? One anchor-kv
# (../shared/peers/rust_kv, as in 05_lb.sh) on core 0, wrk on core 1, GET /data/k1 for DUR
# seconds: plain (32 connections, one request in flight each) against pipelined DEPTH 4 (8
# connections) and 16 (2 connections); prints req/s and the backend's CPU time per request.
#   bench/pipelining-check.sh        (env: DUR=5, REPS=3, PORT=18181)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$ROOT/../shared/peers}
DUR=${DUR:-5}; REPS=${REPS:-3}; PORT=${PORT:-18181}
BIN=$("$PEERS/build_rust_kv.sh" | tail -1)
LUA=$(mktemp --suffix .lua)
cat >"$LUA" <<'LUA'
-- DEPTH GET requests per write (HTTP/1.1 pipelining)
local depth = tonumber(os.getenv("DEPTH") or "4")
init = function(args)
  local r = {}
  for i = 1, depth do r[i] = wrk.format("GET", "/data/k1") end
  req = table.concat(r)
end
request = function() return req end
LUA
taskset -c 0 "$BIN" "$PORT" >/dev/null 2>&1 &
KV=$!
trap 'kill $KV 2>/dev/null; rm -f "$LUA"' EXIT
for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/hello" >/dev/null && break; sleep 0.1; done
curl -s -XPOST -H 'Content-Type: application/json' -d '{"value":"hello world"}' \
  "http://127.0.0.1:$PORT/data/k1" >/dev/null
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$KV/stat"; }
for _ in $(seq "$REPS"); do
  for mode in plain depth4 depth16; do
    before=$(ticks)
    case $mode in
      plain) out=$(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" "http://127.0.0.1:$PORT/data/k1") ;;
      depth4) out=$(DEPTH=4 taskset -c 1 wrk -t1 -c8 -d"${DUR}s" -s "$LUA" "http://127.0.0.1:$PORT/data/k1") ;;
      depth16) out=$(DEPTH=16 taskset -c 1 wrk -t1 -c2 -d"${DUR}s" -s "$LUA" "http://127.0.0.1:$PORT/data/k1") ;;
    esac
    after=$(ticks)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$mode $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s, backend CPU" \
      "$(awk -v a="$before" -v b="$after" -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}') µs/request"
  done
done
