//! Kernel lockdown: a locked-down component's ambient calls are refused by
//! the kernel, while the same calls from an unlocked component succeed; the
//! policy is per thread and fresh per instance; the escape battery, ambient
//! calls included, finds nothing under lockdown.
//!
//! These tests need Landlock (ABI 6+) and seccomp. On a kernel without them
//! each test prints why it skips; on the project's machines none skips.

#![allow(
    clippy::disallowed_methods,
    reason = "the components below make ambient calls on purpose: the kernel must refuse them"
)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use compartment::caps::{Dir, Net, NetRule, ReadOnlyDir};
use compartment::channel::{self, Sender};
use compartment::event::EventKind;
use compartment::lockdown::LandlockLevel;
use compartment::testkit::{Host, ProbeOptions, Report, Sandbox, probe_hosted, probe_with};
use compartment::{
    Child, Context, Grant, Lockdown, Restart, StartError, Supervisor, ambient_authority,
};

const WAIT: Duration = Duration::from_secs(20);
const EPERM: i32 = 1;
const EACCES: i32 = 13;

/// `None` when the kernel can enforce a full policy here; otherwise why not.
fn unsupported() -> Option<String> {
    fn noop(_: (), _: &Context) -> Result<(), String> {
        Ok(())
    }
    let started = Supervisor::new("probe-kernel")
        .child(
            Child::new("noop", noop, ())
                .restart(Restart::Temporary)
                .lockdown(Lockdown::require()),
        )
        .start();
    match started {
        Ok(system) => {
            system.shutdown();
            None
        }
        Err(err) => Some(format!("{err}: {}", err_chain(&err))),
    }
}

fn err_chain(err: &StartError) -> String {
    match err {
        StartError::ChildFailed { fault } => fault.to_string(),
        other => other.to_string(),
    }
}

macro_rules! require_kernel {
    () => {
        if let Some(why) = unsupported() {
            println!("skipping: this kernel cannot enforce the lockdown policy: {why}");
            return;
        }
    };
}

/// What happened to one attempt: `None` for success, the errno otherwise.
type Attempted = Vec<(String, Option<i32>)>;

fn errno<T>(result: std::io::Result<T>) -> Option<i32> {
    match result {
        Ok(_) => None,
        Err(err) => Some(err.raw_os_error().unwrap_or(-1)),
    }
}

#[derive(Grant)]
struct Ambient {
    own: Dir,
    own_path: PathBuf,
    outside_file: PathBuf,
    listener: u16,
    results: Sender<(u64, i32, Attempted)>,
}

fn ambient_calls(outside_file: &Path, own_path: &Path, listener: u16) -> Attempted {
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let parent = std::os::unix::process::parent_id();
    let parent_dir = own_path.parent().unwrap().to_owned();
    vec![
        (
            "read a file outside".into(),
            errno(std::fs::read(outside_file)),
        ),
        (
            "write into the directory's parent".into(),
            errno(std::fs::write(
                parent_dir.join("written-by-a-component"),
                b"x",
            )),
        ),
        (
            "bind a TCP socket".into(),
            errno(TcpListener::bind(loopback(0))),
        ),
        (
            "connect a TCP socket".into(),
            errno(TcpStream::connect_timeout(
                &loopback(listener),
                Duration::from_secs(2),
            )),
        ),
        (
            "run `true`".into(),
            errno(std::process::Command::new("true").status()),
        ),
        (
            "signal the parent process".into(),
            errno(
                rustix::process::test_kill_process(
                    rustix::process::Pid::from_raw(parent as i32).unwrap(),
                )
                .map_err(std::io::Error::from),
            ),
        ),
    ]
}

