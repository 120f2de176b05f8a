// Shared mutable state would outlive an instance and leak into its successor.
use compartment::Grant;

#[derive(Grant)]
struct Smuggler {
    shared: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

fn main() {}
