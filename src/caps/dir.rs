//! `Dir`: a directory with every right inside it and none outside.

use std::path::{Path, PathBuf};

use cap_std::AmbientAuthority;
use cap_std::fs::{Metadata, Permissions};

use super::dir_builder::DirBuilder;
use super::entries::{DirEntry, Entries};
use std::io::Write;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
use super::file::refuse_shared_inode;
use super::file::{File, OpenOptions, SET_ID_BITS, open_file, open_for_writing, refuse_set_id};
use super::fs_error::{FsError, FsOp};
use super::guarded_dir::{GuardedDir, check_symlink_target};
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::inode::Inode;
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::metadata_spec::AccessType;
use super::metadata_spec::FollowSymlinks;
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::metadata_spec::SystemTimeSpec;
use super::read_only_dir::ReadOnlyDir;
use super::shared_dir_methods::shared_dir_methods;
use crate::capability::Rights;
use crate::grant::{Grant, Inventory, ReissueError};
use crate::revoke::Revoker;

/// A full directory capability: the operations of cap-std's `Dir`, confined
/// to one directory tree.
///
/// # What it allows
///
/// Inside its directory: reading, listing, creating and writing files and
/// directories, truncating, removing, renaming and hard-linking (to another
/// `Dir` only), creating symlinks that point down into the tree, and changing
/// permission bits.
///
/// # What it denies
///
/// - Any path that leads outside: absolute paths, `..` above the directory,
///   and symlinks (absolute or relative) that resolve outside it.
/// - Creating a symlink whose target is absolute or contains `..`: such a
///   link would lead outside for anyone who follows it without a capability,
///   now or after a later rename.
/// - Setting set-user-ID or set-group-ID bits.
/// - Writing, truncating or changing the permissions of a regular file that
///   has more than one hard link: another link may be outside the tree (a
///   host can plant one), and the change would reach it. Reading such a file
///   is allowed; the host placed it there.
/// - Its descriptor: there is no `AsFd`, no `into_std`.
///
/// # Attenuation
///
/// [`open_dir`](Self::open_dir) narrows to a subdirectory with the same
/// rights; [`read_only`](Self::read_only) weakens to a [`ReadOnlyDir`]. Both
/// keep any revocation attached to `self`.
///
/// # Examples
///
/// ```
/// use compartment::caps::Dir;
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let data = Dir::from_cap_std(tmp.try_clone()?);
/// data.create_dir_all("tenants/acme")?;
/// let acme = data.open_dir("tenants/acme")?;
/// acme.write("invoice.txt", b"42 EUR")?;
///
/// assert!(acme.read("../../tenants/acme/invoice.txt").unwrap_err().is_refusal());
/// assert!(acme.symlink("/etc/passwd", "passwd").unwrap_err().is_refusal());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Dir {
    pub(crate) dir: GuardedDir,
}

impl Dir {
    /// A full directory may be written: [`access`](Self::access) answers so.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const WRITABLE: bool = true;

