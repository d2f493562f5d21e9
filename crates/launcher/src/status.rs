//! The launcher's live status: a few short lines (where the dashboard is,
//! then one line per topic) that fit the terminal whatever its width, and
//! are redrawn in place.
//!
//! One long line redrawn with `\r` wraps in a narrow terminal, and every
//! redraw then scrolls instead of updating. Here each line is cut to the
//! width, wordier forms giving way to terser ones first, so the block keeps
//! its height and the cursor can go back over it exactly.
//!
//! Warnings reach the same terminal (on stderr) between redraws. Written
//! under the block, the next redraw went back over them instead of the
//! block, erasing them and leaving pieces of old blocks; so on a terminal
//! they go through the [`Screen`], which takes the block away, writes the
//! line, and draws the block again under it.

use crossterm::cursor::MoveToPreviousLine;
use crossterm::terminal::{Clear, ClearType};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The width assumed when the terminal does not say.
pub const DEFAULT_WIDTH: usize = 80;
/// The narrowest width rendered for: below it lines are cut to this anyway.
const MIN_WIDTH: usize = 20;

/// One topic's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicStatus {
    /// The topic's name.
    pub topic: &'static str,
    /// Orders published this run.
    pub published: u64,
    /// Deliveries that ended delivered: answered 2xx, which a service
    /// answers only once HQ's ledger has the order's fulfillment (SNS
    /// counts a 3xx as delivered too; the services send none).
    pub fulfilled: u64,
    /// Deliveries refused (4xx), that failed every attempt, or that failed
    /// at once because their subscription already had too many waiting.
    pub failed: u64,
    /// Delivery attempts retried.
    pub retried: u64,
    /// Deliveries not finished yet.
    pub in_flight: u64,
    /// Orders published while no subscription took the topic's orders:
    /// they reached nobody (shown only when there are any).
    pub unrouted: u64,
}

/// What the status block shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The migration stage the platform is at, as `--stage` spells it.
    pub stage: String,
    /// The keys that switch the stage (`m/i/b`), when they are read.
    pub keys: Option<String>,
    /// HQ's live dashboard.
    pub dashboard: String,
    /// One entry per topic, in order.
    pub topics: Vec<TopicStatus>,
}

impl Status {
    /// The block's lines, none longer than `width` columns less one (a line
    /// filling the last column wraps in some terminals). Everything here is
    /// ASCII, so a character is a column.
    pub fn lines(&self, width: usize) -> Vec<String> {
        let width = width.max(MIN_WIDTH) - 1;
        let Self { stage, dashboard, .. } = self;
        let switched = match &self.keys {
            Some(keys) => format!("stage {stage} (keys {keys})"),
            None => format!("stage {stage}"),
        };
        let header = [
            format!("Interstella  {switched}  dashboard {dashboard}  (Ctrl-C stops)"),
            format!("{switched}  dashboard {dashboard}  (Ctrl-C stops)"),
            format!("{switched}  {dashboard}  (Ctrl-C stops)"),
            format!("{switched}  {dashboard}"),
            format!("stage {stage}  {dashboard}"),
            dashboard.clone(),
        ];
        std::iter::once(fit(&header, width))
            .chain(self.topics.iter().map(|topic| fit(&topic.forms(), width)))
            .collect()
    }
}

impl TopicStatus {
    /// The line for this topic, wordiest first.
    fn forms(&self) -> [String; 3] {
        let Self {
            topic,
            published,
            fulfilled,
            failed,
            retried,
            in_flight,
            unrouted,
        } = *self;
        // What else is published but neither fulfilled, failed nor in
        // flight: said only when there is any.
        let (nobody, nobody_short) = if unrouted > 0 {
            (
                format!(" {unrouted} reached nobody"),
                format!(" {unrouted} unrouted"),
            )
        } else {
            (String::new(), String::new())
        };
        [
            format!(
                "{topic:<9} {published:>6} published {fulfilled:>6} fulfilled {failed:>4} failed {retried:>4} retried {in_flight:>4} in flight{nobody}"
            ),
            format!(
                "{topic:<9} {published} pub {fulfilled} ok {failed} fail {retried} retry {in_flight} busy{nobody_short}"
            ),
            // The least telling go first.
            format!("{topic} {published} pub {fulfilled} ok {failed} fail{nobody_short}"),
        ]
    }
}

