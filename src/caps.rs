//! Capability types: each is an unforgeable handle that allows one kind of
//! thing and documents what it denies.
//!
//! | capability | allows | attenuations |
//! |---|---|---|
//! | [`Dir`] | everything inside one directory tree | [`Dir::open_dir`] (narrow), [`Dir::read_only`] (weaken) |
//! | [`ReadOnlyDir`] | reading inside one directory tree | [`ReadOnlyDir::open_dir`] |
//! | [`File`], [`ReadOnlyFile`] | one open file, as opened | — |
//! | [`Net`] | connecting and binding where its [`NetRule`]s say | — |
//! | [`MonotonicClock`], [`SystemClock`] | reading the time | manual and fixed clocks |
//! | [`Random`] | random bytes | seeded source |
//! | [`Env`] | the named environment variables, as snapshotted | — |
//!
//! Channel endpoints are capabilities too; they live in
//! [`channel`](crate::channel).
//!
//! Every type here can be made revocable ([`Grant::revocable`](crate::Grant::revocable));
//! none exposes an operating-system descriptor. The constructors that turn
//! ambient authority into a capability take cap-std's
//! [`AmbientAuthority`](cap_std::AmbientAuthority) token and say so under
//! "Ambient Authority".

mod clock;
mod dir;
mod dir_builder;
mod entries;
mod env;
mod file;
mod fs_error;
mod guarded_dir;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod inode;
mod metadata_spec;
mod net;
mod random;
mod read_only_dir;
mod shared_dir_methods;

pub use clock::{ClockControl, MonotonicClock, SystemClock};
pub use dir::Dir;
pub use dir_builder::DirBuilder;
pub use entries::{DirEntry, Entries, ListedEntry, ReadOnlyDirEntry};
pub use env::{Env, EnvError};
pub use file::{File, OpenOptions, ReadOnlyFile};
pub use fs_error::{FsError, FsOp, InvalidPath};
pub use metadata_spec::{AccessModes, AccessType, FollowSymlinks, SystemTimeSpec};
pub use net::{
    Net, NetAccess, NetError, NetOp, NetRule, TcpListener, TcpStream, Transport, UdpSocket,
};
pub use random::{Random, RandomError, RandomSource};
pub use read_only_dir::ReadOnlyDir;

pub use crate::capability::{Capability, FileRights, Rights, short_type_name};
/// cap-std's Unix view of [`Permissions`] (`mode`, `from_mode`).
#[cfg(unix)]
pub use cap_std::fs::PermissionsExt;
pub use cap_std::fs::{FileType, Metadata, Permissions};
