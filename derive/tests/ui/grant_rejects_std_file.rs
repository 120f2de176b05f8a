// An open std::fs::File is ambient-origin authority: no grant may hold one.
use compartment::Grant;

#[derive(Grant)]
struct Smuggler {
    passwd: std::fs::File,
}

fn main() {}