fn ambient(g: Ambient, cx: &Context) -> Result<(), String> {
    let mut attempted = ambient_calls(&g.outside_file, &g.own_path, g.listener);
    // A thread started around the thread capability: under lockdown the
    // kernel refuses to create it.
    attempted.push((
        "start a raw thread".into(),
        errno(std::thread::Builder::new().spawn(|| ()).map(|thread| {
            let _ = thread.join();
        })),
    ));
    // And from a thread started through the context, the supported way.
    let (outside, own, listener) = (g.outside_file.clone(), g.own_path.clone(), g.listener);
    let from_capability = cx
        .spawn("ambient", move |_| ambient_calls(&outside, &own, listener))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|e| e.to_string())?;
    attempted.extend(
        from_capability
            .into_iter()
            .map(|(what, e)| (format!("context thread: {what}"), e)),
    );
    // Inside its own directory, through a std path: within the grant.
    attempted.push((
        "write inside its own directory".into(),
        errno(std::fs::write(g.own_path.join("inside"), b"x")),
    ));
    attempted.push((
        "write through its capability".into(),
        errno(
            g.own
                .write("through-cap", b"x")
                .map_err(std::io::Error::from),
        ),
    ));
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    g.results
        .send((cx.instance(), tid, attempted))
        .map_err(|e| e.to_string())?;
    // Stay alive so the test can read this thread's status.
    cx.sleep(Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

fn outside_file() -> PathBuf {
    ["/etc/hostname", "/etc/passwd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a readable file in /etc")
}

fn thread_status(tid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

struct Run {
    attempted: Attempted,
    tid: i32,
}

fn run_ambient(lockdown: Option<Lockdown>, sandbox: &Sandbox) -> (Run, compartment::System) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (results, inbox) = channel::bounded(4).unwrap();
    let own = sandbox.dir().unwrap().open_dir("docs").unwrap();
    let mut child = Child::new(
        "ambient",
        ambient,
        Ambient {
            own,
            own_path: sandbox.root_path().join("docs"),
            outside_file: outside_file(),
            listener: port,
            results,
        },
    );
    if let Some(lockdown) = lockdown {
        child = child.lockdown(lockdown);
    }
    let system = Supervisor::new("locks").child(child).start().unwrap();
    let (_, tid, attempted) = inbox.recv_timeout(WAIT).unwrap();
    drop(listener);
    (Run { attempted, tid }, system)
}

#[test]
fn the_kernel_refuses_ambient_calls_of_a_locked_down_component_only() {
    require_kernel!();
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();

    let (locked, system) = run_ambient(Some(Lockdown::require()), &sandbox);
    assert_eq!(
        thread_status(locked.tid, "Seccomp:"),
        "2",
        "filter mode on the component's thread"
    );
    assert_eq!(thread_status(locked.tid, "NoNewPrivs:"), "1");
    assert_eq!(
        thread_status(rustix::thread::gettid().as_raw_nonzero().get(), "Seccomp:"),
        "0",
        "the test thread is free"
    );
    let supervisor = common::thread_named("locks#1").expect("the supervisor thread");
    assert_eq!(
        thread_status(supervisor, "Seccomp:"),
        "0",
        "the supervisor thread is free"
    );
    system.shutdown();

    let (free, system) = run_ambient(None, &sandbox);
    assert_eq!(thread_status(free.tid, "Seccomp:"), "0");
    system.shutdown();

    for ((what, locked), (_, free)) in locked.attempted.iter().zip(&free.attempted) {
        println!("{what:<45} locked: {locked:?}  unlocked: {free:?}");
        if what.ends_with("inside its own directory") || what.ends_with("through its capability") {
            assert_eq!(*locked, None, "{what} is within the grant");
            continue;
        }
        assert!(
            matches!(locked, Some(EACCES) | Some(EPERM)),
            "{what}: the kernel must refuse, got {locked:?}"
        );
        assert_eq!(*free, None, "{what} succeeds without lockdown");
    }
    assert_eq!(locked.attempted.len(), 15);
    sandbox.canary().check().unwrap();
}

#[derive(Grant)]
struct RawWriter {
    docs: ReadOnlyDir,
    results: Sender<Attempted>,
}

fn raw_writes(g: RawWriter, _: &Context) -> Result<(), String> {
    let fd = g
        .docs
        .inventory()
        .iter()
        .next()
        .and_then(|held| held.descriptor())
        .unwrap()
        .number();
    let through = PathBuf::from(format!("/proc/self/fd/{fd}"));
    let open = |path: PathBuf, flags: rustix::fs::OFlags| {
        errno(
            rustix::fs::openat(
                rustix::fs::CWD,
                path,
                flags,
                rustix::fs::Mode::from_raw_mode(0o600),
            )
            .map_err(std::io::Error::from),
        )
    };
    let attempted = vec![
        (
            "create via /proc/self/fd/N".into(),
            errno(std::fs::write(through.join("created"), b"x")),
        ),
        (
            "openat(O_WRONLY) an existing file".into(),
            open(through.join("readme.md"), rustix::fs::OFlags::WRONLY),
        ),
        (
            "openat(O_CREAT|O_WRONLY) a new file".into(),
            open(
                through.join("opened"),
                rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
            ),
        ),
        (
            "read through its capability".into(),
            errno(
                g.docs
                    .read("readme.md")
                    .map(drop)
                    .map_err(std::io::Error::from),
            ),
        ),
    ];
    g.results.send(attempted).map_err(|e| e.to_string())
}

#[test]
fn a_read_only_grant_cannot_be_written_even_through_its_raw_descriptor() {
    require_kernel!();
    let mut outcomes = Vec::new();
    for lockdown in [Some(Lockdown::require()), None] {
        let sandbox = Sandbox::standard(ambient_authority()).unwrap();
        let (results, inbox) = channel::bounded(1).unwrap();
        let docs = sandbox.read_only().unwrap().open_dir("docs").unwrap();
        let mut child =
            Child::new("raw", raw_writes, RawWriter { docs, results }).restart(Restart::Temporary);
        if let Some(lockdown) = lockdown {
            child = child.lockdown(lockdown);
        }
        let _system = Supervisor::new("raw").child(child).start().unwrap();
        outcomes.push(inbox.recv_timeout(WAIT).unwrap());
    }
    for ((what, locked), (_, free)) in outcomes[0].iter().zip(&outcomes[1]) {
        println!("{what:<40} locked: {locked:?}  unlocked: {free:?}");
        if what.starts_with("read") {
            assert_eq!(*locked, None);
            continue;
        }
        assert_eq!(*locked, Some(EACCES), "{what}");
        assert_eq!(
            *free, None,
            "without lockdown the raw descriptor is a way around the types: {what}"
        );
    }
}

#[derive(Grant)]
struct Client {
    net: Net,
    allowed: u16,
    other: u16,
    results: Sender<Attempted>,
}

fn client(g: Client, _: &Context) -> Result<(), String> {
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let attempted = vec![
        (
            "std connect to the granted port".into(),
            errno(TcpStream::connect(loopback(g.allowed))),
        ),
        (
            "capability connect to the granted port".into(),
            errno(
                g.net
                    .connect_tcp(loopback(g.allowed))
                    .map_err(std::io::Error::from),
            ),
        ),
        (
            "std connect to another port".into(),
            errno(TcpStream::connect(loopback(g.other))),
        ),
        (
            "std bind a port".into(),
            errno(TcpListener::bind(loopback(0))),
        ),
    ];
    g.results.send(attempted).map_err(|e| e.to_string())
}

#[test]
fn a_network_grant_connects_only_where_it_allows() {
    require_kernel!();
    let granted = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let (allowed, other_port) = (
        granted.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    let (results, inbox) = channel::bounded(1).unwrap();
    let net = Net::new(
        [NetRule::connect(
            "127.0.0.1".parse().unwrap(),
            allowed..=allowed,
        )],
        ambient_authority(),
    );
    let _system = Supervisor::new("net")
        .child(
            Child::new(
                "client",
                client,
                Client {
                    net,
                    allowed,
                    other: other_port,
                    results,
                },
            )
            .restart(Restart::Temporary)
            .lockdown(Lockdown::require()),
        )
        .start()
        .unwrap();
    let attempted = inbox.recv_timeout(WAIT).unwrap();
    println!("{attempted:?}");
    assert_eq!(attempted[0].1, None);
    assert_eq!(attempted[1].1, None);
    assert_eq!(
        attempted[2].1,
        Some(EACCES),
        "Landlock refuses ports outside the grant"
    );
    assert_eq!(
        attempted[3].1,
        Some(EACCES),
        "and binding, which the grant does not allow"
    );
}

#[test]
fn a_restart_gets_a_new_thread_with_a_fresh_policy() {
    require_kernel!();
    #[derive(Grant)]
    struct Twice {
        tids: Sender<(u64, i32)>,
    }
    fn twice(g: Twice, cx: &Context) -> Result<(), String> {
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        let _ = g.tids.send((cx.instance(), tid));
        if cx.instance() == 1 {
            panic!("first instance crashes");
        }
        cx.sleep(Duration::from_secs(3600))
            .map_err(|e| e.to_string())
    }
    let (tids, inbox) = channel::bounded(4).unwrap();
    let sup = Supervisor::new("twice")
        .forward_panics(false)
        .intensity(3, WAIT)
        .child(Child::new("t", twice, Twice { tids }).lockdown(Lockdown::require()));
    let events = sup.events(64);
    let system = sup.start().unwrap();
    let (first, first_tid) = inbox.recv_timeout(WAIT).unwrap();
    let (second, second_tid) = inbox.recv_timeout(WAIT).unwrap();
    assert_eq!((first, second), (1, 2));
    assert_ne!(first_tid, second_tid, "a new thread");
    assert_eq!(
        thread_status(second_tid, "Seccomp:"),
        "2",
        "with the policy applied afresh"
    );
    let locked: Vec<u64> = events
        .wait_for(WAIT, |e| {
            e.instance == Some(2) && matches!(e.kind, EventKind::Restarted)
        })
        .1
        .iter()
        .filter(|e| matches!(e.kind, EventKind::LockedDown { .. }))
        .filter_map(|e| e.instance)
        .collect();
    assert_eq!(locked, [1, 2]);
    let status = system.status();
    let enforcement = status
        .find("twice/t")
        .unwrap()
        .lockdown
        .expect("status shows the enforcement");
    assert!(enforcement.is_full(), "{enforcement}");
    assert_eq!(enforcement.landlock, LandlockLevel::Full);
}

fn sleeps(_: Net, cx: &Context) -> Result<(), compartment::Cancelled> {
    cx.sleep(Duration::from_secs(3600))
}

#[test]
fn require_refuses_to_start_what_cannot_be_enforced_and_best_effort_reports_it() {
    require_kernel!();
    // Landlock has one rule per port: a grant spanning every port cannot be
    // expressed, so the full policy cannot be enforced.
    let everything = || {
        Net::new(
            [NetRule::connect("127.0.0.1".parse().unwrap(), 1..=65535)],
            ambient_authority(),
        )
    };
    let err = Supervisor::new("strict")
        .child(Child::new("wide", sleeps, everything()).lockdown(Lockdown::require()))
        .start()
        .unwrap_err();
    let message = err_chain(&err);
    assert!(message.contains("one rule per TCP port"), "{message}");

    let sup = Supervisor::new("lenient")
        .child(Child::new("wide", sleeps, everything()).lockdown(Lockdown::best_effort()));
    let events = sup.events(16);
    let system = sup.start().unwrap();
    let (event, _) = events.wait_for(WAIT, |e| matches!(e.kind, EventKind::LockedDown { .. }));
    let Some(EventKind::LockedDown { enforcement }) = event.map(|e| e.kind) else {
        panic!("no LockedDown event")
    };
    assert!(
        !enforcement.tcp_rules
            && enforcement.seccomp
            && enforcement.landlock == LandlockLevel::Full,
        "{enforcement}"
    );
    assert!(!enforcement.is_full());
    assert_eq!(
        system.status().find("lenient/wide").unwrap().lockdown,
        Some(enforcement)
    );
}

#[derive(Grant)]
struct Battery {
    root: Dir,
    docs: ReadOnlyDir,
    host: Host,
    results: Sender<Report>,
}

fn battery(g: Battery, _: &Context) -> Result<(), String> {
    let target = (g.root, g.docs);
    let options = ProbeOptions {
        ambient: true,
        ..ProbeOptions::default()
    };
    let report = probe_hosted(&target, &g.host, &options);
    g.results.send(report).map_err(|e| e.to_string())
}

#[test]
fn the_escape_battery_with_ambient_calls_finds_nothing_under_lockdown() {
    require_kernel!();
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let host = Host::start(ambient_authority()).unwrap();
    let (results, inbox) = channel::bounded(1).unwrap();
    // A writable subdirectory and the read-only tree around it: the battery
    // writes outside the subdirectory through the read-only grant's paths.
    let grant = Battery {
        root: sandbox.dir().unwrap().open_dir("docs/deep").unwrap(),
        docs: sandbox.read_only().unwrap(),
        host,
        results,
    };
    let _system = Supervisor::new("battery")
        .child(
            Child::new("probe", battery, grant)
                .restart(Restart::Temporary)
                .lockdown(Lockdown::require()),
        )
        .start()
        .unwrap();
    let report = inbox.recv_timeout(Duration::from_secs(120)).unwrap();
    println!("== the escape battery under lockdown\n{report}\n");
    assert!(report.made().count() >= 120, "{report}");
    let ambient = |class: &str| {
        report
            .made()
            .filter(|a| a.capability == format!("ambient: {class}"))
            .count()
    };
    for (class, at_least) in [
        ("files", 5),
        ("metadata", 7),
        ("processes and threads", 2),
        ("process-wide state", 6),
        ("other processes", 6),
        ("sockets", 12),
        ("granted directories", 9),
    ] {
        assert!(ambient(class) >= at_least, "{class}: {report}");
    }
    report.assert_contained();
    sandbox.canary().check().unwrap();
}

#[test]
fn without_lockdown_the_ambient_calls_get_through() {
    // The same battery without lockdown: the types stop nothing a component
    // does around them, and the report says so.
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let target = (
        sandbox.dir().unwrap(),
        sandbox.read_only().unwrap().open_dir("docs").unwrap(),
    );
    let options = ProbeOptions {
        ambient: true,
        race_rounds: 20,
        ..ProbeOptions::default()
    };
    let report = probe_with(&target, &options);
    let through: Vec<_> = report
        .escapes()
        .into_iter()
        .filter(|a| a.capability.starts_with("ambient: "))
        .collect();
    assert!(through.len() >= 30, "{report}");
    assert!(
        report
            .escapes()
            .iter()
            .all(|a| a.capability.starts_with("ambient: ")),
        "only ambient calls get through: {report}"
    );
}

#[test]
fn an_in_place_restart_keeps_the_policy_on_the_same_thread() {
    require_kernel!();
    #[derive(Grant)]
    struct Again {
        tids: Sender<(u64, i32, Option<i32>)>,
        outside: PathBuf,
    }
    fn again(g: Again, cx: &Context) -> Result<(), String> {
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        let _ = g
            .tids
            .send((cx.instance(), tid, errno(std::fs::read(&g.outside))));
        if cx.instance() == 1 {
            panic!("first instance crashes");
        }
        cx.sleep(Duration::from_secs(3600))
            .map_err(|e| e.to_string())
    }
    let (tids, inbox) = channel::bounded(4).unwrap();
    let _system = Supervisor::new("again")
        .forward_panics(false)
        .intensity(3, WAIT)
        .child(
            Child::new(
                "a",
                again,
                Again {
                    tids,
                    outside: outside_file(),
                },
            )
            .restart_mode(compartment::RestartMode::InPlace)
            .lockdown(Lockdown::require()),
        )
        .start()
        .unwrap();
    let (first, first_tid, first_read) = inbox.recv_timeout(WAIT).unwrap();
    let (second, second_tid, second_read) = inbox.recv_timeout(WAIT).unwrap();
    assert_eq!((first, second), (1, 2));
    assert_eq!(first_tid, second_tid, "the same thread");
    assert_eq!(
        (first_read, second_read),
        (Some(EACCES), Some(EACCES)),
        "still confined"
    );
    assert_eq!(thread_status(second_tid, "Seccomp:"), "2");
}

// ----- one test per class of the seccomp program ---------------------------
//
// Each runs the same attempts from a component twice: without lockdown,
// where every attack must work (so the test shows it is real), and under
// lockdown, where the kernel must refuse it. Attempts named `keeps: ...`
// are what the class must leave alone, and succeed both times.

/// What the attempts of one class work on.
#[derive(Debug, Clone)]
struct Fixture {
    /// A file outside every granted directory, made by the test.
    outside: PathBuf,
    /// The host path of the granted directory.
    granted: PathBuf,
    /// A process of the test's that is not this one.
    bystander: u32,
    /// A Unix socket outside the grant, listening.
    unix_socket: PathBuf,
    /// A TCP port the grant may connect to, listening.
    granted_port: u16,
}

type Attempts = fn(&Fixture, &ClassGrant) -> Attempted;

#[derive(Grant)]
struct ClassGrant {
    own: Dir,
    net: Option<Net>,
    #[grant(data)]
    fixture: Fixture,
    #[grant(data)]
    attempts: Attempts,
    results: Sender<Attempted>,
}

fn class_probe(g: ClassGrant, _: &Context) -> Result<(), String> {
    let attempted = (g.attempts)(&g.fixture, &g);
    g.results.send(attempted).map_err(|e| e.to_string())
}

/// Kills the bystander process and removes the outside files when a test
/// ends, however it ends.
struct Outside {
    dir: PathBuf,
    bystander: std::process::Child,
    _unix_listener: std::os::unix::net::UnixListener,
    tcp_listener: TcpListener,
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.bystander.kill();
        let _ = self.bystander.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn outside(name: &str) -> Outside {
    let dir = std::env::temp_dir().join(format!(
        "compartment-lockdown-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("outside.txt"), b"outside").unwrap();
    let bystander = std::process::Command::new("sleep")
        .arg("3600")
        .spawn()
        .expect("a `sleep` process to act on");
    let unix_listener = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
    Outside {
        dir,
        bystander,
        _unix_listener: unix_listener,
        tcp_listener: TcpListener::bind("127.0.0.1:0").unwrap(),
    }
}

/// Runs `attempts` in a component with a full directory and a network
/// capability that may connect to one TCP port, once without and once with
/// lockdown; each attempt must succeed without it and be refused with it.
fn refused_only_under_lockdown(name: &str, attempts: Attempts) {
    let outside = outside(name);
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let granted_port = outside.tcp_listener.local_addr().unwrap().port();
    // Planted by the host: a symlink inside the grant that points outside.
    std::os::unix::fs::symlink(
        outside.dir.join("outside.txt"),
        sandbox.root_path().join("docs/planted-outside"),
    )
    .unwrap();
    let fixture = Fixture {
        outside: outside.dir.join("outside.txt"),
        granted: sandbox.root_path().join("docs"),
        bystander: outside.bystander.id(),
        unix_socket: outside.dir.join("socket"),
        granted_port,
    };
    let run = |lockdown: Option<Lockdown>| {
        let (results, inbox) = channel::bounded(1).unwrap();
        let grant = ClassGrant {
            own: sandbox.dir().unwrap().open_dir("docs").unwrap(),
            net: Some(Net::new(
                [NetRule::connect(
                    "127.0.0.1".parse().unwrap(),
                    granted_port..=granted_port,
                )],
                ambient_authority(),
            )),
            fixture: fixture.clone(),
            attempts,
            results,
        };
        let mut child = Child::new("class", class_probe, grant).restart(Restart::Temporary);
        if let Some(lockdown) = lockdown {
            child = child.lockdown(lockdown);
        }
        let system = Supervisor::new(name).child(child).start().unwrap();
        let attempted = inbox.recv_timeout(WAIT).unwrap();
        system.shutdown();
        attempted
    };
    let free = run(None);
    let locked = run(Some(Lockdown::require()));
    assert_eq!(free.len(), locked.len());
    for ((what, free), (_, locked)) in free.iter().zip(&locked) {
        println!("{what:<60} unlocked: {free:?}  locked: {locked:?}");
    }
    for ((what, free), (_, locked)) in free.iter().zip(&locked) {
        assert_eq!(*free, None, "{what}: works without lockdown");
        if what.starts_with("keeps: ") {
            assert_eq!(*locked, None, "{what}: works under lockdown too");
        } else {
            assert!(
                matches!(locked, Some(EPERM) | Some(EACCES)),
                "{what}: the kernel must refuse, got {locked:?}"
            );
        }
    }
    sandbox.canary().check().unwrap();
}

fn rustix_errno<T>(result: rustix::io::Result<T>) -> Option<i32> {
    errno(result.map_err(std::io::Error::from))
}

/// `None` when `path` has `bits` in its mode; a marker errno (-2) when the
/// call succeeded without giving it them.
fn has_mode_bits(path: &Path, bits: u32) -> Option<i32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & bits != bits).then_some(-2)
}

#[test]
fn metadata_of_files_outside_the_grant_cannot_be_changed_or_listed() {
    require_kernel!();
    fn attempts(f: &Fixture, g: &ClassGrant) -> Attempted {
        use std::os::unix::fs::PermissionsExt;
        let xattr = "user.compartment-test";
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1_000,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 1_000,
                tv_nsec: 0,
            },
        };
        let mut names = [0u8; 256];
        let mut value = [0u8; 16];
        let own_file = g.own.create("own-metadata").map_err(|e| e.to_string());
        vec![
            (
                "chmod a file outside".into(),
                errno(std::fs::set_permissions(
                    &f.outside,
                    std::fs::Permissions::from_mode(0o640),
                )),
            ),
            (
                "set the times of a file outside by path".into(),
                rustix_errno(rustix::fs::utimensat(
                    rustix::fs::CWD,
                    &f.outside,
                    &times,
                    rustix::fs::AtFlags::empty(),
                )),
            ),
            (
                "set an extended attribute outside".into(),
                rustix_errno(rustix::fs::setxattr(
                    &f.outside,
                    xattr,
                    b"1",
                    rustix::fs::XattrFlags::empty(),
                )),
            ),
            (
                "read an extended attribute outside".into(),
                rustix_errno(rustix::fs::getxattr(&f.outside, xattr, &mut value[..])),
            ),
            (
                "list extended attributes outside".into(),
                rustix_errno(rustix::fs::listxattr(&f.outside, &mut names[..])),
            ),
            (
                "remove an extended attribute outside".into(),
                rustix_errno(rustix::fs::removexattr(&f.outside, xattr)),
            ),
            (
                "keeps: change the mode of a granted file through its capability".into(),
                errno(
                    g.own
                        .set_permissions(
                            "own-metadata",
                            cap_std::fs::PermissionsExt::from_mode(0o600),
                        )
                        .map_err(std::io::Error::from),
                ),
            ),
            (
                "keeps: change the mode through an open file capability".into(),
                match own_file {
                    Ok(file) => errno(
                        file.set_permissions(cap_std::fs::PermissionsExt::from_mode(0o640))
                            .map_err(std::io::Error::from),
                    ),
                    Err(_) => Some(-3),
                },
            ),
        ]
    }
    refused_only_under_lockdown("metadata", attempts);
}

#[test]
fn set_id_bits_cannot_be_given_at_creation() {
    require_kernel!();
    fn attempts(f: &Fixture, g: &ClassGrant) -> Attempted {
        use std::os::unix::fs::OpenOptionsExt;
        let created = |name: &str| f.granted.join(name);
        let with_mode = created("set-uid-open");
        let open = errno(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o4755)
                .open(&with_mode),
        )
        .or_else(|| has_mode_bits(&with_mode, 0o4000));
        let openat_path = created("set-gid-openat");
        let openat = rustix_errno(rustix::fs::openat(
            rustix::fs::CWD,
            &openat_path,
            rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
            rustix::fs::Mode::from_raw_mode(0o2755),
        ))
        .or_else(|| has_mode_bits(&openat_path, 0o2000));
        let node = created("set-uid-mknod");
        let mknod = rustix_errno(rustix::fs::mknodat(
            rustix::fs::CWD,
            &node,
            rustix::fs::FileType::RegularFile,
            rustix::fs::Mode::from_raw_mode(0o4755),
            0,
        ))
        .or_else(|| has_mode_bits(&node, 0o4000));
        vec![
            ("create a set-user-ID file (OpenOptions::mode)".into(), open),
            ("create a set-group-ID file (openat)".into(), openat),
            ("make a set-user-ID regular file (mknod)".into(), mknod),
            (
                "keeps: create an ordinary file through the capability".into(),
                errno(g.own.write("ordinary", b"x").map_err(std::io::Error::from)),
            ),
            (
                "keeps: create an ordinary file with a mode (openat)".into(),
                rustix_errno(rustix::fs::openat(
                    rustix::fs::CWD,
                    created("ordinary-openat"),
                    rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                    rustix::fs::Mode::from_raw_mode(0o755),
                )),
            ),
        ]
    }
    refused_only_under_lockdown("set-id", attempts);
}

