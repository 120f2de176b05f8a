//! Random sequences of path operations through directory capabilities, for
//! the fuzz target and the property test: one model, two drivers.

use std::fmt;
use std::path::PathBuf;

use super::sandbox::{CanaryChanged, Sandbox, SandboxError};
use crate::caps::{Dir, ReadOnlyDir};

/// The path pieces operations are built from: ordinary names, the standard
/// fixture's links to the outside, climbs, absolute paths and bad bytes.
const PIECES: &[&str] = &[
    "a",
    "b",
    "notes.txt",
    "docs",
    "deep",
    "er",
    "links",
    "abs-canary",
    "rel-canary",
    "outside-dir",
    "dangling",
    "chain-1",
    "loop-a",
    "hardlink",
    "..",
    ".",
    "/",
    "/tmp",
    "/etc/passwd",
    "/proc/self/root",
    "../canary",
    "bad\0name",
    "",
];

/// One operation of a sequence.
///
/// # Examples
///
/// ```
/// use compartment::testkit::Sandbox;
/// use compartment::testkit::ops::{Op, apply};
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let (dir, read_only) = (sandbox.dir()?, sandbox.read_only()?);
/// apply(&Op::Write("notes.txt".into(), b"new".to_vec()), &dir, &read_only);
/// apply(&Op::Write("../canary".into(), b"escaped".to_vec()), &dir, &read_only);
/// assert_eq!(dir.read("notes.txt")?, b"new");
/// assert!(sandbox.canary().is_intact());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `read` through the full capability.
    Read(PathBuf),
    /// `read` through the read-only capability.
    ReadOnly(PathBuf),
    /// `write`.
    Write(PathBuf, Vec<u8>),
    /// `create_dir_all`.
    CreateDir(PathBuf),
    /// `remove_file`.
    RemoveFile(PathBuf),
    /// `remove_dir_all`.
    RemoveDirAll(PathBuf),
    /// `rename` within the capability.
    Rename(PathBuf, PathBuf),
    /// `hard_link` within the capability.
    HardLink(PathBuf, PathBuf),
    /// `copy` within the capability.
    Copy(PathBuf, PathBuf),
    /// `symlink(target, link)`.
    Symlink(PathBuf, PathBuf),
    /// `set_permissions` with a mode.
    Chmod(PathBuf, u32),
    /// `open_dir`, then `entries` of the result.
    List(PathBuf),
}

/// Reads bytes one at a time, yielding zeros once exhausted.
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    fn path(&mut self) -> PathBuf {
        let pieces = 1 + usize::from(self.next() % 4);
        let mut path = String::new();
        for i in 0..pieces {
            if i > 0 {
                path.push('/');
            }
            path.push_str(PIECES[usize::from(self.next()) % PIECES.len()]);
        }
        PathBuf::from(path)
    }
}

/// Decodes a byte string into a sequence of at most 64 operations: every
/// byte string is a valid sequence, so a fuzzer can drive it directly.
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut bytes = Bytes(data.iter());
    let mut ops = Vec::new();
    while bytes.0.len() > 0 && ops.len() < 64 {
        let op = match bytes.next() % 12 {
            0 => Op::Read(bytes.path()),
            1 => Op::ReadOnly(bytes.path()),
            2 => Op::Write(bytes.path(), vec![bytes.next(); 4]),
            3 => Op::CreateDir(bytes.path()),
            4 => Op::RemoveFile(bytes.path()),
            5 => Op::RemoveDirAll(bytes.path()),
            6 => Op::Rename(bytes.path(), bytes.path()),
            7 => Op::HardLink(bytes.path(), bytes.path()),
            8 => Op::Copy(bytes.path(), bytes.path()),
            9 => Op::Symlink(bytes.path(), bytes.path()),
            10 => Op::Chmod(
                bytes.path(),
                [0o644, 0o4755, 0o2755, 0o777][usize::from(bytes.next() % 4)],
            ),
            _ => Op::List(bytes.path()),
        };
        ops.push(op);
    }
    ops
}

