//! `Portable`: how a grant crosses into a process child.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bridge::{ChildPump, ParentPump};
use crate::caps::{Dir, Env, File, MonotonicClock, Random, ReadOnlyDir, ReadOnlyFile, SystemClock};
use crate::grant::Grant;
use crate::revoke::Gate;

/// A grant that can be handed to a process child: every part of it knows
/// how to cross the process boundary.
///
/// - Directories and files travel as descriptors (`SCM_RIGHTS`); the child's
///   Landlock ruleset enforces the rights of each, as in the thread tier.
/// - Channel endpoints are bridged over a socket, their messages encoded
///   with postcard (`T: Serialize + DeserializeOwned`); back-pressure,
///   order, the message in flight and its redelivery are kept.
/// - Real clocks and the OS random source are created anew in the child;
///   [`Env`] and plain data are copied. A manual clock or a seeded random
///   source cannot cross (their state is shared with the granting side):
///   [`PackError::NotPortable`].
/// - Request/reply channels (`Sender<Request<Q, A>>`,
///   `Receiver<Request<Q, A>>`) cross with their bodies and answers encoded;
///   each reply endpoint stays with its caller until the answer comes back.
/// - [`Net`](crate::caps::Net) is served by a broker on the granting side,
///   which checks the same rules and passes connected or bound sockets
///   over; the child creates, connects and binds none itself.
///
/// Derive it with `#[derive(Grant, Portable)]`; fields marked
/// `#[grant(data)]` are copied with serde.
pub trait Portable: Grant {
    /// Writes what the child needs to rebuild this part of the grant.
    ///
    /// # Errors
    ///
    /// [`PackError`] when a part cannot cross.
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError>;

    /// Rebuilds this part of the grant in the child, in the order
    /// [`pack`](Self::pack) wrote it.
    ///
    /// # Errors
    ///
    /// [`PackError::Malformed`] when what arrived does not fit.
    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError>;
}

/// Why a grant could not cross into a process child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// This capability's state lives in the granting process.
    #[error("a {capability} cannot be handed to a process child: {reason}")]
    NotPortable {
        /// Which capability.
        capability: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The capability was revoked before the child started.
    #[error("a revoked {capability} cannot be handed to a process child")]
    Revoked {
        /// Which capability.
        capability: &'static str,
    },
    /// Plain data could not be encoded.
    #[error("the grant's data could not be encoded: {0}")]
    Encode(String),
    /// What arrived in the child does not match the grant's type.
    #[error("the grant arrived malformed: {0}")]
    Malformed(String),
    /// A descriptor or socket could not be made.
    #[error("could not prepare the grant for a process child: {0}")]
    Io(#[from] std::io::Error),
}

/// The granting side of a crossing: encoded data, descriptors, channel
/// bridges and the revocation gates of what crosses.
#[derive(Default)]
pub struct Packing {
    pub(crate) bytes: Vec<u8>,
    pub(crate) descriptors: Vec<OwnedFd>,
    pub(crate) pumps: Vec<Box<dyn ParentPump>>,
    pub(crate) gates: Vec<(&'static str, Gate)>,
}

impl std::fmt::Debug for Packing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packing")
            .field("bytes", &self.bytes.len())
            .field("descriptors", &self.descriptors.len())
            .field("bridges", &self.pumps.len())
            .finish()
    }
}

impl Packing {
    /// Appends plain data, encoded with postcard.
    ///
    /// # Errors
    ///
    /// [`PackError::Encode`].
    pub fn data<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PackError> {
        let encoded =
            postcard::to_stdvec(value).map_err(|err| PackError::Encode(err.to_string()))?;
        self.bytes.extend_from_slice(&encoded);
        Ok(())
    }

    /// Checks that a capability is not revoked and remembers its gate: a
    /// revocation while the child runs kills the child.
    pub(crate) fn gate(&mut self, capability: &'static str, gate: &Gate) -> Result<(), PackError> {
        gate.check()
            .map_err(|_| PackError::Revoked { capability })?;
        if gate.is_revocable() {
            self.gates.push((capability, gate.clone()));
        }
        Ok(())
    }

    /// Appends a copy of a descriptor.
    pub(crate) fn descriptor(&mut self, fd: impl AsFd) -> Result<(), PackError> {
        self.descriptors.push(fd.as_fd().try_clone_to_owned()?);
        Ok(())
    }

    /// Appends a bridge: its socket's child end travels as a descriptor.
    pub(crate) fn bridge(&mut self, child_end: OwnedFd, pump: Box<dyn ParentPump>) {
        self.descriptors.push(child_end);
        self.pumps.push(pump);
    }
}

/// The child's side of a crossing.
pub struct Unpacking {
    bytes: Vec<u8>,
    read: usize,
    descriptors: VecDeque<OwnedFd>,
    pub(crate) pumps: Vec<ChildPump>,
}

impl std::fmt::Debug for Unpacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacking")
            .field("remaining", &(self.bytes.len() - self.read))
            .field("descriptors", &self.descriptors.len())
            .finish()
    }
}

impl Unpacking {
    pub(crate) fn new(bytes: Vec<u8>, descriptors: Vec<OwnedFd>) -> Self {
        Self {
            bytes,
            read: 0,
            descriptors: descriptors.into(),
            pumps: Vec::new(),
        }
    }

    /// Reads plain data written by [`Packing::data`].
    ///
    /// # Errors
    ///
    /// [`PackError::Malformed`].
    pub fn data<T: DeserializeOwned>(&mut self) -> Result<T, PackError> {
        let (value, rest) = postcard::take_from_bytes::<T>(&self.bytes[self.read..])
            .map_err(|err| PackError::Malformed(err.to_string()))?;
        self.read = self.bytes.len() - rest.len();
        Ok(value)
    }

