//! `Grant`: re-issue, enumeration and the derive.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Sandbox;
use compartment::caps::{
    Capability, Dir, Env, MonotonicClock, Random, RandomSource, ReadOnlyDir, Rights,
};
use compartment::channel::{self, Receiver, Sender};
use compartment::{Grant, Revoker, Segment};

#[derive(Grant)]
struct Resizer {
    jobs: Receiver<String>,
    originals: ReadOnlyDir,
    thumbs: Dir,
    done: Sender<String>,
    quality: u8,
    #[grant(data)]
    profile: Profile,
}

#[derive(Clone, Debug, PartialEq)]
struct Profile {
    name: String,
}

#[derive(Grant)]
struct Tenant(Dir, Option<Env>);

#[derive(Grant)]
enum Storage {
    Local { dir: Dir },
    Memory,
    Mirrored(Dir, ReadOnlyDir),
}

#[derive(Grant)]
struct Wrapper<T> {
    inner: T,
    extra: Vec<T>,
}

#[derive(Grant)]
struct Unit;

fn resizer(sandbox: &Sandbox) -> (Resizer, Sender<String>, Receiver<String>) {
    let root = sandbox.root();
    root.create_dir_all("originals").unwrap();
    root.create_dir_all("thumbs").unwrap();
    let (jobs_tx, jobs) = channel::bounded(4).unwrap();
    let (done, done_rx) = channel::bounded(4).unwrap();
    let grant = Resizer {
        jobs,
        originals: root.open_dir("originals").unwrap().into_read_only(),
        thumbs: root.open_dir("thumbs").unwrap(),
        done,
        quality: 80,
        profile: Profile { name: "web".into() },
    };
    (grant, jobs_tx, done_rx)
}

#[test]
fn inventory_lists_every_capability_with_field_rights_and_descriptor() {
    let sandbox = Sandbox::new();
    let (grant, jobs_tx, done_rx) = resizer(&sandbox);
    let inventory = grant.inventory();
    let rows: Vec<(String, Capability)> = inventory
        .iter()
        .map(|h| (h.field().to_owned(), h.capability().clone()))
        .collect();
    assert_eq!(rows.len(), 5, "{inventory}");
    assert_eq!(rows[0].0, "jobs");
    assert_eq!(
        rows[0].1,
        Capability::Receiver {
            channel: jobs_tx.id(),
            message: "alloc::string::String",
            capacity: 4
        }
    );
    assert_eq!(
        rows[1],
        (
            "originals".into(),
            Capability::Dir {
                rights: Rights::ReadOnly
            }
        )
    );
    assert_eq!(
        rows[2],
        (
            "thumbs".into(),
            Capability::Dir {
                rights: Rights::Full
            }
        )
    );
    assert!(matches!(rows[3].1, Capability::Sender { channel, .. } if channel == done_rx.id()));
    assert_eq!(rows[4].0, "profile");
    assert!(matches!(rows[4].1, Capability::Data { type_name } if type_name.ends_with("Profile")));

    let dirs: Vec<_> = inventory.iter().filter_map(|h| h.descriptor()).collect();
    assert_eq!(dirs.len(), 2, "both directories report a descriptor");
    assert_ne!(dirs[0].number(), dirs[1].number());
    let text = inventory.to_string();
    assert!(
        text.contains("originals: directory (read-only) [fd "),
        "{text}"
    );
}

#[test]
fn reissued_grants_are_independent() {
    let sandbox = Sandbox::new();
    let (original, jobs_tx, done_rx) = resizer(&sandbox);
    let copy = original.reissue().unwrap();
    assert_eq!(copy.quality, 80);
    assert_eq!(copy.profile, original.profile);

    // Fresh descriptors, not shared ones.
    let fds = |g: &Resizer| -> BTreeSet<i32> {
        g.inventory()
            .iter()
            .filter_map(|h| h.descriptor())
            .map(|d| d.number())
            .collect()
    };
    assert!(fds(&original).is_disjoint(&fds(&copy)));

    // Dropping the copy leaves the original fully usable, and the other way round.
    copy.thumbs.write("from-copy", b"1").unwrap();
    drop(copy);
    original.thumbs.write("from-original", b"2").unwrap();
    jobs_tx.send("cat".into()).unwrap();
    assert_eq!(original.jobs.recv().unwrap(), "cat");
    let second = original.reissue().unwrap();
    drop(original);
    assert_eq!(second.thumbs.read("from-copy").unwrap(), b"1");
    second.done.send("ok".into()).unwrap();
    assert_eq!(done_rx.recv().unwrap(), "ok");
}

#[test]
fn a_reissued_channel_endpoint_is_the_same_mailbox() {
    let (tx, rx) = channel::bounded::<u32>(8).unwrap();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    let first = rx.reissue().unwrap();
    assert_eq!(first.recv().unwrap(), 0);
    drop(first); // an instance dies
    let second = rx.reissue().unwrap();
    assert_eq!(
        second.try_iter().collect::<Vec<_>>(),
        [1, 2],
        "nothing queued was lost"
    );
}

