#!/usr/bin/env bash
# A wiped member catches up under client load: loads KEYS keys of VALUE bytes into a 3-member
# cluster, then runs an open-loop load (RATE requests/s, 10 % writes, uniform keys) through the
# leader in WINDOW-second windows: BASE windows before, then one follower is stopped, its data
# directory wiped, and it is restarted with its usual flags; windows go on until it has caught
# up. Prints each window's p99 (all, reads, writes) and the catch-up time, against the time
# to copy a member's data directory; then how many log appends (leader, other follower) and
# requests served by the leader took over 25, 50 and 100 ms from the wipe on (and how often the
# leader's and the other follower's runtimes woke a due task that late), and each member's
# peak RSS from the wipe on. EXTRA flags go to every member (e.g. EXTRA="--snapshot-rate 0").
# BENCH=<binary> is the load generator (default: HAKV). RATE=0: no load at all (the catch-up
# of a quiet cluster). AFTER: windows after the catch-up (1). TMPFS=1: the wiped member
# restarts on a tmpfs of its own (root only), to tell the cost of sharing one disk from the
# cost of the catch-up. Each window also prints the machine's idle share, its stalled memory
# allocations, and the cores each member used.
# HAKV_BENCH_VALUE_FILL=random (read by `hakv bench`): values of random characters, which do not
# compress, so the state on disk is as large as the values (the default repeats one character).
#   cargo build --release -p hakv && KEYS=1000000 bench/catch-up.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
BIN=${HAKV:-$ROOT/target/release/hakv}
# The load generator; BENCH=<binary> keeps it the same while builds of the members alternate.
BENCH=${BENCH:-$BIN}
KEYS=${KEYS:-1000000}; VALUE=${VALUE:-1024}; D=${OUT:-/tmp/hakv-bench-catch-up}
RATE=${RATE:-2000}; WINDOW=${WINDOW:-5}; BASE=${BASE:-6}; EXTRA=${EXTRA:-}
[ -x "$BIN" ] || { echo "no hakv binary at $BIN" >&2; exit 2; }
rm -rf "$D"; mkdir -p "$D"
PIDS=()
# Data directories are removed at the end (logs stay); KEEP=1 keeps them.
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null
  [ "${TMPFS:-0}" = 1 ] && umount -l "$D/n$V" 2>/dev/null
  [ "${KEEP:-0}" = 1 ] || rm -rf "$D"/n1 "$D"/n2 "$D"/n3 "$D/copy" "$D/wiped"
}
trap cleanup EXIT
# shellcheck disable=SC2086
start_members "$BIN" "$D" 17720 catch-up "" $EXTRA
L=$(leader_of "${MEMBERS[1]}") || { echo "no leader" >&2; exit 1; }
echo "loading ${KEYS} keys of ${VALUE} bytes through $L"
"$BIN" bench --target "http://$L" -c 64 --keys "$KEYS" --value-size "$VALUE" --prefill -n 1 \
  --write-method put --timeout 10s --json -q >"$D/load.json"
