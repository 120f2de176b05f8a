//! The wasm tier: modules whose only imports are their grant, under the
//! same tree. Guests are C programs compiled with wasi-libc at test time
//! (`clang --target=wasm32-wasi`, installed by `.ci/run`) — ordinary
//! programs, calling WASI preview 1 as any would — and, where a test needs
//! exact instructions, modules in the text format.
//!
//! Each test waits for the event or message that proves its point; none
//! sleeps.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests are the granting side: they compile guests and plant fixtures"
)]

#[path = "wasm/battery.rs"]
mod battery;
mod common;

use std::path::PathBuf;
use std::time::Duration;

use compartment::caps::{Dir, Env, ReadOnlyDir, SystemClock};
use compartment::channel::{self, CallError, Receiver, Request, Sender};
use compartment::event::{EventKind, Events, ExitReason};
use compartment::supervisor::NodeKind;
use compartment::testkit::{Outcome, Report, Sandbox};
use compartment::wasm::WasmModule;
use compartment::{
    Budget, Child, Fault, FaultKind, Grant, Limits, Restart, Supervisor, SystemExit,
    ambient_authority,
};

/// Long enough for a loaded CI machine; only the failure path waits it out.
const PATIENCE: Duration = Duration::from_secs(60);

/// The guest `name` (`tests/guests/<name>.c`), compiled to a module; `None`
/// (and the reason printed) when no WASI C compiler is installed.
fn guest(name: &str) -> Option<WasmModule> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/guests/{name}.c"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("guest-{name}.wasm"));
    let fresh = std::fs::metadata(&out)
        .and_then(|built| Ok(built.modified()? >= std::fs::metadata(&source)?.modified()?))
        .unwrap_or(false);
    if !fresh {
        let compiled = std::process::Command::new("clang")
            .args(["--target=wasm32-wasi", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .output();
        match compiled {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "the guest {name} does not compile:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(err) => {
                println!(
                    "skipped: no WASI C compiler ({err}); install clang, lld, wasi-libc and libclang-rt-14-dev-wasm32"
                );
                return None;
            }
        }
    }
    Some(WasmModule::new(std::fs::read(&out).unwrap()).unwrap())
}

/// A module in the text format.
fn wat(text: &str) -> WasmModule {
    WasmModule::new(text).unwrap()
}

#[derive(Grant)]
struct Files {
    data: Dir,
    docs: ReadOnlyDir,
    env: Env,
    clock: SystemClock,
    report: Sender<Vec<u8>>,
}

#[test]
fn an_ordinary_program_works_with_exactly_its_grant() {
    let Some(module) = guest("files") else { return };
    let sandbox = common::Sandbox::new();
    std::fs::write(sandbox.root_path().join("in.txt"), b"hello wasm").unwrap();
    let docs = common::Sandbox::new();
    let (report, reports) = channel::bounded(4).unwrap();
    let grant = Files {
        data: sandbox.root(),
        docs: docs.root().into_read_only(),
        env: Env::from_vars([("GREETING", "bonjour")]).unwrap(),
        clock: SystemClock::new(ambient_authority()),
        report,
    };
    let system = Supervisor::new("host")
        .child(Child::wasm("files", module, grant).restart(Restart::Transient))
        .start()
        .unwrap();
    let line = String::from_utf8(reports.recv_timeout(PATIENCE).unwrap()).unwrap();
    // Status and the capability map show the module and its grant.
    let status = system.status();
    let files = status.find("host/files").unwrap();
    assert_eq!(files.kind, NodeKind::Wasm);
    assert_eq!(
        files
            .capabilities
            .iter()
            .map(|(field, _)| field.as_str())
            .collect::<Vec<_>>(),
        ["data", "docs", "env", "clock", "report"]
    );
    let map = system.capability_map().text();
    assert!(
        map.contains("files (wasm)") && map.contains("docs: directory (read-only)"),
        "{map}"
    );
    system.shutdown();
    assert_eq!(
        line,
        "argv0=host/files read=hello wasm entries=3 size=10 greeting=bonjour time=1 readonly_write=refused"
    );
    assert_eq!(
        std::fs::read(sandbox.root_path().join("out.txt")).unwrap(),
        b"HELLO WASM"
    );
    assert!(sandbox.root_path().join("made").is_dir());
    assert!(!docs.root_path().join("new.txt").exists());
    sandbox.assert_canary_intact();
}

