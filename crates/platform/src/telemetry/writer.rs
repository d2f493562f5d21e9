//! Log lines to stdout in batches: every thread appends its formatted line
//! to one shared buffer (a lock and a copy), and one writer thread writes
//! the buffer out when it reaches [`WRITE_AT`] bytes or when the first line
//! in it is [`GATHER_FOR`] old, whichever comes first.
//!
//! Why not tracing-appender's non-blocking writer, which this replaced: it
//! allocates a `Vec` for every line, sends it through a channel and wakes
//! the writer thread for it, and the writer wrote whenever its queue ran
//! dry, which under load was about once per order: seven lines an order, a
//! futex wake and a write(2) each time, on two cores shared with the load
//! (docs/bench.md). Here a batch costs one wake and one write(2).
//!
//! Nothing is dropped: when [`MAX_PENDING`] bytes are waiting, a logging
//! thread waits for the writer, as it would wait on a full pipe. Lines
//! reach stdout at most [`GATHER_FOR`] after they were logged.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::writer::EitherWriter;

/// Bytes gathered before the writer writes without waiting for the clock:
/// as much as a pipe takes in one write.
pub const WRITE_AT: usize = 64 * 1024;
/// Bytes waiting at most; beyond it a logging thread waits for the writer.
/// Bounds the memory logs can take to about twice this (the buffer being
/// filled and the one being written).
pub const MAX_PENDING: usize = 256 * 1024;
/// How long the writer gathers lines before writing what it has: what a
/// person tailing the log waits at most.
pub const GATHER_FOR: Duration = Duration::from_millis(20);

/// The shared buffer and the writer thread's handle. As a `MakeWriter`,
/// it hands out what tracing-subscriber writes through; dropping the
/// [`WriterGuard`] writes out what is left and stops the thread.
#[derive(Clone)]
pub struct Lines {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lines")
    }
}

struct Shared {
    state: Mutex<Pending>,
    /// Signalled when a batch starts (the buffer was empty), when it
    /// reaches [`WRITE_AT`], and at close.
    writer: Condvar,
    /// Signalled when the writer took the buffer, and when it wrote it.
    room: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
    /// Bytes appended since the start.
    appended: u64,
    /// Bytes written out since the start.
    written: u64,
}

/// Stops the writer thread when dropped, after it wrote every line logged
/// before.
#[derive(Debug)]
pub struct WriterGuard {
    lines: Lines,
    thread: Option<JoinHandle<()>>,
}

