//! `Random`: a source of random bytes, from the OS or from a seed.

use std::io;
use std::sync::Arc;

use cap_std::AmbientAuthority;
use parking_lot::Mutex;

use crate::capability::Capability;
pub use crate::capability::RandomSource;
use crate::grant::grant_by_clone;
use crate::revoke::Gate;

/// Drawing random data failed.
///
/// # Examples
///
/// ```
/// use compartment::caps::RandomError;
/// assert!(matches!(compartment::caps::Random::seeded(1).below(0), Err(RandomError::ZeroBound)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RandomError {
    /// The capability was revoked.
    #[error("cannot draw random data: capability revoked")]
    Revoked,
    /// [`Random::below`] was asked for a number below zero.
    #[error("cannot draw a number below 0")]
    ZeroBound,
    /// The operating system's generator failed.
    #[error("the operating system's random generator failed: {0}")]
    Io(#[source] io::Error),
}

/// xoshiro256** state, seeded through splitmix64 so that any `u64` seed
/// (including zero) gives a well-mixed start.
#[derive(Debug)]
struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    fn from_seed(mut seed: u64) -> Self {
        let mut next = || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }
}

#[derive(Debug, Clone)]
enum Source {
    Os,
    Seeded(Arc<Mutex<Xoshiro256>>),
}

/// A random-data capability.
///
/// [`Random::os`] draws from the operating system's cryptographic generator;
/// [`Random::seeded`] is deterministic, for tests and simulations. Clones and
/// re-issued copies of a seeded source share one stream, so a restarted
/// component continues the sequence instead of repeating it.
///
/// # Examples
///
/// ```
/// use compartment::caps::Random;
///
/// let dice = Random::seeded(7);
/// let roll = dice.below(6)? + 1;
/// assert!((1..=6).contains(&roll));
///
/// let mut key = [0u8; 32];
/// Random::os(cap_std::ambient_authority()).fill(&mut key)?;
/// # Ok::<(), compartment::caps::RandomError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Random {
    source: Source,
    pub(crate) gate: Gate,
}

impl Random {
    /// The operating system's cryptographic generator.
    ///
    /// # Ambient Authority
    ///
    /// Unpredictable data is an authority (it makes behaviour
    /// irreproducible); grant it deliberately.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Random;
    ///
    /// let random = Random::os(compartment::ambient_authority());
    /// let mut key = [0u8; 32];
    /// random.fill(&mut key)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn os(ambient_authority: AmbientAuthority) -> Self {
        let _ = ambient_authority;
        Self {
            source: Source::Os,
            gate: Gate::default(),
        }
    }

    /// Whether this is a seeded (deterministic) source.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn is_seeded(&self) -> bool {
        matches!(self.source, Source::Seeded(_))
    }

    /// A deterministic generator: the same seed gives the same sequence.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Random;
    ///
    /// // The same seed, the same sequence: for reproducible tests.
    /// let (a, b) = (Random::seeded(7), Random::seeded(7));
    /// assert_eq!(a.next_u64()?, b.next_u64()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seeded(seed: u64) -> Self {
        Self {
            source: Source::Seeded(Arc::new(Mutex::new(Xoshiro256::from_seed(seed)))),
            gate: Gate::default(),
        }
    }

    /// Where the bytes come from.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::{Random, RandomSource};
    /// assert_eq!(Random::seeded(7).source(), RandomSource::Seeded);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn source(&self) -> RandomSource {
        match self.source {
            Source::Os => RandomSource::Os,
            Source::Seeded(_) => RandomSource::Seeded,
        }
    }

    /// Fills `buf` with random bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let random = compartment::caps::Random::seeded(1);
    /// let mut nonce = [0u8; 12];
    /// random.fill(&mut nonce)?;
    /// assert_ne!(nonce, [0u8; 12]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RandomError::Revoked`]; [`RandomError::Io`] if the OS generator
    /// fails.
    pub fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        self.gate.check().map_err(|_| RandomError::Revoked)?;
        match &self.source {
            Source::Os => os_fill(buf).map_err(RandomError::Io),
            Source::Seeded(state) => {
                let mut state = state.lock();
                for chunk in buf.chunks_mut(8) {
                    let bytes = state.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&bytes[..chunk.len()]);
                }
                Ok(())
            }
        }
    }

    /// A uniformly distributed `u64`.
    ///
    /// # Examples
    ///
    /// ```
    /// let random = compartment::caps::Random::seeded(1);
    /// assert_ne!(random.next_u64()?, random.next_u64()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`fill`](Self::fill).
    pub fn next_u64(&self) -> Result<u64, RandomError> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A uniformly distributed number in `0..bound`, without modulo bias.
    ///
    /// # Examples
    ///
    /// ```
    /// let random = compartment::caps::Random::seeded(1);
    /// let die = random.below(6)? + 1;
    /// assert!((1..=6).contains(&die));
    /// assert!(random.below(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RandomError::ZeroBound`] when `bound` is 0; otherwise as
    /// [`fill`](Self::fill).
    pub fn below(&self, bound: u64) -> Result<u64, RandomError> {
        if bound == 0 {
            return Err(RandomError::ZeroBound);
        }
        // Reject the top sliver of the range that would make low values
        // more likely than high ones.
        let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
        loop {
            let draw = self.next_u64()?;
            if draw <= zone {
                return Ok(draw % bound);
            }
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn os_fill(mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::rand::getrandom(&mut *buf, rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => buf = &mut buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn os_fill(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(io::Error::other)
}

grant_by_clone!(Random, |random| Capability::Random {
    source: random.source(),
});
