//! `Net`: a network capability limited to named addresses and port ranges.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cap_std::AmbientAuthority;

mod error;
mod rule;
mod socket;

pub(crate) use error::io_error;
pub use error::{NetError, NetOp};
pub use rule::{NetAccess, NetRule, Transport};
pub use socket::{TcpListener, TcpStream, UdpSocket};

use crate::capability::Capability;
use crate::grant::grant_by_clone;
#[cfg(all(feature = "process", target_os = "linux"))]
use crate::process::Broker;
use crate::revoke::Gate;

/// The rules and pools shared by every copy of one [`Net`] capability.
struct Rules {
    rules: Vec<NetRule>,
    connect: cap_std::net::Pool,
    bind: cap_std::net::Pool,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pools hold exactly `rules`, split by access.
        f.debug_struct("Rules")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// A network capability: connect and bind only where its rules say.
///
/// # What it allows
///
/// TCP connections and UDP sends to addresses and ports of its `Connect`
/// rules; TCP listeners and UDP sockets on addresses and ports of its `Bind`
/// rules. Host names are not resolved: resolving is itself network access,
/// so the granting side names addresses.
///
/// # What it denies
///
/// Every other address and port, raw and Unix sockets. Sockets it creates
/// ([`TcpStream`], [`TcpListener`], [`UdpSocket`]) are revoked with it.
///
/// # Examples
///
/// ```
/// use compartment::caps::{Net, NetRule};
///
/// let net = Net::new(
///     [NetRule::bind("127.0.0.1".parse()?, 0..=0)],
///     cap_std::ambient_authority(),
/// );
/// let listener = net.bind_tcp("127.0.0.1:0".parse()?)?;
/// assert!(net.connect_tcp(listener.local_addr()?).unwrap_err().is_refusal());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Net {
    rules: Arc<Rules>,
    gate: Gate,
    /// In a process child, which creates no socket itself: the supervisor's
    /// side, which creates them under the same rules and passes them over.
    #[cfg(all(feature = "process", target_os = "linux"))]
    broker: Option<Arc<Broker>>,
}

