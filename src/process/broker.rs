//! The network broker: a process child creates no socket. Its `Net` asks
//! the supervisor's side, which checks the same rules with the granting
//! side's capability, creates, connects or binds the socket there and
//! passes it over (`SCM_RIGHTS`). The child's seccomp table refuses
//! `socket`, `connect`, `bind` and `listen`; it keeps `accept` for the
//! listeners it was handed. Sockets made on the supervisor's side live in
//! its network namespace, so the child has a network namespace of its own
//! even with a `Net`: nothing but what the broker hands over reaches out.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::bridge::{Left, ParentPump, Serving};
use super::portable::{PackError, Packing, Portable, Unpacking, granted_again};
use super::wire;
use crate::caps::{Net, NetAccess, NetError, NetOp, NetRule, Transport};

/// What a child asks of its broker. `ConnectUdp` and `SendTo` carry the
/// child's socket with them.
#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    ConnectTcp {
        addr: SocketAddr,
        timeout: Option<Duration>,
    },
    BindTcp {
        addr: SocketAddr,
    },
    BindUdp {
        addr: SocketAddr,
    },
    ConnectUdp {
        addr: SocketAddr,
    },
    SendTo {
        addr: SocketAddr,
        bytes: Vec<u8>,
    },
}

/// The broker's answer; `Socket` carries the new socket.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Socket,
    Sent(usize),
    Done,
    Failed(Failure),
}

/// A `NetError`, as it crosses.
#[derive(Debug, Serialize, Deserialize)]
enum Failure {
    NotGranted {
        op: u8,
        addr: SocketAddr,
    },
    Revoked {
        op: u8,
        addr: Option<SocketAddr>,
    },
    Io {
        op: u8,
        addr: Option<SocketAddr>,
        errno: Option<i32>,
        message: String,
    },
}

fn op_number(op: NetOp) -> u8 {
    match op {
        NetOp::Connect => 0,
        NetOp::Bind => 1,
        NetOp::Accept => 2,
        NetOp::Send => 3,
        NetOp::Receive => 4,
        _ => 5,
    }
}

fn op_of(number: u8) -> NetOp {
    match number {
        0 => NetOp::Connect,
        1 => NetOp::Bind,
        2 => NetOp::Accept,
        3 => NetOp::Send,
        4 => NetOp::Receive,
        _ => NetOp::Duplicate,
    }
}

