#!/usr/bin/env bash
# A long seeded nemesis (crates/hakv/tests/nemesis.rs): 3 members, each in a network namespace,
# on a tmpfs and under libfaketime, with partitions, kills, pauses, full disks and clock faults
# injected one at a time while 3 clients record a history that must stay linearizable.
# Root only. Prints the schedule, fault counts, unavailability windows and the check's verdict.
#   SECS=1800 SEED=7 bench/nemesis.sh        (defaults: 1800 s, a seed from the clock)
set -eu -o pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS=${SECS:-1800}; SEED=${SEED:-$(date +%s)}
[ "$(id -u)" = 0 ] || { echo "the nemesis needs root (network namespaces, tmpfs)" >&2; exit 2; }
for tool in ip nft faketime; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install iproute2 nftables faketime" >&2; exit 2; }
done
cd "$ROOT"
echo "nemesis: ${SECS} s, seed ${SEED}"
HAKV_NEMESIS_SECS=$SECS HAKV_NEMESIS_SEED=$SEED \
  cargo test --release --locked -p hakv --test nemesis -- --nocapture 2>&1 |
  grep -v '^\s*\(Compiling\|Finished\|Running\)'
