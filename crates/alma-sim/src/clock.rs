//! The simulator's clock: real time, or a manual clock that tests move forward by hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Time as the simulator sees it. Job lifecycles, the daily quota and timestamps read it; the
/// per-second rate limit and latency knobs use real time, because they describe real traffic.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Mutex<ClockInner>>,
}

#[derive(Debug)]
struct ClockInner {
    /// `None`: wall-clock time. `Some(t)`: a frozen start time (manual clock).
    frozen_at: Option<DateTime<Utc>>,
    offset: chrono::Duration,
}

impl Clock {
    /// Wall-clock time (plus whatever `advance` has added).
    pub fn real() -> Self {
        Self::with(None)
    }

    /// A clock that stands still at `start` until `advance` moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self::with(Some(start))
    }

    /// The manual clock's default start: a Monday morning at the start of a term.
    pub fn manual_default() -> Self {
        Self::manual(Utc.with_ymd_and_hms(2026, 1, 5, 6, 0, 0).single().unwrap_or_default())
    }

    fn with(frozen_at: Option<DateTime<Utc>>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ClockInner {
                frozen_at,
                offset: chrono::Duration::zero(),
            })),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.frozen_at.unwrap_or_else(Utc::now) + inner.offset
    }

    pub fn is_manual(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).frozen_at.is_some()
    }

    /// Moves the clock forward (also works on a real clock: it then runs ahead of wall time).
    pub fn advance(&self, by: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.offset += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_stands_still_until_advanced() {
        let clock = Clock::manual_default();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - t0, chrono::Duration::seconds(90));
        assert!(clock.is_manual());
    }
}