#[test]
fn derive_handles_tuple_structs_enums_generics_and_units() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let tenant = Tenant(
        root.try_clone().unwrap(),
        Some(Env::from_vars([("A", "1")]).unwrap()),
    );
    let fields: Vec<String> = tenant
        .inventory()
        .iter()
        .map(|h| h.field().to_owned())
        .collect();
    assert_eq!(fields, ["0", "1"]);
    assert_eq!(
        tenant.reissue().unwrap().1.unwrap().get("A").unwrap(),
        Some("1")
    );

    let storage = Storage::Mirrored(root.try_clone().unwrap(), root.read_only().unwrap());
    let fields: Vec<String> = storage
        .inventory()
        .iter()
        .map(|h| h.field().to_owned())
        .collect();
    assert_eq!(fields, ["Mirrored.0", "Mirrored.1"]);
    assert!(matches!(storage.reissue().unwrap(), Storage::Mirrored(..)));
    let local = Storage::Local {
        dir: root.try_clone().unwrap(),
    };
    assert_eq!(
        local.inventory().iter().next().unwrap().field(),
        "Local.dir"
    );
    assert!(Storage::Memory.inventory().is_empty());

    let (clock, _control) = MonotonicClock::manual();
    let wrapper = Wrapper {
        inner: clock.clone(),
        extra: vec![clock.clone(), clock],
    };
    let fields: Vec<String> = wrapper
        .inventory()
        .iter()
        .map(|h| h.field().to_owned())
        .collect();
    assert_eq!(fields, ["inner", "extra[0]", "extra[1]"]);
    assert!(Unit.inventory().is_empty());
    assert!(Unit.reissue().is_ok());
}

#[test]
fn std_containers_and_plain_data_are_grants() {
    let (tx, _rx) = channel::bounded::<()>(1).unwrap();
    let grant = (
        [Random::seeded(1), Random::seeded(2)],
        Box::new(Some(tx)),
        None::<Dir>,
        (
            "name".to_owned(),
            3.5f64,
            'c',
            true,
            Duration::from_secs(1),
            std::path::PathBuf::from("x"),
        ),
    );
    let held: Vec<(String, Capability)> = grant
        .inventory()
        .iter()
        .map(|h| (h.field().to_owned(), h.capability().clone()))
        .collect();
    assert_eq!(held.len(), 3);
    assert_eq!(
        held[0],
        (
            "0[0]".into(),
            Capability::Random {
                source: RandomSource::Seeded
            }
        )
    );
    assert_eq!(held[1].0, "0[1]");
    assert_eq!(held[2].0, "1");
    let copy = grant.reissue().unwrap();
    assert_eq!(copy.3.0, "name");
}

#[test]
fn revocable_marks_every_capability_and_leaves_data_alone() {
    let sandbox = Sandbox::new();
    let (grant, _jobs, _done) = resizer(&sandbox);
    let revoker = Revoker::new();
    let mut grant = grant;
    grant.attach_revoker(&revoker);
    for held in grant.inventory().iter() {
        let data = matches!(held.capability(), Capability::Data { .. });
        assert_eq!(held.is_revocable(), !data, "{held}");
    }
    revoker.revoke();
    assert_eq!(grant.quality, 80, "plain data is untouched");
    assert!(grant.thumbs.write("x", b"").unwrap_err().is_revoked());
}

#[test]
fn reissue_errors_name_the_field_path() {
    let err =
        compartment::ReissueError::new("directory", std::io::Error::other("out of descriptors"))
            .within(Segment::Field("thumbs"))
            .within(Segment::Index(2))
            .within(Segment::Field("tenants"));
    assert_eq!(err.field(), "tenants[2].thumbs");
    assert_eq!(
        err.to_string(),
        "could not re-issue the directory at `tenants[2].thumbs`: out of descriptors"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn the_inventory_names_types_without_their_paths() {
    let (jobs, _inbox) = channel::bounded::<Vec<Profile>>(4).unwrap();
    let grant = (jobs, String::from("plain data"));
    let text = grant.inventory().to_string();
    assert!(text.contains("sender on channel #"), "{text}");
    assert!(text.contains(" of Vec<Profile> (capacity 4)"), "{text}");
    assert!(!text.contains("::"), "{text}");
}

#[test]
fn maps_of_capabilities_are_grants() {
    let sandbox = Sandbox::new();
    let mut tenants = std::collections::BTreeMap::new();
    tenants.insert("acme".to_owned(), sandbox.root());
    tenants.insert("globex".to_owned(), sandbox.root().open_dir(".").unwrap());
    let copy = tenants.reissue().unwrap();
    assert_eq!(copy.keys().collect::<Vec<_>>(), ["acme", "globex"]);
    let inventory = copy.inventory();
    let fields: Vec<String> = inventory
        .iter()
        .map(|held| held.field().to_owned())
        .collect();
    assert_eq!(fields, ["[0]", "[1]"]);
    let (mut shared, revoker) = (copy, Revoker::new());
    shared.attach_revoker(&revoker);
    revoker.revoke();
    assert!(shared["acme"].read("x").unwrap_err().is_revoked());
}
