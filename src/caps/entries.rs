//! Listing a directory capability, and acting through what it lists.
//!
//! An entry holds the listed directory's descriptor and its own name, as
//! cap-std's does: opening, reading metadata or removing through it acts on
//! that name inside that directory, resolved beneath it, behind the same
//! revocation gate and with the same rights as the capability that listed
//! it. A read-only directory lists [`ReadOnlyDirEntry`]s, which have the
//! read side only.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;

use cap_std::fs::{FileType, Metadata};

use super::dir::Dir;
use super::file::{File, OpenOptions, ReadOnlyFile, open_file};
use super::fs_error::{FsError, FsOp};
use super::guarded_dir::GuardedDir;
use super::read_only_dir::ReadOnlyDir;
use crate::revoke::Gate;

/// What every entry holds: cap-std's entry, the gate, and its path (the
/// listed path joined with its name, for errors).
struct Listed {
    inner: cap_std::fs::DirEntry,
    gate: Gate,
    path: PathBuf,
    name: OsString,
    file_type: FileType,
}

impl Listed {
    fn run<T>(
        &self,
        op: FsOp,
        f: impl FnOnce(&cap_std::fs::DirEntry) -> io::Result<T>,
    ) -> Result<T, FsError> {
        self.gate.check().map_err(|_| FsError::Revoked {
            op,
            path: self.path.clone(),
        })?;
        f(&self.inner).map_err(|e| FsError::from_io(op, &self.path, e))
    }

    fn open_dir(&self) -> Result<GuardedDir, FsError> {
        let inner = self.run(FsOp::OpenDir, cap_std::fs::DirEntry::open_dir)?;
        Ok(GuardedDir::with_gate(inner, self.gate.clone()))
    }
}

/// Entries print as cap-std's do not: their name and type, the two things
/// a listing says (cap-std prints its internal handle).
impl fmt::Debug for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirEntry")
            .field("name", &self.name)
            .field("file_type", &self.file_type)
            .finish()
    }
}

/// The read-side methods both entry kinds have.
macro_rules! entry_read_methods {
    () => {
        /// The entry's name inside the listed directory.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hi")?;
        /// let entry = dir.entries()?.next().expect("one entry")?;
        /// assert_eq!(entry.name(), "notes.txt");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn name(&self) -> &OsString {
            &self.listed.name
        }

        /// The entry's name, owned (cap-std's `file_name`).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hi")?;
        /// let entry = dir.entries()?.next().expect("one entry")?;
        /// assert_eq!(entry.file_name(), "notes.txt");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn file_name(&self) -> OsString {
            self.listed.name.clone()
        }

        /// Whether it is a file, a directory or a symlink (symlinks are not
        /// followed).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.create_dir("logs")?;
        /// let entry = dir.entries()?.next().expect("one entry")?;
        /// assert!(entry.file_type().is_dir());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn file_type(&self) -> FileType {
            self.listed.file_type
        }

        /// The entry's metadata, not following a symlink.
        ///
        /// # Errors
        ///
        /// [`FsError::Revoked`] after revocation; [`FsError::Io`] from the
        /// OS (for example when the entry was removed since the listing).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// dir.write("big.bin", vec![0u8; 4096])?;
        /// let sizes: u64 = dir
        ///     .read_only()?
        ///     .entries()?
        ///     .map(|entry| entry?.metadata().map(|m| m.len()))
        ///     .sum::<Result<_, _>>()?;
        /// assert_eq!(sizes, 4096);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn metadata(&self) -> Result<Metadata, FsError> {
            self.listed
                .run(FsOp::Metadata, cap_std::fs::DirEntry::metadata)
        }
    };
}

/// One entry of a listing of a full [`Dir`]: its name and type, and the
/// operations cap-std's `DirEntry` has, on that name in that directory.
/// Its `Debug` shows the name and type (cap-std's shows its internal
/// handle).
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// dir.write("a.tmp", b"scratch")?;
/// dir.write("keep.txt", b"keep")?;
/// for entry in dir.entries()? {
///     let entry = entry?;
///     if entry.file_name().to_string_lossy().ends_with(".tmp") {
///         entry.remove_file()?;
///     }
/// }
/// assert!(!dir.exists("a.tmp") && dir.exists("keep.txt"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DirEntry {
    listed: Listed,
}

impl DirEntry {
    entry_read_methods!();

