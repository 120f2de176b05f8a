//! A plugin host: untrusted tenant plugins run as process children and as
//! WebAssembly modules, in the same supervision tree as the host's own
//! thread components.
//!
//! Run it with `cargo run --example plugin_host --features process,wasm`
//! (Linux).
//!
//! ```text
//! host (one_for_one)
//! ├── collector          a thread: prints what the plugins report
//! ├── translator         a thread: turns the wasm plugin's bytes into findings
//! ├── plugin-acme        a process: counts the words of acme's documents
//! ├── plugin-globex      a process: hostile — reads /etc/passwd, climbs out
//! │                      of its directory, then aborts and segfaults
//! └── plugin-initech     a wasm module: counts words too, and is hostile
//!                        the same way — then loops forever and traps
//! ```
//!
//! Each plugin gets a read-only directory of its tenant's documents, a
//! scratch directory, a receiver of jobs and a sender of reports: nothing
//! else exists for it. globex's plugin finds no `/etc/passwd` (its root is
//! an empty tmpfs), cannot climb out of its directory, and its `abort` and
//! segfault end only its own process. initech's module has no way to name
//! a file but through its two directories: its `/etc/passwd` and `..` are
//! refused by the capabilities, its endless loop is stopped by its CPU
//! budget and its trap is a fault with the module's backtrace. Each crash
//! is a typed fault, the supervisor restarts the plugin, and the job it was
//! handling is delivered again. acme's plugin and the collector never
//! notice.

use std::error::Error;
use std::time::Duration;

use compartment::caps::{Dir, ReadOnlyDir};
use compartment::channel::{self, Receiver, Sender};
use compartment::event::EventKind;
use compartment::process::Portable;
use compartment::wasm::WasmModule;
use compartment::{Child, Context, Grant, Limits, Restart, Supervisor, ambient_authority, entry};
use serde::{Deserialize, Serialize};

type Result<T = ()> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// A job for a plugin: which document to look at.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    document: String,
}

/// What a plugin reports back.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Finding {
    tenant: String,
    document: String,
    words: usize,
}

#[derive(Grant, Portable)]
struct PluginGrant {
    #[grant(data)]
    tenant: String,
    documents: ReadOnlyDir,
    /// The tenant's own scratch space.
    scratch: Dir,
    jobs: Receiver<Job>,
    findings: Sender<Finding>,
}

/// An honest plugin: counts words.
fn word_count(g: PluginGrant, cx: &Context) -> Result {
    while let Ok(job) = cx.recv(&g.jobs) {
        let text = g.documents.read_to_string(&job.document)?;
        cx.send(
            &g.findings,
            Finding {
                tenant: g.tenant.clone(),
                document: job.document,
                words: text.split_whitespace().count(),
            },
        )?;
    }
    Ok(())
}

/// A hostile plugin: tries the ways out a thread could not stop, then
/// crashes the ways a thread could not survive — once each: it leaves a
/// marker in its scratch directory first, so the next process, handed the
/// same job again, reports instead.
fn hostile(g: PluginGrant, cx: &Context) -> Result {
    while let Ok(job) = cx.recv(&g.jobs) {
        match job.document.as_str() {
            "probe" => {
                #[allow(clippy::disallowed_methods, reason = "the hostile plugin's attempt")]
                let passwd = std::fs::read("/etc/passwd").map(|b| b.len());
                let climb = g.documents.read("../acme/report.txt").map(|b| b.len());
                eprintln!("globex: /etc/passwd -> {passwd:?}; ../acme -> {climb:?}");
                cx.send(
                    &g.findings,
                    Finding {
                        tenant: g.tenant.clone(),
                        document: format!(
                            "probe: /etc/passwd {}, ../acme {}",
                            if passwd.is_ok() { "READ" } else { "refused" },
                            if climb.is_ok() { "READ" } else { "refused" }
                        ),
                        words: 0,
                    },
                )?;
            }
            crash => {
                let marker = format!("{crash}.tried");
                if g.scratch.exists(&marker) {
                    cx.send(
                        &g.findings,
                        Finding {
                            tenant: g.tenant.clone(),
                            document: crash.to_owned(),
                            words: 0,
                        },
                    )?;
                    continue;
                }
                g.scratch.write(&marker, b"")?;
                if crash == "abort" {
                    std::process::abort();
                }
                let address = std::hint::black_box(16usize) as *const u64;
                // SAFETY: none — this read of address 16 is the segfault the
                // process tier contains.
                let _ = unsafe { std::ptr::read_volatile(address) };
            }
        }
    }
    Ok(())
}

