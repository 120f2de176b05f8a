//! What a network operation reports when it is refused or fails.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A network operation, named in [`NetError`]s.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{Net, NetOp};
/// let net = Net::new([], compartment::ambient_authority());
/// let refused = net.connect_tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80)).unwrap_err();
/// assert!(refused.to_string().contains(&NetOp::Connect.to_string()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(
    missing_docs,
    reason = "each variant names the method of the same name"
)]
pub enum NetOp {
    Connect,
    Bind,
    Accept,
    Send,
    Receive,
    Duplicate,
}

impl fmt::Display for NetOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetOp::Connect => "connect to",
            NetOp::Bind => "bind",
            NetOp::Accept => "accept on",
            NetOp::Send => "send to",
            NetOp::Receive => "receive on",
            NetOp::Duplicate => "duplicate socket for",
        })
    }
}

/// A network capability refused or failed an operation.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{Net, NetRule};
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let net = Net::new([NetRule::connect(loopback, 443..=443)], compartment::ambient_authority());
/// let refused = net.connect_tcp(SocketAddr::new(loopback, 22)).unwrap_err();
/// assert!(refused.is_refusal()); // no rule names port 22
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// No rule of the capability permits this address and port.
    #[error("cannot {op} {addr}: not granted")]
    NotGranted {
        /// The operation.
        op: NetOp,
        /// The address it was given.
        addr: SocketAddr,
    },
    /// The capability, or the one the socket came from, was revoked.
    #[error("cannot {op} {}: capability revoked", DisplayAddr(.addr))]
    Revoked {
        /// The operation.
        op: NetOp,
        /// The address, where the operation has one.
        addr: Option<SocketAddr>,
    },
    /// A rule could not be built.
    #[error("invalid network rule: {reason}")]
    InvalidRule {
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system reported an error.
    #[error("cannot {op} {}: {source}", DisplayAddr(.addr))]
    Io {
        /// The operation.
        op: NetOp,
        /// The address, where the operation has one.
        addr: Option<SocketAddr>,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

struct DisplayAddr<'a>(&'a Option<SocketAddr>);

impl fmt::Display for DisplayAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("socket"),
        }
    }
}

impl NetError {
    /// Whether the capability model refused the operation (not granted or
    /// revoked), as opposed to the operating system failing it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::connect(loopback, 443..=443)], compartment::ambient_authority());
    /// assert!(net.connect_tcp(SocketAddr::new(loopback, 22)).unwrap_err().is_refusal());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_refusal(&self) -> bool {
        matches!(self, NetError::NotGranted { .. } | NetError::Revoked { .. })
    }

    /// Whether the capability was revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// use compartment::{Grant, Revoker};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let mut net = Net::new([NetRule::connect(loopback, 1..=1)], compartment::ambient_authority());
    /// let revoker = Revoker::new();
    /// net.attach_revoker(&revoker);
    /// revoker.revoke();
    /// assert!(net.connect_tcp(SocketAddr::new(loopback, 1)).unwrap_err().is_revoked());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_revoked(&self) -> bool {
        matches!(self, NetError::Revoked { .. })
    }
}

impl From<NetError> for io::Error {
    fn from(err: NetError) -> Self {
        let kind = match &err {
            NetError::NotGranted { .. } | NetError::Revoked { .. } => {
                io::ErrorKind::PermissionDenied
            }
            NetError::InvalidRule { .. } => io::ErrorKind::InvalidInput,
            NetError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, err)
    }
}

pub(crate) fn io_error(op: NetOp, addr: SocketAddr, source: io::Error) -> NetError {
    NetError::Io {
        op,
        addr: Some(addr),
        source,
    }
}
