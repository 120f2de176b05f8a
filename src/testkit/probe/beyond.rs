//! Attempts that only a process boundary stops: what a thread shares with
//! its whole process, which neither the types nor a thread's kernel policy
//! can take away — metadata of outside paths, `/proc`, the program's
//! environment, process-wide registries, and the process's life itself.
//!
//! In a thread these get through (the boundary table's "no" rows), except
//! those that end the process, which are skipped there. In a process child
//! every one is made; one that ends the process is announced to the host
//! first and counts by how the process ended.

#![allow(
    clippy::disallowed_methods,
    reason = "these are the ambient calls a component could make anyway: only a process boundary stops them"
)]

use std::path::PathBuf;

use super::{Expected, Outcome, Prober};
use crate::capability::Capability;
use crate::grant::Inventory;
use crate::testkit::assert::Refusal;

const FAILS: Expected = Expected::Fails;

/// Whether the battery runs in a process child, where ending the process
/// ends only the child.
pub(super) fn in_process_child() -> bool {
    #[cfg(all(feature = "process", target_os = "linux"))]
    {
        crate::process::in_child()
    }
    #[cfg(not(all(feature = "process", target_os = "linux")))]
    {
        false
    }
}

/// Recurses until the stack runs out.
#[allow(unconditional_recursion, reason = "it is meant to overflow the stack")]
fn overflow(depth: u64) -> u64 {
    let frame = [depth; 64];
    overflow(std::hint::black_box(frame[7]) + 1) + 1
}

impl Prober<'_> {
    /// Every class of attempt a thread cannot be kept from, each under its
    /// own label.
    pub(super) fn beyond_threads(&mut self, inventory: &Inventory<'_>) {
        self.outside_metadata_reads();
        self.proc_paths(inventory);
        self.program_environment();
        self.process_wide_registries();
        self.ending_the_process();
    }

    fn outside_metadata_reads(&mut self) {
        let label = "beyond threads: metadata";
        let canary = self.canary.clone();
        self.record(
            label,
            "stat the canary by its path",
            FAILS,
            std::fs::metadata(&canary),
        );
        self.record(
            label,
            "stat /etc/passwd",
            FAILS,
            std::fs::symlink_metadata("/etc/passwd"),
        );
        self.record(
            label,
            "test whether /home exists",
            FAILS,
            match std::fs::exists("/home") {
                Ok(true) => Ok(()),
                Ok(false) => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
                Err(err) => Err(err),
            },
        );
    }

    /// The host paths behind the grant's descriptors, which a thread reads
    /// from `/proc/self/fd` (Landlock does not govern `readlink`).
    fn proc_paths(&mut self, inventory: &Inventory<'_>) {
        let label = "beyond threads: /proc";
        for held in inventory.iter() {
            let (Capability::Dir { .. } | Capability::File { .. }, Some(descriptor)) =
                (held.capability(), held.descriptor())
            else {
                continue;
            };
            let link = PathBuf::from(format!("/proc/self/fd/{}", descriptor.number()));
            self.record(
                label,
                format!(
                    "read the host path of `{}` from {}",
                    held.field(),
                    link.display()
                ),
                FAILS,
                std::fs::read_link(&link),
            );
        }
    }

    fn program_environment(&mut self) {
        let label = "beyond threads: environment";
        let names = std::env::vars_os().count();
        self.record(
            label,
            "read the program's environment variables (std::env::vars)",
            FAILS,
            if names == 0 {
                Err(std::io::Error::other("no variable is set"))
            } else {
                Ok(names)
            },
        );
    }

    /// A panic hook is the process's: whichever thread panics runs it,
    /// confined or not. The battery installs one that rewrites the canary
    /// and has the host panic on a thread of its own.
    fn process_wide_registries(&mut self) {
        let label = "beyond threads: global registries";
        let canary = self.canary.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |_| {
            let _ = std::fs::write(&canary, b"rewritten by a component's panic hook\n");
        }));
        self.host.panic();
        drop(std::panic::take_hook());
        std::panic::set_hook(previous);
        self.push(
            label,
            "replace the process's panic hook, then the host panics".to_owned(),
            Expected::StaysInside,
            Outcome::Contained("the hook was installed; the host's panic did not run it".into()),
            false,
        );
    }

    fn ending_the_process(&mut self) {
        let label = "beyond threads: ending the process";
        self.ends(label, "std::process::abort()", || std::process::abort());
        self.ends(label, "std::process::exit(0)", || std::process::exit(0));
        self.ends(label, "overflow the stack", || {
            let _ = overflow(0);
            std::process::abort()
        });
        self.ends(label, "panic while panicking", || {
            struct PanicsWhenDropped;
            impl Drop for PanicsWhenDropped {
                fn drop(&mut self) {
                    panic!("a second panic, while the first unwinds");
                }
            }
            let _armed = PanicsWhenDropped;
            panic!("the first panic")
        });
    }

    /// The key under which an attempt that may end the process is
    /// announced.
    fn key(label: &str, attempt: &str) -> String {
        format!("{label} / {attempt}")
    }

    /// Makes an attempt that may end the prober's process (the process
    /// tier's policy kills it for some calls a thread's only refuses). In a
    /// process child it is announced to the host first; when the process
    /// ends, the next instance records how instead of trying again.
    pub(super) fn may_end<T, E: Refusal + 'static>(
        &mut self,
        label: &str,
        attempt: &str,
        expected: Expected,
        make: impl FnOnce() -> Result<T, E>,
    ) {
        let key = Self::key(label, attempt);
        if let Some(how) = self.concluded.get(&key).cloned() {
            let outcome = Outcome::Failed(format!("the process was ended for it: {how}"));
            self.push(label, attempt.to_owned(), expected, outcome, false);
            return;
        }
        let journaled = in_process_child();
        if journaled {
            self.host.begin(&key);
        }
        let result = make();
        if journaled {
            self.host.finish();
        }
        self.record(label, attempt, expected, result);
    }

    /// Makes an attempt that ends the prober's process, in a process child
    /// only (anywhere else it would end the tree being tested, and is
    /// skipped). It stays inside when it ends only the child.
    fn ends(&mut self, label: &str, attempt: &str, make: fn() -> !) {
        let key = Self::key(label, attempt);
        if let Some(how) = self.concluded.get(&key).cloned() {
            let outcome = Outcome::Contained(format!("ended only its own process: {how}"));
            self.push(
                label,
                attempt.to_owned(),
                Expected::StaysInside,
                outcome,
                false,
            );
            return;
        }
        if !in_process_child() {
            self.skip(
                label,
                attempt,
                "it would end the prober's own process: only a process child can try it",
            );
            return;
        }
        self.host.begin(&key);
        make()
    }
}
