//! Text a caller controls, made safe to put in a reply or a log line: cut
//! short and escaped, so a 400 KB value cannot flood either and a newline
//! inside it cannot forge a log line (docs/contract.md, Trust).

use std::fmt;

/// Characters of a caller's value shown before it is cut short.
pub const QUOTED_CHARS: usize = 64;
/// Characters of a parser's message shown (it may embed a caller's value).
pub const MESSAGE_CHARS: usize = 240;

/// Displays caller-controlled text cut short and escaped; see [`quoted`] and
/// [`shortened`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a> {
    text: &'a str,
    max_chars: usize,
    in_quotes: bool,
}

/// A caller's value, Debug-quoted (`"a\nb"`), at most [`QUOTED_CHARS`]
/// characters, then `…(N bytes)` when it was longer.
pub fn quoted(text: &str) -> Quoted<'_> {
    Quoted {
        text,
        max_chars: QUOTED_CHARS,
        in_quotes: true,
    }
}

/// A message that may embed a caller's value (a parser's error, JSON text):
/// shown as is but for control characters, which are escaped, and cut short
/// the same way after a few lines' worth.
pub fn shortened(text: &str) -> Quoted<'_> {
    Quoted {
        text,
        max_chars: MESSAGE_CHARS,
        in_quotes: false,
    }
}

/// [`shortened`] for a value known by its `Display` (a parser's error, a
/// JSON value), as an owned message.
pub fn shortened_message(message: impl fmt::Display) -> String {
    shortened(&message.to_string()).owned()
}

impl Quoted<'_> {
    /// The quoted text as a `String`, for error types that own their text.
    pub fn owned(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self.text.char_indices().nth(self.max_chars).map(|(at, _)| at);
        let shown = &self.text[..cut.unwrap_or(self.text.len())];
        if self.in_quotes {
            write!(f, "\"{}\"", shown.escape_debug())?;
        } else {
            for c in shown.chars() {
                if c.is_control() {
                    write!(f, "{}", c.escape_debug())?;
                } else {
                    write!(f, "{c}")?;
                }
            }
        }
        if cut.is_some() {
            write!(f, "…({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_and_escaped() {
        assert_eq!(quoted("arn:a").owned(), r#""arn:a""#);
        assert_eq!(
            quoted("a\nINFO forged\r\u{1b}[1m").owned(),
            r#""a\nINFO forged\r\u{1b}[1m""#
        );
        assert_eq!(shortened("got \"x\"\nline").owned(), r#"got "x"\nline"#);
    }

    #[test]
    fn long_text_is_cut_and_its_length_said() {
        let long = "é".repeat(200_000);
        let shown = quoted(&long).owned();
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.ends_with("…(400000 bytes)"), "{shown}");
        assert_eq!(shown.matches('é').count(), QUOTED_CHARS);
        let message = shortened(&long).owned();
        assert!(message.len() < 1024 && message.ends_with("…(400000 bytes)"));
        assert!(!quoted(&"\n".repeat(1000)).owned().contains('\n'));
    }
}