    pub(crate) fn descriptor(&mut self) -> Result<OwnedFd, PackError> {
        self.descriptors.pop_front().ok_or_else(|| {
            PackError::Malformed("fewer descriptors than the grant holds".to_owned())
        })
    }

    /// Whether everything that arrived was used.
    pub(crate) fn finished(&self) -> Result<(), PackError> {
        if self.read == self.bytes.len() && self.descriptors.is_empty() {
            Ok(())
        } else {
            Err(PackError::Malformed(
                "more arrived than the grant's type holds".to_owned(),
            ))
        }
    }
}

/// The authority to re-create, in a process child, a clock or random
/// source its grant held on the granting side: the grant already carried
/// that authority; only the handle is new.
#[allow(
    clippy::disallowed_methods,
    reason = "re-creates in the child a capability the grant already held"
)]
pub(crate) fn granted_again() -> cap_std::AmbientAuthority {
    cap_std::ambient_authority()
}

/// Plain data crosses as itself.
macro_rules! portable_data {
    ($($ty:ty),* $(,)?) => {$(
        impl Portable for $ty {
            fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
                packing.data(self)
            }
            fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
                unpacking.data()
            }
        }
    )*};
}

portable_data!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    std::path::PathBuf,
    std::time::Duration,
    std::time::SystemTime,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    std::net::SocketAddrV4,
    std::net::SocketAddrV6,
);

impl<T: Portable> Portable for Option<T> {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.data(&self.is_some())?;
        match self {
            Some(value) => value.pack(packing),
            None => Ok(()),
        }
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        if unpacking.data::<bool>()? {
            T::unpack(unpacking).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<T: Portable> Portable for Box<T> {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        (**self).pack(packing)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        T::unpack(unpacking).map(Box::new)
    }
}

impl<T: Portable> Portable for Vec<T> {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.data(&self.len())?;
        self.iter().try_for_each(|item| item.pack(packing))
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let length: usize = unpacking.data()?;
        (0..length).map(|_| T::unpack(unpacking)).collect()
    }
}

macro_rules! portable_tuple {
    ($($name:ident),+) => {
        impl<$($name: Portable),+> Portable for ($($name,)+) {
            #[allow(non_snake_case, reason = "the bindings are named after their types")]
            fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
                let ($($name,)+) = self;
                $($name.pack(packing)?;)+
                Ok(())
            }
            fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
                Ok(($($name::unpack(unpacking)?,)+))
            }
        }
    };
}

portable_tuple!(A);
portable_tuple!(A, B);
portable_tuple!(A, B, C);
portable_tuple!(A, B, C, D);
portable_tuple!(A, B, C, D, E);
portable_tuple!(A, B, C, D, E, F);

impl Portable for Dir {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("Dir", &self.dir.gate)?;
        packing.descriptor(&self.dir.inner)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let fd = unpacking.descriptor()?;
        Ok(Dir::from_cap_std(cap_std::fs::Dir::from_std_file(
            fd.into(),
        )))
    }
}

impl Portable for ReadOnlyDir {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("ReadOnlyDir", &self.dir.gate)?;
        packing.descriptor(&self.dir.inner)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let fd = unpacking.descriptor()?;
        Ok(Dir::from_cap_std(cap_std::fs::Dir::from_std_file(fd.into())).into_read_only())
    }
}

impl Portable for File {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("File", &self.file.gate)?;
        packing.descriptor(&self.file.inner)?;
        packing.data(&(self.rights.read, self.rights.write, &self.file.path))
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let fd = unpacking.descriptor()?;
        let (read, write, path): (bool, bool, std::path::PathBuf) = unpacking.data()?;
        let rights = crate::capability::FileRights { read, write };
        Ok(File::new(
            cap_std::fs::File::from_std(fd.into()),
            Gate::default(),
            rights,
            path,
        ))
    }
}

impl Portable for ReadOnlyFile {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("ReadOnlyFile", &self.file.gate)?;
        packing.descriptor(&self.file.inner)?;
        packing.data(&self.file.path)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let fd = unpacking.descriptor()?;
        let path: std::path::PathBuf = unpacking.data()?;
        Ok(ReadOnlyFile::new(
            cap_std::fs::File::from_std(fd.into()),
            Gate::default(),
            path,
        ))
    }
}

impl Portable for Env {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("Env", &self.gate)?;
        packing.data(&*self.vars)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        Ok(Env {
            vars: Arc::new(unpacking.data()?),
            gate: Gate::default(),
        })
    }
}

impl Portable for MonotonicClock {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("MonotonicClock", &self.gate)?;
        if self.is_manual() {
            return Err(PackError::NotPortable {
                capability: "manual MonotonicClock",
                reason: "its time is moved by a ClockControl in the granting process",
            });
        }
        Ok(())
    }

    fn unpack(_: &mut Unpacking) -> Result<Self, PackError> {
        Ok(MonotonicClock::new(granted_again()))
    }
}

impl Portable for SystemClock {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("SystemClock", &self.gate)?;
        packing.data(&self.fixed)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        Ok(match unpacking.data::<Option<std::time::SystemTime>>()? {
            Some(at) => SystemClock::fixed(at),
            None => SystemClock::new(granted_again()),
        })
    }
}

impl Portable for Random {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("Random", &self.gate)?;
        if self.is_seeded() {
            return Err(PackError::NotPortable {
                capability: "seeded Random",
                reason: "its one stream is shared with the granting process",
            });
        }
        Ok(())
    }

    fn unpack(_: &mut Unpacking) -> Result<Self, PackError> {
        Ok(Random::os(granted_again()))
    }
}
