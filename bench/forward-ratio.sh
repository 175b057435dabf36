#!/usr/bin/env bash
# Forwarded writes vs the leader's own, on one 3-member cluster (default settings, members
# pinned to core 0, wrk with 32 connections on core 1): PAIRS pairs of DUR-second rows, the
# order alternating (L F, F L, L F, ...) so a drift in the machine's speed hits both sides
# alike. Each row prints req/s and the CPU time each member spent per request (from
# /proc/PID/stat, so a noisy neighbour shows up as dearer requests); the last line is the median
# of the per-pair ratios forwarded / leader.
#   bench/forward-ratio.sh          (env: HAKV=target/release/hakv, PAIRS=6, DUR=6)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
HAKV=${HAKV:-$ROOT/target/release/hakv}; DUR=${DUR:-6}; PAIRS=${PAIRS:-6}
D=/tmp/hakv-forward-ratio; rm -rf "$D"; mkdir -p "$D"
LUA=$D/post.lua
write_post_lua "$LUA"
PIDS=()
trap '[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null' EXIT
start_members "$HAKV" "$D" 27610 forward-ratio-token 0
leader=$(leader_of "${MEMBERS[1]}") || { echo "no leader" >&2; exit 1; }
follower=$(follower_of "$leader")
role() { case "${MEMBERS[$1]}" in "$leader") echo leader ;; "$follower") echo via ;; *) echo other ;; esac; }
echo "leader $leader, writes forwarded through $follower"
sleep 0.5
curl -s -XPOST -H 'content-type: application/json' -d '{"value":"hello world"}' "http://$leader/data/k1" >/dev/null
cpu_ticks() { for p in "${PIDS[@]}"; do awk '{printf "%d ", $14 + $15}' "/proc/$p/stat"; done; }
row() { # row L|F: prints req/s on stdout, details on stderr
  local target=$leader before after out n rps i line
  [ "$1" = F ] && target=$follower
  before=($(cpu_ticks))
  out=$(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "$LUA" "http://$target/data/k1")
  after=($(cpu_ticks))
  n=$(echo "$out" | awk '/requests in/ {print $1}'); rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  line="$1 $rps req/s; CPU µs per request:"
  for i in 0 1 2; do
    line="$line $(role $((i + 1)))=$(awk -v a="${before[$i]}" -v b="${after[$i]}" -v n="$n" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", (b - a) / hz * 1e6 / n}')"
  done
  echo "$line" >&2
  echo "$rps"
}
ratios=()
for k in $(seq "$PAIRS"); do
  if [ $((k % 2)) = 1 ]; then l=$(row L); f=$(row F); else f=$(row F); l=$(row L); fi
  ratios+=($(awk -v f="$f" -v l="$l" 'BEGIN {printf "%.3f", f / l}'))
  echo "pair $k: forwarded / leader = ${ratios[-1]}" >&2
done
printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{r[NR] = $1} END {m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
    printf "median forwarded / leader over %d pairs: %.2f (min %.2f, max %.2f)\n", NR, m, r[1], r[NR]}'
