//! The escape battery: `probe(&grant)` tries to reach beyond every
//! capability a grant holds, and reports each attempt.
//!
//! One file per family of attempts: directory reads and writes, races,
//! network, environment, and the ambient calls only a kernel lockdown
//! stops. Each capability type has its [`Battery`]; the driver finds it for
//! every capability the grant's inventory lists.

mod ambient;
mod beyond;
mod dir_reads;
mod dir_writes;
mod environment;
#[cfg(all(feature = "process", target_os = "linux"))]
mod in_process;
mod network;
mod races;
mod report;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

#[cfg(all(feature = "process", target_os = "linux"))]
pub use in_process::{ProbeFailed, ProbeGrant, probe_entry, probe_process, probe_process_with};
pub use report::{Attempt, Expected, Outcome, Report};

use super::assert::Refusal;
use super::host::{Host, HostRef, HostSide, Scratch};
use crate::caps::{
    Dir, Env, File, MonotonicClock, Net, Random, ReadOnlyDir, ReadOnlyFile, SystemClock,
};
use crate::fault::with_sources;
use crate::grant::{Descriptor, Grant, Held};
use crate::revoke::Revoker;

/// How hard [`probe_with`] tries.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{ProbeOptions, Sandbox, probe_with};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let options = ProbeOptions { race_rounds: 10, ..ProbeOptions::default() };
/// probe_with(&sandbox.dir()?, &options).assert_contained();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub struct ProbeOptions {
    /// Rounds of each race, in which another thread swaps a directory for a
    /// symlink to the outside while the capability opens, creates or removes
    /// through it.
    pub race_rounds: u32,
    /// Also make the ambient calls a component could make around its
    /// capabilities, which only a kernel lockdown stops: `std::fs` on
    /// outside and inside paths; metadata changes and reads by path; set-id
    /// modes at creation; the process's working directory, umask, limits
    /// and dumpable flag; other processes' limits, priority, affinity and
    /// signals; sockets of every family and type the grant does not hold;
    /// new processes and raw threads; symlinks and hard links planted
    /// through host paths. Off by default: without lockdown they succeed,
    /// and the report says so.
    pub ambient: bool,
    /// Also make the attempts that only a process boundary stops, which a
    /// locked-down thread cannot: metadata of outside paths, the host
    /// paths of granted directories read from `/proc`, the program's
    /// environment variables, a panic hook registered for the whole
    /// process, and ending the process (`abort`, `exit`, a stack overflow, a
    /// panic while panicking). In a thread they get through, and the report
    /// says so — except those that end the process, which are skipped
    /// there; [`probe_process`] makes them in a process child, where an
    /// attempt that ends the process counts by how it ended. Off by
    /// default.
    pub beyond_threads: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            race_rounds: 300,
            ambient: false,
            beyond_threads: false,
        }
    }
}

/// Runs the escape battery against every capability `grant` holds, with
/// [`ProbeOptions::default`].
///
/// For each directory the battery plants its fixtures (symlinks to an
/// outside canary, a dangling symlink, a symlink chain and loop, a planted
/// hard link, deep nesting, a directory swapped for a symlink by a racing
/// thread) in a scratch directory inside it, acting as the host; it removes
/// them afterwards. It then tries, through the capability, every way out it
/// knows, and after each attempt checks that the canary outside is
/// untouched. Networks are probed with loopback addresses only; an
/// environment with names it was not granted; every capability after
/// revocation. Channel endpoints have no path or address to escape through
/// and are not probed.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{Sandbox, probe};
///
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let grant = (sandbox.dir()?, sandbox.read_only()?);
/// let report = probe(&grant);
/// assert!(report.escapes().is_empty(), "{report}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn probe<G: Grant>(grant: &G) -> Report {
    probe_with(grant, &ProbeOptions::default())
}

/// [`probe`] with explicit options.
pub fn probe_with<G: Grant>(grant: &G, options: &ProbeOptions) -> Report {
    match HostSide::new() {
        Ok(side) => run(grant, HostRef::Local(side), options),
        Err(err) => Report {
            attempts: vec![skipped("set up an outside canary", "-", &err)],
        },
    }
}