#[test]
fn process_wide_state_cannot_be_changed() {
    require_kernel!();
    fn attempts(_: &Fixture, _: &ClassGrant) -> Attempted {
        let cwd = std::env::current_dir();
        // rustix takes `umask` to be infallible: a refused call panics in a
        // debug build and hands back the errno as the old mask in a release
        // build. Setting the old mask back returns what the first call set,
        // which tells whether it took, and leaves the mask as it was.
        let probe = rustix::fs::Mode::from_raw_mode(0o027);
        let umask = std::panic::catch_unwind(|| {
            let previous = rustix::process::umask(probe);
            rustix::process::umask(previous)
        })
        .map_or(Some(EPERM), |set| (set != probe).then_some(EPERM));
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let priority = rustix::process::getpriority_process(None);
        vec![
            (
                "change the working directory (to itself)".into(),
                match cwd {
                    Ok(cwd) => errno(std::env::set_current_dir(cwd)),
                    Err(_) => Some(-3),
                },
            ),
            ("change the umask".into(), umask),
            (
                "change the root directory (to itself)".into(),
                rustix_errno(rustix::process::chroot("/")),
            ),
            (
                "set the process's open-file limit (to itself)".into(),
                rustix_errno(rustix::process::setrlimit(
                    rustix::process::Resource::Nofile,
                    files,
                )),
            ),
            (
                "set the process's dumpable flag (to itself)".into(),
                rustix_errno(
                    rustix::process::dumpable_behavior()
                        .and_then(rustix::process::set_dumpable_behavior),
                ),
            ),
            (
                // Infallible to rustix, like `umask`.
                "keeps: read the process's limits".into(),
                std::panic::catch_unwind(|| {
                    rustix::process::getrlimit(rustix::process::Resource::Nofile)
                })
                .err()
                .map(|_| EPERM),
            ),
            (
                "keeps: set its own thread's priority (to itself)".into(),
                rustix_errno(priority.and_then(|p| rustix::process::setpriority_process(None, p))),
            ),
            (
                "keeps: name its own thread".into(),
                rustix_errno(rustix::thread::set_name(c"class-probe")),
            ),
        ]
        .into_iter()
        // The crate grows the process's futex hash for every component; one
        // that put the process on the shared hash would make that for good.
        .chain(FUTEX_HASH_SLOTS.get().copied().flatten().map(|slots| {
            (
                "set the process's futex hash (to its own size)".into(),
                errno(futex_hash(PR_FUTEX_HASH_SET_SLOTS, slots)),
            )
        }))
        .collect()
    }
    FUTEX_HASH_SLOTS.get_or_init(|| match futex_hash(PR_FUTEX_HASH_GET_SLOTS, 0) {
        Ok(slots) if slots > 0 => libc::c_ulong::try_from(slots).ok(),
        _ => {
            println!("not probed: this process has no private futex hash to resize");
            None
        }
    });
    refused_only_under_lockdown("process-wide", attempts);
}

