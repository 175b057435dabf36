#!/usr/bin/env bash
# Large state: loads KEYS keys of VALUE bytes into a 3-member cluster through the leader
# (hakv bench --prefill, 64 connections; a prefill stops after 600 s), then wipes a follower
# and measures how long it takes to catch up (its identity says caught_up and /ready is 200)
# against how long copying a surviving member's data directory takes, then restarts the whole
# cluster (bench/restart.sh). Compare the load rate with VALUE=100.
# HAKV_BENCH_VALUE_FILL=random (read by `hakv bench`): values of random characters, which do not
# compress, so the state on disk is as large as the values (the default repeats one character).
#   cargo build --release -p hakv && KEYS=5000000 bench/large-state.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
BIN=${HAKV:-$ROOT/target/release/hakv}
KEYS=${KEYS:-5000000}; VALUE=${VALUE:-1024}; D=${OUT:-/tmp/hakv-bench-large}; WIPE=${WIPE:-1}
[ -x "$BIN" ] || { echo "no hakv binary at $BIN" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
start_members "$BIN" "$D" 17710 soak-check
L=$(leader_of "${MEMBERS[1]}") || { echo "no leader" >&2; exit 1; }
field() { curl -s -m 2 "http://$1/cluster" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null; }
TL=$(field "$L" "d['term']")
echo "loading ${KEYS} keys of ${VALUE} bytes through $L"
"$BIN" bench --target "http://$L" -c 64 --keys "$KEYS" --value-size "$VALUE" --prefill -n 1 \
  --write-method put --timeout 10s --json -q >"$D/load.json"
python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['prefill']; print(f\"load: {p['requests']} writes ({p['failed']} failed) in {p['elapsed_seconds']:.0f}s = {p['requests']/p['elapsed_seconds']:.0f} writes/s, complete: {p['completed']}\")" "$D/load.json"
echo "term before the load $TL, after it $(field "$L" "d['term']")"
du -sh "$D"/n1 | sed 's/^/data on member 1: /'
[ "$WIPE" = 1 ] || exit 0
F=$(follower_of "$L"); for i in 1 2 3; do [ "${MEMBERS[$i]}" = "$F" ] && V=$i; done
C=1; [ "$V" = 1 ] && C=2
T0=$(field "$L" "d['term']")
kill "${PIDS[$((V - 1))]}"; wait "${PIDS[$((V - 1))]}" 2>/dev/null
rm -rf "$D/n$V"
now() { date +%s.%N; }
# The yardstick: copying a member's whole data directory on this disk.
S=$(now); cp -a "$D/n$C" "$D/copy"; sync; E=$(now); rm -rf "$D/copy"
COPY=$(python3 -c "print(f'{$E - $S:.1f}')")
S=$(now)
"$BIN" serve --listen "${MEMBERS[$V]}" --node-id "$V" --peers "$(IFS=,; for i in 1 2 3; do printf '%s=%s,' "$i" "${MEMBERS[$i]}"; done | sed 's/,$//')" \
  --cluster-token soak-check --data-dir "$D/n$V" >>"$D/n$V.log" 2>&1 &
PIDS[$((V - 1))]=$!
for _ in $(seq 36000); do
  grep -q '"caught_up": true' "$D/n$V/identity.json" 2>/dev/null &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://$F/ready")" = 200 ] && break
  sleep 0.1
done
E=$(now)
T1=$(field "$L" "d['term']")
echo "wiped member $V caught up in $(python3 -c "print(f'{$E - $S:.1f}')")s; copying a data directory took ${COPY}s; term $T0 -> $T1"
kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null
PIDS=()
# The restart writes new logs: keep the load's and the catch-up's.
for i in 1 2 3; do mv "$D/n$i.log" "$D/n$i.load.log"; done
HAKV="$BIN" "$ROOT/bench/restart.sh" "$D"
