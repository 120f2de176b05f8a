//! Environment: names outside the snapshot, and use after revocation.

use super::{Battery, Expected, Prober};
use crate::caps::Env;
use crate::grant::Descriptor;

impl Battery for Env {
    fn probe(&self, prober: &mut Prober<'_>, label: &str, _: Option<Descriptor<'_>>) {
        prober.environment(label, self);
    }
}

impl Prober<'_> {
    fn environment(&mut self, label: &str, env: &Env) {
        let granted: Vec<&str> = env.names().collect();
        for name in [
            "HOME",
            "PATH",
            "AWS_SECRET_ACCESS_KEY",
            "LD_PRELOAD",
            "SSH_AUTH_SOCK",
        ] {
            if !granted.contains(&name) {
                self.record(
                    label,
                    format!("read `{name}` (not in the snapshot)"),
                    Expected::Denied,
                    env.get(name),
                );
            }
        }
        if let Some(name) = granted.first() {
            let attempt = format!("read granted `{name}` after revocation");
            self.after_revocation(label, attempt, env, |copy| copy.get(name).map(|_| ()));
        }
    }
}
