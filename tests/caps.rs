//! Capability types: what each allows, what each denies, and the errors it
//! gives.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;

use cap_std::fs::PermissionsExt;
use common::{Sandbox, access_mode};
use compartment::Grant;
use compartment::caps::{
    Capability, Env, EnvError, FsError, FsOp, InvalidPath, MonotonicClock, Net, NetAccess,
    NetError, NetRule, OpenOptions, Random, RandomError, Rights, SystemClock, Transport,
};

fn descriptor_of(grant: &impl Grant) -> i32 {
    grant
        .inventory()
        .iter()
        .next()
        .and_then(|held| held.descriptor())
        .expect("a descriptor")
        .number()
}

#[test]
fn full_dir_does_what_cap_std_does_inside_its_tree() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("a/b").unwrap();
    root.write("a/b/f.txt", b"hello").unwrap();
    assert_eq!(root.read_to_string("a/b/f.txt").unwrap(), "hello");

    let mut file = root
        .open_with("a/b/f.txt", OpenOptions::new().append(true))
        .unwrap();
    file.write_all(b", world").unwrap();
    assert_eq!(root.read("a/b/f.txt").unwrap(), b"hello, world");

    root.rename("a/b/f.txt", &root, "a/g.txt").unwrap();
    root.hard_link("a/g.txt", &root, "a/h.txt").unwrap();
    assert_eq!(root.copy("a/g.txt", &root, "a/i.txt").unwrap(), 12);
    root.symlink("g.txt", "a/link").unwrap();
    assert_eq!(root.read("a/link").unwrap(), b"hello, world");
    assert_eq!(root.read_link("a/link").unwrap().to_str(), Some("g.txt"));

    let mut names: Vec<String> = root
        .read_dir("a")
        .unwrap()
        .map(|e| e.unwrap().name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "g.txt", "h.txt", "i.txt", "link"]);

    root.remove_file("a/link").unwrap();
    assert!(root.is_file("a/g.txt"));
    root.remove_dir_all("a").unwrap();
    assert!(!root.exists("a"));
    sandbox.assert_canary_intact();
}

#[test]
fn absolute_paths_and_climbs_are_refused_everywhere() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir("sub").unwrap();
    let sub = root.open_dir("sub").unwrap();
    let canary = sandbox.canary_path();

    for path in [
        canary.to_str().unwrap(),
        "/etc/hostname",
        "..",
        "../canary",
        "../../canary",
        "x/../../canary",
        "./../canary",
    ] {
        let err = sub.read(path).unwrap_err();
        assert!(
            matches!(err, FsError::Escape { op: FsOp::Read, .. }),
            "{path}: {err}"
        );
        assert!(sub.open_dir(path).unwrap_err().is_refusal(), "{path}");
        assert!(sub.write(path, b"x").unwrap_err().is_refusal(), "{path}");
        assert!(sub.metadata(path).unwrap_err().is_refusal(), "{path}");
        assert!(sub.remove_file(path).unwrap_err().is_refusal(), "{path}");
    }
    // Inside the tree, `..` is fine as long as it stays below the root.
    sub.write("x", b"1").unwrap();
    assert_eq!(root.read("sub/../sub/x").unwrap(), b"1");
    sandbox.assert_canary_intact();
}

