//! The machinery shared by [`Dir`](super::Dir) and
//! [`ReadOnlyDir`](super::ReadOnlyDir): a cap-std directory behind a
//! revocation gate, with path checks and typed errors.

use std::io;
use std::path::{Component, Path};

use super::entries::Entries;
use super::fs_error::{FsError, FsOp, InvalidPath};
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::inode::Inode;
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::metadata_spec::{AccessModes, AccessType, FollowSymlinks};
use crate::capability::{Capability, Rights};
use crate::grant::{Descriptor, Inventory, ReissueError};
use crate::revoke::{Gate, Revoker};

#[derive(Debug)]
pub(crate) struct GuardedDir {
    pub(crate) inner: cap_std::fs::Dir,
    pub(crate) gate: Gate,
}

impl GuardedDir {
    pub(crate) fn new(inner: cap_std::fs::Dir) -> Self {
        Self::with_gate(inner, Gate::default())
    }

    /// A directory subject to an existing gate (one opened through an
    /// entry of a listing).
    pub(crate) fn with_gate(inner: cap_std::fs::Dir, gate: Gate) -> Self {
        Self { inner, gate }
    }

    /// Opens a host directory by its path; the public `open_ambient_dir`
    /// constructors decide which rights the result carries.
    pub(crate) fn open_ambient_dir(
        path: &Path,
        ambient_authority: cap_std::AmbientAuthority,
    ) -> Result<Self, FsError> {
        cap_std::fs::Dir::open_ambient_dir(path, ambient_authority)
            .map(Self::new)
            .map_err(|e| FsError::from_io(FsOp::OpenDir, path, e))
    }

    /// Runs `f` on the directory after the gate and path checks, and labels
    /// its error with `op` and `path`.
    pub(crate) fn run<T>(
        &self,
        op: FsOp,
        path: &Path,
        f: impl FnOnce(&cap_std::fs::Dir) -> io::Result<T>,
    ) -> Result<T, FsError> {
        self.admit(op, path)?;
        f(&self.inner).map_err(|e| FsError::from_io(op, path, e))
    }

    /// The checks every path goes through before reaching the OS: the gate,
    /// then [`check_path`].
    pub(crate) fn admit(&self, op: FsOp, path: &Path) -> Result<(), FsError> {
        if self.gate.check().is_err() {
            return Err(FsError::Revoked {
                op,
                path: path.to_owned(),
            });
        }
        check_path(op, path)
    }

    /// A handle on a subdirectory, with the same gate.
    pub(crate) fn open_dir(&self, path: &Path) -> Result<Self, FsError> {
        let inner = self.run(FsOp::OpenDir, path, |d| d.open_dir(path))?;
        Ok(Self {
            inner,
            gate: self.gate.clone(),
        })
    }

