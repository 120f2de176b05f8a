//! The application's panic hook is chained, not replaced, and a supervised
//! panic is printed at most once. Its own test binary: panic hooks are
//! process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use compartment::event::EventKind;
use compartment::{Child, Context, Restart, Supervisor};

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

fn panics(_: (), _: &Context) -> Result<(), String> {
    panic!("supervised panic");
}

fn run_once(forward: bool) -> compartment::Fault {
    let sup = Supervisor::new("hooked")
        .forward_panics(forward)
        .child(Child::new("p", panics, ()).restart(Restart::Temporary));
    let events = sup.events(16);
    let _system = sup.start().unwrap();
    let (event, _) = events.wait_for(Duration::from_secs(20), |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    match event.expect("a fault").kind {
        EventKind::Faulted { fault } => fault,
        _ => unreachable!(),
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test is the application: it installs its hook before any supervisor"
)]
fn the_applications_hook_is_chained_and_called_once_per_panic() {
    // The application installs its hook before any supervisor starts.
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));

    let fault = run_once(true);
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1, "forwarded once");
    assert!(
        fault.to_string().contains("panic_hook.rs"),
        "the crate's hook saw the location: {fault}"
    );

    let fault = run_once(false);
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "not forwarded when told not to"
    );
    assert!(fault.to_string().contains("panic_hook.rs"), "{fault}");

    // Unsupervised threads still reach the application's hook.
    #[allow(
        clippy::disallowed_methods,
        reason = "an unsupervised thread is what is tested"
    )]
    let _ = std::thread::spawn(|| panic!("unsupervised")).join();
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 2);
}
