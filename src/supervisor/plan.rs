//! The restart planner: what a supervisor does when one of its children
//! ends, decided from values alone.
//!
//! [`plan`] takes the strategy, the auto-shutdown policy, a view of every
//! child (restart type, significance, whether it runs), which child ended
//! and how, and the intensity window; it returns a [`Plan`]. No threads, no
//! clocks, no channels: the whole of OTP's restart matrix is a table test
//! below, and the supervisor's thread only carries plans out.

use std::time::Instant;

use super::intensity::Intensity;
use super::spec::{AutoShutdown, Strategy};
use crate::component::Restart;

/// How a child ended, as far as restarting it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Returned `Ok` on its own.
    Normal,
    /// Stopped: asked to, or (OTP's rule) a nested supervisor that gave up.
    Shutdown,
    /// Panicked, returned `Err`, went over a budget, or could not start.
    Failed,
}

/// One child as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) restart: Restart,
    pub(crate) significant: bool,
    /// Running now.
    pub(crate) running: bool,
    /// Running, or about to run again on its own (restarting, backing off).
    pub(crate) active: bool,
    /// Ended for good or removed: not part of any restart set.
    pub(crate) retired: bool,
}

/// What the planner reads of a child. A plan reads only the children it
/// concerns (for one-for-one, the child that ended), so a supervisor hands
/// it its children as they are, not a copy of every one's view: in a
/// large pool, a restart then costs no more than in a small one.
pub(crate) trait AsMember {
    fn member(&self) -> Member;
}

impl AsMember for Member {
    fn member(&self) -> Member {
        *self
    }
}

/// What to do about a child that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Leave it stopped (retiring it first if `retire`).
    Leave { retire: bool },
    /// Leave it stopped (retiring it first if `retire`), then stop every
    /// child and end normally: a significant child ended.
    AutoShutdown { retire: bool },
    /// The restart would exceed the intensity: stop every child and fail.
    GiveUp,
    /// Restart: stop `stop` (in that order), retire `retire` (temporary
    /// bystanders), then start `start` (in that order). Indices are into
    /// the members given to [`plan`].
    Restart {
        stop: Vec<usize>,
        retire: Vec<usize>,
        start: Vec<usize>,
    },
}

/// Whether a child of type `restart` that ended so is restarted (OTP's
/// matrix).
pub(crate) fn restarts(restart: Restart, ending: Ending) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => ending == Ending::Failed,
        Restart::Temporary => false,
    }
}

