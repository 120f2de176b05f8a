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

mod common;

use std::path::PathBuf;
use std::time::Duration;

use compartment::caps::{Dir, Env, ReadOnlyDir, SystemClock};
use compartment::channel::{self, Receiver, Sender};
use compartment::wasm::WasmModule;
use compartment::{Child, Grant, Restart, Supervisor, ambient_authority};

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
    Some(WasmModule::new(&std::fs::read(&out).unwrap()).unwrap())
}

/// A module in the text format.
fn wat(text: &str) -> WasmModule {
    WasmModule::new(&wat::parse_str(text).unwrap()).unwrap()
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
