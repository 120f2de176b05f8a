//! Open files obtained through directory capabilities.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::{Metadata, Permissions};

use super::fs_error::{FsError, FsOp};
use crate::grant::{Capability, Descriptor, FileRights, Grant, Inventory, ReissueError};
use crate::revoke::{Gate, Revoker};

/// Set-user-ID and set-group-ID: never granted through a capability.
pub(crate) const SET_ID_BITS: u32 = 0o6000;

/// How to open a file through [`Dir::open_with`](super::Dir::open_with);
/// the same switches as `std::fs::OpenOptions`, without a way to choose
/// permission bits (new files get the process's default mode).
///
/// # Examples
///
/// ```
/// use compartment::caps::OpenOptions;
/// let mut append = OpenOptions::new();
/// append.append(true).create(true);
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
}

impl OpenOptions {
    /// All switches off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending (implies writing).
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate to zero length on open.
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// Whether the file is truncated on open, which a writer defers until it
    /// has checked the file (see `Dir::open_with`).
    pub(crate) fn truncates(&self) -> bool {
        self.truncate && !self.append
    }

    pub(crate) fn rights(&self) -> FileRights {
        FileRights {
            read: self.read,
            write: self.write || self.append,
        }
    }

    pub(crate) fn to_cap_std(&self) -> cap_std::fs::OpenOptions {
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .read(self.read)
            .write(self.write)
            .append(self.append)
            .truncate(self.truncate)
            .create(self.create)
            .create_new(self.create_new);
        options
    }
}

/// An open file behind a revocation gate; shared by both file capabilities.
#[derive(Debug)]
struct GuardedFile {
    inner: cap_std::fs::File,
    gate: Gate,
    path: PathBuf,
}

impl GuardedFile {
    fn guard(&self, op: FsOp) -> Result<(), FsError> {
        self.gate.check().map_err(|_| FsError::Revoked {
            op,
            path: self.path.clone(),
        })
    }

    fn run<T>(
        &self,
        op: FsOp,
        f: impl FnOnce(&cap_std::fs::File) -> io::Result<T>,
    ) -> Result<T, FsError> {
        self.guard(op)?;
        f(&self.inner).map_err(|e| FsError::from_io(op, &self.path, e))
    }

    /// Refuses a change to a file that another hard link — perhaps outside
    /// the tree — also names: checked at the change, on the open
    /// descriptor, since links may have been added since it was opened.
    fn refuse_shared(&self, op: FsOp) -> Result<(), FsError> {
        self.guard(op)?;
        refuse_shared_inode(op, &self.path, &self.inner)
    }

    fn duplicate(&self) -> io::Result<Self> {
        Ok(Self {
            inner: self.inner.try_clone()?,
            gate: self.gate.clone(),
            path: self.path.clone(),
        })
    }

    /// Wraps an I/O call of a std trait: revocation becomes an `io::Error`
    /// that [`Revoked::caused`](crate::Revoked::caused) recognises.
    fn io<T>(&self, f: impl FnOnce(&cap_std::fs::File) -> io::Result<T>) -> io::Result<T> {
        self.gate.check()?;
        f(&self.inner)
    }

    fn visit<'g>(
        &'g self,
        object: &'g (dyn std::any::Any + Send),
        rights: FileRights,
        inventory: &mut Inventory<'g>,
    ) {
        inventory.record(
            object,
            Capability::File { rights },
            self.gate.is_revocable(),
            Descriptor::of(&self.inner),
        );
    }
}

