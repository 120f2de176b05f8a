//! A tour of `compartment`: capabilities, attenuation, grants and revocation.
//!
//! Run it with `cargo run --example tour`. It builds a small multi-tenant
//! upload area in a temporary directory, hands each part of the program only
//! the capabilities it needs, and shows what is refused.

use std::error::Error;
use std::path::PathBuf;

use compartment::caps::{Dir, Env, ReadOnlyDir};
use compartment::channel::{self, Receiver, Sender, TrySendError};
use compartment::{Grant, ambient_authority};

/// What the upload handler of one tenant may hold.
#[derive(Grant)]
struct Uploads {
    /// The tenant's own upload directory: full rights, nowhere else.
    inbox: Dir,
    /// The shared templates: read-only.
    templates: ReadOnlyDir,
    /// Where finished uploads are announced.
    done: Sender<String>,
    /// Configuration: only the variables named by `main`.
    config: Env,
}

/// A component is a plain function of its grant: nothing else reaches it.
fn handle_upload(grant: &Uploads, name: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    let header = grant.templates.read_to_string("header.txt")?;
    let mode = grant.config.get("UPLOAD_MODE")?.unwrap_or("plain");
    grant
        .inbox
        .write(name, [header.as_bytes(), bytes].concat())?;
    grant.done.send(format!("{name} stored ({mode})"))?;
    Ok(())
}

fn attempts(grant: &Uploads) {
    let outcomes = [
        (
            "read another tenant's file",
            grant.inbox.read("../globex/secret.txt").map(|_| ()),
        ),
        (
            "open /etc/passwd",
            grant.inbox.read("/etc/passwd").map(|_| ()),
        ),
        (
            "plant a symlink to /etc",
            grant.inbox.symlink("/etc", "etc"),
        ),
        (
            "plant a relative symlink upwards",
            grant.inbox.symlink("../globex", "peek"),
        ),
    ];
    for (what, outcome) in outcomes {
        match outcome {
            Ok(()) => println!("  ALLOWED  {what}"),
            Err(err) => println!("  refused  {what}: {err}"),
        }
    }
    match grant.config.get("HOME") {
        Ok(value) => println!("  ALLOWED  read HOME: {value:?}"),
        Err(err) => println!("  refused  read HOME: {err}"),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "main is the granting side: the one place that turns paths and the environment into capabilities"
)]
fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::temp_dir().join(format!("compartment-tour-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    let result = run(&base);
    std::fs::remove_dir_all(&base)?;
    result
}

#[allow(clippy::disallowed_methods, reason = "main is the granting side")]
fn run(base: &PathBuf) -> Result<(), Box<dyn Error>> {
    let data = Dir::open_ambient(base, ambient_authority())?;
    data.create_dir_all("tenants/acme")?;
    data.create_dir_all("tenants/globex")?;
    data.create_dir_all("templates")?;
    data.write("templates/header.txt", "# uploaded\n")?;
    data.write("tenants/globex/secret.txt", "globex's secret")?;

    let (done, announcements): (Sender<String>, Receiver<String>) = channel::bounded(2)?;
    let acme = Uploads {
        inbox: data.open_dir("tenants/acme")?,
        templates: data.open_dir("templates")?.into_read_only(),
        done,
        config: Env::from_vars([("UPLOAD_MODE", "compressed")])?,
    };

    println!("== the grant, as an auditor sees it");
    print!("{}", acme.inventory());

    println!("\n== a component does its job with what it was granted");
    let instance = acme.reissue()?;
    handle_upload(&instance, "report.txt", b"quarterly numbers")?;
    println!("  {}", announcements.recv()?);

    println!("\n== and is refused everything else");
    attempts(&instance);

    println!("\n== bounded channels push back instead of growing");
    instance.done.try_send("one".into())?;
    instance.done.try_send("two".into())?;
    match instance.done.try_send("three".into()) {
        Err(TrySendError::Full(message)) => println!("  channel full: {message:?} handed back"),
        other => println!("  unexpected: {other:?}"),
    }
    let drained: Vec<String> = announcements.try_iter().collect();
    println!("  drained {drained:?}");

    println!("\n== revocation takes authority back from a holder that will not stop");
    let (runaway, revoker) = acme.reissue()?.revocable();
    let derived = runaway.inbox.read_only()?;
    revoker.revoke();
    for (what, outcome) in [
        (
            "write through the revoked grant",
            runaway.inbox.write("late.txt", "x").map(|_| ()),
        ),
        (
            "read through a handle derived before",
            derived.read("report.txt").map(|_| ()),
        ),
    ] {
        match outcome {
            Ok(()) => println!("  ALLOWED  {what}"),
            Err(err) => println!("  refused  {what}: {err}"),
        }
    }
    let next = acme.reissue()?;
    println!(
        "  a fresh instance still reads its inbox: {} bytes",
        next.inbox.read("report.txt")?.len()
    );
    Ok(())
}
