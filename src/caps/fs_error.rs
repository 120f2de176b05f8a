//! `FsError`: why a directory or file operation was refused or failed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A filesystem operation, named in [`FsError`]s.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::FsOp;
/// assert_eq!(dir.remove_file("missing").unwrap_err().op(), FsOp::RemoveFile);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(
    missing_docs,
    reason = "each variant names the method of the same name"
)]
pub enum FsOp {
    Open,
    Create,
    OpenDir,
    CreateDir,
    Read,
    Write,
    ReadDir,
    Metadata,
    SymlinkMetadata,
    ReadLink,
    Canonicalize,
    Exists,
    RemoveFile,
    RemoveDir,
    RemoveDirAll,
    Rename,
    HardLink,
    Symlink,
    Copy,
    SetPermissions,
    SetTimes,
    Access,
    SetLen,
    Sync,
    Duplicate,
}

impl fmt::Display for FsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsOp::Open => "open",
            FsOp::Create => "create",
            FsOp::OpenDir => "open directory",
            FsOp::CreateDir => "create directory",
            FsOp::Read => "read",
            FsOp::Write => "write",
            FsOp::ReadDir => "list directory",
            FsOp::Metadata => "read metadata of",
            FsOp::SymlinkMetadata => "read link metadata of",
            FsOp::ReadLink => "read link",
            FsOp::Canonicalize => "canonicalize",
            FsOp::Exists => "check existence of",
            FsOp::RemoveFile => "remove file",
            FsOp::RemoveDir => "remove directory",
            FsOp::RemoveDirAll => "remove directory tree",
            FsOp::Rename => "rename",
            FsOp::HardLink => "hard-link",
            FsOp::Symlink => "create symlink",
            FsOp::Copy => "copy",
            FsOp::SetPermissions => "set permissions of",
            FsOp::SetTimes => "set times of",
            FsOp::Access => "check access to",
            FsOp::SetLen => "set length of",
            FsOp::Sync => "sync",
            FsOp::Duplicate => "duplicate handle of",
        })
    }
}

/// Why a path was rejected before reaching the operating system.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::{FsError, InvalidPath};
/// assert!(matches!(dir.read("a\0b"), Err(FsError::InvalidPath { reason: InvalidPath::Nul, .. })));
/// assert!(matches!(dir.read(""), Err(FsError::InvalidPath { reason: InvalidPath::Empty, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidPath {
    /// The path is empty: it names nothing (its
    /// [`kind`](FsError::kind) is `NotFound`, as in cap-std).
    Empty,
    /// The path contains a NUL byte, which no filesystem name may contain.
    Nul,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidPath::Empty => "the path is empty",
            InvalidPath::Nul => "the path contains a NUL byte",
        })
    }
}

