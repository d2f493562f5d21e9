//! Keys pressed at the launcher's terminal: each stage's key
//! ([`Stage::key`]: `m`, `i`, `b`) switches the running platform to it.
//!
//! A terminal hands a program its input a line at a time, echoed: a key
//! would wait for Enter, and its letter would land in the status block.
//! While the keys are read, the terminal gives them one by one, unechoed.
//! Signals stay on (Ctrl-C still stops), and so does the output's
//! processing (a raw mode would stop a `\n` from starting a new line). The
//! terminal is set back as it was when [`Keys`] is dropped.
//!
//! Only while the launcher is in the terminal's foreground: a read from the
//! background would stop the whole platform (SIGTTIN) after Ctrl-Z and
//! `bg`, so the terminal is watched (poll) and read only when in front, and
//! the keys' mode is set again after `fg` (the shell put its own back when
//! the launcher stopped).

use crate::Stage;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the reader looks again at whether it is in front: soon
/// enough after `fg` that a key typed then is not echoed first.
const LOOK_EVERY: Duration = Duration::from_millis(50);
// The poll's wait is written as nanoseconds alone.
const _: () = assert!(LOOK_EVERY.as_secs() == 0);

/// The keys pressed at this process' terminal, read until dropped.
#[derive(Debug)]
pub struct Keys {
    pressed: mpsc::UnboundedReceiver<Vec<u8>>,
    /// The terminal's modes, shared with the reader.
    terminal: Arc<Mutex<Terminal>>,
}

/// The terminal's modes before the keys were read and while they are.
#[derive(Debug)]
struct Terminal {
    before: Termios,
    by_key: Termios,
    /// Cleared when [`Keys`] is dropped: the reader sets no mode after.
    reading: bool,
}

impl Terminal {
    /// Sets `modes` when this process is in the terminal's foreground (from
    /// the background, setting them would stop it: SIGTTOU); whether it is.
    fn set_if_in_front(modes: &Termios) -> bool {
        let stdin = std::io::stdin();
        let in_front = in_front();
        if in_front {
            // A terminal gone has no modes to set.
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, modes);
        }
        in_front
    }
}

/// Whether this process' group is the foreground one of the terminal
/// stdin is.
fn in_front() -> bool {
    in_front_of(std::io::stdin())
}

/// Whether this process' group is the foreground one of `terminal`'s
/// terminal (not, when it is none).
pub fn in_front_of(terminal: impl std::os::fd::AsFd) -> bool {
    termios::tcgetpgrp(terminal).is_ok_and(|front| front == rustix::process::getpgrp())
}

impl Drop for Keys {
    fn drop(&mut self) {
        let mut terminal = self.terminal.lock().unwrap_or_else(PoisonError::into_inner);
        terminal.reading = false;
        // In the background the shell has the terminal, in its own modes.
        Terminal::set_if_in_front(&terminal.before);
    }
}

impl Keys {
    /// Reads stdin key by key when it is the terminal this process is in
    /// the foreground of; `None` otherwise (piped, in CI, or started in the
    /// background).
    pub fn read() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() || !in_front() {
            return None;
        }
        let before = termios::tcgetattr(&stdin).ok()?;
        let mut by_key = before.clone();
        by_key.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        // A read returns with each key, however long it waits for one.
        by_key.special_codes[SpecialCodeIndex::VMIN] = 1;
        by_key.special_codes[SpecialCodeIndex::VTIME] = 0;
        // Flush: what was typed before (during `cargo run`'s build) is no
        // key pressed knowing what keys do.
        termios::tcsetattr(&stdin, OptionalActions::Flush, &by_key).ok()?;
        let terminal = Arc::new(Mutex::new(Terminal {
            before,
            by_key,
            reading: true,
        }));
        let (press, pressed) = mpsc::unbounded_channel();
        let keys = Self {
            pressed,
            terminal: Arc::clone(&terminal),
        };
        // A thread of its own, not tokio's stdin: that reads on the blocking
        // pool, which the runtime waits for at exit, and a read of a
        // terminal ends only with a key. This thread ends with the process.
        std::thread::Builder::new()
            .name("keys".to_owned())
            .spawn(move || read_keys(&terminal, &press))
            .ok()?;
        Some(keys)
    }

    /// The next stage a key asks for (see [`stage_for`]); never, once
    /// stdin has ended.
    pub async fn next_stage(&mut self) -> Stage {
        while let Some(read) = self.pressed.recv().await {
            if let Some(stage) = stage_for(&read) {
                return stage;
            }
        }
        std::future::pending().await
    }
}

