//! A tour of `compartment`: a small multi-tenant upload pipeline.
//!
//! Run it with `cargo run --example tour`. In a temporary directory, `main`
//! (the only code with ambient authority) grants each component exactly the
//! capabilities it needs and starts a supervision tree:
//!
//! ```text
//! app (one_for_one)
//! ├── pipeline (rest_for_one)
//! │   ├── intake       stores uploads under tenants/<tenant>/
//! │   └── thumbnailer  reads tenants/ read-only, writes thumbs/; crashes once
//! ├── analytics        a plugin for tenant globex that tries to read acme's files
//! └── billing (one_for_one, at most 2 restarts in 10 s)
//!     └── exporter     fails while its billing API is "down"
//! ```
//!
//! The thumbnailer panics on one upload and is restarted; the upload it was
//! handling is delivered again, so nothing is lost. The analytics plugin
//! climbs out of its directory and is refused. The exporter keeps failing
//! until `billing` exceeds its restart intensity and escalates to `app`,
//! which restarts the whole billing subtree. The tour prints the timeline,
//! the live tree and the capability map (as text; `-- --mermaid` for a
//! Mermaid diagram), and exits.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use compartment::caps::{Dir, ReadOnlyDir};
use compartment::channel::{self, Receiver, Sender};
use compartment::event::{Event, EventKind};
use compartment::{Child, Context, Grant, Restart, Strategy, Supervisor, ambient_authority};

/// An upload, as it arrives from the outside.
#[derive(Debug, Clone)]
struct Upload {
    tenant: &'static str,
    name: &'static str,
    bytes: Vec<u8>,
}

/// A stored upload, waiting for its thumbnail.
#[derive(Debug, Clone)]
struct Job {
    tenant: &'static str,
    name: &'static str,
}

#[derive(Grant)]
struct Intake {
    uploads: Receiver<Upload>,
    tenants: Dir,
    jobs: Sender<Job>,
}

fn intake(g: Intake, cx: &Context) -> Result<(), Box<dyn Error + Send + Sync>> {
    for upload in cx.recv_iter(&g.uploads) {
        let tenant = g.tenants.open_dir(upload.tenant)?;
        tenant.write(upload.name, &upload.bytes)?;
        cx.send(
            &g.jobs,
            Job {
                tenant: upload.tenant,
                name: upload.name,
            },
        )
        .map_err(|e| e.error)?;
    }
    Ok(())
}

#[derive(Grant)]
struct Thumbnailer {
    jobs: Receiver<Job>,
    originals: ReadOnlyDir,
    thumbs: Dir,
    done: Sender<String>,
}

fn thumbnailer(g: Thumbnailer, cx: &Context) -> Result<(), Box<dyn Error + Send + Sync>> {
    for job in cx.recv_iter(&g.jobs) {
        let original = g.originals.read(Path::new(job.tenant).join(job.name))?;
        if original.starts_with(b"GIF") && cx.instance() == 1 {
            // A decoder bug that only the first instance hits: the job is
            // delivered again to the next instance.
            panic!("decoder crashed on {}/{}", job.tenant, job.name);
        }
        let thumb = format!("{}-{}.thumb", job.tenant, job.name);
        g.thumbs.write(&thumb, &original[..original.len().min(8)])?;
        cx.send(&g.done, thumb).map_err(|e| e.error)?;
    }
    Ok(())
}

#[derive(Grant)]
struct Analytics {
    own_files: ReadOnlyDir,
    audit: Sender<String>,
}

fn analytics(g: Analytics, cx: &Context) -> Result<(), Box<dyn Error + Send + Sync>> {
    let attempt = match g.own_files.read("../acme/report.pdf") {
        Ok(_) => "ALLOWED".to_owned(),
        Err(err) => format!("refused: {err}"),
    };
    cx.send(
        &g.audit,
        format!("analytics (globex's plugin) reading acme's report: {attempt}"),
    )
    .map_err(|e| e.error)?;
    cx.sleep(Duration::from_secs(3600))?;
    Ok(())
}

#[derive(Grant)]
struct Exporter {
    /// One token per failed attempt to reach the billing API.
    outage: Receiver<()>,
    ledger: Dir,
}

fn exporter(g: Exporter, cx: &Context) -> Result<(), Box<dyn Error + Send + Sync>> {
    if g.outage.try_recv().is_ok() {
        return Err("billing API unreachable".into());
    }
    g.ledger
        .write("exported", format!("instance {}", cx.instance()))?;
    cx.sleep(Duration::from_secs(3600))?;
    Ok(())
}

fn describe(event: &Event, start: Instant) -> String {
    let at = event.at.saturating_duration_since(start).as_secs_f64() * 1000.0;
    format!("{at:>8.1} ms  {event}")
}

fn main() -> Result<(), Box<dyn Error>> {
    #[allow(
        clippy::disallowed_methods,
        reason = "main is the granting side: the one place that touches the host filesystem"
    )]
    let base = {
        let base = std::env::temp_dir().join(format!("compartment-tour-{}", std::process::id()));
        std::fs::create_dir_all(&base)?;
        base
    };
    let result = run(&base);
    #[allow(clippy::disallowed_methods, reason = "main cleans up what it created")]
    std::fs::remove_dir_all(&base)?;
    result
}

