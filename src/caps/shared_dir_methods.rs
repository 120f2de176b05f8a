//! The read-side methods that [`Dir`](super::Dir) and
//! [`ReadOnlyDir`](super::ReadOnlyDir) have in common, written once.

/// Expands to the read-side inherent methods of a directory capability
/// whose `GuardedDir` lives in the field `dir`; `$entry` is the kind of
/// entry its listings yield.
macro_rules! shared_dir_methods {
    ($entry:ty) => {
        /// Reads a whole file.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert_eq!(dir.read("notes.txt")?, b"hello");
        /// assert!(dir.read("/etc/passwd").is_err()); // absolute: outside
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// [`FsError::Escape`] for paths that lead outside,
        /// [`FsError::InvalidPath`], [`FsError::Revoked`], [`FsError::Io`].
        pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>, FsError> {
            let path = path.as_ref();
            self.dir.run(FsOp::Read, path, |d| d.read(path))
        }

        /// Reads a whole file as UTF-8.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert_eq!(dir.read_to_string("notes.txt")?, "hello");
        /// assert!(dir.read_to_string("../notes.txt").is_err()); // climbs out
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read); invalid UTF-8 is an [`FsError::Io`] of
        /// kind `InvalidData`.
        pub fn read_to_string(&self, path: impl AsRef<Path>) -> Result<String, FsError> {
            let path = path.as_ref();
            self.dir.run(FsOp::Read, path, |d| d.read_to_string(path))
        }

        /// Lists this directory.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// let names: Vec<std::ffi::OsString> = dir
        ///     .entries()?
        ///     .map(|entry| entry.map(|e| e.file_name()))
        ///     .collect::<Result<_, _>>()?;
        /// assert_eq!(names, ["notes.txt"]);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// [`FsError::Revoked`], [`FsError::Io`].
        pub fn entries(&self) -> Result<Entries<$entry>, FsError> {
            self.dir.entries(Path::new("."))
        }

        /// Lists a subdirectory.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.create_dir("logs")?;
        /// # dir.write("logs/today.log", "up")?;
        /// let count = dir.read_dir("logs")?.count();
        /// assert_eq!(count, 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Entries<$entry>, FsError> {
            self.dir.entries(path.as_ref())
        }

        /// Metadata of `path`, following symlinks (inside the directory only).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert_eq!(dir.metadata("notes.txt")?.len(), 5);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        pub fn metadata(&self, path: impl AsRef<Path>) -> Result<Metadata, FsError> {
            let path = path.as_ref();
            self.dir.run(FsOp::Metadata, path, |d| d.metadata(path))
        }

        /// Metadata of `path` itself, not following a final symlink.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// # dir.symlink("notes.txt", "latest")?;
        /// assert!(dir.symlink_metadata("latest")?.file_type().is_symlink());
        /// assert!(dir.metadata("latest")?.is_file()); // followed, inside
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> Result<Metadata, FsError> {
            let path = path.as_ref();
            self.dir
                .run(FsOp::SymlinkMetadata, path, |d| d.symlink_metadata(path))
        }

        /// Metadata of this directory.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// assert!(dir.dir_metadata()?.is_dir());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// [`FsError::Revoked`], [`FsError::Io`].
        pub fn dir_metadata(&self) -> Result<Metadata, FsError> {
            self.dir
                .run(FsOp::Metadata, Path::new("."), |d| d.dir_metadata())
        }

        /// The target a symlink stores, refused when it is absolute, as in
        /// cap-std: code that hands an absolute target to `std::fs` would act
        /// on a real host path, and the text itself tells where the host
        /// keeps things. A relative target is returned as written.
        ///
        /// # Errors
        ///
        /// [`FsError::Escape`] for an absolute target; otherwise as
        /// [`read`](Self::read).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// dir.write("data.txt", b"x")?;
        /// dir.symlink("data.txt", "latest")?;
        /// assert_eq!(dir.read_link("latest")?, std::path::Path::new("data.txt"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn read_link(&self, path: impl AsRef<Path>) -> Result<PathBuf, FsError> {
            let path = path.as_ref();
            self.dir.run(FsOp::ReadLink, path, |d| d.read_link(path))
        }

        /// The target a symlink stores, as written, absolute or not: the
        /// text alone, which no capability follows out of the directory.
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// // Planted by the host: an absolute symlink.
        /// # tmp.symlink_contents("/srv/shared/config", "shared")?;
        /// assert_eq!(
        ///     dir.read_link_contents("shared")?,
        ///     std::path::Path::new("/srv/shared/config")
        /// );
        /// assert!(dir.read_link("shared").is_err());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn read_link_contents(&self, path: impl AsRef<Path>) -> Result<PathBuf, FsError> {
            let path = path.as_ref();
            self.dir
                .run(FsOp::ReadLink, path, |d| d.read_link_contents(path))
        }

        /// The canonical form of `path`, relative to this directory, with
        /// symlinks resolved.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.create_dir("logs")?;
        /// assert_eq!(dir.canonicalize("logs/../logs")?, std::path::Path::new("logs"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        pub fn canonicalize(&self, path: impl AsRef<Path>) -> Result<PathBuf, FsError> {
            let path = path.as_ref();
            self.dir
                .run(FsOp::Canonicalize, path, |d| d.canonicalize(path))
        }

        /// Whether `path` exists inside the directory.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert!(dir.try_exists("notes.txt")?);
        /// assert!(!dir.try_exists("missing.txt")?);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read); a path that leads outside is an error, not
        /// `false`.
        pub fn try_exists(&self, path: impl AsRef<Path>) -> Result<bool, FsError> {
            self.dir.try_exists(path.as_ref())
        }

        /// Narrows to a subdirectory like `open_dir`, refusing one reached
        /// through a final symlink (symlinks earlier in the path are
        /// followed inside the directory, as cap-std does).
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read); a final symlink is an [`FsError::Io`]
        /// (`ELOOP`, or `ENOTDIR`).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// dir.create_dir("uploads")?;
        /// dir.symlink("uploads", "incoming")?;
        /// assert!(dir.open_dir_nofollow("uploads").is_ok());
        /// assert!(dir.open_dir_nofollow("incoming").is_err());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[cfg(any(target_os = "linux", target_os = "android"))]
        pub fn open_dir_nofollow(&self, path: impl AsRef<Path>) -> Result<Self, FsError> {
            Ok(Self {
                dir: self.dir.open_dir_nofollow(path.as_ref())?,
            })
        }

        /// Whether `path` exists inside the directory
        /// ([`AccessType::Exists`]), or whether this process may read,
        /// write or execute it as its permission bits say
        /// ([`AccessType::Access`]). A read-only directory answers that
        /// nothing may be written. The check goes through a descriptor
        /// opened beneath the directory, so a symlink out is an escape, not
        /// an answer about an outside file.
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read); an access not granted is an
        /// [`FsError::Io`] of kind `PermissionDenied`.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// use compartment::caps::{AccessModes, AccessType};
        ///
        /// dir.write("report.txt", b"x")?;
        /// dir.access("report.txt", AccessType::Exists)?;
        /// dir.access("report.txt", AccessType::Access(AccessModes::READ))?;
        /// assert!(dir.access("missing.txt", AccessType::Exists).is_err());
        /// assert!(dir.read_only()?.access("report.txt", AccessType::Access(AccessModes::WRITE)).is_err());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[cfg(any(target_os = "linux", target_os = "android"))]
        pub fn access(&self, path: impl AsRef<Path>, access: AccessType) -> Result<(), FsError> {
            self.dir.access(path.as_ref(), access, Self::WRITABLE)
        }

        /// Whether `path` exists inside the directory; `false` on any error.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert!(dir.exists("notes.txt"));
        /// assert!(!dir.exists("/etc/passwd")); // outside: never "exists"
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn exists(&self, path: impl AsRef<Path>) -> bool {
            self.try_exists(path).unwrap_or(false)
        }

        /// Whether `path` is a regular file (following symlinks inside).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert!(dir.is_file("notes.txt"));
        /// assert!(!dir.is_file("."));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_file(&self, path: impl AsRef<Path>) -> bool {
            self.metadata(path).is_ok_and(|m| m.is_file())
        }

        /// Whether `path` is a directory (following symlinks inside).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// assert!(dir.is_dir("."));
        /// assert!(!dir.is_dir("notes.txt"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_dir(&self, path: impl AsRef<Path>) -> bool {
            self.metadata(path).is_ok_and(|m| m.is_dir())
        }

        /// A second handle on the same directory, with the same rights and
        /// revocation.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
        /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
        /// # dir.write("notes.txt", "hello")?;
        /// let copy = dir.try_clone()?;
        /// assert_eq!(copy.read("notes.txt")?, b"hello");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// [`FsError::Revoked`], or [`FsError::Io`] when the descriptor cannot
        /// be duplicated.
        pub fn try_clone(&self) -> Result<Self, FsError> {
            Ok(Self {
                dir: self.dir.duplicate()?,
            })
        }
    };
}

pub(crate) use shared_dir_methods;
