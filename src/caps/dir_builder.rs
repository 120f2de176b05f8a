//! `DirBuilder`: how [`Dir::create_dir_with`](super::Dir::create_dir_with)
//! creates a directory.

use super::file::SET_ID_BITS;

/// How to create a directory: whether missing parents are created too, and
/// with which permission bits — cap-std's `DirBuilder`, without set-id bits.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::DirBuilder;
/// use compartment::caps::PermissionsExt;
///
/// let mut private = DirBuilder::new();
/// private.recursive(true).mode(0o700);
/// dir.create_dir_with("cache/thumbnails", &private)?;
/// assert_eq!(dir.metadata("cache/thumbnails")?.permissions().mode() & 0o777, 0o700);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DirBuilder {
    recursive: bool,
    mode: u32,
}

impl Default for DirBuilder {
    fn default() -> Self {
        Self {
            recursive: false,
            mode: 0o777,
        }
    }
}

impl DirBuilder {
    /// One directory, mode `0o777` (less the process's umask).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// use compartment::caps::DirBuilder;
    ///
    /// let mut builder = DirBuilder::new();
    /// builder.recursive(true);
    /// dir.create_dir_with("a/b", &builder)?;
    /// assert!(dir.is_dir("a/b"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Also create missing parents (they get the same mode).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut builder = compartment::caps::DirBuilder::new();
    /// assert!(builder.recursive(true).is_recursive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recursive(&mut self, recursive: bool) -> &mut Self {
        self.recursive = recursive;
        self
    }

    /// The permission bits of the new directories (less the process's
    /// umask). Set-user-ID and set-group-ID bits are refused when the
    /// directory is created.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
    /// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
    /// let mut builder = compartment::caps::DirBuilder::new();
    /// builder.mode(0o750);
    /// dir.create_dir_with("private", &builder)?;
    /// assert!(dir.is_dir("private"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Whether missing parents are created.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = compartment::caps::DirBuilder::new();
    /// assert!(!builder.is_recursive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_recursive(&self) -> bool {
        self.recursive
    }

    pub(crate) fn set_id_mode(&self) -> Option<u32> {
        (self.mode & SET_ID_BITS != 0).then_some(self.mode)
    }

    pub(crate) fn to_cap_std(&self) -> cap_std::fs::DirBuilder {
        let mut builder = cap_std::fs::DirBuilder::new();
        builder.recursive(self.recursive);
        #[cfg(unix)]
        {
            use cap_std::fs::DirBuilderExt;
            builder.mode(self.mode);
        }
        builder
    }
}
