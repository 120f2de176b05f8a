//! The host side of the escape battery: the outside canary, the fixtures
//! planted inside granted directories, and the thread that races them.
//!
//! It runs where the probe runs, or — when the probe runs on a thread the
//! kernel has locked down, or in a process child, neither of which may
//! touch anything outside its grant — on a [`Host`] thread started
//! beforehand, which the probe calls over a request channel (bridged, for
//! a process child).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use cap_std::AmbientAuthority;

#[cfg(all(feature = "process", target_os = "linux"))]
use super::probe::Report;
use super::sandbox::{Canary, CanaryChanged, Planter, SandboxError, TempTree, relative_path};
use crate::channel::{self, Receiver, Request, Sender};
use crate::grant::{Grant, Inventory, ReissueError};
use crate::revoke::Revoker;

/// How deep the nested-directory fixture goes.
pub(crate) const DEPTH: usize = 64;

/// The fixtures planted in a scratch directory inside a granted directory.
#[derive(Debug, Clone)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub(crate) struct Scratch {
    /// Its name inside the granted directory.
    pub(crate) name: String,
    /// Its host path.
    pub(crate) host: PathBuf,
    /// Whether a hard link to the canary could be planted (not across
    /// filesystems).
    pub(crate) hard_link: bool,
}

/// The racing thread: swaps `<scratch>/swap` between a directory and a
/// symlink to the outside until stopped.
#[derive(Debug)]
struct Swapper {
    stop: Arc<AtomicBool>,
    join: JoinHandle<()>,
}

/// Everything the battery does as the host, on the thread that owns it.
#[derive(Debug)]
pub(crate) struct HostSide {
    canary: Canary,
    swapper: Option<Swapper>,
    /// A process of the host's that attempts on other processes aim at: a
    /// `sleep`, started on first use and killed with the host side.
    bystander: Option<std::process::Child>,
    // Last: the outside directory is removed after the canary is dropped.
    _outside: TempTree,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the battery acts as the host: it plants fixtures and inspects the outside"
)]
impl HostSide {
    pub(crate) fn new() -> Result<Self, SandboxError> {
        let outside = TempTree::new("probe-outside")?;
        let canary = Canary::plant(outside.path.join("canary"))?;
        Ok(Self {
            canary,
            swapper: None,
            bystander: None,
            _outside: outside,
        })
    }

    pub(crate) fn canary_path(&self) -> PathBuf {
        self.canary.path().to_owned()
    }

    pub(crate) fn check(&self) -> Result<(), CanaryChanged> {
        self.canary.check()
    }

    pub(crate) fn restore(&mut self) {
        self.canary.restore();
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    /// The host path of the directory or file that is `identity`, found
    /// among this process's descriptors: the prober's descriptor numbers
    /// mean nothing here when it runs in a process child, but the granting
    /// side holds the original of everything it granted.
    pub(crate) fn host_path(&self, identity: Identity) -> Option<PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .filter_map(Result::ok)
            .find(|entry| {
                std::fs::metadata(entry.path()).is_ok_and(|meta| Identity::of(&meta) == identity)
            })
            .and_then(|entry| std::fs::read_link(entry.path()).ok())
    }

