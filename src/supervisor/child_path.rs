//! A child's path as a checked value: looked up once in the live tree, so
//! a misspelt name is an error at the lookup, not an event that never
//! matches.

use std::fmt;
use std::sync::Arc;

use crate::event::Event;

/// The path of a child or supervisor that was running when it was looked
/// up with [`System::child`](super::System::child).
///
/// Match events with [`Event::is_about`] (or compare with `==` against the
/// event's `path`) and pass it wherever a path is taken.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::event::EventKind;
/// use compartment::{Child, Context, ControlError, Supervisor};
///
/// fn idle(_: (), cx: &Context) -> Result<(), compartment::Cancelled> {
///     loop {
///         cx.sleep(Duration::from_secs(60))?;
///     }
/// }
///
/// let supervisor = Supervisor::new("app").child(Child::new("idle", idle, ()));
/// let events = supervisor.events(16);
/// let system = supervisor.start()?;
/// let idle = system.child("app/idle")?;
/// system.remove_child(&idle)?;
/// let (exited, _) = events.wait_for(Duration::from_secs(30), |e| {
///     e.is_about(&idle) && matches!(e.kind, EventKind::Exited { .. })
/// });
/// assert!(exited.is_some());
/// // A typo is found at once, not by a wait that times out.
/// assert!(matches!(system.child("app/idel"), Err(ControlError::NotFound { .. })));
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildPath(Arc<str>);

impl ChildPath {
    pub(crate) fn new(path: &str) -> Self {
        Self(Arc::from(path))
    }

    /// The path, such as `app/workers/resizer`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the child's own name.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&*self.0, |(_, name)| name)
    }
}

impl Event {
    /// Whether this event is about `child` (not about one of its own
    /// children).
    pub fn is_about(&self, child: &ChildPath) -> bool {
        self.path == child.as_str()
    }
}

impl fmt::Display for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChildPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<ChildPath> for String {
    fn eq(&self, other: &ChildPath) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<ChildPath> for str {
    fn eq(&self, other: &ChildPath) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<str> for ChildPath {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