/// [`probe_with`], asking `host` — a thread started before any lockdown —
/// to plant fixtures and check the canary. Use it to run the battery from a
/// locked-down component, whose own thread may not touch the outside.
pub fn probe_hosted<G: Grant>(grant: &G, host: &Host, options: &ProbeOptions) -> Report {
    run(grant, HostRef::Remote(host), options)
}

fn run<G: Grant>(grant: &G, host: HostRef<'_>, options: &ProbeOptions) -> Report {
    let canary = host.canary_path();
    let concluded = host.resume();
    let mut prober = Prober {
        canary_dir: canary.parent().map(Path::to_owned).unwrap_or_default(),
        canary,
        host,
        options: *options,
        attempts: Vec::new(),
        concluded,
    };
    let inventory = grant.inventory();
    for held in inventory.iter() {
        prober.probe_held(held);
    }
    if options.ambient {
        prober.ambient(&inventory);
    }
    if options.beyond_threads {
        prober.beyond_threads(&inventory);
    }
    Report {
        attempts: prober.attempts,
    }
}

fn skipped(attempt: &str, capability: &str, why: &dyn fmt::Display) -> Attempt {
    Attempt {
        attempt: attempt.to_owned(),
        capability: capability.to_owned(),
        expected: Expected::Denied,
        outcome: Outcome::Skipped(why.to_string()),
        escaped: false,
    }
}

/// The attempts one kind of capability is put through.
trait Battery {
    /// Records every attempt against `self`, held as `label`; `descriptor`
    /// is its descriptor when it has one.
    fn probe(&self, prober: &mut Prober<'_>, label: &str, descriptor: Option<Descriptor<'_>>);
}

/// Finds the battery of a capability, when it is of the type this finder
/// knows.
type BatteryFinder = fn(&dyn Any) -> Option<&dyn Battery>;

/// `object`'s battery, when it is a `C`.
fn battery_of<C: Battery + 'static>(object: &dyn Any) -> Option<&dyn Battery> {
    object.downcast_ref::<C>().map(|c| c as &dyn Battery)
}

/// Every capability type the battery knows. Channel endpoints have no path
/// or address to escape through and are not probed.
const BATTERIES: &[BatteryFinder] = &[
    battery_of::<Dir>,
    battery_of::<ReadOnlyDir>,
    battery_of::<File>,
    battery_of::<ReadOnlyFile>,
    battery_of::<Net>,
    battery_of::<Env>,
    battery_of::<MonotonicClock>,
    battery_of::<SystemClock>,
    battery_of::<Random>,
];

/// The running battery: where fixtures and the canary are, and what was
/// attempted so far.
struct Prober<'h> {
    host: HostRef<'h>,
    /// The outside canary's host path, and its directory.
    canary: PathBuf,
    canary_dir: PathBuf,
    options: ProbeOptions,
    attempts: Vec<Attempt>,
    /// Attempts that ended an earlier instance's process (in a process
    /// child), by key, with how the process ended.
    concluded: BTreeMap<String, String>,
}

