//! Resource limits: CPU budgets, deadlines and memory quotas, enforced by the
//! tree's watchdog; a runaway that ignores cancellation is revoked while the
//! rest of the tree keeps working; limits re-arm on restart.
//!
//! This test binary installs the accounting allocator. No assertion is on
//! wall-clock timing: CPU figures are the ones the watchdog reports, and
//! deadlines run on a manual clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use compartment::alloc::Accounting;
use compartment::caps::MonotonicClock;
use compartment::channel::{self, CallError, Receiver, Request, Sender};
use compartment::event::{Event, EventKind, Events};
use compartment::{Budget, Child, Context, FaultKind, Grant, Limits, Restart, Supervisor};

#[global_allocator]
static ALLOCATOR: Accounting<std::alloc::System> = Accounting::new(std::alloc::System);

const WAIT: Duration = Duration::from_secs(30);

fn fault_event(events: &Events, path: &'static str) -> compartment::Fault {
    let (event, seen) = events.wait_for(WAIT, |e| {
        e.path == path && matches!(e.kind, EventKind::Faulted { .. })
    });
    match event.map(|e| e.kind) {
        Some(EventKind::Faulted { fault }) => fault,
        _ => panic!("no fault for {path}; saw:\n{}", lines(&seen)),
    }
}

fn lines(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Burns a little CPU.
fn burn() {
    let mut x: u64 = 1;
    for _ in 0..10_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
}

/// Spins, checking for cancellation.
fn busy(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    loop {
        burn();
        cx.check()?;
    }
}

#[test]
fn a_busy_loop_is_stopped_with_the_cpu_it_used() {
    let budget = Duration::from_millis(300);
    let sup = Supervisor::new("cpu")
        .watchdog_period(Duration::from_millis(100))
        .child(
            Child::new("spin", busy, ())
                .restart(Restart::Temporary)
                .limits(Limits::new().cpu(budget)),
        );
    stopped_over_cpu_budget(sup, "cpu/spin", budget);
}

/// Starts `sup` and checks that the child at `path` is stopped for going
/// over its CPU `budget`, with the CPU it used.
fn stopped_over_cpu_budget(sup: Supervisor, path: &'static str, budget: Duration) {
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, path);
    match fault.kind {
        FaultKind::BudgetExceeded {
            budget: Budget::Cpu { used, limit },
            runaway: false,
        } => {
            // How far past the budget it got depends on when the watchdog
            // was scheduled: no upper bound holds on a loaded machine.
            assert_eq!(limit, budget);
            assert!(used >= budget, "reported {used:?}");
        }
        other => panic!("expected a CPU budget fault, got {other:?}"),
    }
}

#[test]
fn a_rolling_cpu_rate_is_enforced() {
    let sup = Supervisor::new("rate")
        .watchdog_period(Duration::from_millis(20))
        .child(
            Child::new("spin", busy, ())
                .restart(Restart::Temporary)
                // 2 % of a core: a spinner reaches it even when it shares
                // the machine with a busy loop on every core.
                .limits(Limits::new().cpu_per(Duration::from_millis(20), Duration::from_secs(1))),
        );
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, "rate/spin");
    assert!(
        matches!(
            fault.kind,
            FaultKind::BudgetExceeded {
                budget: Budget::CpuRate { .. },
                ..
            }
        ),
        "{fault}"
    );
}

