//! Lines for the person who started a process (the launcher's banner, its
//! stop and reconciliation, `hq`'s reconciliation, a start-up failure),
//! written so that a reader gone from stdout or stderr cannot stop it.
//!
//! `println!` and `eprintln!` panic when the stream is a pipe whose reader
//! has exited, and the release builds abort on a panic. `cargo run --release
//! | tee run.log` is such a pipe at the moment it matters: Ctrl-C stops tee
//! with the launcher, and the launcher's "Stopping" line aborted it there,
//! with no drain and no reconciliation (tests/launcher.rs).

use std::fmt;
use std::io::Write;

/// Writes `line` and a newline to stdout; where stdout cannot take it (its
/// reader has gone), to stderr instead, and where neither can, nowhere.
pub fn say(line: fmt::Arguments<'_>) {
    if writeln!(std::io::stdout().lock(), "{line}").is_err() {
        say_on_stderr(line);
    }
}

/// Writes `line` and a newline to stdout if it can, and nowhere otherwise:
/// for lines nobody needs once stdout's reader has gone (a status repeated
/// every few seconds).
pub fn show(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Writes `line` and a newline to stderr, or nowhere when stderr cannot
/// take it: what `eprintln!` does, without its panic.
pub fn say_on_stderr(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
