//! Changing an inode's metadata — mode, times — and asking about its
//! access, through a descriptor opened beneath the directory.
//!
//! A capability never changes metadata by path: a path is resolved again by
//! the kernel, which could lead it elsewhere, and under lockdown the kernel
//! refuses path forms outright. So the target is opened first (cap-std
//! resolves it beneath the directory), its link count checked on that
//! descriptor, and the change made through it. Opening for reading, then for
//! writing, needs a permission the caller may not have (a directory set to
//! `000`, a write-only file); the last resort is an `O_PATH` descriptor,
//! which needs none, and the change goes through its `/proc/self/fd` entry
//! or `AT_EMPTY_PATH` — path forms, which a locked-down thread's kernel
//! policy refuses (as root, it never gets that far).

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::file::refuse_shared_inode;
use super::fs_error::{FsError, FsOp};
use super::guarded_dir::GuardedDir;
use super::metadata_spec::{AccessModes, FollowSymlinks, SystemTimeSpec};

/// How the descriptor was opened: what may be done through it directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Opened for reading or writing: `fchmod` and `futimens` work.
    Open,
    /// `O_PATH`: only path forms through the descriptor work.
    PathOnly,
}

/// The target of a metadata change, opened beneath its directory.
#[derive(Debug)]
pub(crate) struct Inode {
    file: cap_std::fs::File,
    access: Access,
}

fn options(
    read: bool,
    write: bool,
    flags: rustix::fs::OFlags,
    follow: FollowSymlinks,
) -> cap_std::fs::OpenOptions {
    use cap_fs_ext::OpenOptionsFollowExt;
    use cap_std::fs::OpenOptionsExt;
    use rustix::fs::OFlags;
    let mut options = cap_std::fs::OpenOptions::new();
    // Through cap-std's own switch: its path resolution honours it with or
    // without `openat2` (`O_NOFOLLOW` alone it would follow).
    options.follow(follow.to_cap_std());
    // Non-blocking, so that opening a fifo does not wait for a peer; not
    // with `O_PATH`, which `openat2` accepts only with a few flags.
    let flags = if flags.contains(OFlags::PATH) {
        flags
    } else {
        flags | OFlags::NONBLOCK
    };
    options
        .read(read)
        .write(write)
        .custom_flags(flags.bits() as i32);
    options
}

impl Inode {
    /// Opens `path` beneath `dir` to change its metadata, needing as little
    /// permission as it can.
    pub(crate) fn open(
        dir: &GuardedDir,
        op: FsOp,
        path: &Path,
        follow: FollowSymlinks,
    ) -> Result<Self, FsError> {
        use rustix::fs::OFlags;
        let open =
            |options: cap_std::fs::OpenOptions| dir.run(op, path, |d| d.open_with(path, &options));
        let path_only = || {
            open(options(true, false, OFlags::PATH, follow)).map(|file| Inode {
                file,
                access: Access::PathOnly,
            })
        };
        if follow == FollowSymlinks::No {
            // Only `O_PATH` opens a symlink itself.
            return path_only();
        }
        // No permission to open it so (or a directory, for writing): try
        // the next way.
        let denied = |err: &FsError| match err {
            FsError::Io { source, .. } => matches!(
                rustix::io::Errno::from_io_error(source),
                Some(rustix::io::Errno::ACCESS | rustix::io::Errno::ISDIR)
            ),
            _ => false,
        };
        for (read, write) in [(true, false), (false, true)] {
            match open(options(read, write, OFlags::empty(), follow)) {
                Ok(file) => {
                    return Ok(Inode {
                        file,
                        access: Access::Open,
                    });
                }
                Err(err) if denied(&err) => continue,
                Err(err) => return Err(err),
            }
        }
        path_only()
    }

    /// Refuses a regular file that another hard link also names.
    pub(crate) fn refuse_shared(&self, op: FsOp, path: &Path) -> Result<(), FsError> {
        refuse_shared_inode(op, path, &self.file)
    }

