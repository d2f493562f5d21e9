//! Text lines without colour, byte for byte as tracing-subscriber's default
//! format writes them with ANSI off (`2026-…Z  INFO request{method=POST
//! uri=/order/ order_id=…}: Bundle fulfilled`), from a layer of our own
//! instead of its fmt layer.
//!
//! Why: the monolith logs seven lines per order, and the fmt layer spent
//! about 4,300 instructions on each (docs/bench.md). Most of it was
//! generality this format does not use: every field written through
//! `&mut dyn fmt::Write` and a no-op style, and every message copied
//! character by character through an escaping writer to neutralise terminal
//! control characters. Here a line is written into one `String`, and a
//! message is written whole and then scanned for those characters, which it
//! almost never holds; when it does, it is escaped exactly as the fmt layer
//! escapes it. A test compares the two formats line for line.

use super::UtcMicros;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The layer: formats each event as one line and writes it through
/// `make_writer` in one `write_all`.
#[derive(Debug)]
pub struct PlainLines<W> {
    make_writer: W,
}

impl<W> PlainLines<W> {
    /// Lines written through `make_writer` (the batching log writer, or a
    /// test's capture).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields as text (`method=POST uri=/order/`), kept in the span's
/// extensions and written into every line logged inside it.
struct SpanFields(String);

thread_local! {
    /// The line being formatted on this thread, reused.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> Layer<S> for PlainLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = String::new();
        attrs.record(&mut FieldWriter::new(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(fields)) => {
                if !fields.is_empty() {
                    fields.push(' ');
                }
                values.record(&mut FieldWriter::new(fields));
            }
            None => {
                let mut fields = String::new();
                values.record(&mut FieldWriter::new(&mut fields));
                extensions.insert(SpanFields(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |line: &mut String| {
            line.clear();
            self.format(line, event, &ctx);
            // Nowhere to tell of a failed write to stdout.
            let _ = self.make_writer.make_writer().write_all(line.as_bytes());
        };
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            // Logging while formatting (a field's Display that logs).
            Err(_) => write(&mut String::new()),
        });
    }
}

impl<W> PlainLines<W> {
    /// `event` as one line, newline included, into `line`.
    fn format<S>(&self, line: &mut String, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        line.push_str(UtcMicros::now().as_str());
        line.push_str(match *event.metadata().level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        });
        if let Some(scope) = ctx.event_scope(event) {
            let mut any = false;
            for span in scope.from_root() {
                line.push_str(span.metadata().name());
                any = true;
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
                    && !fields.is_empty()
                {
                    line.push('{');
                    line.push_str(fields);
                    line.push('}');
                }
                line.push(':');
            }
            if any {
                line.push(' ');
            }
        }
        event.record(&mut FieldWriter::new(line));
        line.push('\n');
    }
}

/// Writes fields as tracing-subscriber's `DefaultFields` does with ANSI off:
/// `message` bare and sanitised, the others `name=value` (`Debug`), one
/// space between them, `r#` taken off names, `log.` fields (the log
/// crate's metadata, already in the line) skipped.
struct FieldWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> FieldWriter<'a> {
    fn new(out: &'a mut String) -> Self {
        Self { out, first: true }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!("{} {}.sources={}", Escaped(value), field.name(), Sources(source)),
            ),
            None => self.record_debug(field, &format_args!("{}", Escaped(value))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if self.first {
            self.first = false;
        } else {
            self.out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = if name == "message" {
            let start = self.out.len();
            let written = write!(self.out, "{value:?}");
            sanitize_from(self.out, start);
            written
        } else {
            let start = self.out.len();
            let written = write!(self.out, "{}={value:?}", name.strip_prefix("r#").unwrap_or(name));
            sanitize_field_from(self.out, start);
            written
        };
    }
}

/// Escapes line breaks and what [`needs_escaping`] finds in a field written
/// at `out[start..]`. A `%`-recorded field (an error's `Display`) is written
/// as is by the fmt layer, so a caller's newline in it would start a forged
/// line; here it cannot. `Debug`-recorded strings are escaped already.
fn sanitize_field_from(out: &mut String, start: usize) {
    let Some(tail) = out.get(start..) else { return };
    if !tail.contains(['\n', '\r']) && !needs_escaping(tail) {
        return;
    }
    let tail = out.split_off(start);
    for ch in tail.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => {
                let _ = write!(out, "{}", Escaped(ch));
            }
        }
    }
}

/// Whether `text` holds a character the fmt layer escapes in messages:
/// ESC, BEL, BS, FF, DEL and the C1 controls (U+0080–U+009F, `C2 80`–`C2 9F`
/// in UTF-8).
fn needs_escaping(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| {
        matches!(byte, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f)
            || (byte == 0xc2 && bytes.get(at + 1).is_some_and(|next| (0x80..=0x9f).contains(next)))
    })
}

