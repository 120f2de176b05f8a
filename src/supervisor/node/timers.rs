//! Restarts put off by a backoff, in the order they fall due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::supervisor::slot::ChildId;

/// A supervisor's put-off restarts, earliest first. Each holds the
/// children its restart starts; the supervisor passes over those that have
/// since stopped backing off (stopped, removed) when the restart falls due.
/// Looking for the next one and taking it are logarithmic in how many wait,
/// so a crash storm across a large pool does not cost each message the
/// pool's size.
#[derive(Default)]
pub(super) struct Timers {
    /// Due times, with the order the restarts were put off in, which also
    /// orders those due at the same instant.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    restarts: HashMap<u64, Vec<ChildId>>,
    put_off: u64,
}

impl Timers {
    /// Puts off the restart of `children` until `due`.
    pub(super) fn push(&mut self, due: Instant, children: Vec<ChildId>) {
        self.put_off += 1;
        self.due.push(Reverse((due, self.put_off)));
        self.restarts.insert(self.put_off, children);
    }

    /// When the next restart falls due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((due, _))| *due)
    }

    /// The restarts due at `now`, in the order they fell due.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<Vec<ChildId>> {
        let mut due = Vec::new();
        while let Some(&Reverse((at, which))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            due.extend(self.restarts.remove(&which));
        }
        due
    }

    /// Forgets every put-off restart.
    pub(super) fn clear(&mut self) {
        self.due.clear();
        self.restarts.clear();
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "any instant serves as the origin"
)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn restarts_fall_due_in_time_order_and_in_the_order_put_off_at_the_same_time() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.push(at(30), vec![ChildId(3)]);
        timers.push(at(10), vec![ChildId(1)]);
        timers.push(at(10), vec![ChildId(2)]);
        timers.push(at(20), vec![ChildId(4), ChildId(5)]);
        assert_eq!(timers.next_due(), Some(at(10)));
        assert!(timers.take_due(at(9)).is_empty());
        assert_eq!(
            timers.take_due(at(20)),
            [
                vec![ChildId(1)],
                vec![ChildId(2)],
                vec![ChildId(4), ChildId(5)]
            ]
        );
        assert_eq!(timers.next_due(), Some(at(30)));
        timers.clear();
        assert_eq!(timers.next_due(), None);
        assert!(timers.take_due(at(40)).is_empty());
    }
}
