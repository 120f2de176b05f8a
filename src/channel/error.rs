//! One error type per channel operation; a failed send hands the message
//! back.

use std::fmt;

/// Why [`bounded`](super::bounded) refused a capacity.
///
/// # Examples
///
/// ```
/// use compartment::channel::{self, CapacityError};
/// assert!(matches!(channel::bounded::<u8>(usize::MAX), Err(CapacityError::TooLarge { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// The capacity is allocated up front; this much is almost certainly a
    /// mistake that would exhaust memory.
    #[error("a capacity of {requested} exceeds the maximum of {max}")]
    TooLarge {
        /// The capacity asked for.
        requested: usize,
        /// [`MAX_CAPACITY`](super::MAX_CAPACITY).
        max: usize,
    },
}

macro_rules! message_error {
    (
        $(#[$meta:meta])*
        $name:ident by $call:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
        pub enum $name<T> {
            $(
                $(#[$vmeta])*
                #[error($text)]
                $variant(T),
            )+
        }

        impl<T> $name<T> {
            /// The message that could not be sent.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = compartment::channel::bounded::<String>(1)?;
            /// drop(rx); // every receiver is gone
            #[doc = concat!("let failed = ", $call, ".unwrap_err();")]
            /// assert_eq!(failed.into_inner(), "hello"); // the message comes back
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$variant(message) => message,)+
                }
            }

            /// Whether the endpoint's capability was revoked.
            ///
            /// # Examples
            ///
            /// ```
            /// use compartment::{Grant, Revoker};
            /// let (mut tx, _rx) = compartment::channel::bounded::<String>(1)?;
            /// let revoker = Revoker::new();
            /// tx.attach_revoker(&revoker);
            /// revoker.revoke();
            #[doc = concat!("let failed = ", $call, ".unwrap_err();")]
            /// assert!(failed.is_revoked());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn is_revoked(&self) -> bool {
                matches!(self, $name::Revoked(_))
            }

            /// Whether every receiver is gone.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = compartment::channel::bounded::<String>(1)?;
            /// drop(rx);
            #[doc = concat!("let failed = ", $call, ".unwrap_err();")]
            /// assert!(failed.is_disconnected());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $name::Disconnected(_))
            }
        }

        // Written by hand so that `T` needs no `Debug`: messages are often
        // not printable, and the variant is what matters.
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str(concat!(stringify!($name), "::", stringify!($variant), "(..)")),)+
                }
            }
        }
    };
}

message_error! {
    /// [`Sender::send`](super::Sender::send) failed; the message is handed back.
    SendError by "tx.send(\"hello\".to_owned())" {
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The sender's capability was revoked.
        Revoked => "sending on a revoked channel endpoint",
    }
}

message_error! {
    /// [`Sender::try_send`](super::Sender::try_send) failed; the message is
    /// handed back.
    TrySendError by "tx.try_send(\"hello\".to_owned())" {
        /// The channel is at capacity.
        Full => "sending on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The sender's capability was revoked.
        Revoked => "sending on a revoked channel endpoint",
    }
}

message_error! {
    /// [`Sender::send_timeout`](super::Sender::send_timeout) failed; the
    /// message is handed back.
    SendTimeoutError by "tx.send_timeout(\"hello\".to_owned(), std::time::Duration::from_secs(1))" {
        /// The channel stayed full until the timeout.
        Timeout => "timed out sending on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
        /// The sender's capability was revoked.
        Revoked => "sending on a revoked channel endpoint",
    }
}

impl<T> TrySendError<T> {
    /// Whether the channel was full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = compartment::channel::bounded::<u8>(1)?;
    /// tx.try_send(1)?;
    /// assert!(tx.try_send(2).unwrap_err().is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// Whether the send timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = compartment::channel::bounded::<u8>(1)?;
    /// tx.try_send(1)?;
    /// assert!(tx.send_timeout(2, Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
}

/// [`Receiver::recv`](super::Receiver::recv) failed.
///
/// # Examples
///
/// ```
/// let (tx, rx) = compartment::channel::bounded::<u8>(1)?;
/// drop(tx);
/// assert!(rx.recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy, thiserror::Error)]
pub enum RecvError {
    /// The channel is empty and every sender is gone.
    #[error("receiving on an empty, disconnected channel")]
    Disconnected,
    /// The receiver's capability was revoked.
    #[error("receiving on a revoked channel endpoint")]
    Revoked,
}

/// [`Receiver::try_recv`](super::Receiver::try_recv) failed.
///
/// # Examples
///
/// ```
/// use compartment::channel::TryRecvError;
/// let (_tx, rx) = compartment::channel::bounded::<u8>(1)?;
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy, thiserror::Error)]
pub enum TryRecvError {
    /// The channel is empty.
    #[error("receiving on an empty channel")]
    Empty,
    /// The channel is empty and every sender is gone.
    #[error("receiving on an empty, disconnected channel")]
    Disconnected,
    /// The receiver's capability was revoked.
    #[error("receiving on a revoked channel endpoint")]
    Revoked,
}

/// [`Receiver::recv_timeout`](super::Receiver::recv_timeout) failed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use compartment::channel::RecvTimeoutError;
/// let (_tx, rx) = compartment::channel::bounded::<u8>(1)?;
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy, thiserror::Error)]
pub enum RecvTimeoutError {
    /// No message arrived before the timeout.
    #[error("timed out receiving on an empty channel")]
    Timeout,
    /// The channel is empty and every sender is gone.
    #[error("receiving on an empty, disconnected channel")]
    Disconnected,
    /// The receiver's capability was revoked.
    #[error("receiving on a revoked channel endpoint")]
    Revoked,
}
