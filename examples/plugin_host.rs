//! A plugin host: untrusted tenant plugins run as process children, in the
//! same supervision tree as the host's own thread components.
//!
//! Run it with `cargo run --example plugin_host --features process` (Linux).
//!
//! ```text
//! host (one_for_one)
//! ├── collector          a thread: prints what the plugins report
//! ├── plugin-acme        a process: counts the words of acme's documents
//! └── plugin-globex      a process: hostile — reads /etc/passwd, climbs out
//!                        of its directory, then aborts and segfaults
//! ```
//!
//! Each plugin gets a read-only directory of its tenant's documents, a
//! receiver of jobs and a sender of reports: nothing else exists for it.
//! globex's plugin finds no `/etc/passwd` (its root is an empty tmpfs),
//! cannot climb out of its directory, and its `abort` and segfault end only
//! its own process: each is a typed fault, the supervisor restarts it, and
//! the job it was handling is delivered again. acme's plugin and the
//! collector never notice.

use std::error::Error;
use std::time::Duration;

use compartment::caps::{Dir, ReadOnlyDir};
use compartment::channel::{self, Receiver, Sender};
use compartment::event::EventKind;
use compartment::process::Portable;
use compartment::{Child, Context, Grant, Restart, Supervisor, ambient_authority, entry};
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
        "== plugin host: tenant plugins as process children, the host's own components as threads\n"
    );
    let workspace = std::env::temp_dir().join(format!("plugin-host-{}", std::process::id()));
    std::fs::create_dir_all(workspace.join("acme"))?;
    std::fs::create_dir_all(workspace.join("globex"))?;
    std::fs::create_dir_all(workspace.join("scratch/acme"))?;
    std::fs::create_dir_all(workspace.join("scratch/globex"))?;
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
                    expected: 5,
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

    println!("-- what happened, in order");
    let mut crashes = 0;
    while crashes < 2 {
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
