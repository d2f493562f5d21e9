//! Logging to stdout, where ECS' awslogs driver collects it.
//!
//! Lines are formatted on the thread that logs and written to stdout by one
//! writer thread, in batches ([`writer`]). An order logs about seven lines at
//! INFO, and writing each with its own write(2) under the stdout lock took a
//! third of the monolith's CPU under load (see crates/bench). No line is
//! dropped: when the buffer is full, the logging thread waits, as it waited
//! on a full pipe.
//!
//! Every request is served inside a `request` span with an `order_id` field,
//! filled in once the order's id is known ([`record_order_id`]): every line
//! logged for the order then carries it, in text and in JSON, on every
//! service the order passes through (the id travels with the order; see
//! [`contracts::order_id`]).

pub mod plain;
pub mod repeated;
pub mod writer;

use crate::settings::LogFormat;
use crate::traces::TraceExport;
use axum::http::{Request, Uri};
use contracts::OrderId;
use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Writes out the lines still queued, and the spans, when dropped: keep it
/// until `main` returns (and drop it before `std::process::exit`).
#[must_use = "dropping the guard stops log output; keep it until main returns"]
#[derive(Debug)]
pub struct LogGuard {
    format: LogFormat,
    traces: Option<crate::traces::Provider>,
    _writer: Option<writer::WriterGuard>,
}

impl LogGuard {
    /// Says why the process cannot go on, in one line where someone will
    /// look for it: under `LOG_FORMAT=json` an error event like every
    /// other line (a CloudWatch query for errors finds it), otherwise
    /// plain text on stderr, for a person at a terminal.
    pub fn fatal(&self, why: &dyn std::fmt::Display) {
        if self.format == LogFormat::Json && tracing::enabled!(tracing::Level::ERROR) {
            tracing::error!("{why}");
        } else {
            crate::terminal::say_on_stderr(format_args!("{why}"));
        }
    }

    /// Waits until the lines logged so far are written out: before text
    /// printed straight to stdout that must come after them.
    pub fn flush(&self) {
        if let Some(writer) = &self._writer {
            writer.flush();
        }
    }

    /// Sends the spans ended so far, now (tests; the exporter otherwise
    /// sends in batches every few seconds).
    pub fn flush_traces(&self) {
        if let Some(provider) = &self.traces {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for service `service`: `RUST_LOG`
/// filters (default `info`), one line per event, text or JSON, and spans
/// exported over OTLP when the OpenTelemetry variables ask for it
/// ([`crate::traces`]). Call once, first thing in `main`, in the runtime.
pub fn init(service: &str, format: LogFormat) -> LogGuard {
    init_with(format, TraceExport::from_env(service))
}

/// What is logged when `RUST_LOG` is not set: `info`, but for the AWS SDK's
/// warnings that it found no region, or no credentials, on the instance
/// metadata service. The monolith then exits with its one line saying why
/// ("no AWS region (set AWS_REGION)", "… failed to load IMDS session token
/// …"); before it, the SDK's multi-line warnings buried it.
pub const DEFAULT_LOG_FILTER: &str =
    "info,aws_config::imds::region=error,aws_config::meta::credentials=error";

/// The filter `setting` (`RUST_LOG`) names, else [`DEFAULT_LOG_FILTER`].
fn log_filter(setting: Option<&str>) -> EnvFilter {
    log_filter_or(setting, DEFAULT_LOG_FILTER)
}

/// The filter `setting` (`RUST_LOG`) names, else `default`. A directive
/// that does not parse is named on stderr and left out while the others
/// stand: a typo in one target (`platform::server=wrn`) must neither go
/// unnoticed nor turn every `info` line back on, which CloudWatch bills.
pub fn log_filter_or(setting: Option<&str>, default: &str) -> EnvFilter {
    let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
        return EnvFilter::new(default);
    };
    let mut kept = Vec::new();
    for directive in setting.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.parse::<tracing_subscriber::filter::Directive>() {
            Ok(_) => kept.push(directive),
            Err(error) => {
                crate::terminal::say_on_stderr(format_args!("RUST_LOG: {directive:?} is left out: {error}"))
            }
        }
    }
    if kept.is_empty() {
        crate::terminal::say_on_stderr(format_args!(
            "RUST_LOG: no directive is left; logging with the default, {default}"
        ));
        return EnvFilter::new(default);
    }
    let words = words_meant_as_levels(&kept);
    for word in &words {
        crate::terminal::say_on_stderr(format_args!(
            "RUST_LOG: {word:?} names a target, not a level, and no level is given, so every other \
             line is off (a level is trace, debug, info, warn, error or off)"
        ));
    }
    if words.is_empty() && !kept.iter().any(|d| d.parse::<LevelFilter>().is_ok()) {
        // The spans that carry `order_id` are targets of their own.
        crate::terminal::say_on_stderr(format_args!(
            "RUST_LOG: no level is given beside the targets named, so every other line is off, and \
             the lines kept lose their order_id with the spans that carry it: give one, as in \
             info,{}",
            kept.join(",")
        ));
    }
    EnvFilter::new(kept.join(","))
}

/// The bare words of `directives` that name a target, when none of them is
/// a level: `RUST_LOG=verbose` parses as the target `verbose` at every
/// level and everything else off, which silenced a service unsaid.
/// Beside a level (`info,hyper`) such a word is what it says.
fn words_meant_as_levels<'a>(directives: &[&'a str]) -> Vec<&'a str> {
    if directives.iter().any(|d| d.parse::<LevelFilter>().is_ok()) {
        return Vec::new();
    }
    directives
        .iter()
        .copied()
        .filter(|d| !d.contains(['=', '[']))
        .collect()
}

