//! Containment: a fault is data wherever user code runs — in the entry, in
//! what it returns, in the messages it handles, in the grants and messages a
//! supervisor thread clones and drops — and restart bookkeeping neither loses
//! nor doubles a message.
//!
//! Every wait is bounded by a generous timeout that only turns a hang into a
//! failure; negative checks ("not restarted") read the event log up to an
//! event that the supervisor publishes after its decision.

mod common;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use compartment::channel::{self, Receiver, Sender};
use compartment::event::{Event, EventKind, Events, ExitReason};
use compartment::supervisor::Ceiling;
use compartment::{
    Child, Context, FaultKind, Grant, Inventory, Limits, ReissueError, Restart, Revoker,
    StartError, Strategy, Supervisor, SystemExit,
};

const WAIT: Duration = Duration::from_secs(20);

/// A one-way gate between threads: once opened it stays open, and waiters
/// return.
struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    const fn new() -> Self {
        Self {
            open: Mutex::new(false),
            opened: Condvar::new(),
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits until the latch is open; `false` if `timeout` passed first (a
    /// bound that turns a hang into a failure).
    fn wait(&self, timeout: Duration) -> bool {
        let open = self.open.lock().unwrap();
        let (open, _) = self
            .opened
            .wait_timeout_while(open, timeout, |open| !*open)
            .unwrap();
        *open
    }
}

/// Opens its latch when dropped: kept in a thread-local, it says that the
/// thread has finished everything before its thread-local destructors.
struct OpensOnDrop(&'static Latch);

impl Drop for OpensOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

thread_local! {
    static ON_THREAD_EXIT: std::cell::RefCell<Option<OpensOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

fn wait_for(events: &Events, what: &str, predicate: impl FnMut(&Event) -> bool) -> Event {
    match events.wait_for(WAIT, predicate) {
        (Some(event), _) => event,
        (None, before) => panic!(
            "no event: {what}; saw:\n{}",
            before
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn faulted_at(path: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| e.path == path && matches!(e.kind, EventKind::Faulted { .. })
}

fn restarted_at(path: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| e.path == path && matches!(e.kind, EventKind::Restarted)
}

fn fault_of(event: &Event) -> &compartment::Fault {
    match &event.kind {
        EventKind::Faulted { fault } => fault,
        other => panic!("not a fault: {other:?}"),
    }
}

/// A sibling that waits for cancellation: the tree still works if, at
/// shutdown, it is asked to stop and reports it.
fn bystander(_: (), cx: &Context) -> Result<(), String> {
    while cx.sleep(Duration::from_secs(3600)).is_ok() {}
    Ok(())
}

/// Shuts the tree down and checks that the bystander at `path` was stopped
/// by it: the supervisor thread was alive to the end.
fn shutdown_reaches(system: compartment::System, events: &Events, path: &'static str) {
    let exit = system.shutdown();
    assert_eq!(exit, SystemExit::Shutdown);
    wait_for(events, "the bystander stopped by the shutdown", move |e| {
        e.path == path
            && matches!(
                e.kind,
                EventKind::Exited {
                    reason: ExitReason::Shutdown
                }
            )
    });
}

// ----- panics after the boundary, on the instance thread ------------------

/// Where a [`Trap`] error panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrapIn {
    Display,
    Source,
    Drop,
}

#[derive(Debug)]
struct Trap(TrapIn);

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == TrapIn::Display {
            panic!("display of the error panicked");
        }
        f.write_str("a trapped error")
    }
}

impl std::error::Error for Trap {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.0 == TrapIn::Source {
            panic!("source of the error panicked");
        }
        None
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        if self.0 == TrapIn::Drop && !std::thread::panicking() {
            panic!("drop of the error panicked");
        }
    }
}

#[derive(Grant)]
struct Trapped {
    #[grant(data)]
    place: TrapIn,
}

fn returns_trap(g: Trapped, _: &Context) -> Result<(), Trap> {
    Err(Trap(g.place))
}

#[test]
fn an_error_that_panics_when_displayed_described_or_dropped_is_a_fault() {
    for place in [TrapIn::Display, TrapIn::Source, TrapIn::Drop] {
        let sup = Supervisor::new("err")
            .intensity(100, Duration::from_secs(3600))
            .child(Child::new("c", returns_trap, Trapped { place }));
        let events = sup.events(1024);
        let system = sup.start().unwrap();
        let fault = wait_for(&events, "the first fault", faulted_at("err/c"));
        assert!(
            matches!(fault_of(&fault).kind, FaultKind::Error { .. }),
            "{place:?}: {fault}"
        );
        wait_for(&events, "a restart", restarted_at("err/c"));
        let status = system.status();
        assert!(status.find("err/c").unwrap().restarts >= 1);
        system.shutdown();
    }
}

fn panics_with_a_trapped_error(_: (), _: &Context) -> Result<(), String> {
    let payload: Box<dyn std::error::Error + Send + Sync> = Box::new(Trap(TrapIn::Display));
    std::panic::panic_any(payload)
}

#[test]
fn a_panic_payload_that_panics_when_displayed_is_a_fault() {
    let sup = Supervisor::new("payload")
        .intensity(100, Duration::from_secs(3600))
        .child(Child::new("c", panics_with_a_trapped_error, ()));
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    let fault = wait_for(&events, "the fault", faulted_at("payload/c"));
    assert!(fault_of(&fault).is_panic(), "{fault}");
    wait_for(&events, "a restart", restarted_at("payload/c"));
    system.shutdown();
}

/// A message whose `Debug` panics.
#[derive(Clone, PartialEq)]
struct Undescribable(u32);

impl fmt::Debug for Undescribable {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("debug of the message panicked")
    }
}

#[derive(Grant)]
struct Handler {
    inbox: Receiver<Undescribable>,
    seen: Sender<(u64, u32)>,
}

fn crashes_on_first_delivery(g: Handler, cx: &Context) -> Result<(), String> {
    let message = cx.recv(&g.inbox).map_err(|e| e.to_string())?;
    let _ = g.seen.send((cx.instance(), message.0));
    if cx.instance() == 1 {
        return Err("crashed while handling".into());
    }
    cx.done();
    while cx.sleep(Duration::from_secs(3600)).is_ok() {}
    Ok(())
}

#[test]
fn a_message_whose_debug_panics_is_still_reported_and_delivered_again() {
    let (tx, inbox) = channel::bounded(4).unwrap();
    let (seen_tx, seen) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("dbg").child(Child::new(
        "c",
        crashes_on_first_delivery,
        Handler {
            inbox,
            seen: seen_tx,
        },
    ));
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    tx.send(Undescribable(7)).unwrap();
    let fault = wait_for(&events, "the fault", faulted_at("dbg/c"));
    assert!(fault_of(&fault).in_flight.is_some(), "{fault}");
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), (1, 7));
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), (2, 7));
    system.shutdown();
}

