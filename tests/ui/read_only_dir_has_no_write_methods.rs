// A read-only directory has no method that changes the tree.
fn attempt(dir: compartment::caps::ReadOnlyDir, other: compartment::caps::Dir) {
    dir.write("f", b"x");
    dir.create("f");
    dir.create_dir("d");
    dir.remove_file("f");
    dir.remove_dir_all("d");
    dir.rename("f", &other, "g");
    dir.hard_link("f", &other, "g");
    dir.symlink("f", "g");
    dir.set_permissions("f", todo!());
    dir.open_with("f", todo!());
}

fn main() {}