const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

/// The process's futex hash slots when the test began, where it has a
/// private hash (Linux 6.17 and later).
static FUTEX_HASH_SLOTS: std::sync::OnceLock<Option<libc::c_ulong>> = std::sync::OnceLock::new();

/// `prctl(PR_FUTEX_HASH, operation, slots, 0)`.
fn futex_hash(operation: libc::c_ulong, slots: libc::c_ulong) -> std::io::Result<i32> {
    const PR_FUTEX_HASH: libc::c_int = 78;
    let none: libc::c_ulong = 0;
    // SAFETY: this `prctl` option takes integers only and reads or writes no
    // memory of the caller's.
    let answer = unsafe { libc::prctl(PR_FUTEX_HASH, operation, slots, none, none) };
    if answer < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(answer)
    }
}

#[test]
fn other_processes_cannot_be_reached() {
    require_kernel!();
    fn attempts(f: &Fixture, _: &ClassGrant) -> Attempted {
        let target = rustix::process::Pid::from_raw(f.bystander as i32).unwrap();
        let limit = rustix::process::Rlimit {
            current: Some(512),
            maximum: Some(512),
        };
        let own_cpus = rustix::thread::sched_getaffinity(None);
        vec![
            (
                "signal another process".into(),
                rustix_errno(rustix::process::test_kill_process(target)),
            ),
            (
                "set another process's limits".into(),
                rustix_errno(rustix::process::prlimit(
                    Some(target),
                    rustix::process::Resource::Nofile,
                    limit,
                )),
            ),
            (
                "set another process's priority".into(),
                rustix_errno(rustix::process::setpriority_process(Some(target), 5)),
            ),
            (
                "set another process's CPU affinity".into(),
                rustix_errno(
                    own_cpus
                        .and_then(|cpus| rustix::thread::sched_setaffinity(Some(target), &cpus)),
                ),
            ),
            (
                "open a pidfd of another process".into(),
                rustix_errno(rustix::process::pidfd_open(
                    target,
                    rustix::process::PidfdFlags::empty(),
                )),
            ),
            (
                "keeps: set its own thread's CPU affinity".into(),
                rustix_errno(
                    own_cpus.and_then(|cpus| rustix::thread::sched_setaffinity(None, &cpus)),
                ),
            ),
        ]
    }
    refused_only_under_lockdown("processes", attempts);
}

