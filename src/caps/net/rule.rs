//! A network rule: which transport, access, addresses and ports a
//! [`Net`](super::Net) capability permits. Plain data, named in the
//! capability vocabulary.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use ipnet::IpNet;

use super::NetError;

/// What a [`NetRule`] permits.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{NetAccess, NetRule, Transport};
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let rule = NetRule::bind(loopback, 8000..=8099);
/// assert_eq!(rule.access(), NetAccess::Bind);
/// assert!(rule.permits(Transport::Tcp, NetAccess::Bind, SocketAddr::new(loopback, 8080)));
/// assert!(!rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 8080)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetAccess {
    /// Outgoing: TCP connect, UDP connect and send.
    Connect,
    /// Listening: TCP listen, UDP bind.
    Bind,
}

impl fmt::Display for NetAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetAccess::Connect => "connect",
            NetAccess::Bind => "bind",
        })
    }
}

/// The transport a [`NetRule`] permits.
///
/// Under lockdown the kernel lets a component create sockets only of the
/// transports its rules name: TCP rules allow TCP sockets (whose ports
/// Landlock checks too), UDP rules allow UDP sockets.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{NetAccess, NetRule, Transport};
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let rule = NetRule::connect(loopback, 53..=53).udp();
/// assert_eq!(rule.transport(), Transport::Udp);
/// assert!(!rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 53)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// TCP streams (the default).
    #[default]
    Tcp,
    /// UDP datagrams.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// One permission of a [`Net`](super::Net) capability: a transport, an access kind, an
/// address or network, and an inclusive port range.
///
/// # Examples
///
/// ```
/// use compartment::caps::{NetAccess, NetRule, Transport};
/// let api = NetRule::connect("127.0.0.1".parse()?, 8000..=8099);
/// assert_eq!(api.to_string(), "tcp connect 127.0.0.1/32 ports 8000-8099");
///
/// let lan = NetRule::connect_net("10.0.0.0".parse()?, 8, 443..=443)?;
/// assert!(lan.permits(Transport::Tcp, NetAccess::Connect, "10.1.2.3:443".parse()?));
///
/// let dns = NetRule::connect("10.0.0.53".parse()?, 53..=53).udp();
/// assert!(dns.permits(Transport::Udp, NetAccess::Connect, "10.0.0.53:53".parse()?));
/// assert!(!dns.permits(Transport::Tcp, NetAccess::Connect, "10.0.0.53:53".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetRule {
    transport: Transport,
    pub(super) access: NetAccess,
    pub(super) net: IpNet,
    pub(super) ports: RangeInclusive<u16>,
}

impl NetRule {
    /// Permits TCP connections to `addr` on `ports`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::connect(loopback, 5432..=5432);
    /// assert!(rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 5432)));
    /// assert!(!rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 5433)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(addr: IpAddr, ports: RangeInclusive<u16>) -> Self {
        Self::host(NetAccess::Connect, addr, ports)
    }

    /// Permits listening for TCP on `addr` on `ports`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::bind(loopback, 8080..=8080);
    /// assert!(rule.permits(Transport::Tcp, NetAccess::Bind, SocketAddr::new(loopback, 8080)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(addr: IpAddr, ports: RangeInclusive<u16>) -> Self {
        Self::host(NetAccess::Bind, addr, ports)
    }

    /// Permits connecting to any address of the network `addr/prefix_len`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let lan = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0));
    /// let rule = NetRule::connect_net(lan, 8, 443..=443)?;
    /// assert!(rule.permits(Transport::Tcp, NetAccess::Connect, "10.1.2.3:443".parse()?));
    /// assert!(!rule.permits(Transport::Tcp, NetAccess::Connect, "11.0.0.1:443".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::InvalidRule`] when `prefix_len` is longer than the address
    /// or the port range is empty.
    pub fn connect_net(
        addr: IpAddr,
        prefix_len: u8,
        ports: RangeInclusive<u16>,
    ) -> Result<Self, NetError> {
        Self::network(NetAccess::Connect, addr, prefix_len, ports)
    }

    /// Permits binding any address of the network `addr/prefix_len`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::bind_net(loopback, 8, 9000..=9100)?;
    /// assert!(rule.permits(Transport::Tcp, NetAccess::Bind, "127.0.0.2:9000".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect_net`](Self::connect_net).
    pub fn bind_net(
        addr: IpAddr,
        prefix_len: u8,
        ports: RangeInclusive<u16>,
    ) -> Result<Self, NetError> {
        Self::network(NetAccess::Bind, addr, prefix_len, ports)
    }

    /// The same rule for UDP instead of TCP: `connect` rules permit sending
    /// (and connecting a UDP socket), `bind` rules binding.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::connect(loopback, 53..=53).udp();
    /// assert!(rule.permits(Transport::Udp, NetAccess::Connect, SocketAddr::new(loopback, 53)));
    /// assert!(!rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 53)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn udp(self) -> Self {
        Self {
            transport: Transport::Udp,
            ..self
        }
    }

    fn host(access: NetAccess, addr: IpAddr, ports: RangeInclusive<u16>) -> Self {
        Self {
            transport: Transport::Tcp,
            access,
            net: IpNet::from(addr),
            ports,
        }
    }

    fn network(
        access: NetAccess,
        addr: IpAddr,
        prefix_len: u8,
        ports: RangeInclusive<u16>,
    ) -> Result<Self, NetError> {
        let net = IpNet::new(addr, prefix_len).map_err(|_| NetError::InvalidRule {
            reason: format!("prefix length {prefix_len} is too long for {addr}"),
        })?;
        if ports.is_empty() {
            return Err(NetError::InvalidRule {
                reason: format!("the port range {}-{} is empty", ports.start(), ports.end()),
            });
        }
        Ok(Self {
            transport: Transport::Tcp,
            access,
            net: net.trunc(),
            ports,
        })
    }

    /// The transport the rule permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// assert_eq!(NetRule::bind(loopback, 80..=80).transport(), Transport::Tcp);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// What the rule permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// assert_eq!(NetRule::connect(loopback, 80..=80).access(), NetAccess::Connect);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn access(&self) -> NetAccess {
        self.access
    }

    /// The network address and prefix length.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// assert_eq!(NetRule::connect(loopback, 80..=80).network_addr(), (loopback, 32));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn network_addr(&self) -> (IpAddr, u8) {
        (self.net.network(), self.net.prefix_len())
    }

    /// The inclusive port range.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// assert_eq!(NetRule::connect(loopback, 8000..=8099).ports(), 8000..=8099);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.ports.clone()
    }

    /// Whether the rule permits `access` to `addr` over `transport`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{NetAccess, NetRule, Transport};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let rule = NetRule::connect(loopback, 443..=443);
    /// assert!(rule.permits(Transport::Tcp, NetAccess::Connect, SocketAddr::new(loopback, 443)));
    /// assert!(!rule.permits(Transport::Tcp, NetAccess::Bind, SocketAddr::new(loopback, 443)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn permits(&self, transport: Transport, access: NetAccess, addr: SocketAddr) -> bool {
        self.transport == transport
            && self.access == access
            && self.net.contains(&addr.ip())
            && self.ports.contains(&addr.port())
    }
}

impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ports ", self.transport, self.access, self.net)?;
        if self.ports.start() == self.ports.end() {
            write!(f, "{}", self.ports.start())
        } else {
            write!(f, "{}-{}", self.ports.start(), self.ports.end())
        }
    }
}
