//! Sockets created through a [`Net`] capability; each is revoked
//! with the capability it came from.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::{Net, NetError, NetOp};
use crate::revoke::Gate;
use crate::signal::RaiseHook;

/// Shuts `socket` down (both directions) when `gate` is revoked, so a call
/// blocked in `accept`, `read` or `recv` wakes instead of completing after
/// revocation. The returned hook must live as long as the socket.
fn shut_down_on_revoke<S>(socket: &Arc<S>, gate: &Gate) -> OnRevoke
where
    S: AsFd + Send + Sync + 'static,
{
    let socket = Arc::downgrade(socket);
    let hook: Arc<RaiseHook> = Arc::new(move || {
        if let Some(socket) = socket.upgrade() {
            // Fails with `ENOTCONN` on an unconnected socket, which is woken
            // all the same.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let _ = rustix::net::shutdown(&*socket, rustix::net::Shutdown::Both);
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = socket;
        }
    });
    gate.on_revoke(&hook);
    OnRevoke(hook)
}

/// Keeps a socket's revocation hook alive as long as the socket.
struct OnRevoke(#[allow(dead_code, reason = "held only to keep the hook alive")] Arc<RaiseHook>);

impl std::fmt::Debug for OnRevoke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRevoke")
    }
}

fn guard(gate: &Gate, op: NetOp, addr: Option<SocketAddr>) -> Result<(), NetError> {
    gate.check().map_err(|_| NetError::Revoked { op, addr })
}

fn os(op: NetOp, addr: Option<SocketAddr>) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Io { op, addr, source }
}

/// A TCP connection opened or accepted through a [`Net`] capability.
///
/// `Read` and `Write` fail after revocation with an `io::Error` that
/// [`Revoked::caused`](crate::Revoked::caused) recognises.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{Net, NetRule};
///
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
/// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
/// let at = listener.local_addr()?;
/// let client = Net::new([NetRule::connect(loopback, at.port()..=at.port())], compartment::ambient_authority());
/// let mut stream = client.connect_tcp(at)?;
/// let (mut accepted, _) = listener.accept()?;
/// stream.write_all(b"ping")?;
/// let mut buf = [0u8; 4];
/// accepted.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<cap_std::net::TcpStream>,
    gate: Gate,
    _shut_down_on_revoke: OnRevoke,
}

impl TcpStream {
    pub(crate) fn new(inner: cap_std::net::TcpStream, gate: Gate) -> Self {
        let inner = Arc::new(inner);
        let hook = shut_down_on_revoke(&inner, &gate);
        Self {
            inner,
            gate,
            _shut_down_on_revoke: hook,
        }
    }

    /// The remote address.
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn peer_addr(&self) -> Result<SocketAddr, NetError> {
        guard(&self.gate, NetOp::Receive, None)?;
        self.inner.peer_addr().map_err(os(NetOp::Receive, None))
    }

    /// The local address.
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
    /// assert_eq!(stream.local_addr()?.ip(), loopback);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        guard(&self.gate, NetOp::Receive, None)?;
        self.inner.local_addr().map_err(os(NetOp::Receive, None))
    }

    /// Shuts down the read half, the write half, or both.
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
    /// use std::io::Read;
    /// let (mut accepted, _) = listener.accept()?;
    /// stream.shutdown(std::net::Shutdown::Write)?;
    /// let mut rest = Vec::new();
    /// accepted.read_to_end(&mut rest)?; // ends: the client will write no more
    /// assert!(rest.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Io`]. Allowed after revocation: shutting down only gives
    /// authority up.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), NetError> {
        self.inner.shutdown(how).map_err(os(NetOp::Send, None))
    }

    /// Bounds blocking reads; `None` blocks forever.
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
    /// use std::io::Read;
    /// let mut stream = stream;
    /// stream.set_read_timeout(Some(std::time::Duration::from_millis(10)))?;
    /// let mut buf = [0u8; 1];
    /// assert!(stream.read(&mut buf).is_err()); // nothing sent: timed out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`] (a zero duration is invalid).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), NetError> {
        guard(&self.gate, NetOp::Receive, None)?;
        self.inner
            .set_read_timeout(timeout)
            .map_err(os(NetOp::Receive, None))
    }

    /// Bounds blocking writes; `None` blocks forever.
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
    /// stream.set_write_timeout(Some(std::time::Duration::from_secs(5)))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`] (a zero duration is invalid).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<(), NetError> {
        guard(&self.gate, NetOp::Send, None)?;
        self.inner
            .set_write_timeout(timeout)
            .map_err(os(NetOp::Send, None))
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.gate.check()?;
        let read = (&*self.inner).read(buf);
        // Revocation shuts the socket down, which ends a blocked read with
        // an end of file: say why.
        self.gate.check()?;
        read
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.gate.check()?;
        (&*self.inner).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.gate.check()?;
        (&*self.inner).flush()
    }
}

/// A TCP listener bound through a [`Net`] capability.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{Net, NetRule};
///
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
/// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
/// let at = listener.local_addr()?;
/// let client = Net::new([NetRule::connect(loopback, at.port()..=at.port())], compartment::ambient_authority());
/// let _stream = client.connect_tcp(at)?;
/// let (_accepted, _peer) = listener.accept()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    inner: Arc<cap_std::net::TcpListener>,
    gate: Gate,
    _shut_down_on_revoke: OnRevoke,
}

impl TcpListener {
    pub(crate) fn new(inner: cap_std::net::TcpListener, gate: Gate) -> Self {
        let inner = Arc::new(inner);
        let hook = shut_down_on_revoke(&inner, &gate);
        Self {
            inner,
            gate,
            _shut_down_on_revoke: hook,
        }
    }

