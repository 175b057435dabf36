#!/usr/bin/env python3
"""hakv leader failover window, as seen by writers (the hakv twin of ../shared/peers/02b_etcd_failover.py).

Per trial: a fresh 3-member hakv cluster on 127.0.0.1 with default timings (heartbeat 50 ms,
election timeout 150 ms), every member pinned to SRV_CPU. One writer thread per *surviving* member
POSTs /data/fo-key about every 20 ms (HTTP timeout PUT_TIMEOUT, default 0.1 s, the resolution of
the measurement). A timed-out write is retried at once; a write that fails faster (hakv answers
503 at once while there is no leader) is retried after the rest of its 20 ms slot (PACE_FAILURES=0:
at once, as 02b does; 02b's etcd failures are timeouts, so both pace the same there). After PRE_KILL s (default 3) the
leader gets SIGKILL. Reported per writer, as in 02b:
  window = completion of the first successful write *started* after the kill - kill time.
Availability over all trials: successful / total writes, and uptime / total time (the seed's
formula; a writer's downtime is its window, its total time is its first send to its last answer).
Every trial is bounded (~15 s), every process is stopped by its PID.

Usage: bench/failover.py [TRIALS]   (env: HAKV, SRV_CPU, PUT_TIMEOUT, PRE_KILL,
  PACE_FAILURES, BASE, PORT_BASE)
"""
import json, os, shutil, signal, statistics, subprocess, sys, threading, time, urllib.error, urllib.request

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAKV = os.environ.get("HAKV", os.path.join(ROOT, "target/release/hakv"))
SRV_CPU = os.environ.get("SRV_CPU", "0")
PUT_TIMEOUT = float(os.environ.get("PUT_TIMEOUT", "0.1"))
PRE_KILL = float(os.environ.get("PRE_KILL", "3"))
BASE = os.environ.get("BASE", "/tmp/hakv-bench-failover")
PACE_FAILURES = os.environ.get("PACE_FAILURES", "1") == "1"
PORT_BASE = int(os.environ.get("PORT_BASE", "27410"))
TOKEN = "hakv-bench-failover-token"
ADDR = {i: f"127.0.0.1:{PORT_BASE + i}" for i in (1, 2, 3)}
PEERS = ",".join(f"{i}={a}" for i, a in ADDR.items())
BODY = b'{"value": "hello world"}'

PROCS = {}  # every member process this script started, by node id


def stop_all():
    for p in PROCS.values():
        if p.poll() is None:
            p.kill()
    for p in PROCS.values():
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    PROCS.clear()


def on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_term)


def get_json(i, path, timeout=1.0):
    with urllib.request.urlopen(f"http://{ADDR[i]}{path}", timeout=timeout) as r:
        return json.load(r)