/// Escapes what [`needs_escaping`] finds in `out[start..]`, as the fmt
/// layer's escaping writer does (`\x1b`, `\u{85}`).
fn sanitize_from(out: &mut String, start: usize) {
    if out.get(start..).is_none_or(|tail| !needs_escaping(tail)) {
        return;
    }
    let tail = out.split_off(start);
    let _ = write!(out, "{}", Escaped(tail));
}

/// Writes its value's `Display` with terminal control characters escaped.
struct Escaped<T>(T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                for ch in text.chars() {
                    match ch {
                        '\x1b' => self.0.write_str("\\x1b")?,
                        '\x07' => self.0.write_str("\\x07")?,
                        '\x08' => self.0.write_str("\\x08")?,
                        '\x0c' => self.0.write_str("\\x0c")?,
                        '\x7f' => self.0.write_str("\\x7f")?,
                        '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                        _ => self.0.write_char(ch)?,
                    }
                }
                Ok(())
            }
        }
        write!(Escaping(f), "{}", self.0)
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error's chain of sources as the fmt layer lists them: `[a, b]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut current = Some(self.0);
        while let Some(error) = current {
            list.entry(&Escaped(error));
            current = error.source();
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::captured::Captured;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Debug, thiserror::Error)]
    #[error("outer \u{1b}[31mfailure")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    /// Logs the same events, spans and fields into `subscriber`.
    fn log_everything(subscriber: impl Subscriber + Send + Sync) {
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            tracing::info!(count = 3, name = "quoted \"str\"", r#type = %"raw", "with fields {}", 7);
            let span = tracing::info_span!("request", method = %"POST", uri = %"/order/", order_id = tracing::field::Empty);
            let _entered = span.enter();
            tracing::warn!(status = 400, error = %"bad \"quantity\"", "request refused");
            span.record("order_id", tracing::field::display("a1b2"));
            let inner = tracing::debug_span!("inner");
            let _inner = inner.enter();
            tracing::error!("escape \u{1b}[2J and bell \u{7} and \u{85} next line");
            let failure = Outer(Inner);
            tracing::error!(error = &failure as &(dyn std::error::Error + 'static), "failed");
            tracing::info!(latency = %format_args!("{} ms", 12), status = 200u16, "finished processing request");
            tracing::trace!(no_message = true);
        });
    }

    /// The lines after their timestamps (which differ).
    fn lines(captured: &Captured) -> Vec<String> {
        let text = String::from_utf8(captured.taken().0).unwrap();
        text.lines()
            .map(|line| line.get(27..).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn lines_are_the_default_format_without_colour() {
        let default = Captured::default();
        log_everything(
            tracing_subscriber::fmt()
                .with_max_level(Level::TRACE)
                .with_target(false)
                .with_timer(UtcMicros)
                .with_ansi(false)
                .with_writer(default.clone())
                .finish(),
        );
        let plain = Captured::default();
        log_everything(
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::TRACE)
                .with(PlainLines::new(plain.clone())),
        );
        let default = lines(&default);
        assert_eq!(default.len(), 7, "{default:#?}");
        assert_eq!(
            default[2],
            r#"  WARN request{method=POST uri=/order/}: request refused status=400 error=bad "quantity""#
        );
        assert!(
            default[3].contains(r"escape \x1b[2J and bell \x07 and \u{85} next line"),
            "{}",
            default[3]
        );
        assert_eq!(lines(&plain), default);
    }

    #[test]
    fn a_line_break_in_a_field_cannot_forge_a_line() {
        let plain = Captured::default();
        let forged = "not found: x\n2026-12-03T00:00:00.000000Z  INFO forged\r\u{1b}[2J";
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(PlainLines::new(plain.clone())),
            || tracing::warn!(status = 404, error = %forged, "request refused"),
        );
        let lines = lines(&plain);
        assert_eq!(
            lines,
            [
                r"  WARN request refused status=404 error=not found: x\n2026-12-03T00:00:00.000000Z  INFO forged\r\x1b[2J"
            ],
        );
    }

    #[test]
    fn only_control_characters_are_escaped() {
        assert!(!needs_escaping("plain text, é, ü, 東京, tab\tand newline\n"));
        for text in ["\u{1b}", "\u{7}", "\u{8}", "\u{c}", "\u{7f}", "\u{80}", "\u{9f}"] {
            assert!(needs_escaping(text), "{text:?}");
        }
        // U+00A0 (C2 A0) is not a control character.
        assert!(!needs_escaping("\u{a0}"));
        let mut out = String::from("kept \u{1b} ");
        let start = out.len();
        out.push_str("then \u{1b}[1m and \u{9b}");
        sanitize_from(&mut out, start);
        assert_eq!(out, "kept \u{1b} then \\x1b[1m and \\u{9b}");
    }
}
