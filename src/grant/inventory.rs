//! The enumeration of a grant: which capabilities it holds, where, and with
//! which rights.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use crate::capability::Capability;

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