    /// Opens a directory of the host filesystem with full rights inside it.
    ///
    /// # Ambient Authority
    ///
    /// This turns a path of the whole filesystem into a capability: call it
    /// on the granting side (`main`), never inside a component.
    ///
    /// # Errors
    ///
    /// [`FsError::Io`] when the directory cannot be opened.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Dir;
    /// # let path = std::env::temp_dir().join(format!("compartment-doc-dir-{}", std::process::id()));
    /// # std::fs::create_dir_all(&path)?;
    /// // In `main`, the granting side:
    /// let uploads = Dir::open_ambient_dir(&path, compartment::ambient_authority())?;
    /// uploads.write("first.txt", "hello")?;
    /// assert_eq!(uploads.read_to_string("first.txt")?, "hello");
    /// # std::fs::remove_dir_all(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_ambient_dir(
        path: impl AsRef<Path>,
        ambient_authority: AmbientAuthority,
    ) -> Result<Self, FsError> {
        GuardedDir::open_ambient_dir(path.as_ref(), ambient_authority).map(|dir| Self { dir })
    }

    /// Wraps a cap-std directory handle. No ambient authority is needed: the
    /// handle already is the authority.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// use compartment::caps::Dir;
    /// let dir = Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("notes.txt", "hello")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_cap_std(dir: cap_std::fs::Dir) -> Self {
        Self {
            dir: GuardedDir::new(dir),
        }
    }

    /// A read-only capability on the same directory (a new descriptor).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hello")?;
    /// let reader = dir.read_only()?;
    /// assert_eq!(reader.read("notes.txt")?, b"hello");
    /// dir.write("notes.txt", "changed")?; // the full handle still writes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::Revoked`], or [`FsError::Io`] when the descriptor cannot be
    /// duplicated.
    pub fn read_only(&self) -> Result<ReadOnlyDir, FsError> {
        Ok(ReadOnlyDir {
            dir: self.dir.duplicate()?,
        })
    }

    /// Turns this capability into a read-only one (no new descriptor).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hello")?;
    /// let reader = dir.into_read_only();
    /// assert_eq!(reader.read_to_string("notes.txt")?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_read_only(self) -> ReadOnlyDir {
        ReadOnlyDir { dir: self.dir }
    }

    /// Opens a file for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// # dir.write("notes.txt", "hello")?;
    /// use std::io::Read;
    /// let mut text = String::new();
    /// dir.open("notes.txt")?.read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::Escape`] for paths that lead outside,
    /// [`FsError::InvalidPath`], [`FsError::Revoked`], [`FsError::Io`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<File, FsError> {
        let mut options = OpenOptions::new();
        options.read(true);
        self.open_with(path, &options)
    }

    /// Opens a file with the given options.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use compartment::caps::OpenOptions;
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let mut options = OpenOptions::new();
    /// options.append(true).create(true);
    /// dir.open_with("log.txt", &options)?.write_all(b"one\n")?;
    /// dir.open_with("log.txt", &options)?.write_all(b"two\n")?;
    /// assert_eq!(dir.read_to_string("log.txt")?, "one\ntwo\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(
        &self,
        path: impl AsRef<Path>,
        options: &OpenOptions,
    ) -> Result<File, FsError> {
        let path = path.as_ref();
        open_file(path, options, self.dir.gate.clone(), |op, options| {
            self.dir.run(op, path, |d| d.open_with(path, options))
        })
    }

    /// Opens `path` for writing, refusing a regular file that has other hard
    /// links: one of them may be outside the tree, and writing would change
    /// that file too. Truncation waits until after the check.
    fn open_for_writing(
        &self,
        op: FsOp,
        path: &Path,
        options: &OpenOptions,
    ) -> Result<cap_std::fs::File, FsError> {
        open_for_writing(op, path, options, |untruncated| {
            self.dir.run(op, path, |d| d.open_with(path, untruncated))
        })
    }

    /// Creates (or truncates) a file and opens it for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::io::Write;
    /// dir.create("audit.log")?.write_all(b"started")?;
    /// assert_eq!(dir.read("audit.log")?, b"started");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn create(&self, path: impl AsRef<Path>) -> Result<File, FsError> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        self.open_with(path, &options)
    }

    /// Writes a whole file, creating or truncating it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("notes.txt", "hello")?;
    /// assert!(dir.write("../escaped.txt", "x").is_err());
    /// assert_eq!(dir.read("notes.txt")?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), FsError> {
        let path = path.as_ref();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let mut file = self.open_for_writing(FsOp::Write, path, &options)?;
        file.write_all(contents.as_ref())
            .map_err(|e| FsError::from_io(FsOp::Write, path, e))
    }

    /// Narrows to a subdirectory, keeping full rights and revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("logs")?;
    /// let logs = dir.open_dir("logs")?;
    /// logs.write("today.log", "up")?;
    /// assert!(logs.read("../today.log").is_err()); // the narrowed handle ends at logs/
    /// assert!(dir.is_file("logs/today.log"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<Dir, FsError> {
        Ok(Self {
            dir: self.dir.open_dir(path.as_ref())?,
        })
    }

    /// Creates one directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("logs")?;
    /// assert!(dir.is_dir("logs"));
    /// assert!(dir.create_dir("logs").is_err()); // already there
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn create_dir(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir.run(FsOp::CreateDir, path, |d| d.create_dir(path))
    }

    /// Creates a directory and any missing parents. The empty path names
    /// this directory, which exists: `Ok(())`, as in cap-std.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir_all("a/b/c")?;
    /// assert!(dir.is_dir("a/b/c"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return self.dir.admit(FsOp::CreateDir, Path::new("."));
        }
        self.dir
            .run(FsOp::CreateDir, path, |d| d.create_dir_all(path))
    }

    /// Creates a directory as `builder` says: its mode, and whether missing
    /// parents are created too (then the empty path is `Ok(())`, as for
    /// [`create_dir_all`](Self::create_dir_all)).
    ///
    /// # Errors
    ///
    /// [`FsError::SetIdRefused`] for a mode with set-id bits; otherwise as
    /// [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let mut nested = compartment::caps::DirBuilder::new();
    /// nested.recursive(true);
    /// dir.create_dir_with("2026/11/29", &nested)?;
    /// assert!(dir.is_dir("2026/11/29"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_dir_with(
        &self,
        path: impl AsRef<Path>,
        builder: &DirBuilder,
    ) -> Result<(), FsError> {
        let path = path.as_ref();
        if let Some(mode) = builder.set_id_mode() {
            return Err(FsError::SetIdRefused {
                path: path.to_owned(),
                mode,
            });
        }
        if builder.is_recursive() && path.as_os_str().is_empty() {
            return self.dir.admit(FsOp::CreateDir, Path::new("."));
        }
        self.dir.run(FsOp::CreateDir, path, |d| {
            d.create_dir_with(path, &builder.to_cap_std())
        })
    }

    /// Removes a file or a symlink (never what a symlink points to).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("old.txt", "x")?;
    /// dir.remove_file("old.txt")?;
    /// assert!(!dir.exists("old.txt"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn remove_file(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir
            .run(FsOp::RemoveFile, path, |d| d.remove_file(path))
    }

    /// Removes a file or a symlink — cap-std's name for the operation that
    /// on Windows also removes symlinks to directories; here it is
    /// [`remove_file`](Self::remove_file).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("real")?;
    /// dir.symlink_dir("real", "alias")?;
    /// dir.remove_file_or_symlink("alias")?;
    /// assert!(dir.is_dir("real") && !dir.exists("alias"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_file_or_symlink(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        self.remove_file(path)
    }

    /// Removes an empty directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("empty")?;
    /// dir.remove_dir("empty")?;
    /// assert!(!dir.exists("empty"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn remove_dir(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir.run(FsOp::RemoveDir, path, |d| d.remove_dir(path))
    }

    /// Removes a directory and everything below it, without following
    /// symlinks.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir_all("cache/a")?;
    /// dir.write("cache/a/entry", "x")?;
    /// dir.remove_dir_all("cache")?;
    /// assert!(!dir.exists("cache"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn remove_dir_all(&self, path: impl AsRef<Path>) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir
            .run(FsOp::RemoveDirAll, path, |d| d.remove_dir_all(path))
    }

    /// Renames `from` (in this directory) to `to` in `to_dir`, which may be
    /// this directory again. Both sides need full rights, so a rename can
    /// never move a file out of a read-only tree.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("draft.txt", "x")?;
    /// dir.rename("draft.txt", &dir, "final.txt")?;
    /// assert!(dir.exists("final.txt") && !dir.exists("draft.txt"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), for either path.
    pub fn rename(
        &self,
        from: impl AsRef<Path>,
        to_dir: &Dir,
        to: impl AsRef<Path>,
    ) -> Result<(), FsError> {
        let (from, to) = (from.as_ref(), to.as_ref());
        to_dir.dir.admit(FsOp::Rename, to)?;
        self.dir.run(FsOp::Rename, from, |d| {
            d.rename(from, &to_dir.dir.inner, to)
        })
    }

    /// Makes `dst` in `dst_dir` a hard link to the file `src` in this
    /// directory.
    ///
    /// A hard link to a symlink is a second symlink with the same target,
    /// so it obeys the rule [`symlink`](Self::symlink) does: a symlink whose
    /// target is absolute or contains `..` (planted by someone else) is not
    /// linked to a new name.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("data", "x")?;
    /// dir.hard_link("data", &dir, "alias")?;
    /// assert_eq!(dir.read("alias")?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`FsError::EscapingSymlink`] for such a symlink; otherwise as
    /// [`open`](Self::open), for either path.
    pub fn hard_link(
        &self,
        src: impl AsRef<Path>,
        dst_dir: &Dir,
        dst: impl AsRef<Path>,
    ) -> Result<(), FsError> {
        let (src, dst) = (src.as_ref(), dst.as_ref());
        dst_dir.dir.admit(FsOp::HardLink, dst)?;
        // Checked before the link is made; a symlink renamed into `src` in
        // between is the one race left, and only code that goes around the
        // types can run it — which kernel lockdown confines anyway (Landlock
        // refuses to link a symlink where none may be created).
        let source = self
            .dir
            .run(FsOp::HardLink, src, |d| d.symlink_metadata(src))?;
        if source.file_type().is_symlink() {
            let target = self
                .dir
                .run(FsOp::HardLink, src, |d| d.read_link_contents(src))?;
            check_symlink_target(dst, &target)?;
        }
        self.dir.run(FsOp::HardLink, src, |d| {
            d.hard_link(src, &dst_dir.dir.inner, dst)
        })
    }

    /// Copies the contents of `from` to `to` in `to_dir`, returning the number
    /// of bytes copied.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("data", "x")?;
    /// assert_eq!(dir.copy("data", &dir, "backup")?, 1);
    /// assert_eq!(dir.read("backup")?, b"x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), for either path.
    pub fn copy(
        &self,
        from: impl AsRef<Path>,
        to_dir: &Dir,
        to: impl AsRef<Path>,
    ) -> Result<u64, FsError> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let mut source = self.dir.run(FsOp::Copy, from, |d| d.open(from))?;
        // Checked on the open source, before the destination is touched: a
        // failed copy leaves an existing destination as it was.
        let is_file = source
            .metadata()
            .map_err(|e| FsError::from_io(FsOp::Copy, from, e))?
            .is_file();
        if !is_file {
            return Err(FsError::from_io(
                FsOp::Copy,
                from,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the source is not a regular file",
                ),
            ));
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let mut target = to_dir.open_for_writing(FsOp::Copy, to, &options)?;
        let copied = std::io::copy(&mut source, &mut target)
            .map_err(|e| FsError::from_io(FsOp::Copy, to, e))?;
        let permissions = source
            .metadata()
            .map_err(|e| FsError::from_io(FsOp::Copy, from, e))?
            .permissions();
        target
            .set_permissions(without_set_id(permissions))
            .map_err(|e| FsError::from_io(FsOp::Copy, to, e))?;
        Ok(copied)
    }

    /// Creates a symlink at `link` pointing to `target`.
    ///
    /// `target` must be relative and must not contain `..`, so the link
    /// points down into the tree wherever the link later moves.
    ///
    /// # Errors
    ///
    /// [`FsError::EscapingSymlink`] for an absolute target or one with `..`;
    /// otherwise as [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::FsError;
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("data")?;
    /// dir.write("data/v2.json", "{}")?;
    /// dir.symlink("v2.json", "data/current.json")?; // the target is relative to the link
    /// assert_eq!(dir.read_to_string("data/current.json")?, "{}");
    /// let refused = dir.symlink("../../etc/passwd", "data/passwd").unwrap_err();
    /// assert!(matches!(refused, FsError::EscapingSymlink { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn symlink(&self, target: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<(), FsError> {
        let (target, link) = (target.as_ref(), link.as_ref());
        self.dir.admit(FsOp::Symlink, link)?;
        check_symlink_target(link, target)?;
        self.dir
            .run(FsOp::Symlink, link, |d| d.symlink(target, link))
    }

    /// [`symlink`](Self::symlink) under cap-std's name for a link to a file
    /// (Unix does not tell the two apart); the same rule on the target.
    ///
    /// # Errors
    ///
    /// As [`symlink`](Self::symlink).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("v2.json", b"{}")?;
    /// dir.symlink_file("v2.json", "current.json")?;
    /// assert_eq!(dir.read("current.json")?, b"{}");
    /// assert!(dir.symlink_file("/etc/passwd", "stolen").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn symlink_file(
        &self,
        target: impl AsRef<Path>,
        link: impl AsRef<Path>,
    ) -> Result<(), FsError> {
        self.symlink(target, link)
    }

    /// [`symlink`](Self::symlink) under cap-std's name for a link to a
    /// directory; the same rule on the target.
    ///
    /// # Errors
    ///
    /// As [`symlink`](Self::symlink).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir_all("releases/42")?;
    /// dir.symlink_dir("releases/42", "live")?;
    /// assert!(dir.is_dir("live"));
    /// assert!(dir.symlink_dir("..", "up").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn symlink_dir(
        &self,
        target: impl AsRef<Path>,
        link: impl AsRef<Path>,
    ) -> Result<(), FsError> {
        self.symlink(target, link)
    }

    /// Changes the permission bits of `path` (following a final symlink,
    /// inside the directory). Set-user-ID and set-group-ID are refused, and
    /// so is a file another hard link names. Works without read access to
    /// the target, as cap-std does: a directory set to `000` or a
    /// write-only file can have its mode restored.
    ///
    /// # Errors
    ///
    /// [`FsError::SetIdRefused`], [`FsError::SharedInode`]; otherwise as
    /// [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::Permissions;
    /// use compartment::caps::PermissionsExt;
    ///
    /// dir.write("notes.txt", b"x")?;
    /// dir.set_permissions("notes.txt", Permissions::from_mode(0o600))?;
    /// assert_eq!(dir.metadata("notes.txt")?.permissions().mode() & 0o777, 0o600);
    /// assert!(dir.set_permissions("notes.txt", Permissions::from_mode(0o4755)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_permissions(
        &self,
        path: impl AsRef<Path>,
        permissions: Permissions,
    ) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir.admit(FsOp::SetPermissions, path)?;
        refuse_set_id(path, &permissions)?;
        self.change_mode(path, permissions, FollowSymlinks::Yes)
    }

    /// Changes the permission bits of `path` itself, not following a final
    /// symlink. On Linux a symlink has no permission bits of its own: for
    /// one, this fails with kind `Unsupported`, as cap-std does there.
    ///
    /// # Errors
    ///
    /// As [`set_permissions`](Self::set_permissions).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::{Permissions, PermissionsExt};
    ///
    /// dir.write("file", b"x")?;
    /// dir.symlink("file", "link")?;
    /// dir.set_symlink_permissions("file", Permissions::from_mode(0o640))?;
    /// let err = dir.set_symlink_permissions("link", Permissions::from_mode(0o600)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_symlink_permissions(
        &self,
        path: impl AsRef<Path>,
        permissions: Permissions,
    ) -> Result<(), FsError> {
        let path = path.as_ref();
        self.dir.admit(FsOp::SetPermissions, path)?;
        refuse_set_id(path, &permissions)?;
        self.change_mode(path, permissions, FollowSymlinks::No)
    }

    /// Through a descriptor, so the link-count check and the change apply
    /// to the same file.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn change_mode(
        &self,
        path: &Path,
        permissions: Permissions,
        follow: FollowSymlinks,
    ) -> Result<(), FsError> {
        use cap_std::fs::PermissionsExt;
        let op = FsOp::SetPermissions;
        let inode = Inode::open(&self.dir, op, path, follow)?;
        if follow == FollowSymlinks::No && inode.is_symlink(op, path)? {
            return Err(FsError::from_io(
                op,
                path,
                std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a symlink has no permission bits of its own on Linux",
                ),
            ));
        }
        inode.refuse_shared(op, path)?;
        inode.set_mode(op, path, permissions.mode())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn change_mode(
        &self,
        path: &Path,
        permissions: Permissions,
        _: FollowSymlinks,
    ) -> Result<(), FsError> {
        let op = FsOp::SetPermissions;
        let file = self.dir.run(op, path, |d| d.open(path))?;
        refuse_shared_inode(op, path, &file)?;
        file.set_permissions(permissions)
            .map_err(|e| FsError::from_io(op, path, e))
    }

    /// Sets the access and modification times of `path` (following a final
    /// symlink, inside the directory); `None` leaves one as it is. Through
    /// a descriptor, like every metadata change; refused for a file another
    /// hard link names.
    ///
    /// # Errors
    ///
    /// [`FsError::SharedInode`]; otherwise as [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::SystemTimeSpec;
    /// use std::time::{Duration, SystemTime};
    ///
    /// dir.write("old.txt", b"x")?;
    /// let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    /// dir.set_times("old.txt", None, Some(SystemTimeSpec::Absolute(long_ago)))?;
    /// assert_eq!(dir.metadata("old.txt")?.modified()?.into_std(), long_ago);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn set_times(
        &self,
        path: impl AsRef<Path>,
        accessed: Option<SystemTimeSpec>,
        modified: Option<SystemTimeSpec>,
    ) -> Result<(), FsError> {
        self.change_times(path.as_ref(), accessed, modified, FollowSymlinks::Yes)
    }

    /// [`set_times`](Self::set_times) on `path` itself, not following a
    /// final symlink.
    ///
    /// Under lockdown, setting a symlink's own times is refused by the
    /// kernel (`EPERM`): it can only be done by path, and path forms of
    /// metadata calls are what the policy refuses.
    ///
    /// # Errors
    ///
    /// As [`set_times`](Self::set_times).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use std::time::{Duration, SystemTime};
    ///
    /// dir.write("file", b"x")?;
    /// dir.symlink("file", "link")?;
    /// let then = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
    /// dir.set_symlink_times("link", None, Some(then.into()))?;
    /// assert_eq!(dir.symlink_metadata("link")?.modified()?.into_std(), then);
    /// assert_ne!(dir.metadata("file")?.modified()?.into_std(), then);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn set_symlink_times(
        &self,
        path: impl AsRef<Path>,
        accessed: Option<SystemTimeSpec>,
        modified: Option<SystemTimeSpec>,
    ) -> Result<(), FsError> {
        self.change_times(path.as_ref(), accessed, modified, FollowSymlinks::No)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn change_times(
        &self,
        path: &Path,
        accessed: Option<SystemTimeSpec>,
        modified: Option<SystemTimeSpec>,
        follow: FollowSymlinks,
    ) -> Result<(), FsError> {
        let op = FsOp::SetTimes;
        let inode = Inode::open(&self.dir, op, path, follow)?;
        inode.refuse_shared(op, path)?;
        inode.set_times(op, path, accessed, modified)
    }

    shared_dir_methods!(DirEntry);
}

/// `permissions` without the set-user-ID and set-group-ID bits.
fn without_set_id(permissions: Permissions) -> Permissions {
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        Permissions::from_mode(permissions.mode() & !SET_ID_BITS)
    }
    #[cfg(not(unix))]
    permissions
}

impl Grant for Dir {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(Self {
            dir: self.dir.reissue()?,
        })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.dir.attach_revoker(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        self.dir.visit(self, Rights::Full, inventory);
    }
}