impl WriterGuard {
    /// Waits until every line logged before the call is written out: for
    /// what is printed straight to stdout after them (HQ's reconciliation
    /// after the line saying it is coming).
    pub fn flush(&self) {
        self.lines.flush();
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.lines.lock().closed = true;
        self.lines.shared.writer.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Lines {
    /// Starts the writer thread, writing to `out`.
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(Self, WriterGuard)> {
        let lines = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(Pending::default()),
                writer: Condvar::new(),
                room: Condvar::new(),
            }),
        };
        let writer = lines.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.write_batches(out))?;
        let guard = WriterGuard {
            lines: lines.clone(),
            thread: Some(thread),
        };
        Ok((lines, guard))
    }

    /// A poisoned lock only means a logging thread panicked mid-copy; the
    /// buffer holds whole lines and stays usable.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one formatted line (or several), waiting while
    /// [`MAX_PENDING`] bytes are already waiting.
    fn append(&self, line: &[u8]) {
        let mut pending = self.lock();
        while pending.bytes.len() >= MAX_PENDING && !pending.closed {
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let before = pending.bytes.len();
        pending.bytes.extend_from_slice(line);
        pending.appended += line.len() as u64;
        let after = pending.bytes.len();
        drop(pending);
        if before == 0 || (before < WRITE_AT && after >= WRITE_AT) {
            self.shared.writer.notify_one();
        }
    }

    /// The writer thread: waits for a first line, gathers for up to
    /// [`GATHER_FOR`] or [`WRITE_AT`] bytes, writes, and again, until
    /// closed and empty.
    fn write_batches(&self, mut out: impl Write) {
        let mut batch = Vec::with_capacity(WRITE_AT);
        let mut pending = self.lock();
        loop {
            while pending.bytes.is_empty() && !pending.closed {
                pending = self
                    .shared
                    .writer
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if pending.bytes.is_empty() {
                return;
            }
            let deadline = Instant::now() + GATHER_FOR;
            while pending.bytes.len() < WRITE_AT && !pending.closed {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = self
                    .shared
                    .writer
                    .wait_timeout(pending, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut pending.bytes, &mut batch);
            drop(pending);
            self.shared.room.notify_all();
            // stdout gone (a closed pipe): nothing can be told, the lines go.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            let written = batch.len() as u64;
            batch.clear();
            // A burst can leave a batch far larger than usual; don't keep it.
            batch.shrink_to(MAX_PENDING);
            pending = self.lock();
            pending.written += written;
            self.shared.room.notify_all();
        }
    }

    /// Waits until every byte appended before the call is written out (or
    /// the writer has stopped).
    fn flush(&self) {
        let mut pending = self.lock();
        let target = pending.appended;
        // At most the gathering time and a write: the writer is already
        // woken by the first line it has not written.
        while pending.written < target && !pending.closed {
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl std::io::Write for &Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = &'a Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// What the fmt layer writes through: the batching [`Lines`], or stdout
/// line by line when the writer thread could not be started.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Through the writer thread.
    Batched(Lines),
    /// A write(2) per line.
    Direct,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = EitherWriter<&'a Lines, std::io::Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            Self::Batched(lines) => EitherWriter::A(lines),
            Self::Direct => EitherWriter::B(std::io::stdout()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::captured::Captured;

    #[test]
    fn every_line_is_written_once_in_order_per_thread_and_in_few_writes() {
        let out = Captured::default();
        let (lines, guard) = Lines::start(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for n in 0..20_000 {
                        (&lines)
                            .write_all(format!("t{thread} line {n}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = out.taken();
        let text = String::from_utf8(bytes).unwrap();
        for thread in 0..4 {
            let prefix = format!("t{thread} line ");
            let numbers: Vec<usize> = text
                .lines()
                .filter_map(|line| line.strip_prefix(&prefix))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..20_000).collect::<Vec<_>>(), "thread {thread}");
        }
        // 80,000 lines, about 1.2 MB: batches, not a write per line.
        assert!(writes < 200, "{writes} writes for 80,000 lines");
    }

    #[test]
    fn a_flush_returns_once_the_lines_before_it_are_written() {
        let out = Captured::default();
        let (lines, guard) = Lines::start(out.clone()).unwrap();
        for n in 0..1_000 {
            (&lines).write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        guard.flush();
        let text = String::from_utf8(out.taken().0).unwrap();
        assert_eq!(text.lines().count(), 1_000);
        assert!(text.ends_with("line 999\n"));
        // Nothing waiting: at once.
        guard.flush();
    }

    #[test]
    fn a_lone_line_is_written_within_the_gathering_time() {
        let out = Captured::default();
        let (lines, _guard) = Lines::start(out.clone()).unwrap();
        (&lines).write_all(b"one line\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.taken().0.is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.taken(), (b"one line\n".to_vec(), 1));
    }

    #[test]
    fn a_stalled_stdout_holds_loggers_back_instead_of_growing_or_dropping() {
        // A writer that blocks until released: the pending bytes must stay
        // bounded while loggers keep logging, and nothing may be lost.
        #[derive(Clone)]
        struct Stalled(Arc<(Mutex<bool>, Condvar)>, Captured);
        impl Write for Stalled {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let (open, changed) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = changed.wait(open).unwrap();
                }
                self.1.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Captured::default();
        let (lines, guard) = Lines::start(Stalled(gate.clone(), out.clone())).unwrap();
        // Opens the gate however the test ends (dropped before `guard`,
        // which waits for the writer): a failed assertion fails, not hangs.
        struct Opener(Arc<(Mutex<bool>, Condvar)>);
        impl Drop for Opener {
            fn drop(&mut self) {
                *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
                self.0.1.notify_all();
            }
        }
        let opener = Opener(gate.clone());
        let logger = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for n in 0..100_000 {
                    (&lines).write_all(format!("line {n}\n").as_bytes()).unwrap();
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while lines.lock().bytes.len() < MAX_PENDING {
            assert!(Instant::now() < deadline, "the buffer never filled");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!logger.is_finished(), "the logger should be held back");
        assert!(lines.lock().bytes.len() < MAX_PENDING + 64);
        drop(opener);
        logger.join().unwrap();
        drop(guard);
        let text = String::from_utf8(out.taken().0).unwrap();
        assert_eq!(text.lines().count(), 100_000);
    }
}
