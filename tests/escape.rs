//! The escape battery against our own grants: the tour's components and a
//! deliberately broad grant; then random operation sequences, as a seeded
//! property test. Any escape fails.
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
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

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

proptest! {
    #![proptest_config(Config {
        cases: 2000,
        rng_seed: RngSeed::Fixed(0x00C0_FFEE),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Thousands of random operation sequences through a full and a
    /// read-only capability; nothing outside the root may change.
    #[test]
    fn random_operation_sequences_stay_inside(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(err) = ops::check_sequence(&data, ambient_authority()) {
            prop_assert!(false, "{}", err);
        }
    }
}
