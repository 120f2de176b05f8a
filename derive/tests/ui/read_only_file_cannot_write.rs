// A file opened through a read-only directory cannot be written or resized.
use std::io::Write;

fn attempt(mut file: compartment::caps::ReadOnlyFile) {
    file.write_all(b"x");
    file.set_len(0);
    file.set_permissions(todo!());
}

fn main() {}