    /// Panics on a thread of the host's, as any code of the host's might:
    /// a panic hook a component registered for the whole process runs
    /// there, outside everything that confines the component.
    pub(crate) fn panic(&self) {
        #[allow(
            clippy::disallowed_methods,
            reason = "the testkit's host threads play the outside world: supervised threads are what they test"
        )]
        let panicked = std::thread::Builder::new()
            .name("compartment-probe-host-panics".to_owned())
            .spawn(|| panic!("the battery's host panics, to see whose panic hook runs"));
        if let Ok(thread) = panicked {
            let _ = thread.join();
        }
    }

    pub(crate) fn plant(&self, host_dir: &Path) -> Result<Scratch, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            ".compartment-probe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let host = host_dir.join(&name);
        std::fs::create_dir(&host)
            .map_err(|e| format!("cannot plant fixtures in {}: {e}", host_dir.display()))?;
        let planter = Planter {
            root: &host,
            canary: &self.canary,
        };
        let canary = self.canary.path();
        let outside = self.canary.dir();
        let text = |e: SandboxError| e.to_string();
        let planted = (|| -> Result<(), String> {
            planter.file(Path::new("file"), b"inside").map_err(text)?;
            planter.symlink(Path::new("abs"), canary).map_err(text)?;
            planter
                .symlink(Path::new("rel"), &relative_path(&host, canary))
                .map_err(text)?;
            planter
                .symlink(Path::new("outdir"), outside)
                .map_err(text)?;
            planter
                .symlink(
                    Path::new("dangling"),
                    &outside.join("created-through-a-dangling-link"),
                )
                .map_err(text)?;
            planter
                .symlink(Path::new("chain-2"), Path::new("abs"))
                .map_err(text)?;
            planter
                .symlink(Path::new("chain-1"), Path::new("chain-2"))
                .map_err(text)?;
            planter
                .symlink(Path::new("loop-a"), Path::new("loop-b"))
                .map_err(text)?;
            planter
                .symlink(Path::new("loop-b"), Path::new("loop-a"))
                .map_err(text)?;
            let deep: PathBuf = std::iter::repeat_n("d", DEPTH).collect();
            std::fs::create_dir_all(host.join(&deep)).map_err(|e| e.to_string())?;
            planter
                .file(Path::new("swap-dir/canary"), b"inside")
                .map_err(text)?;
            planter
                .symlink(Path::new("swap-link"), outside)
                .map_err(text)?;
            Ok(())
        })();
        if let Err(why) = planted {
            let _ = std::fs::remove_dir_all(&host);
            return Err(why);
        }
        let hard_link = std::fs::hard_link(canary, host.join("hardlink")).is_ok();
        Ok(Scratch {
            name,
            host,
            hard_link,
        })
    }

    pub(crate) fn remove(&mut self, scratch: &Scratch) {
        self.stop_swapper();
        let _ = std::fs::remove_dir_all(&scratch.host);
    }

    /// Starts swapping `<scratch>/swap` between a real directory and a
    /// symlink to the canary's directory, recreating the directory whenever
    /// something removed it.
    pub(crate) fn start_swapper(&mut self, scratch: &Scratch) {
        self.stop_swapper();
        let swap = scratch.host.join("swap");
        let dir = scratch.host.join("swap-dir");
        let link = scratch.host.join("swap-link");
        let outside = self.canary.dir().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        #[allow(
            clippy::disallowed_methods,
            reason = "the testkit's host threads play the outside world: supervised threads are what they test"
        )]
        let spawned = std::thread::Builder::new()
            .name("compartment-probe-swapper".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if !dir.exists() && std::fs::symlink_metadata(&swap).is_err() {
                        let _ = std::fs::create_dir(&dir);
                        let _ = std::fs::write(dir.join("canary"), b"inside");
                    }
                    let _ = std::fs::rename(&dir, &swap);
                    let _ = std::fs::rename(&swap, &dir);
                    if std::fs::symlink_metadata(&link).is_err() {
                        let _ = std::os::unix::fs::symlink(&outside, &link);
                    }
                    let _ = std::fs::rename(&link, &swap);
                    let _ = std::fs::rename(&swap, &link);
                }
            });
        if let Ok(join) = spawned {
            self.swapper = Some(Swapper { stop, join });
        }
    }

    /// The id of a process of the host's that is not this one, started on
    /// first use.
    pub(crate) fn bystander(&mut self) -> Result<u32, String> {
        if let Some(bystander) = &self.bystander {
            return Ok(bystander.id());
        }
        let bystander = std::process::Command::new("sleep")
            .arg("3600")
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a bystander process (`sleep`): {e}"))?;
        let id = bystander.id();
        self.bystander = Some(bystander);
        Ok(id)
    }

    pub(crate) fn stop_swapper(&mut self) {
        if let Some(swapper) = self.swapper.take() {
            swapper.stop.store(true, Ordering::Relaxed);
            let _ = swapper.join.join();
        }
    }
}

impl Drop for HostSide {
    fn drop(&mut self) {
        self.stop_swapper();
        if let Some(mut bystander) = self.bystander.take() {
            let _ = bystander.kill();
            let _ = bystander.wait();
        }
    }
}

/// A directory's or file's identity: its device and inode numbers, the
/// same in every process that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub(crate) struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            device: meta.dev(),
            inode: meta.ino(),
        }
    }

    /// The identity of what `fd` refers to.
    pub(crate) fn of_descriptor(fd: std::os::fd::BorrowedFd<'_>) -> Option<Self> {
        rustix::fs::fstat(fd).ok().map(|stat| Self {
            device: stat.st_dev,
            inode: stat.st_ino,
        })
    }
}