#[test]
fn sockets_follow_the_grant_family_by_family() {
    require_kernel!();
    fn attempts(f: &Fixture, g: &ClassGrant) -> Attempted {
        use rustix::net::{AddressFamily, SocketType, ipproto};
        use std::os::unix::net::{UnixDatagram, UnixStream};
        let net = g.net.as_ref().expect("a network capability");
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let raw =
            |family, kind, protocol| rustix_errno(rustix::net::socket(family, kind, protocol));
        vec![
            (
                "connect to a Unix socket outside the grant".into(),
                errno(UnixStream::connect(&f.unix_socket)),
            ),
            (
                "create a Unix datagram socket".into(),
                errno(UnixDatagram::unbound()),
            ),
            (
                "create a Unix socket pair".into(),
                errno(UnixStream::pair()),
            ),
            (
                "send a UDP datagram".into(),
                errno(
                    std::net::UdpSocket::bind(loopback(0))
                        .and_then(|socket| socket.send_to(b"x", loopback(9))),
                ),
            ),
            (
                "open a raw socket".into(),
                raw(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP)),
            ),
            (
                "open a packet socket".into(),
                raw(AddressFamily::PACKET, SocketType::RAW, None),
            ),
            (
                "open a netlink socket".into(),
                raw(AddressFamily::NETLINK, SocketType::RAW, None),
            ),
            (
                "keeps: connect to the granted TCP port through the capability".into(),
                errno(
                    net.connect_tcp(loopback(f.granted_port))
                        .map_err(std::io::Error::from),
                ),
            ),
        ]
    }
    refused_only_under_lockdown("sockets", attempts);
}

