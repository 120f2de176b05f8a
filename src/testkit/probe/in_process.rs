//! The escape battery inside a process child (feature `process`): the
//! same attempts, made from where the process tier's confinement holds,
//! plus those only it can stop.
//!
//! The battery's host stays on the granting side, behind a bridged
//! [`Host`]. An attempt that ends the child's process (its policy kills it
//! for a new program; `abort` ends it) is announced to the host first; the
//! driver tells the host how the process ended, from the fault the
//! supervisor reports, and the next instance runs the battery again,
//! recording that attempt by how it ended instead of making it twice.

use std::time::Duration;

use super::{ProbeOptions, Report, probe_hosted};
use crate::component::{Child, Restart};
use crate::context::Context;
use crate::event::{EventKind, ExitReason};
use crate::fault::{Fault, FaultKind};
use crate::grant::{Grant, Inventory, ReissueError};
use crate::process::{Entry, PackError, Packing, Portable, Unpacking};
use crate::revoke::Revoker;
use crate::supervisor::Supervisor;
use crate::testkit::host::{Answer, Call, Host};
use crate::testkit::sandbox::SandboxError;

/// How long the driver waits for the battery's next event before it gives
/// up: a start, a death or the end of a run, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(300);

/// Attempts that may end the battery's process, each costing one restart,
/// with room for the instance that finishes.
const ENDINGS: u32 = 8;

/// What the battery's process child holds: the grant under test, the
/// bridged host, and the options. Made by [`probe_process`]; its type is
/// named in [`probe_entry`].
///
/// # Examples
///
/// ```
/// use compartment::caps::ReadOnlyDir;
/// use compartment::process::Entry;
/// use compartment::testkit::{ProbeGrant, probe_entry};
/// // The entry `process::init` is given to probe read-only directories:
/// let entry: Entry<ProbeGrant<ReadOnlyDir>, String> = probe_entry::<ReadOnlyDir>();
/// assert!(entry.name().contains("battery"));
/// ```
#[derive(Debug)]
pub struct ProbeGrant<G> {
    grant: G,
    host: Host,
    options: ProbeOptions,
}

impl<G: Grant> Grant for ProbeGrant<G> {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(Self {
            grant: self.grant.reissue()?,
            host: self.host.reissue()?,
            options: self.options,
        })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.grant.attach_revoker(revoker);
        self.host.attach_revoker(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        // The grant under test is what the child's kernel policy and the
        // battery see, with its own field names.
        self.grant.visit(inventory);
        self.host.visit(inventory);
    }
}

impl<G: Portable> Portable for ProbeGrant<G> {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        self.grant.pack(packing)?;
        self.host.pack(packing)?;
        packing.data(&self.options)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        Ok(Self {
            grant: G::unpack(unpacking)?,
            host: Host::unpack(unpacking)?,
            options: unpacking.data()?,
        })
    }
}

/// The battery, in the child: probes the grant and hands the report to
/// the host.
fn battery<G: Portable>(probed: ProbeGrant<G>, _: &Context) -> Result<(), String> {
    let report = probe_hosted(&probed.grant, &probed.host, &probed.options);
    match probed.host.ask(Call::Finished(report)) {
        Some(Answer::Done) => Ok(()),
        _ => Err("the battery's host did not take its report".to_owned()),
    }
}

/// The entry [`probe_process`] starts for a grant of type `G`: list it in
/// [`process::init`](crate::process::init) (or
/// [`process_main`](crate::testkit::process_main())) with the program's other
/// entries.
///
/// ```no_run
/// use compartment::caps::Dir;
/// use compartment::process::Portable;
/// use compartment::testkit::{self, ProbeOptions};
/// use compartment::Grant;
///
/// #[derive(Grant, Portable)]
/// struct Plugin {
///     data: Dir,
/// }
///
/// fn the_plugin_stays_inside() {
///     let sandbox = testkit::Sandbox::standard(compartment::ambient_authority()).unwrap();
///     let grant = Plugin { data: sandbox.dir().unwrap() };
///     let options = ProbeOptions { ambient: true, beyond_threads: true, ..ProbeOptions::default() };
///     testkit::probe_process(grant, &options).unwrap().assert_contained();
/// }
///
/// fn main() {
///     testkit::process_main(
///         &[&testkit::probe_entry::<Plugin>()],
///         &[("the_plugin_stays_inside", the_plugin_stays_inside)],
///     )
/// }
/// ```
pub fn probe_entry<G: Portable>() -> Entry<ProbeGrant<G>, String> {
    Entry::new(std::any::type_name_of_val(&battery::<G>), battery::<G>)
}

