//! The figures at a glance: an SVG chart of each load's orders/s and p99
//! latency, written beside the JSON. With `--compare`, the earlier run's
//! figures are drawn as a thin grey bar under each, and said beside the
//! bar's figure ("7422 (was 7438)").
//!
//! Hand-written SVG: two bar panels need no plotting library. Orders/s is
//! drawn on a linear scale; p99 on a logarithmic one, because the 1 s gather
//! load's second would flatten every millisecond bar.
//!
//! The document is an image to assistive technology (`role="img"`), named
//! by its `<title>` and described by a `<desc>` that says every figure.

use crate::compare::{Figures, Previous};
use crate::report::{GOAL_LOAD, Report, TARGET_ORDERS_PER_S, TARGET_P99_MS};
use std::fmt::Write as _;

/// Width of the load labels' column, pixels.
const LABEL_WIDTH: f64 = 330.0;
/// Width of each panel's bar area, pixels.
const PANEL_WIDTH: f64 = 250.0;
/// Room after each bar for its figure, pixels.
const VALUE_ROOM: f64 = 72.0;
/// Room after each bar for its figure and the earlier one's, pixels.
const COMPARED_VALUE_ROOM: f64 = 150.0;
/// The earlier run's bars: grey, 4.5:1 on white.
pub const EARLIER_FILL: &str = "#767676";
/// The panels' bars, each at least 3:1 on white.
const PANEL_COLOURS: [&str; 2] = ["#3b75af", "#c06c1c"];
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
            let label = format!("{}, {}", run.scenario.name(), connections(run.connections));
            (label, Figures::from(run), previous.and_then(|p| p.figures(run)))
        })
        .collect();
    let all = || {
        rows.iter()
            .flat_map(|(_, now, before)| [Some(*now), *before])
            .flatten()
    };
    let goal_rows: Vec<usize> = report
        .runs
        .iter()
        .enumerate()
        .filter(|(_, run)| (run.scenario, run.connections) == GOAL_LOAD)
        .map(|(index, _)| index)
        .collect();
    // The goals' marks are drawn on the load they are for: the axis reaches them.
    let least_orders_shown = if goal_rows.is_empty() {
        1.0
    } else {
        TARGET_ORDERS_PER_S
    };
    let max_orders = all().map(|f| f.orders_per_s).fold(least_orders_shown, f64::max);
    let max_p99 = all().map(|f| f.p99_ms).fold(P99_FLOOR_MS * 10.0, f64::max);
    let throughput = |v: f64| PANEL_WIDTH * v / max_orders;
    let latency = |v: f64| {
        let span = (max_p99 / P99_FLOOR_MS).log10();
        PANEL_WIDTH * ((v.max(P99_FLOOR_MS) / P99_FLOOR_MS).log10() / span)
    };
    let value_room = if previous.is_some() {
        COMPARED_VALUE_ROOM
    } else {
        VALUE_ROOM
    };
    let panel_x = [LABEL_WIDTH, LABEL_WIDTH + PANEL_WIDTH + value_room];
    let width = panel_x[1] + PANEL_WIDTH + value_room;
    let height = TOP + ROW * rows.len() as f64 + 46.0;

    let mut description = description(&rows);
    if !goal_rows.is_empty() {
        description.push(' ');
        description.push_str(&goals());
    }
    let mut svg = opening(width, height, &title(report, previous.is_some()), &description);
    let _ = write!(
        svg,
        r##"<text x="{}" y="40" font-weight="bold">orders/s</text>
<text x="{}" y="40" font-weight="bold">p99 latency, ms (log scale)</text>
"##,
        panel_x[0], panel_x[1],
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
    // The figures beside the bars, drawn last, over the goals' marks.
    let mut figures = String::new();
    for (index, (label, now, before)) in rows.iter().enumerate() {
        let y = TOP + ROW * index as f64;
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.1}">{}</text>"##,
            y + 14.0,
            escape(label)
        );
        for (panel, (length, text, was)) in [
            (
                throughput(now.orders_per_s),
                orders_per_s(now.orders_per_s),
                before.map(|b| orders_per_s(b.orders_per_s)),
            ),
            (
                latency(now.p99_ms),
                p99(now.p99_ms),
                before.map(|b| p99(b.p99_ms)),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let x = panel_x[panel];
            let colour = PANEL_COLOURS[panel];
            let unit = UNITS[panel];
            let shown = match &was {
                Some(was) => format!("{text} (was {was})"),
                None => text.clone(),
            };
            let _ = writeln!(
                svg,
                r##"<rect x="{x}" y="{:.1}" width="{length:.1}" height="12" fill="{colour}"><title>{}: {text} {unit}</title></rect>"##,
                y + 4.0,
                escape(label),
            );
            let _ = writeln!(
                figures,
                r##"<text x="{:.1}" y="{:.1}" {FIGURE_HALO}>{shown}</text>"##,
                x + length + 4.0,
                y + 14.0,
            );
        }
        if let Some(before) = before {
            for (panel, (length, text)) in [
                (throughput(before.orders_per_s), orders_per_s(before.orders_per_s)),
                (latency(before.p99_ms), p99(before.p99_ms)),
            ]
            .into_iter()
            .enumerate()
            {
                let _ = writeln!(
                    svg,
                    r##"<rect x="{}" y="{:.1}" width="{length:.1}" height="3" fill="{EARLIER_FILL}"><title>{}, the run compared with: {text} {}</title></rect>"##,
                    panel_x[panel],
                    y + 17.0,
                    escape(label),
                    UNITS[panel],
                );
            }
        }
    }
    // Over the bars: a bar past its goal would hide a mark under it.
    for index in &goal_rows {
        let y = TOP + ROW * *index as f64;
        for (x, what) in [
            (
                panel_x[0] + throughput(TARGET_ORDERS_PER_S),
                format!("goal: at least {TARGET_ORDERS_PER_S:.0} orders/s"),
            ),
            (
                panel_x[1] + latency(TARGET_P99_MS),
                format!("goal: p99 at most {TARGET_P99_MS} ms"),
            ),
        ] {
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-width="2" stroke-dasharray="3 2"><title>{what}</title></line>"##,
                y + 1.0,
                y + ROW - 1.0,
            );
        }
    }
    svg.push_str(&figures);
    if !goal_rows.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.1}">{}</text>"##,
            height - 8.0,
            escape(&goals())
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A figure's white outline, painted under its letters: a goal's mark
/// that falls where the figure is written would otherwise cross it out.
const FIGURE_HALO: &str = r##"stroke="#fff" stroke-width="3" paint-order="stroke""##;