#[test]
fn symlinks_planted_to_the_outside_are_not_followed() {
    let sandbox = Sandbox::new();
    sandbox.plant_symlink(sandbox.canary_path(), "abs");
    sandbox.plant_symlink("../canary", "rel");
    sandbox.plant_symlink(&sandbox.outer, "outer_dir");
    let root = sandbox.root();

    for link in ["abs", "rel"] {
        assert!(root.read(link).unwrap_err().is_refusal(), "{link}");
        assert!(root.open(link).unwrap_err().is_refusal(), "{link}");
        assert!(
            root.write(link, b"overwritten").unwrap_err().is_refusal(),
            "{link}"
        );
        assert!(root.metadata(link).unwrap_err().is_refusal(), "{link}");
        // The link itself lives inside and can be inspected or removed.
        assert!(
            root.symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert!(root.open_dir("outer_dir").unwrap_err().is_refusal());
    assert!(root.read("outer_dir/canary").unwrap_err().is_refusal());
    assert!(root.read_dir("outer_dir").unwrap_err().is_refusal());
    root.remove_file("abs").unwrap();
    sandbox.assert_canary_intact();
}

#[test]
fn escaping_symlinks_cannot_be_created() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("a/b").unwrap();
    let canary = sandbox.canary_path();

    for (target, link) in [
        (canary.to_str().unwrap(), "abs"),
        ("/etc/passwd", "passwd"),
        ("../canary", "rel"),
        ("../../x", "a/b/up"),
        ("../b", "a/b/sibling"), // inside today, outside after `rename("a/b", "b")`
        ("x/../../canary", "a/mixed"),
        ("..", "a/parent"),
    ] {
        let err = root.symlink(target, link).unwrap_err();
        assert!(
            matches!(err, FsError::EscapingSymlink { .. }),
            "{target}: {err}"
        );
        assert!(!root.exists(link), "{link} was created");
    }
    root.symlink("b/target", "a/down").unwrap();
    root.symlink("./b", "a/here").unwrap();
    sandbox.assert_canary_intact();
}

#[test]
fn invalid_names_get_typed_errors() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let err = root.read("").unwrap_err();
    assert!(
        matches!(
            err,
            FsError::InvalidPath {
                reason: InvalidPath::Empty,
                ..
            }
        ),
        "{err}"
    );
    let err = root.create("bad\0name").unwrap_err();
    assert!(matches!(
        err,
        FsError::InvalidPath {
            reason: InvalidPath::Nul,
            op: FsOp::Create,
            ..
        }
    ));
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = root.symlink("ok", "").unwrap_err();
    assert!(matches!(err, FsError::InvalidPath { .. }), "{err}");
    let err = root.symlink("bad\0", "link").unwrap_err();
    assert!(matches!(err, FsError::InvalidPath { .. }), "{err}");
    let long = "x".repeat(300);
    let err = root.write(&long, b"").unwrap_err();
    assert!(matches!(err, FsError::Io { .. }), "{err}");
    assert_eq!(err.path().to_str(), Some(long.as_str()));
}

#[test]
fn set_id_bits_are_refused() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("tool", b"#!/bin/sh\n").unwrap();
    for mode in [0o4755, 0o2755, 0o6755] {
        let err = root
            .set_permissions("tool", cap_std::fs::Permissions::from_mode(mode))
            .unwrap_err();
        assert!(
            matches!(err, FsError::SetIdRefused { .. }),
            "{mode:o}: {err}"
        );
        let file = root.open("tool").unwrap();
        let err = file
            .set_permissions(cap_std::fs::Permissions::from_mode(mode))
            .unwrap_err();
        assert!(
            matches!(err, FsError::SetIdRefused { .. }),
            "{mode:o}: {err}"
        );
    }
    root.set_permissions("tool", cap_std::fs::Permissions::from_mode(0o755))
        .unwrap();
    assert_eq!(
        root.metadata("tool").unwrap().permissions().mode() & 0o7777,
        0o755
    );
}

#[test]
fn read_only_dir_reads_and_lists_and_narrows_read_only() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("docs/deep").unwrap();
    root.write("docs/deep/a.txt", b"A").unwrap();
    let docs = root.read_only().unwrap().open_dir("docs").unwrap();

    assert_eq!(docs.read("deep/a.txt").unwrap(), b"A");
    let mut contents = String::new();
    docs.open("deep/a.txt")
        .unwrap()
        .read_to_string(&mut contents)
        .unwrap();
    assert_eq!(contents, "A");
    assert_eq!(docs.entries().unwrap().count(), 1);
    assert!(docs.is_dir("deep"));
    assert_eq!(
        docs.canonicalize("deep/../deep/a.txt").unwrap().to_str(),
        Some("deep/a.txt")
    );

    let deep = docs.open_dir("deep").unwrap();
    assert_eq!(
        *deep.inventory().iter().next().unwrap().capability(),
        Capability::Dir {
            rights: Rights::ReadOnly
        }
    );
    assert!(deep.open_dir("..").unwrap_err().is_refusal());
    assert!(deep.read("../../canary").unwrap_err().is_refusal());
}

