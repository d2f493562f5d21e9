//! Log lines captured in memory: a writer for a test's own tracing
//! subscriber, which the test builds (text or JSON, at the level it reads).

use std::sync::{Arc, Mutex, PoisonError};

/// Every byte written to it, by every clone; give a clone to the
/// subscriber's `with_writer`.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Everything captured so far, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

impl CapturedLogs {
    /// Installs a subscriber writing every level, as text, to these logs on
    /// this thread (on a current-thread runtime, every task's, the servers'
    /// a test started included) until the guard drops.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        // tracing decides once per call site whether anyone wants it. While
        // a single dispatcher exists, it asks only the current thread's: a
        // sibling test's thread, which has none, then turned a call site off
        // for this test's capture too, and its lines went missing. A second
        // dispatcher, kept for the process, makes it ask every one of them.
        static ASK_EVERY_DISPATCHER: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        ASK_EVERY_DISPATCHER
            .get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}