    /// Opens the entry for reading (following a symlink inside the
    /// directory only).
    ///
    /// # Errors
    ///
    /// As [`Dir::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Read;
    /// dir.write("only.txt", b"hello")?;
    /// let entry = dir.entries()?.next().unwrap()?;
    /// let mut text = String::new();
    /// entry.open()?.read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self) -> Result<File, FsError> {
        let mut options = OpenOptions::new();
        options.read(true);
        self.open_with(&options)
    }

    /// Opens the entry with `options`, under the rules of
    /// [`Dir::open_with`]: a file another hard link names is not opened for
    /// writing, and truncation waits for that check.
    ///
    /// # Errors
    ///
    /// As [`Dir::open_with`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// dir.write("log.txt", b"a")?;
    /// let entry = dir.entries()?.next().unwrap()?;
    /// let mut append = compartment::caps::OpenOptions::new();
    /// append.append(true);
    /// entry.open_with(&append)?.write_all(b"b")?;
    /// assert_eq!(dir.read("log.txt")?, b"ab");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(&self, options: &OpenOptions) -> Result<File, FsError> {
        let listed = &self.listed;
        open_file(&listed.path, options, listed.gate.clone(), |op, options| {
            listed.run(op, |entry| entry.open_with(options))
        })
    }

    /// Opens the entry as a directory with full rights, under the same
    /// revocation.
    ///
    /// # Errors
    ///
    /// As [`Dir::open_dir`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("tenant")?;
    /// let entry = dir.entries()?.next().unwrap()?;
    /// let tenant = entry.open_dir()?;
    /// tenant.write("quota", b"10G")?;
    /// assert_eq!(dir.read("tenant/quota")?, b"10G");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_dir(&self) -> Result<Dir, FsError> {
        Ok(Dir {
            dir: self.listed.open_dir()?,
        })
    }

    /// Removes the entry, a file or a symlink.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("old", "x")?;
    /// for entry in dir.entries()? {
    ///     entry?.remove_file()?;
    /// }
    /// assert!(!dir.exists("old"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Dir::remove_file`].
    pub fn remove_file(&self) -> Result<(), FsError> {
        self.listed
            .run(FsOp::RemoveFile, cap_std::fs::DirEntry::remove_file)
    }

    /// Removes the entry, an empty directory.
    ///
    /// # Errors
    ///
    /// As [`Dir::remove_dir`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("empty")?;
    /// for entry in dir.entries()? {
    ///     let entry = entry?;
    ///     if entry.file_type().is_dir() {
    ///         entry.remove_dir()?;
    ///     }
    /// }
    /// assert!(!dir.exists("empty"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_dir(&self) -> Result<(), FsError> {
        self.listed
            .run(FsOp::RemoveDir, cap_std::fs::DirEntry::remove_dir)
    }
}

/// One entry of a listing of a [`ReadOnlyDir`]: the read side of
/// [`DirEntry`] only.
///
/// ```compile_fail
/// # fn f(entry: compartment::caps::ReadOnlyDirEntry) {
/// entry.remove_file(); // error: no method named `remove_file`
/// # }
/// ```
#[derive(Debug)]
pub struct ReadOnlyDirEntry {
    listed: Listed,
}

impl ReadOnlyDirEntry {
    entry_read_methods!();

    /// Opens the entry for reading (following a symlink inside the
    /// directory only).
    ///
    /// # Errors
    ///
    /// As [`ReadOnlyDir::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Read;
    /// dir.write("readme", b"hi")?;
    /// let entry = dir.read_only()?.entries()?.next().unwrap()?;
    /// let mut text = String::new();
    /// entry.open()?.read_to_string(&mut text)?;
    /// assert_eq!(text, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self) -> Result<ReadOnlyFile, FsError> {
        let file = self.listed.run(FsOp::Open, cap_std::fs::DirEntry::open)?;
        Ok(ReadOnlyFile::new(
            file,
            self.listed.gate.clone(),
            self.listed.path.clone(),
        ))
    }

    /// Opens the entry as a directory, read-only, under the same
    /// revocation.
    ///
    /// # Errors
    ///
    /// As [`ReadOnlyDir::open_dir`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("photos")?;
    /// dir.write("photos/cat.jpg", b"meow")?;
    /// let entry = dir.read_only()?.entries()?.next().unwrap()?;
    /// let photos = entry.open_dir()?; // read-only too
    /// assert_eq!(photos.read("cat.jpg")?, b"meow");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_dir(&self) -> Result<ReadOnlyDir, FsError> {
        Ok(ReadOnlyDir {
            dir: self.listed.open_dir()?,
        })
    }
}