#[test]
fn files_opened_through_a_read_only_dir_are_read_only_for_the_kernel() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.write("data", b"0123456789").unwrap();
    let read_only = root.read_only().unwrap();

    let mut file = read_only.open("data").unwrap();
    assert_eq!(access_mode(descriptor_of(&file)), 0, "O_RDONLY");
    file.seek(SeekFrom::Start(5)).unwrap();
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, b"56789");

    // The same file through the full capability can be opened for writing.
    let writable = root
        .open_with("data", OpenOptions::new().read(true).write(true))
        .unwrap();
    assert_eq!(access_mode(descriptor_of(&writable)), 2, "O_RDWR");
    assert!(writable.rights().write);
    // `Dir::open` is read-only too: writing fails in the kernel.
    let mut plain = root.open("data").unwrap();
    assert!(plain.write_all(b"x").is_err());
    assert_eq!(root.read("data").unwrap(), b"0123456789");
}

#[test]
fn narrowing_keeps_rights_and_does_not_expose_the_parent() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("tenants/acme").unwrap();
    root.create_dir_all("tenants/globex").unwrap();
    root.write("tenants/globex/secret", b"s").unwrap();
    let acme = root.open_dir("tenants/acme").unwrap();
    acme.write("ok", b"1").unwrap();
    assert!(acme.read("../globex/secret").unwrap_err().is_refusal());
    assert!(acme.open_dir("../globex").unwrap_err().is_refusal());
    assert!(
        acme.rename("ok", &acme, "../globex/stolen")
            .unwrap_err()
            .is_refusal()
    );
    assert!(!root.exists("tenants/globex/stolen"));
    assert_eq!(
        *acme.inventory().iter().next().unwrap().capability(),
        Capability::Dir {
            rights: Rights::Full
        }
    );
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn net_connects_and_binds_only_where_its_rules_say() {
    let host = Net::new(
        [NetRule::bind(loopback(0).ip(), 0..=0)],
        cap_std::ambient_authority(),
    );
    let listener = host.bind_tcp(loopback(0)).unwrap();
    let port = listener.local_addr().unwrap().port();

    let client = Net::new(
        [NetRule::connect(loopback(0).ip(), port..=port)],
        cap_std::ambient_authority(),
    );
    let mut stream = client.connect_tcp(loopback(port)).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    stream.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    let other = port.checked_add(1).unwrap_or(port - 1);
    let err = client.connect_tcp(loopback(other)).unwrap_err();
    assert!(matches!(err, NetError::NotGranted { .. }), "{err}");
    let err = client
        .connect_tcp("127.0.0.2:80".parse().unwrap())
        .unwrap_err();
    assert!(err.is_refusal());
    // A connect rule does not permit binding, and vice versa.
    assert!(client.bind_tcp(loopback(port)).unwrap_err().is_refusal());
    assert!(host.connect_tcp(loopback(port)).unwrap_err().is_refusal());
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn udp_sends_only_to_granted_addresses() {
    let net = Net::new(
        [
            NetRule::bind(loopback(0).ip(), 0..=0).udp(),
            NetRule::connect(loopback(0).ip(), 1..=1023).udp(),
        ],
        cap_std::ambient_authority(),
    );
    let a = net.bind_udp(loopback(0)).unwrap();
    let b = net.bind_udp(loopback(0)).unwrap();
    let b_port = b.local_addr().unwrap().port();
    let err = a.send_to(b"x", loopback(b_port)).unwrap_err();
    assert!(
        matches!(err, NetError::NotGranted { .. }),
        "port {b_port} is above 1023: {err}"
    );
    assert!(a.connect(loopback(b_port)).unwrap_err().is_refusal());
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn tcp_and_udp_rules_permit_only_their_own_transport() {
    let tcp_only = Net::new(
        [NetRule::bind(loopback(0).ip(), 0..=0)],
        cap_std::ambient_authority(),
    );
    let err = tcp_only.bind_udp(loopback(0)).unwrap_err();
    assert!(matches!(err, NetError::NotGranted { .. }), "{err}");
    tcp_only.bind_tcp(loopback(0)).unwrap();
    let udp_only = Net::new(
        [NetRule::bind(loopback(0).ip(), 0..=0).udp()],
        cap_std::ambient_authority(),
    );
    let err = udp_only.bind_tcp(loopback(0)).unwrap_err();
    assert!(matches!(err, NetError::NotGranted { .. }), "{err}");
    udp_only.bind_udp(loopback(0)).unwrap();
}

#[test]
fn net_rules_are_validated_and_displayed() {
    let ip = "10.0.0.0".parse().unwrap();
    assert!(matches!(
        NetRule::connect_net(ip, 33, 1..=2),
        Err(NetError::InvalidRule { .. })
    ));
    #[allow(
        clippy::reversed_empty_ranges,
        reason = "testing that an empty range is refused"
    )]
    let empty = 9..=8;
    assert!(NetRule::bind_net(ip, 8, empty).is_err());
    let rule = NetRule::connect_net("10.9.9.9".parse().unwrap(), 8, 443..=443).unwrap();
    assert_eq!(rule.to_string(), "tcp connect 10.0.0.0/8 ports 443");
    let tcp = Transport::Tcp;
    assert!(rule.permits(tcp, NetAccess::Connect, "10.200.0.1:443".parse().unwrap()));
    assert!(!rule.permits(tcp, NetAccess::Bind, "10.200.0.1:443".parse().unwrap()));
    assert!(!rule.permits(tcp, NetAccess::Connect, "11.0.0.1:443".parse().unwrap()));
    assert!(!rule.permits(
        Transport::Udp,
        NetAccess::Connect,
        "10.200.0.1:443".parse().unwrap()
    ));
    assert_eq!(rule.udp().to_string(), "udp connect 10.0.0.0/8 ports 443");
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn env_snapshot_hides_every_unnamed_variable() {
    let env = Env::snapshot(
        ["PATH", "COMPARTMENT_TEST_NEVER_SET"],
        cap_std::ambient_authority(),
    )
    .unwrap();
    assert_eq!(
        env.get("PATH").unwrap(),
        std::env::var("PATH").ok().as_deref()
    );
    assert_eq!(env.get("COMPARTMENT_TEST_NEVER_SET").unwrap(), None);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name != "PATH" {
            assert!(
                matches!(
                    env.get(&name),
                    Err(EnvError::NotGranted { .. }) | Err(EnvError::InvalidName { .. })
                ),
                "{name} is visible"
            );
        }
    }
    assert_eq!(
        env.names().collect::<Vec<_>>(),
        ["COMPARTMENT_TEST_NEVER_SET", "PATH"]
    );
    assert_eq!(env.vars().unwrap().count(), 1);
    assert!(matches!(
        Env::snapshot(["A=B"], cap_std::ambient_authority()),
        Err(EnvError::InvalidName { .. })
    ));
    assert!(matches!(
        Env::from_vars([("", "x")]),
        Err(EnvError::InvalidName { .. })
    ));
}

