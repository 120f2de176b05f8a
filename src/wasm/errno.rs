//! WASI preview 1 error numbers, and how the host's errors map to them.

use std::io;

use crate::caps::FsError;

/// A WASI `errno`: what a host call answers the module, 0 for success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) u16);

impl Errno {
    pub(crate) const TOOBIG: Errno = Errno(1);
    pub(crate) const ACCES: Errno = Errno(2);
    pub(crate) const AGAIN: Errno = Errno(6);
    pub(crate) const BADF: Errno = Errno(8);
    pub(crate) const BUSY: Errno = Errno(10);
    pub(crate) const CANCELED: Errno = Errno(11);
    pub(crate) const EXIST: Errno = Errno(20);
    pub(crate) const FAULT: Errno = Errno(21);
    pub(crate) const FBIG: Errno = Errno(22);
    pub(crate) const ILSEQ: Errno = Errno(25);
    pub(crate) const INTR: Errno = Errno(27);
    pub(crate) const INVAL: Errno = Errno(28);
    pub(crate) const IO: Errno = Errno(29);
    pub(crate) const ISDIR: Errno = Errno(31);
    pub(crate) const LOOP: Errno = Errno(32);
    pub(crate) const MFILE: Errno = Errno(33);
    pub(crate) const MLINK: Errno = Errno(34);
    pub(crate) const NAMETOOLONG: Errno = Errno(37);
    pub(crate) const NOENT: Errno = Errno(44);
    pub(crate) const NOMEM: Errno = Errno(48);
    pub(crate) const NOSPC: Errno = Errno(51);
    pub(crate) const NOSYS: Errno = Errno(52);
    pub(crate) const NOTDIR: Errno = Errno(54);
    pub(crate) const NOTEMPTY: Errno = Errno(55);
    pub(crate) const NOTSUP: Errno = Errno(58);
    pub(crate) const NXIO: Errno = Errno(60);
    pub(crate) const OVERFLOW: Errno = Errno(61);
    pub(crate) const PERM: Errno = Errno(63);
    pub(crate) const PIPE: Errno = Errno(64);
    pub(crate) const ROFS: Errno = Errno(69);
    pub(crate) const SPIPE: Errno = Errno(70);
    pub(crate) const TIMEDOUT: Errno = Errno(73);
    pub(crate) const TXTBSY: Errno = Errno(74);
    pub(crate) const XDEV: Errno = Errno(75);
    /// The capability does not allow it: WASI's own word for a refusal.
    pub(crate) const NOTCAPABLE: Errno = Errno(76);

    /// The value a host call returns.
    pub(crate) fn code(self) -> i32 {
        i32::from(self.0)
    }
}

/// What a host call comes to: nothing to report, or an `errno`.
pub(crate) type Answer = Result<(), Errno>;

/// The answer's code for the module.
pub(crate) fn code(answer: Answer) -> i32 {
    match answer {
        Ok(()) => 0,
        Err(errno) => errno.code(),
    }
}

impl From<&io::Error> for Errno {
    fn from(err: &io::Error) -> Self {
        if let Some(raw) = err.raw_os_error() {
            return from_raw(raw);
        }
        match err.kind() {
            io::ErrorKind::NotFound => Errno::NOENT,
            io::ErrorKind::PermissionDenied => Errno::ACCES,
            io::ErrorKind::AlreadyExists => Errno::EXIST,
            io::ErrorKind::InvalidInput => Errno::INVAL,
            io::ErrorKind::InvalidData => Errno::ILSEQ,
            io::ErrorKind::Interrupted => Errno::INTR,
            io::ErrorKind::WouldBlock => Errno::AGAIN,
            io::ErrorKind::Unsupported => Errno::NOTSUP,
            io::ErrorKind::OutOfMemory => Errno::NOMEM,
            io::ErrorKind::TimedOut => Errno::TIMEDOUT,
            io::ErrorKind::BrokenPipe => Errno::PIPE,
            _ => Errno::IO,
        }
    }
}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Self {
        Errno::from(&err)
    }
}

impl From<FsError> for Errno {
    fn from(err: FsError) -> Self {
        match &err {
            // A refusal of the capability model: a path out of the tree, a
            // revoked handle, a set-id mode, a shared inode.
            _ if err.is_refusal() => Errno::NOTCAPABLE,
            FsError::Io { source, .. } => Errno::from(source),
            _ => Errno::from(&io::Error::from(err)),
        }
    }
}

/// A host `errno` as WASI numbers it.
fn from_raw(raw: i32) -> Errno {
    use rustix::io::Errno as Host;
    match Host::from_raw_os_error(raw) {
        Host::PERM => Errno::PERM,
        Host::NOENT => Errno::NOENT,
        Host::INTR => Errno::INTR,
        Host::IO => Errno::IO,
        Host::NXIO => Errno::NXIO,
        Host::TOOBIG => Errno::TOOBIG,
        Host::BADF => Errno::BADF,
        Host::AGAIN => Errno::AGAIN,
        Host::NOMEM => Errno::NOMEM,
        Host::ACCESS => Errno::ACCES,
        Host::FAULT => Errno::FAULT,
        Host::BUSY => Errno::BUSY,
        Host::EXIST => Errno::EXIST,
        Host::XDEV => Errno::XDEV,
        Host::NOTDIR => Errno::NOTDIR,
        Host::ISDIR => Errno::ISDIR,
        Host::INVAL => Errno::INVAL,
        Host::TXTBSY => Errno::TXTBSY,
        Host::FBIG => Errno::FBIG,
        Host::NOSPC => Errno::NOSPC,
        Host::SPIPE => Errno::SPIPE,
        Host::ROFS => Errno::ROFS,
        Host::MFILE => Errno::MFILE,
        Host::MLINK => Errno::MLINK,
        Host::PIPE => Errno::PIPE,
        Host::NAMETOOLONG => Errno::NAMETOOLONG,
        Host::NOSYS => Errno::NOSYS,
        Host::NOTEMPTY => Errno::NOTEMPTY,
        Host::LOOP => Errno::LOOP,
        Host::OVERFLOW => Errno::OVERFLOW,
        Host::OPNOTSUPP => Errno::NOTSUP,
        Host::TIMEDOUT => Errno::TIMEDOUT,
        Host::CANCELED => Errno::CANCELED,
        _ => Errno::IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_their_meaning() {
        let missing = io::Error::from_raw_os_error(2);
        assert_eq!(Errno::from(&missing), Errno::NOENT);
        assert_eq!(Errno::from(&io::Error::from_raw_os_error(17)), Errno::EXIST);
        assert_eq!(
            Errno::from(&io::Error::from(io::ErrorKind::NotFound)),
            Errno::NOENT
        );
        assert_eq!(Errno::from(&io::Error::from_raw_os_error(4095)), Errno::IO);
    }
}
