//! Listing a directory capability: names and types, nothing that acts.

use std::ffi::OsString;
use std::path::PathBuf;

use cap_std::fs::FileType;

use super::fs_error::{FsError, FsOp};
use crate::revoke::Gate;

/// One entry of a directory listing.
///
/// Unlike cap-std's `DirEntry`, it carries no handle: it cannot open, remove
/// or rename what it names. Act on it through the directory capability that
/// listed it, by [`name`](Self::name).
#[derive(Debug, Clone)]
pub struct DirEntry {
    name: OsString,
    file_type: FileType,
}

impl DirEntry {
    /// The entry's name inside the listed directory.
    pub fn name(&self) -> &OsString {
        &self.name
    }

    /// Whether it is a file, a directory or a symlink (symlinks are not
    /// followed).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }
}

/// The iterator returned by `entries` and `read_dir`.
///
/// Each step checks the capability's revocation gate, so a listing stops
/// with one [`FsError::Revoked`] once its directory is revoked.
#[derive(Debug)]
pub struct Entries {
    inner: cap_std::fs::ReadDir,
    gate: Gate,
    path: PathBuf,
    /// Set after a revocation has been reported, so the iterator ends.
    finished: bool,
}

impl Entries {
    pub(crate) fn new(inner: cap_std::fs::ReadDir, gate: Gate, path: PathBuf) -> Self {
        Self {
            inner,
            gate,
            path,
            finished: false,
        }
    }
}

impl Iterator for Entries {
    type Item = Result<DirEntry, FsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.gate.check().is_err() {
            self.finished = true;
            return Some(Err(FsError::Revoked {
                op: FsOp::ReadDir,
                path: self.path.clone(),
            }));
        }
        let entry = self.inner.next()?;
        Some(
            entry
                .and_then(|entry| {
                    Ok(DirEntry {
                        file_type: entry.file_type()?,
                        name: entry.file_name(),
                    })
                })
                .map_err(|e| FsError::from_io(FsOp::ReadDir, &self.path, e)),
        )
    }
}
