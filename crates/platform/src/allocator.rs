//! The memory allocator the service binaries choose: jemalloc, with one arena.
//!
//! The images hold static musl binaries, and musl's allocator takes one lock
//! for every allocation and free: under load the monolith spent about 40%
//! more CPU per order with it than with glibc's (crates/bench: 97 against
//! 70 µs). jemalloc is as fast as glibc's allocator, but its default of four
//! arenas per core kept freed memory in each, which put the monolith over
//! 20 MB at 128 connections; one arena (`narenas:1`, set where jemalloc is
//! compiled, in `.cargo/config.toml`) keeps it near musl's footprint while
//! the per-thread caches keep it fast.
//!
//! jemalloc is built unprefixed, so it is the whole binary's `malloc`, the
//! C libraries' too: aws-lc allocates its bignums with `malloc` for every
//! SNS signature it checks, and in the static musl images that was musl's
//! allocator, lock and all, until this (docs/bench.md, "Signed orders").
//!
//! A library must not choose for its users (every test and tool linking it
//! would get jemalloc), so each binary's `main.rs` says
//! `platform::use_jemalloc!();`, with this crate's `jemalloc` feature. The
//! launcher (`cargo run`) does not: jemalloc's build (configure and make)
//! was about a minute of its first build's CPU, for a process that runs on a
//! developer's machine, not in a memory-limited task.

#[doc(hidden)]
pub use tikv_jemallocator::Jemalloc;

/// Makes jemalloc this binary's global allocator; invoke once, in `main.rs`.
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;
    };
}