/// An entry kind, made from what a listing yields: [`DirEntry`] or
/// [`ReadOnlyDirEntry`]. Sealed; name it to write code generic over both
/// listings.
///
/// # Examples
///
/// ```
/// use compartment::caps::{Entries, ListedEntry};
///
/// fn count<E: ListedEntry>(entries: Entries<E>) -> usize {
///     entries.filter_map(Result::ok).count()
/// }
///
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// dir.write("a.txt", "a")?;
/// dir.write("b.txt", "b")?;
/// assert_eq!(count(dir.entries()?), 2);
/// assert_eq!(count(dir.read_only()?.entries()?), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ListedEntry: fmt::Debug + sealed::Sealed {
    #[doc(hidden)]
    fn from_listed(listed: ListedParts) -> Self;

    #[doc(hidden)]
    fn listed_name(&self) -> &OsString;
}

/// What a listing yields, before it becomes an entry of either kind.
#[doc(hidden)]
#[derive(Debug)]
pub struct ListedParts(Listed);

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::DirEntry {}
    impl Sealed for super::ReadOnlyDirEntry {}
}

impl ListedEntry for DirEntry {
    fn from_listed(ListedParts(listed): ListedParts) -> Self {
        Self { listed }
    }

    fn listed_name(&self) -> &OsString {
        &self.listed.name
    }
}

impl ListedEntry for ReadOnlyDirEntry {
    fn from_listed(ListedParts(listed): ListedParts) -> Self {
        Self { listed }
    }

    fn listed_name(&self) -> &OsString {
        &self.listed.name
    }
}

/// The iterator returned by `entries` and `read_dir`: [`DirEntry`]s for a
/// [`Dir`], [`ReadOnlyDirEntry`]s for a [`ReadOnlyDir`].
///
/// Each step checks the capability's revocation gate, so a listing stops
/// with one [`FsError::Revoked`] once its directory is revoked.
///
/// # Examples
///
/// ```
/// use compartment::{Grant, Revoker};
/// use compartment::caps::FsError;
///
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let mut dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// dir.write("a.txt", "a")?;
/// dir.write("b.txt", "b")?;
/// let revoker = Revoker::new();
/// dir.attach_revoker(&revoker);
/// let mut entries = dir.entries()?;
/// assert!(entries.next().unwrap().is_ok());
/// revoker.revoke();
/// assert!(matches!(entries.next(), Some(Err(FsError::Revoked { .. }))));
/// assert!(entries.next().is_none()); // the listing ends after saying so
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Entries<E = DirEntry> {
    inner: cap_std::fs::ReadDir,
    gate: Gate,
    path: PathBuf,
    /// Set after a revocation has been reported, so the iterator ends.
    finished: bool,
    entry: PhantomData<fn() -> E>,
}

impl<E> Entries<E> {
    pub(crate) fn new(inner: cap_std::fs::ReadDir, gate: Gate, path: PathBuf) -> Self {
        Self {
            inner,
            gate,
            path,
            finished: false,
            entry: PhantomData,
        }
    }
}

#[cfg(feature = "testkit")]
impl<E: ListedEntry> Entries<E> {
    /// The entry called `name`, skipping entries that could not be read
    /// (the escape battery acts through entries it finds by name).
    ///
    /// # Errors
    ///
    /// An [`FsError::Io`] of kind `NotFound` when there is none.
    pub(crate) fn named(self, name: &str) -> Result<E, FsError> {
        let path = self.path.join(name);
        self.filter_map(Result::ok)
            .find(|entry| entry.listed_name() == name)
            .ok_or_else(|| FsError::Io {
                op: FsOp::ReadDir,
                path,
                source: io::ErrorKind::NotFound.into(),
            })
    }
}

impl<E: ListedEntry> Iterator for Entries<E> {
    type Item = Result<E, FsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.gate.check().is_err() {
            self.finished = true;
            return Some(Err(FsError::Revoked {
                op: FsOp::ReadDir,
                path: self.path.clone(),
            }));
        }
        let entry = self.inner.next()?;
        Some(
            entry
                .and_then(|inner| {
                    let name = inner.file_name();
                    Ok(Listed {
                        file_type: inner.file_type()?,
                        path: self.path.join(&name),
                        name,
                        gate: self.gate.clone(),
                        inner,
                    })
                })
                .map(|listed| E::from_listed(ListedParts(listed)))
                .map_err(|e| FsError::from_io(FsOp::ReadDir, &self.path, e)),
        )
    }
}