// ----- panics on supervisor threads ----------------------------------------

/// Plain data whose `Clone` panics once armed: re-issuing a grant that
/// holds it panics on the supervisor's thread.
#[derive(Debug)]
struct CloneFuse(&'static AtomicBool);

impl Clone for CloneFuse {
    fn clone(&self) -> Self {
        if self.0.load(Ordering::SeqCst) {
            panic!("clone of grant data panicked");
        }
        CloneFuse(self.0)
    }
}

#[derive(Grant)]
struct Fused {
    #[grant(data)]
    fuse: CloneFuse,
    crash: Receiver<()>,
}

fn crashes_on_request(g: Fused, cx: &Context) -> Result<(), String> {
    cx.recv_untracked(&g.crash).map_err(|e| e.to_string())?;
    Err("asked to crash".into())
}

#[test]
fn a_grant_whose_reissue_panics_is_a_start_fault_and_the_tree_lives_on() {
    static ARMED: AtomicBool = AtomicBool::new(false);
    let (crash, rx) = channel::bounded(1).unwrap();
    let sup = Supervisor::new("reissue")
        .intensity(1, Duration::from_secs(3600))
        .child(Child::new("bystander", bystander, ()))
        .supervisor(
            Supervisor::new("inner")
                .intensity(1000, Duration::from_secs(3600))
                .child(Child::new(
                    "c",
                    crashes_on_request,
                    Fused {
                        fuse: CloneFuse(&ARMED),
                        crash: rx,
                    },
                )),
        );
    let events = sup.events(4096);
    let system = sup.start().unwrap();
    ARMED.store(true, Ordering::SeqCst);
    crash.send(()).unwrap();
    let fault = wait_for(&events, "the failed restart", move |e| {
        e.path == "reissue/inner/c"
            && matches!(&e.kind, EventKind::Faulted { fault } if matches!(fault.kind, FaultKind::StartFailed { .. }))
    });
    assert!(fault_of(&fault).message().contains("panicked"), "{fault}");
    ARMED.store(false, Ordering::SeqCst);
    shutdown_reaches(system, &events, "reissue/bystander");
}

/// A hand-written grant whose `visit` panics.
struct Unlistable;

impl Grant for Unlistable {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(Unlistable)
    }
    fn attach_revoker(&mut self, _: &Revoker) {}
    fn visit<'g>(&'g self, _: &mut Inventory<'g>) {
        panic!("visit of the grant panicked")
    }
}