fn sleeper(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

#[test]
fn a_deadline_is_enforced_on_the_trees_clock() {
    let (clock, control) = MonotonicClock::manual();
    let sup = Supervisor::new("deadline").clock(clock).child(
        Child::new("slow", sleeper, ())
            .restart(Restart::Temporary)
            .limits(Limits::new().deadline(Duration::from_secs(5))),
    );
    let events = sup.events(64);
    let system = sup.start().unwrap();
    control.advance(Duration::from_secs(4));
    assert!(
        system
            .status()
            .find("deadline/slow")
            .unwrap()
            .last_fault
            .is_none(),
        "not yet"
    );
    control.advance(Duration::from_secs(2));
    let fault = fault_event(&events, "deadline/slow");
    assert_eq!(
        fault.kind,
        FaultKind::BudgetExceeded {
            budget: Budget::Deadline {
                limit: Duration::from_secs(5)
            },
            runaway: false
        }
    );
}

#[derive(Grant)]
struct Handler {
    requests: Receiver<Request<u32, u32>>,
    gate: Receiver<()>,
    skipped: Sender<bool>,
}

fn handler(g: Handler, cx: &Context) -> Result<(), String> {
    while let Ok(Request { body, reply }) = cx.recv_untracked(&g.requests) {
        cx.recv_untracked(&g.gate).map_err(|e| e.to_string())?;
        let expired = reply.is_expired();
        g.skipped.send(expired).map_err(|e| e.to_string())?;
        if !expired {
            let _ = reply.send(body + 1);
        }
    }
    Ok(())
}

#[test]
fn a_request_carries_its_deadline_to_the_handler() {
    let (requests, inbox) = channel::bounded(4).unwrap();
    let (gate, gate_rx) = channel::bounded(4).unwrap();
    let (skipped_tx, skipped) = channel::bounded(4).unwrap();
    let _system = Supervisor::new("requests")
        .child(Child::new(
            "handler",
            handler,
            Handler {
                requests: inbox,
                gate: gate_rx,
                skipped: skipped_tx,
            },
        ))
        .start()
        .unwrap();
    // The handler holds the request until the caller has given up.
    assert!(matches!(
        requests.call_timeout(1, Duration::from_millis(20)),
        Err(CallError::Timeout)
    ));
    gate.send(()).unwrap();
    assert!(
        skipped.recv_timeout(WAIT).unwrap(),
        "the handler saw the deadline had passed"
    );
    // Without a timeout the request has no deadline and is answered.
    gate.send(()).unwrap();
    assert_eq!(requests.call(41).unwrap(), 42);
    assert!(!skipped.recv_timeout(WAIT).unwrap());
}

/// Holds 100 MiB, then waits.
fn hog(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(vec![1u8; 1 << 20]);
        cx.check()?;
    }
    cx.sleep(Duration::from_secs(3600))?;
    drop(held);
    Ok(())
}

#[test]
fn a_100_mib_hog_against_a_10_mib_quota_is_faulted() {
    let quota = 10 << 20;
    let sup = Supervisor::new("memory").child(
        Child::new("hog", hog, ())
            .restart(Restart::Temporary)
            .limits(Limits::new().memory(quota)),
    );
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, "memory/hog");
    match fault.kind {
        FaultKind::BudgetExceeded {
            budget: Budget::Memory { held, limit },
            runaway: false,
        } => {
            assert_eq!(limit, quota);
            assert!(held > quota, "{held}");
        }
        other => panic!("expected a memory quota fault, got {other:?}"),
    }
}

static RUNAWAY_SAW: Mutex<Option<String>> = Mutex::new(None);
static RUNAWAY_DONE: AtomicBool = AtomicBool::new(false);

#[derive(Grant)]
struct Runaway {
    out: Sender<u32>,
}

/// Spins for a while without ever looking at its context, then finds its
/// grant revoked.
fn runaway(g: Runaway, _: &Context) -> Result<(), String> {
    let mut x: u64 = 1;
    for _ in 0..400_000_000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    *RUNAWAY_SAW.lock().unwrap() = Some(match g.out.try_send(1) {
        Err(e) if e.is_revoked() => "revoked".to_owned(),
        other => format!("{other:?}"),
    });
    RUNAWAY_DONE.store(true, Ordering::SeqCst);
    Ok(())
}

#[derive(Grant)]
struct Echo {
    requests: Receiver<Request<u32, u32>>,
}

fn echo(g: Echo, cx: &Context) -> Result<(), String> {
    while let Ok(Request { body, reply }) = cx.recv_untracked(&g.requests) {
        let _ = reply.send(body);
    }
    Ok(())
}