/// The first of `forms` that fits `width`, or the last one cut to it.
fn fit(forms: &[String], width: usize) -> String {
    let fitting = forms.iter().find(|form| form.chars().count() <= width);
    match fitting.or(forms.last()) {
        Some(form) => form.chars().take(width).collect(),
        None => String::new(),
    }
}

/// Draws the block on a terminal, each time over the previous one.
#[derive(Debug, Default)]
pub struct Redraw {
    /// The lengths of the lines last drawn.
    drawn: Vec<usize>,
}

impl Redraw {
    /// Draws `lines` over what was drawn last, at `width` columns.
    fn draw(&mut self, out: &mut impl Write, lines: &[String], width: usize) -> std::io::Result<()> {
        self.take_away(out, width)?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        self.drawn = lines.iter().map(String::len).collect();
        out.flush()
    }

    /// Clears what was drawn last and leaves the cursor where it began.
    fn take_away(&mut self, out: &mut impl Write, width: usize) -> std::io::Result<()> {
        let rows = self.rows_drawn(width);
        if rows > 0 {
            crossterm::queue!(out, MoveToPreviousLine(rows), Clear(ClearType::FromCursorDown))?;
        }
        self.drawn.clear();
        out.flush()
    }

    /// How many terminal rows the last block takes at `width`: more than
    /// its lines if the terminal was made narrower since and they wrapped.
    fn rows_drawn(&self, width: usize) -> u16 {
        let width = width.max(1);
        let rows: usize = self.drawn.iter().map(|len| len.div_ceil(width).max(1)).sum();
        u16::try_from(rows).unwrap_or(u16::MAX)
    }
}

/// The terminal's width in columns, or [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    width_of(crossterm::terminal::size().ok())
}

/// The width a terminal of `size` (columns, rows) is drawn at: one that
/// does not say, or says 0 (a pseudo-terminal whose size was never set),
/// gets [`DEFAULT_WIDTH`]; at 0 every character would count as a row, and
/// each redraw went back over the whole screen.
fn width_of(size: Option<(u16, u16)>) -> usize {
    match size {
        Some((columns, _rows)) if columns > 0 => usize::from(columns),
        _ => DEFAULT_WIDTH,
    }
}

/// The status block (on stdout) and the log lines (on stderr) of one
/// terminal: a log line is written above the block, which is drawn again
/// under it, so neither overwrites the other. Cheap to clone; a
/// [`tracing_subscriber::fmt::MakeWriter`] for the log lines.
#[derive(Clone)]
pub struct Screen {
    shown: Arc<Mutex<Shown>>,
    /// Where the block goes (stdout).
    block: Arc<dyn Fn() -> Box<dyn Write> + Send + Sync>,
    /// Where log lines go (stderr).
    log: Arc<dyn Fn() -> Box<dyn Write> + Send + Sync>,
    /// The terminal's width now.
    width: Arc<dyn Fn() -> usize + Send + Sync>,
}

/// What the [`Screen`] has on the terminal.
#[derive(Debug, Default)]
struct Shown {
    redraw: Redraw,
    /// The block's lines, drawn again under each log line; none once the
    /// block is let go.
    lines: Vec<String>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// The process' terminal: the block on stdout, log lines on stderr.
    pub fn terminal() -> Self {
        Self {
            shown: Arc::default(),
            block: Arc::new(|| Box::new(std::io::stdout())),
            log: Arc::new(|| Box::new(std::io::stderr())),
            width: Arc::new(terminal_width),
        }
    }

    fn shown(&self) -> MutexGuard<'_, Shown> {
        // What is on the screen stays valid whatever panicked.
        self.shown.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Draws `status` over the block drawn last.
    pub fn draw(&self, status: &Status) -> std::io::Result<()> {
        let mut shown = self.shown();
        let width = (self.width)();
        let lines = status.lines(width);
        shown.redraw.draw(&mut (self.block)(), &lines, width)?;
        shown.lines = lines;
        Ok(())
    }

    /// Leaves the block as it is, no longer drawn again: what follows (the
    /// drain, the reconciliation) is written under it.
    pub fn let_go(&self) {
        let mut shown = self.shown();
        shown.redraw = Redraw::default();
        shown.lines.clear();
    }

    /// Writes `line` and a newline on stdout, above the block.
    pub fn say(&self, line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
        self.write_above(format!("{line}\n").as_bytes(), &self.block)
    }

