#!/usr/bin/env bash
# The catch-up of bench/catch-up.sh against etcd 3.4 (3 members, Debian's etcd-server), as a
# baseline: loads KEYS keys of VALUE bytes (each key once, 64 connections, through the leader's
# JSON gateway with wrk; bounded by LOAD_SECONDS, and says whether the load completed), leaves
# the state as a user's would be (no compaction, no defragmentation) and prints each member's
# db size; then stops a follower, moves its data directory aside, removes it from the cluster
# (`etcdctl member remove`), adds it back under the same name and URLs (`member add`) and
# restarts it with an empty data directory. Measures the time from that restart until the
# member has caught up: its applied raft index reaches the leader's commit index, its revision
# the leader's, and it answers a serializable get of the last loaded keys from its own endpoint
# with the right values (polled every 0.1 s, given up after CATCH_UP_SECONDS). The yardstick,
# as bench/catch-up.sh's: copying a surviving member's data directory (cp -a, then sync).
# Also prints whether the leader sent the new member a snapshot (from the logs), the term
# before and after, and each member's peak RSS (VmHWM) during the load and the catch-up.
# Data under OUT; data directories are removed at the end, logs stay
# (KEEP=1 keeps the data too). Clients on ports 17831-17833, peers on 17841-17843.
#   KEYS=1000000 bench/catch-up-etcd.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
KEYS=${KEYS:-1000000}; VALUE=${VALUE:-1024}; D=${OUT:-/tmp/hakv-bench-catch-up-etcd}
LOAD_SECONDS=${LOAD_SECONDS:-900}; CATCH_UP_SECONDS=${CATCH_UP_SECONDS:-600}
for tool in etcd etcdctl wrk curl python3; do
  command -v "$tool" >/dev/null ||
    { echo "catch-up-etcd.sh needs $tool (apt-get install etcd-server etcd-client wrk curl python3)" >&2; exit 2; }
done
# Each value starts with its key's number (12 bytes), so the final get checks the right value.
[ "$VALUE" -ge 12 ] 2>/dev/null || { echo "VALUE must be at least 12 (bytes)" >&2; exit 2; }
[ "$KEYS" -ge 1 ] 2>/dev/null || { echo "KEYS must be at least 1" >&2; exit 2; }
export ETCDCTL_API=3
rm -rf "$D"; mkdir -p "$D"
PIDS=(); WRK=""
cleanup() {
  [ -n "$WRK" ] && kill "$WRK" 2>/dev/null
  [ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null
  wait 2>/dev/null
  [ "${KEEP:-0}" = 1 ] || rm -rf "$D"/e1 "$D"/e2 "$D"/e3 "$D/wiped" "$D/copy"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
member() { # member I STATE LOG: starts etcd member I (quota 8 GiB, default snapshot count)
  etcd_member "$1" "$2" "$D" 17830 catch-up-etcd "$3" --quota-backend-bytes $((8 << 30)) --log-level info
}
field() { # field PORT NAME: a field of member PORT's status (header fields by their name too)
  etcd_status "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin); n=sys.argv[1]; print(s.get(n, s["header"].get(n, 0)))' "$2" 2>/dev/null
}
endpoints() { # endpoints TITLE: each member's etcdctl endpoint status
  echo "$1:"
  python3 - "$(etcdctl --endpoints=127.0.0.1:17831,127.0.0.1:17832,127.0.0.1:17833 endpoint status -w json 2>/dev/null)" <<'PY'
import json, sys
for e in json.loads(sys.argv[1] or "[]"):
    s = e["Status"]
    role = "leader" if s["header"]["member_id"] == s["leader"] else "follower"
    print(f"  {e['Endpoint']} {role:8} db size {s['dbSize'] / 1e6:7.1f} MB (in use {s.get('dbSizeInUse', 0) / 1e6:7.1f} MB)"
          f"  revision {s['header']['revision']}  raft index {s['raftIndex']}  term {s['raftTerm']}")
PY
}
peaks() { # peaks TITLE: each member's VmHWM
  local i line=""
  for i in 1 2 3; do
    line+=" e$i $(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/${PIDS[$i]}/status" 2>/dev/null || echo '?') MiB;"
  done
  echo "peak RSS (VmHWM) $1:${line%;}"
}

for i in 1 2 3; do member "$i" new "$D/e$i.log"; done
for _ in $(seq 100); do LP=$(etcd_leader_port 17831 17832 17833) && break; sleep 0.2; done
[ -n "${LP:-}" ] || { echo "no etcd leader" >&2; exit 1; }
for _ in $(seq 100); do
  etcdctl --endpoints=127.0.0.1:17831,127.0.0.1:17832,127.0.0.1:17833 endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
echo "etcd $(etcd --version | awk '/^etcd Version/ {print $3}'), leader on $LP"

# The load: wrk, one thread (one counter), 64 connections, each key once. When all the puts
# are answered (or none has been for 15 s) the script marks the file MARK and stops; the shell
# then ends wrk, which otherwise runs LOAD_SECONDS.
echo "loading ${KEYS} keys of ${VALUE} bytes through $LP (at most ${LOAD_SECONDS}s)"
LS=$(now)
KEYS=$KEYS VALUE=$VALUE MARK="$D/loaded" STATS="$D/load.stats" \
  wrk -t1 -c64 -d"${LOAD_SECONDS}s" --timeout 10s -s "$ROOT/bench/lua/etcd_load.lua" "http://127.0.0.1:$LP" >"$D/wrk.txt" 2>&1 &
WRK=$!
while kill -0 "$WRK" 2>/dev/null && [ ! -e "$D/loaded" ]; do sleep 0.2; done
kill -INT "$WRK" 2>/dev/null; wait "$WRK"; WRK=""
# (etcdctl 3.4 has no --count-only; a range's count is the whole range's, whatever its limit)
COUNT=$(etcdctl --endpoints="127.0.0.1:$LP" get bench- --prefix --keys-only --limit=1 -w json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))' 2>/dev/null)
COMPLETE=0; [ "${COUNT:-0}" = "$KEYS" ] && [ -e "$D/loaded" ] && COMPLETE=1
python3 - "$D" "$LS" "$COUNT" "$KEYS" "$COMPLETE" <<'PY'
import os, sys
d, start, count, keys, complete = sys.argv[1], float(sys.argv[2]), int(sys.argv[3] or 0), int(sys.argv[4]), sys.argv[5] == "1"
issued, ok, failed, duration = (open(f"{d}/load.stats").read().split() + ["0"] * 4)[:4]
if os.path.exists(f"{d}/loaded"):
    duration = os.path.getmtime(f"{d}/loaded") - start
