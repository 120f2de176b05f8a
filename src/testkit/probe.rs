//! The escape battery: `probe(&grant)` tries to reach beyond every
//! capability a grant holds, and reports each attempt.

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::assert::Refusal;
use super::host::{DEPTH, Host, HostRef, HostSide, Scratch};
use super::sandbox::CANARY_CONTENT;
use crate::caps::{
    Dir, Env, File, FsError, MonotonicClock, Net, NetAccess, Random, ReadOnlyDir, ReadOnlyFile,
    SystemClock,
};
use crate::fault::with_sources;
use crate::grant::{Descriptor, Grant, Held, Inventory};
use crate::revoke::Revoker;

/// What an attempt should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expected {
    /// Refused by the capability model (a typed refusal).
    Denied,
    /// Failing in any way: refused, or an error from the kernel (such as a
    /// symlink loop, or writing through a read-only descriptor).
    Fails,
    /// Whatever happens, nothing outside the capability is reached.
    StaysInside,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Denied => "denied",
            Expected::Fails => "fails",
            Expected::StaysInside => "stays inside",
        })
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The capability refused it; the refusal's message.
    Denied(String),
    /// It failed with another error; the error's message.
    Failed(String),
    /// It succeeded.
    Allowed,
    /// A repeated race: a summary of what the rounds did, none of which
    /// reached outside.
    Contained(String),
    /// A race round reached outside.
    Reached(String),
    /// The attempt could not be set up (for example, fixtures cannot be
    /// planted in a read-only filesystem); it counts as no attempt.
    Skipped(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Denied(why) => write!(f, "denied: {why}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Allowed => f.write_str("ALLOWED"),
            Outcome::Contained(summary) => write!(f, "contained: {summary}"),
            Outcome::Reached(summary) => write!(f, "REACHED OUTSIDE: {summary}"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// One escape or overreach attempt and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What was tried.
    pub attempt: String,
    /// Against which capability: its field path and kind.
    pub capability: String,
    /// What it should come to.
    pub expected: Expected,
    /// What it came to.
    pub outcome: Outcome,
    /// Whether it got through: allowed when it should not have been, or the
    /// outside canary changed.
    pub escaped: bool,
}

/// The result of [`probe`]: every attempt, printable as a table ending in
/// `N attempts, M escaped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every attempt, in the order made.
    pub attempts: Vec<Attempt>,
}

impl Report {
    /// The attempts actually made (not skipped).
    pub fn made(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.outcome, Outcome::Skipped(_)))
    }

    /// The attempts that escaped.
    pub fn escapes(&self) -> Vec<&Attempt> {
        self.attempts.iter().filter(|a| a.escaped).collect()
    }

    /// Panics, printing the whole table, if any attempt escaped.
    ///
    /// # Panics
    ///
    /// When [`escapes`](Self::escapes) is not empty.
    #[track_caller]
    pub fn assert_contained(&self) {
        assert!(
            self.escapes().is_empty(),
            "the escape battery found escapes:\n{self}"
        );
    }

    /// Adds another report's attempts.
    pub fn merge(&mut self, other: Report) {
        self.attempts.extend(other.attempts);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |column: fn(&Attempt) -> String| {
            self.attempts
                .iter()
                .map(|a| column(a).chars().count())
                .max()
                .unwrap_or(0)
        };
        let attempt_width = width(|a| a.attempt.clone()).max(7);
        let capability_width = width(|a| a.capability.clone()).max(10);
        writeln!(
            f,
            "{:>3}  {:<attempt_width$}  {:<capability_width$}  {:<12}  outcome",
            "#", "attempt", "capability", "expected"
        )?;
        for (i, a) in self.attempts.iter().enumerate() {
            let mut outcome = a.outcome.to_string();
            if outcome.chars().count() > 110 {
                outcome = outcome.chars().take(107).collect::<String>() + "...";
            }
            writeln!(
                f,
                "{:>3}  {:<attempt_width$}  {:<capability_width$}  {:<12}  {}{}",
                i + 1,
                a.attempt,
                a.capability,
                a.expected.to_string(),
                if a.escaped { "ESCAPED " } else { "" },
                outcome
            )?;
        }
        let skipped = self.attempts.len() - self.made().count();
        if skipped > 0 {
            writeln!(f, "({skipped} attempts skipped)")?;
        }
        write!(
            f,
            "{} attempts, {} escaped",
            self.made().count(),
            self.escapes().len()
        )
    }
}

