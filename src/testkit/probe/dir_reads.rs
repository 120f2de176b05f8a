//! Directory reads: climbing out by `..`, absolute paths, `/proc`, planted
//! symlinks (absolute, relative, dangling, chains, loops), deep nesting,
//! odd paths, revocation, and raw descriptors of read-only files.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Battery, Expected, Prober, revoked_copy};
use crate::caps::{AccessModes, AccessType, Dir, FsError, ReadOnlyDir};
use crate::grant::{Descriptor, Grant};
use crate::testkit::host::{DEPTH, Scratch};

/// The directory capabilities, seen alike by the read-side attempts.
pub(super) trait ProbedDir: Grant {
    fn read_path(&self, path: &Path) -> Result<Vec<u8>, FsError>;
    fn open_sub(&self, path: &Path) -> Result<Self, FsError>;
    fn metadata_of(&self, path: &Path) -> Result<(), FsError>;
    fn list(&self, path: &Path) -> Result<usize, FsError>;
    fn access_of(&self, path: &Path) -> Result<(), FsError>;
    fn open_sub_nofollow(&self, path: &Path) -> Result<Self, FsError>;
    fn link_target(&self, path: &Path) -> Result<PathBuf, FsError>;
    /// Opens, through its entry in a listing of `dir`, the entry named
    /// `name`.
    fn open_listed(&self, dir: &Path, name: &str) -> Result<(), FsError>;
}

/// Both directory capabilities have these methods under the same names.
macro_rules! probed_dir {
    ($($dir:ty),*) => {$(
        impl ProbedDir for $dir {
            fn read_path(&self, path: &Path) -> Result<Vec<u8>, FsError> {
                self.read(path)
            }
            fn open_sub(&self, path: &Path) -> Result<Self, FsError> {
                self.open_dir(path)
            }
            fn metadata_of(&self, path: &Path) -> Result<(), FsError> {
                self.metadata(path).map(|_| ())
            }
            fn list(&self, path: &Path) -> Result<usize, FsError> {
                Ok(self.read_dir(path)?.count())
            }
            fn access_of(&self, path: &Path) -> Result<(), FsError> {
                self.access(path, AccessType::Access(AccessModes::READ))
            }
            fn open_sub_nofollow(&self, path: &Path) -> Result<Self, FsError> {
                self.open_dir_nofollow(path)
            }
            fn link_target(&self, path: &Path) -> Result<PathBuf, FsError> {
                self.read_link(path)
            }
            fn open_listed(&self, dir: &Path, name: &str) -> Result<(), FsError> {
                self.read_dir(dir)?.named(name)?.open().map(drop)
            }
        }
    )*};
}

probed_dir!(Dir, ReadOnlyDir);

impl Battery for ReadOnlyDir {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, descriptor: Option<Descriptor<'_>>) {
        prober.directory(label, self, descriptor);
        prober.read_only_directory(label, self);
    }
}

