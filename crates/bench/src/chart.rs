//! The figures at a glance: an SVG chart of each load's orders/s and p99
//! latency, written beside the JSON. With `--compare`, the earlier run's
//! figures are drawn as a thin grey bar under each.
//!
//! Hand-written SVG: two bar panels need no plotting library. Orders/s is
//! drawn on a linear scale; p99 on a logarithmic one, because the 1 s gather
//! load's second would flatten every millisecond bar.

use crate::compare::{Figures, Previous};
use crate::report::Report;
use std::fmt::Write as _;

/// Width of the load labels' column, pixels.
const LABEL_WIDTH: f64 = 330.0;
/// Width of each panel's bar area, pixels.
const PANEL_WIDTH: f64 = 250.0;
/// Room after each bar for its figure, pixels.
const VALUE_ROOM: f64 = 72.0;
/// Height of one load's row, pixels.
const ROW: f64 = 22.0;
/// Height above the first row (title, panel headings).
const TOP: f64 = 48.0;
/// The smallest p99 the log scale shows, milliseconds.
const P99_FLOOR_MS: f64 = 0.1;

/// The chart of `report` (and of `previous` beside it) as an SVG document.
pub fn svg(report: &Report, previous: Option<&Previous>) -> String {
    let rows: Vec<(String, Figures, Option<Figures>)> = report
        .runs
        .iter()
        .map(|run| {
            let label = format!("{}, {} conns", run.scenario.name(), run.connections);
            (label, Figures::from(run), previous.and_then(|p| p.figures(run)))
        })
        .collect();
    let all = || {
        rows.iter()
            .flat_map(|(_, now, before)| [Some(*now), *before])
            .flatten()
    };
    let max_orders = all().map(|f| f.orders_per_s).fold(1.0, f64::max);
    let max_p99 = all().map(|f| f.p99_ms).fold(P99_FLOOR_MS * 10.0, f64::max);
    let throughput = |v: f64| PANEL_WIDTH * v / max_orders;
    let latency = |v: f64| {
        let span = (max_p99 / P99_FLOOR_MS).log10();
        PANEL_WIDTH * ((v.max(P99_FLOOR_MS) / P99_FLOOR_MS).log10() / span)
    };
    let panel_x = [LABEL_WIDTH, LABEL_WIDTH + PANEL_WIDTH + VALUE_ROOM];
    let width = panel_x[1] + PANEL_WIDTH + VALUE_ROOM;
    let height = TOP + ROW * rows.len() as f64 + 30.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="18" font-size="14" font-weight="bold">{}</text>
<text x="{}" y="40" font-weight="bold">orders/s</text>
<text x="{}" y="40" font-weight="bold">p99 latency, ms (log scale)</text>
"##,
        escape(&title(report, previous.is_some())),
        panel_x[0],
        panel_x[1],
    );
    for tick in log_ticks(max_p99) {
        let x = panel_x[1] + latency(tick);
        let bottom = TOP + ROW * rows.len() as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#666">{tick}</text>"##,
            bottom + 14.0
        );
    }
    for (index, (label, now, before)) in rows.iter().enumerate() {
        let y = TOP + ROW * index as f64;
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.1}">{}</text>"##,
            y + 14.0,
            escape(label)
        );
        for (panel, (value, length, text)) in [
            (
                now.orders_per_s,
                throughput(now.orders_per_s),
                format!("{:.0}", now.orders_per_s),
            ),
            (now.p99_ms, latency(now.p99_ms), format!("{:.2}", now.p99_ms)),
        ]
        .into_iter()
        .enumerate()
        {
            let x = panel_x[panel];
            let colour = if panel == 0 { "#3b75af" } else { "#d9822b" };
            let _ = writeln!(
                svg,
                r##"<rect x="{x}" y="{:.1}" width="{length:.1}" height="12" fill="{colour}"><title>{value}</title></rect><text x="{:.1}" y="{:.1}">{text}</text>"##,
                y + 4.0,
                x + length + 4.0,
                y + 14.0,
            );
        }
        if let Some(before) = before {
            for (panel, length) in [throughput(before.orders_per_s), latency(before.p99_ms)]
                .into_iter()
                .enumerate()
            {
                let _ = writeln!(
                    svg,
                    r##"<rect x="{}" y="{:.1}" width="{length:.1}" height="3" fill="#999"/>"##,
                    panel_x[panel],
                    y + 17.0,
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The chart's title: the machine, and what the grey bars are.
fn title(report: &Report, compared: bool) -> String {
    let mut title = format!(
        "Interstella bench: {} cores, {} s per load, others' CPU up to {:.2} cores",
        report.machine.cores,
        report.settings.load_seconds,
        report.runs.iter().map(|r| r.others_cores).fold(0.0, f64::max),
    );
    if compared {
        title.push_str(" (grey: the run compared with)");
    }
    title
}

/// Powers of ten from the scale's floor up to `max`, in milliseconds.
fn log_ticks(max: f64) -> Vec<f64> {
    [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        .into_iter()
        .filter(|tick| *tick <= max)
        .collect()
}

/// `text` safe inside SVG text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_ticks_stop_at_the_largest_figure() {
        assert_eq!(escape("a < b & c"), "a &lt; b &amp; c");
        assert_eq!(log_ticks(50.0), vec![0.1, 1.0, 10.0]);
    }
}