impl Net {
    /// A capability permitting exactly `rules`.
    ///
    /// # Ambient Authority
    ///
    /// Naming addresses grants access to them: build it on the granting
    /// side.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// // Connect to one database port on loopback, nothing else.
    /// let net = Net::new([NetRule::connect(loopback, 5432..=5432)], compartment::ambient_authority());
    /// assert!(net.connect_tcp(SocketAddr::new(loopback, 80)).unwrap_err().is_refusal());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        rules: impl IntoIterator<Item = NetRule>,
        ambient_authority: AmbientAuthority,
    ) -> Self {
        let rules: Vec<NetRule> = rules.into_iter().collect();
        let mut connect = cap_std::net::Pool::new();
        let mut bind = cap_std::net::Pool::new();
        for rule in &rules {
            let pool = match rule.access {
                NetAccess::Connect => &mut connect,
                NetAccess::Bind => &mut bind,
            };
            let end = rule.ports.end().checked_add(1);
            pool.insert_ip_net_port_range(rule.net, *rule.ports.start(), end, ambient_authority);
        }
        Self {
            rules: Arc::new(Rules {
                rules,
                connect,
                bind,
            }),
            gate: Gate::default(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            broker: None,
        }
    }

    /// The same rules in a process child, served by `broker`.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn brokered(
        rules: Vec<NetRule>,
        broker: Broker,
        ambient_authority: AmbientAuthority,
    ) -> Self {
        Self {
            broker: Some(Arc::new(broker)),
            ..Self::new(rules, ambient_authority)
        }
    }

    /// The broker serving this capability, in a process child.
    #[inline]
    fn broker(&self) -> Option<&Broker> {
        #[cfg(all(feature = "process", target_os = "linux"))]
        return self.broker.as_deref();
        #[cfg(not(all(feature = "process", target_os = "linux")))]
        None
    }

    /// The rules this capability permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::connect(loopback, 443..=443);
    /// let net = Net::new([rule.clone()], compartment::ambient_authority());
    /// assert_eq!(net.rules(), [rule]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rules(&self) -> &[NetRule] {
        &self.rules.rules
    }

    fn admit(
        &self,
        transport: Transport,
        op: NetOp,
        access: NetAccess,
        addr: SocketAddr,
    ) -> Result<(), NetError> {
        if self.gate.check().is_err() {
            return Err(NetError::Revoked {
                op,
                addr: Some(addr),
            });
        }
        if !self
            .rules
            .rules
            .iter()
            .any(|rule| rule.permits(transport, access, addr))
        {
            return Err(NetError::NotGranted { op, addr });
        }
        Ok(())
    }

    /// Opens a TCP connection to `addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
    /// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
    /// let at = listener.local_addr()?;
    /// let client = Net::new([NetRule::connect(loopback, at.port()..=at.port())], compartment::ambient_authority());
    /// let stream = client.connect_tcp(at)?;
    /// assert_eq!(stream.peer_addr()?, at);
    /// assert!(client.connect_tcp(SocketAddr::new(loopback, 1)).is_err()); // no rule for port 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::NotGranted`], [`NetError::Revoked`], [`NetError::Io`].
    pub fn connect_tcp(&self, addr: SocketAddr) -> Result<TcpStream, NetError> {
        self.connect_tcp_stream(addr, None)
            .map(|stream| TcpStream::new(stream, self.gate.clone()))
    }

    /// A TCP stream connected under the rules: created here, or by the
    /// broker of a process child.
    pub(crate) fn connect_tcp_stream(
        &self,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<cap_std::net::TcpStream, NetError> {
        self.admit(Transport::Tcp, NetOp::Connect, NetAccess::Connect, addr)?;
        if let Some(broker) = self.broker() {
            return broker.connect_tcp(addr, timeout);
        }
        match timeout {
            None => self.rules.connect.connect_tcp_stream(addr),
            Some(timeout) => self
                .rules
                .connect
                .connect_timeout_tcp_stream(&addr, timeout),
        }
        .map_err(|source| io_error(NetOp::Connect, addr, source))
    }

    /// Opens a TCP connection to `addr`, giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
    /// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
    /// let at = listener.local_addr()?;
    /// let client = Net::new([NetRule::connect(loopback, at.port()..=at.port())], compartment::ambient_authority());
    /// let stream = client.connect_tcp_timeout(at, std::time::Duration::from_secs(5))?;
    /// assert_eq!(stream.peer_addr()?, at);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect_tcp`](Self::connect_tcp); a timeout is an
    /// [`NetError::Io`] of kind `TimedOut`.
    pub fn connect_tcp_timeout(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, NetError> {
        self.connect_tcp_stream(addr, Some(timeout))
            .map(|stream| TcpStream::new(stream, self.gate.clone()))
    }

    /// Listens for TCP connections on `addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
    /// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
    /// let at = listener.local_addr()?;
    /// let client = Net::new([NetRule::connect(loopback, at.port()..=at.port())], compartment::ambient_authority());
    /// let _stream = client.connect_tcp(at)?;
    /// let (_accepted, peer) = listener.accept()?;
    /// assert_eq!(peer.ip(), loopback);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect_tcp`](Self::connect_tcp), against the `Bind` rules.
    pub fn bind_tcp(&self, addr: SocketAddr) -> Result<TcpListener, NetError> {
        self.bind_tcp_listener(addr)
            .map(|listener| TcpListener::new(listener, self.gate.clone()))
    }

    /// A TCP listener bound under the rules (see `connect_tcp_stream`).
    pub(crate) fn bind_tcp_listener(
        &self,
        addr: SocketAddr,
    ) -> Result<cap_std::net::TcpListener, NetError> {
        self.admit(Transport::Tcp, NetOp::Bind, NetAccess::Bind, addr)?;
        if let Some(broker) = self.broker() {
            return broker.bind_tcp(addr);
        }
        self.rules
            .bind
            .bind_tcp_listener(addr)
            .map_err(|source| io_error(NetOp::Bind, addr, source))
    }

    /// Binds a UDP socket on `addr`. It can send only where this capability's
    /// `Connect` rules permit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let socket = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// assert_eq!(socket.local_addr()?.ip(), loopback);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind_tcp`](Self::bind_tcp).
    pub fn bind_udp(&self, addr: SocketAddr) -> Result<UdpSocket, NetError> {
        self.bind_udp_socket(addr)
            .map(|socket| UdpSocket::new(socket, self.clone()))
    }

    /// A UDP socket bound under the rules (see `connect_tcp_stream`).
    pub(crate) fn bind_udp_socket(
        &self,
        addr: SocketAddr,
    ) -> Result<cap_std::net::UdpSocket, NetError> {
        self.admit(Transport::Udp, NetOp::Bind, NetAccess::Bind, addr)?;
        if let Some(broker) = self.broker() {
            return broker.bind_udp(addr);
        }
        self.rules
            .bind
            .bind_udp_socket(addr)
            .map_err(|source| io_error(NetOp::Bind, addr, source))
    }

    pub(crate) fn send_udp(
        &self,
        socket: &cap_std::net::UdpSocket,
        buf: &[u8],
        addr: SocketAddr,
    ) -> Result<usize, NetError> {
        self.admit(Transport::Udp, NetOp::Send, NetAccess::Connect, addr)?;
        if let Some(broker) = self.broker() {
            return broker.send_to(socket, buf, addr);
        }
        self.rules
            .connect
            .send_to_udp_socket_addr(socket, buf, addr)
            .map_err(|source| io_error(NetOp::Send, addr, source))
    }

    pub(crate) fn connect_udp(
        &self,
        socket: &cap_std::net::UdpSocket,
        addr: SocketAddr,
    ) -> Result<(), NetError> {
        self.admit(Transport::Udp, NetOp::Connect, NetAccess::Connect, addr)?;
        if let Some(broker) = self.broker() {
            return broker.connect_udp(socket, addr);
        }
        self.rules
            .connect
            .connect_udp_socket(socket, addr)
            .map_err(|source| io_error(NetOp::Connect, addr, source))
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// Without the process tier there is no broker: a type with no values, so
/// the brokered branches compile away.
#[cfg(not(all(feature = "process", target_os = "linux")))]
enum Broker {}

#[cfg(not(all(feature = "process", target_os = "linux")))]
impl Broker {
    fn connect_tcp(
        &self,
        _: SocketAddr,
        _: Option<Duration>,
    ) -> Result<cap_std::net::TcpStream, NetError> {
        match *self {}
    }

    fn bind_tcp(&self, _: SocketAddr) -> Result<cap_std::net::TcpListener, NetError> {
        match *self {}
    }

    fn bind_udp(&self, _: SocketAddr) -> Result<cap_std::net::UdpSocket, NetError> {
        match *self {}
    }

    fn send_to(
        &self,
        _: &cap_std::net::UdpSocket,
        _: &[u8],
        _: SocketAddr,
    ) -> Result<usize, NetError> {
        match *self {}
    }

    fn connect_udp(&self, _: &cap_std::net::UdpSocket, _: SocketAddr) -> Result<(), NetError> {
        match *self {}
    }
}

grant_by_clone!(Net, |net| Capability::Net {
    rules: net.rules.rules.clone(),
});
