//! The host side of the escape battery: the outside canary, the fixtures
//! planted inside granted directories, and the thread that races them.
//!
//! It runs where the probe runs, or — when the probe runs on a thread the
//! kernel has locked down, which may not touch anything outside its grant —
//! on a [`Host`] thread started beforehand.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use cap_std::AmbientAuthority;
use crossbeam_channel as cb;

use super::sandbox::{Canary, CanaryChanged, Planter, SandboxError, TempTree, relative_path};

/// How deep the nested-directory fixture goes.
pub(crate) const DEPTH: usize = 64;

/// The fixtures planted in a scratch directory inside a granted directory.
#[derive(Debug, Clone)]
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

    /// The host path of descriptor `fd` of this process.
    pub(crate) fn host_path(&self, fd: i32) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
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

/// A request to a [`Host`] thread, with the channel for its answer.
enum Request {
    CanaryPath(cb::Sender<PathBuf>),
    Check(cb::Sender<Result<(), CanaryChanged>>),
    Restore(cb::Sender<()>),
    Exists(PathBuf, cb::Sender<bool>),
    HostPath(i32, cb::Sender<Option<PathBuf>>),
    Plant(PathBuf, cb::Sender<Result<Scratch, String>>),
    Remove(Scratch, cb::Sender<()>),
    StartSwapper(Scratch, cb::Sender<()>),
    StopSwapper(cb::Sender<()>),
    Bystander(cb::Sender<Result<u32, String>>),
}

/// The battery's host side on a thread of its own, for probing from a
/// thread the kernel has locked down.
///
/// Start it before the lockdown (for example in the test, before starting a
/// locked-down component) and hand it to [`probe_hosted`](super::probe_hosted);
/// the probe then asks it to plant fixtures and check the canary. It is
/// plain data in a grant (`#[grant(data)]`): it holds no capability of the
/// component's, only a channel to the host thread. The thread ends when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct Host {
    requests: cb::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
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
        let (requests, inbox) = cb::bounded::<Request>(16);
        #[allow(
            clippy::disallowed_methods,
            reason = "the testkit's host threads play the outside world: supervised threads are what they test"
        )]
        std::thread::Builder::new()
            .name("compartment-probe-host".to_owned())
            .spawn(move || {
                for request in inbox {
                    match request {
                        Request::CanaryPath(reply) => {
                            let _ = reply.send(side.canary_path());
                        }
                        Request::Check(reply) => {
                            let _ = reply.send(side.check());
                        }
                        Request::Restore(reply) => {
                            side.restore();
                            let _ = reply.send(());
                        }
                        Request::Exists(path, reply) => {
                            let _ = reply.send(side.exists(&path));
                        }
                        Request::HostPath(fd, reply) => {
                            let _ = reply.send(side.host_path(fd));
                        }
                        Request::Plant(dir, reply) => {
                            let _ = reply.send(side.plant(&dir));
                        }
                        Request::Remove(scratch, reply) => {
                            side.remove(&scratch);
                            let _ = reply.send(());
                        }
                        Request::StartSwapper(scratch, reply) => {
                            side.start_swapper(&scratch);
                            let _ = reply.send(());
                        }
                        Request::StopSwapper(reply) => {
                            side.stop_swapper();
                            let _ = reply.send(());
                        }
                        Request::Bystander(reply) => {
                            let _ = reply.send(side.bystander());
                        }
                    }
                }
            })
            .map_err(|source| SandboxError::new("start the host thread", source))?;
        Ok(Host { requests })
    }

    fn ask<T>(&self, request: impl FnOnce(cb::Sender<T>) -> Request) -> Option<T> {
        let (reply, answer) = cb::bounded(1);
        self.requests.send(request(reply)).ok()?;
        answer.recv().ok()
    }
}

/// Where the battery's host side runs.
pub(crate) enum HostRef<'a> {
    Local(HostSide),
    Remote(&'a Host),
}

impl HostRef<'_> {
    pub(crate) fn canary_path(&self) -> PathBuf {
        match self {
            HostRef::Local(side) => side.canary_path(),
            HostRef::Remote(host) => host.ask(Request::CanaryPath).unwrap_or_default(),
        }
    }

    /// `Err` when the canary changed — or the host is gone and cannot say.
    pub(crate) fn check(&self) -> Result<(), CanaryChanged> {
        match self {
            HostRef::Local(side) => side.check(),
            HostRef::Remote(host) => host.ask(Request::Check).unwrap_or_else(|| {
                Err(CanaryChanged::Removed(PathBuf::from("<host thread gone>")))
            }),
        }
    }

    pub(crate) fn restore(&mut self) {
        match self {
            HostRef::Local(side) => side.restore(),
            HostRef::Remote(host) => {
                let _ = host.ask(Request::Restore);
            }
        }
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        match self {
            HostRef::Local(side) => side.exists(path),
            HostRef::Remote(host) => host
                .ask(|reply| Request::Exists(path.to_owned(), reply))
                .unwrap_or(true),
        }
    }

    pub(crate) fn host_path(&self, fd: i32) -> Option<PathBuf> {
        match self {
            HostRef::Local(side) => side.host_path(fd),
            HostRef::Remote(host) => host.ask(|reply| Request::HostPath(fd, reply)).flatten(),
        }
    }

    pub(crate) fn plant(&self, host_dir: &Path) -> Result<Scratch, String> {
        match self {
            HostRef::Local(side) => side.plant(host_dir),
            HostRef::Remote(host) => host
                .ask(|reply| Request::Plant(host_dir.to_owned(), reply))
                .unwrap_or_else(|| Err("the host thread is gone".to_owned())),
        }
    }

    pub(crate) fn remove(&mut self, scratch: &Scratch) {
        match self {
            HostRef::Local(side) => side.remove(scratch),
            HostRef::Remote(host) => {
                let _ = host.ask(|reply| Request::Remove(scratch.clone(), reply));
            }
        }
    }

    pub(crate) fn start_swapper(&mut self, scratch: &Scratch) {
        match self {
            HostRef::Local(side) => side.start_swapper(scratch),
            HostRef::Remote(host) => {
                let _ = host.ask(|reply| Request::StartSwapper(scratch.clone(), reply));
            }
        }
    }

    pub(crate) fn stop_swapper(&mut self) {
        match self {
            HostRef::Local(side) => side.stop_swapper(),
            HostRef::Remote(host) => {
                let _ = host.ask(Request::StopSwapper);
            }
        }
    }

    pub(crate) fn bystander(&mut self) -> Result<u32, String> {
        match self {
            HostRef::Local(side) => side.bystander(),
            HostRef::Remote(host) => host
                .ask(Request::Bystander)
                .unwrap_or_else(|| Err("the host thread is gone".to_owned())),
        }
    }
}
