//! Supervision, modelled on Erlang/OTP's `supervisor_SUITE`: strategies, the
//! restart matrix, intensity, escalation, start rollback, ordering,
//! shutdown, significant children, dynamic children and pools, mailboxes
//! across restarts, poison messages, fault payloads and leaks.
//!
//! Waits are bounded by generous timeouts that only turn a hang into a
//! failure; no assertion depends on how long anything took. Tests that use
//! time use a manual clock.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use compartment::caps::{ClockControl, MonotonicClock};
use compartment::channel::{self, Receiver, Sender};
use compartment::event::{Event, EventKind, Events, ExitReason};
use compartment::supervisor::{ChildState, DeadLetter};
use compartment::{
    AutoShutdown, Backoff, Child, Context, ControlError, FaultKind, Grant, Inventory, ReissueError,
    Restart, Revoker, SpecError, StartError, Strategy, Supervisor, System, SystemExit,
};

const WAIT: Duration = Duration::from_secs(20);

/// What a puppet is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Panic,
    Fail,
    Exit,
}

/// A component that reports each start and then does as it is told.
#[derive(Grant)]
struct Puppet {
    commands: Receiver<Cmd>,
    starts: Sender<(String, u64)>,
}

fn puppet(g: Puppet, cx: &Context) -> Result<(), String> {
    let _ = g.starts.send((cx.path().to_owned(), cx.instance()));
    match cx.recv_untracked(&g.commands) {
        Ok(Cmd::Panic) => panic!("told to panic"),
        Ok(Cmd::Fail) => Err("told to fail".to_owned()),
        Ok(Cmd::Exit) | Err(_) => Ok(()),
    }
}

/// Puppets and the ends to drive and observe them.
struct Troupe {
    commands: Vec<Sender<Cmd>>,
    starts: Receiver<(String, u64)>,
    children: Vec<Child>,
}

fn troupe(names: &[&str]) -> Troupe {
    let (starts_tx, starts) = channel::bounded(1024).unwrap();
    let mut commands = Vec::new();
    let mut children = Vec::new();
    for name in names {
        let (tx, rx) = channel::bounded(16).unwrap();
        commands.push(tx);
        children.push(Child::new(
            *name,
            puppet,
            Puppet {
                commands: rx,
                starts: starts_tx.clone(),
            },
        ));
    }
    Troupe {
        commands,
        starts,
        children,
    }
}

fn supervisor_of(name: &str, children: Vec<Child>) -> Supervisor {
    children
        .into_iter()
        .fold(Supervisor::new(name), Supervisor::child)
}

fn next_start(starts: &Receiver<(String, u64)>) -> (String, u64) {
    starts.recv_timeout(WAIT).expect("a start within the wait")
}

fn starts(starts: &Receiver<(String, u64)>, n: usize) -> Vec<(String, u64)> {
    (0..n).map(|_| next_start(starts)).collect()
}

/// Polls `condition` every 10 ms for up to ten times [`WAIT`]; a bound that
/// turns a hang into a failure, not a timing assertion.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..(WAIT.as_millis() as usize) {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never happened: {what}");
}

/// Instances report their starts from their own threads, in whatever order
/// those run; start order is asserted on events, which the supervisor
/// publishes in order.
/// Returns once the supervisor at `supervisor` has handled every message
/// sent to it before: requests are served in order, so the answer to one
/// (here, removing a child that does not exist) comes after every exit
/// report already queued, and after the restart decisions they led to.
fn barrier(system: &System, supervisor: &str) {
    let answer = system.remove_child(format!("{supervisor}/no such child"));
    assert!(
        matches!(answer, Err(ControlError::NotFound { .. })),
        "{answer:?}"
    );
}

fn sorted(mut starts: Vec<(String, u64)>) -> Vec<(String, u64)> {
    starts.sort();
    starts
}

