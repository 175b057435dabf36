//! Prometheus metrics: the process-wide recorder, request metrics, and the gauges read from
//! the node (cache, store, queues) each time `/metrics` is scraped.

use crate::exposition;
use crate::node::Node;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Installs the recorder once per process and returns its handle. If another recorder was
/// installed first (an embedding program), hakv's metrics go there instead.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("hakv_storage_batch_commands".into()), BATCH_BUCKETS)
            })
            .expect("bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only hakv's gauges");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "hakv_http_requests_total",
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        "hakv_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request."
    );
    describe_gauge!("hakv_http_requests_in_flight", "Requests being served now.");
    describe_histogram!(
        "hakv_runtime_wake_delay_seconds",
        Unit::Seconds,
        "How late a task that is due runs: a probe sleeping 10 ms, again and again. Stalls here \
         (a blocked worker, a process without CPU) delay requests before any handler is timed."
    );
    describe_counter!(
        "hakv_auth_denied_total",
        "Requests refused by client authentication, by reason (missing, invalid, forbidden)."
    );
    describe_counter!(
        "hakv_tls_handshake_failures_total",
        "TLS handshakes refused or not finished in time."
    );
    describe_counter!(
        "hakv_tls_reloads_total",
        "TLS certificate reloads on SIGHUP, by result."
    );
    describe_gauge!(
        "hakv_scan_memory_bytes",
        Unit::Bytes,
        "Memory held by scan pages being read or sent (at most --scan-memory)."
    );
    describe_gauge!("hakv_build_info", "Always 1; the labels say which build runs.");
    describe_gauge!(
        "hakv_disk_free_bytes",
        Unit::Bytes,
        "Free bytes on the data directory's filesystem."
    );
    describe_gauge!(
        "hakv_disk_total_bytes",
        Unit::Bytes,
        "Size of the data directory's filesystem."
    );
    describe_gauge!(
        "hakv_disk_reserve_bytes",
        Unit::Bytes,
        "Writes are refused (507) while fewer bytes than this are free."
    );
    describe_gauge!(
        "hakv_disk_writes_refused",
        "1 while writes are refused because the disk is nearly full."
    );
    describe_counter!(
        "hakv_writes_refused_disk_full_total",
        "Writes answered 507 because the disk is nearly full."
    );
    describe_histogram!(
        "hakv_storage_commit_duration_seconds",
        Unit::Seconds,
        "Time to write and fsync one group-commit batch."
    );
    describe_histogram!(
        "hakv_storage_batch_commands",
        "Commands applied per group-commit batch (per fsync)."
    );
    describe_counter!(
        "hakv_storage_commit_failures_total",
        "Batches whose commit failed."
    );
    describe_gauge!(
        "hakv_storage_write_queue_depth",
        "Writes waiting for the group-commit writer, a Raft log entry, or forwarding to the leader."
    );
    describe_gauge!(
        "hakv_storage_keys",
        "Approximate number of stored keys (including expired, unpurged ones)."
    );
    describe_gauge!(
        "hakv_storage_disk_bytes",
        Unit::Bytes,
        "Bytes the data directory occupies on disk (state, Raft log, snapshot), as du counts."
    );
    describe_gauge!("hakv_storage_revision", "The newest applied revision.");
    describe_counter!(
        "hakv_storage_expired_keys_total",
        "Expired keys purged in the background."
    );
    describe_gauge!("hakv_raft_has_leader", "1 when this member knows a leader.");
    describe_gauge!("hakv_raft_is_leader", "1 when this member is the leader.");
    describe_gauge!("hakv_raft_term", "The current Raft term.");
    describe_gauge!(
        "hakv_raft_last_log_index",
        "Index of the last entry in this member's log."
    );
    describe_gauge!(
        "hakv_raft_commit_index",
        "Index of the last entry this member knows to be committed."
    );
    describe_gauge!(
        "hakv_raft_applied_index",
        "Index of the last entry applied to the state machine."
    );
    describe_gauge!(
        "hakv_raft_snapshot_index",
        "Index of the last entry the member's current snapshot covers."
    );
    describe_gauge!(
        "hakv_raft_purged_index",
        "Index of the last entry removed from the member's log (covered by its snapshot)."
    );
    describe_gauge!(
        "hakv_raft_members",
        "Members of the cluster, voters and learners."
    );
    describe_gauge!(
        "hakv_raft_follower_lag_entries",
        "On the leader: entries each follower is behind."
    );
    describe_counter!(
        "hakv_raft_rejected_peer_requests_total",
        "Peer requests refused for a missing or wrong token."
    );
    describe_counter!(
        "hakv_cluster_forwarded_writes_total",
        "Writes this member forwarded to the leader."
    );
    describe_counter!(
        "hakv_raft_lease_reads_total",
        "Read indexes this leader gave under its lease, without a heartbeat round."
    );
    describe_counter!(
        "hakv_cluster_forwarded_reads_total",
        "Linearizable reads this member served with the leader's read index."
    );
    describe_counter!(
        "hakv_cluster_read_index_requests_total",
        "Read-index requests this member sent to the leader (one serves every read waiting)."
    );
    describe_counter!(
        "hakv_cluster_rejected_internal_requests_total",
        "Internal requests refused for a bad token."
    );
    describe_histogram!("hakv_raft_batch_commands", "Commands per Raft log entry.");
    describe_histogram!(
        "hakv_raft_log_append_seconds",
        Unit::Seconds,
        "Write and fsync of one Raft log append (openraft's core waits for it)."
    );
    describe_histogram!(
        "hakv_raft_proposal_duration_seconds",
        Unit::Seconds,
        "Time from proposal to applied outcome."
    );
    describe_counter!("hakv_cache_hits_total", "Reads answered by the cache.");
    describe_counter!("hakv_cache_misses_total", "Reads that went to the store.");
    describe_counter!(
        "hakv_cache_evictions_total",
        "Entries evicted by the cache policy."
    );
    describe_gauge!("hakv_cache_entries", "Entries in the cache.");
    describe_gauge!("hakv_cache_bytes", Unit::Bytes, "Bytes the cache accounts for.");
    describe_gauge!(
        "hakv_cache_capacity_bytes",
        Unit::Bytes,
        "The cache's byte budget."
    );
}

