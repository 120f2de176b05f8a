// No capability hands out its descriptor, so none can be upgraded with raw
// syscalls.
use std::os::fd::AsFd;

fn attempt(dir: compartment::caps::ReadOnlyDir, file: compartment::caps::ReadOnlyFile) {
    let _ = dir.as_fd();
    let _ = file.as_fd();
    let _ = dir.into_std_file();
}

fn main() {}
