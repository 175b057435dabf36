#!/usr/bin/env python3
"""Cross-file checks of deploy/ that no schema makes (deploy/check.sh runs this).

A schema says a Service is well formed; it cannot say that --peers names the right Services,
or that those Services route to pods that are not ready yet, without which a new cluster never
elects a leader. Prints each failed check (-v: every check) and a count; exits 1 if any failed.

Usage: check_refs.py [-v] [DEPLOY_DIR]
"""

import ipaddress
import pathlib
import sys

import yaml  # PyYAML, which yamllint brings

args = [a for a in sys.argv[1:] if a != "-v"]
verbose = "-v" in sys.argv[1:]
root = pathlib.Path(args[0] if args else pathlib.Path(__file__).parent)
counts = {"ok": 0, "failed": 0}


def check(name, ok, why=""):
    """Prints a failed check (every check with -v) and counts it."""
    counts["ok" if ok else "failed"] += 1
    if verbose or not ok:
        print(f"{'ok  ' if ok else 'FAIL'}  {name}{'' if ok else ': ' + why}")


def peers_of(text):
    """`1=host:7401,2=…` as {1: ("host", 7401), …}."""
    peers = {}
    for part in str(text).split(","):
        node_id, addr = part.strip().split("=", 1)
        host, port = addr.rsplit(":", 1)
        peers[int(node_id)] = (host, int(port))
    return peers


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- Kubernetes ---------------------------------------------------------------------------
docs = []
for path in sorted((root / "kubernetes").rglob("*.yaml")):
    docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

sts_all = list(kinds.get("StatefulSet", {}).values())
check("one StatefulSet", len(sts_all) == 1, f"found {len(sts_all)}")
sts = sts_all[0]
spec = sts["spec"]
pod_labels = spec["template"]["metadata"]["labels"]
member = spec["template"]["spec"]["containers"][0]
env = env_of(member)
replicas = spec["replicas"]
services = kinds.get("Service", {})

check("StatefulSet podManagementPolicy is Parallel (a majority must start to form)",
      spec.get("podManagementPolicy") == "Parallel", str(spec.get("podManagementPolicy")))
listen_port = int(env["HAKV_LISTEN"]["value"].rsplit(":", 1)[1])
peers = peers_of(env["HAKV_PEERS"]["value"])
check("HAKV_PEERS lists node ids 1..replicas", sorted(peers) == list(range(1, replicas + 1)),
      f"ids {sorted(peers)}, replicas {replicas}")
for node_id, (host, port) in sorted(peers.items()):
    pod = f"{sts['metadata']['name']}-{node_id - 1}"
    svc = services.get(host)
    where = f"peer {node_id}={host}:{port}"
    if svc is None:
        check(where, False, f"no Service named {host}")
        continue
    s = svc["spec"]
    check(f"{where} is a ClusterIP Service of pod {pod} only (a stable IP: hakv freezes it)",
          s.get("clusterIP") != "None" and s.get("selector") == {"statefulset.kubernetes.io/pod-name": pod},
          f"selector {s.get('selector')}, clusterIP {s.get('clusterIP')}")
    check(f"{where} routes to pods not ready yet (publishNotReadyAddresses)",
          s.get("publishNotReadyAddresses") is True, "missing or false")
    check(f"{where} port is the member's listen port {listen_port}",
          port == listen_port and any(p["port"] == port for p in s["ports"]),
          f"{port} vs Service ports {[p['port'] for p in s['ports']]}")

gov = services.get(spec["serviceName"])
check(f"serviceName {spec['serviceName']} is a headless Service publishing not-ready pods",
      gov is not None and gov["spec"].get("clusterIP") == "None"
      and gov["spec"].get("publishNotReadyAddresses") is True
      and matches(gov["spec"].get("selector"), pod_labels), "missing or not headless")

