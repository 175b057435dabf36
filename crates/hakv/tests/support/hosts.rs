//! Host names of a test's own, in `/etc/hosts` (root only): lines marked with this process's
//! id, replaced by an atomic rename (a reader never sees a half-written file) and removed
//! when dropped.

use std::path::Path;

const HOSTS: &str = "/etc/hosts";

pub struct TestHosts {
    marker: String,
}

impl TestHosts {
    /// `None` when `/etc/hosts` cannot be written (not root), so the caller can skip.
    pub fn new() -> Option<TestHosts> {
        let hosts = TestHosts {
            marker: format!("# hakv-test-{}", std::process::id()),
        };
        hosts.write(&[]).ok()?;
        Some(hosts)
    }

    /// A name of this test's: `hakv-test-<pid>-<label>`.
    pub fn name(&self, label: &str) -> String {
        format!("hakv-test-{}-{label}", std::process::id())
    }

    /// Makes the marked lines exactly `entries` (name, IP).
    pub fn set(&self, entries: &[(&str, &str)]) {
        self.write(entries).expect("rewrite /etc/hosts");
    }

    fn write(&self, entries: &[(&str, &str)]) -> std::io::Result<()> {
        let current = std::fs::read_to_string(HOSTS)?;
        let mut text: String = current
            .lines()
            .filter(|line| !line.ends_with(&self.marker))
            .map(|line| format!("{line}\n"))
            .collect();
        for (name, ip) in entries {
            text.push_str(&format!("{ip} {name} {}\n", self.marker));
        }
        let tmp = Path::new("/etc").join(format!(".hosts.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, HOSTS)
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        let _ = self.write(&[]);
    }
}
