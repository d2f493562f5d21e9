//! The memory allocator of every binary built on this crate: jemalloc, with
//! one arena.
//!
//! The images hold static musl binaries, and musl's allocator takes one lock
//! for every allocation and free: under load the monolith spent about 40%
//! more CPU per order with it than with glibc's (crates/bench: 97 against
//! 70 µs). jemalloc is as fast as glibc's allocator, but its default of four
//! arenas per core kept freed memory in each, which put the monolith over
//! 20 MB at 128 connections; one arena (`narenas:1`, set where jemalloc is
//! compiled, in `.cargo/config.toml`) keeps it near musl's footprint while
//! the per-thread caches keep it fast.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