/// What the battery asks its [`Host`] thread.
#[derive(Debug)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub(crate) enum Call {
    CanaryPath,
    Check,
    Restore,
    Exists(PathBuf),
    HostPath(Identity),
    Plant(PathBuf),
    Remove(Scratch),
    StartSwapper(Scratch),
    StopSwapper,
    Bystander,
    Panic,
    /// An attempt that may end the prober's process begins; its key.
    Begin(String),
    /// The attempt that began returned.
    Finish,
    /// How the attempts that ended earlier instances' processes ended,
    /// once the death of the last one is known.
    Resume,
    /// The prober's process ended, as its supervisor reported.
    #[cfg(all(feature = "process", target_os = "linux"))]
    Ended(String),
    /// The finished report.
    #[cfg(all(feature = "process", target_os = "linux"))]
    Finished(Report),
    /// The finished report, for the one who started the battery.
    #[cfg(all(feature = "process", target_os = "linux"))]
    TakeReport,
}

/// The [`Host`] thread's answers, one kind per [`Call`].
#[derive(Debug)]
#[cfg_attr(
    all(feature = "process", target_os = "linux"),
    derive(serde::Serialize, serde::Deserialize)
)]
pub(crate) enum Answer {
    Done,
    Path(PathBuf),
    Checked(Result<(), CanaryChanged>),
    Exists(bool),
    HostPath(Option<PathBuf>),
    Planted(Result<Scratch, String>),
    Bystander(Result<u32, String>),
    /// Attempts whose process ended, by key, with how it ended.
    Concluded(BTreeMap<String, String>),
    #[cfg(all(feature = "process", target_os = "linux"))]
    Report(Option<Report>),
}

/// The battery's host side on a thread of its own, for probing from where
/// the outside cannot be touched: a thread the kernel has locked down, or
/// a process child.
///
/// Start it before the lockdown (for example in the test, before starting a
/// locked-down component) and hand it to [`probe_hosted`](super::probe_hosted);
/// the probe then asks it to plant fixtures and check the canary. It is a
/// capability of its own in a grant — the sending end of a request channel
/// to the host thread, re-issued and revoked as endpoints are, and bridged
/// into a process child (feature `process`) — and holds nothing of the
/// component's. The thread ends when the last handle is dropped.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, Sender};
/// use compartment::testkit::{Host, ProbeOptions, Report, Sandbox, probe_hosted};
/// use compartment::{Child, Context, Grant, Restart, Supervisor, ambient_authority};
///
/// #[derive(Grant)]
/// struct Probed {
///     docs: compartment::caps::ReadOnlyDir,
///     host: Host,
///     report: Sender<Report>,
/// }
///
/// fn battery(g: Probed, _: &Context) -> Result<(), String> {
///     let report = probe_hosted(&g.docs, &g.host, &ProbeOptions::default());
///     g.report.send(report).map_err(|e| e.to_string())
/// }
///
/// let sandbox = Sandbox::standard(ambient_authority())?;
/// let (report, reports) = channel::bounded(1)?;
/// let grant = Probed {
///     docs: sandbox.read_only()?,
///     host: Host::start(ambient_authority())?,
///     report,
/// };
/// let system = Supervisor::new("test")
///     .child(Child::new("battery", battery, grant).restart(Restart::Temporary))
///     .start()?;
/// reports.recv()?.assert_contained();
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Host {
    calls: Sender<Request<Call, Answer>>,
}

/// What the host thread remembers of the attempts that may end the
/// prober's process: each such attempt is announced before it is made, so
/// when the process ends in one, the next instance learns how, from the
/// death its supervisor reported.
#[derive(Debug, Default)]
struct Journal {
    /// Attempts whose process ended, with how it ended.
    concluded: BTreeMap<String, String>,
    /// The attempt announced and not yet returned from.
    begun: Option<String>,
    /// Instances asking how the last attempt ended, before its death was
    /// reported.
    waiting: Vec<channel::ReplyTo<Answer>>,
    #[cfg(all(feature = "process", target_os = "linux"))]
    report: Option<Report>,
}

impl Journal {
    #[cfg(all(feature = "process", target_os = "linux"))]
    fn ended(&mut self, how: String) {
        if let Some(attempt) = self.begun.take() {
            self.concluded.insert(attempt, how);
        }
        for reply in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Answer::Concluded(self.concluded.clone()));
        }
    }
}