#[test]
fn threads_start_only_through_the_thread_capability_and_carry_the_policy() {
    require_kernel!();
    fn attempts(f: &Fixture, _: &ClassGrant) -> Attempted {
        // The thread capability is on the context, which this probe does not
        // hold; `ambient` above covers a context thread's confinement.
        vec![
            (
                "start a raw thread (std::thread::Builder)".into(),
                errno(
                    std::thread::Builder::new()
                        .spawn(|| ())
                        .map(|thread| thread.join()),
                ),
            ),
            (
                "start a scoped thread".into(),
                errno(std::thread::scope(|scope| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, || ())
                        .map(|thread| thread.join())
                })),
            ),
            (
                "run a program".into(),
                errno(std::process::Command::new("true").status()),
            ),
            (
                "keeps: read a file inside the grant by path".into(),
                errno(std::fs::read_dir(&f.granted)),
            ),
        ]
    }
    refused_only_under_lockdown("threads", attempts);
}

#[test]
fn a_planted_symlink_that_points_outside_cannot_be_linked_by_path() {
    require_kernel!();
    fn attempts(f: &Fixture, _: &ClassGrant) -> Attempted {
        let linked = f.granted.join("linked-outside");
        let result = errno(std::fs::hard_link(
            f.granted.join("planted-outside"),
            &linked,
        ));
        // Leave the tree as the next run expects it.
        if result.is_none() {
            let _ = std::fs::remove_file(&linked);
        }
        vec![("hard-link a planted symlink to the outside".into(), result)]
    }
    refused_only_under_lockdown("links", attempts);
}