fn never_called(_: Unlistable, _: &Context) -> Result<(), String> {
    Ok(())
}

#[test]
fn a_grant_whose_visit_panics_is_refused_with_a_typed_error() {
    let refused = Supervisor::new("visit")
        .child(Child::new("c", never_called, Unlistable))
        .start();
    match refused {
        Err(StartError::ChildFailed { fault }) => {
            assert!(fault.message().contains("panicked"), "{fault}")
        }
        other => panic!("expected ChildFailed, got {other:?}"),
    }

    let sup = Supervisor::new("visit2").child(Child::new("bystander", bystander, ()));
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    let added = system.add_child("visit2", Child::new("c", never_called, Unlistable));
    assert!(
        matches!(added, Err(compartment::ControlError::Start(_))),
        "{added:?}"
    );
    // The refused child left nothing on the status board.
    let status = system.status();
    assert!(status.find("visit2/c").is_none());
    assert!(status.find("visit2/bystander").is_some());
    shutdown_reaches(system, &events, "visit2/bystander");
}

/// Plain data whose `Drop` panics when the supervisor drops its copy.
#[derive(Debug)]
struct DropFuse(&'static AtomicBool);

impl Clone for DropFuse {
    fn clone(&self) -> Self {
        DropFuse(self.0)
    }
}

impl Drop for DropFuse {
    fn drop(&mut self) {
        if self.0.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("drop of grant data panicked");
        }
    }
}

#[derive(Grant)]
struct DropFused {
    #[grant(data)]
    fuse: DropFuse,
}

fn waits(g: DropFused, cx: &Context) -> Result<(), String> {
    // The instance's own copy is dropped quietly: disarmed before the end.
    let DropFused { fuse } = g;
    while cx.sleep(Duration::from_secs(3600)).is_ok() {}
    std::mem::forget(fuse);
    Ok(())
}

#[test]
fn a_specification_whose_drop_panics_does_not_take_the_supervisor_down() {
    static ARMED: AtomicBool = AtomicBool::new(false);
    let sup = Supervisor::new("specdrop").child(Child::new("bystander", bystander, ()));
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    system
        .add_child(
            "specdrop",
            Child::new(
                "c",
                waits,
                DropFused {
                    fuse: DropFuse(&ARMED),
                },
            ),
        )
        .unwrap();
    ARMED.store(true, Ordering::SeqCst);
    let removed = system.remove_child("specdrop/c");
    ARMED.store(false, Ordering::SeqCst);
    assert!(removed.is_ok(), "{removed:?}");
    shutdown_reaches(system, &events, "specdrop/bystander");
}

/// A message whose clones (the copies a supervisor keeps) panic on drop.
#[derive(Debug, PartialEq)]
struct Poison {
    kept: bool,
}

impl Clone for Poison {
    fn clone(&self) -> Self {
        Poison { kept: true }
    }
}

impl Drop for Poison {
    fn drop(&mut self) {
        if self.kept && !std::thread::panicking() {
            panic!("drop of a kept message panicked");
        }
    }
}

#[derive(Grant)]
struct PoisonInbox {
    inbox: Receiver<Poison>,
}

fn chokes(g: PoisonInbox, cx: &Context) -> Result<(), String> {
    let message = cx.recv(&g.inbox).map_err(|e| e.to_string())?;
    std::mem::forget(message);
    Err("choked".into())
}

#[test]
fn a_dead_letter_whose_drop_panics_does_not_take_the_supervisor_down() {
    let (tx, inbox) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("letters")
        .intensity(100, Duration::from_secs(3600))
        .child(Child::new("bystander", bystander, ()))
        .child(Child::new("c", chokes, PoisonInbox { inbox }).poison_threshold(1));
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    tx.send(Poison { kept: false }).unwrap();
    wait_for(&events, "the dead letter", |e| {
        e.path == "letters/c" && matches!(e.kind, EventKind::DeadLettered { .. })
    });
    shutdown_reaches(system, &events, "letters/bystander");
}