/// Applies `op`; its result is irrelevant, only its effect outside counts.
pub fn apply(op: &Op, dir: &Dir, read_only: &ReadOnlyDir) {
    use cap_std::fs::PermissionsExt;
    let _ = match op {
        Op::Read(path) => dir.read(path).map(drop),
        Op::ReadOnly(path) => read_only.read(path).map(drop),
        Op::Write(path, content) => dir.write(path, content),
        Op::CreateDir(path) => dir.create_dir_all(path),
        Op::RemoveFile(path) => dir.remove_file(path),
        Op::RemoveDirAll(path) => dir.remove_dir_all(path),
        Op::Rename(from, to) => dir.rename(from, dir, to),
        Op::HardLink(from, to) => dir.hard_link(from, dir, to),
        Op::Copy(from, to) => dir.copy(from, dir, to).map(drop),
        Op::Symlink(target, link) => dir.symlink(target, link),
        Op::Chmod(path, mode) => {
            dir.set_permissions(path, cap_std::fs::Permissions::from_mode(*mode))
        }
        Op::List(path) => read_only
            .open_dir(path)
            .and_then(|sub| sub.entries().map(|entries| entries.for_each(drop))),
    };
}

/// A sequence reached outside its sandbox: the operations and what they
/// changed. [`CheckError::Escaped`] carries one; its `Display` lists the
/// operations, ready to paste into a regression test.
///
/// # Examples
///
/// ```
/// use compartment::testkit::CanaryChanged;
/// use compartment::testkit::ops::{Escape, Op};
/// let escape = Escape {
///     ops: vec![Op::Write("../canary".into(), b"x".to_vec())],
///     change: CanaryChanged::Rewritten("/tmp/canary".into()),
/// };
/// let report = escape.to_string();
/// assert!(report.starts_with("the canary at `/tmp/canary` was rewritten after:"));
/// assert!(report.contains("Write(\"../canary\""));
/// ```
#[derive(Debug)]
pub struct Escape {
    /// The operations, in order.
    pub ops: Vec<Op>,
    /// What changed outside.
    pub change: CanaryChanged,
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} after:", self.change)?;
        for op in &self.ops {
            writeln!(f, "  {op:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Escape {}

/// Why a sequence could not be checked.
///
/// # Examples
///
/// ```
/// use compartment::testkit::ops::{CheckError, check_sequence};
/// // Every byte string decodes to operations; none of them escapes.
/// match check_sequence(b"\x06\x0e\x0e\x0e\x02\x09\x03", compartment::ambient_authority()) {
///     Ok(()) => {}
///     Err(CheckError::Escaped(escape)) => panic!("{escape}"),
///     Err(other) => return Err(other.into()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// It escaped.
    #[error(transparent)]
    Escaped(Box<Escape>),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The sandbox root could not be opened.
    #[error(transparent)]
    Open(#[from] crate::caps::FsError),
}

/// Runs the sequence `data` decodes to in a fresh [`Sandbox::standard`],
/// through a full and a read-only capability on its root, and checks that
/// nothing outside the root changed.
///
/// # Ambient Authority
///
/// Creates the sandbox on the host: test code only.
///
/// # Errors
///
/// [`CheckError::Escaped`] with the sequence when the canary changed.
pub fn check_sequence(
    data: &[u8],
    ambient_authority: cap_std::AmbientAuthority,
) -> Result<(), CheckError> {
    let sandbox = Sandbox::standard(ambient_authority)?;
    let dir = sandbox.dir()?;
    let read_only = sandbox.read_only()?;
    let ops = decode(data);
    for op in &ops {
        apply(op, &dir, &read_only);
    }
    sandbox
        .canary()
        .check()
        .map_err(|change| CheckError::Escaped(Box::new(Escape { ops, change })))
}
