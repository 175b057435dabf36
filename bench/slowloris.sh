#!/usr/bin/env bash
# Slowloris against one node: well-behaved clients' p99 with and without SLOW connections
# that trickle their request heads a header line per second (each is closed by the node 10 s
# after its first byte, and reopened at once, so SLOW stay open throughout). Windows of DUR
# seconds alternate, REPS times each, in one run. Target: p99 under attack ≤ 2× baseline.
#   cargo build --release -p hakv && SLOW=1000 bench/slowloris.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${HAKV:-$ROOT/target/release/hakv}
SLOW=${SLOW:-1000}; DUR=${DUR:-10}; REPS=${REPS:-3}; CONN=${CONN:-16}; D=${OUT:-/tmp/hakv-bench-slowloris}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "slowloris.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no hakv binary at $BIN (cargo build --release -p hakv)" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"; OUT=$D
PIDS=()
. "$ROOT/bench/lib.sh"
trap stop_started EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null
start_node "$BIN" "" 127.0.0.1:17790 "$D" || exit 1
"$BIN" bench --target http://127.0.0.1:17790 -c 16 --keys 1000 --prefill -n 1 -q --json >/dev/null

attack() { # attack SECONDS: keeps SLOW trickling connections open for SECONDS
  python3 - "$SLOW" "$1" <<'PY'
import socket, sys, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
def opened():
    s = socket.create_connection(("127.0.0.1", 17790))
    s.setblocking(False)
    s.send(b"GET /data/bench-1 HTTP/1.1\r\nHost: x\r\n")
    return s
conns = [opened() for _ in range(n)]
end = time.time() + seconds
reopened = 0
while time.time() < end:
    for i, s in enumerate(conns):
        try:
            s.send(b"X-Slow: 1\r\n")
            if s.recv(512) == b"":
                raise ConnectionError
        except BlockingIOError:
            pass
        except OSError:
            s.close(); conns[i] = opened(); reopened += 1
    time.sleep(1)
print(f"reopened {reopened}", file=sys.stderr)
PY
}
window() { # window NAME: one DUR-second closed-loop window of GETs and 10 % PUTs
  "$BIN" bench --target http://127.0.0.1:17790 -c "$CONN" -d "${DUR}s" --keys 1000 \
    --write-method put --json -q >"$D/w.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); l=r['latency_us']; print(f\"{sys.argv[2]:>8}  {r['qps']:8.0f} req/s  p50 {l['p50']/1e3:6.2f} ms  p99 {l['p99']/1e3:6.2f} ms  failed {r['failed']}\")" "$D/w.json" "$1"
}
for rep in $(seq "$REPS"); do
  window "base-$rep"
  attack $((DUR + 4)) 2>>"$D/attack.log" & A=$!
  sleep 2
  window "attack-$rep"
  wait "$A"
done
grep -h reopened "$D/attack.log" | tr '\n' ' '; echo