// ----- one in-flight slot per child ----------------------------------------

#[derive(Grant)]
struct TwoInboxes {
    a: Receiver<u32>,
    b: Receiver<u32>,
    seen: Sender<(u64, char, u32)>,
}

/// Instance 1 crashes handling a message from `a`, instance 2 one from `b`;
/// instance 3 reads `a` and then `b`, and must get both back.
fn crashes_on_each_inbox(g: TwoInboxes, cx: &Context) -> Result<(), String> {
    let instance = cx.instance();
    let order: &[char] = match instance {
        1 => &['a'],
        2 => &['b'],
        _ => &['a', 'b'],
    };
    for &inbox in order {
        let rx = if inbox == 'a' { &g.a } else { &g.b };
        let message = cx.recv(rx).map_err(|e| e.to_string())?;
        let _ = g.seen.send((instance, inbox, message));
    }
    if instance < 3 {
        return Err("crashed while handling".into());
    }
    cx.done();
    while cx.sleep(Duration::from_secs(3600)).is_ok() {}
    Ok(())
}

#[test]
fn a_crash_on_a_second_inbox_keeps_the_first_inboxs_interrupted_message() {
    let (a_tx, a) = channel::bounded(4).unwrap();
    let (b_tx, b) = channel::bounded(4).unwrap();
    let (seen_tx, seen) = channel::bounded(16).unwrap();
    let system = Supervisor::new("two")
        .intensity(100, Duration::from_secs(3600))
        .child(
            Child::new(
                "c",
                crashes_on_each_inbox,
                TwoInboxes {
                    a,
                    b,
                    seen: seen_tx,
                },
            )
            .poison_threshold(10),
        )
        .start()
        .unwrap();
    a_tx.send(1).unwrap();
    b_tx.send(10).unwrap();
    let got: Vec<_> = (0..4).map(|_| seen.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(got, [(1, 'a', 1), (2, 'b', 10), (3, 'a', 1), (3, 'b', 10)]);
    system.shutdown();
}

#[derive(Grant)]
struct Runaway {
    inbox: Receiver<u32>,
    seen: Sender<(u64, u32)>,
    #[grant(data)]
    release: &'static AtomicBool,
    #[grant(data)]
    ended: &'static Latch,
}

/// Instance 1 takes a message and spins past its deadline, ignoring
/// cancellation, until the test releases it; its thread opens `ended` once
/// the instance has been wound up. Later instances report each message and
/// mark it handled.
fn runs_away(g: Runaway, cx: &Context) -> Result<(), String> {
    loop {
        let message = cx.recv(&g.inbox).map_err(|e| e.to_string())?;
        let _ = g.seen.send((cx.instance(), message));
        if cx.instance() == 1 {
            ON_THREAD_EXIT.with(|slot| *slot.borrow_mut() = Some(OpensOnDrop(g.ended)));
            while !g.release.load(Ordering::SeqCst) {
                std::hint::spin_loop();
                std::thread::yield_now();
            }
            return Ok(());
        }
        cx.done();
    }
}

#[test]
fn a_runaways_message_is_in_its_fault_redelivered_once_and_never_touched_again() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static ENDED: Latch = Latch::new();
    let (tx, inbox) = channel::bounded(4).unwrap();
    let (seen_tx, seen) = channel::bounded(16).unwrap();
    let sup = Supervisor::new("ra")
        .intensity(100, Duration::from_secs(3600))
        .child(
            Child::new(
                "x",
                runs_away,
                Runaway {
                    inbox,
                    seen: seen_tx,
                    release: &RELEASE,
                    ended: &ENDED,
                },
            )
            .limits(Limits::new().deadline(Duration::from_millis(50)))
            .shutdown(Duration::from_millis(50)),
        );
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    tx.send(1).unwrap();
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), (1, 1));
    let fault = wait_for(&events, "the runaway's fault", faulted_at("ra/x"));
    let fault = fault_of(&fault);
    assert!(
        matches!(fault.kind, FaultKind::BudgetExceeded { runaway: true, .. }),
        "{fault}"
    );
    assert_eq!(
        fault.in_flight.as_ref().map(|m| m.description.as_str()),
        Some("1")
    );
    assert_eq!(seen.recv_timeout(WAIT).unwrap(), (2, 1), "delivered again");
    // The runaway returns late, while its successor is running.
    RELEASE.store(true, Ordering::SeqCst);
    // Its thread-locals are dropped after the instance is wound up (its
    // message settled, its exit reported).
    assert!(ENDED.wait(WAIT), "the runaway never ended");
    tx.send(2).unwrap();
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        (2, 2),
        "the next message, not the first one again"
    );
    drop(system);
}

