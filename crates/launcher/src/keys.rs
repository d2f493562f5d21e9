//! Keys pressed at the launcher's terminal: each stage's key
//! ([`Stage::key`]: `m`, `i`, `b`) switches the running platform to it.
//!
//! A terminal hands a program its input a line at a time, echoed: a key
//! would wait for Enter, and its letter would land in the status block.
//! While the keys are read, the terminal gives them one by one, unechoed.
//! Signals stay on (Ctrl-C still stops), and so does the output's
//! processing (a raw mode would stop a `\n` from starting a new line). The
//! terminal is set back as it was when [`Keys`] is dropped.

use crate::Stage;
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use std::io::{IsTerminal as _, Read as _};
use tokio::sync::mpsc;

/// The keys pressed at this process' terminal, read until dropped.
#[derive(Debug)]
pub struct Keys {
    pressed: mpsc::UnboundedReceiver<char>,
    /// Sets the terminal back; after `pressed`, so that it is dropped last.
    _as_it_was: AsItWas,
}

/// The terminal's settings before the keys were read, set again on drop.
#[derive(Debug)]
struct AsItWas(Termios);

impl Drop for AsItWas {
    fn drop(&mut self) {
        // A terminal gone has nothing to set back.
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
    }
}

impl Keys {
    /// Reads stdin key by key when it is the terminal this process is in
    /// the foreground of; `None` otherwise (piped, in CI, or started in the
    /// background, where a read from the terminal would stop the process).
    pub fn read() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() || termios::tcgetpgrp(&stdin).ok()? != rustix::process::getpgrp() {
            return None;
        }
        let before = termios::tcgetattr(&stdin).ok()?;
        let mut by_key = before.clone();
        by_key.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        // A read returns with each key, however long it waits for one.
        by_key.special_codes[SpecialCodeIndex::VMIN] = 1;
        by_key.special_codes[SpecialCodeIndex::VTIME] = 0;
        termios::tcsetattr(&stdin, OptionalActions::Now, &by_key).ok()?;
        let as_it_was = AsItWas(before);
        let (press, pressed) = mpsc::unbounded_channel();
        // A thread of its own, not tokio's stdin: that reads on the blocking
        // pool, which the runtime waits for at exit, and a read of a
        // terminal ends only with a key. This thread ends with the process.
        std::thread::Builder::new()
            .name("keys".to_owned())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut key = [0u8; 1];
                while let Ok(1) = stdin.read(&mut key) {
                    if press.send(char::from(key[0])).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self {
            pressed,
            _as_it_was: as_it_was,
        })
    }

    /// The next stage a key asks for (other keys are passed over); never,
    /// once stdin has ended.
    pub async fn next_stage(&mut self) -> Stage {
        while let Some(key) = self.pressed.recv().await {
            if let Some(stage) = Stage::for_key(key) {
                return stage;
            }
        }
        std::future::pending().await
    }
}

/// The stages' keys, as the status block names them: `m/i/b`.
pub fn named() -> String {
    let keys: Vec<String> = <Stage as clap::ValueEnum>::value_variants()
        .iter()
        .map(|stage| stage.key().to_string())
        .collect();
    keys.join("/")
}

/// The next stage asked for at the terminal, when its keys are read; never
/// otherwise.
pub async fn next_stage(keys: &mut Option<Keys>) -> Stage {
    match keys {
        Some(keys) => keys.next_stage().await,
        None => std::future::pending().await,
    }
}