fn serve(side: &mut HostSide, journal: &mut Journal, call: Call, reply: channel::ReplyTo<Answer>) {
    let answer = match call {
        Call::CanaryPath => Answer::Path(side.canary_path()),
        Call::Check => Answer::Checked(side.check()),
        Call::Restore => {
            side.restore();
            Answer::Done
        }
        Call::Exists(path) => Answer::Exists(side.exists(&path)),
        Call::HostPath(identity) => Answer::HostPath(side.host_path(identity)),
        Call::Plant(dir) => Answer::Planted(side.plant(&dir)),
        Call::Remove(scratch) => {
            side.remove(&scratch);
            Answer::Done
        }
        Call::StartSwapper(scratch) => {
            side.start_swapper(&scratch);
            Answer::Done
        }
        Call::StopSwapper => {
            side.stop_swapper();
            Answer::Done
        }
        Call::Bystander => Answer::Bystander(side.bystander()),
        Call::Panic => {
            side.panic();
            Answer::Done
        }
        Call::Begin(attempt) => {
            journal.begun = Some(attempt);
            Answer::Done
        }
        Call::Finish => {
            journal.begun = None;
            Answer::Done
        }
        Call::Resume if journal.begun.is_some() => {
            // The last instance died in an attempt; its death is on its way.
            journal.waiting.push(reply);
            return;
        }
        Call::Resume => Answer::Concluded(journal.concluded.clone()),
        #[cfg(all(feature = "process", target_os = "linux"))]
        Call::Ended(how) => {
            journal.ended(how);
            Answer::Done
        }
        #[cfg(all(feature = "process", target_os = "linux"))]
        Call::Finished(report) => {
            journal.report = Some(report);
            Answer::Done
        }
        #[cfg(all(feature = "process", target_os = "linux"))]
        Call::TakeReport => Answer::Report(journal.report.take()),
    };
    let _ = reply.send(answer);
}

impl Host {
    /// Plants an outside canary and starts the host thread.
    ///
    /// # Ambient Authority
    ///
    /// The host thread works on the host filesystem: test code only.
    ///
    /// # Errors
    ///
    /// [`SandboxError`] when the canary cannot be planted or the thread
    /// cannot start.
    pub fn start(ambient_authority: AmbientAuthority) -> Result<Host, SandboxError> {
        let _ = ambient_authority;
        let mut side = HostSide::new()?;
        let (calls, inbox): (_, Receiver<Request<Call, Answer>>) =
            channel::bounded(16).map_err(|err| {
                SandboxError::new("make the host's channel", std::io::Error::other(err))
            })?;
        #[allow(
            clippy::disallowed_methods,
            reason = "the testkit's host threads play the outside world: supervised threads are what they test"
        )]
        std::thread::Builder::new()
            .name("compartment-probe-host".to_owned())
            .spawn(move || {
                let mut journal = Journal::default();
                for Request { body, reply } in inbox.iter() {
                    serve(&mut side, &mut journal, body, reply);
                }
            })
            .map_err(|source| SandboxError::new("start the host thread", source))?;
        Ok(Host { calls })
    }

    pub(crate) fn ask(&self, call: Call) -> Option<Answer> {
        self.calls.call(call).ok()
    }
}

impl Grant for Host {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(Self {
            calls: self.calls.reissue()?,
        })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.calls.attach_revoker(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        self.calls.visit(inventory);
    }
}

#[cfg(all(feature = "process", target_os = "linux"))]
impl crate::process::Portable for Host {
    fn pack(&self, packing: &mut crate::process::Packing) -> Result<(), crate::process::PackError> {
        self.calls.pack(packing)
    }

    fn unpack(
        unpacking: &mut crate::process::Unpacking,
    ) -> Result<Self, crate::process::PackError> {
        Ok(Self {
            calls: crate::process::Portable::unpack(unpacking)?,
        })
    }
}

/// Where the battery's host side runs.
pub(crate) enum HostRef<'a> {
    Local(HostSide),
    Remote(&'a Host),
}

