#!/usr/bin/env bash
# A/B of two hakv builds on a fresh 3-member cluster: all members pinned to core 0, wrk (32
# connections, DUR seconds) on core 1, REPS interleaved pairs (A, B, A, B, ...) so background
# noise hits both alike. Prints one req/s line per run. MODE: read-leader (linearizable GET on
# the leader, default), write-leader (POST to the leader) or write-follower (POST through a
# follower, forwarded).
#   bench/ab-cluster.sh OLD_BINARY NEW_BINARY      (env: MODE, DUR=8, REPS=3)
set -u
. "$(dirname "$0")/lib.sh"
A=$1; B=$2; DUR=${DUR:-8}; REPS=${REPS:-3}; MODE=${MODE:-read-leader}
LUA=/tmp/hakv-ab-post.lua
write_post_lua "$LUA"
PIDS=()
trap '[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null' EXIT
run() { # run BINARY LABEL
  local bin=$1 label=$2 d=/tmp/hakv-ab-$2 leader target args=()
  rm -rf "$d"; mkdir -p "$d"; PIDS=()
  start_members "$bin" "$d" 27510 ab-cluster-token 0
  leader=$(leader_of "${MEMBERS[1]}") || { echo "$label: no leader"; return; }
  sleep 0.5
  curl -s -XPOST -H 'content-type: application/json' -d '{"value":"hello world"}' "http://$leader/data/k1" >/dev/null
  target=$leader
  case $MODE in
    write-leader) args=(-s "$LUA") ;;
    write-follower) target=$(follower_of "$leader"); args=(-s "$LUA") ;;
  esac
  echo "$label $MODE $(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" "${args[@]}" "http://$target/data/k1" | grep Requests/sec)"
  kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null; PIDS=()
}
for _ in $(seq "$REPS"); do run "$A" A; run "$B" B; done
