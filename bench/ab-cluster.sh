#!/usr/bin/env bash
# A/B of two hakv builds on a fresh 3-member cluster: all members pinned to core 0, wrk (32
# connections, DUR seconds) on core 1, REPS interleaved pairs (A, B, A, B, ...) so background
# noise hits both alike. Prints one req/s line per run. MODE: read-leader (linearizable GET on
# the leader, default), write-leader (POST to the leader) or write-follower (POST through a
# follower, forwarded).
#   bench/ab-cluster.sh OLD_BINARY NEW_BINARY      (env: MODE, DUR=8, REPS=3)
set -u
A=$1; B=$2; DUR=${DUR:-8}; REPS=${REPS:-3}; MODE=${MODE:-read-leader}
LUA=/tmp/hakv-ab-post.lua
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
  "'{\"value\": \"hello world\"}'" > "$LUA"
P=(0 27511 27512 27513); PEERS="1=127.0.0.1:27511,2=127.0.0.1:27512,3=127.0.0.1:27513"
PIDS=()
trap '[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null' EXIT
run() { # run BINARY LABEL
  local bin=$1 label=$2 d=/tmp/hakv-ab-$2 i leader=""
  rm -rf "$d"; mkdir -p "$d"; PIDS=()
  for i in 1 2 3; do
    taskset -c 0 "$bin" serve --listen 127.0.0.1:${P[$i]} --node-id $i --peers $PEERS \
      --cluster-token ab-cluster-token --data-dir "$d/n$i" > "$d/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 100); do
    leader=$(curl -s http://127.0.0.1:27511/cluster | python3 -c \
      "import json,sys; print((json.load(sys.stdin).get('leader') or {}).get('addr',''))" 2>/dev/null)
    [ -n "$leader" ] && break; sleep 0.1
  done
  [ -n "$leader" ] || { echo "$label: no leader"; return; }
  sleep 0.5
  curl -s -XPOST -H 'content-type: application/json' -d '{"value":"hello world"}' "http://$leader/data/k1" >/dev/null
  local target=$leader args=()
  case $MODE in
    write-leader) args=(-s "$LUA") ;;
    write-follower)
      for i in 1 2 3; do [ "127.0.0.1:${P[$i]}" != "$leader" ] && target=127.0.0.1:${P[$i]} && break; done
      args=(-s "$LUA") ;;
  esac
  echo "$label $MODE $(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" "${args[@]}" "http://$target/data/k1" | grep Requests/sec)"
  kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null; PIDS=()
}
for _ in $(seq "$REPS"); do run "$A" A; run "$B" B; done
