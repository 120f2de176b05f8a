//! Revocation: after `revoke()`, the capability, its re-issued copies and
//! everything derived from it fail with a typed `Revoked` error.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::Sandbox;
use compartment::caps::{
    Env, EnvError, FsError, MonotonicClock, Net, NetRule, Random, RandomError,
};
use compartment::channel::{
    self, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError,
};
use compartment::{Grant, Revoked, Revoker};

#[test]
fn a_revoked_dir_and_everything_derived_from_it_fail() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    root.create_dir_all("sub/deeper").unwrap();
    root.write("sub/f", b"data").unwrap();

    let (dir, revoker) = root.reissue().unwrap().revocable();
    let copy = dir.reissue().unwrap();
    let sub = dir.open_dir("sub").unwrap();
    let read_only = sub.read_only().unwrap();
    let deeper = read_only.open_dir("deeper").unwrap();
    let mut file = sub.open("f").unwrap();
    let mut writable = sub.create("g").unwrap();
    let mut listing = dir.read_dir("sub").unwrap();

    revoker.revoke();
    assert!(revoker.is_revoked());

    for err in [
        dir.read("sub/f").unwrap_err(),
        copy.read("sub/f").unwrap_err(),
        sub.read("f").unwrap_err(),
        read_only.read("f").unwrap_err(),
        deeper.entries().map(|_| ()).unwrap_err(),
        dir.open_dir("sub").map(|_| ()).unwrap_err(),
        dir.create_dir("new").unwrap_err(),
        sub.remove_file("f").unwrap_err(),
        dir.try_clone().map(|_| ()).unwrap_err(),
        file.metadata().map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(err, FsError::Revoked { .. }), "{err}");
        assert!(err.is_refusal());
    }
    let mut buf = Vec::new();
    let err = file.read_to_end(&mut buf).unwrap_err();
    assert!(Revoked::caused(&err), "{err}");
    let err = writable.write_all(b"more").unwrap_err();
    assert!(Revoked::caused(&err), "{err}");
    assert!(matches!(listing.next(), Some(Err(FsError::Revoked { .. }))));
    assert!(listing.next().is_none(), "a revoked listing ends");

    // The directory itself is untouched: the granting side still has it.
    assert_eq!(root.read("sub/f").unwrap(), b"data");
    assert!(!root.exists("new"));
}

#[test]
fn the_original_is_revoked_with_its_copies_but_an_unrelated_handle_is_not() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let unrelated = root.try_clone().unwrap();
    let (a, revoker) = root.revocable();
    let b = a.reissue().unwrap();
    revoker.revoke();
    assert!(a.write("x", b"").unwrap_err().is_revoked());
    assert!(b.write("x", b"").unwrap_err().is_revoked());
    unrelated.write("x", b"").unwrap();
}

#[test]
fn either_of_two_revokers_revokes() {
    let sandbox = Sandbox::new();
    let (dir, first) = sandbox.root().revocable();
    let second = Revoker::new();
    let mut dir = dir;
    dir.attach_revoker(&second);
    dir.attach_revoker(&second); // attaching twice is harmless
    dir.write("ok", b"").unwrap();
    second.revoke();
    assert!(!first.is_revoked());
    assert!(dir.write("no", b"").unwrap_err().is_revoked());
}

#[test]
fn revoked_endpoints_fail_and_queued_messages_stay_in_the_channel() {
    let (tx, rx) = channel::bounded::<u32>(4).unwrap();
    let (component_tx, tx_revoker) = tx.reissue().unwrap().revocable();
    let (component_rx, rx_revoker) = rx.reissue().unwrap().revocable();

    component_tx.send(1).unwrap();
    component_tx.send(2).unwrap();
    tx_revoker.revoke();
    rx_revoker.revoke();
    assert!(matches!(
        component_tx.try_send(3),
        Err(TrySendError::Revoked(3))
    ));
    assert!(matches!(component_tx.send(4), Err(SendError::Revoked(4))));
    assert_eq!(component_rx.try_recv(), Err(TryRecvError::Revoked));
    assert_eq!(component_rx.recv(), Err(RecvError::Revoked));
    assert_eq!(component_rx.iter().count(), 0);

    // The channel belongs to the system: a successor's endpoint sees the queue.
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    tx.send(5).unwrap();
}

#[test]
fn a_blocked_receive_wakes_on_revocation_without_taking_a_message() {
    let (tx, rx) = channel::bounded::<u32>(4).unwrap();
    let (component_rx, revoker) = rx.reissue().unwrap().revocable();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| component_rx.recv_timeout(Duration::from_secs(60)));
        // Whether the waiter is already blocked or not, it must end Revoked.
        revoker.revoke();
        assert_eq!(waiter.join().unwrap(), Err(RecvTimeoutError::Revoked));
    });
    tx.send(7).unwrap();
    assert_eq!(rx.recv().unwrap(), 7);
}

#[test]
fn a_blocked_send_wakes_on_revocation_and_hands_the_message_back() {
    let (tx, rx) = channel::bounded::<u32>(1).unwrap();
    let (component_tx, revoker) = tx.reissue().unwrap().revocable();
    component_tx.send(1).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| component_tx.send(2));
        // Blocked on the full channel or not yet sending: either way it ends
        // Revoked with its message.
        revoker.revoke();
        assert!(matches!(waiter.join().unwrap(), Err(SendError::Revoked(2))));
    });
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
}