# Every Service selects some pod template (or one StatefulSet pod by name).
templates = [d["spec"]["template"]["metadata"]["labels"]
             for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
for name, svc in sorted(services.items()):
    sel = svc["spec"].get("selector", {})
    pod_name = sel.get("statefulset.kubernetes.io/pod-name")
    ok = (pod_name in {f"{sts['metadata']['name']}-{i}" for i in range(replicas)}
          if pod_name else any(matches(sel, labels) for labels in templates))
    check(f"Service {name} selects pods", ok, f"selector {sel} matches no pod template")

for name, pdb in sorted(kinds.get("PodDisruptionBudget", {}).items()):
    check(f"PodDisruptionBudget {name} selects the members and keeps a majority",
          matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
          and pdb["spec"].get("maxUnavailable", replicas) <= (replicas - 1) // 2,
          str(pdb["spec"]))

# Secret references resolve against the Secret template.
secret_keys = {name: set((s.get("stringData") or {}) | (s.get("data") or {}))
               for name, s in kinds.get("Secret", {}).items()}
for d in docs:
    if d["kind"] not in ("StatefulSet", "Deployment"):
        continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                check(f"{d['metadata']['name']}: {e['name']} from Secret {ref['name']}/{ref['key']}",
                      ref["key"] in secret_keys.get(ref["name"], set()), "no such Secret key")
        ports = {p.get("name") for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str):
                check(f"{d['metadata']['name']}: {probe} port {port} is a container port",
                      port in ports, f"ports {sorted(p for p in ports if p)}")

for name, dep in sorted(kinds.get("Deployment", {}).items()):
    benv = env_of(dep["spec"]["template"]["spec"]["containers"][0])
    if "HAKV_BALANCE_BACKENDS" in benv:
        backends = {b.strip() for b in benv["HAKV_BALANCE_BACKENDS"]["value"].split(",")}
        want = {f"{h}:{p}" for h, p in peers.values()}
        check(f"Deployment {name}: backends are the members' Services", backends == want,
              f"{sorted(backends)} vs {sorted(want)}")

# --- compose -------------------------------------------------------------------------------
compose = yaml.safe_load((root / "docker" / "compose.yaml").read_text())
svcs = compose["services"]
net = compose["networks"]["hakv"]["ipam"]["config"][0]
subnet = ipaddress.ip_network(net["subnet"])
ip_range = ipaddress.ip_network(net["ip_range"])
members = {n: s for n, s in svcs.items() if s.get("command") == ["serve"]}
addr_of = {}
for name, s in sorted(members.items()):
    e = s["environment"]
    ip = ipaddress.ip_address(s["networks"]["hakv"]["ipv4_address"])
    port = int(e["HAKV_LISTEN"].rsplit(":", 1)[1])
    addr_of[int(e["HAKV_NODE_ID"])] = (str(ip), port)
    check(f"compose {name}: fixed address {ip} in {subnet}, outside the dynamic range {ip_range}",
          ip in subnet and ip not in ip_range)
for name, s in sorted(members.items()):
    got = peers_of(s["environment"]["HAKV_PEERS"])
    check(f"compose {name}: HAKV_PEERS are the members' fixed addresses and ids", got == addr_of,
          f"{got} vs {addr_of}")
balancer = svcs["balancer"]["environment"]
backends = {b.strip() for b in balancer["HAKV_BALANCE_BACKENDS"].split(",")}
check("compose balancer: backends are the peer addresses, character for character (leader-aware)",
      backends == {f"{ip}:{port}" for ip, port in addr_of.values()}, str(sorted(backends)))

# Prometheus scrapes the compose services at the ports they serve /metrics on.
prom = yaml.safe_load((root / "prometheus" / "prometheus-compose.yml").read_text())
want = {f"{n}:{s['environment']['HAKV_LISTEN'].rsplit(':', 1)[1]}" for n, s in members.items()}
want.add(f"balancer:{balancer['HAKV_BALANCE_ADMIN_LISTEN'].rsplit(':', 1)[1]}")
targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
check("prometheus-compose.yml scrapes every member and the balancer's admin port",
      targets == want, f"{sorted(targets)} vs {sorted(want)}")
mounted = {v.split(":")[0]: v.split(":")[1] for v in svcs["prometheus"]["volumes"]}
check("compose prometheus mounts alerts.yml beside its config (rule_files: alerts.yml)",
      mounted.get("../prometheus/alerts.yml") == "/etc/prometheus/alerts.yml"
      and prom["rule_files"] == ["alerts.yml"])

# Grafana's dashboard provider reads the folder the dashboards are mounted into.
provider = yaml.safe_load(
    (root / "grafana" / "provisioning" / "dashboards" / "hakv.yaml").read_text())
path = provider["providers"][0]["options"]["path"]
boards = sorted(p.name for p in (root / "grafana").glob("*.json"))
grafana = {v.split(":")[0]: v.split(":")[1] for v in svcs["grafana"]["volumes"]}
check("compose grafana mounts every dashboard into the provider's folder",
      all(grafana.get(f"../grafana/{b}") == f"{path}/{b}" for b in boards) and boards,
      f"provider path {path}, dashboards {boards}")

print(f"{counts['ok']} cross-file checks passed, {counts['failed']} failed")
sys.exit(1 if counts["failed"] else 0)
