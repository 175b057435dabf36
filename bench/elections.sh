#!/usr/bin/env bash
# No spurious elections under full load: 3 members (unpinned, sharing both cores with the
# load), DUR seconds of wrk writes to the leader and linearizable reads on a follower at the
# same time; prints each member's "id term leader" before and after. Equal terms = no election.
#   cargo build --release -p hakv && bench/elections.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
BIN=${HAKV:-$ROOT/target/release/hakv}; DUR=${DUR:-15}; D=${OUT:-/tmp/hakv-bench-elections}
rm -rf "$D"; mkdir -p "$D"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
start_members "$BIN" "$D" 17610 elections-check
write_post_lua "$D/post.lua"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }
L=$(leader_of "${MEMBERS[1]}") || { echo "no leader"; exit 1; }
F=$(follower_of "$L")
terms() { for i in 1 2 3; do curl -s "http://${MEMBERS[$i]}/cluster" | field "d['node_id'], d['term'], (d.get('leader') or {}).get('id')"; done | tr '\n' ' '; }
echo "leader $L, reads on $F"
echo "before (id term leader): $(terms)"
curl -s -XPOST -H 'content-type: application/json' -d '{"value":"x"}' "http://$L/data/k1" >/dev/null
wrk -t1 -c32 -d"${DUR}s" -s "$D/post.lua" "http://$L/data/k1" > "$D/writes.txt" & W=$!
wrk -t1 -c32 -d"${DUR}s" "http://$F/data/k1" > "$D/reads.txt"
wait $W
echo "writes: $(grep -h 'Requests/sec' "$D/writes.txt")   reads: $(grep -h 'Requests/sec' "$D/reads.txt")"
echo "after  (id term leader): $(terms)"