/// [`init`], with traces exported as `traces` says (or not at all).
pub fn init_with(format: LogFormat, traces: Option<TraceExport>) -> LogGuard {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let (writer, writer_guard) = match writer::Lines::start(std::io::stdout()) {
        Ok((lines, guard)) => (writer::Sink::Batched(lines), Some(guard)),
        Err(error) => {
            // No thread for it: every line its own write, as slow as that is.
            crate::terminal::say_on_stderr(format_args!(
                "log lines are written unbatched: no writer thread ({error})"
            ));
            (writer::Sink::Direct, None)
        }
    };
    // Colour codes only for a person at a terminal, never into awslogs.
    let ansi = std::io::stdout().is_terminal();
    let provider = traces.as_ref().and_then(|export| match export.start() {
        Ok(provider) => Some((provider, export.service.clone())),
        Err(error) => {
            crate::terminal::say_on_stderr(format_args!("traces are not exported: {error}"));
            None
        }
    });
    // A second init (tests starting several services) is harmless: keep the first.
    let _ = match &provider {
        // The log filter for everything: the hot path, one filter.
        None => tracing_subscriber::registry()
            .with(filter)
            .with(line_layer(format, writer, ansi))
            .try_init(),
        // `RUST_LOG` filters the lines alone: logs turned down (`off`, to
        // cut what CloudWatch bills) leave the traces as they are.
        Some((provider, service)) => tracing_subscriber::registry()
            .with(line_layer(format, writer, ansi).with_filter(filter))
            .with(crate::traces::layer(provider, service))
            .try_init(),
    };
    LogGuard {
        format,
        traces: provider.map(|(provider, _)| provider),
        _writer: writer_guard,
    }
}

/// The layer that writes log lines in `format` to `writer`: tracing-
/// subscriber's fmt layer for colour (`ansi`) and JSON; plain text (what
/// awslogs gets, the hot path) through our own layer.
fn line_layer<S>(format: LogFormat, writer: writer::Sink, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let fmt_layer = |writer| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_timer(UtcMicros)
            .with_writer(writer)
            .with_ansi(ansi)
    };
    match format {
        LogFormat::Text if ansi => fmt_layer(writer).boxed(),
        LogFormat::Text => plain::PlainLines::new(writer).boxed(),
        // The innermost span only, as `span`: its `order_id` is what a
        // query looks for, and the list of all spans repeated it on every line.
        LogFormat::Json => fmt_layer(writer)
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .boxed(),
    }
}

/// The name of the span a service runs in where several share a process
/// and a console (the launcher), so that each line says whose it is. The
/// serve loop keeps the span it was started in for every connection.
/// Traces leave it out ([`crate::traces::layer`]).
pub const SERVICE_SPAN: &str = "service";

