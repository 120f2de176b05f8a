//! Network: connecting and listening where no rule permits, over TCP and
//! UDP, and use after revocation. Loopback addresses only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{Battery, Expected, Prober};
use crate::caps::{Net, NetAccess, Transport};
use crate::grant::Descriptor;

impl Battery for Net {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        prober.network(label, self);
    }
}

impl Prober<'_> {
    fn network(&mut self, label: &str, net: &Net) {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other_loopback = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let free = |access: NetAccess, ip: IpAddr| {
            [1u16, 7, 9, 22, 443, 5432, 40_001, 65_535]
                .into_iter()
                .map(|port| SocketAddr::new(ip, port))
                .find(|addr| {
                    !net.rules().iter().any(|rule| {
                        rule.permits(Transport::Tcp, access, *addr)
                            || rule.permits(Transport::Udp, access, *addr)
                    })
                })
        };
        let timeout = Duration::from_millis(200);
        for ip in [loopback, other_loopback] {
            if let Some(addr) = free(NetAccess::Connect, ip) {
                self.record(
                    label,
                    format!("connect to {addr} (not granted)"),
                    Expected::Denied,
                    net.connect_tcp_timeout(addr, timeout),
                );
            }
        }
        if let Some(addr) = free(NetAccess::Bind, loopback) {
            self.record(
                label,
                format!("listen on {addr} (not granted)"),
                Expected::Denied,
                net.bind_tcp(addr),
            );
            self.record(
                label,
                format!("bind UDP {addr} (not granted)"),
                Expected::Denied,
                net.bind_udp(addr),
            );
        }
        let any_port = SocketAddr::new(loopback, 0);
        if net
            .rules()
            .iter()
            .any(|rule| rule.permits(Transport::Udp, NetAccess::Bind, any_port))
            && let Ok(socket) = net.bind_udp(any_port)
            && let Some(addr) = free(NetAccess::Connect, loopback)
        {
            self.record(
                label,
                format!("send UDP to {addr} (not granted)"),
                Expected::Denied,
                socket.send_to(b"x", addr),
            );
        }
        if let Some(rule) = net
            .rules()
            .iter()
            .find(|r| r.access() == NetAccess::Connect)
        {
            let (ip, _) = rule.network_addr();
            let addr = SocketAddr::new(ip, *rule.ports().start());
            let attempt = format!("connect to granted {addr} after revocation");
            self.after_revocation(label, attempt, net, |copy| {
                copy.connect_tcp_timeout(addr, timeout)
            });
        }
    }
}
