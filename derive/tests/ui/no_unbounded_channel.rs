// Only bounded channels exist.
fn main() {
    let _ = compartment::channel::unbounded::<u8>();
}
