#!/usr/bin/env bash
# The parsers' property tests (keys, write bodies, query strings, cursors, snapshot frames,
# config files, the balancer's header rewriting and backend specs) for many more cases than
# CI runs (256 each), in a release build. A failure prints the smallest input that fails and
# saves its seed under proptest-regressions/ (commit it, and add a named regression test).
#   CASES=100000 bench/fuzz.sh
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
CASES=${CASES:-100000}
export PROPTEST_CASES=$CASES PROPTEST_MAX_SHRINK_ITERS=100000
status=0
run() { # run NAME CARGO-TEST-ARGS…: one group of properties, timed
  local name=$1 start=$SECONDS
  shift
  if cargo test --release --locked -q "$@" >"/tmp/hakv-fuzz-$name.log" 2>&1; then
    echo "$name: $(grep -h 'test result' "/tmp/hakv-fuzz-$name.log" | head -1) ($((SECONDS - start)) s)"
  else
    echo "$name: FAILED, see /tmp/hakv-fuzz-$name.log"; status=1
  fi
}
echo "$CASES cases per property"
run keys -p hakv-api --lib key_path
run frames -p hakv-raft --lib snapshot_transfer
run server-parsers -p hakv-server --lib parser_properties
run balancer -p hakv-balancer --test properties
exit $status
