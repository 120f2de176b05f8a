//! Random sequences of path operations through a full and a read-only
//! directory capability over the standard sandbox (symlinks to the outside,
//! a planted hard link, loops, a fifo); nothing outside the root may change.
//!
//! Run (the toolchain is stable; `RUSTC_BOOTSTRAP=1` unlocks the sanitizer
//! flags cargo-fuzz passes):
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run path_ops -- -runs=100000 -seed=1
//! ```

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods, reason = "the fuzz driver is the host side")]
    let ambient = compartment::ambient_authority();
    if let Err(err) = compartment::testkit::ops::check_sequence(data, ambient) {
        match err {
            compartment::testkit::ops::CheckError::Escaped(escape) => panic!("{escape}"),
            // A sandbox that cannot be set up says nothing about the input.
            other => eprintln!("skipped: {other}"),
        }
    }
});
