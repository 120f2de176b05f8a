//! The status board: what `status()` reads, updated entry by entry as the
//! supervisor publishes events about a child.

use std::sync::Arc;

use crate::supervisor::slot::{Handle, Slot, SlotState, Spec};
use crate::supervisor::status::{BoardEntry, ChildState, NodeKind};

use super::NodeState;

impl NodeState {
    /// Rebuilds the whole status board, one entry per slot (`None` for
    /// retired ones), in slot order.
    pub(super) fn sync_status(&self) {
        *self.board.entries.lock() = self.board_entries();
    }

    /// Updates child `i`'s entry only. The board mirrors the slots: slots
    /// added at the end get their entries appended, and a slot taken out
    /// takes its entry with it (`take_slot`); a board that has fallen out
    /// of step all the same is rebuilt rather than misread.
    pub(super) fn sync_slot(&self, i: usize) {
        let mut entries = self.board.entries.lock();
        if entries.len() > self.slots.len() {
            *entries = self.board_entries();
            return;
        }
        let known = entries.len();
        // Starting the initial children appends one entry each: room for
        // all of them at once (and for children added later, room that
        // grows as a vector's does, not by one entry and a copy each).
        entries.reserve(self.slots.len() - known);
        entries.extend(
            self.slots[known..]
                .iter()
                .map(|slot| self.board_entry(slot)),
        );
        if i < known {
            entries[i] = self.board_entry(&self.slots[i]);
        }
    }

    /// Takes entry `i` off the board, after its slot was taken out: the
    /// entries after it move up with the slots.
    pub(super) fn unlist(&self, i: usize) {
        let mut entries = self.board.entries.lock();
        let entry = (i < entries.len()).then(|| entries.remove(i));
        drop(entries);
        drop(entry);
    }

    pub(super) fn board_entries(&self) -> Vec<Option<BoardEntry>> {
        self.slots
            .iter()
            .map(|slot| self.board_entry(slot))
            .collect()
    }

    pub(super) fn board_entry(&self, slot: &Slot) -> Option<BoardEntry> {
        if slot.retired {
            return None;
        }
        let (kind, nested) = match &slot.spec {
            Spec::Worker(child) => (child.factory.tier(), None),
            Spec::Supervisor {
                strategy,
                pool,
                board,
                ..
            } => (
                NodeKind::Supervisor {
                    strategy: *strategy,
                    pool: *pool,
                },
                board.clone(),
            ),
        };
        let (meter, threads) = match &slot.state {
            SlotState::Running {
                handle: Handle::Worker { meter, threads, .. },
                ..
            } => (meter.clone(), Some(Arc::clone(threads))),
            _ => (None, None),
        };
        Some(BoardEntry {
            path: Arc::clone(&slot.path),
            kind,
            state: match slot.state {
                SlotState::Running { .. } => ChildState::Running,
                SlotState::Restarting => ChildState::Restarting,
                SlotState::BackingOff => ChildState::BackingOff,
                SlotState::Stopped => ChildState::Stopped,
            },
            instance: slot.instance,
            restarts: slot.restarts,
            last_fault: slot.last_fault.clone(),
            leaked: slot.leaked,
            lockdown: slot.enforcement,
            capabilities: match &slot.capabilities {
                Ok(capabilities) => Arc::clone(capabilities),
                Err(_) => Arc::from([]),
            },
            nested,
            meter,
            threads,
        })
    }
}