/// Plans the reaction to child `ended` ending so. `members[ended]` should
/// already show it stopped. A restart is recorded in `intensity` at `now`.
pub(crate) fn plan<M: AsMember>(
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
    members: &[M],
    ended: usize,
    ending: Ending,
    intensity: &mut Intensity,
    now: Instant,
) -> Plan {
    let member = |i: usize| members[i].member();
    let child = member(ended);
    if !restarts(child.restart, ending) {
        let retire = child.restart == Restart::Temporary;
        let others_significant_active = || {
            (0..members.len()).any(|i| {
                let m = member(i);
                i != ended && !m.retired && m.significant && m.active
            })
        };
        let due = child.significant
            && match auto_shutdown {
                AutoShutdown::Never => false,
                AutoShutdown::AnySignificant => true,
                AutoShutdown::AllSignificant => !others_significant_active(),
            };
        return if due {
            Plan::AutoShutdown { retire }
        } else {
            Plan::Leave { retire }
        };
    }
    if !intensity.record(now) {
        return Plan::GiveUp;
    }
    let set: Vec<(usize, Member)> = match strategy {
        Strategy::OneForOne => ended..ended + 1,
        Strategy::OneForAll => 0..members.len(),
        Strategy::RestForOne => ended..members.len(),
    }
    .map(|i| (i, member(i)))
    .filter(|(i, m)| *i == ended || !m.retired)
    .collect();
    let stop = set
        .iter()
        .rev()
        .filter(|(i, m)| *i != ended && m.running)
        .map(|(i, _)| *i)
        .collect();
    let (mut retire, mut start) = (Vec::new(), Vec::new());
    for (i, m) in set {
        if i != ended && m.restart == Restart::Temporary {
            retire.push(i);
        } else {
            start.push(i);
        }
    }
    Plan::Restart {
        stop,
        retire,
        start,
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

    fn member(restart: Restart) -> Member {
        Member {
            restart,
            significant: false,
            running: true,
            active: true,
            retired: false,
        }
    }

    fn ended(mut m: Member) -> Member {
        m.running = false;
        m.active = false;
        m
    }

    /// Plans with an intensity that always has room.
    fn decide(
        strategy: Strategy,
        auto_shutdown: AutoShutdown,
        members: &[Member],
        ended: usize,
        ending: Ending,
    ) -> Plan {
        let mut roomy = Intensity::new(100, Duration::from_secs(10));
        plan(
            strategy,
            auto_shutdown,
            members,
            ended,
            ending,
            &mut roomy,
            Instant::now(),
        )
    }

    /// OTP's matrix: restart type × how the child ended.
    #[test]
    fn the_restart_matrix() {
        use Ending::*;
        use Restart::*;
        let table = [
            (Permanent, Normal, true),
            (Permanent, Shutdown, true),
            (Permanent, Failed, true),
            (Transient, Normal, false),
            (Transient, Shutdown, false),
            (Transient, Failed, true),
            (Temporary, Normal, false),
            (Temporary, Shutdown, false),
            (Temporary, Failed, false),
        ];
        for (restart, ending, restarted) in table {
            let members = [ended(member(restart))];
            let plan = decide(
                Strategy::OneForOne,
                AutoShutdown::Never,
                &members,
                0,
                ending,
            );
            let expected = if restarted {
                Plan::Restart {
                    stop: vec![],
                    retire: vec![],
                    start: vec![0],
                }
            } else {
                Plan::Leave {
                    retire: restart == Temporary,
                }
            };
            assert_eq!(plan, expected, "{restart:?} after {ending:?}");
        }
    }

    #[test]
    fn each_strategy_picks_its_restart_set() {
        let mut members = vec![member(Restart::Permanent); 4];
        members[1] = ended(members[1]);
        let cases = [
            (Strategy::OneForOne, vec![], vec![1]),
            (Strategy::OneForAll, vec![3, 2, 0], vec![0, 1, 2, 3]),
            (Strategy::RestForOne, vec![3, 2], vec![1, 2, 3]),
        ];
        for (strategy, stop, start) in cases {
            let plan = decide(strategy, AutoShutdown::Never, &members, 1, Ending::Failed);
            assert_eq!(
                plan,
                Plan::Restart {
                    stop,
                    retire: vec![],
                    start
                },
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn temporary_bystanders_are_stopped_and_retired_not_restarted() {
        let members = [
            member(Restart::Temporary),
            ended(member(Restart::Permanent)),
            member(Restart::Transient),
        ];
        let plan = decide(
            Strategy::OneForAll,
            AutoShutdown::Never,
            &members,
            1,
            Ending::Failed,
        );
        assert_eq!(
            plan,
            Plan::Restart {
                stop: vec![2, 0],
                retire: vec![0],
                start: vec![1, 2],
            }
        );
    }

    #[test]
    fn retired_and_stopped_children_are_neither_stopped_nor_restarted() {
        let mut members = [
            member(Restart::Permanent),
            ended(member(Restart::Permanent)),
            ended(member(Restart::Permanent)),
        ];
        members[2].retired = true;
        members[0].running = false;
        let plan = decide(
            Strategy::OneForAll,
            AutoShutdown::Never,
            &members,
            1,
            Ending::Failed,
        );
        assert_eq!(
            plan,
            Plan::Restart {
                stop: vec![],
                retire: vec![],
                start: vec![0, 1],
            }
        );
    }

    #[test]
    fn exceeding_the_intensity_gives_up() {
        let members = [ended(member(Restart::Permanent))];
        let mut intensity = Intensity::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        let first = plan(
            Strategy::OneForOne,
            AutoShutdown::Never,
            &members,
            0,
            Ending::Failed,
            &mut intensity,
            t0,
        );
        assert!(matches!(first, Plan::Restart { .. }));
        let second = plan(
            Strategy::OneForOne,
            AutoShutdown::Never,
            &members,
            0,
            Ending::Failed,
            &mut intensity,
            t0,
        );
        assert_eq!(second, Plan::GiveUp);
    }

    #[test]
    fn a_child_that_is_not_restarted_does_not_count_toward_the_intensity() {
        let members = [ended(member(Restart::Transient))];
        let mut intensity = Intensity::new(0, Duration::from_secs(10));
        let plan = plan(
            Strategy::OneForOne,
            AutoShutdown::Never,
            &members,
            0,
            Ending::Normal,
            &mut intensity,
            Instant::now(),
        );
        assert_eq!(plan, Plan::Leave { retire: false });
    }

    #[test]
    fn significant_children_and_auto_shutdown() {
        let significant = |restart| Member {
            significant: true,
            ..member(restart)
        };
        let cases = [
            // (policy, the other significant child still active, expected)
            (AutoShutdown::Never, true, false),
            (AutoShutdown::Never, false, false),
            (AutoShutdown::AnySignificant, true, true),
            (AutoShutdown::AllSignificant, true, false),
            (AutoShutdown::AllSignificant, false, true),
        ];
        for (policy, other_active, due) in cases {
            let mut other = significant(Restart::Transient);
            other.active = other_active;
            other.running = other_active;
            let members = [ended(significant(Restart::Transient)), other];
            let plan = decide(Strategy::OneForOne, policy, &members, 0, Ending::Normal);
            let expected = if due {
                Plan::AutoShutdown { retire: false }
            } else {
                Plan::Leave { retire: false }
            };
            assert_eq!(plan, expected, "{policy:?}, other active: {other_active}");
        }
    }
}