duration = float(duration)
print(f"load {'completed' if complete else 'DID NOT complete'}: {count} of {keys} keys in etcd; "
      f"{ok} puts answered 200, {failed} failed, in {duration:.1f}s: {int(ok) / max(duration, 1e-9):.0f} writes/s")
PY
grep -E 'Latency|Socket errors' "$D/wrk.txt" | sed 's/^ */  wrk: /'
sed 's/^/  failed put: /' "$D/load.stats.failures" 2>/dev/null
# The last write: a key of its own, so a partial load has a last key to check too.
LAST="loaded $COUNT keys at $(date +%s.%N)"
etcdctl --endpoints="127.0.0.1:$LP" put catch-up-last "$LAST" >/dev/null || { echo "put of catch-up-last failed" >&2; exit 1; }
echo "snapshots taken during the load (leader's log): $(grep -c '"triggering snapshot"' "$D/e${LP: -1}.log")"
endpoints "after the load (no compaction)"
peaks "during the load"

# The wipe: a follower is stopped, its data moved aside (deleting gigabytes would stall the
# disk during the catch-up, as bench/catch-up.sh notes), removed and added back.
V=""
for i in 1 2 3; do [ "1783$i" != "$LP" ] && { V=$i; break; }; done
C=""; for i in 1 2 3; do [ "$i" != "$V" ] && { C=$i; break; }; done
T0=$(field "$LP" raftTerm)
ID=$(etcdctl --endpoints="127.0.0.1:$LP" member list 2>/dev/null | awk -F', ' -v n="e$V" '$3 == n {print $1}')
[ -n "$ID" ] || { echo "no member e$V in the member list" >&2; exit 1; }
kill "${PIDS[$V]}"; wait "${PIDS[$V]}" 2>/dev/null
mv "$D/e$V" "$D/wiped"
etcdctl --endpoints="127.0.0.1:$LP" member remove "$ID" >/dev/null || { echo "member remove $ID failed" >&2; exit 1; }
# etcd refuses a member change ("unhealthy cluster") until its members have been connected for
# 5 s, which a small load does not last: retried for up to 30 s.
added=0
for _ in $(seq 60); do
  etcdctl --endpoints="127.0.0.1:$LP" member add "e$V" --peer-urls="http://127.0.0.1:1784$V" \
    >"$D/member-add.txt" 2>>"$D/member-add.err" && { added=1; break; }
  sleep 0.5
