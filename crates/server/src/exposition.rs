//! What the Prometheus exporter does not give by itself: metric families in a stable order
//! (it renders from hash maps, so the order changed between scrapes, which makes diffs and
//! eyeballing `curl /metrics` hard), the standard `process_*` metrics, and the bytes a data
//! directory really occupies on disk.

use std::collections::BTreeMap;
use std::path::Path;

/// `text` (Prometheus exposition format) with its families sorted by name. A family is its
/// `# HELP`/`# TYPE` lines and every sample after them, kept in their order.
pub fn sort_families(text: &str) -> String {
    let mut families: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut current = "";
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            current = rest.split(' ').next().unwrap_or_default();
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            // A sample without HELP/TYPE before it starts a family of its own; a histogram's
            // `_bucket`/`_sum`/`_count` samples stay with their family.
            if !name.starts_with(current) || current.is_empty() {
                current = name;
            }
        }
        if !line.is_empty() {
            families.entry(current).or_default().push(line);
        }
    }
    let mut out = String::with_capacity(text.len() + 1);
    for lines in families.values() {
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The `process_*` metrics every Prometheus client library exports, read from `/proc/self`
/// (Linux; elsewhere nothing), as exposition text.
pub fn process_metrics() -> String {
    let mut out = String::new();
    let Some(stat) = std::fs::read_to_string("/proc/self/stat").ok() else {
        return out;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system setting.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    };
    // Fields 14 and 15: user and system time in clock ticks; 20: threads; 22: start time in
    // ticks since boot; 23: virtual size in bytes; 24: resident pages.
    let cpu = field(14).zip(field(15)).map(|(u, s)| (u + s) / ticks);
    metric(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        field(24).map(|p| p * page),
    );
    metric(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        field(23),
    );
    metric(
        "process_threads",
        "gauge",
        "Number of OS threads in the process.",
        field(20),
    );
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let start = boot
        .zip(field(22))
        .map(|(boot, ticks_since)| boot + ticks_since / ticks);
    metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        start,
    );
    let fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    metric(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        fds,
    );
    let limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
    });
    metric(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        limit,
    );
    out
}

/// Bytes the files under `dir` occupy on disk (allocated blocks, as `du` counts them): fjall
/// reports its journals' preallocated length, 64 MiB for a store of a few KiB.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0, // removed meanwhile (a compaction)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_sorted_and_keep_their_samples() {
        let text = "# HELP b_total B.\n# TYPE b_total counter\nb_total{x=\"1\"} 1\nb_total{x=\"2\"} 2\n\
                    # HELP a_seconds A.\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n\
                    a_seconds_sum 0.5\na_seconds_count 1\nc 3\n";
        assert_eq!(
            sort_families(text),
            "# HELP a_seconds A.\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n\
             a_seconds_sum 0.5\na_seconds_count 1\n# HELP b_total B.\n# TYPE b_total counter\n\
             b_total{x=\"1\"} 1\nb_total{x=\"2\"} 2\nc 3\n"
        );
    }

    #[test]
    fn process_metrics_name_this_process() {
        let text = process_metrics();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name} missing:\n{text}");
        }
    }

    #[test]
    fn disk_usage_counts_allocated_blocks_not_length() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/data"), vec![1u8; 100_000]).unwrap();
        let used = disk_usage(dir.path());
        assert!((100_000..1 << 20).contains(&used), "{used}");
    }
}