/// The span service `name` runs in beside others ([`SERVICE_SPAN`]): at
/// ERROR level, as a request's, so that it is on under any filter.
pub fn service_span(name: &str) -> tracing::Span {
    // The macro takes a literal name: SERVICE_SPAN's, checked by a test.
    tracing::error_span!("service", name = %name)
}

/// The span a request is served in (the serve loop's access log): method,
/// URI, an `order_id` recorded once known, and a `claimed_order_id` for a
/// delivery refused before it was trusted.
///
/// At ERROR level, so that it is on under any filter that lets a line
/// through: at INFO, `RUST_LOG=warn` (the launcher's console, a quiet
/// `LogFilter`) turned it off, and the warnings and errors, the lines that
/// filter is for, lost their order id. A span's level is not shown.
pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let span = tracing::error_span!(
        "request",
        method = %LoggedMethod(request.method()),
        uri = %LoggedUri(request.uri()),
        order_id = tracing::field::Empty,
        claimed_order_id = tracing::field::Empty,
        client = tracing::field::Empty,
    );
    crate::traces::continue_from_headers(&span, request.headers());
    span
}

/// The longest path the access log shows whole, as long as any caller text
/// shown: every line of a request carries it, and a caller may send one as
/// long as the head limit.
const MAX_LOGGED_URI: usize = contracts::quote::MESSAGE_CHARS;

/// A request's URI as its log lines show it: the path as it came when it is
/// short ASCII (always, for our routes), else escaped and cut short as
/// caller text is; a query only as `?…`, because its values can be secrets
/// (HQ's SubscribeURL carries the subscription's token in it). hyper
/// refuses ASCII control characters in a path but takes UTF-8, so a line
/// separator (U+2028) or a direction override (U+202E) can arrive in one.
struct LoggedUri<'a>(&'a Uri);

impl std::fmt::Display for LoggedUri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.0.path();
        if path.len() <= MAX_LOGGED_URI && path.is_ascii() {
            f.write_str(path)?;
        } else {
            write!(f, "{}", contracts::quote::shortened(path))?;
        }
        match self.0.query() {
            Some(_) => f.write_str("?…"),
            None => Ok(()),
        }
    }
}

/// The longest method the access log shows whole: hyper takes any token
/// as a method, up to the head limit, and every line of the request
/// carries it.
const MAX_LOGGED_METHOD: usize = 16;

/// A request's method as its log lines show it: whole when short (every
/// method anyone uses), else cut short as caller text is.
struct LoggedMethod<'a>(&'a axum::http::Method);

impl std::fmt::Display for LoggedMethod<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = self.0.as_str();
        if method.len() <= MAX_LOGGED_METHOD {
            f.write_str(method)
        } else {
            write!(f, "{}", contracts::quote::quoted(method))
        }
    }
}

/// Marks the request being served as handling order `id`: every line
/// logged for it from here on, its access log line included, carries it,
/// and on an order route ([`answer_naming_the_order`]) so does its reply.
pub fn record_order_id(id: &OrderId) {
    tracing::Span::current().record("order_id", tracing::field::display(id));
    // Outside an order route (HQ's admin publish) there is no reply to name it.
    let _ = REPLY_ORDER_ID.try_with(|named| *named.borrow_mut() = Some(id.clone()));
}

tokio::task_local! {
    /// The order the request being answered on an order route handles, as
    /// [`record_order_id`] last marked it: a request is served on its
    /// connection's task, so the task holds it until the reply is made.
    static REPLY_ORDER_ID: RefCell<Option<OrderId>>;
}

/// Answers with `reply`, naming in its `x-interstella-order-id` header the
/// order the request turned out to be (whatever its status): a caller
/// answered 502 or 504, whose order may have gone through, can then look
/// for it by id in the services' and HQ's logs. A reply made before the
/// order was known (a body that is no order) names none.
pub async fn answer_naming_the_order(
    reply: impl Future<Output = axum::response::Response>,
) -> axum::response::Response {
    REPLY_ORDER_ID
        .scope(RefCell::new(None), async {
            let mut response = reply.await;
            let named = REPLY_ORDER_ID.with(|named| named.borrow_mut().take());
            if let Some(value) = named.and_then(|id| axum::http::HeaderValue::from_str(id.as_str()).ok()) {
                response
                    .headers_mut()
                    .insert(contracts::order_id::ORDER_ID_HEADER, value);
            }
            response
        })
        .await
}