/// Why [`probe_process`] has no report.
///
/// # Examples
///
/// ```
/// use compartment::testkit::{ProbeFailed, ProbeOptions, Sandbox, probe_process};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// // This program never called `process::init`, so no process child starts:
/// match probe_process(sandbox.read_only()?, &ProbeOptions::default()) {
///     Err(ProbeFailed::Start(why)) => assert!(why.contains("process::init"), "{why}"),
///     other => panic!("expected a start failure, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeFailed {
    /// The battery's host side could not be set up.
    #[error("the battery's host could not start: {0}")]
    Host(#[from] SandboxError),
    /// The battery's process child could not start (is
    /// [`probe_entry`] listed in `process::init`?).
    #[error("the battery's process child could not start: {0}")]
    Start(String),
    /// The battery's process kept ending outside the attempts that may end
    /// it, until its supervisor gave up; the last fault.
    #[error("the battery's process kept ending outside its announced attempts: {0}")]
    GaveUp(String),
    /// Nothing happened for the driver's patience (five minutes).
    #[error("the battery's process child went silent")]
    Silent,
    /// The battery ended without handing over its report.
    #[error("the battery ended without a report")]
    NoReport,
}

/// How a process that ended in an announced attempt ended, as the host
/// records it.
fn how_it_ended(fault: &Fault) -> String {
    match &fault.kind {
        FaultKind::Died { .. } => fault.message(),
        _ => fault.to_string(),
    }
}

/// Runs the escape battery against `grant` from inside a process child —
/// the process tier's confinement, a new tree of its own — and returns
/// its report.
///
/// With [`ProbeOptions::beyond_threads`] it also makes the attempts only a
/// process boundary stops, including those that end the process; each of
/// those costs the child one restart, and counts as contained when it
/// ended only the child. The program must list [`probe_entry::<G>()`](probe_entry)
/// in [`process::init`](crate::process::init).
///
/// # Ambient Authority
///
/// As [`probe`](super::probe): the battery's host plants fixtures and an
/// outside canary. Test code only.
///
/// # Errors
///
/// [`ProbeFailed`] when the battery could not run to its end.
pub fn probe_process<G: Portable>(grant: G, options: &ProbeOptions) -> Result<Report, ProbeFailed> {
    probe_process_with(grant, options, |child| child)
}

/// [`probe_process`], with the battery's child specified as `configure`
/// makes it from the default: how it is started
/// ([`Child::spawning`](crate::Child::spawning)), its
/// [`Limits`](crate::Limits) or its [`Lockdown`](crate::Lockdown) — the
/// settings of the child whose grant is under test. Its restart type
/// stays the driver's (transient: each death is a restart).
///
/// # Ambient Authority
///
/// As [`probe_process`].
///
/// # Errors
///
/// As [`probe_process`].
pub fn probe_process_with<G: Portable>(
    grant: G,
    options: &ProbeOptions,
    configure: impl FnOnce(Child) -> Child,
) -> Result<Report, ProbeFailed> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the battery's host plays the outside world, as probe's does"
    )]
    let host = Host::start(cap_std::ambient_authority())?;
    let supervisor = Supervisor::new("probe")
        .intensity(ENDINGS, Duration::from_secs(3600))
        .forward_panics(false);
    let events = supervisor.events(256);
    let probed = ProbeGrant {
        grant,
        host: host.clone(),
        options: *options,
    };
    let system = supervisor
        .child(
            configure(Child::process("battery", probe_entry::<G>(), probed))
                .restart(Restart::Transient),
        )
        .start()
        .map_err(|err| ProbeFailed::Start(crate::fault::with_sources(&err)))?;
    let mut last_fault = String::new();
    let outcome = loop {
        let Some(event) = events.recv_timeout(PATIENCE) else {
            break Err(ProbeFailed::Silent);
        };
        match event.kind {
            EventKind::Faulted { fault } if event.path == "probe/battery" => {
                if matches!(fault.kind, FaultKind::StartFailed { .. }) {
                    break Err(ProbeFailed::Start(fault.to_string()));
                }
                last_fault = fault.to_string();
                let _ = host.ask(Call::Ended(how_it_ended(&fault)));
            }
            EventKind::Exited {
                reason: ExitReason::Normal,
            } if event.path == "probe/battery" => {
                break match host.ask(Call::TakeReport) {
                    Some(Answer::Report(Some(report))) => Ok(report),
                    _ => Err(ProbeFailed::NoReport),
                };
            }
            EventKind::GaveUp { .. } => break Err(ProbeFailed::GaveUp(last_fault)),
            _ => {}
        }
    };
    system.shutdown();
    outcome
}