/// The exposition text, with the node's gauges brought up to date first.
pub fn render(node: &Node) -> String {
    let handle = install();
    gauge!("hakv_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let cache = node.cache.stats();
    counter!("hakv_cache_hits_total").absolute(cache.hits);
    counter!("hakv_cache_misses_total").absolute(cache.misses);
    counter!("hakv_cache_evictions_total").absolute(cache.evictions);
    gauge!("hakv_cache_entries").set(cache.entries as f64);
    gauge!("hakv_cache_bytes").set(cache.bytes as f64);
    gauge!("hakv_cache_capacity_bytes").set(cache.capacity_bytes as f64);
    let store = node.state_machine.stats();
    gauge!("hakv_storage_keys").set(store.approximate_keys as f64);
    gauge!("hakv_storage_disk_bytes").set(exposition::disk_usage(&node.config.data_dir) as f64);
    gauge!("hakv_storage_revision").set(store.revision.0 as f64);
    gauge!("hakv_storage_write_queue_depth").set(node.write_queue_depth() as f64);
    let disk = &node.disk;
    gauge!("hakv_disk_free_bytes").set(disk.free_bytes() as f64);
    gauge!("hakv_disk_total_bytes").set(disk.total_bytes() as f64);
    gauge!("hakv_disk_reserve_bytes").set(disk.reserve_bytes() as f64);
    gauge!("hakv_disk_writes_refused").set(if disk.is_low() { 1.0 } else { 0.0 });
    if let Some(member) = node.cluster() {
        let status = member.raft().status();
        gauge!("hakv_raft_has_leader").set(if status.leader.is_some() { 1.0 } else { 0.0 });
        gauge!("hakv_raft_is_leader").set(if member.is_leader() { 1.0 } else { 0.0 });
        gauge!("hakv_raft_term").set(status.term as f64);
        gauge!("hakv_raft_last_log_index").set(status.last_log_index.unwrap_or(0) as f64);
        gauge!("hakv_raft_commit_index").set(status.commit_index.unwrap_or(0) as f64);
        gauge!("hakv_raft_applied_index").set(status.applied_index.unwrap_or(0) as f64);
        gauge!("hakv_raft_snapshot_index").set(status.snapshot_index.unwrap_or(0) as f64);
        gauge!("hakv_raft_purged_index").set(status.purged_index.unwrap_or(0) as f64);
        gauge!("hakv_raft_members").set(status.members.len() as f64);
        counter!("hakv_raft_rejected_peer_requests_total").absolute(member.raft().rejected_peer_requests());
        for follower in status.replication.iter().flatten() {
            let id = follower.id.to_string();
            gauge!("hakv_raft_follower_lag_entries", "follower" => id).set(follower.lag as f64);
        }
    }
    gauge!("hakv_http_requests_in_flight").set(node.in_flight.load(Ordering::Relaxed) as f64);
    gauge!("hakv_scan_memory_bytes").set(node.scan_budget.in_use() as f64);
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&exposition::process_metrics());
    exposition::sort_families(&text)
}

/// Drains histogram buffers now and then, so memory stays bounded between scrapes.
pub async fn upkeep_loop() {
    let handle = install();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
