//! What to set or ask about a file's metadata: times, access checks, and
//! whether a final symlink is followed — the shapes cap-std's extensions
//! use, with `std`'s time type.

use std::time::SystemTime;

/// A time to set on a file: now (by the kernel's clock) or a given time.
///
/// The same choice as cap-std's `SystemTimeSpec`, with `std`'s
/// [`SystemTime`].
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use std::time::{Duration, UNIX_EPOCH};
/// use compartment::caps::SystemTimeSpec;
/// # dir.write("notes.txt", "hi")?;
/// let then = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
/// dir.set_times("notes.txt", Some(SystemTimeSpec::SymbolicNow), Some(then.into()))?;
/// assert_eq!(dir.metadata("notes.txt")?.modified()?.into_std(), then);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemTimeSpec {
    /// The current time, read by the kernel when it sets it.
    SymbolicNow,
    /// This time.
    Absolute(SystemTime),
}

impl From<SystemTime> for SystemTimeSpec {
    fn from(time: SystemTime) -> Self {
        SystemTimeSpec::Absolute(time)
    }
}

/// Which accesses [`Dir::access`](super::Dir::access) asks about.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::{AccessModes, AccessType};
/// # dir.write("notes.txt", "hi")?;
/// dir.access("notes.txt", AccessType::Access(AccessModes::READ | AccessModes::WRITE))?;
/// assert!(dir.access("missing", AccessType::Exists).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessType {
    /// Whether the file exists (inside the directory).
    Exists,
    /// Whether the calling process may read, write or execute it, as the
    /// operating system sees its permission bits.
    Access(AccessModes),
}

/// A set of accesses for [`AccessType::Access`].
///
/// # Examples
///
/// ```
/// use compartment::caps::AccessModes;
/// let both = AccessModes::READ | AccessModes::WRITE;
/// assert!(both.contains(AccessModes::READ));
/// assert!(!both.contains(AccessModes::EXECUTE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessModes {
    read: bool,
    write: bool,
    execute: bool,
}

impl AccessModes {
    /// Reading.
    pub const READ: Self = Self {
        read: true,
        write: false,
        execute: false,
    };
    /// Writing.
    pub const WRITE: Self = Self {
        read: false,
        write: true,
        execute: false,
    };
    /// Executing (searching, for a directory).
    pub const EXECUTE: Self = Self {
        read: false,
        write: false,
        execute: true,
    };

    /// Whether every access in `other` is among these.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::AccessModes;
    /// let read_write = AccessModes::READ | AccessModes::WRITE;
    /// assert!(read_write.contains(AccessModes::READ));
    /// assert!(!read_write.contains(AccessModes::READ | AccessModes::EXECUTE));
    /// ```
    pub fn contains(self, other: Self) -> bool {
        (self.read || !other.read)
            && (self.write || !other.write)
            && (self.execute || !other.execute)
    }
}

impl std::ops::BitOr for AccessModes {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self {
            read: self.read || other.read,
            write: self.write || other.write,
            execute: self.execute || other.execute,
        }
    }
}

/// Whether the last component of a path is followed when it is a symlink.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::caps::{FollowSymlinks, OpenOptions};
/// # dir.write("notes.txt", "hi")?;
/// # dir.symlink("notes.txt", "latest")?;
/// let mut own = OpenOptions::new();
/// own.read(true).follow(FollowSymlinks::No);
/// assert!(dir.open_with("latest", &own).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FollowSymlinks {
    /// Follow it (inside the directory only).
    #[default]
    Yes,
    /// Act on the symlink itself.
    No,
}

impl FollowSymlinks {
    pub(crate) fn to_cap_std(self) -> cap_fs_ext::FollowSymlinks {
        match self {
            FollowSymlinks::Yes => cap_fs_ext::FollowSymlinks::Yes,
            FollowSymlinks::No => cap_fs_ext::FollowSymlinks::No,
        }
    }
}
