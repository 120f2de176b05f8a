//! `Grant`: everything a component may hold, and nothing else.
//!
//! Implemented for capabilities, channel endpoints, plain data and containers
//! in `impls`; enumerated through `inventory`.

mod impls;
mod inventory;

/// `Grant` for a capability whose copies share one underlying authority
/// (clocks, randomness, environment snapshots, network rules, channel
/// endpoints): re-issued by `Clone`, made revocable through its `gate`
/// field, reported as the `Capability` the closure describes.
macro_rules! grant_by_clone {
    (@impl [$($generics:tt)*] $ty:ty, |$this:ident| $capability:expr) => {
        impl<$($generics)*> $crate::Grant for $ty {
            fn reissue(&self) -> Result<Self, $crate::ReissueError> {
                Ok(self.clone())
            }

            fn attach_revoker(&mut self, revoker: &$crate::Revoker) {
                self.gate.attach(revoker);
            }

            fn visit<'g>(&'g self, inventory: &mut $crate::Inventory<'g>) {
                let $this = self;
                inventory.record(self, $capability, self.gate.is_revocable(), None);
            }
        }
    };
    (generic $param:ident, $ty:ty, |$this:ident| $capability:expr) => {
        $crate::grant::grant_by_clone!(@impl [$param: Send + 'static] $ty, |$this| $capability);
    };
    ($ty:ty, |$this:ident| $capability:expr) => {
        $crate::grant::grant_by_clone!(@impl [] $ty, |$this| $capability);
    };
}

pub(crate) use grant_by_clone;

use std::io;

pub use inventory::{Descriptor, Held, Inventory, Segment};

use crate::revoke::Revoker;

/// Everything a component may hold.
///
/// A grant is the value a component's entry function receives. Its type says
/// what the component may do; the [`Grant`] trait is the contract that lets a
/// supervisor re-issue it for every (re)start, revoke it, and enumerate it.
///
/// Implementations exist for every capability type in [`caps`](crate::caps)
/// and [`channel`](crate::channel), for plain data (numbers, `bool`, `char`,
/// `String`, `Duration`, `PathBuf`, socket addresses, ...), and for `Option`,
/// `Vec`, `Box`, arrays and tuples of grants. Structs and enums get one with
/// `#[derive(Grant)]`.
///
/// Handles that carry ambient authority — `std::fs::File`,
/// `std::net::TcpStream`, `std::process::Child`, `OwnedFd`, `Arc<Mutex<_>>`
/// shared with the granting side — deliberately have no implementation, so a
/// struct holding one does not derive `Grant`:
///
/// ```compile_fail
/// use compartment::Grant;
///
/// #[derive(Grant)]
/// struct Smuggler {
///     passwd: std::fs::File, // error: `File` does not implement `Grant`
/// }
/// ```
///
/// # Examples
///
/// ```
/// use compartment::caps::{Env, ReadOnlyDir};
/// use compartment::channel::{self, Sender};
/// use compartment::Grant;
///
/// #[derive(Grant)]
/// struct Reporter {
///     config: Env,
///     out: Sender<String>,
///     retries: u32,
/// }
///
/// let (out, _inbox) = channel::bounded(8)?;
/// let grant = Reporter { config: Env::from_vars([("MODE", "fast")])?, out, retries: 3 };
///
/// // Each (re)start receives a fresh copy; the original stays with the granter.
/// let copy = grant.reissue()?;
/// assert_eq!(copy.retries, 3);
///
/// // The grant can be enumerated, for audits and kernel policies.
/// let inventory = grant.inventory();
/// let fields: Vec<&str> = inventory.iter().map(|held| held.field()).collect();
/// assert_eq!(fields, ["config", "out"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Implementing it by hand
///
/// Prefer `#[derive(Grant)]`. A manual implementation re-issues, attaches
/// and visits every field, wrapping each in [`Inventory::enter`] /
/// [`Inventory::leave`] and [`ReissueError::within`] so that field names
/// reach audits and errors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be held in a grant",
    label = "not a capability or plain data a grant can hold",
    note = "a grant holds capabilities (`caps::Dir`, `caps::ReadOnlyDir`, `caps::File`, channel endpoints, clocks, `caps::Random`, `caps::Env`, `caps::Net`) and plain data",
    note = "for a field of another plain-data type, mark it `#[grant(data)]`: it is re-issued by `Clone`",
    note = "an open `std::fs::File`, socket or process carries authority of its own: open files through a `caps::Dir` (`caps::File`) and sockets through a `caps::Net`; shared state (`Arc`, `Mutex`) would let instances share what a restart must re-issue"
)]
pub trait Grant: Send + Sized + 'static {
    /// A fresh, independent copy for a new instance: duplicated descriptors
    /// (`try_clone`), cloned channel endpoints, cloned data. Dropping or
    /// consuming the copy leaves `self` usable. Revocation switches attached
    /// to `self` are inherited by the copy.
    ///
    /// # Errors
    ///
    /// [`ReissueError`] when a descriptor cannot be duplicated (for example
    /// when the process is out of file descriptors).
    fn reissue(&self) -> Result<Self, ReissueError>;

    /// Makes every capability in `self` subject to `revoker`: after
    /// [`Revoker::revoke`], using it, its re-issued copies or anything derived
    /// from it fails with [`Revoked`](crate::Revoked). Plain data is unaffected.
    fn attach_revoker(&mut self, revoker: &Revoker);

    /// Reports every capability held, with its field path, to `inventory`.
    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>);

    /// Makes `self` revocable by a new [`Revoker`], which the granting side
    /// keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Env;
    /// use compartment::Grant;
    ///
    /// let (env, revoker) = Env::from_vars([("LANG", "C")])?.revocable();
    /// assert!(env.get("LANG").is_ok());
    /// revoker.revoke();
    /// assert!(env.get("LANG").is_err());
    /// # Ok::<(), compartment::caps::EnvError>(())
    /// ```
    fn revocable(mut self) -> (Self, Revoker) {
        let revoker = Revoker::new();
        self.attach_revoker(&revoker);
        (self, revoker)
    }

    /// Every capability this grant holds, in field order.
    fn inventory(&self) -> Inventory<'_> {
        let mut inventory = Inventory::new();
        self.visit(&mut inventory);
        inventory
    }
}

/// Re-issuing a grant failed: one of its handles could not be duplicated.
#[derive(Debug, thiserror::Error)]
#[error("could not re-issue the {capability} at `{}`: {source}", display_field(.field))]
pub struct ReissueError {
    field: Vec<Segment>,
    capability: &'static str,
    #[source]
    source: io::Error,
}

fn display_field(field: &[Segment]) -> String {
    let rendered = inventory::render_path(field);
    if rendered.is_empty() {
        "<grant>".to_owned()
    } else {
        rendered
    }
}

impl ReissueError {
    /// An error for the capability kind `capability` (for example
    /// `"directory"`), caused by `source`.
    pub fn new(capability: &'static str, source: io::Error) -> Self {
        Self {
            field: Vec::new(),
            capability,
            source,
        }
    }

    /// Places the failing capability inside `segment`; used by containers and
    /// derived implementations so the error names the full field path.
    #[must_use]
    pub fn within(mut self, segment: Segment) -> Self {
        self.field.insert(0, segment);
        self
    }

    /// The field path of the capability that failed, such as `inputs[2]`.
    pub fn field(&self) -> String {
        inventory::render_path(&self.field)
    }

    /// The kind of capability that failed.
    pub fn capability(&self) -> &'static str {
        self.capability
    }
}
