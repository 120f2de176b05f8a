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

    /// How many restarts the window may hold, and its length.
    pub(crate) fn bounds(&self) -> (u32, Duration) {
        (self.max_restarts, self.period)
    }

    /// Records a restart at `now`; `false` when that exceeds the intensity.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        self.restarts.push_back(now);
        self.forget_before(now);
        self.restarts.len() <= self.max_restarts as usize
    }

    /// Records a restart at `now` only if that stays within the intensity;
    /// `false` (and nothing recorded) otherwise, so that
    /// [`record`](Self::record) of the same restart then gives up.
    pub(crate) fn try_record(&mut self, now: Instant) -> bool {
        self.forget_before(now);
        if self.restarts.len() < self.max_restarts as usize {
            self.restarts.push_back(now);
            true
        } else {
            false
        }
    }

    /// Forgets the restarts older than one period before `now`.
    fn forget_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
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
    fn a_tried_restart_is_recorded_only_within_the_intensity() {
        let t0 = Instant::now();
        let mut intensity = Intensity::new(2, Duration::from_secs(10));
        assert!(intensity.try_record(t0));
        assert!(intensity.try_record(t0 + Duration::from_secs(1)));
        // One more would exceed it: not recorded, so recording it gives up
        // exactly as if it had never been tried.
        assert!(!intensity.try_record(t0 + Duration::from_secs(2)));
        assert!(!intensity.record(t0 + Duration::from_secs(2)));
        let mut fresh = Intensity::new(2, Duration::from_secs(10));
        assert!(fresh.try_record(t0));
        assert!(fresh.try_record(t0 + Duration::from_secs(1)));
        assert!(!fresh.record(t0 + Duration::from_secs(2)));
        // Once the oldest has left the window, there is room again.
        assert!(intensity.try_record(t0 + Duration::from_secs(11) + Duration::from_nanos(1)));
    }

    #[test]
    fn zero_restarts_means_the_first_failure_gives_up() {
        let mut intensity = Intensity::new(0, Duration::from_secs(1));
        assert!(!intensity.record(Instant::now()));
    }
}