fn wait_for(
    events: &Events,
    what: &str,
    predicate: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    match events.wait_for(WAIT, predicate) {
        (Some(event), before) => (event, before),
        (None, before) => panic!(
            "no event: {what}; saw:\n{}",
            before
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn is(kind_matches: fn(&EventKind) -> bool, path: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| e.path == path && kind_matches(&e.kind)
}

fn restarted(e: &EventKind) -> bool {
    matches!(e, EventKind::Restarted)
}

fn stopped(e: &EventKind) -> bool {
    matches!(
        e,
        EventKind::Exited {
            reason: ExitReason::Shutdown
        }
    )
}

fn entered(events: &[Event], kind_matches: fn(&EventKind) -> bool) -> Vec<String> {
    events
        .iter()
        .filter(|e| kind_matches(&e.kind))
        .map(|e| e.path.clone())
        .collect()
}

// ----- strategies -----------------------------------------------------------

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let t = troupe(&["a", "b", "c"]);
    let system = supervisor_of("s1", t.children)
        .intensity(5, WAIT)
        .start()
        .unwrap();
    starts(&t.starts, 3);
    t.commands[1].send(Cmd::Panic).unwrap();
    assert_eq!(next_start(&t.starts), ("s1/b".to_owned(), 2));
    // The crashed instance started its successor itself; the supervisor
    // has the exit report, and shows the restart once it has handled it.
    barrier(&system, "s1");
    let status = system.status();
    assert_eq!(status.find("s1/a").unwrap().instance, 1);
    assert_eq!(status.find("s1/b").unwrap().restarts, 1);
    assert_eq!(status.find("s1/c").unwrap().instance, 1);
    assert!(t.starts.try_recv().is_err(), "nothing else restarted");
}

#[test]
fn one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() {
    let t = troupe(&["a", "b", "c"]);
    let sup = supervisor_of("s2", t.children)
        .strategy(Strategy::OneForAll)
        .intensity(5, WAIT);
    let events = sup.events(256);
    let _system = sup.start().unwrap();
    starts(&t.starts, 3);
    t.commands[1].send(Cmd::Fail).unwrap();
    let (_, before) = wait_for(&events, "c restarted", is(restarted, "s2/c"));
    assert_eq!(
        entered(&before, stopped),
        ["s2/c", "s2/a"],
        "others stopped in reverse order"
    );
    assert_eq!(
        entered(&before, restarted),
        ["s2/a", "s2/b"],
        "all restarted in start order"
    );
    assert_eq!(
        sorted(starts(&t.starts, 3)),
        [("s2/a".into(), 2), ("s2/b".into(), 2), ("s2/c".into(), 2)]
    );
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let t = troupe(&["a", "b", "c", "d"]);
    let sup = supervisor_of("s3", t.children)
        .strategy(Strategy::RestForOne)
        .intensity(5, WAIT);
    let events = sup.events(256);
    let system = sup.start().unwrap();
    starts(&t.starts, 4);
    t.commands[1].send(Cmd::Panic).unwrap();
    let (_, before) = wait_for(&events, "d restarted", is(restarted, "s3/d"));
    assert_eq!(entered(&before, stopped), ["s3/d", "s3/c"]);
    assert_eq!(entered(&before, restarted), ["s3/b", "s3/c"]);
    assert_eq!(
        sorted(starts(&t.starts, 3)),
        [("s3/b".into(), 2), ("s3/c".into(), 2), ("s3/d".into(), 2)]
    );
    assert_eq!(system.status().find("s3/a").unwrap().instance, 1);
}

// ----- the restart matrix ---------------------------------------------------

#[test]
fn permanent_transient_and_temporary_follow_the_otp_matrix() {
    // (restart type, how the instance ends, restarted?)
    let cases = [
        (Restart::Permanent, Cmd::Exit, true),
        (Restart::Permanent, Cmd::Fail, true),
        (Restart::Permanent, Cmd::Panic, true),
        (Restart::Transient, Cmd::Exit, false),
        (Restart::Transient, Cmd::Fail, true),
        (Restart::Transient, Cmd::Panic, true),
        (Restart::Temporary, Cmd::Exit, false),
        (Restart::Temporary, Cmd::Fail, false),
        (Restart::Temporary, Cmd::Panic, false),
    ];
    for (restart, ending, expected) in cases {
        let t = troupe(&["child"]);
        let child = t.children.into_iter().next().unwrap().restart(restart);
        let sup = Supervisor::new("matrix").intensity(5, WAIT).child(child);
        let events = sup.events(64);
        let system = sup.start().unwrap();
        next_start(&t.starts);
        t.commands[0].send(ending).unwrap();
        let (exit, _) = wait_for(&events, "the exit", |e| {
            e.path == "matrix/child"
                && matches!(e.kind, EventKind::Exited { .. } | EventKind::Faulted { .. })
        });
        barrier(&system, "matrix");
        let restarted = events
            .drain()
            .iter()
            .any(|e| e.path == "matrix/child" && restarted(&e.kind));
        assert_eq!(restarted, expected, "{restart:?} after {ending:?}: {exit}");
        let status = system.status();
        match (restart, expected) {
            (Restart::Temporary, _) => assert!(
                status.find("matrix/child").is_none(),
                "a temporary child is removed"
            ),
            (_, false) => assert_eq!(
                status.find("matrix/child").unwrap().state,
                ChildState::Stopped
            ),
            (_, true) => assert_eq!(status.find("matrix/child").unwrap().instance, 2),
        }
    }
}

#[test]
fn children_stopped_by_their_supervisor_are_restarted_per_strategy_not_per_type() {
    // Under one_for_all, a transient sibling stopped for the restart comes
    // back; it did not end on its own.
    let t = troupe(&["trigger", "transient"]);
    let mut children = t.children.into_iter();
    let sup = Supervisor::new("shutdown_matrix")
        .strategy(Strategy::OneForAll)
        .intensity(5, WAIT)
        .child(children.next().unwrap())
        .child(children.next().unwrap().restart(Restart::Transient));
    let _system = sup.start().unwrap();
    starts(&t.starts, 2);
    t.commands[0].send(Cmd::Panic).unwrap();
    let again = sorted(starts(&t.starts, 2));
    assert!(
        again.contains(&("shutdown_matrix/transient".into(), 2)),
        "{again:?}"
    );
}

// ----- intensity ------------------------------------------------------------

fn crash_and_see(commands: &Sender<Cmd>, events: &Events, path: &'static str) -> Event {
    commands.send(Cmd::Panic).unwrap();
    wait_for(events, "restarted or gave up", move |e| {
        (e.path == path && matches!(e.kind, EventKind::Restarted))
            || matches!(e.kind, EventKind::GaveUp { .. })
    })
    .0
}

#[test]
fn intensity_exactly_at_the_limit_is_survived_and_one_over_gives_up() {
    let (clock, control) = MonotonicClock::manual();
    let t = troupe(&["w"]);
    let sup = supervisor_of("limit", t.children)
        .intensity(3, Duration::from_secs(10))
        .clock(clock);
    let events = sup.events(256);
    let mut system = sup.start().unwrap();
    for _ in 0..3 {
        let event = crash_and_see(&t.commands[0], &events, "limit/w");
        assert_eq!(
            event.kind,
            EventKind::Restarted,
            "3 restarts within 10 s are allowed"
        );
        control.advance(Duration::from_secs(3)); // t = 3, 6, 9 s: all within the window
    }
    let event = crash_and_see(&t.commands[0], &events, "limit/w");
    assert_eq!(
        event.kind,
        EventKind::GaveUp {
            max_restarts: 3,
            period: Duration::from_secs(10)
        }
    );
    match system.wait_timeout(WAIT) {
        Some(SystemExit::Failed(fault)) => match fault.kind {
            FaultKind::Escalated { cause } => assert_eq!(cause.message(), "told to panic"),
            other => panic!("expected an escalation, got {other:?}"),
        },
        other => panic!("expected the root to fail, got {other:?}"),
    }
}

#[test]
fn the_window_includes_its_boundary() {
    let (clock, control) = MonotonicClock::manual();
    let t = troupe(&["w"]);
    let sup = supervisor_of("boundary", t.children)
        .intensity(1, Duration::from_secs(10))
        .clock(clock);
    let events = sup.events(256);
    let _system = sup.start().unwrap();
    assert_eq!(
        crash_and_see(&t.commands[0], &events, "boundary/w").kind,
        EventKind::Restarted
    );
    control.advance(Duration::from_secs(10));
    // The first restart is exactly one period old: it still counts.
    assert!(matches!(
        crash_and_see(&t.commands[0], &events, "boundary/w").kind,
        EventKind::GaveUp { .. }
    ));
}

#[test]
fn a_slow_crash_rate_is_survived() {
    let (clock, control) = MonotonicClock::manual();
    let t = troupe(&["w"]);
    let sup = supervisor_of("slow", t.children)
        .intensity(1, Duration::from_secs(10))
        .clock(clock);
    let events = sup.events(256);
    let system = sup.start().unwrap();
    for _ in 0..10 {
        assert_eq!(
            crash_and_see(&t.commands[0], &events, "slow/w").kind,
            EventKind::Restarted
        );
        control.advance(Duration::from_secs(11));
    }
    assert_eq!(system.status().find("slow/w").unwrap().restarts, 10);
}

/// `slow`, which backs off for a second (doubling) on a manual clock, and
/// `other`, under `name` with room for `max_restarts` a minute; both
/// started.
fn slow_and_other(name: &str, max_restarts: u32) -> (System, Events, Troupe, ClockControl) {
    let (clock, control) = MonotonicClock::manual();
    let mut t = troupe(&["slow", "other"]);
    let mut children = std::mem::take(&mut t.children).into_iter();
    let sup = Supervisor::new(name)
        .intensity(max_restarts, Duration::from_secs(60))
        .clock(clock)
        .child(children.next().unwrap().backoff(
            Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30)).jitter(0.0),
        ))
        .child(children.next().unwrap());
    let events = sup.events(256);
    let system = sup.start().unwrap();
    starts(&t.starts, 2);
    (system, events, t, control)
}

#[test]
fn backoff_delays_restarts_on_the_supervisor_clock_and_still_counts() {
    let (system, events, t, control) = slow_and_other("backoff", 2);

    t.commands[0].send(Cmd::Panic).unwrap();
    let (event, _) = wait_for(
        &events,
        "backing off",
        is(
            |k| matches!(k, EventKind::BackingOff { .. }),
            "backoff/slow",
        ),
    );
    assert_eq!(
        event.kind,
        EventKind::BackingOff {
            delay: Duration::from_secs(1)
        }
    );
    assert_eq!(
        system.status().find("backoff/slow").unwrap().state,
        ChildState::BackingOff
    );
    // The supervisor is not blocked: the other child is restarted meanwhile.
    t.commands[1].send(Cmd::Panic).unwrap();
    assert_eq!(next_start(&t.starts), ("backoff/other".into(), 2));
    control.advance(Duration::from_secs(1));
    assert_eq!(next_start(&t.starts), ("backoff/slow".into(), 2));

    // The second failure in a row waits twice as long; and the restarts so
    // far (slow, other, slow) exceed an intensity of 2 within 60 s.
    t.commands[0].send(Cmd::Panic).unwrap();
    let (event, _) = wait_for(&events, "gave up", |e| {
        matches!(e.kind, EventKind::GaveUp { .. })
    });
    assert_eq!(event.path, "backoff");
}

#[test]
fn a_child_removed_while_it_backs_off_is_not_started_when_its_restart_falls_due() {
    let (system, events, t, control) = slow_and_other("gone", 5);
    t.commands[0].send(Cmd::Panic).unwrap();
    wait_for(
        &events,
        "backing off",
        is(|k| matches!(k, EventKind::BackingOff { .. }), "gone/slow"),
    );
    system.remove_child("gone/slow").unwrap();
    control.advance(Duration::from_secs(2));
    // Two round trips: the first may be served before the supervisor
    // wakes for the restart that fell due, the second is served after.
    barrier(&system, "gone");
    barrier(&system, "gone");
    assert!(t.starts.try_recv().is_err(), "nothing started again");
    assert!(system.status().find("gone/slow").is_none());
    // The supervisor goes on serving its other child.
    t.commands[1].send(Cmd::Panic).unwrap();
    assert_eq!(next_start(&t.starts), ("gone/other".into(), 2));
}

// ----- trees ------------------------------------------------------------------

#[test]
fn escalation_travels_through_three_levels() {
    let t = troupe(&["leaf"]);
    let leaf_sup = supervisor_of("inner", t.children).intensity(0, WAIT);
    let middle = Supervisor::new("middle")
        .intensity(0, WAIT)
        .supervisor(leaf_sup);
    let root = Supervisor::new("root")
        .intensity(0, WAIT)
        .supervisor(middle);
    let events = root.events(256);
    let mut system = root.start().unwrap();
    assert_eq!(next_start(&t.starts), ("root/middle/inner/leaf".into(), 1));
    t.commands[0].send(Cmd::Panic).unwrap();

    let exit = system.wait_timeout(WAIT).expect("the root gives up");
    let SystemExit::Failed(fault) = exit else {
        panic!("expected failure, got {exit:?}")
    };
    let mut chain = vec![fault.path.clone()];
    let mut cause = fault;
    while let FaultKind::Escalated { cause: inner } = cause.kind {
        chain.push(inner.path.clone());
        cause = *inner;
    }
    assert_eq!(
        chain,
        [
            "root",
            "root/middle",
            "root/middle/inner",
            "root/middle/inner/leaf"
        ]
    );
    let gave_up: Vec<String> = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::GaveUp { .. }))
        .map(|e| e.path)
        .collect();
    assert_eq!(gave_up, ["root/middle/inner", "root/middle", "root"]);
}

