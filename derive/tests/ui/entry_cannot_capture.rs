// A component's entry is a function pointer: a closure that captures
// anything does not coerce to one, so nothing reaches a component except
// through its grant.
use compartment::{Child, Context};

fn main() {
    let secret = String::from("captured");
    let _child = Child::new(
        "leaky",
        move |_: (), _: &Context| -> Result<(), String> { Err(secret.clone()) },
        (),
    );
}
