//! `ReadOnlyDir`: a directory that may be read and listed, nothing else.

use std::path::{Path, PathBuf};

use cap_std::AmbientAuthority;
use cap_std::fs::Metadata;

use super::entries::{Entries, ReadOnlyDirEntry};
use super::file::ReadOnlyFile;
use super::fs_error::{FsError, FsOp};
use super::guarded_dir::GuardedDir;
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::metadata_spec::AccessType;
use super::shared_dir_methods::shared_dir_methods;
use crate::capability::Rights;
use crate::grant::{Grant, Inventory, ReissueError};
use crate::revoke::Revoker;

/// A read-only directory capability.
///
/// # What it allows
///
/// Opening files for reading ([`ReadOnlyFile`]), reading, listing, reading
/// metadata and symlink targets, and narrowing to a subdirectory, which is
/// read-only too.
///
/// # What it denies
///
/// Everything that changes the tree or a file: it has no method to create,
/// write, truncate, remove, rename, link, symlink or change permissions, and
/// files opened through it are opened read-only by the OS. Like every
/// directory capability it refuses paths that lead outside it (absolute
/// paths, `..` above it, symlinks pointing out). It never exposes its
/// descriptor, so it cannot be upgraded to a [`Dir`](super::Dir).
///
/// ```compile_fail
/// # fn f(dir: compartment::caps::ReadOnlyDir) {
/// dir.write("x", b"no"); // error: no method named `write`
/// # }
/// ```
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let full = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// # full.create_dir("photos")?;
/// # full.write("photos/cat.jpg", b"meow")?;
/// let originals = full.read_only()?;
/// assert_eq!(originals.read("photos/cat.jpg")?, b"meow");
///
/// let photos = originals.open_dir("photos")?; // still read-only
/// assert!(photos.open_dir("..").is_err()); // cannot climb out
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadOnlyDir {
    pub(crate) dir: GuardedDir,
}

impl ReadOnlyDir {
    /// Nothing may be written through it, whatever the mode bits say.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const WRITABLE: bool = false;

    /// Opens a directory of the host filesystem, read-only.
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
    /// use compartment::caps::ReadOnlyDir;
    /// # let path = std::env::temp_dir().join(format!("compartment-doc-ro-{}", std::process::id()));
    /// # std::fs::create_dir_all(&path)?;
    /// # std::fs::write(path.join("config.toml"), "port = 8080")?;
    /// // In `main`, the granting side:
    /// let config = ReadOnlyDir::open_ambient_dir(&path, compartment::ambient_authority())?;
    /// assert_eq!(config.read_to_string("config.toml")?, "port = 8080");
    /// # std::fs::remove_dir_all(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_ambient_dir(
        path: impl AsRef<Path>,
        ambient_authority: AmbientAuthority,
    ) -> Result<Self, FsError> {
        GuardedDir::open_ambient_dir(path.as_ref(), ambient_authority).map(|dir| Self { dir })
    }

    /// Wraps a cap-std directory handle, keeping only read rights.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::ReadOnlyDir;
    /// let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// tmp.write("notes.txt", "hello")?;
    /// let notes = ReadOnlyDir::from_cap_std(tmp.try_clone()?);
    /// assert_eq!(notes.read("notes.txt")?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_cap_std(dir: cap_std::fs::Dir) -> Self {
        Self {
            dir: GuardedDir::new(dir),
        }
    }

    /// Opens a file for reading.
    ///
    /// # Errors
    ///
    /// [`FsError::Escape`] for paths that lead outside,
    /// [`FsError::InvalidPath`], [`FsError::Revoked`], [`FsError::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.write("notes.txt", "hello")?;
    /// let mut text = String::new();
    /// dir.read_only()?.open("notes.txt")?.read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// assert!(dir.read_only()?.open("../outside.txt").unwrap_err().is_refusal());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> Result<ReadOnlyFile, FsError> {
        let path = path.as_ref();
        let file = self.dir.run(FsOp::Open, path, |d| d.open(path))?;
        Ok(ReadOnlyFile::new(
            file,
            self.dir.gate.clone(),
            path.to_owned(),
        ))
    }

    /// Opens a file for reading with the given options: whether to follow
    /// a final symlink, custom flags such as `O_NONBLOCK` (so that opening
    /// a fifo does not wait for a writer). Options that would write,
    /// append, create or truncate are refused with `InvalidInput`.
    ///
    /// Crate-internal on purpose: the public type offers no `open_with`, so
    /// that "a read-only directory cannot open for writing" stays a compile
    /// error (`tests/ui/read_only_dir_has_no_write_methods.rs`), not a
    /// runtime check.
    #[cfg(feature = "wasm")]
    pub(crate) fn open_for_reading_with(
        &self,
        path: impl AsRef<Path>,
        options: &super::OpenOptions,
    ) -> Result<ReadOnlyFile, FsError> {
        let path = path.as_ref();
        options.check(path)?;
        if options.changes() {
            return Err(FsError::from_io(
                FsOp::Open,
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a read-only directory opens files for reading only",
                ),
            ));
        }
        let mut reading = options.to_cap_std();
        reading.read(true);
        let file = self
            .dir
            .run(FsOp::Open, path, |d| d.open_with(path, &reading))?;
        Ok(ReadOnlyFile::new(
            file,
            self.dir.gate.clone(),
            path.to_owned(),
        ))
    }

    /// Narrows to a subdirectory, keeping read-only rights and revocation.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// dir.create_dir("photos")?;
    /// dir.write("photos/cat.jpg", b"meow")?;
    /// let photos = dir.read_only()?.open_dir("photos")?;
    /// assert_eq!(photos.read("cat.jpg")?, b"meow");
    /// assert!(photos.open_dir("..").unwrap_err().is_refusal()); // no way back up
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<ReadOnlyDir, FsError> {
        Ok(Self {
            dir: self.dir.open_dir(path.as_ref())?,
        })
    }

    shared_dir_methods!(ReadOnlyDirEntry);
}

