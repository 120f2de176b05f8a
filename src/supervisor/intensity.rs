//! Restart intensity: OTP's sliding window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The restarts within the last `period`, newest last.
///
/// OTP's rule, at `Duration` precision: a restart at `now` is recorded, every
/// restart older than `now - period` is forgotten, and if more than
/// `max_restarts` remain the supervisor gives up. A restart exactly `period`
/// ago still counts.
#[derive(Debug)]
pub(crate) struct Intensity {
    max_restarts: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
}

impl Intensity {
    pub(crate) fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// How many restarts `period` may hold.
    pub(crate) fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The length of the window.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// Records a restart at `now`; `false` when that exceeds the intensity.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        self.restarts.push_back(now);
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.len() <= self.max_restarts as usize
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "any instant serves as the origin"
)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_is_allowed_and_one_over_is_not() {
        let t0 = Instant::now();
        let mut intensity = Intensity::new(3, Duration::from_secs(10));
        assert!(intensity.record(t0));
        assert!(intensity.record(t0 + Duration::from_secs(1)));
        assert!(intensity.record(t0 + Duration::from_secs(2)));
        assert!(!intensity.record(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn the_window_boundary_is_inclusive_and_older_restarts_are_forgotten() {
        let t0 = Instant::now();
        let period = Duration::from_secs(10);
        let mut at_boundary = Intensity::new(1, period);
        assert!(at_boundary.record(t0));
        assert!(
            !at_boundary.record(t0 + period),
            "a restart exactly one period ago still counts"
        );
        let mut past = Intensity::new(1, period);
        assert!(past.record(t0));
        assert!(past.record(t0 + period + Duration::from_nanos(1)));
    }

    #[test]
    fn zero_restarts_means_the_first_failure_gives_up() {
        let mut intensity = Intensity::new(0, Duration::from_secs(1));
        assert!(!intensity.record(Instant::now()));
    }
}
