//! Text a caller controls, made safe to put in a reply or a log line: cut
//! short and escaped, so a 400 KB value cannot flood either, and a newline,
//! a line separator or a direction override inside it cannot forge or
//! disguise a log line (docs/contract.md, Trust).

use std::fmt::{self, Write};

/// Characters of a caller's value shown before it is cut short.
pub const QUOTED_CHARS: usize = 64;
/// Characters of a parser's message shown (it may embed a caller's value).
pub const MESSAGE_CHARS: usize = 240;

/// Displays caller-controlled text cut short and escaped; see [`quoted`] and
/// [`shortened`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a> {
    /// The caller's text, whole: cut only as it is shown.
    text: &'a str,
    /// How many of its characters are shown.
    max_chars: usize,
    /// Debug-quoted (`"a\nb"`), or else shown as is but for the characters
    /// that do not print.
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

/// A caller's value that carries its own quotes (a JSON value's text, such
/// as `"12x"` or `1.5`): shown as [`shortened`] shows text, at most
/// [`QUOTED_CHARS`] characters.
pub fn quoted_json(text: &str) -> Quoted<'_> {
    Quoted {
        text,
        max_chars: QUOTED_CHARS,
        in_quotes: false,
    }
}

/// A message that may embed a caller's value (a parser's error, JSON text):
/// shown as is but for characters that do not print (control characters,
/// line separators, direction overrides), which are escaped, and cut short
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
                match c {
                    // Quotes and backslashes print: a message quotes with them.
                    '"' | '\'' | '\\' => f.write_char(c)?,
                    c => write!(f, "{}", c.escape_debug())?,
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
        assert_eq!(quoted("\u{2028}\u{202e}").owned(), r#""\u{2028}\u{202e}""#);
        assert_eq!(shortened("got \"x\"\nline").owned(), r#"got "x"\nline"#);
        // Characters that move or split a line are escaped in messages too.
        assert_eq!(
            shortened("1\u{2028}FAKE \u{202e}é 'a\\b'").owned(),
            r#"1\u{2028}FAKE \u{202e}é 'a\b'"#
        );
        assert_eq!(quoted_json("\"12x\"").owned(), r#""12x""#);
    }

    #[test]
    fn long_text_is_cut_and_its_length_said() {
        let long = "é".repeat(200_000);
        let shown = quoted(&long).owned();
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.ends_with("…(400000 bytes)"), "{shown}");
        assert_eq!(shown.matches('é').count(), QUOTED_CHARS);
        let value = quoted_json(&long).owned();
        assert_eq!(value.matches('é').count(), QUOTED_CHARS);
        assert!(value.ends_with("…(400000 bytes)"), "{value}");
        let message = shortened(&long).owned();
        assert!(message.len() < 1024 && message.ends_with("…(400000 bytes)"));
        assert!(!quoted(&"\n".repeat(1000)).owned().contains('\n'));
    }
}
