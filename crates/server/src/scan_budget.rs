//! The memory all scan pages being read or sent may hold at once (`--scan-memory`): a page
//! reserves the most it could take before it is read, keeps what its body really takes until
//! the body has been sent (or the client went away), and waits for room meanwhile. Without
//! it, concurrent scans of large values held `in-flight requests × 4 MiB pages` (10 GiB was
//! measured with 32 scans of 1 MB values).

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB.
const UNIT: u64 = 1024;

pub struct ScanBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
}

/// Room held for one page.
pub struct Reserved(OwnedSemaphorePermit);

impl ScanBudget {
    pub fn new(bytes: u64) -> ScanBudget {
        let total_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX >> 4);
        ScanBudget {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    /// Waits (at most `wait`) until `bytes` fit; `None` when they did not in time. A request
    /// for more than the whole budget asks for all of it.
    pub async fn reserve(&self, bytes: u64, wait: Duration) -> Option<Reserved> {
        let units = units(bytes).min(self.total_units);
        let acquire = self.permits.clone().acquire_many_owned(units);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Some(Reserved(permit)),
            _ => None,
        }
    }

    /// Bytes reserved now (for the metrics).
    pub fn in_use(&self) -> u64 {
        (self.total_units as u64 - self.permits.available_permits() as u64) * UNIT
    }
}

impl Reserved {
    /// Keeps room for `bytes` only, giving the rest back.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = units(bytes) as usize;
        if self.0.num_permits() > keep {
            drop(self.0.split(self.0.num_permits() - keep));
        }
    }
}

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

/// A response body that holds its page's room until it is dropped: once sent whole, or when
/// the connection ends first.
pub struct BudgetedBody {
    bytes: Option<Bytes>,
    _room: Reserved,
}

impl BudgetedBody {
    pub fn new(bytes: Bytes, room: Reserved) -> BudgetedBody {
        BudgetedBody {
            bytes: Some(bytes),
            _room: room,
        }
    }
}

impl Body for BudgetedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.bytes.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_is_held_until_the_body_is_dropped_and_excess_given_back() {
        let budget = ScanBudget::new(10 * UNIT);
        let mut first = budget.reserve(8 * UNIT, Duration::from_millis(10)).await.unwrap();
        assert!(
            budget
                .reserve(4 * UNIT, Duration::from_millis(10))
                .await
                .is_none()
        );
        first.shrink_to(2 * UNIT);
        assert_eq!(budget.in_use(), 2 * UNIT);
        let body = BudgetedBody::new(Bytes::from_static(b"page"), first);
        let second = budget.reserve(8 * UNIT, Duration::from_millis(10)).await.unwrap();
        assert_eq!(budget.in_use(), 10 * UNIT);
        drop(body);
        drop(second);
        assert_eq!(budget.in_use(), 0);
        // More than the whole budget waits for all of it instead of never fitting.
        assert!(
            budget
                .reserve(100 * UNIT, Duration::from_millis(10))
                .await
                .is_some()
        );
    }
}
