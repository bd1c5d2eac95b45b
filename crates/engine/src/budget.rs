//! A memory budget shared by all of an operation's sessions: chunks in flight (being compressed,
//! fetched or decompressed) hold a share of it, so that peak memory is set by the chunk size and
//! the CPU pool, not by `--jobs` or by the size of the rows.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::EngineError;

/// The budget's unit; chunk sizes are rounded up to it.
const UNIT: u64 = 64 << 10;

#[derive(Debug, Clone)]
pub(crate) struct ByteBudget {
    semaphore: Arc<Semaphore>,
    units: u32,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    _permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX >> 4)
            .max(1);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The whole budget, in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// The units `bytes` needs; never more than the whole budget, so a chunk larger than the
    /// budget (one huge row) still goes through, alone.
    fn units_for(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units)
    }

    /// Waits for a share of `bytes`. Callers must not hold shares whose release depends on their
    /// own progress while waiting (see [`ByteBudget::try_take`]).
    pub(crate) async fn take(&self, bytes: u64) -> Result<Share, EngineError> {
        self.semaphore
            .clone()
            .acquire_many_owned(self.units_for(bytes))
            .await
            .map(|permit| Share { _permit: permit })
            .map_err(|_| EngineError::bug("the memory budget was closed"))
    }

    /// A share of `bytes` if it is free now.
    pub(crate) fn try_take(&self, bytes: u64) -> Option<Share> {
        self.semaphore
            .clone()
            .try_acquire_many_owned(self.units_for(bytes))
            .ok()
            .map(|permit| Share { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shares_are_bounded_and_returned_and_oversized_ones_pass_alone() {
        let budget = ByteBudget::new(4 * UNIT);
        let a = budget.take(3 * UNIT).await.expect("share");
        assert!(budget.try_take(2 * UNIT).is_none());
        let b = budget.try_take(UNIT).expect("what is left");
        drop((a, b));
        // Larger than the whole budget: takes all of it rather than waiting forever.
        let huge = budget.take(100 * UNIT).await.expect("share");
        assert!(budget.try_take(1).is_none());
        drop(huge);
        assert!(budget.try_take(4 * UNIT).is_some());
    }
}
