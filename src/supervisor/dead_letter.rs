//! `DeadLetter`: a message that crashed its component too often.

use std::any::Any;
use std::fmt;

use crate::channel::ChannelId;

/// A message that crashed its component as many times in a row as the
/// child's poison threshold, taken out of circulation instead of being
/// delivered again.
pub struct DeadLetter {
    /// The component that kept crashing on it.
    pub path: String,
    /// The channel it was received from.
    pub channel: ChannelId,
    /// The message, formatted with `Debug`.
    pub description: String,
    /// How many instances died handling it.
    pub attempts: u32,
    message: Box<dyn Any + Send>,
}

impl DeadLetter {
    pub(crate) fn new(
        path: String,
        channel: ChannelId,
        description: String,
        attempts: u32,
        message: Box<dyn Any + Send>,
    ) -> Self {
        Self {
            path,
            channel,
            description,
            attempts,
            message,
        }
    }

    /// The message itself, if it is a `T`.
    ///
    /// # Errors
    ///
    /// Gives the dead letter back when the message is of another type.
    pub fn downcast<T: 'static>(self) -> Result<T, Self> {
        match self.message.downcast::<T>() {
            Ok(message) => Ok(*message),
            Err(message) => Err(Self { message, ..self }),
        }
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("path", &self.path)
            .field("channel", &self.channel)
            .field("description", &self.description)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}
