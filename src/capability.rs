//! The capability vocabulary: what a grant can hold, described as plain
//! data for inventories, audits, kernel policies and capability maps.
//!
//! This module names capabilities without depending on them: it reads
//! nothing but the plain values it describes (network rules, random
//! sources, channel ids), so every capability module can report itself in
//! these words and [`grant`](crate::Grant) needs none of them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::caps::NetRule;

/// The rights a directory capability carries, operation by operation.
///
/// | operation | `Full` ([`Dir`](crate::caps::Dir)) | `ReadOnly` ([`ReadOnlyDir`](crate::caps::ReadOnlyDir)) |
/// |---|---|---|
/// | `open`, `read`, `read_to_string`, `read_at` | yes | yes |
/// | `entries`, `read_dir`; an entry's `open`, `open_dir`, `metadata`, `file_type`, `file_name` | yes | yes (read-only entries) |
/// | `metadata`, `symlink_metadata`, `dir_metadata`, `read_link`, `read_link_contents`, `canonicalize`, `exists`, `try_exists`, `is_file`, `is_dir` | yes | yes |
/// | `access` | yes | yes; writing is never granted |
/// | `open_dir`, `open_dir_nofollow`, `try_clone` | yes (full) | yes (read-only) |
/// | `open_with` (any options), `create`, `write`, `write_at`, `set_len`, `sync_data`, `sync_all` | yes, not through a file other hard links name | no |
/// | `create_dir`, `create_dir_all`, `create_dir_with` (`DirBuilder`) | yes, no set-id modes | no |
/// | `remove_file`, `remove_file_or_symlink`, `remove_dir`, `remove_dir_all`; an entry's `remove_file`, `remove_dir`, `open_with` | yes | no |
/// | `rename`, `hard_link`, `copy` | yes, both sides full; no link to a symlink that points out | no |
/// | `symlink`, `symlink_file`, `symlink_dir` | yes, targets that point down only | no |
/// | `set_permissions`, `set_symlink_permissions`, `set_times`, `set_symlink_times` | yes, no set-id bits, not on a file other hard links name | no |
///
/// Neither leaves the directory: absolute paths, `..` above it and
/// symlinks that lead out are refused by every operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rights {
    /// Every operation inside the directory ([`Dir`](crate::caps::Dir)).
    Full,
    /// Reading only ([`ReadOnlyDir`](crate::caps::ReadOnlyDir)).
    ReadOnly,
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rights::Full => "full",
            Rights::ReadOnly => "read-only",
        })
    }
}

/// The access mode an open file capability was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRights {
    /// The file may be read.
    pub read: bool,
    /// The file may be written (or appended to).
    pub write: bool,
}

impl fmt::Display for FileRights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.read, self.write) {
            (true, true) => "read-write",
            (true, false) => "read-only",
            (false, true) => "write-only",
            (false, false) => "no access",
        })
    }
}