/// Refuses to change a regular file that is also reachable by another hard
/// link, which may be outside the tree.
pub(crate) fn refuse_shared_inode(
    op: FsOp,
    path: &Path,
    file: &cap_std::fs::File,
) -> Result<(), FsError> {
    let metadata = file.metadata().map_err(|e| FsError::from_io(op, path, e))?;
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        if metadata.is_file() && metadata.nlink() > 1 {
            return Err(FsError::SharedInode {
                op,
                path: path.to_owned(),
                links: metadata.nlink(),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    Ok(())
}

pub(crate) fn refuse_set_id(path: &Path, permissions: &Permissions) -> Result<(), FsError> {
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        let mode = permissions.mode();
        if mode & SET_ID_BITS != 0 {
            return Err(FsError::SetIdRefused {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, permissions);
    Ok(())
}

/// A file opened through a full [`Dir`](super::Dir): read, write, seek,
/// resize, sync, change permissions (never set-id bits) — as far as the mode
/// it was opened with allows.
///
/// It does not expose its descriptor. After revocation every method and every
/// `Read`/`Write`/`Seek` call fails; for the std traits the `io::Error` is
/// recognised by [`Revoked::caused`](crate::Revoked::caused).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// let mut file = dir.create("notes.txt")?;
/// file.write_all(b"hello")?;
/// let mut text = String::new();
/// dir.open("notes.txt")?.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct File {
    file: GuardedFile,
    rights: FileRights,
}

/// A file opened through a [`ReadOnlyDir`](super::ReadOnlyDir): read, seek
/// and metadata only.
///
/// The descriptor itself is opened read-only, so even code that reached it by
/// other means could not write through it.
///
/// ```compile_fail
/// # fn f(file: compartment::caps::ReadOnlyFile) {
/// use std::io::Write;
/// let mut file = file;
/// file.write_all(b"no"); // error: `ReadOnlyFile` does not implement `Write`
/// # }
/// ```
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: GuardedFile,
}

impl File {
    pub(crate) fn new(
        inner: cap_std::fs::File,
        gate: Gate,
        rights: FileRights,
        path: PathBuf,
    ) -> Self {
        Self {
            file: GuardedFile { inner, gate, path },
            rights,
        }
    }

    /// How the file was opened.
    pub fn rights(&self) -> FileRights {
        self.rights
    }

    /// The file's metadata.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn metadata(&self) -> Result<Metadata, FsError> {
        self.file.run(FsOp::Metadata, |f| f.metadata())
    }

    /// A second handle on the same open file, subject to the same revocation.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] when the
    /// descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Result<Self, FsError> {
        self.file.guard(FsOp::Duplicate)?;
        let file = self
            .file
            .duplicate()
            .map_err(|e| FsError::from_io(FsOp::Duplicate, &self.file.path, e))?;
        Ok(Self {
            file,
            rights: self.rights,
        })
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// # Errors
    ///
    /// [`FsError::SharedInode`] when another hard link names the file (it
    /// may be outside the directory); [`FsError::Revoked`] after
    /// revocation; [`FsError::Io`] from the OS (for example when the file
    /// was not opened for writing).
    pub fn set_len(&self, size: u64) -> Result<(), FsError> {
        self.file.refuse_shared(FsOp::SetLen)?;
        self.file.run(FsOp::SetLen, |f| f.set_len(size))
    }

    /// Flushes data and metadata to the device.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn sync_all(&self) -> Result<(), FsError> {
        self.file.run(FsOp::Sync, |f| f.sync_all())
    }

    /// Changes the file's permission bits. Set-user-ID and set-group-ID are
    /// refused, and so is a file that another hard link names: the mode is
    /// the inode's, shared with a link that may be outside the directory.
    ///
    /// # Errors
    ///
    /// [`FsError::SetIdRefused`] for set-id bits, [`FsError::SharedInode`]
    /// for a file with other links, [`FsError::Revoked`] after revocation,
    /// [`FsError::Io`] from the OS.
    pub fn set_permissions(&self, permissions: Permissions) -> Result<(), FsError> {
        self.file.guard(FsOp::SetPermissions)?;
        refuse_set_id(&self.file.path, &permissions)?;
        self.file.refuse_shared(FsOp::SetPermissions)?;
        self.file
            .run(FsOp::SetPermissions, |f| f.set_permissions(permissions))
    }
}

impl ReadOnlyFile {
    pub(crate) fn new(inner: cap_std::fs::File, gate: Gate, path: PathBuf) -> Self {
        Self {
            file: GuardedFile { inner, gate, path },
        }
    }

    /// The file's metadata.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn metadata(&self) -> Result<Metadata, FsError> {
        self.file.run(FsOp::Metadata, |f| f.metadata())
    }

    /// A second handle on the same open file, subject to the same revocation.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] when the
    /// descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Result<Self, FsError> {
        self.file.guard(FsOp::Duplicate)?;
        let file = self
            .file
            .duplicate()
            .map_err(|e| FsError::from_io(FsOp::Duplicate, &self.file.path, e))?;
        Ok(Self { file })
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.read(buf))
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.read(buf))
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.io(|mut f| f.flush())
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.io(|mut f| f.flush())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.io(|mut f| f.seek(pos))
    }
}

impl Read for ReadOnlyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.read(buf))
    }
}

impl Read for &ReadOnlyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.io(|mut f| f.read(buf))
    }
}

impl Seek for ReadOnlyFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.io(|mut f| f.seek(pos))
    }
}

impl Grant for File {
    fn reissue(&self) -> Result<Self, ReissueError> {
        let file = self
            .file
            .duplicate()
            .map_err(|e| ReissueError::new("file", e))?;
        Ok(Self {
            file,
            rights: self.rights,
        })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.file.gate.attach(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        self.file.visit(self, self.rights, inventory);
    }
}

impl Grant for ReadOnlyFile {
    fn reissue(&self) -> Result<Self, ReissueError> {
        let file = self
            .file
            .duplicate()
            .map_err(|e| ReissueError::new("file", e))?;
        Ok(Self { file })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.file.gate.attach(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        let rights = FileRights {
            read: true,
            write: false,
        };
        self.file.visit(self, rights, inventory);
    }
}
