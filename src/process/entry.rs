//! Entries that may run in a process child, found there by name.

use std::fmt;

use super::child::{self, Launch};
use super::portable::Portable;
use crate::component::BoxError;
use crate::context::Context;

/// A component entry function named so that a process child can find it:
/// made by [`entry!`](crate::entry), passed to [`init`](super::init) and to
/// [`Child::process`](crate::Child::process).
///
/// The name is the function's path as the compiler spells it; with it goes
/// a fingerprint of the grant and error types, so a child never runs an
/// entry with a grant of another type.
pub struct Entry<G, E> {
    name: &'static str,
    run: fn(G, &Context) -> Result<(), E>,
}

impl<G, E> Clone for Entry<G, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G, E> Copy for Entry<G, E> {}

impl<G, E> fmt::Debug for Entry<G, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field(
                "fingerprint",
                &format_args!("{:016x}", fingerprint::<G, E>()),
            )
            .finish()
    }
}

impl<G, E> Entry<G, E>
where
    G: Portable,
    E: Into<BoxError> + 'static,
{
    /// An entry named `name`; use [`entry!`](crate::entry), which names it
    /// after the function.
    #[doc(hidden)]
    pub fn new(name: &'static str, run: fn(G, &Context) -> Result<(), E>) -> Self {
        Self { name, run }
    }

    /// The function's path, such as `plugin_host::tenant`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The types an entry takes and returns, as a number: FNV-1a over their
/// names.
pub(crate) fn fingerprint<G, E>() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let names = [std::any::type_name::<G>(), "|", std::any::type_name::<E>()];
    for byte in names.iter().flat_map(|name| name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// An entry as [`init`](super::init) keeps it: its name, its fingerprint
/// and how to run it in a child. Implemented by [`Entry`] only.
pub trait Registered: Sync {
    /// The entry's name.
    fn name(&self) -> &'static str;

    /// The fingerprint of its grant and error types.
    fn fingerprint(&self) -> u64;

    /// Runs the entry in a new process child; never returns.
    #[doc(hidden)]
    fn launch(&self, launch: Launch) -> !;
}

impl<G, E> Registered for Entry<G, E>
where
    G: Portable,
    E: Into<BoxError> + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn fingerprint(&self) -> u64 {
        fingerprint::<G, E>()
    }

    fn launch(&self, launch: Launch) -> ! {
        child::run(self.run, launch)
    }
}

/// Names an entry function for the process tier: `entry!(path::to::f)`
/// is an [`Entry`] called after `f`'s full path.
///
/// Use the same macro in the list given to
/// [`process::init`](crate::process::init) and in
/// [`Child::process`](crate::Child::process): both name the function the
/// same way wherever they are written.
#[macro_export]
macro_rules! entry {
    ($function:path) => {
        $crate::process::Entry::new(::core::any::type_name_of_val(&$function), $function)
    };
}