    /// The bound address (useful after binding port 0).
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
    /// assert_eq!(listener.local_addr()?, at);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        guard(&self.gate, NetOp::Accept, None)?;
        self.inner.local_addr().map_err(os(NetOp::Accept, None))
    }

    /// Waits for a connection. The accepted stream is revoked with this
    /// listener's capability.
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
    /// let (_accepted, peer) = listener.accept()?;
    /// assert_eq!(peer, stream.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn accept(&self) -> Result<(TcpStream, SocketAddr), NetError> {
        guard(&self.gate, NetOp::Accept, None)?;
        let accepted = self.inner.accept();
        // A revocation during the wait shut the listener down; whatever the
        // call returned, nothing is accepted after it.
        guard(&self.gate, NetOp::Accept, None)?;
        let (stream, addr) = accepted.map_err(os(NetOp::Accept, None))?;
        Ok((TcpStream::new(stream, self.gate.clone()), addr))
    }

    /// Switches between blocking and non-blocking `accept`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let server = Net::new([NetRule::bind(loopback, 0..=65535)], compartment::ambient_authority());
    /// let listener = server.bind_tcp(SocketAddr::new(loopback, 0))?;
    /// listener.set_nonblocking(true)?;
    /// assert!(listener.accept().is_err()); // nobody waiting: would block
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), NetError> {
        guard(&self.gate, NetOp::Accept, None)?;
        self.inner
            .set_nonblocking(nonblocking)
            .map_err(os(NetOp::Accept, None))
    }
}

/// A UDP socket bound through a [`Net`] capability. It sends only to
/// addresses the capability's `Connect` rules permit.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use compartment::caps::{Net, NetRule};
///
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp()], compartment::ambient_authority());
/// let socket = net.bind_udp(SocketAddr::new(loopback, 0))?;
/// assert!(socket.local_addr()?.port() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    inner: Arc<cap_std::net::UdpSocket>,
    net: Net,
    _shut_down_on_revoke: OnRevoke,
}

impl UdpSocket {
    pub(crate) fn new(inner: cap_std::net::UdpSocket, net: Net) -> Self {
        let inner = Arc::new(inner);
        let hook = shut_down_on_revoke(&inner, net.gate());
        Self {
            inner,
            net,
            _shut_down_on_revoke: hook,
        }
    }

    /// The bound address.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// assert_eq!(a.local_addr()?.ip(), loopback);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        guard(self.net.gate(), NetOp::Receive, None)?;
        self.inner.local_addr().map_err(os(NetOp::Receive, None))
    }

    /// Sends one datagram to `addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// a.send_to(b"ping", b.local_addr()?)?;
    /// let mut buf = [0u8; 4];
    /// let (n, from) = b.recv_from(&mut buf)?;
    /// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::NotGranted`], [`NetError::Revoked`], [`NetError::Io`].
    pub fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<usize, NetError> {
        self.net.send_udp(&self.inner, buf, addr)
    }

    /// Fixes the peer, so that [`send`](Self::send) and [`recv`](Self::recv)
    /// talk to `addr` only.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// a.connect(b.local_addr()?)?;
    /// a.send(b"hi")?;
    /// let mut buf = [0u8; 2];
    /// assert_eq!(b.recv(&mut buf)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::NotGranted`], [`NetError::Revoked`], [`NetError::Io`].
    pub fn connect(&self, addr: SocketAddr) -> Result<(), NetError> {
        self.net.connect_udp(&self.inner, addr)
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.send(b"hi")?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`] (for example when not
    /// connected).
    pub fn send(&self, buf: &[u8]) -> Result<usize, NetError> {
        guard(self.net.gate(), NetOp::Send, None)?;
        self.inner.send(buf).map_err(os(NetOp::Send, None))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// a.send_to(b"hi", b.local_addr()?)?;
    /// let mut buf = [0u8; 8];
    /// let n = b.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        guard(self.net.gate(), NetOp::Receive, None)?;
        let received = self.inner.recv(buf);
        guard(self.net.gate(), NetOp::Receive, None)?;
        received.map_err(os(NetOp::Receive, None))
    }

    /// Receives one datagram and its sender.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// a.send_to(b"hi", b.local_addr()?)?;
    /// let mut buf = [0u8; 8];
    /// let (_, from) = b.recv_from(&mut buf)?;
    /// assert_eq!(from, a.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`].
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        guard(self.net.gate(), NetOp::Receive, None)?;
        let received = self.inner.recv_from(buf);
        guard(self.net.gate(), NetOp::Receive, None)?;
        received.map_err(os(NetOp::Receive, None))
    }

    /// Bounds blocking receives; `None` blocks forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use compartment::caps::{Net, NetRule};
    /// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// let net = Net::new([NetRule::bind(loopback, 0..=65535).udp(), NetRule::connect(loopback, 0..=65535).udp()], compartment::ambient_authority());
    /// let a = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// let b = net.bind_udp(SocketAddr::new(loopback, 0))?;
    /// # b.set_read_timeout(Some(std::time::Duration::from_secs(60)))?; // never hang a test
    /// b.set_read_timeout(Some(std::time::Duration::from_millis(10)))?;
    /// let mut buf = [0u8; 8];
    /// assert!(b.recv(&mut buf).is_err()); // nothing sent: timed out
    /// let _ = a;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NetError::Revoked`], [`NetError::Io`] (a zero duration is invalid).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), NetError> {
        guard(self.net.gate(), NetOp::Receive, None)?;
        self.inner
            .set_read_timeout(timeout)
            .map_err(os(NetOp::Receive, None))
    }
}
