//! Clocks a test can move: libfaketime (Debian package `faketime`) preloaded into a process,
//! reading its offset from a file the test rewrites while the process runs.

use std::path::{Path, PathBuf};

/// libfaketime's preload library, wherever the distribution put it.
pub fn libfaketime() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|lib| lib.exists())
        .expect("libfaketime is missing: install Debian's `faketime` package (.ci/run does)")
}

/// Sets the offset of the clock that reads `file`, in seconds ("+600", "-3600").
pub fn set_offset(file: &Path, offset: &str) {
    std::fs::write(file, offset).unwrap();
}

/// What makes a process read its clock offset from `file` (refreshed every second).
pub fn faketime_env(lib: &Path, file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ("DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}
