//! With the `tracing` feature, lifecycle events are also `tracing` events
//! under the target `compartment`. Its own test binary: the global default
//! subscriber is process-wide.

#![cfg(feature = "tracing")]

use std::sync::Mutex;
use std::time::Duration;

use compartment::event::EventKind;
use compartment::{Child, Context, Restart, Supervisor};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records (level, message) of every event of the `compartment` target.
struct Recorder;

static SEEN: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "compartment"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.contains("tracebomb/") {
            panic!("the subscriber panicked on {}", message.0);
        }
        SEEN.lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn fails(_: (), _: &Context) -> Result<(), String> {
    Err("unavailable".into())
}

#[allow(
    clippy::disallowed_methods,
    reason = "the test is the granting side: it installs the subscriber the bridge reports to"
)]
fn install() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| tracing::subscriber::set_global_default(Recorder).unwrap());
}

fn waits(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

#[test]
fn a_subscriber_that_panics_does_not_take_the_tree_down() {
    install();
    let sup = Supervisor::new("tracebomb")
        .intensity(10, Duration::from_secs(3600))
        .child(Child::new("waits", waits, ()))
        .child(Child::new("f", fails, ()).restart(Restart::Temporary));
    let events = sup.events(64);
    let system = sup.start().unwrap();
    // Every event of this tree panics in the subscriber; the tree's own
    // stream still gets them, and the supervisor still serves.
    let (fault, _) = events.wait_for(Duration::from_secs(20), |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    assert!(fault.is_some());
    assert_eq!(system.status().find("tracebomb/waits").unwrap().instance, 1);
    assert_eq!(system.shutdown(), compartment::SystemExit::Shutdown);
    let (stopped, _) = events.wait_for(Duration::from_secs(20), |e| {
        e.path == "tracebomb/waits" && matches!(e.kind, EventKind::Exited { .. })
    });
    assert!(stopped.is_some());
}

#[test]
fn lifecycle_events_reach_tracing_at_matching_levels() {
    install();
    let sup =
        Supervisor::new("traced").child(Child::new("f", fails, ()).restart(Restart::Temporary));
    let events = sup.events(16);
    let system = sup.start().unwrap();
    let (fault, _) = events.wait_for(Duration::from_secs(20), |e| {
        matches!(e.kind, EventKind::Faulted { .. })
    });
    assert!(fault.is_some());
    system.shutdown();
    let seen = SEEN.lock().unwrap();
    assert!(
        seen.iter()
            .any(|(level, m)| *level == Level::INFO && m.contains("traced/f#1 started")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(level, m)| *level == Level::ERROR
            && m.contains("traced/f#1 FAULTED: failed: unavailable")),
        "{seen:?}"
    );
}
