# Helpers of the bench scripts (sourced, not run): a local 3-member hakv cluster, its leader
# and followers, and any other process a benchmark starts (pinned, in its own process group,
# stopped at exit).

# start_pinned NAME CPU CMD...: starts CMD pinned to CPU (unpinned when CPU is empty) in a
# process group of its own, its output in $OUT/NAME.log; appends its PID to PIDS and sets
# LAST_PID.
start_pinned() {
  local name=$1 cpu=$2 pin=(); shift 2
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  setsid "${pin[@]}" "$@" >"$OUT/$name.log" 2>&1 &
  LAST_PID=$!; PIDS+=("$LAST_PID")
}

# start_node BIN CPU ADDR DIR [FLAG...]: starts a single node (`serve`) on ADDR with its data in
# DIR/node and its log in $OUT/node.log, pinned to CPU (unpinned when empty), and waits up to
# 10 s for its /health; fails when it does not answer.
start_node() {
  local bin=$1 cpu=$2 addr=$3 dir=$4 _; shift 4
  start_pinned node "$cpu" "$bin" serve --listen "$addr" --data-dir "$dir/node" "$@"
  for _ in $(seq 100); do curl -sf "http://$addr/health" >/dev/null && return 0; sleep 0.1; done
  echo "the node on $addr did not answer /health within 10 s (log: $OUT/node.log)" >&2
  return 1
}

# stop_started: stops every PID in PIDS (its process group when it leads one), TERM first.
stop_started() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