impl Prober<'_> {
    fn probe_held(&mut self, held: &Held<'_>) {
        let label = if held.field().is_empty() {
            held.capability().to_string()
        } else {
            format!("{}: {}", held.field(), held.capability())
        };
        let Some(object) = held.object() else { return };
        let object: &dyn Any = object;
        if let Some(battery) = BATTERIES.iter().find_map(|battery_of| battery_of(object)) {
            battery.probe(self, &label, held.descriptor());
        }
    }

    /// Records an attempt by its result: a typed refusal, another error, or
    /// success.
    fn record<T, E: Refusal + 'static>(
        &mut self,
        capability: &str,
        attempt: impl Into<String>,
        expected: Expected,
        result: Result<T, E>,
    ) {
        let outcome = match result {
            Ok(_) => Outcome::Allowed,
            Err(err) if err.is_refusal() => Outcome::Denied(with_sources(&err)),
            Err(err) => Outcome::Failed(with_sources(&err)),
        };
        let allowed = outcome == Outcome::Allowed && expected != Expected::StaysInside;
        self.push(capability, attempt.into(), expected, outcome, allowed);
    }

    /// Records an attempt, after checking that the canary is untouched
    /// (and restoring it when it is not).
    fn push(
        &mut self,
        capability: &str,
        attempt: String,
        expected: Expected,
        mut outcome: Outcome,
        mut escaped: bool,
    ) {
        if let Err(change) = self.host.check() {
            escaped = true;
            if !matches!(outcome, Outcome::Reached(_)) {
                outcome = Outcome::Reached(format!("{change} (after: {outcome})"));
            }
            self.host.restore();
        }
        self.attempts.push(Attempt {
            attempt,
            capability: capability.to_owned(),
            expected,
            outcome,
            escaped,
        });
    }

    /// Records an attempt that could not be made, and why.
    fn skip(&mut self, capability: &str, attempt: impl Into<String>, why: impl Into<String>) {
        self.push(
            capability,
            attempt.into(),
            Expected::Denied,
            Outcome::Skipped(why.into()),
            false,
        );
    }

    /// Re-issues `capability` under a new revoker, revokes it, and records
    /// `attempt` made through the revoked copy; the copy must refuse.
    fn after_revocation<C: Grant, T, E: Refusal + 'static>(
        &mut self,
        label: &str,
        attempt: String,
        capability: &C,
        use_it: impl FnOnce(&mut C) -> Result<T, E>,
    ) {
        let (copy, revoker) = revoked_copy(capability);
        match copy {
            Ok(mut copy) => {
                revoker.revoke();
                let result = use_it(&mut copy);
                self.record(label, attempt, Expected::Denied, result);
            }
            Err(why) => self.skip(label, attempt, format!("cannot re-issue: {why}")),
        }
    }

    /// Plants the fixtures in a scratch directory inside the directory
    /// behind `descriptor`; when that cannot be done, records why the
    /// attempts that need them are skipped.
    fn scratch(&mut self, label: &str, descriptor: Option<Descriptor<'_>>) -> Option<Scratch> {
        let planted = descriptor
            .and_then(|d| self.host.host_path(d.borrow()))
            .ok_or_else(|| "the directory's host path is unknown".to_owned())
            .and_then(|host| self.host.plant(&host));
        match planted {
            Ok(scratch) => Some(scratch),
            Err(why) => {
                self.skip(label, "plant fixtures", why);
                None
            }
        }
    }
}

/// A re-issued copy of `capability` subject to a new revoker.
fn revoked_copy<C: Grant>(capability: &C) -> (Result<C, String>, Revoker) {
    let revoker = Revoker::new();
    let copy = capability.reissue().map(|mut copy| {
        copy.attach_revoker(&revoker);
        copy
    });
    (copy.map_err(|e| e.to_string()), revoker)
}

/// Files: nothing to climb out of, but revocation must hold.
impl Battery for File {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        prober.revoked_file(label, self);
    }
}

impl Battery for ReadOnlyFile {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, descriptor: Option<Descriptor<'_>>) {
        prober.read_only_descriptor(label, "a read-only file in the grant", descriptor);
        prober.revoked_file(label, self);
    }
}

impl Battery for MonotonicClock {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        let attempt = "read the clock after revocation".into();
        prober.after_revocation(label, attempt, self, |c| c.now());
    }
}

impl Battery for SystemClock {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        let attempt = "read the clock after revocation".into();
        prober.after_revocation(label, attempt, self, |c| c.now());
    }
}

impl Battery for Random {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        let attempt = "draw random bytes after revocation".into();
        prober.after_revocation(label, attempt, self, |r| r.next_u64());
    }
}

impl Prober<'_> {
    fn revoked_file<F: Grant + Read>(&mut self, label: &str, file: &F) {
        let attempt = "read the file after revocation".into();
        self.after_revocation(label, attempt, file, |copy| copy.read(&mut [0u8; 1]));
    }
}

fn permissions(mode: u32) -> cap_std::fs::Permissions {
    use cap_std::fs::PermissionsExt;
    cap_std::fs::Permissions::from_mode(mode)
}
