//! The enumeration of a grant: which capabilities it holds, where, and with
//! which rights.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use crate::caps::{NetRule, RandomSource};
use crate::channel::ChannelId;

/// One step of a field path inside a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A named struct field: `originals`.
    Field(&'static str),
    /// A tuple or tuple-struct position: `.0`.
    Position(usize),
    /// An element of a `Vec` or an array: `[3]`.
    Index(usize),
    /// The variant of an enum that is currently held: `Fast`.
    Variant(&'static str),
}

pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Field(name) | Segment::Variant(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Segment::Position(i) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&i.to_string());
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

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

/// The operating-system descriptor behind a directory or file capability.
///
/// Only its number is public, for audits and logs. The descriptor itself is
/// not handed out: anyone holding it could reopen the directory with more
/// rights than the capability carries.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor<'g> {
    #[cfg(unix)]
    fd: std::os::fd::BorrowedFd<'g>,
    _grant: PhantomData<&'g ()>,
}

impl<'g> Descriptor<'g> {
    /// The descriptor behind `handle`, on platforms that have descriptors.
    #[cfg(unix)]
    pub(crate) fn of(handle: &'g impl std::os::fd::AsFd) -> Option<Self> {
        Some(Self {
            fd: handle.as_fd(),
            _grant: PhantomData,
        })
    }

    /// The descriptor behind `handle`, on platforms that have descriptors.
    #[cfg(not(unix))]
    pub(crate) fn of<T>(_handle: &'g T) -> Option<Self> {
        None
    }

    /// The descriptor number, for display.
    #[cfg(unix)]
    pub fn number(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// The descriptor itself, for the crate's own probes and policies.
    #[cfg(all(unix, any(feature = "testkit", feature = "lockdown")))]
    pub(crate) fn borrow(&self) -> std::os::fd::BorrowedFd<'g> {
        self.fd
    }
}

/// One capability found in a grant.
#[derive(Debug, Clone)]
pub struct Held<'g> {
    field: String,
    capability: Capability,
    revocable: bool,
    descriptor: Option<Descriptor<'g>>,
    /// The capability itself, for the crate's own probes.
    object: Option<&'g (dyn Any + Send)>,
}

impl<'g> Held<'g> {
    /// The field path inside the grant, such as `inputs[2].dir`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What the capability allows.
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// Whether a revocation switch is attached to it.
    pub fn is_revocable(&self) -> bool {
        self.revocable
    }

    /// The descriptor behind a directory or file capability.
    pub fn descriptor(&self) -> Option<Descriptor<'g>> {
        self.descriptor
    }

    /// The capability value, for the crate's own probes (the testkit).
    #[allow(dead_code, reason = "read by the feature-gated testkit")]
    pub(crate) fn object(&self) -> Option<&'g (dyn Any + Send)> {
        self.object
    }
}

impl fmt::Display for Held<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() {
            "<grant>"
        } else {
            &self.field
        };
        write!(f, "{field}: {}", self.capability)?;
        #[cfg(unix)]
        if let Some(descriptor) = &self.descriptor {
            write!(f, " [fd {}]", descriptor.number())?;
        }
        if self.revocable {
            f.write_str(" [revocable]")?;
        }
        Ok(())
    }
}

/// The capabilities of a grant, collected by [`Grant::visit`](crate::Grant::visit).
///
/// # Examples
///
/// ```
/// use compartment::caps::{Capability, MonotonicClock};
/// use compartment::Grant;
///
/// let (clock, _control) = MonotonicClock::manual();
/// let grant = (clock, 7u8);
/// let inventory = grant.inventory();
/// assert_eq!(inventory.len(), 1);
/// assert_eq!(inventory.iter().next().unwrap().field(), "0");
/// assert_eq!(*inventory.iter().next().unwrap().capability(), Capability::MonotonicClock);
/// ```
#[derive(Debug, Default)]
pub struct Inventory<'g> {
    path: Vec<Segment>,
    held: Vec<Held<'g>>,
}

impl<'g> Inventory<'g> {
    /// An empty inventory; [`Grant::inventory`](crate::Grant::inventory) is
    /// the usual way to get a filled one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Descends into `segment`; everything held until the matching
    /// [`leave`](Self::leave) is reported under it.
    pub fn enter(&mut self, segment: Segment) {
        self.path.push(segment);
    }

    /// Returns from the innermost [`enter`](Self::enter).
    pub fn leave(&mut self) {
        self.path.pop();
    }

    /// Reports a capability at the current path.
    pub fn hold(&mut self, capability: Capability) {
        self.held.push(Held {
            field: render_path(&self.path),
            capability,
            revocable: false,
            descriptor: None,
            object: None,
        });
    }

    /// Reports one of the crate's own capabilities, `object`, at the current
    /// path.
    pub(crate) fn record(
        &mut self,
        object: &'g (dyn Any + Send),
        capability: Capability,
        revocable: bool,
        descriptor: Option<Descriptor<'g>>,
    ) {
        self.held.push(Held {
            field: render_path(&self.path),
            capability,
            revocable,
            descriptor,
            object: Some(object),
        });
    }

    /// The capabilities in the order they were visited (field order).
    pub fn iter(&self) -> std::slice::Iter<'_, Held<'g>> {
        self.held.iter()
    }

    /// How many capabilities were found.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether the grant holds no capability at all (plain data only).
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

impl<'a, 'g> IntoIterator for &'a Inventory<'g> {
    type Item = &'a Held<'g>;
    type IntoIter = std::slice::Iter<'a, Held<'g>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for Inventory<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.held.is_empty() {
            return f.write_str("(no capabilities)\n");
        }
        for held in &self.held {
            writeln!(f, "{held}")?;
        }
        Ok(())
    }
}