/// initech's plugin, a module in the text format. Its handles: its
/// documents (3) and scratch (4) directories, and the channels it looks up
/// by name. For each job it sends `<job>\0` and a little-endian `u32`: the
/// words of the document of that name; for `probe`, the `errno` of opening
/// `/etc/passwd` and `../acme/report.txt`, two `u32`s. `spin` and `trap`
/// crash once each, noting it in scratch first (and then count the words
/// of no document: 0).
const INITECH: &str = r#"
(module
  (import "compartment" "lookup" (func $lookup (param i32 i32 i32) (result i32)))
  (import "compartment" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (import "compartment" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $mkdir (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "jobs") (data (i32.const 8) "findings")
  (data (i32.const 32) "/etc/passwd") (data (i32.const 48) "../acme/report.txt")
  (data (i32.const 80) "spin.tried") (data (i32.const 96) "trap.tried")
  (data (i32.const 112) "probe") (data (i32.const 120) "spin") (data (i32.const 128) "trap")
  ;; One buffer for reads: 4 KiB at 1024.
  (data (i32.const 136) "\00\04\00\00\00\10\00\00")
  (global $len (mut i32) (i32.const 0))

  ;; Opens the file named at ptr/len beneath the documents, to read.
  (func $open (param $ptr i32) (param $len i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $ptr) (local.get $len)
      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 148)))

  ;; Whether the job (at 256) is the word at ptr/len.
  (func $is (param $ptr i32) (param $len i32) (result i32) (local $i i32)
    (if (i32.ne (global.get $len) (local.get $len)) (then (return (i32.const 0))))
    (block $differs
      (loop $next
        (br_if $differs (i32.ge_u (local.get $i) (local.get $len)))
        (br_if $differs (i32.ne (i32.load8_u (i32.add (i32.const 256) (local.get $i)))
                                (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.eq (local.get $i) (local.get $len)))

  ;; Sends the job's name, a NUL, and the payload of `size` bytes at 600.
  (func $report (param $size i32)
    (memory.copy (i32.const 512) (i32.const 256) (global.get $len))
    (i32.store8 (i32.add (i32.const 512) (global.get $len)) (i32.const 0))
    (memory.copy (i32.add (i32.const 513) (global.get $len)) (i32.const 600) (local.get $size))
    (drop (call $send (i32.load (i32.const 20)) (i32.const 512)
      (i32.add (i32.add (global.get $len) (i32.const 1)) (local.get $size)))))

  ;; The words of the first 4 KiB of the job's document.
  (func $count (result i32) (local $n i32) (local $i i32) (local $words i32) (local $inside i32)
    (if (i32.eqz (call $open (i32.const 256) (global.get $len)))
      (then
        (drop (call $fd_read (i32.load (i32.const 148)) (i32.const 136) (i32.const 1) (i32.const 152)))
        (drop (call $fd_close (i32.load (i32.const 148))))
        (local.set $n (i32.load (i32.const 152)))))
    (block $end
      (loop $next
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.le_u (i32.load8_u (i32.add (i32.const 1024) (local.get $i))) (i32.const 32))
          (then (local.set $inside (i32.const 0)))
          (else
            (if (i32.eqz (local.get $inside))
              (then
                (local.set $words (i32.add (local.get $words) (i32.const 1)))
                (local.set $inside (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $words))

  (func $crash unreachable)

  ;; One job, named at 256.
  (func $handle
    (if (call $is (i32.const 112) (i32.const 5))
      (then
        (i32.store (i32.const 600) (call $open (i32.const 32) (i32.const 11)))
        (i32.store (i32.const 604) (call $open (i32.const 48) (i32.const 18)))
        (call $report (i32.const 8))
        (return)))
    ;; The first time, an endless loop: its CPU budget ends it.
    (if (call $is (i32.const 120) (i32.const 4))
      (then
        (if (i32.eqz (call $mkdir (i32.const 4) (i32.const 80) (i32.const 10)))
          (then (loop $forever (br $forever))))))
    (if (call $is (i32.const 128) (i32.const 4))
      (then
        (if (i32.eqz (call $mkdir (i32.const 4) (i32.const 96) (i32.const 10)))
          (then (call $crash)))))
    (i32.store (i32.const 600) (call $count))
    (call $report (i32.const 4)))

  (func $plugin (export "_start")
    (drop (call $lookup (i32.const 0) (i32.const 4) (i32.const 16)))
    (drop (call $lookup (i32.const 8) (i32.const 8) (i32.const 20)))
    (block $disconnected
      (loop $next_job
        (br_if $disconnected
          (call $recv (i32.load (i32.const 16)) (i32.const 256) (i32.const 256) (i32.const 24)))
        (global.set $len (i32.load (i32.const 24)))
        (call $handle)
        (br $next_job)))))
"#;

#[derive(Grant)]
struct WasmPluginGrant {
    documents: ReadOnlyDir,
    scratch: Dir,
    jobs: Receiver<Vec<u8>>,
    findings: Sender<Vec<u8>>,
}

#[derive(Grant)]
struct TranslatorGrant {
    #[grant(data)]
    tenant: String,
    raw: Receiver<Vec<u8>>,
    findings: Sender<Finding>,
}

/// A thread component of the host: reads what the wasm plugin sends.
fn translator(g: TranslatorGrant, cx: &Context) -> Result {
    while let Ok(raw) = cx.recv(&g.raw) {
        let Some(nul) = raw.iter().position(|&byte| byte == 0) else {
            return Err("a message from the wasm plugin without its job's name".into());
        };
        let word = |at: usize| -> Result<u32> {
            let bytes = raw
                .get(nul + 1 + at..nul + 5 + at)
                .ok_or("a short message")?;
            Ok(u32::from_le_bytes(bytes.try_into()?))
        };
        let job = String::from_utf8_lossy(&raw[..nul]).into_owned();
        let (document, words) = if job == "probe" {
            let outcome = |errno: u32| {
                if errno == 0 {
                    "READ".to_owned()
                } else {
                    format!("refused (errno {errno})")
                }
            };
            (
                format!(
                    "probe: /etc/passwd {}, ../acme {}",
                    outcome(word(0)?),
                    outcome(word(4)?)
                ),
                0,
            )
        } else {
            (job, word(0)? as usize)
        };
        cx.send(
            &g.findings,
            Finding {
                tenant: g.tenant.clone(),
                document,
                words,
            },
        )?;
    }
    Ok(())
}

#[derive(Grant)]
struct CollectorGrant {
    findings: Receiver<Finding>,
    #[grant(data)]
    expected: usize,
    done: Sender<Vec<Finding>>,
}

/// A thread component of the host: gathers every finding.
fn collector(g: CollectorGrant, cx: &Context) -> Result {
    let mut all = Vec::new();
    while all.len() < g.expected {
        all.push(cx.recv(&g.findings)?);
    }
    cx.send(&g.done, all)?;
    Ok(())
}

#[allow(
    clippy::disallowed_methods,
    reason = "main is the granting side: it lays out the tenants' files and opens their directories"
)]
fn main() -> Result {
    // First line of main: the zygote is forked while there is one thread.
    compartment::process::init(&[&entry!(word_count), &entry!(hostile)])?;

    println!(
        "== plugin host: tenant plugins as process children and wasm modules, the host's own components as threads\n"
    );
    // Compiled once; every restart of the plugin is a new instance of it.
    let initech = WasmModule::new(INITECH)?;
    let workspace = std::env::temp_dir().join(format!("plugin-host-{}", std::process::id()));
    std::fs::create_dir_all(workspace.join("acme"))?;
    std::fs::create_dir_all(workspace.join("globex"))?;
    std::fs::create_dir_all(workspace.join("scratch/acme"))?;
    std::fs::create_dir_all(workspace.join("scratch/globex"))?;
    std::fs::create_dir_all(workspace.join("initech"))?;
    std::fs::create_dir_all(workspace.join("scratch/initech"))?;
    std::fs::write(
        workspace.join("initech/plan.txt"),
        "move the printer to the basement",
    )?;
    std::fs::write(
        workspace.join("acme/report.txt"),
        "quarterly numbers are up again",
    )?;
    std::fs::write(workspace.join("acme/memo.txt"), "lunch is on friday")?;
    let documents =
        |tenant: &str| ReadOnlyDir::open_ambient_dir(workspace.join(tenant), ambient_authority());
    let scratch = |tenant: &str| {
        Dir::open_ambient_dir(workspace.join("scratch").join(tenant), ambient_authority())
    };

    let (acme_jobs, acme_inbox) = channel::bounded(8)?;
    let (globex_jobs, globex_inbox) = channel::bounded(8)?;
    let (initech_jobs, initech_inbox) = channel::bounded(8)?;
    let (initech_out, initech_raw) = channel::bounded(8)?;
    let (findings_tx, findings) = channel::bounded(16)?;
    let (done_tx, done) = channel::bounded(1)?;

    let supervisor = Supervisor::new("host").intensity(10, Duration::from_secs(10));
    let events = supervisor.events(256);
    let system = supervisor
        .child(
            Child::new(
                "collector",
                collector,
                CollectorGrant {
                    findings,
                    expected: 9,
                    done: done_tx,
                },
            )
            .restart(Restart::Transient),
        )
        .child(Child::process(
            "plugin-acme",
            entry!(word_count),
            PluginGrant {
                tenant: "acme".to_owned(),
                documents: documents("acme")?,
                scratch: scratch("acme")?,
                jobs: acme_inbox,
                findings: findings_tx.clone(),
            },
        ))
        .child(
            Child::new(
                "translator",
                translator,
                TranslatorGrant {
                    tenant: "initech".to_owned(),
                    raw: initech_raw,
                    findings: findings_tx.clone(),
                },
            )
            .restart(Restart::Transient),
        )
        .child(Child::process(
            "plugin-globex",
            entry!(hostile),
            PluginGrant {
                tenant: "globex".to_owned(),
                documents: documents("globex")?,
                scratch: scratch("globex")?,
                jobs: globex_inbox,
                findings: findings_tx,
            },
        ))
        .child(
            Child::wasm(
                "plugin-initech",
                initech,
                WasmPluginGrant {
                    documents: documents("initech")?,
                    scratch: scratch("initech")?,
                    jobs: initech_inbox,
                    findings: initech_out,
                },
            )
            .limits(
                Limits::new()
                    .cpu(Duration::from_millis(200))
                    .memory(16 << 20),
            ),
        )
        .start()?;

    for document in ["report.txt", "memo.txt"] {
        acme_jobs.send(Job {
            document: document.to_owned(),
        })?;
    }
    for document in ["probe", "abort", "segfault"] {
        globex_jobs.send(Job {
            document: document.to_owned(),
        })?;
    }
    for job in ["plan.txt", "probe", "spin", "trap"] {
        initech_jobs.send(job.as_bytes().to_vec())?;
    }

    println!("-- what happened, in order");
    let mut crashes = 0;
    while crashes < 4 {
        let Some(event) = events.recv_timeout(Duration::from_secs(60)) else {
            return Err("the plugins did not crash as planned".into());
        };
        match &event.kind {
            EventKind::Faulted { fault } => {
                crashes += 1;
                println!("   {fault}");
            }
            EventKind::Restarted => println!(
                "   {} restarted as instance {}",
                event.path,
                event.instance.unwrap_or(0)
            ),
            _ => {}
        }
    }

    let mut all = done.recv_timeout(Duration::from_secs(60))?;
    all.sort_by(|a, b| (&a.tenant, &a.document).cmp(&(&b.tenant, &b.document)));
    println!("\n-- findings (every job answered; none lost to a crash)");
    for finding in &all {
        println!(
            "   {:<7} {:<40} {} words",
            finding.tenant, finding.document, finding.words
        );
    }

    println!("\n-- the live tree");
    print!("{}", system.status());
    println!("\n-- the capability map");
    print!("{}", system.capability_map().text());

    println!("\n-- shutting down");
    system.shutdown();
    std::fs::remove_dir_all(&workspace)?;
    println!("   done");
    Ok(())
}
