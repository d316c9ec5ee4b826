//! How many policy instances run at once: a call waits for a free slot of
//! the instance pool instead of failing, so a burst of reconciles queues
//! behind a small pool and the engine's memory stays bounded
//! (see [`super::memory`]).
//!
//! Written by hand: calls run on blocking threads, and neither std nor
//! tokio has a counting semaphore that blocks a thread (tokio's waits in
//! async code only).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A counting semaphore for blocking threads.
pub struct InstancePermits {
    free: Mutex<u32>,
    released: Condvar,
}

/// A held slot; released on drop.
pub struct Permit<'a>(&'a InstancePermits);

impl InstancePermits {
    /// `slots` permits.
    pub fn new(slots: u32) -> Self {
        Self {
            free: Mutex::new(slots.max(1)),
            released: Condvar::new(),
        }
    }

    /// Waits up to `patience` for a free slot.
    pub fn acquire(&self, patience: Duration) -> Option<Permit<'_>> {
        let until = Instant::now() + patience;
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            let left = until.checked_duration_since(Instant::now())?;
            free = self
                .released
                .wait_timeout(free, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= 1;
        Some(Permit(self))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_waits_for_a_released_slot_and_gives_up_after_its_patience() {
        let permits = InstancePermits::new(1);
        let held = permits.acquire(Duration::ZERO).expect("one slot");
        assert!(permits.acquire(Duration::from_millis(20)).is_none());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| permits.acquire(Duration::from_secs(10)).is_some());
            std::thread::sleep(Duration::from_millis(20));
            drop(held);
            assert!(waiter.join().unwrap());
        });
    }
}
