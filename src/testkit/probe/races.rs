//! Races: another thread swaps a directory for a symlink to the outside
//! while the capability reads, creates or removes through it.

use std::path::Path;

use super::dir_reads::ProbedDir;
use super::{Expected, Outcome, Prober};
use crate::caps::Dir;
use crate::testkit::host::Scratch;
use crate::testkit::sandbox::CANARY_CONTENT;

impl Prober<'_> {
    /// Another thread swaps `swap` between a directory and a symlink to the
    /// canary's directory while the capability reads `swap/canary`.
    pub(super) fn race_read<D: ProbedDir>(&mut self, label: &str, dir: &D, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap/canary");
        let rounds = self.options.race_rounds;
        let (mut inside, mut refused, mut outside) = (0u32, 0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.read_path(&path) {
                Ok(content) if content == CANARY_CONTENT => outside += 1,
                Ok(_) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        self.race_result(
            label,
            "read while a directory is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }

    fn race_result(
        &mut self,
        label: &str,
        attempt: &str,
        rounds: u32,
        inside: u32,
        refused: u32,
        outside: u32,
    ) {
        let summary =
            format!("{rounds} rounds: {inside} inside, {refused} refused, {outside} outside");
        let (outcome, escaped) = if outside > 0 {
            (Outcome::Reached(summary), true)
        } else {
            (Outcome::Contained(summary), false)
        };
        self.push(
            label,
            attempt.to_owned(),
            Expected::StaysInside,
            outcome,
            escaped,
        );
    }

    pub(super) fn race_create(&mut self, label: &str, dir: &Dir, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap/created-in-a-race");
        let rounds = self.options.race_rounds;
        let (mut inside, mut refused) = (0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.write(&path, b"race") {
                Ok(()) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        let outside = u32::from(self.host.exists(&self.canary_dir.join("created-in-a-race")));
        self.race_result(
            label,
            "create while a directory is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }

    pub(super) fn race_remove(&mut self, label: &str, dir: &Dir, scratch: &Scratch) {
        let path = Path::new(&scratch.name).join("swap");
        let rounds = self.options.race_rounds / 4;
        let (mut inside, mut refused) = (0u32, 0u32);
        self.host.start_swapper(scratch);
        for _ in 0..rounds {
            match dir.remove_dir_all(&path) {
                Ok(()) => inside += 1,
                Err(_) => refused += 1,
            }
        }
        self.host.stop_swapper();
        let outside = u32::from(!self.host.exists(&self.canary));
        self.race_result(
            label,
            "remove a tree while it is swapped for a symlink (race)",
            rounds,
            inside,
            refused,
            outside,
        );
    }
}
