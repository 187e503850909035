//! The wait after a database error, shared by the claimer and the recorder.

use std::time::Duration;

/// First wait after a database error; it doubles with each error in a row
/// (a failed connect, claim or flush) up to [`MAX`], and starts again after
/// a success.
pub(super) const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
pub(super) const MAX: Duration = Duration::from_secs(5);

/// A doubling backoff: [`FIRST`], twice that, … up to [`MAX`].
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff { next: FIRST }
    }

    /// The wait the next error gets (for the log line that announces it).
    pub(super) fn current(&self) -> Duration {
        self.next
    }

    /// The wait for this error; the next one waits twice as long.
    pub(super) fn step(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }

    /// A success: the next error waits [`FIRST`] again.
    pub(super) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// Waits [`step`](Self::step)'s time.
    pub(super) async fn wait(&mut self) {
        tokio::time::sleep(self.step()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_starts_again_after_a_success() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.current(), FIRST);
    }
}
