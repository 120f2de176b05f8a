//! The module's linear memory as host calls see it: every pointer and
//! length the module passes is checked against the memory's bounds, and a
//! bad one is `EFAULT`, never a host fault.

use super::errno::Errno;

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

    /// A UTF-8 string of `len` bytes at `ptr` (a path, a name).
    pub(crate) fn str(&self, ptr: i32, len: i32) -> Result<&str, Errno> {
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

    /// The `(pointer, length)` pairs of a WASI `iovec` array of `count`
    /// entries at `ptr`.
    pub(crate) fn iovecs(&self, ptr: i32, count: i32) -> Result<Vec<(i32, i32)>, Errno> {
        let count = u32::try_from(count).map_err(|_| Errno::INVAL)?;
        (0..count)
            .map(|i| {
                let at = (ptr as u32).wrapping_add(i * 8) as i32;
                Ok((self.u32(at)? as i32, self.u32(at.wrapping_add(4))? as i32))
            })
            .collect()
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
        let mut at = buffer as u32;
        for (i, string) in strings.iter().enumerate() {
            self.put_u32((pointers as u32).wrapping_add(i as u32 * 4) as i32, at)?;
            self.write(at as i32, string.as_bytes())?;
            self.write((at as usize + string.len()) as i32, &[0])?;
            at = at.wrapping_add(string.len() as u32 + 1);
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