#[derive(Grant)]
struct Probed {
    data: Dir,
    docs: ReadOnlyDir,
    report: Sender<Request<Vec<u8>, Vec<u8>>>,
}

/// The sandbox's tree as the host sees it: every entry's path, kind,
/// content and modification time.
fn snapshot(root: &std::path::Path) -> Vec<(PathBuf, String)> {
    let mut entries = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                pending.push(path.clone());
                "dir".to_owned()
            } else if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_file() {
                format!("{:?}", std::fs::read(&path).unwrap())
            } else {
                "other".to_owned()
            };
            entries.push((path, format!("{what} {:?}", meta.modified().ok())));
        }
    }
    entries.sort();
    entries
}

#[test]
fn a_guest_that_tries_to_leave_its_directories_is_refused_and_the_battery_finds_no_escape() {
    let data = Sandbox::standard(ambient_authority()).unwrap();
    let docs = Sandbox::standard(ambient_authority()).unwrap();
    let canaries =
        [data.canary().path(), docs.canary().path()].map(|path| path.to_str().unwrap().to_owned());
    let battery = battery::Battery::directories([&canaries[0], &canaries[1]]);
    let module = wat(&battery.guest());
    let docs_before = snapshot(docs.root_path());
    let (report, reports) = channel::bounded(1).unwrap();
    let grant = Probed {
        data: data.dir().unwrap(),
        docs: docs.read_only().unwrap(),
        report,
    };
    let system = Supervisor::new("host")
        .child(Child::wasm("battery", module, grant).restart(Restart::Temporary))
        .start()
        .unwrap();
    let tries: Vec<_> = battery.tries().collect();
    let mut results = Report::default();
    let mut not_as_expected = Vec::new();
    for _ in 0..tries.len() {
        let request: Request<Vec<u8>, Vec<u8>> = reports.recv_timeout(PATIENCE).unwrap();
        let word = |at: usize| u32::from_le_bytes(request.body[at..at + 4].try_into().unwrap());
        let (index, errno) = (word(0) as usize, word(4) as i32);
        let reached = [data.canary(), docs.canary()]
            .iter()
            .find_map(|canary| canary.check().err())
            .map(|change| change.to_string());
        let (attempt, should) = tries[index];
        let line = battery::judge(attempt, *should, errno, reached);
        let as_expected = match should {
            battery::Should::Succeed => line.outcome == Outcome::Allowed,
            battery::Should::BeDenied => matches!(line.outcome, Outcome::Denied(_)),
            battery::Should::Fail => !matches!(line.outcome, Outcome::Allowed),
        };
        if !as_expected {
            not_as_expected.push(format!(
                "{} / {}: {}",
                line.capability, line.attempt, line.outcome
            ));
        }
        results.attempts.push(line);
        request.reply.send(Vec::new()).unwrap();
    }
    system.shutdown();
    println!("{results}");
    results.assert_contained();
    assert!(
        not_as_expected.is_empty(),
        "attempts that did not come to what they should (a control that failed makes the battery prove nothing):\n{}",
        not_as_expected.join("\n")
    );
    assert_eq!(
        docs_before,
        snapshot(docs.root_path()),
        "the read-only directory changed"
    );
    for sandbox in [&data, &docs] {
        sandbox.canary().check().unwrap();
    }
}

fn fault_of(events: &Events, path: &str) -> Fault {
    let (event, seen) = events.wait_for(PATIENCE, |e| {
        e.path == path && matches!(e.kind, EventKind::Faulted { .. })
    });
    match event.map(|e| e.kind) {
        Some(EventKind::Faulted { fault }) => fault,
        _ => panic!("no fault for {path}; saw: {seen:?}"),
    }
}

