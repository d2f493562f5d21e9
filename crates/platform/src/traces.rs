//! Traces: spans exported over OTLP (http/protobuf) when the standard
//! OpenTelemetry variables ask for it, and the W3C `traceparent` carried
//! from hop to hop, so that one order is one trace (HQ's feed → iridium →
//! the monolith's hook → the fulfillment API).
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! turns it on; `OTEL_SERVICE_NAME` names the service (default: the
//! binary's name); the exporter reads the rest of the `OTEL_EXPORTER_OTLP_*`
//! variables itself. Unset, no layer is installed and every function here
//! returns at once after one atomic load: nothing is exported, nothing
//! slows down.
//!
//! A `traceparent` only links spans; it grants nothing. From SNS it comes in
//! `MessageAttributes`, which SNS' signature does not cover.
//!
//! The exporter is the `otlp` feature, which every service's binary has. The launcher's build goes without (it installs its own
//! console's subscriber and never an exporter): there, [`TraceExport::start`]
//! fails and the rest does nothing.

pub use contracts::sns::TRACEPARENT;

// The exporter and the propagation, or (without the `otlp` feature: the
// launcher's build) the same functions doing nothing.
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
pub use otlp::*;
#[cfg(not(feature = "otlp"))]
mod off;
#[cfg(not(feature = "otlp"))]
pub use off::*;

/// Where spans go: an OTLP endpoint and the service's name.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The full URL spans are POSTed to; `None` lets the exporter read the
    /// `OTEL_EXPORTER_OTLP_*` variables.
    pub endpoint: Option<String>,
    /// `service.name`, unless `OTEL_SERVICE_NAME` says otherwise.
    pub service: String,
}

impl TraceExport {
    /// What the environment asks for: `None` unless an OTLP endpoint is set,
    /// or when one set is no http(s) URL: then it says so on stderr without
    /// quoting it (the exporter's own error would, password and all).
    pub fn from_env(service: &str) -> Option<Self> {
        let mut set = false;
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let Some(value) = std::env::var(name).ok().filter(|value| !value.trim().is_empty()) else {
                continue;
            };
            if let Err(why) = crate::settings::http_url(&value) {
                crate::terminal::say_on_stderr(format_args!("traces are not exported: {name} is {why}"));
                return None;
            }
            set = true;
        }
        set.then(|| Self {
            endpoint: None,
            service: service.to_owned(),
        })
    }
}
