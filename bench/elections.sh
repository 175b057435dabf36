#!/usr/bin/env bash
# No spurious elections under full load: 3 members (unpinned, sharing both cores with the
# load), DUR seconds of wrk writes to the leader and linearizable reads on a follower at the
# same time; prints each member's "id term leader" before and after. Equal terms = no election.
#   cargo build --release -p hakv && bench/elections.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN=${HAKV:-$ROOT/target/release/hakv}; DUR=${DUR:-15}; D=${OUT:-/tmp/hakv-bench-elections}
rm -rf "$D"; mkdir -p "$D"
P=(0 17611 17612 17613); PEERS="1=127.0.0.1:17611,2=127.0.0.1:17612,3=127.0.0.1:17613"; PIDS=()
for i in 1 2 3; do
  HAKV_CLUSTER_TOKEN=elections-check "$BIN" serve --listen 127.0.0.1:${P[$i]} --node-id $i --peers $PEERS \
    --data-dir "$D/n$i" > "$D/n$i.log" 2>&1 &
  PIDS+=($!)
done
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
cat > "$D/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"value": "hello world"}'
wrk.headers["Content-Type"] = "application/json"
LUA
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }
L=""
for _ in $(seq 100); do
  L=$(curl -s http://127.0.0.1:17611/cluster | field "(d.get('leader') or {}).get('addr','')")
  [ -n "$L" ] && break; sleep 0.1
done
[ -n "$L" ] || { echo "no leader"; exit 1; }
F=$(for i in 1 2 3; do a=127.0.0.1:${P[$i]}; [ "$a" != "$L" ] && echo $a && break; done)
terms() { for i in 1 2 3; do curl -s http://127.0.0.1:${P[$i]}/cluster | field "d['node_id'], d['term'], (d.get('leader') or {}).get('id')"; done | tr '\n' ' '; }
echo "leader $L, reads on $F"
echo "before (id term leader): $(terms)"
curl -s -XPOST -H 'content-type: application/json' -d '{"value":"x"}' "http://$L/data/k1" >/dev/null
wrk -t1 -c32 -d"${DUR}s" -s "$D/post.lua" "http://$L/data/k1" > "$D/writes.txt" & W=$!
wrk -t1 -c32 -d"${DUR}s" "http://$F/data/k1" > "$D/reads.txt"
wait $W
echo "writes: $(grep -h 'Requests/sec' "$D/writes.txt")   reads: $(grep -h 'Requests/sec' "$D/reads.txt")"
echo "after  (id term leader): $(terms)"