// ----- restarts: iteration, one give-up, OTP's escalation ------------------

/// A grant that can be issued once: every restart fails to start.
struct IssuedOnce {
    issued: Arc<AtomicBool>,
}

fn issued_once() -> IssuedOnce {
    IssuedOnce {
        issued: Arc::new(AtomicBool::new(false)),
    }
}

impl Grant for IssuedOnce {
    fn reissue(&self) -> Result<Self, ReissueError> {
        if self.issued.swap(true, Ordering::SeqCst) {
            return Err(ReissueError::new(
                "IssuedOnce",
                std::io::Error::other("issued already"),
            ));
        }
        Ok(IssuedOnce {
            issued: Arc::clone(&self.issued),
        })
    }
    fn attach_revoker(&mut self, _: &Revoker) {}
    fn visit<'g>(&'g self, _: &mut Inventory<'g>) {}
}

fn fails_at_once(_: IssuedOnce, _: &Context) -> Result<(), String> {
    Err("failed".into())
}

fn count(events: &[Event], kind: fn(&EventKind) -> bool) -> usize {
    events.iter().filter(|e| kind(&e.kind)).count()
}

fn drain_until_end(events: &Events) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(event) = events.recv_timeout(Duration::from_millis(200)) {
        all.push(event);
    }
    all
}

#[test]
fn ten_thousand_failed_starts_end_in_exactly_one_give_up() {
    let sup = Supervisor::new("many")
        .intensity(10_000, Duration::from_secs(24 * 3600))
        .child(Child::new("c", fails_at_once, issued_once()));
    let events = sup.events(200_000);
    let mut system = sup.start().unwrap();
    let exit = system.wait_timeout(Duration::from_secs(600));
    assert!(matches!(exit, Some(SystemExit::Failed(_))), "{exit:?}");
    let all = drain_until_end(&events);
    assert_eq!(events.dropped(), 0);
    assert_eq!(count(&all, |k| matches!(k, EventKind::GaveUp { .. })), 1);
    assert_eq!(count(&all, |k| matches!(k, EventKind::Escalated { .. })), 1);
    let start_failures = all
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Faulted { fault } if matches!(fault.kind, FaultKind::StartFailed { .. })))
        .count();
    assert_eq!(start_failures, 10_000);
}