du -sh "$D"/n1 | sed 's/^/data on member 1: /'
# cpu: the machine's idle and each member's CPU ticks so far (for a window's share of each),
# after the machine's count of direct memory compactions and reclaims (allocations that stalled)
cpu() {
  echo "$(awk '/^compact_stall / {c = $2} /^allocstall_/ {r += $2} END {print c, r}' /proc/vmstat)" \
    "$(awk '/^cpu / {print $5 + $6}' /proc/stat)" \
    "$(for p in "${PIDS[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done | tr '\n' ' ')"
}
window() { # window NAME: one open-loop window; prints its latency, then where the CPU went
  local before; before=$(cpu)
  "$BENCH" bench --target "http://$L" --rate "$RATE" -c 64 -d "${WINDOW}s" --keys "$KEYS" \
    --key-dist uniform --value-size "$VALUE" --write-ratio 0.1 --write-method put \
    --timeout 10s --json -q >"$D/w.json"
  python3 - "$D/w.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ms = lambda l, q: (l or {}).get(q, 0) / 1e3
l, rd, wr = r["latency_us"], r.get("read_latency_us"), r.get("write_latency_us")
print(f"{sys.argv[2]:>9} p50 {ms(l, 'p50'):7.2f} ms  p99 {ms(l, 'p99'):7.2f} ms  "
      f"(reads {ms(rd, 'p99'):6.2f}, writes {ms(wr, 'p99'):6.2f})  requests {r['requests']}  failed {r['failed']}")
PY
  python3 - "$before" "$(cpu)" "$WINDOW" "$(nproc)" <<'PY'
import sys
a, b = ([float(x) for x in arg.split()] for arg in sys.argv[1:3])
seconds, cores, hz = float(sys.argv[3]), int(sys.argv[4]), 100
compactions, reclaims = b[0] - a[0], b[1] - a[1]
idle = (b[2] - a[2]) / hz / seconds / cores * 100
members = "  ".join(f"n{i} {(y - x) / hz / seconds:4.2f}" for i, (x, y) in enumerate(zip(a[3:], b[3:]), 1))
print(f"{'':>9} machine idle {idle:3.0f} %, stalled allocations: {compactions:.0f} compactions, "
      f"{reclaims:.0f} reclaims; cores used: {members}")
PY
}
[ "$RATE" = 0 ] && BASE=0
for i in $(seq "$BASE"); do window "base-$i"; done
F=$(follower_of "$L"); for i in 1 2 3; do [ "${MEMBERS[$i]}" = "$F" ] && V=$i; done
C=1; [ "$V" = 1 ] && C=2
T0=$(curl -s "http://$L/cluster" | python3 -c "import json,sys; print(json.load(sys.stdin)['term'])")
# slow ADDR METRIC: a member's count of METRIC (a histogram of seconds, summed over its label
# sets) so far, and how many took over 25, 50 and 100 ms.
slow() {
  curl -s "http://$1/metrics" | python3 -c '
import re, sys
name, text = sys.argv[1], sys.stdin.read()
def total(suffix, le=None):
    pattern = rf"^{name}_{suffix}(\{{.*\}})? (\S+)$"
    return sum(float(v) for labels, v in re.findall(pattern, text, re.M) if le is None or f"le=\"{le}\"" in labels)
count = total("count")
print(count, count - total("bucket", "0.025"), count - total("bucket", "0.05"), count - total("bucket", "0.1"))' "$2"
}
counts() { # counts: the slow appends of the leader and the other follower, the leader's slow
  # requests, and the late wake-ups of the leader's and the other follower's runtimes
  echo "$(slow "$L" hakv_raft_log_append_seconds) $(slow "$O" hakv_raft_log_append_seconds)" \
    "$(slow "$L" hakv_http_request_duration_seconds)" \
    "$(slow "$L" hakv_runtime_wake_delay_seconds) $(slow "$O" hakv_runtime_wake_delay_seconds)"
}
O=""; for i in 1 2 3; do [ "$i" != "$V" ] && [ "${MEMBERS[$i]}" != "$L" ] && O=${MEMBERS[$i]}; done
COUNTS0=$(counts)
# The others' peak RSS from here on (the load before has its own peak): reset it.
for i in 1 2 3; do [ "$i" != "$V" ] && echo 5 >"/proc/${PIDS[$((i - 1))]}/clear_refs" 2>/dev/null; done
kill "${PIDS[$((V - 1))]}"; wait "${PIDS[$((V - 1))]}" 2>/dev/null
# Wiped by moving it aside: deleting gigabytes here would stall the disk (ext4 frees and
# discards the blocks over the next seconds) in the very windows being measured, which a
# replaced disk on another machine does not do. Deleted at the end.
mv "$D/n$V" "$D/wiped"
if [ "${TMPFS:-0}" = 1 ]; then
  mkdir -p "$D/n$V" && mount -t tmpfs -o size=16g tmpfs "$D/n$V" || exit 1
fi
now() { date +%s.%N; }
S=$(now)
# shellcheck disable=SC2086,SC2046
"$BIN" serve $(member_flags "$V" catch-up "$D") $EXTRA >>"$D/n$V.log" 2>&1 &
PIDS[$((V - 1))]=$!
( wait_caught_up "$V"; now >"$D/caught-up" ) &
W=$!
rm -f "$D/caught-up"; n=0
if [ "$RATE" = 0 ]; then
  wait "$W"
else
  while kill -0 "$W" 2>/dev/null; do n=$((n + 1)); window "catch-$n"; done
  for i in $(seq "${AFTER:-1}"); do window "after-$i"; done
fi
E=$(cat "$D/caught-up")
# The yardstick, after the windows for the same reason: copying a member's data directory.
CS=$(now); cp -a "$D/n$C" "$D/copy"; sync; CE=$(now); rm -rf "$D/copy"
COPY=$(python3 -c "print(f'{$CE - $CS:.1f}')")
# Where the time went, from the wiped member's log and metrics: transfer, install, log tail.
curl -s "http://${MEMBERS[$V]}/metrics" >"$D/n$V.metrics"
python3 - "$D/n$V.log" "$D/n$V.metrics" "$S" "$E" <<'PY'
import re, sys
from datetime import datetime
log, metrics, start, end = open(sys.argv[1]).read(), open(sys.argv[2]).read(), float(sys.argv[3]), float(sys.argv[4])
def at(pattern):
    found = [l for l in log.splitlines() if pattern in l]
    if not found:
        return None
    stamp = found[-1].split()[0]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
def metric(name):
    m = re.search(rf"^{name} ([0-9.e+-]+)$", metrics, re.M)
    return float(m.group(1)) if m else 0.0
received, installed = at("snapshot received"), at("snapshot installed")
appends, append_s = metric("hakv_raft_log_append_seconds_count"), metric("hakv_raft_log_append_seconds_sum")
if received and installed:
    print(f"phases: start and transfer {received - start:.1f}s, install {installed - received:.1f}s, "
          f"log tail and apply {end - installed:.1f}s; {appends:.0f} log appends took {append_s:.1f}s "
          f"(mean {1000 * append_s / max(appends, 1):.1f} ms)")
PY
T1=$(curl -s "http://$L/cluster" | python3 -c "import json,sys; print(json.load(sys.stdin)['term'])")
python3 - "$COUNTS0" "$(counts)" <<'PY'
import sys
a, b = ([float(x) for x in arg.split()] for arg in sys.argv[1:])
for k, what in enumerate(["leader's log appends", "other follower's log appends", "requests the leader served",
                          "leader's runtime wake-ups (10 ms probe)", "other follower's runtime wake-ups"]):
    d = [b[4 * k + j] - a[4 * k + j] for j in range(4)]
    print(f"during the catch-up, {what}: {d[0]:.0f}, of which over 25 ms {d[1]:.0f}, over 50 ms {d[2]:.0f}, "
          f"over 100 ms {d[3]:.0f}")
PY
echo "wiped member $V caught up in $(python3 -c "print(f'{$E - $S:.1f}')")s; copying a data directory took ${COPY}s; term $T0 -> $T1"
peaks=""
for i in 1 2 3; do
  role=follower; [ "${MEMBERS[$i]}" = "$L" ] && role=leader; [ "$i" = "$V" ] && role=wiped
  peaks+=" $role $(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/${PIDS[$((i - 1))]}/status") MiB;"
done
echo "peak RSS during the catch-up:${peaks%;}"
