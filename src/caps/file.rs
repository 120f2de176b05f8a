//! Open files obtained through directory capabilities.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::{Metadata, Permissions};

use super::fs_error::{FsError, FsOp};
use super::metadata_spec::FollowSymlinks;
use crate::capability::{Capability, FileRights};
use crate::grant::{Descriptor, Grant, Inventory, ReissueError};
use crate::revoke::{Gate, Revoker};

/// Set-user-ID and set-group-ID: never granted through a capability.
pub(crate) const SET_ID_BITS: u32 = 0o6000;

/// How to open a file through [`Dir::open_with`](super::Dir::open_with):
/// the switches of `std::fs::OpenOptions`, and cap-std's extensions —
/// the mode of a new file (never set-id bits), custom `open` flags (never
/// ones that create, truncate, append or open by path, which the switches
/// decide), synchronous writes, and whether a final symlink is followed.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::{FollowSymlinks, OpenOptions};
/// use std::io::Write;
///
/// let mut log = OpenOptions::new();
/// log.append(true).create(true).mode(0o600).dsync(true);
/// dir.open_with("audit.log", &log)?.write_all(b"started\n")?;
///
/// dir.symlink("audit.log", "current")?;
/// let mut own = OpenOptions::new();
/// own.read(true).follow(FollowSymlinks::No);
/// assert!(dir.open_with("current", &own).is_err()); // a symlink, not followed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: Option<u32>,
    custom_flags: i32,
    sync: bool,
    dsync: bool,
    rsync: bool,
    maybe_dir: bool,
    follow: FollowSymlinks,
}

