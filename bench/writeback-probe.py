#!/usr/bin/env python3
"""How a streamed write hurts another writer's fsyncs on the same disk.

A small log writer (1,100 bytes, then fdatasync, every 5 ms) runs for 1 s alone, then while a
second writer streams 1 GiB at 64 MiB/s (a paced snapshot transfer) with one of the write-back
strategies below, then the stream's final fdatasync. Prints the log writer's fsync latency
alone and during the stream, and how long the final fdatasync took.

    python3 bench/writeback-probe.py [DIR] [MODE ...]

MODE: fdatasync32 (fdatasync every 32 MiB), sfr1 (sync_file_range of each new MiB, waited
for), sfr1+fd32 (both), none (the kernel's own write-back). DIR (default /tmp) must be on the
disk to measure; the probe writes 1 GiB there and removes it. Linux only.
"""
import ctypes
import os
import sys
import threading
import time

WAIT_BEFORE, WRITE, WAIT_AFTER = 1, 2, 4
MIB = 1 << 20
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def quantile(values, q):
    return values[min(len(values) - 1, int(q * len(values)))]


def probe(directory, mode):
    latencies, stop = [], threading.Event()

    def log_writer():
        fd = os.open(f"{directory}/probe-log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        record = b"x" * 1100
        while not stop.is_set():
            start = time.perf_counter()
            os.write(fd, record)
            os.fdatasync(fd)
            latencies.append((time.perf_counter() - start) * 1e3)
            time.sleep(0.005)
        os.close(fd)
        os.unlink(f"{directory}/probe-log")

    writer = threading.Thread(target=log_writer)
    writer.start()
    time.sleep(1)
    alone = sorted(latencies)
    fd = os.open(f"{directory}/probe-stream", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    chunk = os.urandom(MIB)
    start, written, submitted, synced = time.perf_counter(), 0, 0, 0
    for _ in range(1024):
        os.write(fd, chunk)
        written += MIB
        if mode.startswith("sfr1") and written - submitted >= MIB:
            libc.sync_file_range(fd, submitted, written - submitted, WAIT_BEFORE | WRITE | WAIT_AFTER)
            submitted = written
        if mode in ("fdatasync32", "sfr1+fd32") and written - synced >= 32 * MIB:
            os.fdatasync(fd)
            synced = written
        due = start + written / (64 * MIB)
        if due > time.perf_counter():
            time.sleep(due - time.perf_counter())
    during = sorted(latencies[len(alone):])
    final_start = time.perf_counter()
    os.fdatasync(fd)
    final = (time.perf_counter() - final_start) * 1e3
    time.sleep(0.5)
    stop.set()
    writer.join()
    os.close(fd)
    os.unlink(f"{directory}/probe-stream")
    print(f"{mode:>12}: alone p99 {quantile(alone, .99):6.2f} ms; during the stream p50 "
          f"{quantile(during, .5):5.2f} p99 {quantile(during, .99):6.2f} max {during[-1]:7.2f} ms "
          f"({len(during)} fsyncs); the stream's final fdatasync {final:6.1f} ms")


if __name__ == "__main__":
    args = sys.argv[1:]
    directory = args.pop(0) if args and os.path.isdir(args[0]) else "/tmp"
    for mode in args or ["fdatasync32", "sfr1", "sfr1+fd32", "none"]:
        probe(directory, mode)
