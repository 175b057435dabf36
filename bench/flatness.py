#!/usr/bin/env python3
"""Throughput over time, judged against the soak's target (flat within +-20 % of the mean).

Usage: flatness.py RATE... (req/s per 10 s window, in order). Prints the windows and how many
lie within 20 % of their mean, for 10 s windows and for whole minutes (six windows each; a last
partial minute is left out). bench/soak.sh and bench/soak-etcd.sh both report through it, so
hakv and etcd are judged alike.
"""
import sys


def judge(label, rates):
    mean = sum(rates) / len(rates)
    if mean == 0:
        print(f"req/s per {label}: every window 0")
        return
    worst = max(abs(r - mean) for r in rates) / mean
    within = sum(1 for r in rates if abs(r - mean) <= 0.2 * mean)
    print(f"req/s per {label}:", " ".join(f"{r:.0f}" for r in rates))
    print(f"{label} windows within {100 * worst:.0f}% of their mean {mean:.0f}; "
          f"{within} of {len(rates)} within 20%")


def main():
    rates = [float(a) for a in sys.argv[1:]]
    if not rates:
        return
    judge("10 s", rates)
    minutes = [sum(rates[i:i + 6]) / 6 for i in range(0, len(rates) - 5, 6)]
    if len(minutes) >= 2:
        judge("minute", minutes)


if __name__ == "__main__":
    main()
