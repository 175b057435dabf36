//! When a client was last served, so that background transfers (a snapshot streamed to a
//! member that catches up) go at full speed while nobody waits on this node, and at their
//! paced rate while clients do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A node's clients count as active for this long after a request.
pub const ACTIVE_FOR: Duration = Duration::from_millis(500);

/// The time of the last client request, shared by the HTTP server (which touches it) and the
/// snapshot sender (which reads it).
#[derive(Debug)]
pub struct ClientActivity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last request, plus one (0: never).
    last_ms: AtomicU64,
}

impl Default for ClientActivity {
    fn default() -> Self {
        ClientActivity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl ClientActivity {
    /// Records a client request now. Cheap: one load, and a store at most once a millisecond.
    pub fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        if self.last_ms.load(Ordering::Relaxed) != now {
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Whether a client was served within [`ACTIVE_FOR`].
    pub fn is_active(&self) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        last != 0 && self.epoch.elapsed().as_millis() as u64 + 1 - last < ACTIVE_FOR.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_active_only_after_a_request() {
        let activity = ClientActivity::default();
        assert!(!activity.is_active(), "never touched");
        activity.touch();
        assert!(activity.is_active());
        activity.last_ms.store(1, Ordering::Relaxed);
        let long_ago = ClientActivity {
            epoch: Instant::now() - ACTIVE_FOR * 2,
            last_ms: AtomicU64::new(1),
        };
        assert!(!long_ago.is_active());
    }
}
