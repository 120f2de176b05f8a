//! Fixtures shared by the integration tests: a sandbox directory with an
//! outside canary, built by the granting side (the test itself).

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(
    clippy::disallowed_methods,
    reason = "fixtures are the granting side: they plant files outside the sandbox on purpose"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use compartment::caps::Dir;

pub(crate) const CANARY: &[u8] = b"canary: nothing may touch this";

/// `<tmp>/root` is handed out as a capability; `<tmp>/canary` sits next to it,
/// outside, where nothing granted may reach. Removed on drop.
pub(crate) struct Sandbox {
    pub(crate) outer: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outer);
    }
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let outer = std::env::temp_dir().join(format!(
            "compartment-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&outer);
        std::fs::create_dir(&outer).unwrap();
        std::fs::create_dir(outer.join("root")).unwrap();
        std::fs::write(outer.join("canary"), CANARY).unwrap();
        Self { outer }
    }

    /// A full capability on `<tmp>/root`.
    pub(crate) fn root(&self) -> Dir {
        Dir::open_ambient_dir(self.outer.join("root"), cap_std::ambient_authority()).unwrap()
    }

    /// The host path of `<tmp>/root`, for planting fixtures from outside.
    pub(crate) fn root_path(&self) -> PathBuf {
        self.outer.join("root")
    }

    pub(crate) fn canary_path(&self) -> PathBuf {
        self.outer.join("canary")
    }

    /// Plants a symlink at `root/<link>` pointing to `target`, as the host.
    pub(crate) fn plant_symlink(&self, target: impl AsRef<Path>, link: &str) {
        std::os::unix::fs::symlink(target, self.root_path().join(link)).unwrap();
    }

    /// Panics if anything outside the root changed.
    pub(crate) fn assert_canary_intact(&self) {
        assert_eq!(
            std::fs::read(self.canary_path()).unwrap(),
            CANARY,
            "the canary was modified"
        );
        let outside: Vec<_> = std::fs::read_dir(&self.outer)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            outside.len(),
            2,
            "something was created outside the root: {outside:?}"
        );
    }
}

/// The access mode the kernel recorded for descriptor `fd` of this process
/// (`O_RDONLY` = 0, `O_WRONLY` = 1, `O_RDWR` = 2).
pub(crate) fn access_mode(fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("fdinfo has flags");
    u32::from_str_radix(flags.trim(), 8).unwrap() & 0o3
}

/// The kernel's id of this process's thread named `name` (its `comm`,
/// at most 15 bytes), if one is.
pub(crate) fn thread_named(name: &str) -> Option<i32> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim() == name)
                .then(|| task.file_name().to_str()?.parse().ok())
                .flatten()
        })
}

/// When the kernel started this process's thread `tid`, in clock ticks
/// since boot (`/proc`'s unit, `USER_HZ`: [`TICKS_PER_SECOND`]), if it
/// still runs.
pub(crate) fn thread_started(tid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The name, in parentheses, may hold spaces; the fields after it do
    // not. The start time is the 22nd field, the 20th after the name.
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The clock ticks in a second of [`thread_started`]'s figures: `USER_HZ`,
/// which Linux fixes at 100 for `/proc` on every architecture it reports
/// start times for.
pub(crate) const TICKS_PER_SECOND: u64 = 100;

/// The kernel's id of the calling thread.
pub(crate) fn own_tid() -> i32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// This test binary run again with only the ignored test `name`, printing
/// its output: how a test runs a scenario in a process of its own (to count
/// the process's threads, or to watch it abort).
pub(crate) fn scenario(name: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", name, "--ignored", "--nocapture"]);
    command
}