/// A revocable network capability that may bind any loopback port and
/// connect to any, over TCP and UDP, and the loopback address to bind
/// (port 0).
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn revocable_loopback_net() -> (Net, Revoker, SocketAddr) {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let net = Net::new(
        [
            NetRule::bind(loopback.ip(), 0..=0),
            NetRule::connect(loopback.ip(), 1..=65535),
            NetRule::bind(loopback.ip(), 0..=0).udp(),
            NetRule::connect(loopback.ip(), 1..=65535).udp(),
        ],
        cap_std::ambient_authority(),
    );
    let (net, revoker) = net.revocable();
    (net, revoker, loopback)
}

#[test]
fn revoked_network_capability_and_its_sockets_fail() {
    let (net, revoker, loopback) = revocable_loopback_net();
    let listener = net.bind_tcp(loopback).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut stream = net.connect_tcp(addr).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    let udp = net.bind_udp(loopback).unwrap();

    revoker.revoke();
    assert!(net.connect_tcp(addr).unwrap_err().is_revoked());
    assert!(net.bind_tcp(loopback).unwrap_err().is_revoked());
    assert!(listener.accept().unwrap_err().is_revoked());
    assert!(Revoked::caused(&stream.write_all(b"x").unwrap_err()));
    assert!(Revoked::caused(&accepted.read(&mut [0u8; 1]).unwrap_err()));
    assert!(udp.send_to(b"x", addr).unwrap_err().is_revoked());
    assert!(udp.recv_from(&mut [0u8; 1]).unwrap_err().is_revoked());
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test is the granting side")]
fn blocked_accept_read_and_recv_wake_on_revocation_and_complete_nothing() {
    let (net, revoker, loopback) = revocable_loopback_net();
    let listener = net.bind_tcp(loopback).unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = net.connect_tcp(addr).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    let udp = net.bind_udp(loopback).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    std::thread::scope(|s| {
        let accepting = s.spawn(|| listener.accept().map(|_| ()));
        let reading = s.spawn(move || accepted.read(&mut [0u8; 8]));
        let receiving = s.spawn(|| udp.recv_from(&mut [0u8; 8]).map(|_| ()));
        // Whether or not the calls are blocked yet, revocation must end them
        // with a refusal, and nothing sent afterwards may get through.
        revoker.revoke();
        let _ = std::net::TcpStream::connect(addr);
        let _ = std::net::UdpSocket::bind(loopback).and_then(|s| s.send_to(b"late", udp_addr));
        drop(peer);
        assert!(accepting.join().unwrap().unwrap_err().is_revoked());
        assert!(Revoked::caused(&reading.join().unwrap().unwrap_err()));
        assert!(receiving.join().unwrap().unwrap_err().is_revoked());
    });
}

#[test]
fn revoked_env_clock_and_random_fail() {
    let (env, env_revoker) = Env::from_vars([("A", "1")]).unwrap().revocable();
    let (clock, _control) = MonotonicClock::manual();
    let (clock, clock_revoker) = clock.revocable();
    let (random, random_revoker) = Random::seeded(3).revocable();
    for revoker in [env_revoker, clock_revoker, random_revoker] {
        revoker.revoke();
    }
    assert_eq!(env.get("A"), Err(EnvError::Revoked));
    assert!(env.vars().is_err());
    assert_eq!(clock.now(), Err(Revoked));
    assert!(matches!(random.next_u64(), Err(RandomError::Revoked)));
}

#[test]
fn revoking_a_whole_grant_at_once() {
    #[derive(Grant)]
    struct Worker {
        inbox: channel::Receiver<u8>,
        env: Env,
        scratch: compartment::caps::Dir,
    }
    let sandbox = Sandbox::new();
    let (_tx, inbox) = channel::bounded(1).unwrap();
    let grant = Worker {
        inbox,
        env: Env::from_vars([("K", "v")]).unwrap(),
        scratch: sandbox.root(),
    };
    let supervisor_side = Revoker::new();
    let mut instance = grant.reissue().unwrap();
    instance.attach_revoker(&supervisor_side);
    supervisor_side.revoke();
    assert_eq!(instance.inbox.try_recv(), Err(TryRecvError::Revoked));
    assert_eq!(instance.env.get("K"), Err(EnvError::Revoked));
    assert!(!instance.scratch.exists("anything"));
    assert!(instance.scratch.read("x").unwrap_err().is_revoked());
    // The granting side's original is not affected: the next instance works.
    let next = grant.reissue().unwrap();
    assert_eq!(next.env.get("K").unwrap(), Some("v"));
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test's own threads play a sender and a receiver"
)]
fn revocable_endpoints_deliver_through_blocking_and_wake_on_revocation() {
    let (tx, rx) = channel::bounded::<u32>(1).unwrap();
    let (tx, revoker) = tx.revocable();
    let (rx, _receiver_switch) = rx.revocable();
    // Through a channel of one, most sends and receives wait for the other
    // side: every message arrives, in order.
    std::thread::scope(|s| {
        s.spawn(|| (0..1000).for_each(|i| tx.send(i).unwrap()));
        for i in 0..1000 {
            assert_eq!(rx.recv().unwrap(), i);
        }
    });
    // A send waiting on a full channel ends with its message handed back
    // once the endpoint is revoked, whether or not it was blocked yet.
    tx.send(1).unwrap();
    std::thread::scope(|s| {
        let waiting = s.spawn(|| tx.send(2));
        revoker.revoke();
        assert!(matches!(
            waiting.join().unwrap(),
            Err(SendError::Revoked(2))
        ));
    });
}