#[test]
fn a_parent_restarts_a_nested_supervisor_that_gave_up_with_fresh_children() {
    let t = troupe(&["leaf"]);
    let inner = supervisor_of("inner", t.children).intensity(0, WAIT);
    let sup = Supervisor::new("outer")
        .intensity(3, WAIT)
        .supervisor(inner);
    let events = sup.events(64);
    let system = sup.start().unwrap();
    next_start(&t.starts);
    t.commands[0].send(Cmd::Fail).unwrap();
    // A new instance of the nested supervisor starts its child afresh.
    assert_eq!(next_start(&t.starts), ("outer/inner/leaf".into(), 1));
    wait_for(&events, "inner restarted", is(restarted, "outer/inner"));
    let status = system.status();
    let inner = status.find("outer/inner").unwrap();
    assert_eq!((inner.instance, inner.restarts), (2, 1));
    assert!(matches!(
        inner.last_fault.as_ref().unwrap().kind,
        FaultKind::Escalated { .. }
    ));
}

/// A grant whose re-issue always fails, as if the process were out of
/// descriptors.
struct Unissuable;

impl Grant for Unissuable {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Err(ReissueError::new(
            "test capability",
            std::io::Error::other("cannot duplicate"),
        ))
    }
    fn attach_revoker(&mut self, _: &Revoker) {}
    fn visit<'g>(&'g self, _: &mut Inventory<'g>) {}
}

fn never_runs(_: Unissuable, _: &Context) -> Result<(), String> {
    Ok(())
}

#[test]
fn a_child_that_fails_to_start_rolls_back_the_started_ones_in_reverse() {
    let t = troupe(&["a", "b"]);
    let sup = supervisor_of("rollback", t.children).child(Child::new("c", never_runs, Unissuable));
    let events = sup.events(256);
    let err = sup.start().unwrap_err();
    match &err {
        StartError::ChildFailed { fault } => {
            assert_eq!(fault.path, "rollback/c");
            assert!(fault.message().contains("cannot duplicate"), "{fault}");
        }
        other => panic!("expected ChildFailed, got {other:?}"),
    }
    assert_eq!(
        sorted(starts(&t.starts, 2)),
        [("rollback/a".into(), 1), ("rollback/b".into(), 1)]
    );
    let all = events.drain();
    assert_eq!(
        entered(&all, |k| matches!(k, EventKind::Started)),
        ["rollback/a", "rollback/b"]
    );
    assert_eq!(entered(&all, stopped), ["rollback/b", "rollback/a"]);
}

#[test]
fn children_start_in_order_and_stop_in_reverse_order() {
    let t = troupe(&["first", "second", "third"]);
    let inner = troupe(&["x", "y"]);
    let sup =
        supervisor_of("order", t.children).supervisor(supervisor_of("nested", inner.children));
    let events = sup.events(256);
    let system = sup.start().unwrap();
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
    let all = events.drain();
    assert_eq!(
        entered(&all, |k| matches!(k, EventKind::Started)),
        [
            "order/first",
            "order/second",
            "order/third",
            "order/nested/x",
            "order/nested/y",
            "order/nested",
            "order"
        ]
    );
    assert_eq!(
        entered(&all, stopped),
        [
            "order/nested/y",
            "order/nested/x",
            "order/nested",
            "order/third",
            "order/second",
            "order/first"
        ]
    );
}

// ----- shutdown ---------------------------------------------------------------

static STUBBORN_SAW: Mutex<Option<String>> = Mutex::new(None);
static STUBBORN_DONE: AtomicBool = AtomicBool::new(false);
/// Set by the test once the shutdown has given up on the stubborn child.
static STUBBORN_RELEASE: AtomicBool = AtomicBool::new(false);

#[derive(Grant)]
struct Stubborn {
    out: Sender<u32>,
}

/// Ignores cancellation for a while, then finds its grant revoked.
fn stubborn(g: Stubborn, _: &Context) -> Result<(), String> {
    while !STUBBORN_RELEASE.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    let outcome = g.out.try_send(1);
    *STUBBORN_SAW.lock().unwrap() = Some(match outcome {
        Err(e) if e.is_revoked() => "revoked".into(),
        other => format!("{other:?}"),
    });
    STUBBORN_DONE.store(true, Ordering::SeqCst);
    Ok(())
}

#[test]
fn an_instance_that_ignores_shutdown_is_revoked_detached_and_counted() {
    let t = troupe(&["before", "after"]);
    let mut children = t.children.into_iter();
    let (out, received) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("stubborn")
        .child(children.next().unwrap())
        .child(Child::new("mule", stubborn, Stubborn { out }).shutdown(Duration::from_millis(50)))
        .child(children.next().unwrap());
    let events = sup.events(256);
    let system = sup.start().unwrap();
    starts(&t.starts, 2);
    let exit = system.shutdown();
    assert_eq!(
        exit,
        SystemExit::Shutdown,
        "the rest of the tree still shut down"
    );
    let all = events.drain();
    let timed_out: Vec<&Event> = all
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ShutdownTimedOut { .. }))
        .collect();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].path, "stubborn/mule");
    assert_eq!(
        entered(&all, stopped),
        ["stubborn/after", "stubborn/before"]
    );

    // The detached thread finds every capability revoked when it wakes.
    STUBBORN_RELEASE.store(true, Ordering::SeqCst);
    eventually("the detached thread finishes", || {
        STUBBORN_DONE.load(Ordering::SeqCst)
    });
    assert_eq!(STUBBORN_SAW.lock().unwrap().as_deref(), Some("revoked"));
    assert!(received.try_recv().is_err(), "nothing got through");
}

#[test]
fn leaked_threads_show_in_status() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    fn deaf(_: (), _: &Context) -> Result<(), String> {
        while !RELEASE.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(5));
        }
        Ok(())
    }
    let system = Supervisor::new("deaf")
        .child(Child::new("d", deaf, ()).shutdown(Duration::from_millis(10)))
        .start()
        .unwrap();
    system.remove_child("deaf/d").unwrap();
    assert_eq!(system.status().leaked_threads, 1);
    assert_eq!(system.leaked_threads(), 1);
    RELEASE.store(true, Ordering::SeqCst);
}

#[test]
fn a_temporary_bystander_under_one_for_all_is_not_restarted() {
    let t = troupe(&["a", "temp", "c"]);
    let mut children = t.children.into_iter();
    let sup = Supervisor::new("bystander")
        .strategy(Strategy::OneForAll)
        .intensity(5, WAIT)
        .child(children.next().unwrap())
        .child(children.next().unwrap().restart(Restart::Temporary))
        .child(children.next().unwrap());
    let events = sup.events(256);
    let system = sup.start().unwrap();
    starts(&t.starts, 3);
    t.commands[0].send(Cmd::Panic).unwrap();
    let again = sorted(starts(&t.starts, 2));
    assert_eq!(
        again,
        [("bystander/a".into(), 2), ("bystander/c".into(), 2)]
    );
    barrier(&system, "bystander");
    assert!(system.status().find("bystander/temp").is_none());
    assert!(
        !events
            .drain()
            .iter()
            .any(|e| e.path == "bystander/temp" && restarted(&e.kind))
    );
}

// ----- significant children ----------------------------------------------------

#[test]
fn any_significant_child_ending_shuts_the_supervisor_down() {
    let t = troupe(&["job", "helper"]);
    let mut children = t.children.into_iter();
    let sup = Supervisor::new("any")
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(
            children
                .next()
                .unwrap()
                .restart(Restart::Transient)
                .significant(true),
        )
        .child(children.next().unwrap());
    let events = sup.events(64);
    let mut system = sup.start().unwrap();
    starts(&t.starts, 2);
    t.commands[0].send(Cmd::Exit).unwrap();
    assert_eq!(system.wait_timeout(WAIT), Some(SystemExit::AutoShutdown));
    let (event, _) = wait_for(&events, "auto-shutdown", |e| {
        matches!(e.kind, EventKind::AutoShutdown { .. })
    });
    assert_eq!(
        event.kind,
        EventKind::AutoShutdown {
            trigger: "any/job".into()
        }
    );
}