impl OpenOptions {
    /// All switches off.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    ///
    /// let mut options = OpenOptions::new();
    /// options.write(true).create(true);
    /// dir.open_with("new.txt", &options)?;
    /// assert!(dir.exists("new.txt"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Open for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// # dir.write("notes.txt", "hi")?;
    /// let mut options = OpenOptions::new();
    /// assert!(dir.open_with("notes.txt", options.read(true)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// use compartment::caps::OpenOptions;
    /// # dir.write("notes.txt", "hi")?;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("notes.txt", options.write(true))?.write_all(b"HI")?;
    /// assert_eq!(dir.read("notes.txt")?, b"HI");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending (implies writing).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// use compartment::caps::OpenOptions;
    /// # dir.write("log", "a")?;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("log", options.append(true))?.write_all(b"b")?;
    /// assert_eq!(dir.read("log")?, b"ab");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate to zero length on open.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// # dir.write("cache", "stale")?;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("cache", options.write(true).truncate(true))?;
    /// assert_eq!(dir.read("cache")?, b"");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("fresh", options.write(true).create(true))?;
    /// assert!(dir.is_file("fresh"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing if it exists.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// options.write(true).create_new(true);
    /// dir.open_with("lock", &options)?;
    /// assert!(dir.open_with("lock", &options).is_err()); // exists now
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// The permission bits of a file this creates (less the process's
    /// umask); `0o666` unless set. Set-user-ID and set-group-ID bits are
    /// refused when the file is opened.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// options.write(true).create(true).mode(0o600);
    /// dir.open_with("secret", &options)?;
    /// assert!(dir.open_with("setuid", options.mode(0o4755)).is_err()); // set-id bits refused
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = Some(mode);
        self
    }

    /// Further `open` flags, such as `O_NOATIME` or `O_DIRECT`. The access
    /// mode bits are ignored, as in cap-std; flags that create, truncate,
    /// append or open by path (`O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_APPEND`,
    /// `O_TMPFILE`, `O_PATH`) are refused when the file is opened: the
    /// switches decide those, so that the hard-link check comes before any
    /// truncation.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// # dir.write("notes.txt", "hi")?;
    /// let mut options = OpenOptions::new();
    /// options.read(true).custom_flags(rustix::fs::OFlags::NOATIME.bits() as i32);
    /// let _ = dir.open_with("notes.txt", &options); // O_NOATIME needs ownership of the file
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// Every write reaches the device, data and metadata (`O_SYNC`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("journal", options.write(true).create(true).sync(true))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&mut self, sync: bool) -> &mut Self {
        self.sync = sync;
        self
    }

    /// Every write reaches the device, data and the metadata needed to read
    /// it (`O_DSYNC`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("journal", options.write(true).create(true).dsync(true))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dsync(&mut self, dsync: bool) -> &mut Self {
        self.dsync = dsync;
        self
    }

    /// Reads wait for pending synchronous writes (`O_RSYNC`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// # dir.write("journal", "x")?;
    /// let mut options = OpenOptions::new();
    /// dir.open_with("journal", options.read(true).rsync(true))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rsync(&mut self, rsync: bool) -> &mut Self {
        self.rsync = rsync;
        self
    }

    /// Whether a directory may be opened, as cap-std's `maybe_dir`: on
    /// Windows it is needed to open one; on Unix a directory opens for
    /// reading either way.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::OpenOptions;
    /// let mut options = OpenOptions::new();
    /// assert!(dir.open_with(".", options.read(true).maybe_dir(true)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn maybe_dir(&mut self, maybe_dir: bool) -> &mut Self {
        self.maybe_dir = maybe_dir;
        self
    }

    /// Whether a final symlink is followed (inside the directory); with
    /// [`FollowSymlinks::No`], opening a symlink fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::{FollowSymlinks, OpenOptions};
    /// # dir.write("notes.txt", "hi")?;
    /// # dir.symlink("notes.txt", "latest")?;
    /// let mut options = OpenOptions::new();
    /// options.read(true).follow(FollowSymlinks::No);
    /// assert!(dir.open_with("latest", &options).is_err());
    /// assert!(dir.open_with("notes.txt", &options).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn follow(&mut self, follow: FollowSymlinks) -> &mut Self {
        self.follow = follow;
        self
    }

    /// Refuses what the capability model does not allow through these
    /// options: set-id modes, and custom flags that the switches decide.
    pub(crate) fn check(&self, path: &Path) -> Result<(), FsError> {
        if let Some(mode) = self.mode.filter(|mode| mode & SET_ID_BITS != 0) {
            return Err(FsError::SetIdRefused {
                path: path.to_owned(),
                mode,
            });
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::OFlags;
            let decided_by_switches = OFlags::CREATE
                | OFlags::EXCL
                | OFlags::TRUNC
                | OFlags::APPEND
                | OFlags::TMPFILE
                | OFlags::PATH;
            let invalid = |why: &str| {
                FsError::from_io(
                    FsOp::Open,
                    path,
                    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
                )
            };
            let Some(flags) = OFlags::from_bits(self.custom_flags as u32) else {
                return Err(invalid("custom flags include bits that are not open flags"));
            };
            if flags.intersects(decided_by_switches) {
                return Err(invalid(
                    "custom flags may not create, truncate, append or open by path: the OpenOptions switches decide those",
                ));
            }
        }
        Ok(())
    }

    /// Whether these options would change the file system: write, append,
    /// create or truncate.
    #[cfg(feature = "wasm")]
    pub(crate) fn changes(&self) -> bool {
        self.write || self.append || self.truncate || self.create || self.create_new
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
        {
            use cap_fs_ext::{OpenOptionsFollowExt, OpenOptionsMaybeDirExt, OpenOptionsSyncExt};
            // cap-std's own switches, which its path resolution honours
            // whether or not the kernel offers `openat2`.
            // `O_NOFOLLOW` among the custom flags means the same: cap-std's
            // own resolution would otherwise follow the final symlink.
            let follow = if self.custom_flags & rustix_nofollow() != 0 {
                FollowSymlinks::No
            } else {
                self.follow
            };
            options
                .follow(follow.to_cap_std())
                .maybe_dir(self.maybe_dir)
                .sync(self.sync)
                .dsync(self.dsync)
                .rsync(self.rsync);
        }
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            options.custom_flags(self.custom_flags);
            if let Some(mode) = self.mode {
                options.mode(mode);
            }
        }
        options
    }
}

/// An open file behind a revocation gate; shared by both file capabilities.
#[derive(Debug)]
pub(crate) struct GuardedFile {
    pub(crate) inner: cap_std::fs::File,
    pub(crate) gate: Gate,
    pub(crate) path: PathBuf,
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

    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, FsError> {
        self.run(FsOp::Read, |f| {
            cap_std::fs::FileExt::read_at(f, buf, offset)
        })
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

/// Opens a file capability with `options` through `open`, which runs the OS
/// open (labelled with the operation it is given) with cap-std's options:
/// for a directory, by path; for a listed entry, by its name. A writer goes
/// through the hard-link rule of [`open_for_writing`].
pub(crate) fn open_file(
    path: &Path,
    options: &OpenOptions,
    gate: Gate,
    open: impl Fn(FsOp, &cap_std::fs::OpenOptions) -> Result<cap_std::fs::File, FsError>,
) -> Result<File, FsError> {
    options.check(path)?;
    let rights = options.rights();
    let file = if rights.write {
        open_for_writing(FsOp::Create, path, options, |untruncated| {
            open(FsOp::Create, untruncated)
        })?
    } else {
        open(FsOp::Open, &options.to_cap_std())?
    };
    Ok(File::new(file, gate, rights, path.to_owned()))
}

/// Opens a file for writing with `open`, refusing a regular file that has
/// other hard links: one of them may be outside the tree, and writing would
/// change that file too. Truncation waits until after the check.
pub(crate) fn open_for_writing(
    op: FsOp,
    path: &Path,
    options: &OpenOptions,
    open: impl FnOnce(&cap_std::fs::OpenOptions) -> Result<cap_std::fs::File, FsError>,
) -> Result<cap_std::fs::File, FsError> {
    let truncate_after = options.truncates();
    let mut untruncated = options.clone();
    if truncate_after {
        untruncated.truncate(false);
    }
    let file = open(&untruncated.to_cap_std())?;
    refuse_shared_inode(op, path, &file)?;
    if truncate_after {
        file.set_len(0).map_err(|e| FsError::from_io(op, path, e))?;
    }
    Ok(file)
}

/// `O_NOFOLLOW` as this platform numbers it (0 where rustix does not run).
fn rustix_nofollow() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    0
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
    pub(crate) file: GuardedFile,
    pub(crate) rights: FileRights,
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
    pub(crate) file: GuardedFile,
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
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hi")?;
    /// let file = dir.open("notes.txt")?;
    /// assert!(file.rights().read && !file.rights().write);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rights(&self) -> FileRights {
        self.rights
    }