done
[ "$added" = 1 ] || { echo "member add e$V failed: $(tail -1 "$D/member-add.err")" >&2; exit 1; }
echo "wiped follower e$V (member $ID removed, added back as $(awk '/^Member/ {print $2}' "$D/member-add.txt")); term $T0"
# The others' peak RSS from here on (the load had its own peak): reset it.
for i in 1 2 3; do [ "$i" != "$V" ] && echo 5 >"/proc/${PIDS[$i]}/clear_refs" 2>/dev/null; done
S=$(now)
member "$V" existing "$D/e$V-rejoin.log"
python3 - "1783$V" "$LP" "$S" "$CATCH_UP_SECONDS" "$D/caught-up" "$KEYS" "$VALUE" "$COMPLETE" "$LAST" <<'PY'
import base64, json, sys, time, urllib.request
port, leader, start, limit, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
keys, size, complete, last = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8] == "1", sys.argv[9]
b64 = lambda b: base64.b64encode(b).decode()
checks = [("catch-up-last", last.encode())]
if complete:
    checks.append((f"bench-{keys - 1}", b"%011d:" % (keys - 1) + b"v" * (size - 12)))
def post(p, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{p}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1) as r:
        return json.load(r)
def has(key, value):
    kvs = post(port, "/v3/kv/range", {"key": b64(key.encode()), "serializable": True}).get("kvs", [])
    return bool(kvs) and kvs[0].get("value", "") == b64(value)
answered = data = None
while time.time() - start < limit:
    try:
        m = post(port, "/v3/maintenance/status", {})
        answered = answered or time.time()
        revision = int(m["header"].get("revision", 0))
        if revision > 1:
            data = data or time.time()
        l = post(leader, "/v3/maintenance/status", {})
        if int(m.get("raftAppliedIndex", 0)) >= int(l["raftIndex"]) and revision == int(l["header"]["revision"]) \
                and all(has(k, v) for k, v in checks):
            end = time.time()
            open(out, "w").write(f"{end}\n")
            print(f"caught up: answered status after {answered - start:.1f}s, first data after "
                  f"{(data or end) - start:.1f}s, revision {revision} and applied index {m['raftAppliedIndex']} "
                  f"(leader's {l['raftIndex']}) and the last keys read back after {end - start:.1f}s")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
print(f"the wiped member did NOT catch up within {limit:.0f}s")
sys.exit(1)
PY
CAUGHT=$?
# Whether the leader sent a snapshot: the logs' snapshot messages from the restart on.
python3 - "$S" "$D/e${LP: -1}.log" "$D/e$V-rejoin.log" <<'PY'
import json, sys
from datetime import datetime
start = float(sys.argv[1])
for who, path in zip(["leader", "wiped member"], sys.argv[2:]):
    seen = {}
    for line in open(path, errors="replace"):
        try:
            e = json.loads(line)
            t = datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        except Exception:
            continue
        if t >= start - 1 and "snapshot" in e.get("msg", "").lower():
            size = e.get("size") or e.get("snapshot-size") or ""
            first, n, _ = seen.get(e["msg"], (t, 0, ""))
            seen[e["msg"]] = (first, n + 1, size)
    if not seen:
        print(f"{who}: no snapshot messages in the log (entries came by log appends)")
    for msg, (t, n, size) in sorted(seen.items(), key=lambda x: x[1][0]):
        print(f"{who}: +{t - start:5.1f}s \"{msg}\"" + (f" x{n}" if n > 1 else "") + (f" ({size})" if size else ""))
PY
T1=$(field "$LP" raftTerm)
endpoints "after the catch-up"
peaks "from the wipe on (e$V: its new process)"
echo "term before $T0 after $T1"
# The yardstick, as bench/catch-up.sh's: copying a surviving member's data directory.
CS=$(now); cp -a "$D/e$C" "$D/copy"; sync; CE=$(now)
MB=$(du -sm "$D/copy" | cut -f1); rm -rf "$D/copy"
if [ "$CAUGHT" = 0 ]; then
  python3 -c "
s, e, cs, ce = $S, $(cat "$D/caught-up"), $CS, $CE
print(f'etcd wiped member caught up in {e - s:.1f} s; copying a data directory took {ce - cs:.1f} s ($MB MB); ratio {(e - s) / (ce - cs):.1f}')"
else
  python3 -c "print(f'etcd wiped member did NOT catch up in ${CATCH_UP_SECONDS} s; copying a data directory took {$CE - $CS:.1f} s ($MB MB)')"
  exit 1
fi