#[test]
fn not_following_a_symlink_holds_under_lockdown_too() {
    // Under lockdown `openat2` is refused and cap-std resolves paths itself:
    // a final symlink must still not be followed where the caller said so.
    require_kernel!();
    #[derive(Grant)]
    struct Links {
        own: Dir,
        results: Sender<Attempted>,
    }
    fn links(g: Links, _: &Context) -> Result<(), String> {
        use compartment::caps::{FollowSymlinks, OpenOptions, SystemTimeSpec};
        let mut nofollow = OpenOptions::new();
        nofollow.read(true).follow(FollowSymlinks::No);
        let mut nofollow_flag = OpenOptions::new();
        nofollow_flag
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        let before = g.own.metadata("target").map_err(|e| e.to_string())?;
        let touched = g.own.set_symlink_times(
            "link",
            None,
            Some(SystemTimeSpec::Absolute(std::time::SystemTime::UNIX_EPOCH)),
        );
        let after = g.own.metadata("target").map_err(|e| e.to_string())?;
        // The OS's errno under the capability's typed error.
        let os_errno = |result: Result<(), compartment::caps::FsError>| match result {
            Ok(()) => None,
            Err(compartment::caps::FsError::Io { source, .. }) => {
                Some(source.raw_os_error().unwrap_or(-1))
            }
            Err(_) => Some(-1),
        };
        let attempted = vec![
            (
                "open a symlink with follow(No)".into(),
                os_errno(g.own.open_with("link", &nofollow).map(drop)),
            ),
            (
                "open a symlink with O_NOFOLLOW".into(),
                os_errno(g.own.open_with("link", &nofollow_flag).map(drop)),
            ),
            (
                "the target's times after set_symlink_times".into(),
                (before.modified().ok() != after.modified().ok()).then_some(-4),
            ),
            ("set_symlink_times itself".into(), os_errno(touched)),
        ];
        g.results.send(attempted).map_err(|e| e.to_string())
    }
    let sandbox = Sandbox::standard(ambient_authority()).unwrap();
    let own = sandbox.dir().unwrap().open_dir("docs").unwrap();
    own.write("target", b"x").unwrap();
    own.symlink("target", "link").unwrap();
    let (results, inbox) = channel::bounded(1).unwrap();
    let _system = Supervisor::new("links")
        .child(
            Child::new("links", links, Links { own, results })
                .restart(Restart::Temporary)
                .lockdown(Lockdown::require()),
        )
        .start()
        .unwrap();
    let attempted = inbox.recv_timeout(WAIT).unwrap();
    println!("{attempted:?}");
    const ELOOP: i32 = 40;
    assert_eq!(
        attempted[0].1,
        Some(ELOOP),
        "follow(No) refuses the symlink"
    );
    assert_eq!(attempted[1].1, Some(ELOOP), "so does O_NOFOLLOW");
    assert_eq!(attempted[2].1, None, "the target's times are untouched");
    // Setting a symlink's own times is a path form, which lockdown refuses.
    assert_eq!(attempted[3].1, Some(EPERM));
}