    /// The file's metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hi")?;
    /// assert_eq!(dir.open("notes.txt")?.metadata()?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn metadata(&self) -> Result<Metadata, FsError> {
        self.file.run(FsOp::Metadata, |f| f.metadata())
    }

    /// A second handle on the same open file, subject to the same revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// let file = dir.create("log")?;
    /// let mut other = file.try_clone()?;
    /// other.write_all(b"both")?;
    /// assert_eq!(dir.read("log")?, b"both");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let file = dir.create("sparse")?;
    /// file.set_len(4096)?;
    /// assert_eq!(dir.metadata("sparse")?.len(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// let mut file = dir.create("durable")?;
    /// file.write_all(b"kept")?;
    /// file.sync_all()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn sync_all(&self) -> Result<(), FsError> {
        self.file.run(FsOp::Sync, |f| f.sync_all())
    }

    /// Flushes data, and only the metadata needed to read it back.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// let mut journal = dir.create("journal")?;
    /// journal.write_all(b"entry")?;
    /// journal.sync_data()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_data(&self) -> Result<(), FsError> {
        self.file.run(FsOp::Sync, |f| f.sync_data())
    }

    /// Reads into `buf` from `offset`, without moving the cursor; returns
    /// how many bytes were read (as `std::os::unix::fs::FileExt::read_at`).
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("header.bin", b"MAGIC-v2")?;
    /// let mut version = [0u8; 2];
    /// dir.open("header.bin")?.read_at(&mut version, 6)?;
    /// assert_eq!(&version, b"v2");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, FsError> {
        self.file.read_at(buf, offset)
    }

    /// Writes `buf` at `offset`, without moving the cursor; returns how many
    /// bytes were written. The file must have been opened for writing.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let mut options = compartment::caps::OpenOptions::new();
    /// options.read(true).write(true).create(true);
    /// let file = dir.open_with("table.bin", &options)?;
    /// file.write_at(b"world", 6)?;
    /// file.write_at(b"hello ", 0)?;
    /// let mut buf = [0u8; 5];
    /// file.read_at(&mut buf, 6)?;
    /// assert_eq!(&buf, b"world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<usize, FsError> {
        self.file.run(FsOp::Write, |f| {
            cap_std::fs::FileExt::write_at(f, buf, offset)
        })
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
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::{Permissions, PermissionsExt};
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let script = dir.create("run.sh")?;
    /// script.set_permissions(Permissions::from_mode(0o755))?;
    /// assert_eq!(script.metadata()?.permissions().mode() & 0o7777, 0o755);
    /// assert!(script.set_permissions(Permissions::from_mode(0o4755)).is_err()); // set-user-ID
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hi")?;
    /// let file = dir.read_only()?.open("notes.txt")?;
    /// assert!(file.metadata()?.is_file());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    pub fn metadata(&self) -> Result<Metadata, FsError> {
        self.file.run(FsOp::Metadata, |f| f.metadata())
    }

    /// Reads into `buf` from `offset`, without moving the cursor; returns
    /// how many bytes were read.
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("header.bin", b"MAGIC-v2")?;
    /// let mut magic = [0u8; 5];
    /// dir.read_only()?.open("header.bin")?.read_at(&mut magic, 0)?;
    /// assert_eq!(&magic, b"MAGIC");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, FsError> {
        self.file.read_at(buf, offset)
    }

    /// A second handle on the same open file, subject to the same revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hi")?;
    /// let file = dir.read_only()?.open("notes.txt")?;
    /// let copy = file.try_clone()?;
    /// let mut buf = [0u8; 2];
    /// copy.read_at(&mut buf, 0)?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