impl HostRef<'_> {
    /// `answer`'s value when the host answered `call` with it.
    fn remote<T>(host: &Host, call: Call, answer: impl FnOnce(Answer) -> Option<T>) -> Option<T> {
        host.ask(call).and_then(answer)
    }

    pub(crate) fn canary_path(&self) -> PathBuf {
        match self {
            HostRef::Local(side) => side.canary_path(),
            HostRef::Remote(host) => Self::remote(host, Call::CanaryPath, |answer| match answer {
                Answer::Path(path) => Some(path),
                _ => None,
            })
            .unwrap_or_default(),
        }
    }

    /// `Err` when the canary changed — or the host is gone and cannot say.
    pub(crate) fn check(&self) -> Result<(), CanaryChanged> {
        match self {
            HostRef::Local(side) => side.check(),
            HostRef::Remote(host) => Self::remote(host, Call::Check, |answer| match answer {
                Answer::Checked(checked) => Some(checked),
                _ => None,
            })
            .unwrap_or_else(|| Err(CanaryChanged::Removed(PathBuf::from("<host thread gone>")))),
        }
    }

    pub(crate) fn restore(&mut self) {
        match self {
            HostRef::Local(side) => side.restore(),
            HostRef::Remote(host) => {
                let _ = host.ask(Call::Restore);
            }
        }
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        match self {
            HostRef::Local(side) => side.exists(path),
            HostRef::Remote(host) => {
                Self::remote(host, Call::Exists(path.to_owned()), |answer| match answer {
                    Answer::Exists(exists) => Some(exists),
                    _ => None,
                })
                .unwrap_or(true)
            }
        }
    }

    /// The host path of the directory or file behind `fd`.
    pub(crate) fn host_path(&self, fd: std::os::fd::BorrowedFd<'_>) -> Option<PathBuf> {
        let identity = Identity::of_descriptor(fd)?;
        match self {
            HostRef::Local(side) => side.host_path(identity),
            HostRef::Remote(host) => {
                Self::remote(host, Call::HostPath(identity), |answer| match answer {
                    Answer::HostPath(path) => path,
                    _ => None,
                })
            }
        }
    }

    pub(crate) fn plant(&self, host_dir: &Path) -> Result<Scratch, String> {
        match self {
            HostRef::Local(side) => side.plant(host_dir),
            HostRef::Remote(host) => Self::remote(
                host,
                Call::Plant(host_dir.to_owned()),
                |answer| match answer {
                    Answer::Planted(planted) => Some(planted),
                    _ => None,
                },
            )
            .unwrap_or_else(|| Err("the host thread is gone".to_owned())),
        }
    }

    pub(crate) fn remove(&mut self, scratch: &Scratch) {
        match self {
            HostRef::Local(side) => side.remove(scratch),
            HostRef::Remote(host) => {
                let _ = host.ask(Call::Remove(scratch.clone()));
            }
        }
    }

    pub(crate) fn start_swapper(&mut self, scratch: &Scratch) {
        match self {
            HostRef::Local(side) => side.start_swapper(scratch),
            HostRef::Remote(host) => {
                let _ = host.ask(Call::StartSwapper(scratch.clone()));
            }
        }
    }

    pub(crate) fn stop_swapper(&mut self) {
        match self {
            HostRef::Local(side) => side.stop_swapper(),
            HostRef::Remote(host) => {
                let _ = host.ask(Call::StopSwapper);
            }
        }
    }

    pub(crate) fn bystander(&mut self) -> Result<u32, String> {
        match self {
            HostRef::Local(side) => side.bystander(),
            HostRef::Remote(host) => Self::remote(host, Call::Bystander, |answer| match answer {
                Answer::Bystander(bystander) => Some(bystander),
                _ => None,
            })
            .unwrap_or_else(|| Err("the host thread is gone".to_owned())),
        }
    }

    /// Has the host panic on a thread of its own.
    pub(crate) fn panic(&self) {
        match self {
            HostRef::Local(side) => side.panic(),
            HostRef::Remote(host) => {
                let _ = host.ask(Call::Panic);
            }
        }
    }

    /// How the attempts that ended earlier instances' processes ended.
    pub(crate) fn resume(&self) -> BTreeMap<String, String> {
        match self {
            HostRef::Local(_) => BTreeMap::new(),
            HostRef::Remote(host) => Self::remote(host, Call::Resume, |answer| match answer {
                Answer::Concluded(concluded) => Some(concluded),
                _ => None,
            })
            .unwrap_or_default(),
        }
    }

    /// Announces an attempt that may end this process.
    pub(crate) fn begin(&self, attempt: &str) {
        if let HostRef::Remote(host) = self {
            let _ = host.ask(Call::Begin(attempt.to_owned()));
        }
    }

    /// The announced attempt returned.
    pub(crate) fn finish(&self) {
        if let HostRef::Remote(host) = self {
            let _ = host.ask(Call::Finish);
        }
    }
}
