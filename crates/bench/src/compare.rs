//! A run held against an earlier one (`--compare PREVIOUS.json`): the
//! change of each load's orders/s, p99, CPU per order and peak memory.
//!
//! The earlier JSON is read for the few fields compared, each run found by
//! its load name and connection count, so a file from an older bench with
//! other fields (or without some loads) still compares.

use crate::error::BenchError;
use crate::report::{BENCH_PROCESS, Report, Run, WRK_PROCESS, markdown_table, megabytes, right_align};
use comfy_table::Table;
use std::collections::BTreeMap;
use std::path::Path;

/// The figures of an earlier run that are compared.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Previous {
    /// Its loads.
    pub runs: Vec<PreviousRun>,
    /// How it was configured, as far as a comparison needs (absent from
    /// older files).
    #[serde(default)]
    pub settings: PreviousSettings,
}

/// The settings of an earlier run that make it comparable or not.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PreviousSettings {
    /// Its `--service-env`, as `NAME=VALUE` (unknown in older files).
    #[serde(default)]
    pub service_env: Option<Vec<String>>,
    /// The commit it measured, when it said.
    #[serde(default)]
    pub source_commit: Option<String>,
}

/// One load of an earlier run.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PreviousRun {
    /// The load's name (e.g. `bundle, curl body`).
    pub name: String,
    /// Its connections.
    pub connections: u32,
    /// Orders a second.
    pub orders_per_s: f64,
    /// Latency, milliseconds.
    pub latency_ms: PreviousLatency,
    /// CPU µs per order by process (absent from the oldest files).
    #[serde(default)]
    pub cpu_us_per_order: Option<BTreeMap<String, f64>>,
    /// Peak resident memory by service, KiB (absent from the oldest files).
    #[serde(default)]
    pub peak_rss_kib: Option<BTreeMap<String, u64>>,
}

/// The latency compared.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct PreviousLatency {
    /// 99th percentile, milliseconds.
    pub p99: f64,
}

/// The figures compared, from either run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Orders a second.
    pub orders_per_s: f64,
    /// p99 latency, milliseconds.
    pub p99_ms: f64,
    /// The services' CPU µs per order (not the bench's nor wrk's), if
    /// the run's file says.
    pub cpu_us: Option<f64>,
    /// The services' peak resident memory, MB, added up, if it says.
    pub peak_mb: Option<f64>,
}

impl Figures {
    fn new(
        orders_per_s: f64,
        p99_ms: f64,
        cpu: Option<&BTreeMap<String, f64>>,
        peak_kib: Option<&BTreeMap<String, u64>>,
    ) -> Self {
        let cpu_us = cpu.map(|cpu| {
            cpu.iter()
                .filter(|(name, _)| ![BENCH_PROCESS, WRK_PROCESS].contains(&name.as_str()))
                .map(|(_, us)| us)
                .sum()
        });
        Self {
            orders_per_s,
            p99_ms,
            cpu_us,
            peak_mb: peak_kib.map(|peak| megabytes(peak.values().sum())),
        }
    }
}

impl From<&Run> for Figures {
    fn from(run: &Run) -> Self {
        Self::new(
            run.orders_per_s,
            run.latency_ms.p99,
            Some(&run.cpu_us_per_order),
            Some(&run.peak_rss_kib),
        )
    }
}

impl From<&PreviousRun> for Figures {
    fn from(run: &PreviousRun) -> Self {
        Self::new(
            run.orders_per_s,
            run.latency_ms.p99,
            run.cpu_us_per_order.as_ref(),
            run.peak_rss_kib.as_ref(),
        )
    }
}

impl Previous {
    /// Reads the JSON an earlier run wrote.
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        let failed = |reason: String| BenchError::Compare {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| failed(e.to_string()))
    }

    /// The figures of the earlier load that `run` repeats, if it was measured.
    pub fn figures(&self, run: &Run) -> Option<Figures> {
        self.runs
            .iter()
            .find(|previous| previous.name == run.scenario.name() && previous.connections == run.connections)
            .map(Figures::from)
    }

    /// What the two runs differ in beyond the code, said before their
    /// figures are: settings given the services, and the commits.
    pub fn note(&self, report: &Report) -> String {
        let commits = format!(
            "Against {} (this run: {}).",
            self.settings
                .source_commit
                .as_deref()
                .unwrap_or("an earlier run of unknown commit"),
            report
                .settings
                .source_commit
                .as_deref()
                .unwrap_or("unknown commit")
        );
        let shown = |env: &[String]| {
            if env.is_empty() {
                "none".to_owned()
            } else {
                env.join(" ")
            }
        };
        let now = &report.settings.service_env;
        match &self.settings.service_env {
            None => format!(
                "{commits} The earlier run's file does not say its --service-env (now: {}).",
                shown(now)
            ),
            Some(then) if sorted(then) == sorted(now) => commits,
            Some(then) => format!(
                "{commits} NOT LIKE FOR LIKE: --service-env {} then, {} now.",
                shown(then),
                shown(now)
            ),
        }
    }
}

/// `env`, in order: the same settings given in another order are the same.
fn sorted(env: &[String]) -> Vec<&String> {
    let mut sorted: Vec<&String> = env.iter().collect();
    sorted.sort();
    sorted
}