#[test]
fn failed_starts_in_one_restart_set_give_up_once_with_the_first_cause() {
    let sup = Supervisor::new("set")
        .strategy(Strategy::OneForAll)
        .intensity(1, Duration::from_secs(3600))
        .child(Child::new("a", fails_at_once, issued_once()))
        .child(Child::new("b", fails_at_once, issued_once()))
        .child(Child::new("c", fails_at_once, issued_once()));
    let events = sup.events(4096);
    let mut system = sup.start().unwrap();
    let exit = system.wait_timeout(WAIT);
    let all = drain_until_end(&events);
    assert_eq!(
        count(&all, |k| matches!(k, EventKind::GaveUp { .. })),
        1,
        "{all:#?}"
    );
    assert_eq!(count(&all, |k| matches!(k, EventKind::Escalated { .. })), 1);
    let Some(SystemExit::Failed(fault)) = exit else {
        panic!("{exit:?}")
    };
    let FaultKind::Escalated { cause } = &fault.kind else {
        panic!("{fault}")
    };
    // The give-up's cause is the failure that exceeded the intensity: the
    // first restart that failed to start.
    let first_over = all
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Faulted { fault } if matches!(fault.kind, FaultKind::StartFailed { .. }) => {
                Some(fault)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(**cause, *first_over);
}

fn crashes(_: (), _: &Context) -> Result<(), String> {
    Err("crashed".into())
}

#[test]
fn a_transient_supervisor_that_gives_up_is_not_restarted_by_its_parent() {
    let sup = Supervisor::new("otp")
        .intensity(10, Duration::from_secs(3600))
        .child(Child::new("bystander", bystander, ()))
        .supervisor(
            Supervisor::new("inner")
                .restart(Restart::Transient)
                .intensity(0, Duration::from_secs(3600))
                .child(Child::new("c", crashes, ())),
        );
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    wait_for(&events, "the inner supervisor gives up", |e| {
        e.path == "otp/inner" && matches!(e.kind, EventKind::GaveUp { .. })
    });
    // The parent decides about its child before it serves the shutdown.
    system.shutdown();
    let rest = drain_until_end(&events);
    assert!(
        !rest
            .iter()
            .any(|e| e.path == "otp/inner" && matches!(e.kind, EventKind::Restarted)),
        "{rest:#?}"
    );
    assert!(rest.iter().any(|e| e.path == "otp/inner"
        && matches!(
            e.kind,
            EventKind::Exited {
                reason: ExitReason::Shutdown
            }
        )));
}

#[test]
fn a_permanent_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let sup = Supervisor::new("otp2")
        .intensity(1, Duration::from_secs(3600))
        .supervisor(
            Supervisor::new("inner")
                .intensity(0, Duration::from_secs(3600))
                .child(Child::new("c", crashes, ())),
        );
    let events = sup.events(1024);
    let system = sup.start().unwrap();
    wait_for(
        &events,
        "the parent restarts it",
        restarted_at("otp2/inner"),
    );
    drop(system);
}

// ----- bounded joins ----------------------------------------------------------

static UNBLOCK: Latch = Latch::new();

/// A thread-local whose destructor blocks until the test lets it go.
struct Wedge;

impl Drop for Wedge {
    fn drop(&mut self) {
        // Blocks until the test is done, however long that takes.
        while !UNBLOCK.wait(Duration::from_secs(3600)) {}
    }
}

thread_local! {
    static WEDGE: std::cell::RefCell<Option<Wedge>> = const { std::cell::RefCell::new(None) };
}

fn wedges_its_thread(_: (), cx: &Context) -> Result<(), String> {
    if cx.instance() == 1 {
        WEDGE.with(|w| *w.borrow_mut() = Some(Wedge));
    }
    Err("crashed".into())
}

#[test]
fn a_thread_local_destructor_that_blocks_does_not_wedge_the_supervisor() {
    let sup = Supervisor::new("wedge")
        .intensity(3, Duration::from_secs(3600))
        .child(Child::new("c", wedges_its_thread, ()));
    let events = sup.events(1024);
    let mut system = sup.start().unwrap();
    // Three restarts, then a give-up: the supervisor keeps serving while
    // the first thread's destructor is still blocked.
    let exit = system.wait_timeout(WAIT);
    assert!(matches!(exit, Some(SystemExit::Failed(_))), "{exit:?}");
    let all = drain_until_end(&events);
    assert_eq!(count(&all, |k| matches!(k, EventKind::Restarted)), 3);
    UNBLOCK.open();
}

// ----- ceilings -------------------------------------------------------------

fn idles(_: (), cx: &Context) -> Result<(), String> {
    while cx.sleep(Duration::from_secs(3600)).is_ok() {}
    Ok(())
}

/// Run in a child process by the test below: a pool larger than the
/// process's memory-map ceiling allows.
#[test]
#[ignore = "run by a_pool_past_the_memory_map_ceiling_is_a_typed_start_error in its own process"]
fn pool_past_the_ceiling_scenario() {
    let result = Supervisor::pool("huge", Child::new("m", idles, ()), 20_000).start();
    match result {
        Err(StartError::ChildFailed { fault }) => match fault.kind {
            FaultKind::CeilingReached { ceiling } => {
                println!("refused: {ceiling}");
                assert!(matches!(
                    ceiling,
                    Ceiling::MemoryMaps { .. } | Ceiling::Threads { .. }
                ));
            }
            other => panic!("expected CeilingReached, got {other:?}"),
        },
        Err(other) => panic!("expected ChildFailed, got {other}"),
        Ok(_) => panic!("20,000 threads fit under this machine's ceilings"),
    }
}

#[test]
fn a_pool_past_the_memory_map_ceiling_is_a_typed_start_error() {
    let output = common::scenario("pool_past_the_ceiling_scenario")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("refused: "), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}
