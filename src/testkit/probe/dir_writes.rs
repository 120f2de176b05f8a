//! Directory writes: creating, removing, renaming, linking and copying out
//! of the tree; writing through planted symlinks and hard links; set-id
//! bits; and the two ways a planted link could be carried further — a mode
//! change through a file whose inode is shared with the outside, and a hard
//! link of a symlink that points outside.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Battery, Expected, Prober, permissions};
use crate::caps::{Dir, DirBuilder, OpenOptions, SystemTimeSpec};
use crate::grant::Descriptor;

impl Battery for Dir {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, descriptor: Option<Descriptor<'_>>) {
        prober.directory(label, self, descriptor);
        prober.full_directory(label, self, descriptor);
    }
}

impl Prober<'_> {
    fn full_directory(&mut self, label: &str, dir: &Dir, descriptor: Option<Descriptor<'_>>) {
        let denied = Expected::Denied;
        self.record(
            label,
            "create `../escaped`",
            denied,
            dir.write("../escaped", b"x"),
        );
        self.record(
            label,
            "create_dir_all `../escaped/dir`",
            denied,
            dir.create_dir_all("../escaped/dir"),
        );
        self.record(
            label,
            "remove_dir_all `..`",
            denied,
            dir.remove_dir_all(".."),
        );
        self.record(
            label,
            "write the canary by its absolute path",
            denied,
            dir.write(&self.canary, b"x"),
        );
        self.record(
            label,
            "create an absolute symlink",
            denied,
            dir.symlink(&self.canary, "abs-link"),
        );
        self.record(
            label,
            "create a relative symlink that climbs",
            denied,
            dir.symlink("../../..", "up-link"),
        );
        self.record(
            label,
            "create a file symlink to the canary (symlink_file)",
            denied,
            dir.symlink_file(&self.canary, "abs-file-link"),
        );
        self.record(
            label,
            "create a directory symlink that climbs (symlink_dir)",
            denied,
            dir.symlink_dir("..", "up-dir-link"),
        );
        let mut recursive = DirBuilder::new();
        recursive.recursive(true);
        self.record(
            label,
            "create_dir_with `../escaped/dir`",
            denied,
            dir.create_dir_with("../escaped/dir", &recursive),
        );
        self.record(
            label,
            "set the canary's times by its absolute path",
            denied,
            dir.set_times(&self.canary, None, Some(SystemTimeSpec::SymbolicNow)),
        );
        self.record(
            label,
            "set the times of `../<canary>`",
            denied,
            dir.set_times(
                Path::new("..").join(self.canary.file_name().unwrap_or_default()),
                None,
                Some(SystemTimeSpec::SymbolicNow),
            ),
        );
        self.record(
            label,
            "set the times of `../<canary>` without following symlinks",
            denied,
            dir.set_symlink_times(
                Path::new("..").join(self.canary.file_name().unwrap_or_default()),
                None,
                Some(SystemTimeSpec::SymbolicNow),
            ),
        );
        self.record(
            label,
            "chmod the canary by its absolute path without following symlinks",
            denied,
            dir.set_symlink_permissions(&self.canary, permissions(0o600)),
        );
        self.record(
            label,
            "remove `..` as a file or symlink",
            denied,
            dir.remove_file_or_symlink(".."),
        );

        let Some(scratch) = self.scratch(label, descriptor) else {
            return;
        };
        let s = PathBuf::from(&scratch.name);
        self.record(
            label,
            "write through an absolute symlink to the canary",
            denied,
            dir.write(s.join("abs"), b"x"),
        );
        self.record(
            label,
            "write through a relative symlink to the canary",
            denied,
            dir.write(s.join("rel"), b"x"),
        );
        self.record(
            label,
            "create through a dangling symlink pointing outside",
            denied,
            dir.write(s.join("dangling"), b"x"),
        );
        self.record(
            label,
            "set times through an absolute symlink to the canary",
            denied,
            dir.set_times(s.join("abs"), None, Some(SystemTimeSpec::SymbolicNow)),
        );
        self.record(
            label,
            "chmod through an absolute symlink to the canary",
            denied,
            dir.set_permissions(s.join("abs"), permissions(0o600)),
        );
        self.record(
            label,
            "remove the canary through a symlinked directory",
            denied,
            dir.remove_file(s.join("outdir/canary")),
        );
        self.record(
            label,
            "rename the canary through a symlinked directory",
            denied,
            dir.rename(s.join("outdir/canary"), dir, s.join("stolen")),
        );
        self.record(
            label,
            "rename a file to `../escaped`",
            denied,
            dir.rename(s.join("file"), dir, "../escaped"),
        );
        self.record(
            label,
            "hard-link a file to `../escaped`",
            denied,
            dir.hard_link(s.join("file"), dir, "../escaped"),
        );
        self.record(
            label,
            "copy a file to `../escaped`",
            denied,
            dir.copy(s.join("file"), dir, "../escaped"),
        );
        if scratch.hard_link {
            self.record(
                label,
                "write through a hard link to the canary planted beforehand",
                denied,
                dir.write(s.join("hardlink"), b"x"),
            );
            self.record(
                label,
                "chmod a hard link to the canary planted beforehand",
                denied,
                dir.set_permissions(s.join("hardlink"), permissions(0o600)),
            );
            self.record(
                label,
                "set the times of a hard link to the canary planted beforehand",
                denied,
                dir.set_times(s.join("hardlink"), None, Some(SystemTimeSpec::SymbolicNow)),
            );
            self.record(
                label,
                "truncate a planted hard link to the canary through its listed entry",
                denied,
                dir.read_dir(&s)
                    .and_then(|entries| entries.named("hardlink"))
                    .and_then(|entry| {
                        let mut truncate = OpenOptions::new();
                        truncate.write(true).truncate(true);
                        entry.open_with(&truncate).map(drop)
                    }),
            );
            self.record(
                label,
                "chmod through a file opened on a planted hard link to the canary",
                denied,
                dir.open(s.join("hardlink"))
                    .and_then(|file| file.set_permissions(permissions(0o600))),
            );
        } else {
            self.skip(
                label,
                "write through a planted hard link",
                "the canary is on another filesystem",
            );
        }
        for (planted, what) in [
            ("abs", "an absolute symlink to the canary"),
            ("rel", "a relative symlink to the canary"),
            ("dangling", "a dangling symlink pointing outside"),
            ("outdir", "a symlink to an outside directory"),
        ] {
            self.record(
                label,
                format!("hard-link {what} to a new name"),
                denied,
                dir.hard_link(s.join(planted), dir, s.join(format!("linked-{planted}"))),
            );
        }
        self.record(
            label,
            "set the set-user-ID bit",
            denied,
            dir.set_permissions(s.join("file"), permissions(0o4755)),
        );
        self.record(
            label,
            "write through a file opened read-only",
            Expected::Fails,
            dir.open(s.join("file"))
                .map_err(std::io::Error::from)
                .and_then(|mut f| f.write_all(b"x")),
        );
        self.race_create(label, dir, &scratch);
        self.race_remove(label, dir, &scratch);
        self.host.remove(&scratch);
    }
}
