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
    dir.create_dir_with("d", todo!());
    dir.set_times("f", None, None);
    dir.set_symlink_permissions("f", todo!());
    dir.remove_file_or_symlink("f");
    dir.symlink_file("f", "g");
}

// Nor do the entries it lists.
fn through_an_entry(entry: compartment::caps::ReadOnlyDirEntry) {
    entry.remove_file();
    entry.remove_dir();
    entry.open_with(todo!());
}

fn main() {}