/// How hard [`probe_with`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Rounds of each race, in which another thread swaps a directory for a
    /// symlink to the outside while the capability opens, creates or removes
    /// through it.
    pub race_rounds: u32,
    /// Also make the ambient calls a component could make around its
    /// capabilities — `std::fs` on outside and inside paths, sockets,
    /// processes, signals, set-id modes, symlinks and hard links planted
    /// through host paths — which only a kernel lockdown stops. Off by
    /// default: without lockdown they succeed, and the report says so.
    pub ambient: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            race_rounds: 300,
            ambient: false,
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
    let mut prober = Prober {
        canary_dir: canary.parent().map(Path::to_owned).unwrap_or_default(),
        canary,
        host,
        options: *options,
        attempts: Vec::new(),
    };
    let inventory = grant.inventory();
    for held in inventory.iter() {
        prober.probe_held(held);
    }
    if options.ambient {
        prober.ambient(&inventory);
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

struct Prober<'h> {
    host: HostRef<'h>,
    /// The outside canary's host path, and its directory.
    canary: PathBuf,
    canary_dir: PathBuf,
    options: ProbeOptions,
    attempts: Vec<Attempt>,
}

/// The directory capabilities, seen alike by the read-side attempts.
trait ProbedDir: Grant {
    fn read_path(&self, path: &Path) -> Result<Vec<u8>, FsError>;
    fn open_sub(&self, path: &Path) -> Result<Self, FsError>;
    fn metadata_of(&self, path: &Path) -> Result<(), FsError>;
    fn list(&self, path: &Path) -> Result<usize, FsError>;
}

impl ProbedDir for Dir {
    fn read_path(&self, path: &Path) -> Result<Vec<u8>, FsError> {
        self.read(path)
    }
    fn open_sub(&self, path: &Path) -> Result<Self, FsError> {
        self.open_dir(path)
    }
    fn metadata_of(&self, path: &Path) -> Result<(), FsError> {
        self.metadata(path).map(|_| ())
    }
    fn list(&self, path: &Path) -> Result<usize, FsError> {
        Ok(self.read_dir(path)?.count())
    }
}

impl ProbedDir for ReadOnlyDir {
    fn read_path(&self, path: &Path) -> Result<Vec<u8>, FsError> {
        self.read(path)
    }
    fn open_sub(&self, path: &Path) -> Result<Self, FsError> {
        self.open_dir(path)
    }
    fn metadata_of(&self, path: &Path) -> Result<(), FsError> {
        self.metadata(path).map(|_| ())
    }
    fn list(&self, path: &Path) -> Result<usize, FsError> {
        Ok(self.read_dir(path)?.count())
    }
}