impl Grant for ReadOnlyDir {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(Self {
            dir: self.dir.reissue()?,
        })
    }

    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.dir.attach_revoker(revoker);
    }

    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        self.dir.visit(self, Rights::ReadOnly, inventory);
    }
}

#[cfg(all(test, feature = "wasm"))]
mod tests {
    use super::*;
    use crate::caps::{Dir, FollowSymlinks, OpenOptions};

    #[allow(
        clippy::disallowed_methods,
        reason = "the test is the granting side of its scratch directory"
    )]
    fn notes() -> (cap_tempfile::TempDir, ReadOnlyDir) {
        let tmp = cap_tempfile::tempdir(cap_std::ambient_authority()).unwrap();
        let full = Dir::from_cap_std(tmp.try_clone().unwrap());
        full.write("notes.txt", "notes").unwrap();
        full.symlink("notes.txt", "latest").unwrap();
        (tmp, full.into_read_only())
    }

    #[test]
    fn opening_for_reading_honours_the_symlink_choice() {
        let (_tmp, dir) = notes();
        let mut own = OpenOptions::new();
        own.read(true).follow(FollowSymlinks::No);
        assert!(dir.open_for_reading_with("notes.txt", &own).is_ok());
        assert!(dir.open_for_reading_with("latest", &own).is_err());
    }

    #[test]
    fn options_that_change_the_tree_are_refused() {
        let (_tmp, dir) = notes();
        let mut writes = Vec::new();
        let changing: [fn(&mut OpenOptions) -> &mut OpenOptions; 5] = [
            |o| o.write(true),
            |o| o.append(true),
            |o| o.write(true).truncate(true),
            |o| o.write(true).create(true),
            |o| o.write(true).create_new(true),
        ];
        for set in changing {
            let mut options = OpenOptions::new();
            set(&mut options);
            writes.push(dir.open_for_reading_with("fresh", &options).is_err());
            writes.push(dir.open_for_reading_with("notes.txt", &options).is_err());
        }
        assert!(writes.iter().all(|refused| *refused));
        assert!(!dir.exists("fresh"));
        assert_eq!(dir.read_to_string("notes.txt").unwrap(), "notes");
    }
}