#[test]
fn random_sources_are_deterministic_or_cryptographic_as_granted() {
    let a = Random::seeded(42);
    let b = Random::seeded(42);
    let xs: Vec<u64> = (0..8).map(|_| a.next_u64().unwrap()).collect();
    let ys: Vec<u64> = (0..8).map(|_| b.next_u64().unwrap()).collect();
    assert_eq!(xs, ys);
    // A re-issued copy continues the stream rather than repeating it.
    let copy = a.reissue().unwrap();
    assert!(!xs.contains(&copy.next_u64().unwrap()));

    let mut counts = [0u32; 6];
    for _ in 0..6000 {
        counts[a.below(6).unwrap() as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    assert!(matches!(a.below(0), Err(RandomError::ZeroBound)));

    #[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
    let os = Random::os(cap_std::ambient_authority());
    let mut key = [0u8; 64];
    os.fill(&mut key).unwrap();
    assert!(key.iter().any(|&b| b != 0));
}

#[test]
fn manual_and_fixed_clocks_move_only_when_told() {
    let (clock, control) = MonotonicClock::manual();
    let t0 = clock.now().unwrap();
    assert_eq!(clock.now().unwrap(), t0);
    control.advance(std::time::Duration::from_millis(1500));
    assert_eq!(
        clock.elapsed(t0).unwrap(),
        std::time::Duration::from_millis(1500)
    );
    assert!(clock.is_manual());
    let at = std::time::SystemTime::UNIX_EPOCH;
    assert_eq!(SystemClock::fixed(at).now().unwrap(), at);
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the host plants a hard link, as a test fixture"
)]
fn a_hard_link_to_an_outside_file_cannot_be_written_through() {
    let sandbox = Sandbox::new();
    std::fs::hard_link(sandbox.canary_path(), sandbox.root_path().join("planted")).unwrap();
    let root = sandbox.root();
    // Reading is allowed: the host put the file in the tree.
    assert_eq!(root.read("planted").unwrap(), common::CANARY);
    for err in [
        root.write("planted", b"overwritten").unwrap_err(),
        root.create("planted").map(|_| ()).unwrap_err(),
        root.open_with("planted", OpenOptions::new().append(true))
            .map(|_| ())
            .unwrap_err(),
        root.set_permissions("planted", cap_std::fs::Permissions::from_mode(0o777))
            .unwrap_err(),
        root.copy("planted", &root, "planted")
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, FsError::SharedInode { links: 2, .. }),
            "{err}"
        );
    }
    sandbox.assert_canary_intact();
    // A file opened while the link existed, for reading or writing: its
    // mode and length are the outside file's too.
    let read = root.open("planted").unwrap();
    let mode_before = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sandbox.canary_path())
            .unwrap()
            .permissions(),
    );
    for err in [
        read.set_permissions(cap_std::fs::Permissions::from_mode(0o777))
            .unwrap_err(),
        read.set_len(0).unwrap_err(),
    ] {
        assert!(
            matches!(err, FsError::SharedInode { links: 2, .. }),
            "{err}"
        );
    }
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(sandbox.canary_path())
                .unwrap()
                .permissions()
        ),
        mode_before
    );
    sandbox.assert_canary_intact();
    // Removing the link inside leaves the outside file alone, and after that
    // the name can be written as a new file.
    root.remove_file("planted").unwrap();
    root.write("planted", b"new").unwrap();
    sandbox.assert_canary_intact();
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the host plants symlinks, as test fixtures, and reads what was created"
)]
fn a_planted_symlink_that_points_outside_is_not_hard_linked_to_a_new_name() {
    let sandbox = Sandbox::new();
    let host = sandbox.root_path();
    std::os::unix::fs::symlink(sandbox.canary_path(), host.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../canary", host.join("climbing")).unwrap();
    std::os::unix::fs::symlink("inside.txt", host.join("downward")).unwrap();
    let root = sandbox.root();
    root.write("inside.txt", b"inside").unwrap();
    for planted in ["absolute", "climbing"] {
        let err = root.hard_link(planted, &root, "config.toml").unwrap_err();
        assert!(
            matches!(err, FsError::EscapingSymlink { .. }),
            "{planted}: {err}"
        );
        assert!(
            std::fs::symlink_metadata(host.join("config.toml")).is_err(),
            "{planted}: no new entry"
        );
    }
    // A symlink that points down may be linked, as it may be created.
    root.hard_link("downward", &root, "also-downward").unwrap();
    assert_eq!(root.read("also-downward").unwrap(), b"inside");
    sandbox.assert_canary_intact();
}

#[test]
fn errors_say_what_the_operating_system_said() {
    let sandbox = Sandbox::new();
    let err = sandbox.root().read("missing.txt").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read `missing.txt`: {}",
            std::io::Error::from_raw_os_error(2)
        )
    );
    // A call whose server is gone says why it could not be sent.
    let (server, requests) =
        compartment::channel::bounded::<compartment::channel::Request<u8, u8>>(1).unwrap();
    drop(requests);
    let err = server.call(1).unwrap_err();
    assert!(err.to_string().ends_with("disconnected channel"), "{err}");
}
