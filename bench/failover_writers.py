#!/usr/bin/env python3
"""The writers' side of bench/failover.sh: one leader failover as writers see it, and the summary.

    failover_writers.py trial K LEADER_ID LEADER_PID ID=ADDR...   # one trial, JSON lines out
    failover_writers.py summary FILE                             # the summary of those lines

A trial starts one writer thread per surviving member (ID=ADDR) that POSTs /data/fo-key about
every 20 ms (HTTP timeout PUT_TIMEOUT, default 0.1 s, the resolution of the measurement). A
timed-out write is retried at once; a write that fails faster (hakv answers 503 at once while
there is no leader) is retried after the rest of its 20 ms slot (PACE_FAILURES=0: at once, as
../shared/peers/02b_etcd_failover.py does). After PRE_KILL s (default 3) LEADER_PID gets SIGKILL.
Per writer, as in 02b: window = completion of the first successful write *started* after the
kill - kill time. The cluster itself is started and stopped by bench/failover.sh (bench/lib.sh).
"""
import json, os, signal, statistics, sys, threading, time, urllib.error, urllib.request

PUT_TIMEOUT = float(os.environ.get("PUT_TIMEOUT", "0.1"))
PRE_KILL = float(os.environ.get("PRE_KILL", "3"))
PACE_FAILURES = os.environ.get("PACE_FAILURES", "1") == "1"
BODY = b'{"value": "hello world"}'


def write(addr, timeout):
    req = urllib.request.Request(f"http://{addr}/data/fo-key", data=BODY, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()


def writer(addr, events, stop):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            write(addr, PUT_TIMEOUT)
            kind = "ok"
        except urllib.error.HTTPError as e:
            kind = f"http_{e.code}"
        except Exception as e:  # timeout, refused, reset
            kind = "timeout" if "timed out" in str(e) else "conn"
        t1 = time.monotonic()
        events.append((t0, t1, kind))
        # a fast failure (503) is retried after the rest of its 20 ms slot, a timed-out one at once
        if kind == "ok" or PACE_FAILURES:
            time.sleep(max(0.0, 0.02 - (t1 - t0)))


def cluster_view(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/cluster", timeout=1) as r:
            s = json.load(r)
        return (s.get("leader") or {}).get("id"), s.get("term")
    except Exception:
        return None, None


def trial(k, leader_id, leader_pid, survivors):
    ev = {i: [] for i in survivors}
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(a, ev[i], stop), daemon=True)
               for i, a in survivors.items()]
    for t in threads:
        t.start()
    try:
        time.sleep(PRE_KILL)
        t_kill = time.monotonic()
        os.kill(leader_pid, signal.SIGKILL)
        deadline = t_kill + 8
        while time.monotonic() < deadline and not all(
                any(kd == "ok" and t0 > t_kill for (t0, _, kd) in e) for e in ev.values()):
            time.sleep(0.02)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=2)
    new_leader, term = cluster_view(next(iter(survivors.values())))
    for i, e in ev.items():
        after = [x for x in e if x[0] > t_kill]
        first_ok = next((t1 for (_, t1, kd) in after if kd == "ok"), None)
        win = None if first_ok is None else first_ok - t_kill
        fails = [kd for (_, t1, kd) in e if t1 > t_kill and kd != "ok"]
        kinds = {f: fails.count(f) for f in sorted(set(fails))}
        ok_n = sum(1 for x in e if x[2] == "ok")
        span = (e[-1][1] - e[0][0]) if e else 0.0
        pre = sum(1 for (_, t1, kd) in e if kd == "ok" and t1 <= t_kill) / PRE_KILL
        print(f"trial {k} killed=n{leader_id} new_leader=n{new_leader} term={term} writer->n{i}: "
              f"window={'none' if win is None else round(win * 1000)} ms, failed_after_kill={len(fails)} {kinds}, "
              f"writes ok/total={ok_n}/{len(e)}, pre-kill rate={pre:.0f}/s", file=sys.stderr, flush=True)
        down = win if win is not None else span - (t_kill - e[0][0] if e else 0)
        print(json.dumps({"window": win, "ok": ok_n, "total": len(e), "span": span, "down": down}), flush=True)


def summary(path):
    res = [json.loads(line) for line in open(path) if line.strip()]
    wins = sorted(r["window"] for r in res if r["window"] is not None)
    unrec = sum(1 for r in res if r["window"] is None)
    ok, total = sum(r["ok"] for r in res), sum(r["total"] for r in res)
    span, down = sum(r["span"] for r in res), sum(r["down"] for r in res)
    kills = len(res) // 2
    if not wins:
        print("SUMMARY hakv: no writer recovered")
        return 1
    med = statistics.median(wins)
    print(f"SUMMARY hakv kills={kills} windows={len(wins)} (ms) {[round(w * 1000) for w in wins]}, "
          f"min {round(wins[0] * 1000)} median {round(med * 1000)} max {round(wins[-1] * 1000)}; "
          f"unrecovered writers: {unrec}; availability successful/total = {ok}/{total} = {100 * ok / total:.2f}%; "
          f"uptime/total time = {span - down:.1f}/{span:.1f} s = {100 * (span - down) / span:.2f}%")
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "trial":
        survivors = dict(s.split("=", 1) for s in argv[5:])
        trial(int(argv[2]), argv[3], int(argv[4]), survivors)
        return 0
    if len(argv) == 3 and argv[1] == "summary":
        return summary(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
