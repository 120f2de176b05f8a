// A raw descriptor is authority without rights: no grant may hold one.
use compartment::Grant;

#[derive(Grant)]
struct Smuggler {
    fd: std::os::fd::OwnedFd,
}

fn main() {}