impl Prober<'_> {
    pub(super) fn directory<D: ProbedDir>(
        &mut self,
        label: &str,
        dir: &D,
        descriptor: Option<Descriptor<'_>>,
    ) {
        let canary = self.canary.clone();
        let canary_name = canary.file_name().map(PathBuf::from).unwrap_or_default();
        let denied = Expected::Denied;
        self.record(
            label,
            "open `..`",
            denied,
            dir.open_sub(Path::new("..")).map(|_| ()),
        );
        self.record(
            label,
            "read `../<canary>`",
            denied,
            dir.read_path(&Path::new("..").join(&canary_name)),
        );
        self.record(
            label,
            "read `../../../../../../../../etc/passwd`",
            denied,
            dir.read_path(Path::new("../../../../../../../../etc/passwd")),
        );
        self.record(
            label,
            "read `/etc/passwd`",
            denied,
            dir.read_path(Path::new("/etc/passwd")),
        );
        self.record(
            label,
            "read the canary by its absolute path",
            denied,
            dir.read_path(&canary),
        );
        self.record(
            label,
            "read `/proc/self/root/etc/passwd`",
            denied,
            dir.read_path(Path::new("/proc/self/root/etc/passwd")),
        );
        self.record(
            label,
            "list `/proc/self/cwd`",
            denied,
            dir.list(Path::new("/proc/self/cwd")),
        );
        if let Some(descriptor) = descriptor {
            let through_fd = PathBuf::from(format!("/proc/self/fd/{}/..", descriptor.number()));
            self.record(
                label,
                "list `/proc/self/fd/<own fd>/..`",
                denied,
                dir.list(&through_fd),
            );
        }
        self.record(
            label,
            "read a path with a NUL byte",
            denied,
            dir.read_path(Path::new("ok\0/../../etc/passwd")),
        );
        self.record(
            label,
            "read an empty path",
            denied,
            dir.read_path(Path::new("")),
        );
        let long: PathBuf = std::iter::repeat_n("x", 3000).collect();
        self.record(
            label,
            "read a 6000-byte path",
            Expected::Fails,
            dir.read_path(&long),
        );

        let Some(scratch) = self.scratch(label, descriptor) else {
            return;
        };
        self.planted_reads(label, dir, &scratch);
        self.race_read(label, dir, &scratch);
        self.revoked_directory(label, dir, &scratch);
        self.host.remove(&scratch);
    }

    /// Reads through the fixtures planted in `scratch`.
    fn planted_reads<D: ProbedDir>(&mut self, label: &str, dir: &D, scratch: &Scratch) {
        let denied = Expected::Denied;
        let canary_name = self
            .canary
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        let s = PathBuf::from(&scratch.name);
        self.record(
            label,
            "check access to `../<canary>`",
            denied,
            dir.access_of(&Path::new("..").join(&canary_name)),
        );
        self.record(
            label,
            "check access through an absolute symlink to the canary",
            denied,
            dir.access_of(&s.join("abs")),
        );
        self.record(
            label,
            "open `..` without following symlinks",
            denied,
            dir.open_sub_nofollow(Path::new("..")).map(drop),
        );
        self.record(
            label,
            "open a symlinked outside directory without following symlinks",
            Expected::Fails,
            dir.open_sub_nofollow(&s.join("outdir")).map(drop),
        );
        self.record(
            label,
            "read the target of an absolute symlink to the canary",
            denied,
            dir.link_target(&s.join("abs")),
        );
        self.record(
            label,
            "open an absolute symlink to the canary through its listed entry",
            denied,
            dir.open_listed(&s, "abs"),
        );
        self.record(
            label,
            "open a relative symlink to the canary through its listed entry",
            denied,
            dir.open_listed(&s, "rel"),
        );
        self.record(
            label,
            "read `<scratch>/../../<canary>` (climb in the middle)",
            denied,
            dir.read_path(&s.join("../..").join(&canary_name)),
        );
        self.record(
            label,
            "open `<scratch>/d/../../..` (climb at the end)",
            denied,
            dir.open_sub(&s.join("d/../../..")).map(|_| ()),
        );
        self.record(
            label,
            "read through an absolute symlink to the canary",
            denied,
            dir.read_path(&s.join("abs")),
        );
        self.record(
            label,
            "read through a relative symlink to the canary",
            denied,
            dir.read_path(&s.join("rel")),
        );
        self.record(
            label,
            "metadata through a symlink to the canary",
            denied,
            dir.metadata_of(&s.join("abs")),
        );
        self.record(
            label,
            "list a symlinked outside directory",
            denied,
            dir.list(&s.join("outdir")),
        );
        self.record(
            label,
            "read through a symlink chain ending outside",
            denied,
            dir.read_path(&s.join("chain-1")),
        );
        self.record(
            label,
            "read a symlink loop",
            Expected::Fails,
            dir.read_path(&s.join("loop-a")),
        );
        let deepest: PathBuf = std::iter::repeat_n("d", DEPTH).collect();
        let climb: PathBuf = std::iter::repeat_n("..", DEPTH + 2).collect();
        self.record(
            label,
            format!("climb out from {DEPTH} levels deep"),
            denied,
            dir.read_path(&s.join(&deepest).join(climb).join(&canary_name)),
        );
    }

    fn revoked_directory<D: ProbedDir>(&mut self, label: &str, dir: &D, scratch: &Scratch) {
        let s = Path::new(&scratch.name);
        let (copy, revoker) = revoked_copy(dir);
        let Ok(copy) = copy else {
            self.skip(label, "use after revocation", "cannot re-issue");
            return;
        };
        let sub = copy.open_sub(s);
        revoker.revoke();
        self.record(
            label,
            "read after revocation",
            Expected::Denied,
            copy.read_path(&s.join("file")),
        );
        match sub {
            Ok(sub) => self.record(
                label,
                "read through a subdirectory opened before revocation",
                Expected::Denied,
                sub.read_path(Path::new("file")),
            ),
            Err(err) => self.skip(
                label,
                "read through a subdirectory opened before revocation",
                err.to_string(),
            ),
        }
    }

    fn read_only_directory(&mut self, label: &str, dir: &ReadOnlyDir) {
        let Ok(entries) = dir.entries() else { return };
        let file = entries
            .filter_map(Result::ok)
            .find(|e| e.file_type().is_file())
            .and_then(|e| dir.open(e.name()).ok());
        if let Some(file) = file {
            let inventory = file.inventory();
            let descriptor = inventory.iter().next().and_then(|held| held.descriptor());
            self.read_only_descriptor(label, "a file opened through it", descriptor);
            let attempt = "read a file opened before revocation".into();
            self.after_revocation(label, attempt, &file, |copy| copy.read(&mut [0u8; 1]));
        }
    }

    /// Writes and truncates through the raw descriptor of a read-only file:
    /// the kernel refuses, because the descriptor itself is read-only.
    pub(super) fn read_only_descriptor(
        &mut self,
        label: &str,
        what: &str,
        descriptor: Option<Descriptor<'_>>,
    ) {
        let Some(descriptor) = descriptor else { return };
        let fd = descriptor.borrow();
        self.record(
            label,
            format!("write through the descriptor of {what}"),
            Expected::Fails,
            rustix::io::write(fd, b"overwritten").map_err(std::io::Error::from),
        );
        self.record(
            label,
            format!("truncate through the descriptor of {what}"),
            Expected::Fails,
            rustix::fs::ftruncate(fd, 0).map_err(std::io::Error::from),
        );
    }
}