/// Marks the request being served with the address its caller came from,
/// as the load balancer in front saw it: the last `X-Forwarded-For` entry,
/// the one the ALB appended (the ones before it are the caller's to say).
/// For calls that act for others (HQ's admin routes, granted or refused),
/// so that a leaked credential's use can be traced to where it came from.
/// Without a balancer in front the header is the caller's own text: what is
/// not an address is shown quoted, cut short and escaped.
pub fn record_client(headers: &axum::http::HeaderMap) {
    let Some(last) = forwarded_client(headers) else {
        return;
    };
    let last = last.trim();
    let span = tracing::Span::current();
    match last.parse::<std::net::IpAddr>() {
        Ok(address) => span.record("client", tracing::field::display(address)),
        Err(_) => span.record("client", tracing::field::display(contracts::quote::quoted(last))),
    };
}

/// The last `X-Forwarded-For` entry, as sent (see [`record_client`]); `None`
/// without the header.
pub fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    // As bytes: a byte that is not ASCII before the last comma must not
    // hide the entry after it.
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.as_bytes().rsplit(|&b| b == b',').next())
        .map(String::from_utf8_lossy)
}

/// Marks the request being served as a delivery refused before it was
/// trusted that named order `id`: its lines say which order it claimed to
/// be, apart from the lines of orders known to be that order (`order_id`),
/// since anyone may send a copy naming any order.
pub fn record_claimed_order_id(id: &OrderId) {
    tracing::Span::current().record("claimed_order_id", tracing::field::display(id));
}

/// A fresh id for an order that came without one (a direct order, a curl
/// to the fulfillment API): a random (version 4) UUID, like SNS' MessageIds.
/// From the thread's seeded generator rather than `Uuid::new_v4`, which asks
/// the kernel (a getrandom(2) call) for every id, that is for every order.
pub fn request_id() -> OrderId {
    let random: [u8; 16] = rand::random();
    OrderId::from_uuid(uuid::Builder::from_random_bytes(random).into_uuid())
}

/// Timestamps as tracing-subscriber's default writes them
/// (`2026-12-02T19:42:55.407517Z`, UTC, microseconds), for a fraction of its
/// cost: the date and time of day are worked out once a second per thread,
/// and only the microseconds are written per line. Timestamps were a tenth of
/// the monolith's instructions per order (seven lines; docs/bench.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcMicros;

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

impl UtcMicros {
    /// Now, as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    fn now() -> Timestamp {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(timestamp(now.as_secs(), now.subsec_micros()))
    }
}

/// A formatted timestamp (ASCII).
struct Timestamp([u8; 27]);

