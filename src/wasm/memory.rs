//! The module's linear memory as host calls see it: every pointer and
//! length the module passes is checked against the memory's bounds, and a
//! bad one is `EFAULT`, never a host fault.

use super::errno::Errno;

/// The longest path or name a module may pass.
const PATH_MAX: usize = 4096;

/// The most buffers one read or write may name.
const IOV_MAX: u32 = 1024;

/// The address `offset` bytes past `ptr`; past the 32-bit address space is
/// `EFAULT` (it never wraps round to the start of memory).
pub(crate) fn at(ptr: i32, offset: u32) -> Result<i32, Errno> {
    (ptr as u32)
        .checked_add(offset)
        .map(|address| address as i32)
        .ok_or(Errno::FAULT)
}

/// A view of the calling module's memory for one host call.
pub(crate) struct Guest<'m> {
    memory: &'m mut [u8],
}

impl<'m> Guest<'m> {
    pub(crate) fn new(memory: &'m mut [u8]) -> Self {
        Self { memory }
    }

    fn range(&self, ptr: i32, len: u32) -> Result<std::ops::Range<usize>, Errno> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
        if end > self.memory.len() {
            return Err(Errno::FAULT);
        }
        Ok(start..end)
    }

    /// `len` bytes at `ptr`.
    pub(crate) fn bytes(&self, ptr: i32, len: i32) -> Result<&[u8], Errno> {
        let range = self.range(ptr, len as u32)?;
        Ok(&self.memory[range])
    }

    /// `len` writable bytes at `ptr`.
    pub(crate) fn bytes_mut(&mut self, ptr: i32, len: i32) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, len as u32)?;
        Ok(&mut self.memory[range])
    }

    /// A UTF-8 string of `len` bytes at `ptr` (a path, a name): longer
    /// than a path may be is `ENAMETOOLONG`, before it is read.
    pub(crate) fn str(&self, ptr: i32, len: i32) -> Result<&str, Errno> {
        if len as u32 as usize > PATH_MAX {
            return Err(Errno::NAMETOOLONG);
        }
        std::str::from_utf8(self.bytes(ptr, len)?).map_err(|_| Errno::ILSEQ)
    }

    pub(crate) fn write(&mut self, ptr: i32, bytes: &[u8]) -> Result<(), Errno> {
        self.bytes_mut(ptr, bytes.len() as i32)?
            .copy_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn u32(&self, ptr: i32) -> Result<u32, Errno> {
        let bytes = self.bytes(ptr, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(crate) fn u64(&self, ptr: i32) -> Result<u64, Errno> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.bytes(ptr, 8)?);
        Ok(u64::from_le_bytes(word))
    }

    pub(crate) fn put_u32(&mut self, ptr: i32, value: u32) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub(crate) fn put_u64(&mut self, ptr: i32, value: u64) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Checks a WASI `iovec` array's length: more than [`IOV_MAX`] is
    /// `EINVAL`, as POSIX has it. Its entries are read one at a time with
    /// [`iovec`](Self::iovec), so a call allocates nothing for them.
    pub(crate) fn iovec_count(count: i32) -> Result<u32, Errno> {
        match u32::try_from(count) {
            Ok(count) if count <= IOV_MAX => Ok(count),
            _ => Err(Errno::INVAL),
        }
    }

    /// The `(pointer, length)` of entry `index` of the `iovec` array at
    /// `ptr`.
    pub(crate) fn iovec(&self, ptr: i32, index: u32) -> Result<(i32, i32), Errno> {
        let entry = at(ptr, index.checked_mul(8).ok_or(Errno::FAULT)?)?;
        Ok((self.u32(entry)? as i32, self.u32(at(entry, 4)?)? as i32))
    }

    /// Writes `strings` as a NUL-terminated list into `buffer`, with a
    /// pointer to each in the array at `pointers` (`args_get`,
    /// `environ_get`).
    pub(crate) fn string_list(
        &mut self,
        strings: &[String],
        pointers: i32,
        buffer: i32,
    ) -> Result<(), Errno> {
        let mut next = buffer;
        for (i, string) in strings.iter().enumerate() {
            let pointer = u32::try_from(i * 4).map_err(|_| Errno::FAULT)?;
            self.put_u32(at(pointers, pointer)?, next as u32)?;
            self.write(next, string.as_bytes())?;
            let len = u32::try_from(string.len()).map_err(|_| Errno::FAULT)?;
            let end = at(next, len)?;
            self.write(end, &[0])?;
            next = at(end, 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_is_a_fault_not_a_panic() {
        let mut memory = vec![0u8; 16];
        let mut guest = Guest::new(&mut memory);
        assert_eq!(guest.bytes(12, 8).unwrap_err(), Errno::FAULT);
        assert_eq!(guest.bytes(-1, 2).unwrap_err(), Errno::FAULT);
        assert_eq!(guest.put_u64(12, 1).unwrap_err(), Errno::FAULT);
        guest.put_u32(12, 0xdead_beef).unwrap();
        assert_eq!(guest.u32(12).unwrap(), 0xdead_beef);
        assert_eq!(guest.str(0, 2).unwrap(), "\0\0");
        assert_eq!(at(-4, 8).unwrap_err(), Errno::FAULT, "no wrapping round");
        assert_eq!(guest.str(0, 1 << 20).unwrap_err(), Errno::NAMETOOLONG);
        assert_eq!(Guest::iovec_count(1 << 20).unwrap_err(), Errno::INVAL);
        assert_eq!(Guest::iovec_count(-1).unwrap_err(), Errno::INVAL);
        assert_eq!(guest.iovec(8, 1).unwrap_err(), Errno::FAULT);
        assert_eq!(guest.iovec(0, u32::MAX).unwrap_err(), Errno::FAULT);
    }

    #[test]
    fn string_lists_are_nul_terminated_with_pointers() {
        let mut memory = vec![0u8; 64];
        let mut guest = Guest::new(&mut memory);
        guest
            .string_list(&["ab".to_owned(), "c".to_owned()], 0, 16)
            .unwrap();
        assert_eq!(guest.u32(0).unwrap(), 16);
        assert_eq!(guest.u32(4).unwrap(), 19);
        assert_eq!(guest.bytes(16, 5).unwrap(), b"ab\0c\0");
    }
}
