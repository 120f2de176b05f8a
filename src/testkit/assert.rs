//! `Refusal`, and the `assert_denied!` / `assert_allowed!` macros.

use crate::caps::{EnvError, FsError, NetError, RandomError};
use crate::channel::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::context::ContextError;
use crate::revoke::Revoked;

/// An error that may be the capability model refusing an operation.
///
/// [`assert_denied!`](crate::assert_denied) passes only for refusals: an
/// operation that failed for another reason (a missing file, a full disk)
/// proves nothing about a boundary.
///
/// # Examples
///
/// ```
/// # let tmp = cap_tempfile::tempdir(cap_std::ambient_authority())?;
/// # let dir = compartment::caps::Dir::from_cap_std(tmp.try_clone()?);
/// use compartment::testkit::Refusal;
/// assert!(dir.read("../outside").unwrap_err().is_refusal()); // the capability refused
/// assert!(!dir.read("missing").unwrap_err().is_refusal()); // merely failed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Refusal: std::error::Error {
    /// Whether the capability model refused the operation.
    fn is_refusal(&self) -> bool;

    /// The operation and the path or address, for failure messages.
    fn details(&self) -> String {
        String::new()
    }
}

impl Refusal for FsError {
    fn is_refusal(&self) -> bool {
        FsError::is_refusal(self) || matches!(self, FsError::InvalidPath { .. })
    }

    fn details(&self) -> String {
        format!(
            "operation: {}, path: `{}`, kind: {:?}",
            self.op(),
            self.path().display(),
            self.kind()
        )
    }
}

impl Refusal for NetError {
    fn is_refusal(&self) -> bool {
        NetError::is_refusal(self)
    }
}

impl Refusal for EnvError {
    fn is_refusal(&self) -> bool {
        matches!(self, EnvError::NotGranted { .. } | EnvError::Revoked)
    }
}

impl Refusal for RandomError {
    fn is_refusal(&self) -> bool {
        matches!(self, RandomError::Revoked)
    }
}

impl Refusal for Revoked {
    fn is_refusal(&self) -> bool {
        true
    }
}

impl Refusal for ContextError {
    fn is_refusal(&self) -> bool {
        *self == ContextError::Revoked
    }
}

/// `Read`/`Write` on file and socket capabilities report refusals as
/// `io::Error`s wrapping the typed error.
impl Refusal for std::io::Error {
    fn is_refusal(&self) -> bool {
        Revoked::caused(self)
            || self.get_ref().is_some_and(|inner| {
                inner
                    .downcast_ref::<FsError>()
                    .is_some_and(Refusal::is_refusal)
                    || inner
                        .downcast_ref::<NetError>()
                        .is_some_and(Refusal::is_refusal)
            })
    }

    fn details(&self) -> String {
        format!("kind: {:?}", self.kind())
    }
}

macro_rules! refusal_if_revoked {
    ($($ty:ident $(<$t:ident>)?),*) => {$(
        impl$(<$t>)? Refusal for $ty$(<$t>)? {
            fn is_refusal(&self) -> bool {
                self.is_revoked()
            }
        }
    )*};
}

refusal_if_revoked!(SendError<T>, TrySendError<T>, SendTimeoutError<T>);

macro_rules! refusal_if_revoked_variant {
    ($($ty:ident),*) => {$(
        impl Refusal for $ty {
            fn is_refusal(&self) -> bool {
                matches!(self, $ty::Revoked)
            }
        }
    )*};
}

refusal_if_revoked_variant!(RecvError, TryRecvError, RecvTimeoutError);

/// The message of a failed `assert_denied!` or `assert_allowed!`.
#[doc(hidden)]
pub fn describe_failure(expectation: &str, attempt: &str, error: Option<&dyn Refusal>) -> String {
    match error {
        None => format!("expected `{attempt}` to be denied, but it was allowed"),
        Some(error) => {
            let details = error.details();
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" [{details}]")
            };
            format!("expected `{attempt}` to be {expectation}, but: {error}{details}")
        }
    }
}

/// Asserts that an operation on a capability was refused by the capability
/// model (not merely failed), printing the attempt, and the operation, path
/// and error kind, when it was not.
///
/// # Examples
///
/// ```
/// use compartment::assert_denied;
/// use compartment::testkit::Sandbox;
///
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let docs = sandbox.dir()?.open_dir("docs")?;
/// assert_denied!(docs.read("../../canary"));
/// assert_denied!(docs.read("/etc/passwd"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! assert_denied {
    ($attempt:expr $(,)?) => {
        match $attempt {
            ::core::result::Result::Ok(_) => ::core::panic!(
                "{}",
                $crate::testkit::describe_failure(
                    "denied",
                    ::core::stringify!($attempt),
                    ::core::option::Option::None
                )
            ),
            ::core::result::Result::Err(error) => {
                if !$crate::testkit::Refusal::is_refusal(&error) {
                    ::core::panic!(
                        "{}",
                        $crate::testkit::describe_failure(
                            "denied by the capability",
                            ::core::stringify!($attempt),
                            ::core::option::Option::Some(&error),
                        )
                    );
                }
            }
        }
    };
}

/// Asserts that an operation on a capability succeeded and returns its value,
/// printing the attempt, and the operation, path and error kind, when it did
/// not.
///
/// # Examples
///
/// ```
/// use compartment::assert_allowed;
/// use compartment::testkit::Sandbox;
///
/// let sandbox = Sandbox::standard(compartment::ambient_authority())?;
/// let docs = sandbox.read_only()?.open_dir("docs")?;
/// assert_eq!(assert_allowed!(docs.read("readme.md")), b"readme");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! assert_allowed {
    ($attempt:expr $(,)?) => {
        match $attempt {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(error) => ::core::panic!(
                "{}",
                $crate::testkit::describe_failure(
                    "allowed",
                    ::core::stringify!($attempt),
                    ::core::option::Option::Some(&error),
                )
            ),
        }
    };
}