impl Timestamp {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str(Self::now().as_str())
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for `secs` after the Unix epoch and `micros`.
fn timestamp(secs: u64, micros: u32) -> [u8; 27] {
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    SECOND.with_borrow_mut(|(second, date)| {
        if *second != secs {
            *date = date_time(secs);
            *second = secs;
        }
        text[..19].copy_from_slice(date);
    });
    let mut rest = micros;
    for digit in text[20..26].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    text
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for `secs` after the Unix epoch: the civil
/// date from the day count (Howard Hinnant's `civil_from_days`).
fn date_time(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for index in (at..at + width).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    text
}

/// What a test's log writer received, for the writer's and the layer's tests.
#[cfg(test)]
mod captured {
    use std::sync::{Arc, Mutex};

    /// Every byte written, and how many writes brought them.
    #[derive(Clone, Default)]
    pub struct Captured(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Captured {
        /// The bytes so far and the number of writes.
        pub fn taken(&self) -> (Vec<u8>, usize) {
            self.0.lock().unwrap().clone()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut captured = self.0.lock().unwrap();
            captured.0.extend_from_slice(bytes);
            captured.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        DEFAULT_LOG_FILTER, LoggedMethod, LoggedUri, MAX_LOGGED_URI, log_filter, log_filter_or,
        words_meant_as_levels,
    };
    use axum::http::{Method, Uri};

    #[test]
    fn a_word_is_taken_for_a_level_only_where_no_level_is_given() {
        fn words(setting: &str) -> Vec<&str> {
            words_meant_as_levels(&setting.split(',').collect::<Vec<_>>())
        }
        assert_eq!(words("verbose"), ["verbose"]);
        assert_eq!(words("verbose,platform::server=debug"), ["verbose"]);
        for meant in [
            "info,hyper",
            "INFO,verbose",
            "3,verbose",
            "off,hyper",
            "my_crate::module=debug",
            "[span]",
            "target[span]=debug",
        ] {
            assert!(words(meant).is_empty(), "{meant}");
        }
    }

    #[test]
    fn a_directive_that_does_not_parse_is_left_out_and_the_rest_stand() {
        let filter = |setting: Option<&str>| log_filter(setting).to_string();
        assert_eq!(filter(Some("warn,platform::server=wrn")), "warn");
        assert_eq!(
            filter(Some("info,platform::server=warning")),
            filter(Some("info"))
        );
        let default = filter(Some(DEFAULT_LOG_FILTER));
        for nothing_left in [None, Some(" "), Some("platform=wrn"), Some("=,==")] {
            assert_eq!(filter(nothing_left), default, "{nothing_left:?}");
        }
        // The launcher's, with its own default.
        assert_eq!(
            log_filter_or(Some("info,platform::server=wrn"), "warn").to_string(),
            "info"
        );
        assert_eq!(log_filter_or(Some("platform=wrn"), "warn").to_string(), "warn");
    }

    #[test]
    fn a_long_method_is_logged_cut_short() {
        let logged = |method: &str| LoggedMethod(&Method::from_bytes(method.as_bytes()).unwrap()).to_string();
        assert_eq!(logged("POST"), "POST");
        assert_eq!(logged("PROPFIND"), "PROPFIND");
        let shown = logged(&"A".repeat(10_000));
        assert!(shown.len() < 100, "{} bytes: {shown}", shown.len());
    }

    #[test]
    fn a_long_uri_is_logged_cut_short() {
        let logged = |uri: &str| LoggedUri(&uri.parse::<Uri>().unwrap()).to_string();
        assert_eq!(logged("/order/"), "/order/");
        let long = format!("/{}", "x".repeat(16_000));
        let shown = logged(&long);
        assert!(shown.len() < MAX_LOGGED_URI + 20, "{} bytes", shown.len());
        assert!(shown.ends_with("…(16001 bytes)"), "{shown}");
    }

    #[test]
    fn a_path_with_a_line_separator_or_a_direction_override_is_logged_escaped() {
        let uri = Uri::from_maybe_shared(bytes::Bytes::from("/order/\u{2028}x\u{202e}é")).unwrap();
        assert_eq!(LoggedUri(&uri).to_string(), "/order/\\u{2028}x\\u{202e}é");
    }

    /// The span's name is the one traces leave out, and lines in it say
    /// whose they are.
    #[test]
    fn the_service_span_is_named_as_traces_leave_it_out() {
        let captured = super::captured::Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        let named = tracing::subscriber::with_default(subscriber, || {
            let span = super::service_span("iridium");
            let _in = span.enter();
            tracing::error!("said");
            span.metadata().map(tracing::Metadata::name)
        });
        assert_eq!(named, Some(super::SERVICE_SPAN));
        let logs = String::from_utf8(captured.taken().0).unwrap();
        assert!(logs.contains("service{name=iridium}: "), "{logs}");
    }

    #[test]
    fn a_query_is_logged_without_its_values() {
        let logged = |uri: &str| LoggedUri(&uri.parse::<Uri>().unwrap()).to_string();
        let confirmation = "/?Action=ConfirmSubscription&TopicArn=arn&Token=s3cr3t";
        assert_eq!(logged(confirmation), "/?…");
        assert_eq!(logged("http://hq:4000/receiving/?token=s3cr3t"), "/receiving/?…");
    }

    fn timestamp(secs: u64, micros: u32) -> String {
        String::from_utf8_lossy(&super::timestamp(secs, micros)).into_owned()
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(1_764_704_575, 407_517), "2025-12-02T19:42:55.407517Z");
        assert_eq!(timestamp(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(timestamp(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        // The cached second is per thread and replaced when the second moves.
        assert_eq!(timestamp(1_764_704_576, 0), "2025-12-02T19:42:56.000000Z");
    }
}