    /// Writes `line` (whole log lines) above the block.
    fn write_log(&self, line: &[u8]) -> std::io::Result<()> {
        self.write_above(line, &self.log)
    }

    /// Writes `text` (whole lines) to `out`, above the block.
    fn write_above(
        &self,
        text: &[u8],
        out: &Arc<dyn Fn() -> Box<dyn Write> + Send + Sync>,
    ) -> std::io::Result<()> {
        let mut shown = self.shown();
        let width = (self.width)();
        let mut block = (self.block)();
        shown.redraw.take_away(&mut block, width)?;
        let mut out = out();
        out.write_all(text)?;
        out.flush()?;
        let Shown { redraw, lines } = &mut *shown;
        if lines.is_empty() {
            return Ok(());
        }
        redraw.draw(&mut block, lines, width)
    }
}

/// One log event's text, written through the [`Screen`] once whole.
pub struct ScreenLine {
    screen: Screen,
    text: Vec<u8>,
}

impl Write for ScreenLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScreenLine {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            // A terminal that cannot be written to has nobody to show it to.
            let _ = self.screen.write_log(&self.text);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Screen {
    type Writer = ScreenLine;

    fn make_writer(&'a self) -> ScreenLine {
        ScreenLine {
            screen: self.clone(),
            text: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let topic = |topic, n: u64| TopicStatus {
            topic,
            published: 12_345 * n,
            fulfilled: 12_340 * n,
            failed: 2 * n,
            retried: 17 * n,
            in_flight: 5,
            unrouted: 0,
        };
        Status {
            stage: "both".into(),
            keys: Some("m/i/b".into()),
            dashboard: "http://127.0.0.1:8080/dashboard".into(),
            topics: vec![topic("orders", 1), topic("iridium", 2), topic("magnesite", 3)],
        }
    }

    #[test]
    fn no_line_reaches_the_last_column_at_any_width() {
        for width in [40, 100, 160] {
            let lines = status().lines(width);
            assert_eq!(lines.len(), 4, "one header and one line per topic");
            for line in &lines {
                assert!(
                    line.len() < width,
                    "{width} columns: {line:?} is {} long",
                    line.len()
                );
            }
        }
    }

    #[test]
    fn every_width_shows_the_dashboard_and_the_counts() {
        for width in [40, 100, 160] {
            let lines = status().lines(width);
            assert!(
                lines[0].contains("http://127.0.0.1:8080/dashboard"),
                "{width}: {lines:?}"
            );
            assert!(lines[3].contains("37035"), "{width}: {lines:?}");
            assert!(lines[3].contains("37020"), "{width}: {lines:?}");
        }
    }

    #[test]
    fn wide_terminals_get_words_narrow_ones_the_short_form() {
        let wide = status().lines(160);
        assert_eq!(
            wide[0],
            "Interstella  stage both (keys m/i/b)  dashboard http://127.0.0.1:8080/dashboard  (Ctrl-C stops)"
        );
        // A usual terminal: the stage, its keys, where to look and how to stop.
        assert_eq!(
            status().lines(80)[0],
            "stage both (keys m/i/b)  http://127.0.0.1:8080/dashboard  (Ctrl-C stops)"
        );
        let mut unkeyed = status();
        unkeyed.keys = None;
        assert_eq!(
            unkeyed.lines(80)[0],
            "stage both  dashboard http://127.0.0.1:8080/dashboard  (Ctrl-C stops)"
        );
        assert_eq!(
            status().lines(72)[0],
            "stage both (keys m/i/b)  http://127.0.0.1:8080/dashboard"
        );
        assert_eq!(
            status().lines(50)[0],
            "stage both  http://127.0.0.1:8080/dashboard"
        );
        assert!(
            wide[1].contains("published") && wide[1].contains("in flight"),
            "{wide:?}"
        );
        let medium = status().lines(100);
        assert!(medium[1].contains("published"), "{medium:?}");
        let narrow = status().lines(40);
        assert_eq!(narrow[0], "http://127.0.0.1:8080/dashboard");
        assert_eq!(narrow[1], "orders 12345 pub 12340 ok 2 fail");
        assert_eq!(narrow[3], "magnesite 37035 pub 37020 ok 6 fail");
        // Narrower than anything: cut, never wrapped.
        assert!(status().lines(5).iter().all(|line| line.len() < MIN_WIDTH));
    }

    /// Orders that reached nobody are said, at every width: the gap between
    /// published and the rest is explained.
    #[test]
    fn orders_that_reached_nobody_are_said() {
        let mut status = status();
        status.topics[1].unrouted = 3;
        let wide = status.lines(160);
        assert!(wide[2].ends_with(" 3 reached nobody"), "{wide:?}");
        assert!(!wide[1].contains("nobody"), "{wide:?}");
        let narrow = status.lines(50);
        assert_eq!(narrow[2], "iridium 24690 pub 24680 ok 4 fail 3 unrouted");
    }

    /// The rows a terminal shows after `bytes`, for the little the block
    /// and the log lines send: text, newlines, `ESC[nF` (to the start of
    /// the nth line up) and `ESC[J` (clear from the cursor down).
    fn screen_rows(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let (mut rows, mut at) = (vec![String::new()], 0usize);
        let mut rest = text.as_ref();
        while let Some(ch) = rest.chars().next() {
            if let Some(escape) = rest.strip_prefix("\x1b[") {
                let end = escape.find(|c: char| c.is_ascii_alphabetic()).unwrap();
                let n: usize = escape[..end].parse().unwrap_or(1);
                match &escape[end..=end] {
                    "F" => at -= n,
                    "J" => {
                        rows.truncate(at + 1);
                        rows[at].clear();
                    }
                    other => panic!("unexpected escape {other}"),
                }
                rest = &escape[end + 1..];
                continue;
            }
            if ch == '\n' {
                at += 1;
                if rows.len() == at {
                    rows.push(String::new());
                }
            } else {
                rows[at].push(ch);
            }
            rest = &rest[ch.len_utf8()..];
        }
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    }

    /// Everything written to one terminal, stdout and stderr alike.
    #[derive(Clone, Default)]
    struct Terminal(Arc<Mutex<Vec<u8>>>);

    impl Write for Terminal {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_stay_above_the_block_and_the_block_is_drawn_once() {
        use tracing_subscriber::fmt::MakeWriter;
        let terminal = Terminal::default();
        let out = terminal.clone();
        let screen = Screen {
            shown: Arc::default(),
            block: Arc::new(move || Box::new(out.clone())),
            log: Arc::new({
                let out = terminal.clone();
                move || Box::new(out.clone())
            }),
            width: Arc::new(|| 100),
        };
        let log = |line: &str| {
            let mut writer = screen.make_writer();
            writer.write_all(line.as_bytes()).unwrap();
        };
        let mut later = status();
        screen.draw(&status()).unwrap();
        log("WARN one\n");
        later.topics[0].published += 1;
        screen.draw(&later).unwrap();
        log("WARN two\n");
        screen.say(format_args!("said")).unwrap();
        log("WARN three\n");
        later.topics[0].published += 1;
        screen.draw(&later).unwrap();
        let rows = screen_rows(&terminal.0.lock().unwrap());
        let mut expected: Vec<String> = ["WARN one", "WARN two", "said", "WARN three"]
            .map(String::from)
            .to_vec();
        expected.extend(later.lines(100));
        assert_eq!(rows, expected);

        // Let go of (after Ctrl-C), the block stays; lines go under it.
        screen.let_go();
        log("WARN four\n");
        let rows = screen_rows(&terminal.0.lock().unwrap());
        assert_eq!(rows.last().map(String::as_str), Some("WARN four"));
        assert_eq!(rows.len(), expected.len() + 1);
    }

    #[test]
    fn a_terminal_of_no_width_is_drawn_at_the_default_width() {
        assert_eq!(width_of(Some((0, 0))), DEFAULT_WIDTH);
        assert_eq!(width_of(None), DEFAULT_WIDTH);
        assert_eq!(width_of(Some((132, 40))), 132);
    }

    #[test]
    fn a_redraw_goes_back_over_every_row_the_last_block_took() {
        let redraw = Redraw {
            drawn: vec![30, 90, 10],
        };
        assert_eq!(redraw.rows_drawn(100), 3);
        // Made narrower: the 90-column line now wraps onto two rows.
        assert_eq!(redraw.rows_drawn(60), 4);
        assert_eq!(Redraw::default().rows_drawn(80), 0);
    }
}