/// What kind of authority one held capability carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// A directory handle.
    Dir {
        /// What may be done inside it.
        rights: Rights,
    },
    /// An open file.
    File {
        /// How it was opened.
        rights: FileRights,
    },
    /// A network capability, limited to its rules.
    Net {
        /// The addresses and ports it may connect to or bind.
        rules: Vec<NetRule>,
    },
    /// A monotonic clock.
    MonotonicClock,
    /// The wall clock.
    SystemClock,
    /// A source of random bytes.
    Random {
        /// Where the bytes come from.
        source: RandomSource,
    },
    /// A snapshot of named environment variables.
    Env {
        /// The names the granting side allowed, set or not.
        names: Vec<String>,
    },
    /// The sending end of a bounded channel.
    Sender {
        /// Which channel; the receiver reports the same id.
        channel: ChannelId,
        /// The message type.
        message: &'static str,
        /// The channel's capacity.
        capacity: usize,
    },
    /// The receiving end of a bounded channel.
    Receiver {
        /// Which channel; its senders report the same id.
        channel: ChannelId,
        /// The message type.
        message: &'static str,
        /// The channel's capacity.
        capacity: usize,
    },
    /// A field marked `#[grant(data)]`: plain data re-issued by `Clone`,
    /// reported so that audits see every opt-out.
    Data {
        /// The field's type.
        type_name: &'static str,
    },
    /// A capability type defined outside this crate.
    Other {
        /// What it is, in the implementer's words.
        kind: &'static str,
    },
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Dir { rights } => write!(f, "directory ({rights})"),
            Capability::File { rights } => write!(f, "file ({rights})"),
            Capability::Net { rules } => {
                f.write_str("network (")?;
                for (i, rule) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{rule}")?;
                }
                f.write_str(")")
            }
            Capability::MonotonicClock => f.write_str("monotonic clock"),
            Capability::SystemClock => f.write_str("system clock"),
            Capability::Random { source } => write!(f, "random ({source})"),
            Capability::Env { names } => write!(f, "environment ({})", names.join(", ")),
            Capability::Sender {
                channel,
                message,
                capacity,
            } => write!(
                f,
                "sender on {channel} of {} (capacity {capacity})",
                short_type_name(message)
            ),
            Capability::Receiver {
                channel,
                message,
                capacity,
            } => write!(
                f,
                "receiver on {channel} of {} (capacity {capacity})",
                short_type_name(message)
            ),
            Capability::Data { type_name } => write!(f, "data ({})", short_type_name(type_name)),
            Capability::Other { kind } => f.write_str(kind),
        }
    }
}

/// A type's name without its module paths, for people to read:
/// `alloc::vec::Vec<app::Job>` becomes `Vec<Job>`. The capability keeps the
/// full name (`Capability::Sender::message` and the like) for tools.
///
/// # Examples
///
/// ```
/// use compartment::caps::short_type_name;
///
/// assert_eq!(
///     short_type_name("core::result::Result<alloc::string::String, app::Error>"),
///     "Result<String, Error>"
/// );
/// assert_eq!(short_type_name("(u8, &[std::path::PathBuf])"), "(u8, &[PathBuf])");
/// ```
pub fn short_type_name(name: &str) -> String {
    let mut short = String::with_capacity(name.len());
    let mut segment_start = 0;
    for (at, character) in name.char_indices() {
        if character.is_alphanumeric() || character == '_' || character == ':' {
            continue;
        }
        short.push_str(last_segment(&name[segment_start..at]));
        short.push(character);
        segment_start = at + character.len_utf8();
    }
    short.push_str(last_segment(&name[segment_start..]));
    short
}

/// `c` of `a::b::c`.
fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// Where a [`Random`](crate::caps::Random) capability's bytes come from.
///
/// # Examples
///
/// ```
/// use compartment::caps::{Random, RandomSource};
/// assert_eq!(Random::os(compartment::ambient_authority()).source(), RandomSource::Os);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RandomSource {
    /// The operating system's cryptographic generator.
    Os,
    /// A deterministic generator from a seed (not for secrets).
    Seeded,
}

impl fmt::Display for RandomSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RandomSource::Os => "os",
            RandomSource::Seeded => "seeded",
        })
    }
}

/// Identifies one channel; both endpoints (and all their clones) report the
/// same id, which is how a capability map connects senders to receivers.
///
/// # Examples
///
/// ```
/// let (tx, rx) = compartment::channel::bounded::<u8>(1)?;
/// assert_eq!(tx.id(), rx.id()); // both ends name one channel in the capability map
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(u64);

impl ChannelId {
    /// A channel id that `id` already names: the process tier's bridged
    /// endpoints keep the id of the channel they stand for.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn of(id: u64) -> Self {
        ChannelId(id)
    }

    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ChannelId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number, unique within the process.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = compartment::channel::bounded::<u32>(2)?;
    /// assert_eq!(tx.id().get(), rx.id().get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel #{}", self.0)
    }
}
