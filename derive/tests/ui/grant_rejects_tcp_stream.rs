// A std TcpStream was connected with ambient authority: no grant may hold one.
use compartment::Grant;

#[derive(Grant)]
struct Smuggler {
    socket: std::net::TcpStream,
}

fn main() {}
