//! The escape battery against our own grants: the tour's components and a
//! deliberately broad grant; then random operation sequences, seeded so a
//! failure repeats, shrunk before they are reported. Any escape fails.
//! (`fuzz/` drives the same sequences with coverage guidance.)
//!
//! Run with `cargo test --all-features --test escape -- --nocapture` to see
//! the reports.

#![allow(
    clippy::disallowed_methods,
    reason = "these tests are the granting side: they mint the authority they probe"
)]

use std::net::{IpAddr, Ipv4Addr};

use compartment::caps::{
    Dir, Env, MonotonicClock, Net, NetRule, OpenOptions, Random, ReadOnlyDir, SystemClock,
};
use compartment::channel::{self, Receiver, Sender};
use compartment::testkit::{Report, Sandbox, ops, probe};
use compartment::{Grant, ambient_authority};

fn assert_contained(name: &str, report: &Report, at_least: usize) {
    println!("== {name}\n{report}\n");
    let made = report.made().count();
    assert!(made >= at_least, "{name}: only {made} attempts");
    assert!(report.escapes().is_empty(), "{name} escaped:\n{report}");
}

// The tour's grants, rebuilt over a sandbox shaped like the tour's data.

#[derive(Grant)]
struct Intake {
    uploads: Receiver<String>,
    tenants: Dir,
    jobs: Sender<String>,
}

#[derive(Grant)]
struct Thumbnailer {
    jobs: Receiver<String>,
    originals: ReadOnlyDir,
    thumbs: Dir,
    done: Sender<String>,
}

#[derive(Grant)]
struct Analytics {
    own_files: ReadOnlyDir,
    audit: Sender<String>,
}

#[derive(Grant)]
struct Exporter {
    outage: Receiver<()>,
    ledger: Dir,
}

fn tour_data() -> Sandbox {
    Sandbox::builder()
        .file("tenants/acme/report.pdf", "%PDF acme")
        .file("tenants/globex/banner.gif", "GIF89a")
        .dir("thumbs")
        .dir("billing")
        .build(ambient_authority())
        .unwrap()
}

#[test]
fn the_tours_components_do_not_escape() {
    let data = tour_data();
    let root = data.dir().unwrap();
    let (uploads_tx, uploads) = channel::bounded(4).unwrap();
    let (jobs, jobs_rx) = channel::bounded(4).unwrap();
    let (done, _done_rx) = channel::bounded(4).unwrap();
    let (audit, _audit_rx) = channel::bounded(4).unwrap();
    let (_outage_tx, outage) = channel::bounded(4).unwrap();

    let mut report = probe(&Intake {
        uploads,
        tenants: root.open_dir("tenants").unwrap(),
        jobs,
    });
    report.merge(probe(&Thumbnailer {
        jobs: jobs_rx,
        originals: root.open_dir("tenants").unwrap().into_read_only(),
        thumbs: root.open_dir("thumbs").unwrap(),
        done,
    }));
    report.merge(probe(&Analytics {
        own_files: root.open_dir("tenants/globex").unwrap().into_read_only(),
        audit,
    }));
    report.merge(probe(&Exporter {
        outage,
        ledger: root.open_dir("billing").unwrap(),
    }));
    drop(uploads_tx);
    assert_contained("the tour's components", &report, 30);
    data.canary().check().unwrap();
}

#[derive(Grant)]
struct Broad {
    root: Dir,
    everything: ReadOnlyDir,
    writable: compartment::caps::File,
    readable: compartment::caps::ReadOnlyFile,
    net: Net,
    env: Env,
    clock: MonotonicClock,
    wall: SystemClock,
    random: Random,
    inbox: Receiver<u64>,
}

#[test]
fn a_deliberately_broad_grant_does_not_escape() {
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let root = sandbox.dir().unwrap();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (_tx, inbox) = channel::bounded(4).unwrap();
    let grant = Broad {
        writable: root
            .open_with("notes.txt", OpenOptions::new().read(true).write(true))
            .unwrap(),
        readable: sandbox.read_only().unwrap().open("docs/readme.md").unwrap(),
        everything: sandbox.read_only().unwrap(),
        root,
        net: Net::new(
            [
                NetRule::connect(loopback, 8000..=8100),
                NetRule::bind(loopback, 0..=0),
            ],
            ambient_authority(),
        ),
        env: Env::snapshot(["PATH"], ambient_authority()).unwrap(),
        clock: MonotonicClock::new(ambient_authority()),
        wall: SystemClock::new(ambient_authority()),
        random: Random::os(ambient_authority()),
        inbox,
    };
    let report = probe(&grant);
    assert_contained("a deliberately broad grant", &report, 60);
    sandbox.canary().check().unwrap();
}

#[test]
fn the_standard_fixture_has_every_kind_of_entry() {
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let root = sandbox.read_only().unwrap();
    let kind = |path: &str| root.symlink_metadata(path).unwrap().file_type();
    assert!(kind("notes.txt").is_file());
    assert!(kind("docs/deep/er").is_dir());
    for link in [
        "docs/latest",
        "links/abs-canary",
        "links/rel-canary",
        "links/dangling",
        "links/chain-1",
        "links/loop-a",
    ] {
        assert!(kind(link).is_symlink(), "{link}");
    }
    assert_eq!(
        root.read("docs/latest").unwrap(),
        b"readme",
        "an inside link works"
    );
    assert_eq!(
        root.read("hardlink").unwrap(),
        compartment::testkit::CANARY_CONTENT
    );
    use cap_std::fs::FileTypeExt;
    assert!(kind("pipe").is_fifo());
    sandbox.canary().check().unwrap();
}

/// Thousands of random operation sequences through a full and a read-only
/// capability; nothing outside the root may change.
#[test]
fn random_operation_sequences_stay_inside() {
    let mut state = 0x00C0_FFEE;
    for case in 0..2000 {
        let len = (next_random(&mut state) % 200) as usize;
        let data: Vec<u8> = (0..len).map(|_| next_random(&mut state) as u8).collect();
        if ops::check_sequence(&data, ambient_authority()).is_err() {
            let shrunk = shrink(data, |data| {
                ops::check_sequence(data, ambient_authority()).is_err()
            });
            let err = ops::check_sequence(&shrunk, ambient_authority()).unwrap_err();
            panic!("random sequence {case}, shrunk to {shrunk:?}: {err}");
        }
    }
}

/// SplitMix64: a seeded stream, so every run tries the same sequences.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The shortest sequence found by dropping ever smaller runs of bytes while
/// `fails` still holds: what a reader of the failure needs to look at.
fn shrink(mut data: Vec<u8>, fails: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut run = data.len().div_ceil(2);
    while run > 0 {
        let mut at = 0;
        while at < data.len() {
            let mut candidate = data.clone();
            candidate.drain(at..(at + run).min(data.len()));
            if fails(&candidate) {
                data = candidate;
            } else {
                at += run;
            }
        }
        run /= 2;
    }
    data
}

#[test]
fn shrinking_keeps_what_makes_a_sequence_fail() {
    // Fails while it holds a 7 followed, anywhere later, by a 9.
    let fails = |data: &[u8]| {
        data.iter()
            .position(|b| *b == 7)
            .is_some_and(|at| data[at..].contains(&9))
    };
    let data = vec![1, 2, 7, 3, 4, 5, 9, 6, 8];
    assert!(fails(&data));
    assert_eq!(shrink(data, fails), vec![7, 9]);
}
