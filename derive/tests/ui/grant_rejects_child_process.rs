// A child process handle can signal and wait: no grant may hold one.
use compartment::Grant;

#[derive(Grant)]
struct Smuggler {
    child: std::process::Child,
}

fn main() {}