/// The thread ids of the carrier threads running now. A listing of
/// `/proc/self/task` can skip a thread while others exit, so a few
/// listings are merged.
fn carrier_threads() -> std::collections::BTreeSet<std::ffi::OsString> {
    (0..3)
        .flat_map(|_| {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(Result::ok)
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|name| name.starts_with("compartment-car"))
                })
                .map(|task| task.file_name())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Run in a child process by the test below, so that no other test's
/// carriers are counted.
#[test]
#[ignore = "run by a_locked_down_pool_shares_one_carrier in its own process"]
fn locked_down_pool_scenario() {
    if let Some(why) = unsupported() {
        println!("skipping: {why}");
        return;
    }
    fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
        cx.sleep(Duration::from_secs(3600))
    }
    let before = carrier_threads();
    let pool = Supervisor::pool(
        "locked-pool",
        Child::new("member", idle, ()).lockdown(Lockdown::require()),
        8,
    );
    let events = pool.events(64);
    let system = pool.start().unwrap();
    // Counted once every member runs: their carrier exists by then.
    let mut members = 0;
    while members < 8 {
        let (started, seen) = events.wait_for(Duration::from_secs(60), |e| {
            matches!(e.kind, EventKind::Started) && e.path.contains("member")
        });
        assert!(started.is_some(), "{seen:#?}");
        members += 1;
    }
    // Carriers new since `before`: the one the kernel probe started may
    // still be ending.
    let carriers = carrier_threads().difference(&before).count();
    println!("carriers: {carriers}");
    assert_eq!(carriers, 1, "one carrier for the whole pool");
    system.shutdown();
}

#[test]
fn a_locked_down_pool_shares_one_carrier() {
    let output = common::scenario("locked_down_pool_scenario")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}
