#!/usr/bin/env python3
"""Per-second CPU of processes by thread group, for bench/soak.sh (SAMPLE=1).

  thread-cpu.py sample OUT NAME=PID ...   every second, until every PID has exited, appends a
      JSON line to OUT: for each process the cores used per thread group since the last line
      ("tokio-rt-worker": request handling and Raft; "fjall:worker": the storage engine's
      flushes and compactions; ...), and the machine's /proc/stat counters.
  thread-cpu.py report OUT PROGRESS LEADER   per 10 s window: requests/s (from hakv bench's
      progress lines in PROGRESS), each process's cores (all / request threads / storage
      workers), the machine's idle share; then how the rate correlates with the storage
      workers' CPU and with the LEADER's request-thread CPU per request; then, second by
      second, how the seconds of lowest rate line up with every member compacting at once.
"""
import json, os, re, statistics, sys, time


def sample(out_path, procs):
    hz = os.sysconf("SC_CLK_TCK")
    out, prev = open(out_path, "a"), {}
    while any(os.path.exists(f"/proc/{pid}") for pid in procs.values()):
        started, row = time.time(), {}
        for name, pid in procs.items():
            groups = {}
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    stat = open(f"/proc/{pid}/task/{task}/stat").read()
                    comm = stat[stat.index("(") + 1:stat.rindex(")")]
                    fields = stat[stat.rindex(")") + 2:].split()
                    groups[comm] = groups.get(comm, 0) + int(fields[11]) + int(fields[12])
            except OSError:
                continue
            if name in prev:
                row[name] = {g: (t - prev[name].get(g, 0)) / hz for g, t in groups.items()}
            prev[name] = groups
        row["stat"] = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        out.write(json.dumps(row) + "\n")
        out.flush()
        time.sleep(max(0.0, 1 - (time.time() - started)))


def correlation(xs, ys):
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else 0.0


def report(out_path, progress_path, leader):
    rates = [int(m.group(1)) for m in re.finditer(r"\[run\s+\d+s\]\s+(\d+) req/s", open(progress_path).read())]
    rows = [json.loads(line) for line in open(out_path)]
    rows = [r for r in rows if len(r) > 1]
    names = sorted(k for k in rows[0] if k != "stat") if rows else []
    windows = []
    for w in range(min(len(rates), len(rows)) // 10):
        part = rows[w * 10:(w + 1) * 10]
        cores = lambda name, group=None: sum(
            (r[name].get(group, 0) if group else sum(r[name].values())) for r in part if name in r) / 10
        first, last = part[0]["stat"], part[-1]["stat"]
        idle = (last[3] + last[4] - first[3] - first[4]) / max(sum(last) - sum(first), 1)
        windows.append({"rate": sum(rates[w * 10:(w + 1) * 10]) / 10, "idle": idle,
                        **{n: (cores(n), cores(n, "tokio-rt-worker"), cores(n, "fjall:worker")) for n in names}})
    if len(windows) < 3:
        print("thread-cpu: too few windows to report")
        return
    print("window  req/s  " + "  ".join(f"{n} (all/req/storage)" for n in names) + "  idle")
    for i, w in enumerate(windows):
        print(f"{10 * i:5d}s {w['rate']:6.0f}  " + "  ".join(
            f"{w[n][0]:.2f}/{w[n][1]:.2f}/{w[n][2]:.2f}".ljust(len(n) + 19) for n in names) + f"  {100 * w['idle']:.0f}%")
    rate = [w["rate"] for w in windows]
    storage = [sum(w[n][2] for n in names) for w in windows]
    per_request = [1e6 * w[leader][1] / w["rate"] for w in windows]
    print(f"rate: standard deviation {100 * statistics.pstdev(rate) / statistics.mean(rate):.1f}% of its mean; "
          f"correlation with the storage workers' cores {correlation(rate, storage):+.2f} "
          f"(they used {min(storage):.2f}-{max(storage):.2f}), with the leader's request-thread "
          f"CPU per request {correlation(rate, per_request):+.2f} "
          f"({statistics.mean(per_request):.0f} +- {statistics.pstdev(per_request):.0f} us)")
    seconds(rows, rates, names)


def seconds(rows, rates, names, busy=0.2):
    """Per second: the seconds under half the mean rate against those in which every member's
    storage workers used at least `busy` of a core (members applying the same writes flush and
    compact at the same moments)."""
    n = min(len(rows), len(rates))
    mean = statistics.mean(rates[:n])
    compacting = [all(rows[j].get(m, {}).get("fjall:worker", 0) >= busy for m in names) for j in range(n)]
    low = [j for j in range(n) if rates[j] < mean / 2]
    together = [j for j in range(n) if compacting[j]]
    if not together:
        print(f"per second: {len(low)} of {n} seconds under half the mean rate; no second with every member compacting")
        return
    print(f"per second: {len(low)} of {n} seconds under half the mean rate, {sum(compacting[j] for j in low)} of them "
          f"with every member's storage workers at >= {busy} of a core; those {len(together)} seconds "
          f"averaged {statistics.mean(rates[j] for j in together) / mean:.2f} of the mean rate, the others "
          f"{statistics.mean(rates[j] for j in range(n) if not compacting[j]) / mean:.2f}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(sys.argv[2], dict(arg.split("=", 1) for arg in sys.argv[3:]))
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
