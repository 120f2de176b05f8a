//! The process tier's shared pages: memory that a supervisor and one of its
//! children both map, the one `unsafe` the channel bridges need.
//!
//! The pages belong to a sealed `memfd`: its size can be neither shrunk nor
//! grown once made, so a child cannot cut the pages from under the
//! supervisor's mapping (touching pages past a file's end raises `SIGBUS`,
//! which would end the supervisor's whole process). Every access to the
//! pages is an atomic one: the other process writes them whenever it likes,
//! and an atomic access to memory another thread or process changes at the
//! same time is defined, where a plain one is a data race.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// Pages mapped shared, readable and writable, for as long as this lives.
#[derive(Debug)]
pub(crate) struct SharedPages {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: the pages are only reached through atomics (`words`, `bytes`),
// which any thread may use at the same time; the mapping itself is
// unmapped once, by `Drop`, when no borrow of it is left.
unsafe impl Send for SharedPages {}
// SAFETY: as for `Send`: shared references hand out atomics only.
unsafe impl Sync for SharedPages {}

impl SharedPages {
    /// Makes `len` bytes of zeroed shared memory in a sealed `memfd` named
    /// `name`, maps it, and returns the descriptor to pass to the process
    /// that maps it too.
    pub(crate) fn create(name: &str, len: usize) -> io::Result<(OwnedFd, Self)> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let pages = Self::map(fd.as_fd(), len)?;
        Ok((fd, pages))
    }

    /// Maps the first `len` bytes of `fd`, which must be at least that
    /// long: refused otherwise, as touching a page past the end of the
    /// file would raise `SIGBUS`.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        let size = rustix::fs::fstat(fd)?.st_size;
        if len == 0 || u64::try_from(size).map_or(true, |size| size < len as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shared memory of {size} bytes where {len} were expected"),
            ));
        }
        // SAFETY: a new mapping chosen by the kernel (a null hint), so no
        // existing memory is replaced; `len` is within the file, as checked
        // above, and the file cannot shrink when it was made by `create`
        // (sealed); a file the other side could shrink hurts only the
        // process that maps it from there, which is the child.
        let start = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let start = NonNull::new(start.cast::<u8>())
            .ok_or_else(|| io::Error::other("a shared mapping at address zero"))?;
        Ok(Self { start, len })
    }

    /// The pages' first `count` 64-bit words.
    ///
    /// # Panics
    ///
    /// If `count` words do not fit in the pages (a caller's constant).
    pub(crate) fn words(&self, count: usize) -> &[AtomicU64] {
        assert!(count * 8 <= self.len, "{count} words past the pages");
        // SAFETY: the mapping is page-aligned (so aligned for `AtomicU64`),
        // at least `count * 8` bytes long (asserted) and lives as long as
        // `self`; it is only ever reached through atomics.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().cast::<AtomicU64>(), count) }
    }

    /// The `len` bytes from `offset` on.
    ///
    /// # Panics
    ///
    /// If they are not within the pages (a caller's constant).
    pub(crate) fn bytes(&self, offset: usize, len: usize) -> &[AtomicU8] {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "{len} bytes at {offset} past the pages"
        );
        // SAFETY: within the mapping (asserted), which lives as long as
        // `self`; `AtomicU8` has no alignment needs, and the bytes are only
        // ever reached through atomics.
        unsafe {
            std::slice::from_raw_parts(self.start.as_ptr().add(offset).cast::<AtomicU8>(), len)
        }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // SAFETY: the mapping `map` made, unmapped once; no borrow of it
        // outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.start.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_the_pages_see_each_others_writes() {
        let (fd, made) = SharedPages::create("test", 8192).unwrap();
        let mapped = SharedPages::map(fd.as_fd(), 8192).unwrap();
        made.words(2)[1].store(0x1234, Ordering::Release);
        assert_eq!(mapped.words(2)[1].load(Ordering::Acquire), 0x1234);
        mapped.bytes(8191, 1)[0].store(7, Ordering::Release);
        assert_eq!(made.bytes(8000, 192)[191].load(Ordering::Acquire), 7);
    }

    #[test]
    fn the_pages_cannot_be_shrunk_or_grown() {
        let (fd, pages) = SharedPages::create("test", 4096).unwrap();
        assert!(rustix::fs::ftruncate(&fd, 0).is_err());
        assert!(rustix::fs::ftruncate(&fd, 8192).is_err());
        // Nor can the seals be lifted by sealing further.
        assert!(rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE).is_err());
        pages.bytes(4095, 1)[0].store(1, Ordering::Relaxed);
    }

    #[test]
    fn a_mapping_longer_than_its_file_is_refused() {
        let (fd, _pages) = SharedPages::create("test", 4096).unwrap();
        let refused = SharedPages::map(fd.as_fd(), 8192).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    }
}
