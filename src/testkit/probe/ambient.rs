//! Ambient calls: what a component could do around its capabilities with
//! `std` and raw syscalls. No type stops these; a kernel lockdown refuses
//! them, and without one they succeed and are reported as escapes.
//!
//! Every attempt that changes something changes it to what it already was
//! (the canary's own mode, times and owner, the process's own umask and
//! limits), or undoes it at once, so that a run without lockdown leaves the
//! host as it found it.

#![allow(
    clippy::disallowed_methods,
    reason = "these are the ambient calls a component could make anyway: the kernel must refuse them"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketType, ipproto};
use rustix::process::{Pid, Resource, Rlimit};

use super::{Expected, Prober};
use crate::capability::{Capability, Rights};
use crate::caps::{NetAccess, NetRule, Transport};
use crate::fault;
use crate::grant::Inventory;
use crate::testkit::host::Identity;

const FAILS: Expected = Expected::Fails;

fn io<T>(result: rustix::io::Result<T>) -> std::io::Result<T> {
    result.map_err(std::io::Error::from)
}

impl Prober<'_> {
    /// Every class of ambient call, each under its own label.
    pub(super) fn ambient(&mut self, inventory: &Inventory<'_>) {
        self.outside_files();
        self.outside_metadata();
        self.new_processes();
        self.process_wide_state();
        self.other_processes();
        let rules: Vec<NetRule> = inventory
            .iter()
            .filter_map(|held| match held.capability() {
                Capability::Net { rules } => Some(rules.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        self.sockets(&rules);
        self.inside_granted_directories(inventory);
    }

    fn outside_files(&mut self) {
        let label = "ambient: files";
        let canary = self.canary.clone();
        self.record(
            label,
            "std::fs::read(\"/etc/passwd\")",
            FAILS,
            std::fs::read("/etc/passwd"),
        );
        self.record(
            label,
            "std::fs::read the canary",
            FAILS,
            std::fs::read(&canary),
        );
        self.record(
            label,
            "std::fs::write the canary",
            FAILS,
            std::fs::write(&canary, b"x"),
        );
        self.record(
            label,
            "std::fs::read_dir(\"/\")",
            FAILS,
            std::fs::read_dir("/"),
        );
        self.record(
            label,
            "std::fs::write next to the canary",
            FAILS,
            std::fs::write(self.canary_dir.join("written-by-an-ambient-call"), b"x"),
        );
    }

    /// Mode, owner, times and extended attributes of the canary, by path.
    /// Landlock does not govern them; the seccomp program refuses the path
    /// forms.
    fn outside_metadata(&mut self) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let label = "ambient: metadata";
        let canary = self.canary.clone();
        // Where metadata can be read by path (see the boundary table), the
        // current values make every change below a no-op. Where it cannot
        // (a process child, which has no outside path), the changes are
        // made anyway, with values that would show if one got through.
        let (mode, owner, (accessed, modified)) = match std::fs::metadata(&canary) {
            Ok(current) => (
                current.mode(),
                (current.uid(), current.gid()),
                (
                    (current.atime(), current.atime_nsec()),
                    (current.mtime(), current.mtime_nsec()),
                ),
            ),
            Err(_) => (0o600, (0, 0), ((0, 0), (0, 0))),
        };
        self.record(
            label,
            "chmod the canary to its own mode",
            FAILS,
            std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(mode)),
        );
        self.record(
            label,
            "chown the canary to its own owner",
            FAILS,
            std::os::unix::fs::chown(&canary, Some(owner.0), Some(owner.1)),
        );
        let timespec = |(tv_sec, tv_nsec)| rustix::fs::Timespec { tv_sec, tv_nsec };
        let times = rustix::fs::Timestamps {
            last_access: timespec(accessed),
            last_modification: timespec(modified),
        };
        self.record(
            label,
            "set the canary's times by path (utimensat)",
            FAILS,
            io(rustix::fs::utimensat(
                rustix::fs::CWD,
                &canary,
                &times,
                rustix::fs::AtFlags::empty(),
            )),
        );
        let name = "user.compartment-probe";
        self.record(
            label,
            "set an extended attribute on the canary",
            FAILS,
            io(rustix::fs::setxattr(
                &canary,
                name,
                b"x",
                rustix::fs::XattrFlags::empty(),
            )),
        );
        let mut value = [0u8; 64];
        self.record(
            label,
            "read an extended attribute of the canary",
            FAILS,
            io(rustix::fs::getxattr(&canary, name, &mut value[..])),
        );
        let mut names = [0u8; 1024];
        self.record(
            label,
            "list the canary's extended attributes",
            FAILS,
            io(rustix::fs::listxattr(&canary, &mut names[..])),
        );
        self.record(
            label,
            "remove an extended attribute of the canary",
            FAILS,
            io(rustix::fs::removexattr(&canary, name)),
        );
    }

    fn new_processes(&mut self) {
        let label = "ambient: processes and threads";
        // A process child's policy kills it for this.
        self.may_end(label, "std::process::Command::new(\"true\")", FAILS, || {
            std::process::Command::new("true").status()
        });
        // A thread the crate did not start would run outside the instance's
        // accounting; under lockdown it cannot start at all. In a process
        // child it is one more thread of the child's, inside its limits.
        let spawned = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .spawn_scoped(scope, || ())
                .map(|thread| thread.join())
        });
        let expected = if super::beyond::in_process_child() {
            Expected::StaysInside
        } else {
            FAILS
        };
        self.record(
            label,
            "start a thread with std::thread::Builder",
            expected,
            spawned,
        );
    }

    /// State every thread of the process shares.
    fn process_wide_state(&mut self) {
        let label = "ambient: process-wide state";
        match std::env::current_dir() {
            Ok(cwd) => self.record(
                label,
                "change the working directory (to itself)",
                FAILS,
                std::env::set_current_dir(&cwd),
            ),
            Err(err) => self.skip(label, "change the working directory", err.to_string()),
        }
        let fchdir = io(rustix::fs::open(
            ".",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        ))
        .and_then(|cwd| io(rustix::process::fchdir(&cwd)));
        self.record(
            label,
            "change the working directory by descriptor (to itself)",
            FAILS,
            fchdir,
        );
        self.record(
            label,
            "change the root directory (to itself)",
            FAILS,
            io(rustix::process::chroot("/")),
        );
        // rustix takes `umask` to be infallible: a refused call panics in a
        // debug build and hands back the errno as the old mask in a release
        // build. Setting the old mask back returns what the first call set,
        // which tells whether it took, and leaves the mask as it was.
        let probe_mask = rustix::fs::Mode::from_raw_mode(0o022);
        let set = fault::contain(|| {
            let previous = rustix::process::umask(probe_mask);
            rustix::process::umask(previous)
        });
        self.record(
            label,
            "change the umask",
            FAILS,
            match set {
                Ok(set) if set == probe_mask => Ok(()),
                _ => Err(std::io::Error::from_raw_os_error(1)),
            },
        );
        let files = rustix::process::getrlimit(Resource::Nofile);
        self.record(
            label,
            "set the process's open-file limit (to itself)",
            FAILS,
            io(rustix::process::setrlimit(Resource::Nofile, files)),
        );
        let dumpable = io(rustix::process::dumpable_behavior())
            .and_then(|current| io(rustix::process::set_dumpable_behavior(current)));
        self.record(
            label,
            "set the process's dumpable flag (to itself)",
            FAILS,
            dumpable,
        );
    }

    /// Other processes: the parent, and a bystander the host started.
    fn other_processes(&mut self) {
        let label = "ambient: other processes";
        let parent = std::os::unix::process::parent_id();
        self.record(
            label,
            format!("signal 0 to the parent process ({parent})"),
            FAILS,
            pid(parent).and_then(|pid| io(rustix::process::test_kill_process(pid))),
        );
        let bystander = match self
            .host
            .bystander()
            .and_then(|id| pid(id).map(|pid| (id, pid)).map_err(|err| err.to_string()))
        {
            Ok(bystander) => bystander,
            Err(why) => {
                self.skip(label, "act on another process", why);
                return;
            }
        };
        let (id, target) = bystander;
        self.record(
            label,
            format!("signal 0 to another process ({id})"),
            FAILS,
            io(rustix::process::test_kill_process(target)),
        );
        let limit = Rlimit {
            current: Some(256),
            maximum: Some(256),
        };
        self.record(
            label,
            format!("set another process's open-file limit ({id})"),
            FAILS,
            io(rustix::process::prlimit(
                Some(target),
                Resource::Nofile,
                limit,
            )),
        );
        self.record(
            label,
            format!("set another process's priority ({id})"),
            FAILS,
            io(rustix::process::setpriority_process(Some(target), 5)),
        );
        let affinity = io(rustix::thread::sched_getaffinity(None))
            .and_then(|cpus| io(rustix::thread::sched_setaffinity(Some(target), &cpus)));
        self.record(
            label,
            format!("set another process's CPU affinity ({id})"),
            FAILS,
            affinity,
        );
        self.record(
            label,
            format!("open a pidfd of another process ({id})"),
            FAILS,
            io(rustix::process::pidfd_open(
                target,
                rustix::process::PidfdFlags::empty(),
            )),
        );
    }

    /// Sockets of each family and type the grant's rules do not name.
    fn sockets(&mut self, rules: &[NetRule]) {
        use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
        let label = "ambient: sockets";
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let granted = |transport, access, addr| {
            rules
                .iter()
                .any(|rule| rule.permits(transport, access, addr))
        };
        if !granted(Transport::Tcp, NetAccess::Bind, loopback) {
            self.record(
                label,
                "std::net::TcpListener::bind(127.0.0.1:0)",
                FAILS,
                TcpListener::bind(loopback),
            );
        }
        if let Some(addr) = [9u16, 22, 443, 40_002]
            .into_iter()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .find(|addr| !granted(Transport::Tcp, NetAccess::Connect, *addr))
        {
            self.record(
                label,
                format!("std::net::TcpStream::connect({addr})"),
                FAILS,
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
            );
        }
        if !granted(Transport::Udp, NetAccess::Bind, loopback) {
            self.record(
                label,
                "std::net::UdpSocket::bind(127.0.0.1:0)",
                FAILS,
                UdpSocket::bind(loopback),
            );
        }
        let discard = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
        if !granted(Transport::Udp, NetAccess::Connect, discard) {
            self.record(
                label,
                format!("send a UDP datagram to {discard}"),
                FAILS,
                UdpSocket::bind(loopback).and_then(|socket| socket.send_to(b"x", discard)),
            );
        }
        self.record(
            label,
            "create a Unix datagram socket",
            FAILS,
            UnixDatagram::unbound(),
        );
        self.record(
            label,
            "create a Unix socket pair",
            FAILS,
            UnixStream::pair(),
        );
        let beside_canary = self.canary_dir.join("ambient-unix-socket");
        let bound = UnixListener::bind(&beside_canary);
        if bound.is_ok() {
            let _ = std::fs::remove_file(&beside_canary);
        }
        self.record(label, "bind a Unix socket next to the canary", FAILS, bound);
        for (what, family, kind, protocol) in [
            (
                "open a raw IPv4 socket",
                AddressFamily::INET,
                SocketType::RAW,
                Some(ipproto::ICMP),
            ),
            (
                "open a raw IPv6 socket",
                AddressFamily::INET6,
                SocketType::RAW,
                Some(ipproto::ICMPV6),
            ),
            (
                "open a packet socket",
                AddressFamily::PACKET,
                SocketType::RAW,
                None,
            ),
            (
                "open a netlink socket",
                AddressFamily::NETLINK,
                SocketType::RAW,
                None,
            ),
            (
                "open an SCTP stream socket",
                AddressFamily::INET,
                SocketType::STREAM,
                Some(ipproto::SCTP),
            ),
            (
                "open a Bluetooth socket",
                AddressFamily::BLUETOOTH,
                SocketType::SEQPACKET,
                None,
            ),
            (
                "open a VSOCK socket",
                AddressFamily::VSOCK,
                SocketType::STREAM,
                None,
            ),
        ] {
            self.record(
                label,
                what,
                FAILS,
                io(rustix::net::socket(family, kind, protocol)),
            );
        }
    }

    /// Host paths of the granted directories, used around the capability:
    /// what Landlock allows there, and the set-id modes it does not govern.
    fn inside_granted_directories(&mut self, inventory: &Inventory<'_>) {
        let label = "ambient: granted directories";
        let canary = self.canary.clone();
        // Directories the grant may write: a read-only directory inside one
        // of them is writable through the grant, by design.
        let writable: Vec<(String, PathBuf)> = inventory
            .iter()
            .filter(|held| {
                matches!(
                    held.capability(),
                    Capability::Dir {
                        rights: Rights::Full
                    }
                )
            })
            .filter_map(|held| {
                let path = self.host.host_path(held.descriptor()?.borrow())?;
                Some((held.field().to_owned(), path))
            })
            .collect();
        let granted: Vec<Identity> = inventory
            .iter()
            .filter(|held| matches!(held.capability(), Capability::Dir { .. }))
            .filter_map(|held| Identity::of_descriptor(held.descriptor()?.borrow()))
            .collect();
        for held in inventory.iter() {
            let (Capability::Dir { rights }, Some(descriptor)) =
                (held.capability(), held.descriptor())
            else {
                continue;
            };
            self.climb_from_descriptor(label, held.field(), descriptor.borrow(), &granted);
            let Some(host) = self.host.host_path(descriptor.borrow()) else {
                continue;
            };
            if *rights != Rights::Full
                && let Some((by, _)) = writable.iter().find(|(_, full)| host.starts_with(full))
            {
                self.skip(
                    label,
                    format!("ambient writes inside read-only `{}`", held.field()),
                    format!("the grant may write there through `{by}`"),
                );
                continue;
            }
            let field = held.field().to_owned();
            match rights {
                Rights::Full => self.writable_directory(label, &field, &host, &canary),
                _ => self.read_only_directory_around(label, &field, &host, descriptor.borrow()),
            }
        }
    }

    /// `..` of a granted directory's raw descriptor, as code holding its
    /// number would open it: the kernel must refuse it unless it is granted
    /// too.
    fn climb_from_descriptor(
        &mut self,
        label: &str,
        field: &str,
        fd: BorrowedFd<'_>,
        granted: &[Identity],
    ) {
        let parent = io(rustix::fs::openat(
            fd,
            "..",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        ));
        let inside = parent
            .as_ref()
            .is_ok_and(|parent| beneath_granted(parent.as_fd(), granted));
        let expected = if inside { Expected::StaysInside } else { FAILS };
        self.record(
            label,
            format!("open `..` of the raw descriptor of `{field}` (openat)"),
            expected,
            parent,
        );
    }

    fn writable_directory(&mut self, label: &str, field: &str, host: &Path, canary: &Path) {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        self.record(
            label,
            format!("std symlink to the canary inside `{field}`"),
            FAILS,
            std::os::unix::fs::symlink(canary, host.join("ambient-symlink")),
        );
        self.record(
            label,
            format!("std hard link to the canary inside `{field}`"),
            FAILS,
            std::fs::hard_link(canary, host.join("ambient-hardlink")),
        );
        let file = host.join("ambient-set-id");
        if std::fs::write(&file, b"#!").is_ok() {
            self.record(
                label,
                format!("std chmod 4755 inside `{field}`"),
                FAILS,
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4755)),
            );
            let _ = std::fs::remove_file(&file);
        }
        // Set-id bits given at creation, which no chmod rule sees.
        let created = host.join("ambient-set-uid-at-creation");
        self.record(
            label,
            format!("create a set-user-ID file with OpenOptions::mode inside `{field}`"),
            FAILS,
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o4755)
                .open(&created),
        );
        let _ = std::fs::remove_file(&created);
        let created = host.join("ambient-set-gid-openat");
        self.record(
            label,
            format!("openat(O_CREAT, 02755) inside `{field}`"),
            FAILS,
            io(rustix::fs::openat(
                rustix::fs::CWD,
                &created,
                rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                rustix::fs::Mode::from_raw_mode(0o2755),
            )),
        );
        let _ = std::fs::remove_file(&created);
        let created = host.join("ambient-set-uid-mknod");
        self.record(
            label,
            format!("mknod a set-user-ID regular file inside `{field}`"),
            FAILS,
            io(rustix::fs::mknodat(
                rustix::fs::CWD,
                &created,
                rustix::fs::FileType::RegularFile,
                rustix::fs::Mode::from_raw_mode(0o4755),
                0,
            )),
        );
        let _ = std::fs::remove_file(&created);
    }

    fn read_only_directory_around(
        &mut self,
        label: &str,
        field: &str,
        host: &Path,
        fd: BorrowedFd<'_>,
    ) {
        let through_fd = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        self.record(
            label,
            format!("std::fs::write inside read-only `{field}`"),
            FAILS,
            std::fs::write(host.join("ambient-file"), b"x"),
        );
        self.record(
            label,
            format!("create through `/proc/self/fd/N` of read-only `{field}`"),
            FAILS,
            std::fs::write(through_fd.join("ambient-file"), b"x"),
        );
        self.record(
            label,
            format!("openat(O_CREAT|O_WRONLY) via rustix in read-only `{field}`"),
            FAILS,
            io(rustix::fs::openat(
                rustix::fs::CWD,
                through_fd.join("ambient-openat"),
                rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                rustix::fs::Mode::from_raw_mode(0o600),
            )),
        );
        // A read-only directory's descriptor is itself opened for reading
        // only, which says nothing of what may be created beneath it.
        self.record(
            label,
            format!("create through the raw descriptor of read-only `{field}` (openat)"),
            FAILS,
            io(rustix::fs::openat(
                fd,
                "ambient-raw",
                rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                rustix::fs::Mode::from_raw_mode(0o600),
            )),
        );
    }
}

/// Whether the directory `dir` is one of the `granted` directories or lies
/// beneath one: its ancestors are climbed until one is granted, or the
/// climb stops (at the root, or refused).
fn beneath_granted(dir: BorrowedFd<'_>, granted: &[Identity]) -> bool {
    let mut current = Identity::of_descriptor(dir);
    let mut climbing = rustix::fs::openat(
        dir,
        "..",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    );
    for _ in 0..super::super::host::DEPTH * 4 {
        if current.is_some_and(|id| granted.contains(&id)) {
            return true;
        }
        let Ok(parent) = climbing else { return false };
        let above = Identity::of_descriptor(parent.as_fd());
        if above == current {
            return false;
        }
        current = above;
        climbing = rustix::fs::openat(
            &parent,
            "..",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        );
    }
    false
}

fn pid(id: u32) -> std::io::Result<Pid> {
    i32::try_from(id)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("{id} is not a process id")))
}