/// What the dashed marks are, in words.
fn goals() -> String {
    let (scenario, goal_connections) = GOAL_LOAD;
    format!(
        "Dashed marks: the goals of the load \"{}, {}\": \
         at least {TARGET_ORDERS_PER_S:.0} orders/s and p99 at most {TARGET_P99_MS} ms.",
        scenario.name(),
        connections(goal_connections)
    )
}

/// The document's start: an image named by its title (also drawn at the
/// top) and described by `description`, on white.
fn opening(width: f64, height: f64, title: &str, description: &str) -> String {
    let title = escape(title);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" aria-labelledby="chart-title chart-desc">
<title id="chart-title">{title}</title>
<desc id="chart-desc">{}</desc>
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="18" font-size="14" font-weight="bold">{title}</text>
"##,
        escape(description)
    )
}

/// The panels' units, as the bars' tooltips and the description say them.
const UNITS: [&str; 2] = ["orders/s", "ms p99"];

/// Orders a second as the chart shows them: whole.
fn orders_per_s(value: f64) -> String {
    format!("{value:.0}")
}

/// A p99 as the chart shows it: milliseconds to two decimals.
fn p99(value: f64) -> String {
    format!("{value:.2}")
}

/// "1 connection", "32 conns".
fn connections(count: u32) -> String {
    if count == 1 {
        "1 connection".to_owned()
    } else {
        format!("{count} conns")
    }
}

/// The chart's text alternative: each load's figures, and the earlier
/// run's beside them.
fn description(rows: &[(String, Figures, Option<Figures>)]) -> String {
    let mut text = String::from("Orders a second and p99 latency of each load.");
    for (label, now, before) in rows {
        let _ = write!(
            text,
            " {label}: {} orders/s, p99 {} ms",
            orders_per_s(now.orders_per_s),
            p99(now.p99_ms)
        );
        if let Some(before) = before {
            let _ = write!(
                text,
                " (was {} orders/s, p99 {} ms)",
                orders_per_s(before.orders_per_s),
                p99(before.p99_ms)
            );
        }
        text.push('.');
    }
    text
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
        assert_eq!(connections(1), "1 connection");
        assert_eq!(connections(32), "32 conns");
        assert_eq!(
            goals(),
            "Dashed marks: the goals of the load \"bundle, curl body, 32 conns\": \
             at least 10000 orders/s and p99 at most 6 ms."
        );
    }

    #[test]
    fn the_chart_is_an_image_named_by_its_title_and_described_in_words() {
        let figures = |orders_per_s, p99_ms| Figures {
            orders_per_s,
            p99_ms,
            cpu_us: None,
            peak_mb: None,
        };
        let rows = [(
            "bundle, curl body, 1 connection".to_owned(),
            figures(7422.4, 1.234),
            Some(figures(7438.0, 1.3)),
        )];
        assert_eq!(
            description(&rows),
            "Orders a second and p99 latency of each load. bundle, curl body, 1 connection: \
             7422 orders/s, p99 1.23 ms (was 7438 orders/s, p99 1.30 ms)."
        );
        let svg = opening(100.0, 50.0, "Interstella bench: a & b", &description(&rows));
        assert!(
            svg.starts_with("<svg")
                && svg.contains(r#"role="img" aria-labelledby="chart-title chart-desc">"#)
                && svg.contains(r#"<title id="chart-title">Interstella bench: a &amp; b</title>"#)
                && svg.contains(
                    r#"<desc id="chart-desc">Orders a second and p99 latency of each load. bundle"#
                ),
            "{svg}"
        );
    }
}
