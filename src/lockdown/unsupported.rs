//! Lockdown where it cannot be enforced — off Linux, or without the
//! `lockdown` feature: `Require` refuses to start and `BestEffort` reports
//! that nothing is enforced.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Enforcement, LandlockLevel, Lockdown, LockdownError, Mode};
use crate::grant::Inventory;
use crate::threads::SpawnError;

/// A thread's kernel policy: none can exist here.
#[derive(Debug)]
pub(crate) enum Confinement {}

impl Confinement {
    pub(crate) fn spawn(
        self: Arc<Self>,
        _: String,
        _: impl FnOnce() + Send + 'static,
    ) -> Result<JoinHandle<()>, SpawnError> {
        match *self {}
    }
}

/// No thread is ever confined here.
pub(crate) fn confinement() -> Option<Arc<Confinement>> {
    None
}

/// The (empty) policy of a platform that has no kernel sandbox.
#[derive(Debug)]
pub struct Policy {
    mode: Mode,
}

impl Policy {
    /// Compiles the parts of the policy that depend only on what kinds of
    /// capabilities `grant` holds (the seccomp filter).
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when a required part cannot be built here.
    pub fn compile(lockdown: Lockdown, _: &Inventory<'_>) -> Result<Self, LockdownError> {
        Ok(Self {
            mode: lockdown.mode,
        })
    }

    /// Starts a thread for this policy: here, an ordinary thread.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the thread could not be started.
    pub fn spawn(
        &self,
        name: impl Into<String>,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<JoinHandle<()>, SpawnError> {
        Ok(crate::ceiling::spawn(name.into(), work)?)
    }

    /// Confines the calling thread, and threads it spawns later, to what
    /// `grant` holds; reports what the kernel enforced.
    ///
    /// # Errors
    ///
    /// [`LockdownError`] when the policy cannot be enforced as required.
    pub fn apply(&self, _: &Inventory<'_>) -> Result<Enforcement, LockdownError> {
        match self.mode {
            Mode::Require => Err(LockdownError::Unsupported {
                missing: if cfg!(target_os = "linux") {
                    "Landlock and seccomp: compartment was built without its `lockdown` feature"
                } else {
                    "Landlock and seccomp: this is not Linux"
                }
                .to_owned(),
            }),
            Mode::BestEffort => Ok(Enforcement {
                landlock: LandlockLevel::None,
                landlock_abi: None,
                scoped: false,
                tcp_rules: false,
                seccomp: false,
                no_new_privs: false,
                directories: 0,
            }),
        }
    }
}