impl Prober<'_> {
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

    fn probe_held(&mut self, held: &Held<'_>) {
        let label = if held.field().is_empty() {
            held.capability().to_string()
        } else {
            format!("{}: {}", held.field(), held.capability())
        };
        let Some(object) = held.object() else { return };
        if let Some(dir) = object.downcast_ref::<Dir>() {
            self.directory(&label, dir, held.descriptor());
            self.full_directory(&label, dir, held.descriptor());
        } else if let Some(dir) = object.downcast_ref::<ReadOnlyDir>() {
            self.directory(&label, dir, held.descriptor());
            self.read_only_directory(&label, dir);
        } else if let Some(file) = object.downcast_ref::<ReadOnlyFile>() {
            self.read_only_descriptor(&label, "a read-only file in the grant", held.descriptor());
            self.revoked_file(&label, file);
        } else if let Some(file) = object.downcast_ref::<File>() {
            self.revoked_file(&label, file);
        } else if let Some(net) = object.downcast_ref::<Net>() {
            self.network(&label, net);
        } else if let Some(env) = object.downcast_ref::<Env>() {
            self.environment(&label, env);
        } else if let Some(clock) = object.downcast_ref::<MonotonicClock>() {
            let attempt = "read the clock after revocation".into();
            self.after_revocation(&label, attempt, clock, |c| c.now());
        } else if let Some(clock) = object.downcast_ref::<SystemClock>() {
            let attempt = "read the clock after revocation".into();
            self.after_revocation(&label, attempt, clock, |c| c.now());
        } else if let Some(random) = object.downcast_ref::<Random>() {
            let attempt = "draw random bytes after revocation".into();
            self.after_revocation(&label, attempt, random, |r| r.next_u64());
        }
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
            Err(why) => self.push(
                label,
                attempt,
                Expected::Denied,
                Outcome::Skipped(format!("cannot re-issue: {why}")),
                false,
            ),
        }
    }

    // ----- directories: read side ------------------------------------------

    fn directory<D: ProbedDir>(
        &mut self,
        label: &str,
        dir: &D,
        descriptor: Option<Descriptor<'_>>,
    ) {
        let canary = self.canary.clone();
        let canary_name = canary.file_name().map(PathBuf::from).unwrap_or_default();
        let denied = Expected::Denied;
        self.record(
            label,
            "open `..`",
            denied,
            dir.open_sub(Path::new("..")).map(|_| ()),
        );
        self.record(
            label,
            "read `../<canary>`",
            denied,
            dir.read_path(&Path::new("..").join(&canary_name)),
        );
        self.record(
            label,
            "read `../../../../../../../../etc/passwd`",
            denied,
            dir.read_path(Path::new("../../../../../../../../etc/passwd")),
        );
        self.record(
            label,
            "read `/etc/passwd`",
            denied,
            dir.read_path(Path::new("/etc/passwd")),
        );
        self.record(
            label,
            "read the canary by its absolute path",
            denied,
            dir.read_path(&canary),
        );
        self.record(
            label,
            "read `/proc/self/root/etc/passwd`",
            denied,
            dir.read_path(Path::new("/proc/self/root/etc/passwd")),
        );
        self.record(
            label,
            "list `/proc/self/cwd`",
            denied,
            dir.list(Path::new("/proc/self/cwd")),
        );
        if let Some(descriptor) = descriptor {
            let through_fd = PathBuf::from(format!("/proc/self/fd/{}/..", descriptor.number()));
            self.record(
                label,
                "list `/proc/self/fd/<own fd>/..`",
                denied,
                dir.list(&through_fd),
            );
        }
        self.record(
            label,
            "read a path with a NUL byte",
            denied,
            dir.read_path(Path::new("ok\0/../../etc/passwd")),
        );
        self.record(
            label,
            "read an empty path",
            denied,
            dir.read_path(Path::new("")),
        );
        let long: PathBuf = std::iter::repeat_n("x", 3000).collect();
        self.record(
            label,
            "read a 6000-byte path",
            Expected::Fails,
            dir.read_path(&long),
        );

        let Some(scratch) = self.scratch(label, descriptor) else {
            return;
        };
        let s = PathBuf::from(&scratch.name);
        self.record(
            label,
            "read `<scratch>/../../<canary>` (climb in the middle)",
            denied,
            dir.read_path(&s.join("../..").join(&canary_name)),
        );
        self.record(
            label,
            "open `<scratch>/d/../../..` (climb at the end)",
            denied,
            dir.open_sub(&s.join("d/../../..")).map(|_| ()),
        );
        self.record(
            label,
            "read through an absolute symlink to the canary",
            denied,
            dir.read_path(&s.join("abs")),
        );
        self.record(
            label,
            "read through a relative symlink to the canary",
            denied,
            dir.read_path(&s.join("rel")),
        );
        self.record(
            label,
            "metadata through a symlink to the canary",
            denied,
            dir.metadata_of(&s.join("abs")),
        );
        self.record(
            label,
            "list a symlinked outside directory",
            denied,
            dir.list(&s.join("outdir")),
        );
        self.record(
            label,
            "read through a symlink chain ending outside",
            denied,
            dir.read_path(&s.join("chain-1")),
        );
        self.record(
            label,
            "read a symlink loop",
            Expected::Fails,
            dir.read_path(&s.join("loop-a")),
        );
        let deepest: PathBuf = std::iter::repeat_n("d", DEPTH).collect();
        let climb: PathBuf = std::iter::repeat_n("..", DEPTH + 2).collect();
        self.record(
            label,
            format!("climb out from {DEPTH} levels deep"),
            denied,
            dir.read_path(&s.join(&deepest).join(climb).join(&canary_name)),
        );
        self.race_read(label, dir, &scratch);
        self.revoked_directory(label, dir, &scratch);
        self.host.remove(&scratch);
    }

    /// Plants the fixtures in a scratch directory inside the directory
    /// behind `descriptor`; when that cannot be done, records why the
    /// attempts that need them are skipped.
    fn scratch(&mut self, label: &str, descriptor: Option<Descriptor<'_>>) -> Option<Scratch> {
        let planted = descriptor
            .and_then(|d| self.host.host_path(d.number()))
            .ok_or_else(|| "the directory's host path is unknown".to_owned())
            .and_then(|host| self.host.plant(&host));
        match planted {
            Ok(scratch) => Some(scratch),
            Err(why) => {
                let attempt = "plant fixtures".to_owned();
                self.push(
                    label,
                    attempt,
                    Expected::Denied,
                    Outcome::Skipped(why),
                    false,
                );
                None
            }
        }
    }

    /// Another thread swaps `swap` between a directory and a symlink to the
    /// canary's directory while the capability reads `swap/canary`.
    fn race_read<D: ProbedDir>(&mut self, label: &str, dir: &D, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap/canary");
        let rounds = self.options.race_rounds;
        let (mut inside, mut refused, mut outside) = (0u32, 0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.read_path(&path) {
                Ok(content) if content == CANARY_CONTENT => outside += 1,
                Ok(_) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        self.race_result(
            label,
            "read while a directory is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }

    fn race_result(
        &mut self,
        label: &str,
        attempt: &str,
        rounds: u32,
        inside: u32,
        refused: u32,
        outside: u32,
    ) {
        let summary =
            format!("{rounds} rounds: {inside} inside, {refused} refused, {outside} outside");
        let (outcome, escaped) = if outside > 0 {
            (Outcome::Reached(summary), true)
        } else {
            (Outcome::Contained(summary), false)
        };
        self.push(
            label,
            attempt.to_owned(),
            Expected::StaysInside,
            outcome,
            escaped,
        );
    }

    fn revoked_directory<D: ProbedDir>(&mut self, label: &str, dir: &D, scratch: &Scratch) {
        let s = Path::new(&scratch.name);
        let (copy, revoker) = revoked_copy(dir);
        let Ok(copy) = copy else {
            self.push(
                label,
                "use after revocation".into(),
                Expected::Denied,
                Outcome::Skipped("cannot re-issue".into()),
                false,
            );
            return;
        };
        let sub = copy.open_sub(s);
        revoker.revoke();
        self.record(
            label,
            "read after revocation",
            Expected::Denied,
            copy.read_path(&s.join("file")),
        );
        match sub {
            Ok(sub) => self.record(
                label,
                "read through a subdirectory opened before revocation",
                Expected::Denied,
                sub.read_path(Path::new("file")),
            ),
            Err(err) => self.push(
                label,
                "read through a subdirectory opened before revocation".into(),
                Expected::Denied,
                Outcome::Skipped(err.to_string()),
                false,
            ),
        }
    }

    fn read_only_directory(&mut self, label: &str, dir: &ReadOnlyDir) {
        let Ok(entries) = dir.entries() else { return };
        let file = entries
            .filter_map(Result::ok)
            .find(|e| e.file_type().is_file())
            .and_then(|e| dir.open(e.name()).ok());
        if let Some(file) = file {
            let inventory = file.inventory();
            let descriptor = inventory.iter().next().and_then(|held| held.descriptor());
            self.read_only_descriptor(label, "a file opened through it", descriptor);
            let attempt = "read a file opened before revocation".into();
            self.after_revocation(label, attempt, &file, |copy| copy.read(&mut [0u8; 1]));
        }
    }

    /// Writes and truncates through the raw descriptor of a read-only file:
    /// the kernel refuses, because the descriptor itself is read-only.
    fn read_only_descriptor(
        &mut self,
        label: &str,
        what: &str,
        descriptor: Option<Descriptor<'_>>,
    ) {
        let Some(descriptor) = descriptor else { return };
        let fd = descriptor.borrow();
        self.record(
            label,
            format!("write through the descriptor of {what}"),
            Expected::Fails,
            rustix::io::write(fd, b"overwritten").map_err(std::io::Error::from),
        );
        self.record(
            label,
            format!("truncate through the descriptor of {what}"),
            Expected::Fails,
            rustix::fs::ftruncate(fd, 0).map_err(std::io::Error::from),
        );
    }

    fn revoked_file<F: Grant + Read>(&mut self, label: &str, file: &F) {
        let attempt = "read the file after revocation".into();
        self.after_revocation(label, attempt, file, |copy| copy.read(&mut [0u8; 1]));
    }

    // ----- directories: write side ------------------------------------------

    fn full_directory(&mut self, label: &str, dir: &Dir, descriptor: Option<Descriptor<'_>>) {
        let denied = Expected::Denied;
        self.record(
            label,
            "create `../escaped`",
            denied,
            dir.write("../escaped", b"x"),
        );
        self.record(
            label,
            "create_dir_all `../escaped/dir`",
            denied,
            dir.create_dir_all("../escaped/dir"),
        );
        self.record(
            label,
            "remove_dir_all `..`",
            denied,
            dir.remove_dir_all(".."),
        );
        self.record(
            label,
            "write the canary by its absolute path",
            denied,
            dir.write(&self.canary, b"x"),
        );
        self.record(
            label,
            "create an absolute symlink",
            denied,
            dir.symlink(&self.canary, "abs-link"),
        );
        self.record(
            label,
            "create a relative symlink that climbs",
            denied,
            dir.symlink("../../..", "up-link"),
        );

        let Some(scratch) = self.scratch(label, descriptor) else {
            return;
        };
        let s = PathBuf::from(&scratch.name);
        self.record(
            label,
            "write through an absolute symlink to the canary",
            denied,
            dir.write(s.join("abs"), b"x"),
        );
        self.record(
            label,
            "write through a relative symlink to the canary",
            denied,
            dir.write(s.join("rel"), b"x"),
        );
        self.record(
            label,
            "create through a dangling symlink pointing outside",
            denied,
            dir.write(s.join("dangling"), b"x"),
        );
        self.record(
            label,
            "remove the canary through a symlinked directory",
            denied,
            dir.remove_file(s.join("outdir/canary")),
        );
        self.record(
            label,
            "rename the canary through a symlinked directory",
            denied,
            dir.rename(s.join("outdir/canary"), dir, s.join("stolen")),
        );
        self.record(
            label,
            "rename a file to `../escaped`",
            denied,
            dir.rename(s.join("file"), dir, "../escaped"),
        );
        self.record(
            label,
            "hard-link a file to `../escaped`",
            denied,
            dir.hard_link(s.join("file"), dir, "../escaped"),
        );
        self.record(
            label,
            "copy a file to `../escaped`",
            denied,
            dir.copy(s.join("file"), dir, "../escaped"),
        );
        if scratch.hard_link {
            self.record(
                label,
                "write through a hard link to the canary planted beforehand",
                denied,
                dir.write(s.join("hardlink"), b"x"),
            );
            self.record(
                label,
                "chmod a hard link to the canary planted beforehand",
                denied,
                dir.set_permissions(s.join("hardlink"), permissions(0o600)),
            );
        } else {
            self.push(
                label,
                "write through a planted hard link".into(),
                denied,
                Outcome::Skipped("the canary is on another filesystem".into()),
                false,
            );
        }
        self.record(
            label,
            "set the set-user-ID bit",
            denied,
            dir.set_permissions(s.join("file"), permissions(0o4755)),
        );
        self.record(
            label,
            "write through a file opened read-only",
            Expected::Fails,
            dir.open(s.join("file"))
                .map_err(std::io::Error::from)
                .and_then(|mut f| f.write_all(b"x")),
        );
        self.race_create(label, dir, &scratch);
        self.race_remove(label, dir, &scratch);
        self.host.remove(&scratch);
    }

    fn race_create(&mut self, label: &str, dir: &Dir, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap/created-in-a-race");
        let rounds = self.options.race_rounds;
        let (mut inside, mut refused) = (0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.write(&path, b"race") {
                Ok(()) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        let outside = u32::from(self.host.exists(&self.canary_dir.join("created-in-a-race")));
        self.race_result(
            label,
            "create while a directory is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }

    fn race_remove(&mut self, label: &str, dir: &Dir, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap");
        let rounds = self.options.race_rounds / 4;
        let (mut inside, mut refused) = (0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.remove_dir_all(&path) {
                Ok(()) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        let outside = u32::from(!self.host.exists(&self.canary));
        self.race_result(
            label,
            "remove a tree while it is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }

    // ----- ambient calls ---------------------------------------------------------

    /// Calls a component could make around its capabilities. Only a kernel
    /// lockdown refuses them; without one they succeed and are reported as
    /// escapes.
    #[allow(
        clippy::disallowed_methods,
        reason = "these are the ambient calls a component could make anyway: the kernel must refuse them"
    )]
    fn ambient(&mut self, inventory: &Inventory<'_>) {
        use std::net::{TcpListener, TcpStream, UdpSocket};
        let label = "ambient calls";
        let fails = Expected::Fails;
        let canary = self.canary.clone();
        self.record(
            label,
            "std::fs::read(\"/etc/passwd\")",
            fails,
            std::fs::read("/etc/passwd"),
        );
        self.record(
            label,
            "std::fs::read the canary",
            fails,
            std::fs::read(&canary),
        );
        self.record(
            label,
            "std::fs::write the canary",
            fails,
            std::fs::write(&canary, b"x"),
        );
        self.record(
            label,
            "std::fs::read_dir(\"/\")",
            fails,
            std::fs::read_dir("/"),
        );
        self.record(
            label,
            "std::fs::write next to the canary",
            fails,
            std::fs::write(self.canary_dir.join("written-by-an-ambient-call"), b"x"),
        );
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let rules: Vec<crate::caps::NetRule> = inventory
            .iter()
            .filter_map(|held| match held.capability() {
                crate::grant::Capability::Net { rules } => Some(rules.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if !rules
            .iter()
            .any(|rule| rule.permits(NetAccess::Bind, loopback))
        {
            self.record(
                label,
                "std::net::TcpListener::bind(127.0.0.1:0)",
                fails,
                TcpListener::bind(loopback),
            );
            self.record(
                label,
                "std::net::UdpSocket::bind(127.0.0.1:0)",
                fails,
                UdpSocket::bind(loopback),
            );
        }
        if let Some(addr) = [9u16, 22, 443, 40_002]
            .into_iter()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .find(|addr| {
                !rules
                    .iter()
                    .any(|rule| rule.permits(NetAccess::Connect, *addr))
            })
        {
            self.record(
                label,
                format!("std::net::TcpStream::connect({addr})"),
                fails,
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
            );
        }
        self.record(
            label,
            "std::process::Command::new(\"true\")",
            fails,
            std::process::Command::new("true").status(),
        );
        let parent = std::os::unix::process::parent_id();
        self.record(
            label,
            format!("signal 0 to the parent process ({parent})"),
            fails,
            rustix::process::Pid::from_raw(parent as i32)
                .ok_or_else(|| std::io::Error::other("no parent"))
                .and_then(|pid| {
                    rustix::process::test_kill_process(pid).map_err(std::io::Error::from)
                }),
        );
        let from_thread = std::thread::scope(|scope| {
            scope
                .spawn(|| std::fs::read("/etc/passwd").map(drop))
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the thread panicked")))
        });
        self.record(
            label,
            "std::fs::read(\"/etc/passwd\") from a thread it spawned",
            fails,
            from_thread,
        );
        // Directories the grant may write: a read-only directory inside one
        // of them is writable through the grant, by design.
        let writable: Vec<(String, PathBuf)> = inventory
            .iter()
            .filter(|held| {
                matches!(
                    held.capability(),
                    crate::grant::Capability::Dir {
                        rights: crate::grant::Rights::Full
                    }
                )
            })
            .filter_map(|held| {
                let path = self.host.host_path(held.descriptor()?.number())?;
                Some((held.field().to_owned(), path))
            })
            .collect();
        for held in inventory.iter() {
            let (crate::grant::Capability::Dir { rights }, Some(descriptor)) =
                (held.capability(), held.descriptor())
            else {
                continue;
            };
            let Some(host) = self.host.host_path(descriptor.number()) else {
                continue;
            };
            if *rights != crate::grant::Rights::Full
                && let Some((by, _)) = writable.iter().find(|(_, full)| host.starts_with(full))
            {
                self.push(
                    label,
                    format!("ambient writes inside read-only `{}`", held.field()),
                    fails,
                    Outcome::Skipped(format!("the grant may write there through `{by}`")),
                    false,
                );
                continue;
            }
            let field = held.field().to_owned();
            let through_fd = PathBuf::from(format!("/proc/self/fd/{}", descriptor.number()));
            match rights {
                crate::grant::Rights::Full => {
                    self.record(
                        label,
                        format!("std symlink to the canary inside `{field}`"),
                        fails,
                        std::os::unix::fs::symlink(&canary, host.join("ambient-symlink")),
                    );
                    self.record(
                        label,
                        format!("std hard link to the canary inside `{field}`"),
                        fails,
                        std::fs::hard_link(&canary, host.join("ambient-hardlink")),
                    );
                    let file = host.join("ambient-set-id");
                    if std::fs::write(&file, b"#!").is_ok() {
                        use std::os::unix::fs::PermissionsExt;
                        self.record(
                            label,
                            format!("std chmod 4755 inside `{field}`"),
                            fails,
                            std::fs::set_permissions(
                                &file,
                                std::fs::Permissions::from_mode(0o4755),
                            ),
                        );
                        let _ = std::fs::remove_file(&file);
                    }
                }
                _ => {
                    self.record(
                        label,
                        format!("std::fs::write inside read-only `{field}`"),
                        fails,
                        std::fs::write(host.join("ambient-file"), b"x"),
                    );
                    self.record(
                        label,
                        format!("create through `/proc/self/fd/N` of read-only `{field}`"),
                        fails,
                        std::fs::write(through_fd.join("ambient-file"), b"x"),
                    );
                    self.record(
                        label,
                        format!("openat(O_CREAT|O_WRONLY) via rustix in read-only `{field}`"),
                        fails,
                        rustix::fs::openat(
                            rustix::fs::CWD,
                            through_fd.join("ambient-openat"),
                            rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                            rustix::fs::Mode::from_raw_mode(0o600),
                        )
                        .map_err(std::io::Error::from),
                    );
                }
            }
        }
    }

    // ----- network and environment --------------------------------------------

    fn network(&mut self, label: &str, net: &Net) {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other_loopback = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let free = |access: NetAccess, ip: IpAddr| {
            [1u16, 7, 9, 22, 443, 5432, 40_001, 65_535]
                .into_iter()
                .map(|port| SocketAddr::new(ip, port))
                .find(|addr| !net.rules().iter().any(|rule| rule.permits(access, *addr)))
        };
        let timeout = Duration::from_millis(200);
        for ip in [loopback, other_loopback] {
            if let Some(addr) = free(NetAccess::Connect, ip) {
                self.record(
                    label,
                    format!("connect to {addr} (not granted)"),
                    Expected::Denied,
                    net.connect_tcp_timeout(addr, timeout),
                );
            }
        }
        if let Some(addr) = free(NetAccess::Bind, loopback) {
            self.record(
                label,
                format!("listen on {addr} (not granted)"),
                Expected::Denied,
                net.bind_tcp(addr),
            );
            self.record(
                label,
                format!("bind UDP {addr} (not granted)"),
                Expected::Denied,
                net.bind_udp(addr),
            );
        }
        let any_port = SocketAddr::new(loopback, 0);
        if net
            .rules()
            .iter()
            .any(|rule| rule.permits(NetAccess::Bind, any_port))
            && let Ok(socket) = net.bind_udp(any_port)
            && let Some(addr) = free(NetAccess::Connect, loopback)
        {
            self.record(
                label,
                format!("send UDP to {addr} (not granted)"),
                Expected::Denied,
                socket.send_to(b"x", addr),
            );
        }
        if let Some(rule) = net
            .rules()
            .iter()
            .find(|r| r.access() == NetAccess::Connect)
        {
            let (ip, _) = rule.network_addr();
            let addr = SocketAddr::new(ip, *rule.ports().start());
            let attempt = format!("connect to granted {addr} after revocation");
            self.after_revocation(label, attempt, net, |copy| {
                copy.connect_tcp_timeout(addr, timeout)
            });
        }
    }

    fn environment(&mut self, label: &str, env: &Env) {
        let granted: Vec<&str> = env.names().collect();
        for name in [
            "HOME",
            "PATH",
            "AWS_SECRET_ACCESS_KEY",
            "LD_PRELOAD",
            "SSH_AUTH_SOCK",
        ] {
            if !granted.contains(&name) {
                self.record(
                    label,
                    format!("read `{name}` (not in the snapshot)"),
                    Expected::Denied,
                    env.get(name),
                );
            }
        }
        if let Some(name) = granted.first() {
            let attempt = format!("read granted `{name}` after revocation");
            self.after_revocation(label, attempt, env, |copy| copy.get(name).map(|_| ()));
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

fn permissions(mode: u32) -> cap_std::fs::Permissions {
    use cap_std::fs::PermissionsExt;
    cap_std::fs::Permissions::from_mode(mode)
}