#[test]
fn a_runaway_is_revoked_and_detached_while_its_neighbour_keeps_working() {
    let (out, _received) = channel::bounded(4).unwrap();
    let (requests, inbox) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("runaway")
        .watchdog_period(Duration::from_millis(20))
        .child(
            Child::new("spinner", runaway, Runaway { out })
                .restart(Restart::Temporary)
                .shutdown(Duration::from_millis(100))
                .limits(Limits::new().cpu(Duration::from_millis(100))),
        )
        .child(Child::new("echo", echo, Echo { requests: inbox }));
    let events = sup.events(64);
    let system = sup.start().unwrap();

    // While the spinner burns CPU, the neighbour answers.
    for n in 0..20 {
        assert_eq!(requests.call_timeout(n, WAIT).unwrap(), n);
    }
    let fault = fault_event(&events, "runaway/spinner");
    assert!(
        matches!(
            fault.kind,
            FaultKind::BudgetExceeded {
                budget: Budget::Cpu { .. },
                runaway: true
            }
        ),
        "{fault}"
    );
    assert_eq!(system.status().leaked_threads, 1);
    // The neighbour still answers after the runaway was detached.
    assert_eq!(requests.call_timeout(99, WAIT).unwrap(), 99);

    // The detached thread, when it finally looks, holds nothing.
    for _ in 0..6000 {
        if RUNAWAY_DONE.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(RUNAWAY_SAW.lock().unwrap().as_deref(), Some("revoked"));
}

#[derive(Grant)]
struct Phases {
    starts: Sender<u64>,
}

/// The first instance spins until stopped; later ones idle.
fn phases(g: Phases, cx: &Context) -> Result<(), compartment::Cancelled> {
    let _ = g.starts.send(cx.instance());
    if cx.instance() == 1 {
        busy((), cx)
    } else {
        cx.sleep(Duration::from_secs(3600))
    }
}

#[test]
fn limits_re_arm_after_a_restart_and_show_in_status() {
    let budget = Duration::from_millis(200);
    let (starts, started) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("rearm")
        .intensity(3, WAIT)
        .watchdog_period(Duration::from_millis(20))
        .child(
            Child::new("worker", phases, Phases { starts })
                .limits(Limits::new().cpu(budget).memory(64 << 20)),
        );
    let events = sup.events(64);
    let system = sup.start().unwrap();
    assert_eq!(started.recv_timeout(WAIT).unwrap(), 1);
    let fault = fault_event(&events, "rearm/worker");
    assert!(
        matches!(fault.kind, FaultKind::BudgetExceeded { .. }),
        "{fault}"
    );
    assert_eq!(started.recv_timeout(WAIT).unwrap(), 2);
    events.wait_for(WAIT, |e| {
        e.path == "rearm/worker" && matches!(e.kind, EventKind::Restarted)
    });

    // The second instance starts with its whole budget and stays under it.
    let status = system.status();
    let node = status.find("rearm/worker").unwrap();
    assert_eq!(node.instance, 2);
    let usage = node.usage.expect("usage is reported for limited children");
    assert!(usage.cpu < budget, "{usage:?}");
    assert_eq!(usage.cpu_left, Some(budget - usage.cpu));
    let held = usage
        .memory
        .expect("the accounting allocator measures memory");
    assert_eq!(usage.memory_left, Some((64 << 20) - held));
    println!("{status}");
}

// ----- threads started through the context ------------------------------------

/// Spins until cancelled.
fn spin_until_cancelled(cancel: &compartment::Cancellation) {
    while cancel.check().is_ok() {
        burn();
    }
}

/// Waits until cancelled, without spinning.
fn idle_until_cancelled(cancel: &compartment::Cancellation) {
    while cancel.check().is_ok() {
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

fn spins_on_a_thread(_: (), cx: &Context) -> Result<(), String> {
    cx.spawn("spinner", spin_until_cancelled)
        .map_err(|e| e.to_string())?;
    cx.sleep(Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

#[test]
fn cpu_used_by_a_spawned_thread_counts_toward_its_instance() {
    let budget = Duration::from_millis(200);
    let sup = Supervisor::new("tcpu").child(
        Child::new("c", spins_on_a_thread, ())
            .restart(Restart::Temporary)
            .limits(Limits::new().cpu(budget)),
    );
    stopped_over_cpu_budget(sup, "tcpu/c", budget);
}

fn holds_memory_on_a_thread(_: (), cx: &Context) -> Result<(), String> {
    cx.spawn("hog", |cancel| {
        let held = vec![1u8; 64 << 20];
        idle_until_cancelled(cancel);
        std::hint::black_box(held);
    })
    .map_err(|e| e.to_string())?;
    cx.sleep(Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

#[test]
fn memory_held_by_a_spawned_thread_counts_toward_its_instance() {
    let sup = Supervisor::new("tmem").child(
        Child::new("c", holds_memory_on_a_thread, ())
            .restart(Restart::Temporary)
            .limits(Limits::new().memory(10 << 20)),
    );
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, "tmem/c");
    match fault.kind {
        FaultKind::BudgetExceeded {
            budget: Budget::Memory { held, limit },
            ..
        } => {
            assert_eq!(limit, 10 << 20);
            // Charges are batched per thread: exact to within 64 KiB.
            assert!(held >= (64 << 20) - (64 << 10), "held {held}");
        }
        other => panic!("expected a memory budget fault, got {other:?}"),
    }
}

#[derive(Grant)]
struct Report {
    spawned: Sender<Vec<Result<(), String>>>,
}

/// Starts three idle threads, reports which starts succeeded, and waits.
fn spawns_three(g: Report, cx: &Context) -> Result<(), String> {
    let mut handles = Vec::new();
    let mut results = Vec::new();
    for n in 0..3 {
        match cx.spawn(&format!("idle-{n}"), idle_until_cancelled) {
            Ok(handle) => {
                handles.push(handle);
                results.push(Ok(()));
            }
            Err(err) => results.push(Err(err.to_string())),
        }
    }
    g.spawned.send(results).map_err(|e| e.to_string())?;
    cx.sleep(Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

#[test]
fn an_instance_runs_at_most_its_thread_limit_and_status_counts_them() {
    let (spawned, results) = channel::bounded(1).unwrap();
    let sup = Supervisor::new("tlim")
        .child(Child::new("c", spawns_three, Report { spawned }).limits(Limits::new().threads(2)));
    let events = sup.events(64);
    let system = sup.start().unwrap();
    let results = results.recv_timeout(WAIT).unwrap();
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert_eq!(
        results[2],
        Err("the instance already runs 2 threads of its own, its limit".to_owned())
    );
    assert_eq!(system.status().find("tlim/c").unwrap().threads, 2);
    system.shutdown();
    // The instance stopped only once its threads had.
    let (stopped, seen) = events.wait_for(WAIT, |e| {
        e.path == "tlim/c" && matches!(e.kind, EventKind::Exited { .. })
    });
    assert!(stopped.is_some(), "{}", lines(&seen));
}

static FINISHED_AFTER_ITS_INSTANCE: AtomicBool = AtomicBool::new(false);

/// Returns at once, leaving one thread that stops when asked and one that
/// panics, neither joined.
fn leaves_threads_behind(_: (), cx: &Context) -> Result<(), String> {
    cx.spawn("lingers", |cancel| {
        idle_until_cancelled(cancel);
        FINISHED_AFTER_ITS_INSTANCE.store(true, Ordering::SeqCst);
    })
    .map_err(|e| e.to_string())?;
    cx.spawn("panics", |_| panic!("a helper thread panicked"))
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn an_instance_ends_after_its_threads_and_an_unjoined_panic_is_its_fault() {
    let sup = Supervisor::new("tend")
        .child(Child::new("c", leaves_threads_behind, ()).restart(Restart::Temporary));
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, "tend/c");
    assert!(
        FINISHED_AFTER_ITS_INSTANCE.load(Ordering::SeqCst),
        "the lingering thread had ended before the instance's exit"
    );
    assert!(fault.is_panic(), "{fault}");
    assert!(
        fault.message().contains("thread `panics` panicked"),
        "{fault}"
    );
    assert!(
        fault.message().contains("a helper thread panicked"),
        "{fault}"
    );
}

/// Collects 100 buffers of 60 KiB, each allocated by a short-lived thread
/// of its own (less than the 64 KiB a thread batches before publishing).
fn collects_from_short_threads(_: (), cx: &Context) -> Result<(), String> {
    let mut kept = Vec::new();
    for n in 0..100 {
        let buffer = cx
            .spawn(&format!("maker-{n}"), |_| vec![1u8; 60 << 10])
            .map_err(|e| e.to_string())?
            .join()
            .map_err(|e| e.to_string())?;
        kept.push(buffer);
    }
    cx.sleep(Duration::from_secs(3600))
        .map_err(|e| e.to_string())?;
    drop(kept);
    Ok(())
}

#[test]
fn what_short_lived_threads_allocated_is_not_lost_when_they_end() {
    let sup = Supervisor::new("tshort").child(
        Child::new("c", collects_from_short_threads, ())
            .restart(Restart::Temporary)
            .limits(Limits::new().memory(4 << 20)),
    );
    let events = sup.events(64);
    let _system = sup.start().unwrap();
    let fault = fault_event(&events, "tshort/c");
    assert!(
        matches!(
            fault.kind,
            FaultKind::BudgetExceeded {
                budget: Budget::Memory { .. },
                ..
            }
        ),
        "{fault}"
    );
}