#[derive(Grant)]
struct Spinner {
    ready: Sender<Vec<u8>>,
}

/// Says it is ready, then loops forever without calling the host.
const SPIN: &str = r#"
(module
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "ready")
  (func $spin (export "_start")
    (drop (call $lookup (i32.const 0) (i32.const 5) (i32.const 16)))
    (drop (call $send (i32.load (i32.const 16)) (i32.const 0) (i32.const 5)))
    (loop $forever (br $forever))))
"#;

fn spinner() -> (Spinner, Receiver<Vec<u8>>) {
    let (ready, readiness) = channel::bounded(1).unwrap();
    (Spinner { ready }, readiness)
}

#[test]
fn an_infinite_loop_is_stopped_by_its_cpu_budget() {
    let budget = Duration::from_millis(300);
    let (grant, _readiness) = spinner();
    let sup = Supervisor::new("cpu")
        .watchdog_period(Duration::from_millis(100))
        .child(
            Child::wasm("spin", wat(SPIN), grant)
                .restart(Restart::Temporary)
                .limits(Limits::new().cpu(budget)),
        );
    let events = sup.events(64);
    let system = sup.start().unwrap();
    match fault_of(&events, "cpu/spin").kind {
        FaultKind::BudgetExceeded {
            budget: Budget::Cpu { used, limit },
            runaway: false,
        } => {
            assert_eq!(limit, budget);
            assert!(used >= budget, "reported {used:?}");
        }
        other => panic!("expected a CPU budget fault, got {other:?}"),
    }
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

#[test]
fn an_infinite_loop_is_interrupted_by_cancellation() {
    let (grant, readiness) = spinner();
    let (second, second_readiness) = spinner();
    let sup = Supervisor::new("cancel")
        .child(Child::wasm("spin", wat(SPIN), grant).restart(Restart::Temporary))
        .child(Child::wasm("other", wat(SPIN), second).restart(Restart::Temporary));
    let events = sup.events(64);
    let system = sup.start().unwrap();
    readiness.recv_timeout(PATIENCE).unwrap();
    // Removing one child cancels it, and its supervisor waits for its
    // thread: the loop, which never calls the host, must be interrupted.
    system.remove_child("cancel/spin").unwrap();
    let (exited, seen) = events.wait_for(PATIENCE, |e| {
        e.path == "cancel/spin" && matches!(e.kind, EventKind::Exited { .. })
    });
    assert!(
        matches!(
            exited.map(|e| e.kind),
            Some(EventKind::Exited {
                reason: ExitReason::Shutdown
            })
        ),
        "{seen:?}"
    );
    // So is a whole tree's, at shutdown.
    second_readiness.recv_timeout(PATIENCE).unwrap();
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

/// Grows its memory a mebibyte at a time until it cannot, then traps, as
/// an allocator that aborts on failure does.
const MEMORY_BOMB: &str = r#"
(module
  (memory (export "memory") 1)
  (func $bomb (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
"#;

#[test]
fn a_memory_bomb_is_stopped_by_its_memory_limit() {
    let limit = 16 << 20;
    let sup = Supervisor::new("memory").child(
        Child::wasm("bomb", wat(MEMORY_BOMB), ())
            .restart(Restart::Temporary)
            .limits(Limits::new().memory(limit)),
    );
    let events = sup.events(64);
    let system = sup.start().unwrap();
    match fault_of(&events, "memory/bomb").kind {
        FaultKind::BudgetExceeded {
            budget: Budget::Memory { held, limit: quota },
            runaway: false,
        } => {
            assert_eq!(quota, limit);
            assert!(held > limit, "asked for {held}");
        }
        other => panic!("expected the memory budget, got {other:?}"),
    }
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

#[derive(Grant)]
struct Relay {
    notes: Dir,
    jobs: Receiver<Vec<u8>>,
    out: Sender<Vec<u8>>,
}

/// Forwards each job. A job ending in `!` is poison the first time the
/// relay sees it: it notes the job (a directory named after it) and traps,
/// so the instance that receives it again after the restart forwards it.
const RELAY: &str = r#"
(module
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $mkdir (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "jobs") (data (i32.const 8) "out")
  (func $relay (export "_start") (local $len i32)
    (drop (call $lookup (i32.const 0) (i32.const 4) (i32.const 16)))
    (drop (call $lookup (i32.const 8) (i32.const 3) (i32.const 20)))
    (loop $next
      (if (i32.eqz (call $recv (i32.load (i32.const 16)) (i32.const 256) (i32.const 256) (i32.const 24)))
        (then
          (local.set $len (i32.load (i32.const 24)))
          (if (i32.eq (i32.load8_u (i32.add (i32.const 255) (local.get $len))) (i32.const 33))
            (then
              (if (i32.eqz (call $mkdir (i32.const 3) (i32.const 256) (local.get $len)))
                (then (call $poisoned)))))
          (drop (call $send (i32.load (i32.const 20)) (i32.const 256) (local.get $len)))
          (br $next)))))
  (func $poisoned unreachable))
"#;

#[test]
fn a_trap_restarts_the_child_and_no_message_is_lost() {
    let notes = common::Sandbox::new();
    let (jobs, inbox) = channel::bounded(16).unwrap();
    let (out, forwarded) = channel::bounded(16).unwrap();
    let sup = Supervisor::new("relay")
        .intensity(1_000, Duration::from_secs(3600))
        .child(
            Child::wasm(
                "r",
                wat(RELAY),
                Relay {
                    notes: notes.root(),
                    jobs: inbox,
                    out,
                },
            )
            .restart(Restart::Transient),
        );
    let events = sup.events(4096);
    let system = sup.start().unwrap();
    let sent: Vec<Vec<u8>> = (0..1_000)
        .map(|n| format!("job{n:04}{}", if n % 10 == 3 { "!" } else { "" }).into_bytes())
        .collect();
    let feeder = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            for job in sent {
                jobs.send(job).unwrap();
            }
        })
    };
    let received: Vec<Vec<u8>> = (0..sent.len())
        .map(|_| forwarded.recv_timeout(PATIENCE).unwrap())
        .collect();
    feeder.join().unwrap();
    assert_eq!(received, sent, "every job forwarded once, in order");
    let fault = fault_of(&events, "relay/r");
    match &fault.kind {
        FaultKind::Trapped {
            trap, backtrace, ..
        } => {
            assert!(trap.contains("unreachable"), "{trap}");
            assert!(
                backtrace
                    .first()
                    .is_some_and(|frame| frame.contains("poisoned"))
                    && backtrace.iter().any(|frame| frame.contains("relay")),
                "{backtrace:?}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    // The hundredth restart (the status board hears of restarts after
    // the new instance runs).
    let mut restarts = 0;
    let (hundredth, _) = events.wait_for(PATIENCE, |e| {
        restarts += usize::from(e.path == "relay/r" && matches!(e.kind, EventKind::Restarted));
        restarts == 100
    });
    assert!(hundredth.is_some(), "{restarts} restarts");
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

#[derive(Grant)]
struct Serving {
    requests: Receiver<Request<Vec<u8>, Vec<u8>>>,
}

/// Takes one request and traps while it holds the reply endpoint.
const TRAPS_SERVING: &str = r#"
(module
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "serve" (func $serve (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "requests")
  (func $holding_a_reply (unreachable))
  (func (export "_start")
    (drop (call $lookup (i32.const 0) (i32.const 8) (i32.const 16)))
    (drop (call $serve (i32.load (i32.const 16)) (i32.const 64) (i32.const 256)
                       (i32.const 24) (i32.const 28)))
    (call $holding_a_reply)))
"#;

#[test]
fn a_trap_holding_a_request_answers_its_caller_with_the_trap() {
    let (server, requests) = channel::bounded(4).unwrap();
    let system = Supervisor::new("host")
        .child(
            Child::wasm("s", wat(TRAPS_SERVING), Serving { requests }).restart(Restart::Temporary),
        )
        .start()
        .unwrap();
    match server.call_timeout(b"question".to_vec(), PATIENCE) {
        Err(CallError::Crashed(crash)) => {
            assert!(crash.message.contains("unreachable"), "{crash}");
            assert!(crash.message.contains("holding_a_reply"), "{crash}");
        }
        other => panic!("expected the trap, got {other:?}"),
    }
    system.shutdown();
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// Resident bytes of this process.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Polls `condition` (status is not an event): for counting restarts.
fn eventually(what: &str, condition: impl FnMut() -> bool) {
    eventually_or(|| what.to_owned(), condition);
}

/// As `eventually`, describing what never happened when it gives up.
fn eventually_or(what: impl Fn() -> String, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + PATIENCE * 5;
    while !condition() {
        assert!(
            std::time::Instant::now() < give_up,
            "never happened: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[derive(Grant)]
struct Crasher {
    data: Dir,
}

const CRASH: &str =
    r#"(module (memory (export "memory") 1) (func $crash (export "_start") unreachable))"#;

/// Run only in a process of its own by the test below: thread and
/// descriptor counts are exact only when no other test shares the process.
#[test]
#[ignore = "counts the process's threads; run alone by ten_thousand_wasm_restarts_leak_nothing"]
fn ten_thousand_wasm_restarts_scenario() {
    let sandbox = common::Sandbox::new();
    let module = wat(CRASH);
    // The engine's ticker thread starts with the first module and stays.
    let warm = Supervisor::new("warm")
        .child(
            Child::wasm("c", wat(r#"(module (func (export "_start")))"#), ())
                .restart(Restart::Transient),
        )
        .start()
        .unwrap();
    assert_eq!(warm.shutdown(), SystemExit::Shutdown);
    // Its threads may still be ending (on a loaded machine, for a while).
    eventually_or(
        || format!("the warm-up's threads gone; left: {:?}", thread_names()),
        || !thread_names().iter().any(|name| name.starts_with("warm")),
    );
    let threads_before = count("/proc/self/task");
    let fds_before = count("/proc/self/fd");
    let system = Supervisor::new("churn")
        .intensity(20_000, Duration::from_secs(3600))
        .child(Child::wasm(
            "c",
            module,
            Crasher {
                data: sandbox.root(),
            },
        ))
        .start()
        .unwrap();
    let restarts = || system.status().find("churn/c").unwrap().restarts;
    eventually("2,000 restarts", || restarts() >= 2_000);
    let resident_at_2000 = resident();
    // Ten times the pool's slots: every instance gave its slot back.
    eventually("10,000 restarts", || restarts() >= 10_000);
    let resident_at_10000 = resident();
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
    eventually_or(
        || format!("every instance thread gone; left: {:?}", thread_names()),
        || count("/proc/self/task") == threads_before,
    );
    assert_eq!(count("/proc/self/fd"), fds_before, "file descriptors");
    let growth = resident_at_10000.saturating_sub(resident_at_2000);
    println!(
        "resident memory: {resident_at_2000} bytes after 2,000 restarts, {resident_at_10000} after 10,000"
    );
    // 8,000 restarts: a leak of 256 bytes each would show.
    assert!(
        growth < 2 << 20,
        "resident memory grew {growth} bytes over 8,000 restarts"
    );
}

#[test]
fn ten_thousand_wasm_restarts_leak_nothing() {
    let output = common::scenario("ten_thousand_wasm_restarts_scenario")
        .arg("--test-threads=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(Grant)]
struct Waiter {
    ready: Sender<Vec<u8>>,
    wake: Receiver<Vec<u8>>,
}

/// Says it is ready, then waits for one message and returns.
const WAIT_ONCE: &str = r#"
(module
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "ready") (data (i32.const 8) "wake")
  (func (export "_start")
    (drop (call $lookup (i32.const 0) (i32.const 5) (i32.const 16)))
    (drop (call $lookup (i32.const 8) (i32.const 4) (i32.const 20)))
    (drop (call $send (i32.load (i32.const 16)) (i32.const 0) (i32.const 5)))
    (drop (call $recv (i32.load (i32.const 20)) (i32.const 64) (i32.const 64) (i32.const 24)))))
"#;

/// Run only in a process of its own by the test below: it takes every slot
/// of the process's pool.
#[test]
#[ignore = "takes every instance slot of the process; run alone by one_instance_past_the_pool_fails_to_start_saying_so"]
fn one_instance_past_the_pool_scenario() {
    const SLOTS: usize = 1_000;
    let module = wat(WAIT_ONCE);
    let (ready, readiness) = channel::bounded(SLOTS + 1).unwrap();
    let mut wakers = Vec::new();
    let mut sup = Supervisor::new("pool");
    for n in 0..=SLOTS {
        let (waker, wake) = channel::bounded(1).unwrap();
        wakers.push(waker);
        let grant = Waiter {
            ready: ready.reissue().unwrap(),
            wake,
        };
        sup = sup
            .child(Child::wasm(format!("w{n}"), module.clone(), grant).restart(Restart::Temporary));
    }
    let events = sup.events(4 * SLOTS);
    let system = sup.start().unwrap();
    let (failed, seen) = events.wait_for(PATIENCE, |e| matches!(e.kind, EventKind::Faulted { .. }));
    let failed =
        failed.unwrap_or_else(|| panic!("no instance failed to start: {} events", seen.len()));
    match &failed.kind {
        EventKind::Faulted { fault } => match &fault.kind {
            FaultKind::StartFailed { message } => {
                assert!(
                    message.contains("all 1000 instance slots of the process are in use"),
                    "{message}"
                )
            }
            other => panic!("expected a start failure, got {other:?}"),
        },
        _ => unreachable!(),
    }
    for _ in 0..SLOTS {
        readiness.recv_timeout(PATIENCE).unwrap();
    }
    // One instance ends and gives its slot back: a new child starts.
    let first_running = (0..=SLOTS)
        .find(|n| failed.path != format!("pool/w{n}"))
        .unwrap();
    wakers[first_running].send(b"go".to_vec()).unwrap();
    let (ended, _) = events.wait_for(PATIENCE, |e| {
        e.path == format!("pool/w{first_running}") && matches!(e.kind, EventKind::Exited { .. })
    });
    assert!(ended.is_some(), "the woken instance ended");
    let (waker, wake) = channel::bounded(1).unwrap();
    let grant = Waiter {
        ready: ready.reissue().unwrap(),
        wake,
    };
    system
        .add_child(
            "pool",
            Child::wasm("late", module, grant).restart(Restart::Temporary),
        )
        .unwrap();
    readiness.recv_timeout(PATIENCE).unwrap();
    drop(waker);
    drop(wakers);
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

#[test]
fn one_instance_past_the_pool_fails_to_start_saying_so() {
    let output = common::scenario("one_instance_past_the_pool_scenario")
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

#[derive(Grant)]
struct Hoarder {
    data: Dir,
    report: Sender<Vec<u8>>,
}

/// Opens `notes.txt` until it cannot, reports how many it opened and the
/// `errno` that stopped it, then closes one and opens again, reporting that
/// `errno` too.
const HOARD: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "notes.txt") (data (i32.const 16) "report")
  (func (export "_start") (local $e i32) (local $opened i32)
    (loop $more
      (local.set $e (call $open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 9)
        (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 64)))
      (if (i32.eqz (local.get $e))
        (then (local.set $opened (i32.add (local.get $opened) (i32.const 1))) (br $more))))
    (i32.store (i32.const 128) (local.get $opened))
    (i32.store (i32.const 132) (local.get $e))
    (drop (call $close (i32.const 10)))
    (i32.store (i32.const 136) (call $open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 9)
        (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 64)))
    (drop (call $lookup (i32.const 16) (i32.const 6) (i32.const 96)))
    (drop (call $send (i32.load (i32.const 96)) (i32.const 128) (i32.const 12)))))
"#;

#[test]
fn a_guest_cannot_take_the_processs_descriptors() {
    let sandbox = common::Sandbox::new();
    std::fs::write(sandbox.root_path().join("notes.txt"), b"notes").unwrap();
    let (report, reports) = channel::bounded(1).unwrap();
    let grant = Hoarder {
        data: sandbox.root(),
        report,
    };
    let system = Supervisor::new("hoard")
        .child(Child::wasm("h", wat(HOARD), grant).restart(Restart::Transient))
        .start()
        .unwrap();
    let words: Vec<u32> = reports
        .recv_timeout(PATIENCE)
        .unwrap()
        .chunks(4)
        .map(|word| u32::from_le_bytes(word.try_into().unwrap()))
        .collect();
    const EMFILE: u32 = 33;
    // 1,024 handles: three streams, the directory and the channel, and
    // what it opened.
    assert_eq!(
        words,
        [1_024 - 5, EMFILE, 0],
        "opened, the errno that stopped it, reopening after a close"
    );
    assert_eq!(system.shutdown(), SystemExit::Shutdown);
}

/// Every import a module may call, with its parameter types (all return an
/// `errno`, but `cancelled`, which returns a flag). `proc_exit` is left
/// out: it ends the module.
const EVERY_IMPORT: &[(&str, &str, &str)] = &[
    ("wasi_snapshot_preview1", "args_get", "i32 i32"),
    ("wasi_snapshot_preview1", "args_sizes_get", "i32 i32"),
    ("wasi_snapshot_preview1", "environ_get", "i32 i32"),
    ("wasi_snapshot_preview1", "environ_sizes_get", "i32 i32"),
    ("wasi_snapshot_preview1", "clock_res_get", "i32 i32"),
    ("wasi_snapshot_preview1", "clock_time_get", "i32 i64 i32"),
    ("wasi_snapshot_preview1", "fd_advise", "i32 i64 i64 i32"),
    ("wasi_snapshot_preview1", "fd_allocate", "i32 i64 i64"),
    ("wasi_snapshot_preview1", "fd_datasync", "i32"),
    ("wasi_snapshot_preview1", "fd_fdstat_get", "i32 i32"),
    ("wasi_snapshot_preview1", "fd_fdstat_set_flags", "i32 i32"),
    (
        "wasi_snapshot_preview1",
        "fd_fdstat_set_rights",
        "i32 i64 i64",
    ),
    ("wasi_snapshot_preview1", "fd_filestat_get", "i32 i32"),
    ("wasi_snapshot_preview1", "fd_filestat_set_size", "i32 i64"),
    (
        "wasi_snapshot_preview1",
        "fd_filestat_set_times",
        "i32 i64 i64 i32",
    ),
    ("wasi_snapshot_preview1", "fd_pread", "i32 i32 i32 i64 i32"),
    ("wasi_snapshot_preview1", "fd_prestat_get", "i32 i32"),
    (
        "wasi_snapshot_preview1",
        "fd_prestat_dir_name",
        "i32 i32 i32",
    ),
    ("wasi_snapshot_preview1", "fd_pwrite", "i32 i32 i32 i64 i32"),
    ("wasi_snapshot_preview1", "fd_read", "i32 i32 i32 i32"),
    (
        "wasi_snapshot_preview1",
        "fd_readdir",
        "i32 i32 i32 i64 i32",
    ),
    ("wasi_snapshot_preview1", "fd_seek", "i32 i64 i32 i32"),
    ("wasi_snapshot_preview1", "fd_sync", "i32"),
    ("wasi_snapshot_preview1", "fd_tell", "i32 i32"),
    ("wasi_snapshot_preview1", "fd_write", "i32 i32 i32 i32"),
    (
        "wasi_snapshot_preview1",
        "path_create_directory",
        "i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_filestat_get",
        "i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_filestat_set_times",
        "i32 i32 i32 i32 i64 i64 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_link",
        "i32 i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_open",
        "i32 i32 i32 i32 i32 i64 i64 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_readlink",
        "i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_remove_directory",
        "i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_rename",
        "i32 i32 i32 i32 i32 i32",
    ),
    (
        "wasi_snapshot_preview1",
        "path_symlink",
        "i32 i32 i32 i32 i32",
    ),
    ("wasi_snapshot_preview1", "path_unlink_file", "i32 i32 i32"),
    ("wasi_snapshot_preview1", "poll_oneoff", "i32 i32 i32 i32"),
    ("wasi_snapshot_preview1", "proc_raise", "i32"),
    ("wasi_snapshot_preview1", "random_get", "i32 i32"),
    ("wasi_snapshot_preview1", "sched_yield", ""),
    ("wasi_snapshot_preview1", "sock_accept", "i32 i32 i32"),
    (
        "wasi_snapshot_preview1",
        "sock_recv",
        "i32 i32 i32 i32 i32 i32",
    ),
    ("wasi_snapshot_preview1", "sock_send", "i32 i32 i32 i32 i32"),
    ("wasi_snapshot_preview1", "sock_shutdown", "i32 i32"),
    ("compartment", "lookup", "i32 i32 i32"),
    ("compartment", "send", "i32 i32 i32"),
    ("compartment", "try_send", "i32 i32 i32"),
    ("compartment", "recv", "i32 i32 i32 i32"),
    ("compartment", "try_recv", "i32 i32 i32 i32"),
    ("compartment", "call", "i32 i32 i32 i32 i32 i32"),
    ("compartment", "serve", "i32 i32 i32 i32 i32"),
    ("compartment", "reply", "i32 i32 i32"),
    ("compartment", "cancelled", ""),
    // Last: closing the streams and the directory changes what the calls
    // after it reach.
    ("wasi_snapshot_preview1", "fd_renumber", "i32 i32"),
    ("wasi_snapshot_preview1", "fd_close", "i32"),
];

/// A module of `pages` pages of memory that calls every import with hostile
/// arguments: pointers and lengths at and past the ends of its memory and
/// of the address space, negative numbers, handles it was never given, in
/// every mix.
fn hostile_arguments(pages: u32) -> String {
    let values: [i64; 11] = [
        0,
        1,
        3,
        4096,
        65_532,
        -1,
        -8,
        -4096,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        i64::from(i32::MAX - 3),
    ];
    let mut body = String::new();
    for (_, name, params) in EVERY_IMPORT {
        let types: Vec<&str> = params.split_whitespace().collect();
        for value in values {
            for pattern in 0..3 {
                let args: String = types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| {
                        let hostile = pattern == 0 || i % 2 == pattern - 1;
                        let v = if hostile { value } else { 0 };
                        format!(" ({ty}.const {v})")
                    })
                    .collect();
                body.push_str(&format!("(drop (call ${name}{args}))\n"));
            }
        }
    }
    let imports: String = EVERY_IMPORT
        .iter()
        .map(|(module, name, params)| {
            format!(
                "(import \"{module}\" \"{name}\" (func ${name} (param {params}) (result i32)))\n"
            )
        })
        .collect();
    format!(
        "(module\n{imports}(memory (export \"memory\") {pages})\n(func (export \"_start\")\n{body}))"
    )
}

#[test]
fn hostile_arguments_to_every_import_are_errors_and_never_fault_the_host() {
    // One page, and the whole 32-bit address space (4 GiB, mapped lazily),
    // where pointers near its end are in bounds and offsets from them are not.
    for pages in [1, 65_536] {
        let sandbox = common::Sandbox::new();
        let sup = Supervisor::new("hostile").child(
            Child::wasm(
                "h",
                wat(&hostile_arguments(pages)),
                Crasher {
                    data: sandbox.root(),
                },
            )
            .restart(Restart::Temporary),
        );
        let events = sup.events(64);
        let system = sup.start().unwrap();
        let (ended, seen) = events.wait_for(PATIENCE, |e| {
            e.path == "hostile/h"
                && matches!(e.kind, EventKind::Exited { .. } | EventKind::Faulted { .. })
        });
        assert!(
            matches!(
                ended.map(|e| e.kind),
                Some(EventKind::Exited {
                    reason: ExitReason::Normal
                })
            ),
            "with {pages} pages, every call answered with an errno and the module returned: {seen:?}"
        );
        assert_eq!(system.shutdown(), SystemExit::Shutdown);
        sandbox.assert_canary_intact();
    }
}