/// Sends what is typed, each piece typed at once ([`typed_now`]), to
/// `press`, while in front and
/// while [`Terminal::reading`]; sets the keys' mode again whenever back in
/// front (the shell sets its own when the launcher is stopped).
fn read_keys(terminal: &Mutex<Terminal>, press: &mpsc::UnboundedSender<Vec<u8>>) {
    let stdin = std::io::stdin();
    let look_every = Timespec {
        tv_sec: 0,
        tv_nsec: LOOK_EVERY.subsec_nanos().into(),
    };
    let mut buffer = [0u8; 256];
    loop {
        {
            let terminal = terminal.lock().unwrap_or_else(PoisonError::into_inner);
            if !terminal.reading || press.is_closed() {
                return;
            }
            // Cheap, and only a change after a stop and `fg`.
            let modes = termios::tcgetattr(&stdin);
            let keyed = modes.is_ok_and(|modes| !modes.local_modes.intersects(LocalModes::ICANON));
            let in_front = keyed && in_front() || Terminal::set_if_in_front(&terminal.by_key);
            if !in_front {
                drop(terminal);
                std::thread::sleep(LOOK_EVERY);
                continue;
            }
        }
        let mut watched = [PollFd::new(&stdin, PollFlags::IN)];
        match rustix::event::poll(&mut watched, Some(&look_every)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) if in_front() => match typed_now(&stdin, &mut buffer) {
                Some(typed) => {
                    if press.send(typed).is_err() {
                        return;
                    }
                }
                None => return,
            },
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Everything typed that the terminal holds now, in one piece (`None` once
/// it has ended): a paste longer than one read is still one paste, and its
/// last byte no key. Read from the terminal itself, not std's buffered
/// stdin, which would keep a paste's rest where poll cannot see it and hand
/// it out with the next key as if typed then.
fn typed_now(terminal: impl std::os::fd::AsFd, buffer: &mut [u8]) -> Option<Vec<u8>> {
    let mut typed = Vec::new();
    loop {
        match rustix::io::read(&terminal, &mut *buffer) {
            Ok(0) | Err(_) if typed.is_empty() => return None,
            Ok(0) | Err(_) => return Some(typed),
            Ok(read) => typed.extend_from_slice(&buffer[..read]),
        }
        let mut watched = [PollFd::new(&terminal, PollFlags::IN)];
        if !matches!(
            rustix::event::poll(&mut watched, Some(&Timespec::default())),
            Ok(1..)
        ) {
            return Some(typed);
        }
    }
}

/// The stage what was typed at once ([`typed_now`]) asks for: a stage's
/// key alone ([`Stage::for_key`]). More is not a key pressed: an arrow key
/// (`ESC [ B`, whose `B` is no `b`), a function key, or pasted text.
pub fn stage_for(typed: &[u8]) -> Option<Stage> {
    match typed {
        [key] => Stage::for_key(char::from(*key)),
        _ => None,
    }
}

/// The stages' keys, as the status block names them: `m/i/b`.
pub fn named() -> String {
    each_stage(|stage| stage.key().to_string()).join("/")
}

/// Each stage's key and name, as the banner says them: `m monolith, i
/// iridium, b both`.
pub fn each_named() -> String {
    each_stage(|stage| format!("{} {}", stage.key(), stage.name())).join(", ")
}

/// `said` of every stage, in `--stage`'s order.
fn each_stage(said: impl Fn(Stage) -> String) -> Vec<String> {
    <Stage as clap::ValueEnum>::value_variants()
        .iter()
        .map(|&stage| said(stage))
        .collect()
}

/// The next stage asked for at the terminal, when its keys are read; never
/// otherwise.
pub async fn next_stage(keys: &mut Option<Keys>) -> Stage {
    match keys {
        Some(keys) => keys.next_stage().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paste longer than one read comes whole: its last byte, a `b`
    /// alone in the second read, is no key pressed.
    #[test]
    fn what_is_typed_at_once_is_read_in_one_piece() {
        use std::io::Write as _;
        let (mut typing, terminal) = std::os::unix::net::UnixStream::pair().unwrap();
        let paste = [&[b'a'; 16][..], b"b"].concat();
        typing.write_all(&paste).unwrap();
        let mut buffer = [0u8; 16];
        let typed = typed_now(&terminal, &mut buffer).unwrap();
        assert_eq!(typed, paste);
        assert_eq!(stage_for(&typed), None);
        drop(typing);
        assert_eq!(typed_now(&terminal, &mut buffer), None, "ended");
    }

    #[test]
    fn a_stage_is_asked_for_by_its_key_alone() {
        assert_eq!(stage_for(b"i"), Some(Stage::Iridium));
        assert_eq!(stage_for(b"B"), Some(Stage::Both));
        assert_eq!(stage_for(b"x"), None);
        // The arrows, a function key, a paste.
        for read in [&b"\x1b[B"[..], b"\x1b[D", b"\x1bOP", b"\x1bb", b"ibm", b""] {
            assert_eq!(stage_for(read), None, "{read:?}");
        }
    }
}