impl Failure {
    fn of(err: NetError) -> Self {
        match err {
            NetError::NotGranted { op, addr } => Failure::NotGranted {
                op: op_number(op),
                addr,
            },
            NetError::Revoked { op, addr } => Failure::Revoked {
                op: op_number(op),
                addr,
            },
            NetError::Io { op, addr, source } => Failure::Io {
                op: op_number(op),
                addr,
                errno: source.raw_os_error(),
                message: source.to_string(),
            },
            other => Failure::Io {
                op: op_number(NetOp::Connect),
                addr: None,
                errno: None,
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> NetError {
        match self {
            Failure::NotGranted { op, addr } => NetError::NotGranted {
                op: op_of(op),
                addr,
            },
            Failure::Revoked { op, addr } => NetError::Revoked {
                op: op_of(op),
                addr,
            },
            Failure::Io {
                op,
                addr,
                errno,
                message,
            } => NetError::Io {
                op: op_of(op),
                addr,
                source: match errno {
                    Some(errno) => io::Error::from_raw_os_error(errno),
                    None => io::Error::other(message),
                },
            },
        }
    }
}

/// A process child's end of its broker.
#[derive(Debug)]
pub(crate) struct Broker {
    /// One question and its answer at a time.
    socket: Mutex<OwnedFd>,
}

impl Broker {
    /// Asks, handing over `socket` if given; returns the answer and the
    /// socket that came with it.
    fn ask(
        &self,
        ask: &Ask,
        socket: Option<BorrowedFd<'_>>,
        op: NetOp,
        addr: SocketAddr,
    ) -> Result<(Answer, Option<OwnedFd>), NetError> {
        let broken = |source: io::Error| NetError::Io {
            op,
            addr: Some(addr),
            source,
        };
        let bytes = wire::encode(ask).map_err(broken)?;
        let channel = self.socket.lock();
        wire::send_packet(channel.as_fd(), &bytes, socket.as_slice()).map_err(broken)?;
        let (reply, mut fds) = wire::recv_packet(channel.as_fd())
            .map_err(broken)?
            .ok_or_else(|| broken(io::Error::other("the broker has gone")))?;
        drop(channel);
        match wire::decode::<Answer>(&reply).map_err(broken)? {
            Answer::Failed(failure) => Err(failure.into_error()),
            answer => Ok((answer, fds.pop())),
        }
    }

    fn socket(&self, ask: &Ask, op: NetOp, addr: SocketAddr) -> Result<OwnedFd, NetError> {
        match self.ask(ask, None, op, addr)? {
            (Answer::Socket, Some(fd)) => Ok(fd),
            _ => Err(NetError::Io {
                op,
                addr: Some(addr),
                source: io::Error::other("the broker answered without a socket"),
            }),
        }
    }

    pub(crate) fn connect_tcp(
        &self,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<cap_std::net::TcpStream, NetError> {
        let fd = self.socket(&Ask::ConnectTcp { addr, timeout }, NetOp::Connect, addr)?;
        Ok(cap_std::net::TcpStream::from_std(fd.into()))
    }

    pub(crate) fn bind_tcp(&self, addr: SocketAddr) -> Result<cap_std::net::TcpListener, NetError> {
        let fd = self.socket(&Ask::BindTcp { addr }, NetOp::Bind, addr)?;
        Ok(cap_std::net::TcpListener::from_std(fd.into()))
    }

    pub(crate) fn bind_udp(&self, addr: SocketAddr) -> Result<cap_std::net::UdpSocket, NetError> {
        let fd = self.socket(&Ask::BindUdp { addr }, NetOp::Bind, addr)?;
        Ok(cap_std::net::UdpSocket::from_std(fd.into()))
    }

    pub(crate) fn connect_udp(
        &self,
        socket: &cap_std::net::UdpSocket,
        addr: SocketAddr,
    ) -> Result<(), NetError> {
        let ask = Ask::ConnectUdp { addr };
        self.ask(&ask, Some(socket.as_fd()), NetOp::Connect, addr)
            .map(drop)
    }

    pub(crate) fn send_to(
        &self,
        socket: &cap_std::net::UdpSocket,
        buf: &[u8],
        addr: SocketAddr,
    ) -> Result<usize, NetError> {
        let ask = Ask::SendTo {
            addr,
            bytes: buf.to_vec(),
        };
        match self.ask(&ask, Some(socket.as_fd()), NetOp::Send, addr)? {
            (Answer::Sent(sent), _) => Ok(sent),
            _ => Ok(0),
        }
    }
}

/// The supervisor's side: answers each question with the granting side's
/// `Net`, whose rules and revocation decide.
struct BrokerPump {
    net: Net,
    socket: OwnedFd,
}

impl BrokerPump {
    fn answer(&self, ask: Ask, mut handed: Vec<OwnedFd>) -> (Answer, Option<OwnedFd>) {
        let socket = |result: Result<OwnedFd, NetError>| match result {
            Ok(fd) => (Answer::Socket, Some(fd)),
            Err(err) => (Answer::Failed(Failure::of(err)), None),
        };
        let handed = handed
            .pop()
            .map(|fd| cap_std::net::UdpSocket::from_std(fd.into()));
        match (ask, handed) {
            (Ask::ConnectTcp { addr, timeout }, _) => socket(
                self.net
                    .connect_tcp_stream(addr, timeout)
                    .map(OwnedFd::from),
            ),
            (Ask::BindTcp { addr }, _) => {
                socket(self.net.bind_tcp_listener(addr).map(OwnedFd::from))
            }
            (Ask::BindUdp { addr }, _) => socket(self.net.bind_udp_socket(addr).map(OwnedFd::from)),
            (Ask::ConnectUdp { addr }, Some(udp)) => match self.net.connect_udp(&udp, addr) {
                Ok(()) => (Answer::Done, None),
                Err(err) => (Answer::Failed(Failure::of(err)), None),
            },
            (Ask::SendTo { addr, bytes }, Some(udp)) => {
                match self.net.send_udp(&udp, &bytes, addr) {
                    Ok(sent) => (Answer::Sent(sent), None),
                    Err(err) => (Answer::Failed(Failure::of(err)), None),
                }
            }
            (Ask::ConnectUdp { addr } | Ask::SendTo { addr, .. }, None) => (
                Answer::Failed(Failure::of(NetError::Io {
                    op: NetOp::Send,
                    addr: Some(addr),
                    source: io::Error::other("no socket came with the question"),
                })),
                None,
            ),
        }
    }
}

impl ParentPump for BrokerPump {
    fn run(self: Box<Self>, serving: &Serving<'_>) -> Left {
        const BROKER: &str = "its network broker";
        while let Some((bytes, handed)) = serving.protocol.next_packet(BROKER, self.socket.as_fd())
        {
            let Ok(ask) = wire::decode::<Ask>(&bytes) else {
                serving
                    .protocol
                    .broken(BROKER, "a question that does not decode");
                break;
            };
            let (answer, fd) = self.answer(ask, handed);
            let Ok(reply) = wire::encode(&answer) else {
                break;
            };
            let fds: Vec<BorrowedFd<'_>> = fd.iter().map(AsFd::as_fd).collect();
            if wire::send_packet(self.socket.as_fd(), &reply, &fds).is_err() {
                break;
            }
        }
        Left::default()
    }
}

/// A rule as it crosses: transport, access, network, prefix, ports.
type RuleParts = (bool, bool, IpAddr, u8, u16, u16);

impl Portable for Net {
    fn pack(&self, packing: &mut Packing) -> Result<(), PackError> {
        packing.gate("Net", self.gate())?;
        let (parent, child) = wire::packet_pair()?;
        packing.bridge(
            child,
            Box::new(BrokerPump {
                net: self.clone(),
                socket: parent,
            }),
        );
        let rules: Vec<RuleParts> = self
            .rules()
            .iter()
            .map(|rule| {
                let (addr, prefix) = rule.network_addr();
                (
                    rule.transport() == Transport::Udp,
                    rule.access() == NetAccess::Bind,
                    addr,
                    prefix,
                    *rule.ports().start(),
                    *rule.ports().end(),
                )
            })
            .collect();
        packing.data(&rules)
    }

    fn unpack(unpacking: &mut Unpacking) -> Result<Self, PackError> {
        let socket = unpacking.descriptor()?;
        let parts: Vec<RuleParts> = unpacking.data()?;
        let rules = parts
            .into_iter()
            .map(|(udp, bind, addr, prefix, first, last)| {
                let rule = if bind {
                    NetRule::bind_net(addr, prefix, first..=last)
                } else {
                    NetRule::connect_net(addr, prefix, first..=last)
                };
                let rule = rule.map_err(|err| PackError::Malformed(err.to_string()))?;
                Ok(if udp { rule.udp() } else { rule })
            })
            .collect::<Result<Vec<_>, PackError>>()?;
        let broker = Broker {
            socket: Mutex::new(socket),
        };
        Ok(Net::brokered(rules, broker, granted_again()))
    }
}