/// A directory or file capability refused or failed an operation.
///
/// Every variant names the operation and the path it was given, relative to
/// the capability.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::FsError;
/// match dir.read("../outside") {
///     Err(err @ FsError::Escape { .. }) => assert!(err.is_refusal()),
///     other => panic!("expected a refusal, got {other:?}"),
/// }
/// let missing = dir.read("missing.txt").unwrap_err();
/// assert!(missing.to_string().contains("No such file or directory"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The capability (or the one it was derived from) was revoked.
    #[error("cannot {op} `{}`: capability revoked", .path.display())]
    Revoked {
        /// The operation.
        op: FsOp,
        /// The path given to it.
        path: PathBuf,
    },
    /// The path is not a valid name.
    #[error("cannot {op} `{}`: {reason}", .path.display())]
    InvalidPath {
        /// The operation.
        op: FsOp,
        /// The path given to it.
        path: PathBuf,
        /// What is wrong with it.
        reason: InvalidPath,
    },
    /// The path is absolute, climbs above the directory with `..`, or
    /// resolves through a symlink to somewhere outside it.
    #[error("cannot {op} `{}`: the path leads outside the directory", .path.display())]
    Escape {
        /// The operation.
        op: FsOp,
        /// The path given to it.
        path: PathBuf,
    },
    /// A symlink's target is absolute or contains `..`: through a
    /// capability, symlinks may only point down into the tree.
    #[error(
        "cannot create symlink `{}` -> `{}`: a symlink target must be relative and must not contain `..`",
        .path.display(),
        .target.display()
    )]
    EscapingSymlink {
        /// Where the link would be created.
        path: PathBuf,
        /// The refused target.
        target: PathBuf,
    },
    /// Setting the set-user-ID or set-group-ID bit is refused through any
    /// capability.
    #[error("cannot set mode {mode:o} on `{}`: set-user-ID and set-group-ID bits are refused", .path.display())]
    SetIdRefused {
        /// The file.
        path: PathBuf,
        /// The requested mode.
        mode: u32,
    },
    /// The file has other hard links, one of which may be outside the tree;
    /// changing it through a capability is refused.
    #[error("cannot {op} `{}`: the file has {links} hard links, and another may be outside the directory", .path.display())]
    SharedInode {
        /// The operation.
        op: FsOp,
        /// The path given to it.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The operating system reported an error.
    #[error("cannot {op} `{}`: {source}", .path.display())]
    Io {
        /// The operation.
        op: FsOp,
        /// The path given to it.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// Classifies an operating-system error: cap-std reports an attempt to
    /// leave the directory (including the kernel's `RESOLVE_BENEATH` refusal)
    /// as `PermissionDenied` with its own message and no OS error code.
    pub(crate) fn from_io(op: FsOp, path: &Path, source: io::Error) -> Self {
        let escaped = source.raw_os_error().is_none()
            && source.kind() == io::ErrorKind::PermissionDenied
            && source.to_string().contains("outside");
        if escaped {
            FsError::Escape {
                op,
                path: path.to_owned(),
            }
        } else {
            FsError::Io {
                op,
                path: path.to_owned(),
                source,
            }
        }
    }

    /// The operation that failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::FsOp;
    /// let err = dir.read("missing.txt").unwrap_err();
    /// assert_eq!(err.op(), FsOp::Read);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn op(&self) -> FsOp {
        match self {
            FsError::Revoked { op, .. }
            | FsError::InvalidPath { op, .. }
            | FsError::Escape { op, .. }
            | FsError::SharedInode { op, .. }
            | FsError::Io { op, .. } => *op,
            FsError::EscapingSymlink { .. } => FsOp::Symlink,
            FsError::SetIdRefused { .. } => FsOp::SetPermissions,
        }
    }

    /// The path the operation was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let err = dir.read("missing.txt").unwrap_err();
    /// assert_eq!(err.path(), std::path::Path::new("missing.txt"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        match self {
            FsError::Revoked { path, .. }
            | FsError::InvalidPath { path, .. }
            | FsError::Escape { path, .. }
            | FsError::EscapingSymlink { path, .. }
            | FsError::SetIdRefused { path, .. }
            | FsError::SharedInode { path, .. }
            | FsError::Io { path, .. } => path,
        }
    }

    /// The closest [`io::ErrorKind`]: refusals by the capability model are
    /// `PermissionDenied`; an empty path is `NotFound`, as cap-std and
    /// `std::fs` report it; other invalid paths are `InvalidInput`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let err = dir.read("missing.txt").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            FsError::Revoked { .. }
            | FsError::Escape { .. }
            | FsError::EscapingSymlink { .. }
            | FsError::SetIdRefused { .. }
            | FsError::SharedInode { .. } => io::ErrorKind::PermissionDenied,
            FsError::InvalidPath {
                reason: InvalidPath::Empty,
                ..
            } => io::ErrorKind::NotFound,
            FsError::InvalidPath { .. } => io::ErrorKind::InvalidInput,
            FsError::Io { source, .. } => source.kind(),
        }
    }

    /// Whether the capability model refused the operation (revoked, escape,
    /// escaping symlink, set-id bits, shared inode), as opposed to the
    /// operating system failing it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// assert!(dir.read("../outside").unwrap_err().is_refusal()); // the capability said no
    /// assert!(!dir.read("missing.txt").unwrap_err().is_refusal()); // the OS did
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            FsError::Revoked { .. }
                | FsError::Escape { .. }
                | FsError::EscapingSymlink { .. }
                | FsError::SetIdRefused { .. }
                | FsError::SharedInode { .. }
        )
    }

    /// Whether the capability was revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::{Grant, Revoker};
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let mut dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("notes.txt", "hello")?;
    /// let revoker = Revoker::new();
    /// dir.attach_revoker(&revoker);
    /// assert!(!dir.read("missing.txt").unwrap_err().is_revoked());
    /// revoker.revoke();
    /// assert!(dir.read("notes.txt").unwrap_err().is_revoked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_revoked(&self) -> bool {
        matches!(self, FsError::Revoked { .. })
    }
}

impl From<FsError> for io::Error {
    fn from(err: FsError) -> Self {
        io::Error::new(err.kind(), err)
    }
}