/// [`change`], or `—` when a file did not say.
fn change_if_said(before: Option<f64>, after: Option<f64>, decimals: usize) -> String {
    match (before, after) {
        (Some(before), Some(after)) => change(before, after, decimals),
        _ => "—".to_owned(),
    }
}

/// `before → after (±x%)`.
fn change(before: f64, after: f64, decimals: usize) -> String {
    if before <= 0.0 {
        return format!("{before:.decimals$} → {after:.decimals$}");
    }
    let percent = (after / before.max(1e-9) - 1.0) * 100.0;
    format!("{before:.decimals$} → {after:.decimals$} ({percent:+.0}%)")
}

/// The table of changes, one row per load of `report`, then one per load
/// only the earlier run measured.
pub fn table(report: &Report, previous: &Previous) -> Table {
    let mut table = markdown_table(&[
        "load",
        "conns",
        "orders/s",
        "p99 ms",
        "CPU µs/order (services)",
        "peak RSS MB (services)",
    ]);
    for run in &report.runs {
        let after = Figures::from(run);
        let cells = match previous.figures(run) {
            Some(before) => [
                change(before.orders_per_s, after.orders_per_s, 0),
                change(before.p99_ms, after.p99_ms, 2),
                change_if_said(before.cpu_us, after.cpu_us, 0),
                change_if_said(before.peak_mb, after.peak_mb, 1),
            ],
            None => ["new".to_owned(), String::new(), String::new(), String::new()],
        };
        let mut row = vec![run.scenario.name().to_owned(), run.connections.to_string()];
        row.extend(cells);
        table.add_row(row);
    }
    for gone in previous.runs.iter().filter(|previous| {
        !report
            .runs
            .iter()
            .any(|run| run.scenario.name() == previous.name && run.connections == previous.connections)
    }) {
        table.add_row(vec![
            gone.name.clone(),
            gone.connections.to_string(),
            format!("{:.0} → not measured", gone.orders_per_s),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    right_align(&mut table, &[1, 2, 3, 4, 5]);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_shows_both_figures_and_the_percentage() {
        assert_eq!(change(100.0, 95.0, 0), "100 → 95 (-5%)");
        assert_eq!(change(2.0, 3.0, 2), "2.00 → 3.00 (+50%)");
        assert_eq!(change(0.0, 3.0, 0), "0 → 3", "no percentage of nothing");
    }

    #[test]
    fn earlier_json_is_read_for_the_fields_compared_and_services_only() {
        let previous: Previous = serde_json::from_value(serde_json::json!({
            "machine": {"cores": 2},
            "runs": [{
                "name": "bundle, curl body", "route": "x", "connections": 32,
                "orders_per_s": 1000.0, "latency_ms": {"p50": 1.0, "p99": 5.0},
                "cpu_us_per_order": {"monolith": 50.0, "bench": 7.0, "wrk": 9.0},
                "peak_rss_kib": {"monolith": 10000}
            }]
        }))
        .unwrap();
        let figures = Figures::from(&previous.runs[0]);
        assert_eq!(figures.cpu_us, Some(50.0));
        assert_eq!(figures.p99_ms, 5.0);
        assert!((figures.peak_mb.unwrap() - 10.24).abs() < 1e-9);
    }

    #[test]
    fn what_one_run_did_not_measure_or_say_is_shown_as_such() {
        let previous: Previous = serde_json::from_value(serde_json::json!({
            "settings": {"service_env": ["RUST_LOG=warn"], "source_commit": "abc"},
            "runs": [
                // An older file: no CPU, no memory.
                {"name": "bundle, curl body", "connections": 32, "orders_per_s": 1000.0, "latency_ms": {"p99": 5.0}},
                // A load this run does not make.
                {"name": "bundle, curl body", "connections": 64, "orders_per_s": 900.0, "latency_ms": {"p99": 6.0}}
            ]
        }))
        .unwrap();
        let mut report = crate::report::tests::report(vec![crate::report::tests::run(
            crate::scenario::Scenario::BundleCurl,
            32,
            1100.0,
        )]);
        report.runs[0].cpu_us_per_order = BTreeMap::from([("monolith".to_owned(), 40.0)]);
        let shown = table(&report, &previous).to_string();
        let rows: Vec<&str> = shown.lines().skip(2).collect();
        assert_eq!(rows.len(), 2, "{shown}");
        assert!(
            rows[0].contains("1000 → 1100 (+10%)") && rows[0].ends_with("— |"),
            "{shown}"
        );
        assert!(!rows[0].contains("0 → 40"), "no made-up zero: {shown}");
        assert!(
            rows[1].contains(" 64 |") && rows[1].contains("900 → not measured"),
            "{shown}"
        );
        let note = previous.note(&report);
        assert!(
            note.contains("Against abc")
                && note.contains("NOT LIKE FOR LIKE: --service-env RUST_LOG=warn then, none now."),
            "{note}"
        );
        // An older file says nothing of its settings: not "none".
        let older: Previous = serde_json::from_value(serde_json::json!({"runs": []})).unwrap();
        let note = older.note(&report);
        assert!(
            note.contains("The earlier run's file does not say its --service-env (now: none)."),
            "{note}"
        );
    }
}