#[test]
fn all_significant_waits_for_the_last_significant_child() {
    let t = troupe(&["one", "two"]);
    let mut children = t.children.into_iter();
    let sup = Supervisor::new("all")
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(
            children
                .next()
                .unwrap()
                .restart(Restart::Temporary)
                .significant(true),
        )
        .child(
            children
                .next()
                .unwrap()
                .restart(Restart::Transient)
                .significant(true),
        );
    let mut system = sup.start().unwrap();
    starts(&t.starts, 2);
    t.commands[0].send(Cmd::Fail).unwrap();
    eventually("one has ended and been retired", || {
        system.status().find("all/one").is_none()
    });
    // The supervisor answers, so it did not shut itself down.
    barrier(&system, "all");
    assert_eq!(
        system.wait_timeout(Duration::ZERO),
        None,
        "two is still active"
    );
    // A transient child that fails is restarted, so it does not count as ended.
    t.commands[1].send(Cmd::Panic).unwrap();
    assert_eq!(next_start(&t.starts), ("all/two".into(), 2));
    t.commands[1].send(Cmd::Exit).unwrap();
    assert_eq!(system.wait_timeout(WAIT), Some(SystemExit::AutoShutdown));
}

#[test]
fn invalid_specifications_are_refused_with_typed_errors() {
    let child = |name: &str| troupe(&[name]).children.into_iter().next().unwrap();
    let err = |sup: Supervisor| match sup.start() {
        Err(StartError::Invalid(e)) => e,
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert!(matches!(
        err(Supervisor::new("v").child(child("x")).child(child("x"))),
        SpecError::DuplicateName { .. }
    ));
    assert!(matches!(
        err(Supervisor::new("v").intensity(1, Duration::ZERO)),
        SpecError::ZeroPeriod { .. }
    ));
    assert!(matches!(
        err(Supervisor::new("v")
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(child("x").significant(true))),
        SpecError::SignificantPermanent { .. }
    ));
    assert!(matches!(
        err(Supervisor::new("v").child(child("x").restart(Restart::Transient).significant(true))),
        SpecError::SignificantWithoutAutoShutdown { .. }
    ));
    for bad in ["", "a/b", "a#1", "tab\t"] {
        assert!(
            matches!(
                err(Supervisor::new("v").child(child(bad))),
                SpecError::InvalidName { .. }
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        err(
            Supervisor::new("v").child(child("x").backoff(Backoff::exponential(
                Duration::from_secs(2),
                Duration::from_secs(1)
            )))
        ),
        SpecError::InvalidBackoff { .. }
    ));
    assert!(matches!(
        err(Supervisor::new("v").child(child("x").poison_threshold(0))),
        SpecError::ZeroPoisonThreshold { .. }
    ));
    assert!(matches!(
        err(Supervisor::pool("p", child("x"), 2).auto_shutdown(AutoShutdown::AllSignificant)),
        SpecError::AutoShutdownInPool { .. }
    ));
    let nested = Supervisor::new("inner").intensity(1, Duration::ZERO);
    assert!(
        matches!(err(Supervisor::new("v").supervisor(nested)), SpecError::ZeroPeriod { supervisor } if supervisor == "v/inner")
    );
}

// ----- dynamic children and pools ----------------------------------------------

#[test]
fn children_can_be_added_and_removed_at_run_time() {
    let t = troupe(&["static"]);
    let system = supervisor_of("dyn", t.children)
        .supervisor(Supervisor::new("nested"))
        .start()
        .unwrap();
    next_start(&t.starts);
    let extra = troupe(&["extra"]);
    let mut extras = extra.children.into_iter();
    system
        .add_child("dyn/nested", extras.next().unwrap())
        .unwrap();
    assert_eq!(next_start(&extra.starts), ("dyn/nested/extra".into(), 1));
    let again = troupe(&["extra"]).children.into_iter().next().unwrap();
    assert!(
        system.add_child("dyn/nested", again).is_err(),
        "duplicate names are refused"
    );
    assert!(
        system
            .add_child(
                "dyn/static",
                troupe(&["z"]).children.into_iter().next().unwrap()
            )
            .is_err()
    );
    assert!(
        system
            .add_child(
                "dyn/missing",
                troupe(&["z"]).children.into_iter().next().unwrap()
            )
            .is_err()
    );

    system.remove_child("dyn/nested/extra").unwrap();
    assert!(system.status().find("dyn/nested/extra").is_none());
    assert!(system.remove_child("dyn/nested/extra").is_err());
    // Removing a child drops its grant: nothing receives on its mailbox now.
    assert!(
        extra.commands[0]
            .send(Cmd::Panic)
            .unwrap_err()
            .is_disconnected()
    );
}

#[test]
fn taking_children_out_keeps_every_other_childs_status_its_own() {
    let first = troupe(&["a", "b"]);
    let sup = supervisor_of("middle", first.children).intensity(10, WAIT);
    let events = sup.events(64);
    let system = sup.start().unwrap();
    starts(&first.starts, 2);
    let added = troupe(&["c", "d", "e"]);
    for child in added.children {
        system.add_child("middle", child).unwrap();
    }
    starts(&added.starts, 3);
    let listed = |system: &System| -> Vec<(String, u64)> {
        let status = system.status();
        let mut children: Vec<_> = status
            .nodes()
            .into_iter()
            .skip(1)
            .map(|child| (child.path.clone(), child.restarts))
            .collect();
        children.sort();
        children
    };
    let entry = |path: &str, restarts: u64| (path.to_owned(), restarts);

    // One added at run time from between two others, then one of the
    // specification's.
    system.remove_child("middle/d").unwrap();
    assert_eq!(
        listed(&system),
        [
            entry("middle/a", 0),
            entry("middle/b", 0),
            entry("middle/c", 0),
            entry("middle/e", 0)
        ]
    );
    system.remove_child("middle/a").unwrap();
    assert_eq!(
        listed(&system),
        [
            entry("middle/b", 0),
            entry("middle/c", 0),
            entry("middle/e", 0)
        ]
    );
    // What happens to the children after them lands on their own entries.
    added.commands[2].send(Cmd::Panic).unwrap();
    wait_for(&events, "e's restart", is(restarted, "middle/e"));
    added.commands[0].send(Cmd::Panic).unwrap();
    wait_for(&events, "c's restart", is(restarted, "middle/c"));
    assert_eq!(
        listed(&system),
        [
            entry("middle/b", 0),
            entry("middle/c", 1),
            entry("middle/e", 1)
        ]
    );
}

#[test]
fn a_name_is_free_again_once_its_child_is_taken_out() {
    let first = troupe(&["a", "b"]);
    let system = supervisor_of("names", first.children).start().unwrap();
    starts(&first.starts, 2);
    let one = |name: &str| troupe(&[name]).children.into_iter().next().unwrap();
    let added = troupe(&["c"]);
    system
        .add_child("names", added.children.into_iter().next().unwrap())
        .unwrap();
    for name in ["a", "b", "c"] {
        assert!(
            matches!(
                system.add_child("names", one(name)),
                Err(ControlError::Start(StartError::Invalid(
                    SpecError::DuplicateName { .. }
                )))
            ),
            "{name} is taken"
        );
    }
    // One of the specification's children and one added at run time.
    system.remove_child("names/a").unwrap();
    system.remove_child("names/c").unwrap();
    for name in ["a", "c"] {
        let again = troupe(&[name]);
        system
            .add_child("names", again.children.into_iter().next().unwrap())
            .unwrap();
        assert_eq!(next_start(&again.starts), (format!("names/{name}"), 1));
        assert!(system.status().find(&format!("names/{name}")).is_some());
    }
    assert!(
        system.add_child("names", one("b")).is_err(),
        "b is still taken"
    );
}

static POOL_STOPPING: AtomicUsize = AtomicUsize::new(0);
static POOL_TOGETHER: AtomicUsize = AtomicUsize::new(0);

#[derive(Grant)]
struct Member {
    commands: Receiver<Cmd>,
    starts: Sender<(String, u64)>,
}

/// On cancellation, waits until every member of its pool is stopping: a
/// pool that stopped members one at a time would time this out.
fn member(g: Member, cx: &Context) -> Result<(), String> {
    let _ = g.starts.send((cx.path().to_owned(), cx.instance()));
    loop {
        match cx.recv_untracked(&g.commands) {
            Ok(Cmd::Panic) => panic!("member told to panic"),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    POOL_STOPPING.fetch_add(1, Ordering::SeqCst);
    for _ in 0..500 {
        if POOL_STOPPING.load(Ordering::SeqCst) >= 4 {
            POOL_TOGETHER.fetch_add(1, Ordering::SeqCst);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[test]
fn a_pool_restarts_members_independently_grows_and_stops_in_parallel() {
    let (commands, rx) = channel::bounded(16).unwrap();
    let (starts_tx, starts_rx) = channel::bounded(64).unwrap();
    let template = Child::new(
        "worker",
        member,
        Member {
            commands: rx,
            starts: starts_tx,
        },
    )
    .shutdown(Duration::from_secs(3));
    let sup = Supervisor::new("pooled")
        .supervisor(Supervisor::pool("pool", template, 3).intensity(5, WAIT));
    let events = sup.events(256);
    let system = sup.start().unwrap();
    let mut first: Vec<String> = starts(&starts_rx, 3).into_iter().map(|(p, _)| p).collect();
    first.sort();
    assert_eq!(
        first,
        [
            "pooled/pool/worker-0",
            "pooled/pool/worker-1",
            "pooled/pool/worker-2"
        ]
    );

    // The members share one mailbox; whichever takes the command restarts alone.
    commands.send(Cmd::Panic).unwrap();
    let (path, instance) = next_start(&starts_rx);
    assert_eq!(instance, 2);
    barrier(&system, "pooled/pool");
    assert_eq!(
        events.drain().iter().filter(|e| restarted(&e.kind)).count(),
        1,
        "only the member that crashed restarted"
    );
    let status = system.status();
    let restarted: Vec<_> = status
        .find("pooled/pool")
        .unwrap()
        .children
        .iter()
        .filter(|c| c.restarts == 1)
        .collect();
    assert_eq!(restarted.len(), 1);
    assert_eq!(restarted[0].path, path);

    assert_eq!(
        system.add_pool_member("pooled/pool").unwrap(),
        "pooled/pool/worker-3"
    );
    assert_eq!(next_start(&starts_rx).0, "pooled/pool/worker-3");
    assert!(system.add_pool_member("pooled").is_err(), "not a pool");

    assert_eq!(system.shutdown(), SystemExit::Shutdown);
    assert_eq!(
        POOL_TOGETHER.load(Ordering::SeqCst),
        4,
        "all four members were stopping at once"
    );
    assert!(
        !events
            .drain()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ShutdownTimedOut { .. }))
    );
}

static STAGGERED_RELEASE_LAST: AtomicBool = AtomicBool::new(false);
static STAGGERED_RELEASE_DEAF: AtomicBool = AtomicBool::new(false);
static STAGGERED_DONE: AtomicBool = AtomicBool::new(false);

/// Waits (bounded) until `flag` is raised, from inside a component.
fn until_raised(flag: &AtomicBool) {
    for _ in 0..(WAIT.as_millis() as usize) {
        if flag.load(Ordering::SeqCst) {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

/// A member of the staggered pool: `w-0` ignores its cancellation until
/// released; `w-5`, the member a stop in reverse start order comes to
/// first, stops once cancelled and released; the others stop when asked.
fn staggered(ready: Sender<String>, cx: &Context) -> Result<(), String> {
    let name = cx.path().rsplit('/').next().unwrap_or_default().to_owned();
    ready.send(name.clone()).map_err(|e| e.to_string())?;
    if name == "w-0" {
        until_raised(&STAGGERED_RELEASE_DEAF);
        STAGGERED_DONE.store(true, Ordering::SeqCst);
        return Ok(());
    }
    let _ = cx.sleep(Duration::from_secs(3600));
    if name == "w-5" {
        until_raised(&STAGGERED_RELEASE_LAST);
    }
    Ok(())
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test stops the tree from a thread of its own while it watches the events"
)]
fn a_stopping_pool_takes_exits_as_they_come_and_times_out_only_the_member_that_ignores_it() {
    // The shutdown timeout runs on a manual clock: no member is overdue
    // until the test says so, however loaded the machine.
    let (clock, control) = MonotonicClock::manual();
    let (ready, members) = channel::bounded(8).unwrap();
    let template = Child::new("w", staggered, ready).shutdown(Duration::from_secs(5));
    let pool = Supervisor::pool("stagger", template, 6).clock(clock);
    let events = pool.events(256);
    let system = pool.start().unwrap();
    for _ in 0..6 {
        members.recv_timeout(WAIT).unwrap();
    }
    let stopping = std::thread::spawn(move || system.shutdown());
    // The members that stopped are reported while the one the stop asked
    // first still runs.
    let early = ["stagger/w-1", "stagger/w-2", "stagger/w-3", "stagger/w-4"];
    for _ in early {
        wait_for(&events, "a member stopped", |e| {
            stopped(&e.kind) && early.contains(&e.path.as_str())
        });
    }
    STAGGERED_RELEASE_LAST.store(true, Ordering::SeqCst);
    wait_for(
        &events,
        "the last member stopped",
        is(stopped, "stagger/w-5"),
    );
    // Only the member that ignores the stop is left, until its timeout.
    control.advance(Duration::from_secs(6));
    assert_eq!(stopping.join().unwrap(), SystemExit::Shutdown);
    let rest = events.drain();
    assert!(entered(&rest, stopped).is_empty(), "{rest:?}");
    let timed_out = entered(&rest, |kind| {
        matches!(kind, EventKind::ShutdownTimedOut { .. })
    });
    assert_eq!(timed_out, ["stagger/w-0"]);
    // Detached, not waited for: it runs on until released.
    STAGGERED_RELEASE_DEAF.store(true, Ordering::SeqCst);
    eventually("the detached member finishes", || {
        STAGGERED_DONE.load(Ordering::SeqCst)
    });
}

// ----- mailboxes ------------------------------------------------------------------

#[derive(Grant)]
struct Relay {
    inbox: Receiver<u32>,
    out: Sender<u32>,
}

/// Forwards every message, then crashes after every third one (after marking
/// it handled): each crash leaves the rest of the queue for the next instance.
fn relay(g: Relay, cx: &Context) -> Result<(), String> {
    for n in cx.recv_iter(&g.inbox) {
        cx.send(&g.out, n).map_err(|e| e.to_string())?;
        cx.done();
        if n % 3 == 0 {
            panic!("crash after {n}");
        }
    }
    Ok(())
}

#[test]
fn no_message_is_lost_across_a_hundred_restarts() {
    let (tx, inbox) = channel::bounded(400).unwrap();
    let (out, results) = channel::bounded(400).unwrap();
    for n in 1..=300 {
        tx.send(n).unwrap();
    }
    let system = Supervisor::new("relay")
        .intensity(1000, WAIT)
        .forward_panics(false)
        .child(Child::new("r", relay, Relay { inbox, out }))
        .start()
        .unwrap();
    let received: Vec<u32> = (0..300)
        .map(|_| results.recv_timeout(WAIT).unwrap())
        .collect();
    assert_eq!(
        received,
        (1..=300).collect::<Vec<_>>(),
        "every message, once, in order"
    );
    eventually("100 restarts", || {
        system.status().find("relay/r").unwrap().restarts >= 100
    });
    assert_eq!(system.status().find("relay/r").unwrap().restarts, 100);
}

static CRASHED_ON_SEVEN: AtomicBool = AtomicBool::new(false);

fn crash_once_on_seven(g: Relay, cx: &Context) -> Result<(), String> {
    for n in cx.recv_iter(&g.inbox) {
        if n == 7 && !CRASHED_ON_SEVEN.swap(true, Ordering::SeqCst) {
            panic!("seven");
        }
        cx.send(&g.out, n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn the_message_in_flight_is_reported_and_delivered_again() {
    let (tx, inbox) = channel::bounded(16).unwrap();
    let (out, results) = channel::bounded(16).unwrap();
    let sup = Supervisor::new("inflight")
        .forward_panics(false)
        .child(Child::new("r", crash_once_on_seven, Relay { inbox, out }));
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    for n in 1..=10 {
        tx.send(n).unwrap();
    }
    let received: Vec<u32> = (0..10)
        .map(|_| results.recv_timeout(WAIT).unwrap())
        .collect();
    assert_eq!(received, (1..=10).collect::<Vec<_>>());
    let (event, _) = wait_for(&events, "the fault", |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    let EventKind::Faulted { fault } = event.kind else {
        unreachable!()
    };
    let in_flight = fault.in_flight.expect("the fault names the message");
    assert_eq!(
        (in_flight.description.as_str(), in_flight.attempts),
        ("7", 1)
    );
}

#[derive(Debug, Clone, PartialEq)]
enum Job {
    Fine(u32),
    Poison,
}

#[derive(Grant)]
struct Worker {
    jobs: Receiver<Job>,
    done: Sender<u32>,
}

fn choke_on_poison(g: Worker, cx: &Context) -> Result<(), String> {
    for job in cx.recv_iter(&g.jobs) {
        match job {
            Job::Fine(n) => cx.send(&g.done, n).map_err(|e| e.to_string())?,
            Job::Poison => panic!("cannot digest this"),
        }
    }
    Ok(())
}

#[test]
fn a_poison_message_is_dead_lettered_instead_of_crash_looping() {
    let (tx, jobs) = channel::bounded(16).unwrap();
    let (done, finished) = channel::bounded(16).unwrap();
    let (sink, dead) = channel::bounded::<DeadLetter>(4).unwrap();
    let sup = Supervisor::new("poison")
        .intensity(10, WAIT)
        .forward_panics(false)
        .dead_letters(sink)
        .child(Child::new("w", choke_on_poison, Worker { jobs, done }).poison_threshold(3));
    let events = sup.events(256);
    let system = sup.start().unwrap();
    tx.send(Job::Fine(1)).unwrap();
    tx.send(Job::Poison).unwrap();
    tx.send(Job::Fine(2)).unwrap();
    assert_eq!(finished.recv_timeout(WAIT).unwrap(), 1);
    assert_eq!(
        finished.recv_timeout(WAIT).unwrap(),
        2,
        "work continues after the poison is removed"
    );
    let letter = dead.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (
            letter.path.as_str(),
            letter.attempts,
            letter.description.as_str()
        ),
        ("poison/w", 3, "Poison")
    );
    assert_eq!(letter.channel, tx.id());
    assert_eq!(letter.downcast::<Job>().unwrap(), Job::Poison);
    let (_, before) = wait_for(&events, "dead-lettered", |e| {
        matches!(e.kind, EventKind::DeadLettered { .. })
    });
    let attempts: Vec<u32> = before
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Faulted { fault } => fault.in_flight.as_ref().map(|m| m.attempts),
            _ => None,
        })
        .collect();
    assert_eq!(
        attempts,
        [1, 2, 3],
        "each crash names the message and the attempt"
    );
    assert_eq!(system.status().find("poison/w").unwrap().restarts, 3);
}

// ----- faults ------------------------------------------------------------------------

#[derive(Debug)]
struct Opaque;

fn panics_with(payload: u8, _: &Context) -> Result<(), String> {
    match payload {
        0 => std::panic::panic_any(42u32),
        1 => std::panic::panic_any(Opaque),
        _ => panic!("formatted {}", payload),
    }
}

fn fault_of(sup: Supervisor, path: &'static str) -> compartment::Fault {
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let (event, _) = wait_for(&events, "a fault", move |e| {
        e.path == path && matches!(e.kind, EventKind::Faulted { .. })
    });
    match event.kind {
        EventKind::Faulted { fault } => fault,
        _ => unreachable!(),
    }
}

#[test]
fn panic_payloads_become_typed_faults_with_locations() {
    for (payload, expected) in [
        (0u8, "non-string panic payload of type `u32`: 42"),
        (1, "non-string panic payload of an unknown type"),
        (2, "formatted 2"),
    ] {
        let sup = Supervisor::new("payloads")
            .forward_panics(false)
            .child(Child::new("p", panics_with, payload).restart(Restart::Temporary));
        let fault = fault_of(sup, "payloads/p");
        assert!(fault.message().starts_with(expected), "{}", fault.message());
        assert_eq!((fault.path.as_str(), fault.instance), ("payloads/p", 1));
        match &fault.kind {
            FaultKind::Panic { location, .. } => {
                let location = location.as_ref().expect("the hook saw where");
                assert!(location.file.ends_with("supervision.rs"), "{location}");
                assert!(location.line > 0 && location.column > 0);
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    }
}

/// Catches a panic of its own when dropped: while the entry's panic
/// unwinds past it, the panic hook sees this one last.
struct CatchesInDrop;

impl Drop for CatchesInDrop {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| panic!("caught inside a drop"));
    }
}

/// The line of the entry's own panic in
/// [`panics_past_a_drop_that_panics_and_catches`].
static ESCAPING_LINE: AtomicU32 = AtomicU32::new(0);

/// Panics with a string (`0`) or a number (`1`) past a [`CatchesInDrop`].
fn panics_past_a_drop_that_panics_and_catches(payload: u8, _: &Context) -> Result<(), String> {
    let _guard = CatchesInDrop;
    if payload == 0 {
        ESCAPING_LINE.store(line!() + 1, Ordering::SeqCst);
        panic!("the entry's own panic");
    }
    ESCAPING_LINE.store(line!() + 1, Ordering::SeqCst);
    std::panic::panic_any(7u32);
}

#[test]
fn a_fault_names_the_panic_that_escaped_not_one_caught_while_unwinding() {
    for (payload, message) in [
        (0u8, "the entry's own panic"),
        (1, "non-string panic payload of type `u32`: 7"),
    ] {
        let sup = Supervisor::new("unwinding").forward_panics(false).child(
            Child::new("u", panics_past_a_drop_that_panics_and_catches, payload)
                .restart(Restart::Temporary),
        );
        let fault = fault_of(sup, "unwinding/u");
        assert_eq!(fault.message(), message);
        let FaultKind::Panic { location, .. } = &fault.kind else {
            panic!("expected a panic, got {fault}");
        };
        let line = location.as_ref().expect("the hook saw where").line;
        assert_eq!(line, ESCAPING_LINE.load(Ordering::SeqCst), "{fault}");
    }
}

/// A panic payload whose own `Drop` panics.
struct Booby;

impl Drop for Booby {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

fn panics_with_a_booby_trapped_payload(_: (), _: &Context) -> Result<(), String> {
    std::panic::panic_any(Booby);
}

#[test]
fn a_payload_whose_drop_panics_is_handled() {
    let sup = Supervisor::new("booby")
        .forward_panics(false)
        .intensity(5, WAIT)
        .child(Child::new("b", panics_with_a_booby_trapped_payload, ()));
    let events = sup.events(64);
    let system = sup.start().unwrap();
    let (event, _) = wait_for(&events, "a fault", |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    let EventKind::Faulted { fault } = event.kind else {
        unreachable!()
    };
    assert!(
        fault.message().starts_with("non-string panic payload"),
        "{fault}"
    );
    // The supervisor survived and restarted the child.
    wait_for(&events, "a restart", is(restarted, "booby/b"));
    assert!(system.status().find("booby/b").unwrap().restarts >= 1);
}

#[derive(Debug)]
struct Layered;

impl std::fmt::Display for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not resize")
    }
}

impl std::error::Error for Layered {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&ROOT_CAUSE)
    }
}

static ROOT_CAUSE: std::fmt::Error = std::fmt::Error;

fn returns_layered(_: (), _: &Context) -> Result<(), Layered> {
    Err(Layered)
}

#[test]
fn an_error_return_is_a_fault_with_its_source_chain() {
    let sup = Supervisor::new("errors")
        .child(Child::new("e", returns_layered, ()).restart(Restart::Temporary));
    let fault = fault_of(sup, "errors/e");
    assert_eq!(
        fault.kind,
        FaultKind::Error {
            message: "could not resize".into(),
            sources: vec!["an error occurred when formatting an argument".into()],
        }
    );
}

/// An instance's copy panics when dropped; the granting side's original
/// does not. Unless `even_while_unwinding`, a copy dropped while a panic is
/// already unwinding stays quiet; otherwise that is a panic inside a panic.
struct PanicsOnDrop {
    armed: bool,
    even_while_unwinding: bool,
}

impl PanicsOnDrop {
    fn original(even_while_unwinding: bool) -> Self {
        Self {
            armed: false,
            even_while_unwinding,
        }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.armed && (self.even_while_unwinding || !std::thread::panicking()) {
            panic!("the grant's drop panicked");
        }
    }
}

impl Grant for PanicsOnDrop {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(PanicsOnDrop {
            armed: true,
            even_while_unwinding: self.even_while_unwinding,
        })
    }
    fn attach_revoker(&mut self, _: &Revoker) {}
    fn visit<'g>(&'g self, _: &mut Inventory<'g>) {}
}

fn returns_ok_then_drops(_: PanicsOnDrop, _: &Context) -> Result<(), String> {
    Ok(())
}

#[test]
fn a_panic_in_the_grants_drop_is_a_fault_like_any_other() {
    let sup = Supervisor::new("dropper").forward_panics(false).child(
        Child::new("d", returns_ok_then_drops, PanicsOnDrop::original(false))
            .restart(Restart::Temporary),
    );
    let fault = fault_of(sup, "dropper/d");
    assert_eq!(fault.message(), "the grant's drop panicked");
}

fn panics_holding_it(_: PanicsOnDrop, _: &Context) -> Result<(), String> {
    panic!("first panic");
}

/// Run only in a child process by the test below.
#[test]
#[ignore = "aborts the process on purpose; run by a_panic_in_drop_during_unwinding_aborts"]
fn double_panic_scenario() {
    let system = Supervisor::new("double")
        .child(Child::new(
            "d",
            panics_holding_it,
            PanicsOnDrop::original(true),
        ))
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    drop(system);
}

#[test]
fn a_panic_in_drop_during_unwinding_aborts_the_process_as_documented() {
    use std::os::unix::process::ExitStatusExt;
    let output = common::scenario("double_panic_scenario")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(
        output.status.signal(),
        Some(6),
        "SIGABRT: {:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("panic in a destructor during cleanup"),
        "{stderr}"
    );
}

#[test]
fn instance_threads_are_named_after_path_and_instance() {
    #[derive(Grant)]
    struct Names {
        out: Sender<String>,
    }
    fn report_name(g: Names, _: &Context) -> Result<(), String> {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        g.out.send(name).map_err(|e| e.to_string())?;
        Err("again".into())
    }
    let (out, names) = channel::bounded(8).unwrap();
    let _system = Supervisor::new("named")
        .intensity(5, WAIT)
        .supervisor(
            Supervisor::new("inner")
                .intensity(5, WAIT)
                .child(Child::new("n", report_name, Names { out })),
        )
        .start()
        .unwrap();
    assert_eq!(names.recv_timeout(WAIT).unwrap(), "named/inner/n#1");
    assert_eq!(names.recv_timeout(WAIT).unwrap(), "named/inner/n#2");
}

// ----- leaks ---------------------------------------------------------------------------

fn count(dir: &str) -> usize {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test inspects its own process"
    )]
    std::fs::read_dir(dir).unwrap().count()
}

fn instant_failure(_: (), _: &Context) -> Result<(), String> {
    Err("again".into())
}

/// Run only in a child process by the test below: thread counts are exact
/// only when no other test shares the process.
#[test]
#[ignore = "counts the process's threads; run alone by ten_thousand_restarts_leak_nothing"]
fn ten_thousand_restarts_scenario() {
    let threads_before = count("/proc/self/task");
    let fds_before = count("/proc/self/fd");
    let system = Supervisor::new("churn")
        .intensity(20_000, Duration::from_secs(3600))
        .child(Child::new("c", instant_failure, ()))
        .start()
        .unwrap();
    eventually("10,000 restarts", || {
        system.status().find("churn/c").unwrap().restarts >= 10_000
    });
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
    // Ended instance threads are detached, not joined (a blocking
    // thread-local destructor must not wedge a supervisor): each leaves once
    // its destructors have run.
    eventually("every instance thread gone", || {
        count("/proc/self/task") == threads_before
    });
    assert_eq!(count("/proc/self/fd"), fds_before, "file descriptors");
}

#[test]
fn ten_thousand_restarts_leak_no_threads_and_no_descriptors() {
    let output = common::scenario("ten_thousand_restarts_scenario")
        .arg("--test-threads=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ----- restarts decided on the failing thread ------------------------------------------

/// Opened by the test; a grant whose data is cloned waits for it.
static RELEASE_CLONES: (Mutex<bool>, std::sync::Condvar) =
    (Mutex::new(false), std::sync::Condvar::new());
/// Raised while a clone waits.
static CLONE_WAITING: AtomicBool = AtomicBool::new(false);

/// Data whose `Clone` — run by the supervisor's thread when it re-issues
/// the grant for a start — waits until the test releases it.
#[derive(Debug)]
struct ClonesSlowly;

impl Clone for ClonesSlowly {
    fn clone(&self) -> Self {
        CLONE_WAITING.store(true, Ordering::SeqCst);
        let (released, changed) = &RELEASE_CLONES;
        let mut released = released.lock().unwrap();
        while !*released {
            released = changed.wait(released).unwrap();
        }
        ClonesSlowly
    }
}

#[derive(Grant)]
struct Slow {
    #[grant(data)]
    _slow: ClonesSlowly,
}

fn waits_with(_: Slow, cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

#[test]
fn a_one_for_one_child_restarts_itself_while_its_supervisor_is_busy() {
    let troupe = troupe(&["crasher"]);
    let supervisor = supervisor_of("busy", troupe.children);
    let events = supervisor.events(64);
    let system = std::sync::Arc::new(supervisor.start().unwrap());
    assert_eq!(next_start(&troupe.starts), ("busy/crasher".to_owned(), 1));
    // The supervisor's thread starts a child whose grant takes as long to
    // re-issue as the test wants: until then it serves nothing else.
    #[allow(
        clippy::disallowed_methods,
        reason = "the test's own thread, on the granting side, waits for the supervisor's answer"
    )]
    let adding = std::thread::spawn({
        let system = std::sync::Arc::clone(&system);
        move || {
            system.add_child(
                "busy",
                Child::new(
                    "slow",
                    waits_with,
                    Slow {
                        _slow: ClonesSlowly,
                    },
                ),
            )
        }
    });
    eventually("the supervisor is busy re-issuing", || {
        CLONE_WAITING.load(Ordering::SeqCst)
    });
    troupe.commands[0].send(Cmd::Panic).unwrap();
    // The crashed instance restarted itself: the supervisor had no hand in
    // it, being busy.
    assert_eq!(next_start(&troupe.starts), ("busy/crasher".to_owned(), 2));
    assert!(!adding.is_finished());
    let (released, changed) = &RELEASE_CLONES;
    *released.lock().unwrap() = true;
    changed.notify_all();
    adding.join().unwrap().unwrap();
    // Once free, the supervisor tells what happened, in order.
    let (_, before) = wait_for(&events, "busy/crasher#2 restarted", |e| {
        e.path == "busy/crasher" && e.instance == Some(2) && restarted(&e.kind)
    });
    let crasher: Vec<&Event> = before
        .iter()
        .filter(|e| e.path == "busy/crasher" || matches!(e.kind, EventKind::Restarting { .. }))
        .collect();
    assert!(
        matches!(crasher.last().map(|e| &e.kind), Some(EventKind::Restarting { cause, children }) if cause == "busy/crasher" && children == &["busy/crasher".to_owned()]),
        "{before:?}"
    );
    assert!(
        crasher
            .iter()
            .any(|e| e.instance == Some(1) && matches!(e.kind, EventKind::Faulted { .. })),
        "{before:?}"
    );
    let status = system.status();
    let child = status.find("busy/crasher").unwrap();
    assert_eq!((child.instance, child.restarts), (2, 1));
    match std::sync::Arc::try_unwrap(system) {
        Ok(system) => assert_eq!(system.shutdown(), SystemExit::Shutdown),
        Err(_) => panic!("the adding thread still holds the system"),
    }
}

// ----- the capability map ------------------------------------------------------------

#[derive(Grant)]
struct Producer {
    out: Sender<Cmd>,
    scratch: compartment::caps::Env,
}

fn produce(_: Producer, cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

#[test]
fn the_capability_map_connects_senders_to_receivers_in_every_format() {
    let (out, commands) = channel::bounded(4).unwrap();
    let (starts, _) = channel::bounded(4).unwrap();
    let system = Supervisor::new("map")
        .child(Child::new(
            "producer",
            produce,
            Producer {
                out,
                scratch: compartment::caps::Env::from_vars([("MODE", "x")]).unwrap(),
            },
        ))
        .supervisor(Supervisor::new("team").child(Child::new(
            "consumer",
            puppet,
            Puppet { commands, starts },
        )))
        .start()
        .unwrap();
    let map = system.capability_map();

    let mermaid = map.mermaid();
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("subgraph map_team[\"team (one_for_one)\"]"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("map_producer -->|\"channel #"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("Cmd (capacity 4)\"| map_team_consumer"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("map_team_consumer -->|"),
        "the starts channel leaves the tree: {mermaid}"
    );
    assert!(mermaid.contains("scratch: environment (MODE)"), "{mermaid}");

    let dot = map.dot();
    assert!(dot.starts_with("digraph capabilities {"), "{dot}");
    assert!(dot.contains("subgraph cluster_map_team {"), "{dot}");
    assert!(
        dot.contains("map_producer -> map_team_consumer [label=\"channel #"),
        "{dot}"
    );

    let text = map.text();
    assert!(text.contains("  out: sender on channel #"), "{text}");
    assert!(text.contains("→ map/team/consumer"), "{text}");
    assert!(text.contains("commands: receiver on channel #"), "{text}");
    assert!(text.contains("← map/producer"), "{text}");
}

// ----- restart modes -------------------------------------------------------------------

thread_local! {
    static INSTANCES_SEEN_HERE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[derive(Grant)]
struct Reporter {
    inbox: Receiver<u32>,
    seen: Sender<(u64, String, u32, u32)>,
}

/// Reports its instance, thread, how many instances this thread has run,
/// and the message it handles; crashes on every third message.
fn report_and_crash(g: Reporter, cx: &Context) -> Result<(), String> {
    let here = INSTANCES_SEEN_HERE.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let thread = format!("{:?}", std::thread::current().id());
    for n in cx.recv_iter(&g.inbox) {
        cx.send(&g.seen, (cx.instance(), thread.clone(), here, n))
            .map_err(|e| e.to_string())?;
        cx.done();
        if n % 3 == 0 {
            panic!("crash after {n}");
        }
    }
    Ok(())
}

#[test]
fn in_place_restarts_reuse_the_thread_and_lose_no_message() {
    use compartment::RestartMode;
    for mode in [RestartMode::InPlace, RestartMode::FreshThread] {
        let (tx, inbox) = channel::bounded(64).unwrap();
        let (seen_tx, seen) = channel::bounded(64).unwrap();
        for n in 1..=9 {
            tx.send(n).unwrap();
        }
        let system = Supervisor::new("modes")
            .intensity(10, WAIT)
            .forward_panics(false)
            .child(
                Child::new(
                    "r",
                    report_and_crash,
                    Reporter {
                        inbox,
                        seen: seen_tx,
                    },
                )
                .restart_mode(mode),
            )
            .start()
            .unwrap();
        let got: Vec<(u64, String, u32, u32)> =
            (0..9).map(|_| seen.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(
            got.iter().map(|g| g.3).collect::<Vec<_>>(),
            (1..=9).collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [1, 1, 1, 2, 2, 2, 3, 3, 3]
        );
        let threads: std::collections::BTreeSet<&String> = got.iter().map(|g| &g.1).collect();
        match mode {
            RestartMode::InPlace => {
                assert_eq!(threads.len(), 1, "one thread for all instances");
                assert_eq!(got[8].2, 3, "thread-locals survive an in-place restart");
            }
            RestartMode::FreshThread => {
                assert_eq!(threads.len(), 3, "a thread per instance");
                assert_eq!(
                    got[8].2, 1,
                    "every instance starts with fresh thread-locals"
                );
            }
        }
        assert_eq!(system.shutdown(), SystemExit::Shutdown);
    }
}

thread_local! {
    static STARTS_ON_THIS_THREAD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// An instance's number, its thread's kernel id and name, and how many
/// instances its thread has started.
type StartReport = (u64, i32, String, u32);

#[derive(Grant)]
struct Standing {
    crash: Receiver<()>,
    reports: Sender<StartReport>,
}

/// Reports its start; panics when told.
fn report_then_crash_when_told(g: Standing, cx: &Context) -> Result<(), String> {
    let here = STARTS_ON_THIS_THREAD.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    cx.send(&g.reports, (cx.instance(), common::own_tid(), name, here))
        .map_err(|e| e.to_string())?;
    if cx.recv_untracked(&g.crash).is_ok() {
        panic!("told to crash");
    }
    Ok(())
}

fn standing(name: &'static str) -> (Supervisor, Sender<()>, Receiver<StartReport>) {
    let (crash, crash_rx) = channel::bounded(1).unwrap();
    let (reports_tx, reports) = channel::bounded(8).unwrap();
    let supervisor = Supervisor::new(name)
        .intensity(100, WAIT)
        .forward_panics(false)
        .child(Child::new(
            "c",
            report_then_crash_when_told,
            Standing {
                crash: crash_rx,
                reports: reports_tx,
            },
        ));
    (supervisor, crash, reports)
}

#[test]
fn a_fresh_thread_restart_runs_on_a_thread_spawned_while_the_instance_before_ran() {
    let (supervisor, crash, reports) = standing("sb");
    let system = supervisor.start().unwrap();
    let mut threads = std::collections::BTreeSet::new();
    let mut standing_by = None;
    for instance in 1..=6u64 {
        let (reported, tid, name, here) = reports.recv_timeout(WAIT).unwrap();
        assert_eq!(reported, instance);
        assert_eq!(name, format!("sb/c#{instance}"));
        assert_eq!(
            here, 1,
            "instance {instance} starts with fresh thread-locals"
        );
        assert!(threads.insert(tid), "a thread per instance");
        if let Some((standing_by, stood_from)) = standing_by
            && tid != standing_by
        {
            // A standby ends once it has waited its second, so a restart
            // that came later than that (a loaded machine) spawns its own
            // thread; one that came sooner must have found the standby.
            let spawned = common::thread_started(tid).expect("the instance's thread runs");
            assert!(
                spawned >= stood_from + common::TICKS_PER_SECOND - 1,
                "instance {instance} runs on a thread spawned {} ticks after the one that \
                 stood by for it, which waits a second",
                spawned.saturating_sub(stood_from)
            );
        }
        // From the first restart on, the thread that started this
        // instance spawns one for the next restart while this one runs.
        standing_by = (instance >= 2).then(|| {
            let next = format!("sb/c#{}", instance + 1);
            let mut found = None;
            eventually(&format!("a thread standing by as {next}"), || {
                found = common::thread_named(&next)
                    .and_then(|tid| Some((tid, common::thread_started(tid)?)));
                found.is_some()
            });
            found.unwrap()
        });
        crash.send(()).unwrap();
    }
    assert_eq!(reports.recv_timeout(WAIT).unwrap().0, 7);
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
    eventually("the thread standing by ends with the tree", || {
        common::thread_named("sb/c#8").is_none()
    });
}

#[test]
fn a_thread_standing_by_for_a_restart_that_does_not_come_ends() {
    let (supervisor, crash, reports) = standing("idle");
    let system = supervisor.start().unwrap();
    assert_eq!(reports.recv_timeout(WAIT).unwrap().0, 1);
    crash.send(()).unwrap();
    assert_eq!(reports.recv_timeout(WAIT).unwrap().0, 2);
    eventually("a thread standing by for instance 3", || {
        common::thread_named("idle/c#3").is_some()
    });
    // Instance 2 runs on; the thread waits for it only so long.
    eventually("the idle thread standing by ends", || {
        common::thread_named("idle/c#3").is_none()
    });
    // The restart that comes later spawns its thread, named as ever.
    crash.send(()).unwrap();
    let (instance, _, name, here) = reports.recv_timeout(WAIT).unwrap();
    assert_eq!((instance, name.as_str(), here), (3, "idle/c#3", 1));
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

fn reads_what_is_missing(
    dir: compartment::caps::Dir,
    _: &Context,
) -> Result<(), compartment::caps::FsError> {
    dir.read("missing.txt").map(drop)
}

#[test]
fn a_fault_names_the_cause_once() {
    let sandbox = common::Sandbox::new();
    let supervisor = Supervisor::new("app");
    let events = supervisor.events(16);
    let system = supervisor
        .child(
            Child::new("reader", reads_what_is_missing, sandbox.root()).restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    let (fault, seen) = events.wait_for(Duration::from_secs(60), |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    let Some(EventKind::Faulted { fault }) = fault.map(|e| e.kind) else {
        panic!("{seen:#?}")
    };
    let cause = std::io::Error::from_raw_os_error(2).to_string();
    let text = fault.to_string();
    assert_eq!(text.matches(&cause).count(), 1, "{text}");
    assert!(text.contains("cannot read `missing.txt`"), "{text}");
    system.shutdown();
}

fn iterates_raw(inbox: Receiver<u32>, _: &Context) -> Result<(), std::io::Error> {
    // crossbeam's habit: a plain blocking iterator, no context.
    for message in inbox.iter() {
        let _ = message;
    }
    Ok(())
}

#[test]
fn a_raw_blocking_receive_ends_with_its_instance() {
    let (_keep, inbox) = channel::bounded::<u32>(4).unwrap();
    let supervisor = Supervisor::new("app");
    let events = supervisor.events(64);
    let system = supervisor
        .child(Child::new("raw", iterates_raw, inbox).shutdown(Duration::from_secs(30)))
        .start()
        .unwrap();
    let raw = system.child("app/raw").unwrap();
    assert_eq!(raw.name(), "raw");
    assert!(matches!(
        system.child("app/rwa"),
        Err(ControlError::NotFound { path }) if path == "app/rwa"
    ));
    let (started, seen) = events.wait_for(Duration::from_secs(30), |e| {
        matches!(e.kind, EventKind::Started) && e.is_about(&raw)
    });
    assert!(started.is_some(), "{seen:#?}");
    system.remove_child(&raw).unwrap();
    let (exited, seen) = events.wait_for(Duration::from_secs(60), |e| {
        e.path == raw
            && matches!(
                e.kind,
                EventKind::Exited { .. } | EventKind::ShutdownTimedOut { .. }
            )
    });
    assert!(
        matches!(exited.map(|e| e.kind), Some(EventKind::Exited { .. })),
        "{seen:#?}"
    );
    assert_eq!(system.leaked_threads(), 0);
    system.shutdown();
}