    /// Whether the target is a symlink (only when opened without following).
    pub(crate) fn is_symlink(&self, op: FsOp, path: &Path) -> Result<bool, FsError> {
        let stat = rustix::fs::fstat(&self.file)
            .map_err(|e| FsError::from_io(op, path, io::Error::from(e)))?;
        Ok(rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Symlink)
    }

    /// Sets the permission bits.
    pub(crate) fn set_mode(&self, op: FsOp, path: &Path, mode: u32) -> Result<(), FsError> {
        let mode = rustix::fs::Mode::from_raw_mode(mode);
        let result = match self.access {
            Access::Open => rustix::fs::fchmod(&self.file, mode),
            Access::PathOnly => rustix::fs::chmod(self.proc_path(), mode),
        };
        result.map_err(|e| FsError::from_io(op, path, io::Error::from(e)))
    }

    /// Sets the access and modification times; `None` leaves one as it is.
    pub(crate) fn set_times(
        &self,
        op: FsOp,
        path: &Path,
        accessed: Option<SystemTimeSpec>,
        modified: Option<SystemTimeSpec>,
    ) -> Result<(), FsError> {
        let times = rustix::fs::Timestamps {
            last_access: timespec(op, path, accessed)?,
            last_modification: timespec(op, path, modified)?,
        };
        let result = match self.access {
            Access::Open => rustix::fs::futimens(&self.file, &times),
            Access::PathOnly => rustix::fs::utimensat(
                &self.file,
                "",
                &times,
                rustix::fs::AtFlags::EMPTY_PATH | rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ),
        };
        result.map_err(|e| FsError::from_io(op, path, io::Error::from(e)))
    }

    /// Whether the calling process has `modes` on the target.
    pub(crate) fn access(&self, op: FsOp, path: &Path, modes: AccessModes) -> Result<(), FsError> {
        let mut access = rustix::fs::Access::EXISTS;
        for (asked, flag) in [
            (AccessModes::READ, rustix::fs::Access::READ_OK),
            (AccessModes::WRITE, rustix::fs::Access::WRITE_OK),
            (AccessModes::EXECUTE, rustix::fs::Access::EXEC_OK),
        ] {
            if modes.contains(asked) {
                access |= flag;
            }
        }
        // `faccessat2` takes `AT_EMPTY_PATH`, but rustix does not pass it
        // on: the descriptor's `/proc/self/fd` entry names the same inode.
        rustix::fs::accessat(
            rustix::fs::CWD,
            self.proc_path(),
            access,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| FsError::from_io(op, path, io::Error::from(e)))
    }

    fn proc_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.file.as_raw_fd())
    }
}

/// The kernel's form of a time to set.
fn timespec(
    op: FsOp,
    path: &Path,
    spec: Option<SystemTimeSpec>,
) -> Result<rustix::fs::Timespec, FsError> {
    let symbolic = |nsec| rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: nsec,
    };
    match spec {
        None => Ok(symbolic(rustix::fs::UTIME_OMIT)),
        Some(SystemTimeSpec::SymbolicNow) => Ok(symbolic(rustix::fs::UTIME_NOW)),
        Some(SystemTimeSpec::Absolute(time)) => {
            let out_of_range = || {
                FsError::from_io(
                    op,
                    path,
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the time is outside the range a file can record",
                    ),
                )
            };
            let (sec, nsec) = match time.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(after) => (
                    i64::try_from(after.as_secs()).map_err(|_| out_of_range())?,
                    i64::from(after.subsec_nanos()),
                ),
                Err(before) => {
                    let before = before.duration();
                    let secs = i64::try_from(before.as_secs()).map_err(|_| out_of_range())?;
                    match before.subsec_nanos() {
                        0 => (-secs, 0),
                        nanos => (-secs - 1, 1_000_000_000 - i64::from(nanos)),
                    }
                }
            };
            Ok(rustix::fs::Timespec {
                tv_sec: sec,
                tv_nsec: nsec as _,
            })
        }
    }
}