fn run(base: &Path) -> Result<(), Box<dyn Error>> {
    #[allow(clippy::disallowed_methods, reason = "main is the granting side")]
    let data = Dir::open_ambient_dir(base, ambient_authority())?;
    for dir in ["tenants/acme", "tenants/globex", "thumbs", "billing"] {
        data.create_dir_all(dir)?;
    }
    data.write("tenants/acme/report.pdf", b"%PDF acme's numbers")?;

    let (uploads, uploads_rx) = channel::bounded::<Upload>(16)?;
    let (jobs_tx, jobs_rx) = channel::bounded::<Job>(16)?;
    let (done_tx, done) = channel::bounded::<String>(16)?;
    let (audit_tx, audit) = channel::bounded::<String>(4)?;
    let (outage_tx, outage_rx) = channel::bounded::<()>(4)?;
    for _ in 0..3 {
        outage_tx.send(())?; // the billing API is down for three attempts
    }

    let pipeline = Supervisor::new("pipeline")
        .strategy(Strategy::RestForOne)
        .intensity(3, Duration::from_secs(10))
        .child(Child::new(
            "intake",
            intake,
            Intake {
                uploads: uploads_rx,
                tenants: data.open_dir("tenants")?,
                jobs: jobs_tx,
            },
        ))
        .child(Child::new(
            "thumbnailer",
            thumbnailer,
            Thumbnailer {
                jobs: jobs_rx,
                originals: data.open_dir("tenants")?.into_read_only(),
                thumbs: data.open_dir("thumbs")?,
                done: done_tx,
            },
        ));
    let billing = Supervisor::new("billing")
        .intensity(2, Duration::from_secs(10))
        .child(Child::new(
            "exporter",
            exporter,
            Exporter {
                outage: outage_rx,
                ledger: data.open_dir("billing")?,
            },
        ));
    let app = Supervisor::new("app")
        .intensity(3, Duration::from_secs(10))
        .forward_panics(false) // the timeline below reports every panic
        .supervisor(pipeline)
        .child(
            Child::new(
                "analytics",
                analytics,
                Analytics {
                    own_files: data.open_dir("tenants/globex")?.into_read_only(),
                    audit: audit_tx,
                },
            )
            .restart(Restart::Transient),
        )
        .supervisor(billing);

    let events = app.events(1024);
    #[allow(
        clippy::disallowed_methods,
        reason = "main reads the clock for the timeline"
    )]
    let start = Instant::now();
    let system = app.start()?;

    for (tenant, name, bytes) in [
        ("acme", "logo.png", b"\x89PNG acme logo".to_vec()),
        ("globex", "banner.gif", b"GIF89a globex banner".to_vec()),
        ("acme", "team.png", b"\x89PNG acme team".to_vec()),
    ] {
        uploads.send(Upload {
            tenant,
            name,
            bytes,
        })?;
    }
    let mut thumbs: Vec<String> = (0..3)
        .map(|_| done.recv_timeout(Duration::from_secs(10)))
        .collect::<Result<_, _>>()?;
    thumbs.sort();
    let audit_line = audit.recv_timeout(Duration::from_secs(10))?;

    // Wait until `app` has restarted the billing subtree that gave up.
    let (restarted, before) = events.wait_for(Duration::from_secs(10), |e| {
        e.path == "app/billing" && matches!(e.kind, EventKind::Restarted)
    });
    let restarted = restarted.ok_or("app did not restart billing")?;
    let status = system.status();
    let map = system.capability_map();
    let exit = system.shutdown();
    // What `wait_for` passed over is still in the subscription, ahead of
    // what came after the restart.
    let mut timeline = events.drain();
    let shutdown_from = (before.len() + 1).min(timeline.len() + 1);
    timeline.insert(before.len().min(timeline.len()), restarted);

    println!("== compartment tour: a multi-tenant upload pipeline");
    println!(
        "
app (one_for_one)
├── pipeline (rest_for_one)
│   ├── intake       stores uploads under tenants/<tenant>/
│   └── thumbnailer  reads tenants/ read-only, writes thumbs/; crashes once
├── analytics        globex's plugin, granted only globex's directory
└── billing (one_for_one, at most 2 restarts in 10 s)
    └── exporter     fails while the billing API is down

Three uploads arrive. The thumbnailer panics on one and is restarted with
the upload delivered again; the plugin tries to read acme's files and is
refused; the exporter keeps failing until billing gives up and app
restarts the whole billing subtree. Then the tree shuts down.
(A supervisor reports `started` once its children have.)
"
    );
    println!("== timeline");
    for (i, event) in timeline.iter().enumerate() {
        if i == shutdown_from {
            println!("   -- shutdown --");
        }
        println!("{}", describe(event, start));
    }
    println!("\n== results");
    println!("thumbnails: {}", thumbs.join(", "));
    println!("{audit_line}");
    println!(
        "billing ledger: {}",
        data.read_to_string("billing/exported")?
    );
    println!("\n== the live tree, before shutdown");
    print!("{status}");
    // `cargo run --example tour -- --mermaid` for a diagram to paste.
    #[allow(clippy::disallowed_methods, reason = "main reads its own arguments")]
    let mermaid = std::env::args().any(|arg| arg == "--mermaid");
    if mermaid {
        println!("\n== capability map (Mermaid)");
        print!("{}", map.mermaid());
    } else {
        println!("\n== capability map (who holds what; --mermaid for a diagram)");
        print!("{}", map.text());
    }
    println!("\n== shutdown: {exit:?}");
    Ok(())
}
