//! Lockdown where it cannot be enforced — off Linux, or without the
//! `lockdown` feature: `Require` refuses to start and `BestEffort` reports
//! that nothing is enforced.

use super::{Enforcement, LandlockLevel, Lockdown, LockdownError, Mode};
use crate::grant::Inventory;

/// The (empty) policy of a platform that has no kernel sandbox.
#[derive(Debug)]
pub(crate) struct Policy {
    mode: Mode,
}

impl Policy {
    pub(crate) fn compile(lockdown: Lockdown, _: &Inventory<'_>) -> Result<Self, LockdownError> {
        Ok(Self {
            mode: lockdown.mode,
        })
    }

    pub(crate) fn apply(&self, _: &Inventory<'_>) -> Result<Enforcement, LockdownError> {
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
