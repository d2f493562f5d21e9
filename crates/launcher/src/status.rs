//! The launcher's live status: a few short lines (where the dashboard is,
//! then one line per topic) that fit the terminal whatever its width, and
//! are redrawn in place.
//!
//! One long line redrawn with `\r` wraps in a narrow terminal, and every
//! redraw then scrolls instead of updating. Here each line is cut to the
//! width, wordier forms giving way to terser ones first, so the block keeps
//! its height and the cursor can go back over it exactly.

use crossterm::cursor::MoveToPreviousLine;
use crossterm::terminal::{Clear, ClearType};
use std::io::Write;

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
    /// Orders the ledger has a fulfillment for; `None` when it could not be read.
    pub fulfilled: Option<u64>,
    /// Deliveries that failed every attempt, or at once because their
    /// subscription already had too many waiting.
    pub failed: u64,
    /// Delivery attempts retried.
    pub retried: u64,
    /// Deliveries not finished yet.
    pub in_flight: u64,
}

/// What the status block shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
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
        let header = [
            format!("Interstella  dashboard {}  (Ctrl-C stops)", self.dashboard),
            format!("dashboard {}", self.dashboard),
            self.dashboard.clone(),
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
            failed,
            retried,
            in_flight,
            ..
        } = *self;
        let fulfilled = self.fulfilled.map_or_else(|| "?".to_owned(), |n| n.to_string());
        [
            format!(
                "{topic:<9} {published:>6} published {fulfilled:>6} fulfilled {failed:>4} failed {retried:>4} retried {in_flight:>4} in flight"
            ),
            format!(
                "{topic:<9} {published} pub {fulfilled} ok {failed} fail {retried} retry {in_flight} busy"
            ),
            // The least telling go first.
            format!("{topic} {published} pub {fulfilled} ok {failed} fail"),
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
    /// Draws `status` at the terminal's current width over what was drawn last.
    pub fn draw(&mut self, out: &mut impl Write, status: &Status) -> std::io::Result<()> {
        let width = terminal_width();
        let rows = self.rows_drawn(width);
        if rows > 0 {
            crossterm::queue!(out, MoveToPreviousLine(rows))?;
        }
        crossterm::queue!(out, Clear(ClearType::FromCursorDown))?;
        let lines = status.lines(width);
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        self.drawn = lines.iter().map(String::len).collect();
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
    crossterm::terminal::size().map_or(DEFAULT_WIDTH, |(columns, _rows)| usize::from(columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let topic = |topic, n: u64| TopicStatus {
            topic,
            published: 12_345 * n,
            fulfilled: Some(12_340 * n),
            failed: 2 * n,
            retried: 17 * n,
            in_flight: 5,
        };
        Status {
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
        assert!(wide[0].contains("Ctrl-C"), "{wide:?}");
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

    #[test]
    fn an_unreadable_ledger_shows_a_question_mark() {
        let mut status = status();
        status.topics[0].fulfilled = None;
        assert!(status.lines(160)[1].contains("? fulfilled"));
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