# start_members BIN DIR PORT_BASE TOKEN [CPU [FLAG...]]: starts members 1..VOTERS (3 unless
# VOTERS is set) on 127.0.0.1:PORT_BASE+i (pinned to CPU when not empty), data and logs under
# DIR, with any further FLAGs; appends their PIDs to PIDS and sets MEMBERS[i] to member i's
# address.
start_members() {
  local bin=$1 dir=$2 base=$3 token=$4 cpu=${5:-} i peers="" pin=()
  shift 4; [ $# -gt 0 ] && shift
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  MEMBERS=(none)
  for i in $(seq "${VOTERS:-3}"); do
    MEMBERS+=("127.0.0.1:$((base + i))")
    peers+="${peers:+,}$i=${MEMBERS[$i]}"
  done
  for i in $(seq "${VOTERS:-3}"); do
    "${pin[@]}" "$bin" serve --listen "${MEMBERS[$i]}" --node-id "$i" --peers "$peers" \
      --cluster-token "$token" --data-dir "$dir/n$i" "$@" >"$dir/n$i.log" 2>&1 &
    PIDS+=($!)
  done
}

# leader_of ADDR: the leader's address as the member at ADDR names it, waiting up to 10 s for
# one; fails when there is none.
leader_of() {
  local leader="" _
  for _ in $(seq 100); do
    leader=$(curl -s "http://$1/cluster" | python3 -c \
      "import json,sys; print((json.load(sys.stdin).get('leader') or {}).get('addr',''))" 2>/dev/null)
    [ -n "$leader" ] && { echo "$leader"; return 0; }
    sleep 0.1
  done
  return 1
}

# follower_of LEADER: the first member that is not LEADER.
follower_of() {
  local i
  for i in $(seq "${VOTERS:-3}"); do [ "${MEMBERS[$i]}" != "$1" ] && { echo "${MEMBERS[$i]}"; return 0; }; done
  return 1
}

# write_post_lua FILE: the wrk script that POSTs {"value": "hello world"}.
write_post_lua() {
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
    "'{\"value\": \"hello world\"}'" >"$1"
}

# member_flags I TOKEN DIR: the flags member I was started with by start_members (without the
# extra flags), to restart it by hand.
member_flags() {
  local i peers=""
  for i in $(seq "${VOTERS:-3}"); do peers+="${peers:+,}$i=${MEMBERS[$i]}"; done
  echo "--listen ${MEMBERS[$1]} --node-id $1 --peers $peers --cluster-token $2 --data-dir $3/n$1"
}

# wait_caught_up I: waits (up to an hour) until member I's identity says caught_up and its
# /ready answers 200.
wait_caught_up() {
  local _
  for _ in $(seq 36000); do
    grep -q '"caught_up": true' "$D/n$1/identity.json" 2>/dev/null &&
      [ "$(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://${MEMBERS[$1]}/ready")" = 200 ] &&
      return 0
    sleep 0.1
  done
  return 1
}

# add_read_replica BIN DIR PORT_BASE TOKEN I [FLAG...]: starts member I (beyond the voters) with
# --join on 127.0.0.1:PORT_BASE+I and adds it as a read replica (`hakv cluster add --learner`)
# through member 1; sets MEMBERS[I] and appends its PID to PIDS. Fails when the add fails.
add_read_replica() {
  local bin=$1 dir=$2 base=$3 token=$4 i=$5 _; shift 5
  MEMBERS[i]="127.0.0.1:$((base + i))"
  "$bin" serve --join --listen "${MEMBERS[$i]}" --node-id "$i" --peers "$i=${MEMBERS[$i]}" \
    --cluster-token "$token" --data-dir "$dir/n$i" "$@" >"$dir/n$i.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://${MEMBERS[$i]}/health" >/dev/null && break; sleep 0.1; done
  "$bin" cluster add --learner --id "$i" --addr "${MEMBERS[$i]}" --url "http://${MEMBERS[1]}" \
    --cluster-token "$token" >/dev/null
}

# cap_cpu NAME PID SHARE: puts PID in a cgroup v1 CPU group NAME (created) limited to SHARE of
# one core (e.g. 0.25); remove it with uncap_cpu NAME once PID has exited. Root only. The
# period is 10 ms, not the kernel's default 100 ms: a process that spends its quota is
# stopped until the period ends, and 75 ms stalls would dominate every latency figure.
cap_cpu() {
  local group=/sys/fs/cgroup/cpu/$1 quota
  quota=$(python3 -c "print(int($3 * 10000))")
  mkdir -p "$group" || return 1
  echo -1 >"$group/cpu.cfs_quota_us" && echo 10000 >"$group/cpu.cfs_period_us" &&
    echo "$quota" >"$group/cpu.cfs_quota_us" && echo "$2" >"$group/cgroup.procs"
}
uncap_cpu() { rmdir "/sys/fs/cgroup/cpu/$1" 2>/dev/null || true; }

# etcd_member I STATE DIR PORT_BASE TOKEN LOG [FLAG...]: starts member eI (I in 1..3) of a
# 3-member etcd cluster, STATE `new` or `existing`, its data in DIR/eI, its client port
# PORT_BASE+I and peer port PORT_BASE+10+I, its output appended to LOG, with any further FLAGs;
# sets PIDS[I] to its PID.
etcd_member() {
  local i=$1 state=$2 dir=$3 base=$4 token=$5 log=$6; shift 6
  local client=$((base + i)) peer=$((base + 10 + i)) cluster="" j
  for j in 1 2 3; do cluster+="${cluster:+,}e$j=http://127.0.0.1:$((base + 10 + j))"; done
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token "$token" \
    --logger zap --log-outputs stderr "$@" >>"$log" 2>&1 &
  PIDS[i]=$!
}

# etcd_status PORT: the maintenance status (JSON) of the etcd member with client port PORT.
etcd_status() { curl -s -m 2 -X POST "http://127.0.0.1:$1/v3/maintenance/status" -d '{}'; }

# etcd_leader_port PORT...: the one of the etcd client PORTs whose member is the leader; fails
# when none says so.
etcd_leader_port() {
  local port
  for port in "$@"; do
    etcd_status "$port" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["header"]["member_id"]==s["leader"] else 1)' 2>/dev/null &&
      { echo "$port"; return 0; }
  done
  return 1
}
