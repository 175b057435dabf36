//! Whole-state work that no client waits for and that only reads the disk (a live snapshot's
//! scan, a backup's stream, checking a snapshot as it arrives) runs on threads of its own at
//! a lower CPU priority than the threads that answer clients and carry Raft's heartbeats.
//!
//! Why: on a busy machine such work wants the same cores as request handling, and a request's
//! latency is what users feel, while a transfer that takes a little longer is not. At nice 10
//! a thread gets about a tenth of a nice-0 thread's share of a contended core (the kernel's
//! weights are 110 against 1024) and still all of an idle one, so a quiet member catches up
//! as fast as before. Paced transfers need far less than that share.
//!
//! Work that writes stays at normal priority (a snapshot install): a nice
//! value also lowers a thread's I/O priority, and a writer starved of CPU or I/O can hold up
//! the filesystem's journal commit that every fsync on the disk waits for, the leader's log
//! among them.

use std::io;

/// The nice value of background threads (0 is the default, 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 10;

/// Runs `work` on a new thread named `name` at [`BACKGROUND_NICE`]; the thread ends with it.
pub fn spawn<F>(name: &str, work: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new().name(name.into()).spawn(move || {
        lower_priority();
        work()
    })?;
    Ok(())
}

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`], never raises it (on Linux
/// `setpriority` on a thread id applies to that thread alone). Failure only costs the
/// priority, so it is logged, not returned.
fn lower_priority() {
    let me = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(me), current.max(BACKGROUND_NICE)) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    /// Runs `work` through [`spawn`] and waits for what it returns (`None`: it panicked).
    fn spawned<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (result, outcome) = std::sync::mpsc::channel();
        spawn("hakv-test-bg", move || drop(result.send(work()))).unwrap();
        outcome.recv().ok()
    }

    #[test]
    fn work_runs_at_a_lower_priority_on_a_named_thread() {
        let before = nice_of_this_thread();
        let (nice, name) = spawned(|| {
            (
                nice_of_this_thread(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
        // A process started nicer than that keeps its niceness.
        assert_eq!(nice, BACKGROUND_NICE.max(before));
        assert_eq!(name.as_deref(), Some("hakv-test-bg"));
        // The caller's own priority is untouched.
        assert_eq!(nice_of_this_thread(), before);
    }

    #[test]
    fn a_panic_ends_only_its_own_thread() {
        assert_eq!(spawned(|| -> () { panic!("boom") }), None);
        assert_eq!(spawned(|| 7), Some(7));
    }
}
