#!/usr/bin/env bash
# Restart with a large state: starts the 3 members whose data bench/soak.sh left in DIR (same
# ports, same token) and reports how long until every member answers /ready, and until the
# first write succeeds.
#   bench/soak.sh && bench/restart.sh /tmp/hakv-bench-soak
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
BIN=${HAKV:-$ROOT/target/release/hakv}; D=${1:-/tmp/hakv-bench-soak}
[ -d "$D/n1" ] || { echo "no member data in $D (run bench/soak.sh first)" >&2; exit 2; }
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
du -sh "$D"/n1 | sed 's/^/data on member 1: /'
now() { date +%s.%N; }
T0=$(now)
start_members "$BIN" "$D" 17710 soak-check
ready_at="" written_at=""
for _ in $(seq 600); do
  if [ -z "$ready_at" ]; then
    all=1
    for i in 1 2 3; do
      [ "$(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://${MEMBERS[$i]}/ready")" = 200 ] || all=0
    done
    [ $all = 1 ] && ready_at=$(now)
  fi
  if [ -z "$written_at" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -XPUT -H 'content-type: application/json' \
      -d '{"value": "after restart"}' "http://${MEMBERS[1]}/data/restart-probe")
    [ "$code" = 200 ] || [ "$code" = 201 ] && written_at=$(now)
  fi
  [ -n "$ready_at" ] && [ -n "$written_at" ] && break
  sleep 0.05
done
python3 -c "import sys; t0, r, w = sys.argv[1:]; print(f'every member ready after {float(r) - float(t0):.2f}s; first write after {float(w) - float(t0):.2f}s')" \
  "$T0" "${ready_at:-nan}" "${written_at:-nan}"