    /// A handle on a subdirectory that is not reached through a final
    /// symlink, with the same gate.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn open_dir_nofollow(&self, path: &Path) -> Result<Self, FsError> {
        use cap_std::fs::OpenOptionsExt;
        use rustix::fs::OFlags;
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .read(true)
            .custom_flags((OFlags::DIRECTORY | OFlags::NOFOLLOW).bits() as i32);
        let file = self.run(FsOp::OpenDir, path, |d| d.open_with(path, &options))?;
        Ok(Self {
            inner: cap_std::fs::Dir::from_std_file(file.into_std()),
            gate: self.gate.clone(),
        })
    }

    pub(crate) fn entries<E>(&self, path: &Path) -> Result<Entries<E>, FsError> {
        let entries = if path.as_os_str().is_empty() || path == Path::new(".") {
            self.admit(FsOp::ReadDir, Path::new("."))?;
            self.inner.entries()
        } else {
            self.admit(FsOp::ReadDir, path)?;
            self.inner.read_dir(path)
        };
        entries
            .map(|inner| Entries::new(inner, self.gate.clone(), path.to_owned()))
            .map_err(|e| FsError::from_io(FsOp::ReadDir, path, e))
    }

    /// Whether `path` exists, or whether the process may access it as
    /// asked; `writable` says whether the capability may write at all (a
    /// read-only one answers that it may not, whatever the mode bits say).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn access(
        &self,
        path: &Path,
        access: AccessType,
        writable: bool,
    ) -> Result<(), FsError> {
        let op = FsOp::Access;
        let modes = match access {
            AccessType::Exists => AccessModes::default(),
            AccessType::Access(modes) => modes,
        };
        if modes.contains(AccessModes::WRITE) && !writable {
            return Err(FsError::from_io(
                op,
                path,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "a read-only directory capability grants no writing",
                ),
            ));
        }
        Inode::open(self, op, path, FollowSymlinks::Yes)?.access(op, path, modes)
    }

    pub(crate) fn try_exists(&self, path: &Path) -> Result<bool, FsError> {
        self.run(FsOp::Exists, path, |d| d.try_exists(path))
    }

    pub(crate) fn duplicate(&self) -> Result<Self, FsError> {
        let inner = self.run(FsOp::Duplicate, Path::new("."), |d| d.try_clone())?;
        Ok(Self {
            inner,
            gate: self.gate.clone(),
        })
    }

    pub(crate) fn reissue(&self) -> Result<Self, ReissueError> {
        let inner = self
            .inner
            .try_clone()
            .map_err(|e| ReissueError::new("directory", e))?;
        Ok(Self {
            inner,
            gate: self.gate.clone(),
        })
    }

    pub(crate) fn attach_revoker(&mut self, revoker: &Revoker) {
        self.gate.attach(revoker);
    }

    /// Reports `object` (the `Dir` or `ReadOnlyDir` holding this) with
    /// `rights`.
    pub(crate) fn visit<'g>(
        &'g self,
        object: &'g (dyn std::any::Any + Send),
        rights: Rights,
        inventory: &mut Inventory<'g>,
    ) {
        inventory.record(
            object,
            Capability::Dir { rights },
            self.gate.is_revocable(),
            Descriptor::of(&self.inner),
        );
    }
}

/// Rejects, before any syscall, what can never name something inside the
/// directory: an empty path, a NUL byte, an absolute path, and `..` climbing
/// above the directory. Symlinks that lead out are refused by cap-std when
/// they are resolved.
pub(crate) fn check_path(op: FsOp, path: &Path) -> Result<(), FsError> {
    let bytes = path.as_os_str().as_encoded_bytes();
    let invalid = |reason| FsError::InvalidPath {
        op,
        path: path.to_owned(),
        reason,
    };
    if bytes.is_empty() {
        return Err(invalid(InvalidPath::Empty));
    }
    if bytes.contains(&0) {
        return Err(invalid(InvalidPath::Nul));
    }
    let mut depth: usize = 0;
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(FsError::Escape {
                    op,
                    path: path.to_owned(),
                });
            }
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or_else(|| FsError::Escape {
                    op,
                    path: path.to_owned(),
                })?;
            }
            Component::Normal(_) => depth += 1,
        }
    }
    Ok(())
}

/// Symlinks created through a capability may only point down: a relative
/// target without `..`. A rule checked only against the link's position at
/// creation would not survive a later `rename` of the link's directory, so
/// the rule does not depend on the position at all.
pub(crate) fn check_symlink_target(link: &Path, target: &Path) -> Result<(), FsError> {
    let refused = || FsError::EscapingSymlink {
        path: link.to_owned(),
        target: target.to_owned(),
    };
    let bytes = target.as_os_str().as_encoded_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(FsError::InvalidPath {
            op: FsOp::Symlink,
            path: target.to_owned(),
            reason: if bytes.is_empty() {
                InvalidPath::Empty
            } else {
                InvalidPath::Nul
            },
        });
    }
    if target
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refused());
    }
    Ok(())
}