def write(i, timeout):
    req = urllib.request.Request(f"http://{ADDR[i]}/data/fo-key", data=BODY, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()
        return r.status


def start_member(i):
    os.makedirs(f"{BASE}/n{i}", exist_ok=True)
    log = open(f"{BASE}/n{i}.log", "a")
    PROCS[i] = subprocess.Popen(
        ["taskset", "-c", SRV_CPU, HAKV, "serve", "--node-id", str(i), "--peers", PEERS,
         "--cluster-token", TOKEN, "--listen", ADDR[i], "--data-dir", f"{BASE}/n{i}"],
        stdout=log, stderr=subprocess.STDOUT)


def start_cluster():
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(BASE)
    for i in ADDR:
        start_member(i)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            st = {i: get_json(i, "/cluster") for i in ADDR}
            leaders = {(s.get("leader") or {}).get("id") for s in st.values()}
            if len(leaders) == 1 and None not in leaders:
                write(1, 2.0)
                return leaders.pop()
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("hakv cluster did not agree on a leader within 20 s")


def writer(i, events, stop_ev):
    while not stop_ev.is_set():
        t0 = time.monotonic()
        try:
            write(i, PUT_TIMEOUT)
            kind = "ok"
        except urllib.error.HTTPError as e:
            kind = f"http_{e.code}"
        except Exception as e:  # timeout, refused, reset
            kind = "timeout" if "timed out" in str(e) else "conn"
        t1 = time.monotonic()
        events.append((t0, t1, kind))
        # pace every attempt to ~20 ms: a fast failure (503) is retried after the rest of its
        # 20 ms slot, a timed-out one (>= PUT_TIMEOUT) at once, as in 02b
        if kind == "ok" or PACE_FAILURES:
            time.sleep(max(0.0, 0.02 - (t1 - t0)))


def trial(k):
    leader = start_cluster()
    survivors = [i for i in ADDR if i != leader]
    ev = {i: [] for i in survivors}
    stop_ev = threading.Event()
    ths = [threading.Thread(target=writer, args=(i, ev[i], stop_ev), daemon=True) for i in survivors]
    for t in ths:
        t.start()
    try:
        time.sleep(PRE_KILL)
        t_kill = time.monotonic()
        PROCS[leader].send_signal(signal.SIGKILL)
        deadline = t_kill + 8
        while time.monotonic() < deadline and not all(
                any(kd == "ok" and t0 > t_kill for (t0, _, kd) in ev[i]) for i in survivors):
            time.sleep(0.02)
        time.sleep(1)
    finally:
        stop_ev.set()
        for t in ths:
            t.join(timeout=2)
    new_leader, term = None, None
    try:
        s = get_json(survivors[0], "/cluster")
        new_leader, term = (s.get("leader") or {}).get("id"), s.get("term")
    except Exception:
        pass
    stop_all()
    out = []
    for i in survivors:
        e = ev[i]
        after = [x for x in e if x[0] > t_kill]
        first_ok = next((t1 for (_, t1, kd) in after if kd == "ok"), None)
        win = None if first_ok is None else first_ok - t_kill
        fails = [kd for (_, t1, kd) in e if t1 > t_kill and kd != "ok"]
        kinds = {k2: fails.count(k2) for k2 in sorted(set(fails))}
        ok_n = sum(1 for x in e if x[2] == "ok")
        span = (e[-1][1] - e[0][0]) if e else 0.0
        pre = sum(1 for (_, t1, kd) in e if kd == "ok" and t1 <= t_kill) / PRE_KILL
        print(f"trial {k} killed=n{leader} new_leader=n{new_leader} term={term} writer->n{i}: "
              f"window={'none' if win is None else round(win * 1000)} ms, failed_after_kill={len(fails)} {kinds}, "
              f"writes ok/total={ok_n}/{len(e)}, pre-kill rate={pre:.0f}/s", flush=True)
        out.append({"window": win, "ok": ok_n, "total": len(e), "span": span,
                    "down": win if win is not None else span - (t_kill - e[0][0] if e else 0)})
    return out


def main():
    res = []
    try:
        for k in range(1, TRIALS + 1):
            res += trial(k)
    finally:
        stop_all()
        shutil.rmtree(BASE, ignore_errors=True)
    wins = sorted(r["window"] for r in res if r["window"] is not None)
    unrec = sum(1 for r in res if r["window"] is None)
    ok, total = sum(r["ok"] for r in res), sum(r["total"] for r in res)
    span, down = sum(r["span"] for r in res), sum(r["down"] for r in res)
    if wins:
        med = statistics.median(wins)
        print(f"SUMMARY hakv kills={TRIALS} windows={len(wins)} (ms) {[round(w * 1000) for w in wins]}, "
              f"min {round(wins[0] * 1000)} median {round(med * 1000)} max {round(wins[-1] * 1000)}; "
              f"unrecovered writers: {unrec}; availability successful/total = {ok}/{total} = {100 * ok / total:.2f}%; "
              f"uptime/total time = {span - down:.1f}/{span:.1f} s = {100 * (span - down) / span:.2f}%")
        print(f"TSV\t{TRIALS}\t{len(wins)}\t{wins[0]*1000:.0f}\t{med*1000:.0f}\t{wins[-1]*1000:.0f}\t{unrec}\t{ok}\t{total}\t{span:.1f}\t{down:.2f}")
    else:
        print("SUMMARY hakv: no writer recovered")


if __name__ == "__main__":
    main()
