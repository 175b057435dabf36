#!/usr/bin/env python3
"""Writes the Grafana dashboards (hakv-cluster.json, hakv-balancer.json) next to this file.

Edit the panels here and run `python3 deploy/grafana/generate.py`; the JSON is committed so
that operators can import it as it is. crates/hakv/tests/deploy_files.rs checks that every
expression parses and names only metrics hakv exports.
"""
import json
import os

RATE = "$__rate_interval"


def panel(pid, title, exprs, unit="short", x=0, y=0, w=12, h=8, kind="timeseries", legend=None):
    targets = []
    for i, expr in enumerate(exprs):
        text, fmt = expr if isinstance(expr, tuple) else (expr, None)
        target = {"refId": chr(ord("A") + i), "expr": text, "datasource": {"type": "prometheus", "uid": "${datasource}"}}
        if fmt:
            target["legendFormat"] = fmt
        targets.append(target)
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    }


def dashboard(uid, title, panels):
    return {
        "uid": uid,
        "title": title,
        "tags": ["hakv"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(hakv_http_requests_total, instance)" if uid == "hakv-cluster" else "label_values(hakv_lb_requests_total, instance)",
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels,
    }


SEL = 'instance=~"$instance"'

cluster = dashboard("hakv-cluster", "hakv cluster", [
    panel(1, "Requests per second, by route", [(f'sum by (route) (rate(hakv_http_requests_total{{{SEL}}}[{RATE}]))', "{{route}}")], "reqps", 0, 0),
    panel(2, "Latency percentiles", [
        (f'histogram_quantile(0.5, sum by (le) (rate(hakv_http_request_duration_seconds_bucket{{{SEL}}}[{RATE}])))', "p50"),
        (f'histogram_quantile(0.99, sum by (le) (rate(hakv_http_request_duration_seconds_bucket{{{SEL}}}[{RATE}])))', "p99"),
        (f'histogram_quantile(0.999, sum by (le) (rate(hakv_http_request_duration_seconds_bucket{{{SEL}}}[{RATE}])))', "p99.9"),
    ], "s", 12, 0),
    panel(3, "Availability (successful / all requests)", [
        (f'1 - sum(rate(hakv_http_requests_total{{{SEL},status=~"5.."}}[{RATE}])) / sum(rate(hakv_http_requests_total{{{SEL}}}[{RATE}]))', "availability"),
    ], "percentunit", 0, 8, 8),
    panel(4, "Cache hit ratio", [
        (f'sum(rate(hakv_cache_hits_total{{{SEL}}}[{RATE}])) / (sum(rate(hakv_cache_hits_total{{{SEL}}}[{RATE}])) + sum(rate(hakv_cache_misses_total{{{SEL}}}[{RATE}])))', "hit ratio"),
    ], "percentunit", 8, 8, 8),
    panel(5, "Rejected requests (503, 507, 429) per second", [
        (f'sum by (status) (rate(hakv_http_requests_total{{{SEL},status=~"503|507|429"}}[{RATE}]))', "{{status}}"),
    ], "reqps", 16, 8, 8),
    panel(6, "Leader and term", [
        (f'hakv_raft_term{{{SEL}}}', "term {{instance}}"),
        (f'hakv_raft_is_leader{{{SEL}}}', "leads {{instance}}"),
        (f'hakv_raft_has_leader{{{SEL}}}', "knows a leader {{instance}}"),
    ], "short", 0, 16, 8),
    panel(7, "Term changes (elections) in 10 minutes", [(f'changes(hakv_raft_term{{{SEL}}}[10m])', "{{instance}}")], "short", 8, 16, 8),
    panel(8, "Replication lag (entries), by follower", [(f'hakv_raft_follower_lag_entries{{{SEL}}}', "{{follower}}")], "short", 16, 16, 8),
    panel(9, "Applied vs commit index", [
        (f'hakv_raft_commit_index{{{SEL}}}', "commit {{instance}}"),
        (f'hakv_raft_applied_index{{{SEL}}}', "applied {{instance}}"),
        (f'hakv_raft_commit_index{{{SEL}}} - hakv_raft_applied_index{{{SEL}}}', "behind {{instance}}"),
    ], "short", 0, 24),
    panel(10, "Disk: free, reserve, store size", [
        (f'hakv_disk_free_bytes{{{SEL}}}', "free {{instance}}"),
        (f'hakv_disk_reserve_bytes{{{SEL}}}', "reserve {{instance}}"),
        (f'hakv_storage_disk_bytes{{{SEL}}}', "store {{instance}}"),
        (f'hakv_disk_writes_refused{{{SEL}}}', "writes refused {{instance}}"),
    ], "bytes", 12, 24),
    panel(11, "Proposal latency (leader: queued, committed and applied) and log fsync", [
        (f'histogram_quantile(0.99, sum by (le) (rate(hakv_raft_proposal_duration_seconds_bucket{{{SEL}}}[{RATE}])))', "p99"),
        (f'histogram_quantile(0.5, sum by (le) (rate(hakv_raft_proposal_duration_seconds_bucket{{{SEL}}}[{RATE}])))', "p50"),
        (f'histogram_quantile(0.99, sum by (le, instance) (rate(hakv_raft_log_append_seconds_bucket{{{SEL}}}[{RATE}])))', "log append p99 {{instance}}"),
    ], "s", 0, 32),
    panel(12, "Commands per log entry (batch size)", [
        (f'sum(rate(hakv_raft_batch_commands_sum{{{SEL}}}[{RATE}])) / sum(rate(hakv_raft_batch_commands_count{{{SEL}}}[{RATE}]))', "mean"),
    ], "short", 12, 32),
    panel(13, "Keys and write queue", [
        (f'hakv_storage_keys{{{SEL}}}', "keys {{instance}}"),
        (f'hakv_storage_write_queue_depth{{{SEL}}}', "queued writes {{instance}}"),
        (f'hakv_http_requests_in_flight{{{SEL}}}', "in flight {{instance}}"),
    ], "short", 0, 40, 24),
])

LB = 'instance=~"$instance"'
balancer = dashboard("hakv-balancer", "hakv balance", [
    panel(1, "Requests per second, by backend", [(f'sum by (backend) (rate(hakv_lb_backend_requests_total{{{LB}}}[{RATE}]))', "{{backend}}")], "reqps", 0, 0),
    panel(2, "Backend latency p99", [
        (f'histogram_quantile(0.99, sum by (le, backend) (rate(hakv_lb_backend_latency_seconds_bucket{{{LB}}}[{RATE}])))', "{{backend}}"),
    ], "s", 12, 0),
    panel(3, "Backends in rotation (healthy and not ejected)", [(f'hakv_lb_backend_up{{{LB}}}', "{{backend}}")], "short", 0, 8, 8),
    panel(4, "Ejections and health transitions", [
        (f'increase(hakv_lb_backend_ejections_total{{{LB}}}[5m])', "ejected {{backend}}"),
        (f'increase(hakv_lb_backend_health_transitions_total{{{LB}}}[5m])', "health changes {{backend}}"),
    ], "short", 8, 8, 8),
    panel(5, "Retries, budget refusals, panic mode", [
        (f'sum(rate(hakv_lb_retries_total{{{LB}}}[{RATE}]))', "retries"),
        (f'sum(rate(hakv_lb_retry_budget_exhausted_total{{{LB}}}[{RATE}]))', "budget exhausted"),
        (f'sum(rate(hakv_lb_panic_requests_total{{{LB}}}[{RATE}]))', "panic mode"),
    ], "reqps", 16, 8, 8),
    panel(6, "Errors the balancer answered, by code", [(f'sum by (code) (rate(hakv_lb_errors_total{{{LB}}}[{RATE}]))', "{{code}}")], "reqps", 0, 16),
    panel(7, "In flight", [
        (f'hakv_lb_in_flight{{{LB}}}', "total {{instance}}"),
        (f'hakv_lb_backend_in_flight{{{LB}}}', "{{backend}}"),
    ], "short", 12, 16),
])

here = os.path.dirname(os.path.abspath(__file__))
for name, board in [("hakv-cluster.json", cluster), ("hakv-balancer.json", balancer)]:
    with open(os.path.join(here, name), "w") as f:
        json.dump(board, f, indent=2)
        f.write("\n")
