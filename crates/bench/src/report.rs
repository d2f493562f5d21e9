//! The figures: what was measured, the targets they are held to, the printed
//! tables and the JSON written beside them.

use crate::procstat::Memory;
use crate::scenario::Scenario;
use crate::services::Kind;
use crate::sns::VerifyCost;
use crate::startup::Startup;
use crate::wrk::Errors;
use comfy_table::presets::ASCII_MARKDOWN;
use comfy_table::{CellAlignment, Table};
use std::collections::BTreeMap;

/// The key of the bench's own CPU (the fake API) in [`Run::cpu_us_per_order`].
pub const BENCH_PROCESS: &str = "bench";
/// The key of the load generator's CPU in [`Run::cpu_us_per_order`].
pub const WRK_PROCESS: &str = "wrk";

/// The monolith's name in the runs and the memory table: its binary's.
const MONOLITH: &str = Kind::Monolith.binary();
/// The name of the 2-hop floor in the runs and the memory table.
pub const FLOOR: &str = "2-hop floor";
/// The name of the monolith started with a 1 s gather for the orders in
/// flight.
pub const SLOW_MONOLITH: &str = "monolith (1 s gather)";
/// The connections of the loads a task is sized from: the throughput
/// targets' own.
pub const SIZING_CONNECTIONS: u32 = 32;
/// The environment variable tokio's runtime reads for its worker count.
/// Unset, tokio runs a worker per core it may use: on ECS, one for a task
/// of up to one vCPU (the standard library counts the task's CPU quota).
pub const WORKER_THREADS_VAR: &str = "TOKIO_WORKER_THREADS";

/// The load [`TARGET_ORDERS_PER_S`] and [`TARGET_P99_MS`] are judged on,
/// and the chart marks them on: direct bundle orders at the sizing
/// connections.
pub const GOAL_LOAD: (Scenario, u32) = (Scenario::BundleCurl, SIZING_CONNECTIONS);
/// Bundle orders a second at 32 connections, direct orders.
pub const TARGET_ORDERS_PER_S: f64 = 10_000.0;
/// p99 latency of those orders, milliseconds.
pub const TARGET_P99_MS: f64 = 6.0;
/// Peak resident memory of any service under load, megabytes (10^6 bytes).
pub const TARGET_PEAK_MB: f64 = 20.0;
/// Peak resident memory of the monolith at up to 128 connections, MB.
pub const TARGET_MONOLITH_PEAK_MB: f64 = 19.0;
/// The monolith's direct orders/s as a share of the 2-hop floor's, at each
/// of [`crate::FLOOR_CONNECTIONS`], with the workshop's log lines written.
pub const TARGET_FLOOR_RATIO: f64 = 0.95;
/// Signed SNS orders/s as a share of direct ones, 32 connections.
pub const TARGET_SIGNED_RATIO: f64 = 0.8;
/// How far apart a ratio target's two passes may be, as a share of the
/// larger, for the ratio to be judged: further apart, the machine's pace
/// changed between the loads compared (this VM's moves by up to a third
/// with nothing else running), and the run says so instead of met or missed.
pub const STEADY_SHARE: f64 = 0.10;
/// Median start-up time, milliseconds.
pub const TARGET_STARTUP_MS: f64 = 20.0;
/// With a 1 s gather and 1,000 orders in flight: the p99 latency, seconds
/// (each order about 1 s, none queued behind another).
pub const TARGET_SLOW_P99_S: f64 = 1.2;
/// ...and orders a second (1,000 in flight, each about 1 s).
pub const TARGET_SLOW_ORDERS_PER_S: f64 = 900.0;

/// Everything measured in one benchmark run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The machine and how busy it was.
    pub machine: Machine,
    /// How the run was configured.
    pub settings: Settings,
    /// The binaries measured.
    pub binaries: Vec<Binary>,
    /// Each load, in the order run.
    pub runs: Vec<Run>,
    /// Memory of each service process.
    pub services: Vec<ServiceMemory>,
    /// Start-up times by binary.
    pub startup: BTreeMap<String, Startup>,
    /// What verifying one SNS signature costs, in-process.
    pub sns_verify: VerifyCost,
    /// The most signed ÷ direct orders/s at 32 connections could be on this
    /// machine if the signature check were a signed order's only extra
    /// work (see [`Report::signed_ratio_ceiling`]); filled in by
    /// [`Report::judge`].
    pub signed_ratio_ceiling: Option<f64>,
    /// The loads the ratio targets compare (direct and 2-hop floor at each
    /// of [`crate::FLOOR_CONNECTIONS`], signed at
    /// [`crate::SIGNED_RATIO_CONNECTIONS`]), run again after every other
    /// order load: each ratio is judged on both passes, and not at all
    /// when they are further apart than the report's steady share allows.
    pub second_pass: Vec<Run>,
    /// The sized loads again, at `SIZING_CONNECTIONS`, with the services
    /// on one tokio worker each: how a task of up to one vCPU runs them.
    pub one_worker_runs: Vec<Run>,
    /// What sizing an ECS task needs, per service and load; filled in by
    /// [`Report::judge`].
    pub sizing: Vec<Sizing>,
    /// The targets and whether they were met.
    pub targets: Vec<Target>,
}

/// One service under one load, as sizing a task needs it: CPU per order,
/// what one vCPU carries, memory at rest and per connection in flight.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sizing {
    /// The service.
    pub service: String,
    /// The load's name (e.g. `bundle, signed SNS body`).
    pub load: String,
    /// CPU microseconds per order of this service, at
    /// [`SIZING_CONNECTIONS`] connections, with a tokio worker per core of
    /// this machine (the services' default here).
    pub cpu_us_per_order: f64,
    /// Orders a second one fully busy core of this machine carries that
    /// way: 10^6 ÷ `cpu_us_per_order`.
    pub orders_per_s_per_core: f64,
    /// CPU microseconds per order with one tokio worker, as a task of up to
    /// one vCPU runs (from [`Report::one_worker_runs`]), if measured.
    pub one_worker_cpu_us_per_order: Option<f64>,
    /// Orders a second one fully busy core carries with one worker:
    /// 10^6 ÷ `one_worker_cpu_us_per_order`. What a one-vCPU task is sized by.
    pub one_worker_orders_per_s: Option<f64>,
    /// Resident memory at rest, MB (10^6 bytes).
    pub idle_mb: f64,
    /// Memory each connection in flight adds, KB (10^3 bytes): the
    /// monolith's from the 1,000 orders in flight, the others' from their
    /// load with the most connections.
    pub per_connection_kb: Option<f64>,
    /// The connections `per_connection_kb` was measured at: the cost per
    /// connection falls as they grow (the service's fixed part is shared).
    pub per_connection_at: Option<u32>,
}

/// The machine and how busy it was.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// Cores available.
    pub cores: usize,
    /// The CPU's model name (`/proc/cpuinfo`), when the kernel says it.
    pub cpu_model: Option<String>,
    /// The kernel's release (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// Load averages (1, 5, 15 min) when the run started.
    pub load_average_before: [f32; 3],
    /// Load averages when it ended.
    pub load_average_after: [f32; 3],
    /// Cores' worth of CPU used by other processes in the second before the run.
    pub others_cores_before: f64,
    /// The load generator.
    pub load_generator: String,
}

/// How the run was configured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// `--quick`.
    pub quick: bool,
    /// Seconds per measured load.
    pub load_seconds: u64,
    /// Seconds of warm-up before each.
    pub warmup_seconds: u64,
    /// Start-up samples per binary.
    pub startup_samples: usize,
    /// `--service-env`, as `NAME=VALUE`: a run with `RUST_LOG=warn` is not
    /// the services as they ship, and a comparison must say so.
    pub service_env: Vec<String>,
    /// The commit of the source tree the bench ran in (`git describe
    /// --always --dirty`), when it ran in one; with `--bin-dir` the
    /// binaries measured may be of another.
    pub source_commit: Option<String>,
    /// When the run ended, seconds since the Unix epoch (UTC).
    pub ended_unix_s: u64,
}

/// A binary measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Binary {
    /// Its name.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Seconds since it was built.
    pub built_seconds_ago: Option<u64>,
}

/// Cores' worth of CPU other processes may use during a load before the
/// load is named as noisy: on this project's 2-core machine, a twentieth.
pub const NOISY_CORES: f64 = 0.1;

/// One measured load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    /// What was sent where, written as its `name` and `route`.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// Open connections, one order in flight on each.
    pub connections: u32,
    /// Seconds measured.
    pub seconds: f64,
    /// Orders answered with a status under 400.
    pub orders: u64,
    /// Those, per second.
    pub orders_per_s: f64,
    /// wrk's errors, by kind.
    pub errors: Errors,
    /// Every error: see [`Run::error_count`].
    pub total_errors: u64,
    /// Latency, milliseconds.
    pub latency_ms: LatencyMs,
    /// Fulfillment requests the fake API answered 200 during the load.
    pub api_fulfilled: u64,
    /// Fulfillment requests it refused (wrong API key).
    pub api_refused: u64,
    /// CPU microseconds per order, by process: each service, `bench` (the
    /// fake API), `wrk` (the load generator).
    pub cpu_us_per_order: BTreeMap<String, f64>,
    /// Cores' worth of CPU used by other processes during the load: noise.
    pub others_cores: f64,
    /// Log lines the services wrote per order.
    pub log_lines_per_order: f64,
    /// Peak resident memory during the load, KiB, by service.
    pub peak_rss_kib: BTreeMap<String, u64>,
    /// Threads at the end of the load, by service.
    pub threads: BTreeMap<String, u64>,
}

impl Run {
    /// Every error: wrk's, the fake API's refusals, and orders answered
    /// without the fulfillment API having been called (or the reverse),
    /// beyond the orders cut off in flight when the load stopped.
    pub fn error_count(&self) -> u64 {
        self.errors.total() + self.api_refused + self.unmatched_orders()
    }

    /// Orders answered 2xx and API calls made that do not pair up, beyond
    /// the one per connection cut off when the load stopped.
    pub fn unmatched_orders(&self) -> u64 {
        let unmatched = self.api_fulfilled.abs_diff(self.orders);
        unmatched.saturating_sub(u64::from(self.connections))
    }

    /// CPU microseconds per order of every process measured: the services,
    /// the fake API and wrk, which share the machine's cores.
    pub fn machine_cpu_us(&self) -> f64 {
        self.cpu_us_per_order.values().sum()
    }

    /// CPU microseconds per order of the services alone.
    pub fn service_cpu_us(&self) -> f64 {
        self.services_cpu_us().map(|(_, us)| us).sum()
    }

    /// CPU microseconds per order of each service, by name.
    fn services_cpu_us(&self) -> impl Iterator<Item = (&String, f64)> {
        self.cpu_us_per_order
            .iter()
            .filter(|(name, _)| ![BENCH_PROCESS, WRK_PROCESS].contains(&name.as_str()))
            .map(|(name, us)| (name, *us))
    }
}

/// Latency, milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl From<crate::wrk::Latency> for LatencyMs {
    fn from(us: crate::wrk::Latency) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            p50: ms(us.p50),
            p90: ms(us.p90),
            p99: ms(us.p99),
            max: ms(us.max),
            mean: us.mean / 1e3,
        }
    }
}

/// Memory of one service process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceMemory {
    /// The service.
    pub name: String,
    /// After start, before any load.
    pub idle: Memory,
    /// After its loads.
    pub after_load: Memory,
    /// The highest peak seen (idle or under any load), KiB.
    pub peak_kib: u64,
}

/// A target and whether it was met.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The target.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met? False when not `steady`: then it is not judged.
    pub met: bool,
    /// Whether the figures it is judged on held from one pass to the next:
    /// false for a ratio whose two passes differ by more than
    /// [`STEADY_SHARE`]. Always true for a target measured once.
    pub steady: bool,
}

impl Target {
    /// A target measured once: `met` if `measured` meets it.
    fn once(what: impl Into<String>, target: String, measured: String, met: bool) -> Self {
        Self {
            what: what.into(),
            target,
            measured,
            met,
            steady: true,
        }
    }

    /// A ratio target (at least `goal`) measured in two passes, `first` and
    /// then `second` if the second pass ran. Judged on their mean when they
    /// are within [`STEADY_SHARE`] of each other; otherwise not judged.
    /// `note` follows the figures (what the goal allows, say).
    fn ratio(what: String, goal: f64, first: f64, second: Option<f64>, note: &str) -> Self {
        let target = format!(">= {goal}");
        let Some(second) = second else {
            let shown = RatioDigits::for_judging(first, goal).show(first);
            return Self::once(what, target, format!("{shown}{note}"), first >= goal);
        };
        let mean = (first + second) / 2.0;
        let apart = (first - second).abs() / first.max(second).max(f64::MIN_POSITIVE);
        let steady = apart <= STEADY_SHARE;
        let digits = RatioDigits::for_judging(mean, goal);
        let [mean_shown, first_shown, second_shown] = [mean, first, second].map(|ratio| digits.show(ratio));
        let measured = if steady {
            format!("{mean_shown} (passes {first_shown}, {second_shown}){note}")
        } else {
            // Over the limit, so never printed as the limit ("10.4%", not "10%").
            let percent = apart * 100.0;
            let digits = decimals_to_tell(percent, STEADY_SHARE * 100.0, 0);
            format!(
                "{first_shown}, then {second_shown}: {percent:.digits$}% apart, the machine's pace changed between the loads{note}"
            )
        };
        Self {
            what,
            target,
            measured,
            met: steady && mean >= goal,
            steady,
        }
    }
}

/// The fewest decimals, from `least` up to two more, at which `value` is
/// not printed as `bound`: a figure on the wrong side of its bound must not
/// read as the bound itself beside the verdict ("0.948", not "0.95", beside
/// MISSED; "10.4% apart", not "10%", beside UNSTEADY).
fn decimals_to_tell(value: f64, bound: f64, least: usize) -> usize {
    (least..least + 2)
        .find(|&digits| format!("{value:.digits$}") != format!("{bound:.digits$}"))
        .unwrap_or(least + 2)
}

/// How many decimals a ratio is printed with: two, or as many more (up to
/// four) as it takes for a ratio that misses its goal not to print as the
/// goal itself ("0.949", not "0.95" beside MISSED).
#[derive(Debug, Clone, Copy, PartialEq)]
struct RatioDigits(usize);

impl RatioDigits {
    /// The digits that show whether `judged` is under `goal`.
    fn for_judging(judged: f64, goal: f64) -> Self {
        if judged >= goal {
            return Self(2);
        }
        Self(decimals_to_tell(judged, goal, 2))
    }

    /// `ratio` with these digits.
    fn show(self, ratio: f64) -> String {
        format!("{ratio:.*}", self.0)
    }
}

/// Megabytes (10^6 bytes) in `kib` KiB.
pub fn megabytes(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

impl Report {
    /// Holds the figures to the targets; fills `self.targets`.
    pub fn judge(&mut self) {
        let mut targets = Vec::new();
        let (goal_scenario, goal_connections) = GOAL_LOAD;
        if let Some(run) = self.run(goal_scenario, goal_connections) {
            targets.push(Target::once(
                format!("bundle orders/s, direct, {goal_connections} connections"),
                format!(">= {TARGET_ORDERS_PER_S:.0}"),
                format!("{:.0}", run.orders_per_s),
                run.orders_per_s >= TARGET_ORDERS_PER_S,
            ));
            targets.push(Target::once(
                format!("bundle p99 latency, direct, {goal_connections} connections"),
                format!("<= {TARGET_P99_MS} ms"),
                format!("{:.2} ms", run.latency_ms.p99),
                run.latency_ms.p99 <= TARGET_P99_MS,
            ));
        }
        for connections in crate::FLOOR_CONNECTIONS {
            let direct = (Scenario::BundleCurl, connections);
            let floor = (Scenario::FloorCurl, connections);
            if let Some(ratio) = ratio_in(&self.runs, direct, floor) {
                targets.push(Target::ratio(
                    format!("monolith ÷ 2-hop floor, orders/s, {connections} connections"),
                    TARGET_FLOOR_RATIO,
                    ratio,
                    ratio_in(&self.second_pass, direct, floor),
                    "",
                ));
            }
        }
        self.signed_ratio_ceiling = self.signed_ratio_ceiling();
        self.sizing = self.sizing();
        let signed = (Scenario::BundleSns, crate::SIGNED_RATIO_CONNECTIONS);
        let direct = (Scenario::BundleCurl, crate::SIGNED_RATIO_CONNECTIONS);
        if let Some(ratio) = ratio_in(&self.runs, signed, direct) {
            let note = self
                .signed_ratio_ceiling
                .map(|ceiling| format!("; the check alone allows {ceiling:.2}"))
                .unwrap_or_default();
            targets.push(Target::ratio(
                format!(
                    "signed ÷ direct, orders/s, {} connections",
                    crate::SIGNED_RATIO_CONNECTIONS
                ),
                TARGET_SIGNED_RATIO,
                ratio,
                ratio_in(&self.second_pass, signed, direct),
                &note,
            ));
        }
        for service in self.services.iter().filter(|s| s.name != FLOOR) {
            let peak = megabytes(service.peak_kib);
            let goal = if service.name == MONOLITH {
                TARGET_MONOLITH_PEAK_MB
            } else {
                TARGET_PEAK_MB
            };
            targets.push(Target::once(
                format!("peak memory, {}", service.name),
                format!("<= {goal} MB"),
                format!("{peak:.1} MB"),
                peak <= goal,
            ));
        }
        for (name, startup) in &self.startup {
            targets.push(Target::once(
                format!("start-up to first 200, {name} (median)"),
                format!("<= {TARGET_STARTUP_MS} ms"),
                format!("{:.1} ms", startup.median_ms),
                startup.median_ms <= TARGET_STARTUP_MS,
            ));
        }
        if let Some(run) = self
            .runs
            .iter()
            .find(|run| run.scenario == Scenario::BundleSlowGather)
        {
            let p99_s = run.latency_ms.p99 / 1e3;
            let completed = run.orders > 0;
            targets.push(Target::once(
                "1,000 in flight, 1 s gather: p99 latency",
                format!("<= {TARGET_SLOW_P99_S} s"),
                format!("{p99_s:.3} s (p50 {:.3} s)", run.latency_ms.p50 / 1e3),
                completed && p99_s <= TARGET_SLOW_P99_S,
            ));
            // wrk counts only orders finished inside its window, and each
            // connection's last order, started about 1 s before the end, is
            // cut off; with every connection busy all the time, the rate is
            // in-flight orders over their mean latency (Little's law).
            let rate = f64::from(run.connections) / (run.latency_ms.mean / 1e3).max(1e-9);
            targets.push(Target::once(
                "1,000 in flight, 1 s gather: orders/s (in flight ÷ mean latency)",
                format!(">= {TARGET_SLOW_ORDERS_PER_S:.0}"),
                format!(
                    "{rate:.0} ({} ÷ {:.3} s; wrk's window count {:.0}/s)",
                    run.connections,
                    run.latency_ms.mean / 1e3,
                    run.orders_per_s
                ),
                completed && rate >= TARGET_SLOW_ORDERS_PER_S,
            ));
        }
        let errors: u64 = self
            .runs
            .iter()
            .chain(&self.second_pass)
            .chain(&self.one_worker_runs)
            .map(Run::error_count)
            .sum();
        targets.push(Target::once(
            "errors, all loads",
            "0".into(),
            errors.to_string(),
            errors == 0,
        ));
        self.targets = targets;
    }

    /// The run of `scenario` at `connections`, if it was measured.
    pub fn run(&self, scenario: Scenario, connections: u32) -> Option<&Run> {
        find_run(&self.runs, scenario, connections)
    }

    /// The most signed ÷ direct orders/s at 32 connections can be here if a
    /// signed order cost only one signature check more than a direct one:
    /// a direct order's CPU across the whole machine (the services, the
    /// fake API and wrk, all sharing the same cores) against that plus the
    /// in-process SignatureVersion 1 check (the signed loads' version).
    /// Parsing the envelope and wrk sending the larger body come on top, so
    /// the measured ratio can only be lower.
    pub fn signed_ratio_ceiling(&self) -> Option<f64> {
        let machine_us = self
            .run(Scenario::BundleCurl, crate::SIGNED_RATIO_CONNECTIONS)?
            .machine_cpu_us();
        (machine_us > 0.0).then(|| machine_us / (machine_us + self.sns_verify.v1_us))
    }

    /// `Sizing` for each service of each load at `SIZING_CONNECTIONS`
    /// connections, the 2-hop floor left out (it is not a service).
    pub fn sizing(&self) -> Vec<Sizing> {
        let mut rows = Vec::new();
        for run in self
            .runs
            .iter()
            .filter(|run| run.connections == SIZING_CONNECTIONS && run.scenario != Scenario::FloorCurl)
        {
            for (service, us) in run.services_cpu_us().filter(|(_, us)| *us > 0.0) {
                let Some(idle) = self.services.iter().find(|s| &s.name == service) else {
                    continue;
                };
                let one_worker_us = self
                    .one_worker_runs
                    .iter()
                    .find(|one| one.scenario == run.scenario)
                    .and_then(|one| one.cpu_us_per_order.get(service))
                    .copied()
                    .filter(|us| *us > 0.0);
                let in_flight = self.in_flight_kb(service);
                rows.push(Sizing {
                    service: service.clone(),
                    load: run.scenario.name().to_owned(),
                    cpu_us_per_order: us,
                    orders_per_s_per_core: 1e6 / us,
                    one_worker_cpu_us_per_order: one_worker_us,
                    one_worker_orders_per_s: one_worker_us.map(|us| 1e6 / us),
                    idle_mb: megabytes(idle.idle.rss_kib),
                    per_connection_kb: in_flight.map(|(kb, _)| kb),
                    per_connection_at: in_flight.map(|(_, at)| at),
                });
            }
        }
        rows
    }

    /// What a connection in flight costs `service`, KB: the monolith's from
    /// the 1,000 orders in flight when they were measured, any service's
    /// otherwise from its load with the most connections; and that many.
    fn in_flight_kb(&self, service: &str) -> Option<(f64, u32)> {
        let slow = (service == MONOLITH)
            .then(|| self.per_connection_kb(SLOW_MONOLITH, Scenario::BundleSlowGather, crate::IN_FLIGHT))
            .flatten()
            .map(|kb| (kb, crate::IN_FLIGHT));
        slow.or_else(|| {
            let busiest = self
                .runs
                .iter()
                .filter(|run| run.peak_rss_kib.contains_key(service))
                .max_by_key(|run| run.connections)?;
            self.per_connection_kb(service, busiest.scenario, busiest.connections)
                .map(|kb| (kb, busiest.connections))
        })
    }

    /// The monolith's direct orders/s as a share of the floor's (the first
    /// pass).
    pub fn floor_ratio(&self, connections: u32) -> Option<f64> {
        ratio_in(
            &self.runs,
            (Scenario::BundleCurl, connections),
            (Scenario::FloorCurl, connections),
        )
    }

    /// What each connection in flight costs `service`: its peak during the
    /// load at `connections` less its idle memory, KB (10^3 bytes) each.
    fn per_connection_kb(&self, service: &str, scenario: Scenario, connections: u32) -> Option<f64> {
        let idle = self.services.iter().find(|s| s.name == service)?.idle.rss_kib;
        let peak = *self.run(scenario, connections)?.peak_rss_kib.get(service)?;
        Some(peak.saturating_sub(idle) as f64 * 1.024 / f64::from(connections))
    }

    /// The tables, as Markdown.
    pub fn tables(&self) -> String {
        let mut text = String::new();
        let machine = &self.machine;
        text.push_str(&format!(
            "Machine: {} cores; load average {:.2} {:.2} {:.2} before, {:.2} {:.2} {:.2} after; \
             other processes used {:.2} cores just before. Load generator: {}. {} s per load.\n\n",
            machine.cores,
            machine.load_average_before[0],
            machine.load_average_before[1],
            machine.load_average_before[2],
            machine.load_average_after[0],
            machine.load_average_after[1],
            machine.load_average_after[2],
            machine.others_cores_before,
            machine.load_generator,
            self.settings.load_seconds,
        ));
        if let Some(commit) = &self.settings.source_commit {
            text.push_str(&format!("Source tree: {commit}. "));
        }
        if !self.settings.service_env.is_empty() {
            text.push_str(&format!(
                "Not the services as they ship: --service-env {}.",
                self.settings.service_env.join(" ")
            ));
        }
        if self.settings.source_commit.is_some() || !self.settings.service_env.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&Self::runs_table(&self.runs).to_string());
        text.push_str("\n\n");
        if let Some(note) = self.noise_note() {
            text.push_str(&note);
            text.push_str("\n\n");
        }
        if !self.second_pass.is_empty() {
            text.push_str(&format!(
                "Second pass: the loads the ratio targets compare, again after the others. A ratio whose \
                 passes are more than {:.0}% apart is not judged: the machine's pace changed between the loads.\n\n",
                STEADY_SHARE * 100.0
            ));
            text.push_str(&Self::runs_table(&self.second_pass).to_string());
            text.push_str("\n\n");
        }
        text.push_str(&self.services_table().to_string());
        text.push_str("\n\n");
        if !self.sizing.is_empty() {
            text.push_str(&format!(
                "Sizing a task (CPU at {SIZING_CONNECTIONS} connections; orders/s = what one core of this machine \
                 carries, fully busy; one worker = {WORKER_THREADS_VAR}=1, as a task of up to one vCPU runs):\n\n"
            ));
            text.push_str(&self.sizing_table().to_string());
            text.push_str("\n\n");
        }
        text.push_str(&self.sns_note());
        text.push_str("\n\n");
        text.push_str(&self.floor_note());
        text.push_str("\n\n");
        text.push_str(&self.targets_table().to_string());
        text.push('\n');
        text
    }

    /// Which loads other processes took a share of the machine in, if any:
    /// their orders/s are low by about that share, and the ratios and targets
    /// built on them say more about the machine than the code.
    fn noise_note(&self) -> Option<String> {
        let noisy: Vec<String> = [
            (&self.runs, ""),
            (&self.second_pass, ", second pass"),
            (&self.one_worker_runs, ", one worker"),
        ]
        .into_iter()
        .flat_map(|(runs, pass)| {
            runs.iter()
                .filter(|run| run.others_cores >= NOISY_CORES)
                .map(move |run| {
                    format!(
                        "{} at {}{pass} ({:.2})",
                        run.scenario.name(),
                        run.connections,
                        run.others_cores
                    )
                })
        })
        .collect();
        (!noisy.is_empty()).then(|| {
            format!(
                "NOISY: other processes used {NOISY_CORES} cores or more during {} load(s): {}. Those loads' \
                 figures are low by about that share of the {} cores; run again on a quiet machine before \
                 reading them, or the targets built on them.",
                noisy.len(),
                noisy.join("; "),
                self.machine.cores
            )
        })
    }

    /// One row per run of `runs`.
    fn runs_table(runs: &[Run]) -> Table {
        let mut table = markdown_table(&[
            "load",
            "route",
            "conns",
            "orders/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "CPU µs/order (services)",
            "log lines/order",
            "peak RSS MB",
            "others' CPU (cores)",
        ]);
        for run in runs {
            let cpu = run
                .services_cpu_us()
                .map(|(name, us)| format!("{name} {us:.0}"))
                .collect::<Vec<_>>()
                .join(" + ");
            let peak = run
                .peak_rss_kib
                .iter()
                .map(|(name, kib)| format!("{name} {:.1}", megabytes(*kib)))
                .collect::<Vec<_>>()
                .join(", ");
            table.add_row(vec![
                run.scenario.name().to_owned(),
                run.scenario.route().to_owned(),
                run.connections.to_string(),
                format!("{:.0}", run.orders_per_s),
                format!("{:.2}", run.latency_ms.p50),
                format!("{:.2}", run.latency_ms.p99),
                format!("{:.2}", run.latency_ms.max),
                run.error_count().to_string(),
                cpu,
                format!("{:.1}", run.log_lines_per_order),
                peak,
                format!("{:.2}", run.others_cores),
            ]);
        }
        right_align(&mut table, &[2, 3, 4, 5, 6, 7, 9, 11]);
        table
    }

    fn services_table(&self) -> Table {
        let mut table = markdown_table(&[
            "service",
            "idle RSS MB",
            "RSS after load MB",
            "of which anon + file MB",
            "peak RSS MB",
            "threads",
            "start-up ms (median, min–max)",
        ]);
        for service in &self.services {
            // Start-up was measured per binary, under the binary's name: a
            // service started otherwise (the slow monolith) has none.
            let startup = self
                .startup
                .get(&service.name)
                .map(|s| format!("{:.1} ({:.1}–{:.1})", s.median_ms, s.min_ms, s.max_ms))
                .unwrap_or_else(|| "—".into());
            table.add_row(vec![
                service.name.clone(),
                format!("{:.1}", megabytes(service.idle.rss_kib)),
                format!("{:.1}", megabytes(service.after_load.rss_kib)),
                format!(
                    "{:.1} + {:.1}",
                    megabytes(service.after_load.anon_kib),
                    megabytes(service.after_load.file_kib)
                ),
                format!("{:.1}", megabytes(service.peak_kib)),
                service.after_load.threads.to_string(),
                startup,
            ]);
        }
        right_align(&mut table, &[1, 2, 3, 4, 5]);
        table
    }

    fn sns_note(&self) -> String {
        let mut note = format!(
            "SNS verification, in-process, certificate cached: {:.0} µs per SignatureVersion 1 message, \
             {:.0} µs per SignatureVersion 2 message.",
            self.sns_verify.v1_us, self.sns_verify.v2_us
        );
        let connections = crate::SIGNED_RATIO_CONNECTIONS;
        if let (Some(direct), Some(sns)) = (
            self.run(Scenario::BundleCurl, connections),
            self.run(Scenario::BundleSns, connections),
        ) {
            note.push_str(&format!(
                " Under load at {connections} connections: {:.0} orders/s signed vs {:.0} direct ({:+.0}%), \
                 monolith CPU {:.0} vs {:.0} µs/order, p99 {:.2} vs {:.2} ms.",
                sns.orders_per_s,
                direct.orders_per_s,
                (sns.orders_per_s / direct.orders_per_s.max(1.0) - 1.0) * 100.0,
                sns.service_cpu_us(),
                direct.service_cpu_us(),
                sns.latency_ms.p99,
                direct.latency_ms.p99,
            ));
            if let Some(ceiling) = self.signed_ratio_ceiling {
                note.push_str(&format!(
                    " A direct order costs {:.0} µs of CPU across the machine (services, fake API, wrk); \
                     a {:.0} µs check on top allows signed ÷ direct {ceiling:.2} at most, with nothing else \
                     added (the envelope, the larger body): the goal is {TARGET_SIGNED_RATIO}.",
                    direct.machine_cpu_us(),
                    self.sns_verify.v1_us,
                ));
            }
        }
        note
    }

    /// The monolith against the floor, and what a connection in flight costs.
    fn floor_note(&self) -> String {
        let mut note = String::new();
        for connections in crate::FLOOR_CONNECTIONS {
            if let (Some(monolith), Some(floor)) = (
                self.run(Scenario::BundleCurl, connections),
                self.run(Scenario::FloorCurl, connections),
            ) {
                note.push_str(&format!(
                    "At {connections} connections the monolith did {:.0} orders/s, {:.2}× the 2-hop floor's {:.0} \
                     (CPU {:.0} vs {:.0} µs/order, p99 {:.2} vs {:.2} ms, {:.1} vs {:.1} log lines/order). ",
                    monolith.orders_per_s,
                    self.floor_ratio(connections).unwrap_or_default(),
                    floor.orders_per_s,
                    monolith.service_cpu_us(),
                    floor.service_cpu_us(),
                    monolith.latency_ms.p99,
                    floor.latency_ms.p99,
                    monolith.log_lines_per_order,
                    floor.log_lines_per_order,
                ));
            }
        }
        let costs: Vec<String> = [
            (MONOLITH, Scenario::BundleCurl, 128),
            (FLOOR, Scenario::FloorCurl, 128),
            (SLOW_MONOLITH, Scenario::BundleSlowGather, crate::IN_FLIGHT),
        ]
        .into_iter()
        .filter_map(|(service, scenario, connections)| {
            self.per_connection_kb(service, scenario, connections)
                .map(|kb| format!("{service} {kb:.1} KB at {connections}"))
        })
        .collect();
        if !costs.is_empty() {
            note.push_str(&format!(
                "Memory per connection in flight ((peak − idle) ÷ connections): {}.",
                costs.join(", ")
            ));
        }
        note.trim_end().to_owned()
    }

    fn sizing_table(&self) -> Table {
        let mut table = markdown_table(&[
            "service",
            "load",
            "CPU µs/order, a worker per core",
            "orders/s per core",
            "CPU µs/order, one worker",
            "orders/s per core, one worker",
            "at rest MB",
            "KB per connection in flight (at connections)",
        ]);
        for row in &self.sizing {
            table.add_row(vec![
                row.service.clone(),
                row.load.clone(),
                format!("{:.0}", row.cpu_us_per_order),
                format!("{:.0}", row.orders_per_s_per_core),
                figure_or_dash(row.one_worker_cpu_us_per_order, 0),
                figure_or_dash(row.one_worker_orders_per_s, 0),
                format!("{:.1}", row.idle_mb),
                match (row.per_connection_kb, row.per_connection_at) {
                    (Some(kb), Some(at)) => format!("{kb:.1} (at {at})"),
                    _ => "—".to_owned(),
                },
            ]);
        }
        right_align(&mut table, &[2, 3, 4, 5, 6, 7]);
        table
    }

    fn targets_table(&self) -> Table {
        let mut table = markdown_table(&["target", "goal", "measured", "met?"]);
        for target in &self.targets {
            table.add_row(vec![
                target.what.clone(),
                target.target.clone(),
                target.measured.clone(),
                match (target.steady, target.met) {
                    (false, _) => "UNSTEADY: run again",
                    (true, true) => "met",
                    (true, false) => "MISSED",
                }
                .to_owned(),
            ]);
        }
        table
    }
}

/// The run of `scenario` at `connections` in `runs`, if it was measured.
fn find_run(runs: &[Run], scenario: Scenario, connections: u32) -> Option<&Run> {
    runs.iter()
        .find(|run| run.scenario == scenario && run.connections == connections)
}

/// Orders/s of one run in `runs` as a share of another's.
fn ratio_in(runs: &[Run], (a, a_conns): (Scenario, u32), (b, b_conns): (Scenario, u32)) -> Option<f64> {
    let a = find_run(runs, a, a_conns)?;
    let b = find_run(runs, b, b_conns).filter(|b| b.orders_per_s > 0.0)?;
    Some(a.orders_per_s / b.orders_per_s)
}

/// `figure` with `decimals` places, or a dash where it was not measured.
fn figure_or_dash(figure: Option<f64>, decimals: usize) -> String {
    figure.map_or_else(|| "—".to_owned(), |x| format!("{x:.decimals$}"))
}

pub(crate) fn markdown_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(ASCII_MARKDOWN).set_header(header.to_vec());
    table
}

pub(crate) fn right_align(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn run(scenario: Scenario, connections: u32, orders_per_s: f64) -> Run {
        Run {
            scenario,
            connections,
            seconds: 1.0,
            orders: 100,
            orders_per_s,
            errors: Errors::default(),
            total_errors: 0,
            latency_ms: LatencyMs {
                p50: 500.0,
                p90: 900.0,
                p99: 1000.0,
                max: 1100.0,
                mean: 1000.0,
            },
            api_fulfilled: 100,
            api_refused: 0,
            cpu_us_per_order: BTreeMap::from([
                ("monolith".to_owned(), 40.0),
                (BENCH_PROCESS.to_owned(), 7.0),
                (WRK_PROCESS.to_owned(), 9.0),
            ]),
            others_cores: 0.0,
            log_lines_per_order: 1.0,
            peak_rss_kib: BTreeMap::new(),
            threads: BTreeMap::new(),
        }
    }

    pub(crate) fn report(runs: Vec<Run>) -> Report {
        Report {
            machine: Machine {
                cores: 2,
                cpu_model: None,
                kernel: None,
                load_average_before: [0.0; 3],
                load_average_after: [0.0; 3],
                others_cores_before: 0.0,
                load_generator: "wrk".into(),
            },
            settings: Settings {
                quick: true,
                load_seconds: 3,
                warmup_seconds: 1,
                startup_samples: 5,
                service_env: Vec::new(),
                source_commit: None,
                ended_unix_s: 0,
            },
            binaries: Vec::new(),
            runs,
            services: Vec::new(),
            startup: BTreeMap::new(),
            sns_verify: VerifyCost {
                v1_us: 1.0,
                v2_us: 1.0,
            },
            signed_ratio_ceiling: None,
            second_pass: Vec::new(),
            one_worker_runs: Vec::new(),
            sizing: Vec::new(),
            targets: Vec::new(),
        }
    }

    fn measured<'a>(report: &'a Report, what: &str) -> Option<&'a str> {
        report
            .targets
            .iter()
            .find(|target| target.what == what)
            .map(|target| target.measured.as_str())
    }

    #[test]
    fn targets_are_judged_on_the_runs_of_their_scenario() {
        let mut report = report(vec![
            run(Scenario::BundleSns, 32, 111.0),
            run(Scenario::BundleCurl, 1, 222.0),
            run(Scenario::BundleCurl, 32, 333.0),
            run(Scenario::BundleSlowGather, 1000, 444.0),
        ]);
        report.judge();
        assert_eq!(
            measured(&report, "bundle orders/s, direct, 32 connections"),
            Some("333")
        );
        assert_eq!(
            measured(&report, "1,000 in flight, 1 s gather: p99 latency"),
            Some("1.000 s (p50 0.500 s)")
        );
        assert_eq!(
            report.runs[0].service_cpu_us(),
            40.0,
            "bench and wrk are not services"
        );
    }

    #[test]
    fn without_a_slow_run_there_is_no_slow_target() {
        let mut report = report(vec![run(Scenario::BundleCurl, 32, 333.0)]);
        report.judge();
        assert_eq!(
            measured(&report, "1,000 in flight, 1 s gather: p99 latency"),
            None
        );
    }

    #[test]
    fn the_floor_ratio_is_judged_and_the_floor_has_no_memory_target() {
        let mut report = report(vec![
            run(Scenario::BundleCurl, 32, 950.0),
            run(Scenario::FloorCurl, 32, 1000.0),
            run(Scenario::BundleCurl, 128, 900.0),
            run(Scenario::FloorCurl, 128, 1000.0),
        ]);
        for name in ["monolith", FLOOR] {
            report.services.push(ServiceMemory {
                name: name.into(),
                idle: Memory::default(),
                after_load: Memory::default(),
                peak_kib: 1000,
            });
        }
        report.judge();
        let met = |what: &str| report.targets.iter().find(|t| t.what == what).map(|t| t.met);
        assert_eq!(
            met("monolith ÷ 2-hop floor, orders/s, 32 connections"),
            Some(true)
        );
        assert_eq!(
            met("monolith ÷ 2-hop floor, orders/s, 128 connections"),
            Some(false)
        );
        assert_eq!(met("peak memory, monolith"), Some(true));
        assert_eq!(met(&format!("peak memory, {FLOOR}")), None);
        assert!(report.tables().contains("0.95× the 2-hop floor's 1000"));
    }

    #[test]
    fn the_chart_has_a_bar_pair_per_run_and_the_earlier_run_in_grey() {
        let report = report(vec![
            run(Scenario::BundleCurl, 32, 333.0),
            run(Scenario::FloorCurl, 32, 400.0),
        ]);
        let previous: crate::compare::Previous = serde_json::from_value(serde_json::json!({
            "runs": [{"name": "bundle, curl body", "connections": 32, "orders_per_s": 300.0,
                      "latency_ms": {"p99": 2.0}}]
        }))
        .unwrap();
        let svg = crate::chart::svg(&report, Some(&previous));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("bundle, curl body, 32 conns"));
        assert_eq!(
            svg.matches("fill=\"#3b75af\"").count(),
            2,
            "one orders/s bar per run"
        );
        assert_eq!(
            svg.matches(&format!("fill=\"{}\"", crate::chart::EARLIER_FILL))
                .count(),
            2,
            "the earlier run: one load, two panels"
        );
        // The goals are marked on the load they are for, once per panel.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "{svg}");
        assert!(
            svg.contains("<title>goal: at least 10000 orders/s</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>goal: p99 at most 6 ms</title>"), "{svg}");
        // Each figure is written over the marks, outlined, so a mark that
        // falls on it does not cross it out.
        let last_mark = svg.rfind("stroke-dasharray").unwrap();
        let figure = svg.find(">333 (was 300)</text>").unwrap();
        assert!(figure > last_mark, "{svg}");
        assert_eq!(svg.matches(r#"paint-order="stroke">"#).count(), 4, "{svg}");
        let changes = crate::compare::table(&report, &previous).to_string();
        assert!(changes.contains("300 → 333 (+11%)"), "{changes}");
        assert!(changes.contains("new"), "{changes}");
    }

    #[test]
    fn the_signed_ratio_is_shown_against_what_the_check_alone_allows() {
        // A direct order: 40 µs monolith + 7 fake API + 9 wrk = 56 µs of the
        // machine; a 14 µs check makes 70, so at most 56 / 70 = 0.80.
        let mut signed = report(vec![
            run(Scenario::BundleCurl, 32, 1000.0),
            run(Scenario::BundleSns, 32, 700.0),
        ]);
        signed.sns_verify.v1_us = 14.0;
        signed.judge();
        let ceiling = signed.signed_ratio_ceiling.unwrap_or_default();
        assert!((ceiling - 0.8).abs() < 1e-9, "ceiling {ceiling}");
        assert_eq!(
            measured(&signed, "signed ÷ direct, orders/s, 32 connections"),
            Some("0.70; the check alone allows 0.80")
        );
        assert!(signed.tables().contains("costs 56 µs of CPU across the machine"));

        let mut without_direct = report(vec![run(Scenario::BundleSns, 32, 700.0)]);
        without_direct.judge();
        assert_eq!(without_direct.signed_ratio_ceiling, None);
    }

    #[test]
    fn a_ratio_just_under_its_goal_is_not_printed_as_the_goal() {
        assert_eq!(RatioDigits::for_judging(0.9479, 0.95).show(0.9479), "0.948");
        assert_eq!(RatioDigits::for_judging(0.94, 0.95), RatioDigits(2));
        assert_eq!(RatioDigits::for_judging(0.951, 0.95), RatioDigits(2));
        assert_eq!(RatioDigits::for_judging(0.9496, 0.95), RatioDigits(4));
        let target = Target::ratio("r".into(), 0.95, 0.9502, Some(0.9456), "");
        assert_eq!(
            (target.measured.as_str(), target.met),
            ("0.948 (passes 0.950, 0.946)", false)
        );
    }

    #[test]
    fn passes_just_over_the_steady_share_apart_are_not_printed_as_the_share() {
        // 0.896 against 1.00: 10.4 % apart, which is unsteady.
        let target = Target::ratio("r".into(), 0.8, 1.0, Some(0.896), "");
        assert_eq!(
            (target.measured.as_str(), target.steady),
            (
                "1.00, then 0.90: 10.4% apart, the machine's pace changed between the loads",
                false
            )
        );
        // Far over, whole percent as before.
        let target = Target::ratio("r".into(), 0.8, 1.0, Some(0.78), "");
        assert!(target.measured.contains(": 22% apart"), "{}", target.measured);
    }

    #[test]
    fn a_ratio_is_judged_on_both_passes_only_when_they_agree() {
        let mut report = report(vec![
            run(Scenario::BundleCurl, 32, 640.0),
            run(Scenario::FloorCurl, 32, 1000.0),
            run(Scenario::BundleCurl, 128, 1000.0),
            run(Scenario::FloorCurl, 128, 1000.0),
            run(Scenario::BundleSns, 32, 620.0),
        ]);
        report.second_pass = vec![
            // 0.82 against the first pass' 0.64: 22 % apart.
            run(Scenario::BundleCurl, 32, 820.0),
            run(Scenario::FloorCurl, 32, 1000.0),
            // 0.94 against 1.00: 6 % apart, judged on 0.97.
            run(Scenario::BundleCurl, 128, 940.0),
            run(Scenario::FloorCurl, 128, 1000.0),
            // Signed ÷ direct: 0.97 in the first pass, 0.76 in the second.
            run(Scenario::BundleSns, 32, 623.2),
        ];
        report.judge();
        let target = |what: &str| {
            report
                .targets
                .iter()
                .find(|t| t.what == what)
                .map(|t| (t.measured.as_str(), t.met, t.steady))
        };
        assert_eq!(
            target("monolith ÷ 2-hop floor, orders/s, 32 connections"),
            Some((
                "0.64, then 0.82: 22% apart, the machine's pace changed between the loads",
                false,
                false
            ))
        );
        assert_eq!(
            target("monolith ÷ 2-hop floor, orders/s, 128 connections"),
            Some(("0.97 (passes 1.00, 0.94)", true, true))
        );
        let signed = target("signed ÷ direct, orders/s, 32 connections");
        assert!(
            signed.is_some_and(
                |(measured, met, steady)| measured.starts_with("0.97, then 0.76: 22% apart")
                    && !met
                    && !steady
            ),
            "{signed:?}"
        );
        let tables = report.tables();
        assert!(tables.contains("Second pass"), "{tables}");
        assert_eq!(tables.matches("UNSTEADY: run again").count(), 2, "{tables}");
        for orders_per_s in [" 820 |", " 940 |", " 623 |"] {
            assert!(
                tables.contains(orders_per_s),
                "the second pass is printed: {tables}"
            );
        }
    }

    #[test]
    fn each_service_of_each_load_at_32_connections_is_sized() {
        let mut through_iridium = run(Scenario::IridiumCurl, 32, 500.0);
        through_iridium
            .cpu_us_per_order
            .insert("iridium".to_owned(), 50.0);
        through_iridium.peak_rss_kib.insert("iridium".to_owned(), 10_000);
        let mut slow = run(Scenario::BundleSlowGather, crate::IN_FLIGHT, 900.0);
        slow.cpu_us_per_order = BTreeMap::from([(SLOW_MONOLITH.to_owned(), 60.0)]);
        slow.peak_rss_kib.insert(SLOW_MONOLITH.to_owned(), 28_000);
        let mut sized = report(vec![
            run(Scenario::BundleCurl, 32, 1000.0),
            run(Scenario::FloorCurl, 32, 1500.0),
            run(Scenario::BundleCurl, 128, 1000.0),
            through_iridium,
            slow,
        ]);
        for (name, idle_kib) in [("monolith", 8_000), ("iridium", 6_000), (SLOW_MONOLITH, 8_000)] {
            sized.services.push(ServiceMemory {
                name: name.into(),
                idle: Memory {
                    rss_kib: idle_kib,
                    ..Memory::default()
                },
                after_load: Memory::default(),
                peak_kib: idle_kib,
            });
        }
        let mut one_worker = run(Scenario::BundleCurl, 32, 1200.0);
        one_worker.cpu_us_per_order = BTreeMap::from([("monolith".to_owned(), 32.0)]);
        sized.one_worker_runs.push(one_worker);
        sized.judge();
        let rows: Vec<(&str, &str, f64)> = sized
            .sizing
            .iter()
            .map(|row| (row.service.as_str(), row.load.as_str(), row.orders_per_s_per_core))
            .collect();
        assert_eq!(
            rows,
            [
                ("monolith", "bundle, curl body", 25_000.0),
                ("iridium", "iridium, curl body", 20_000.0),
                ("monolith", "iridium, curl body", 25_000.0),
            ],
            "the floor, 128 connections and the 1 s gather are not sized from"
        );
        // The monolith's memory per connection comes from the 1,000 in
        // flight: (28,000 − 8,000) KiB × 1.024 ÷ 1,000.
        assert_eq!(sized.sizing[0].per_connection_kb, Some(20.48));
        assert_eq!(sized.sizing[0].per_connection_at, Some(crate::IN_FLIGHT));
        // iridium's from its busiest load: (10,000 − 6,000) KiB × 1.024 ÷ 32.
        assert_eq!(sized.sizing[1].per_connection_kb, Some(128.0));
        assert_eq!(sized.sizing[1].per_connection_at, Some(32));
        assert_eq!(sized.sizing[1].idle_mb, megabytes(6_000));
        // One worker's figures go with the same service and load, where
        // measured: 10^6 ÷ 32 µs.
        assert_eq!(sized.sizing[0].one_worker_cpu_us_per_order, Some(32.0));
        assert_eq!(sized.sizing[0].one_worker_orders_per_s, Some(31_250.0));
        assert_eq!(sized.sizing[1].one_worker_orders_per_s, None);
        let tables = sized.tables();
        assert!(tables.contains("orders/s per core, one worker"));
        assert!(tables.contains(" 31250 |"), "{tables}");
        assert!(tables.contains(" 128.0 (at 32) |"), "{tables}");
        assert!(!tables.contains("NOISY"), "{tables}");
    }

    #[test]
    fn loads_other_processes_took_a_share_of_are_named() {
        let mut noisy = run(Scenario::BundleSns, 32, 900.0);
        noisy.others_cores = 0.34;
        let mut report = report(vec![run(Scenario::BundleCurl, 32, 1000.0), noisy]);
        report.judge();
        let tables = report.tables();
        assert!(
            tables.contains("NOISY: other processes used 0.1 cores or more during 1 load(s): bundle, signed SNS body at 32 (0.34)."),
            "{tables}"
        );
    }

    #[test]
    fn errors_of_the_one_worker_loads_count_too() {
        let mut report = report(vec![run(Scenario::BundleCurl, 32, 1000.0)]);
        let mut refused = run(Scenario::BundleSns, 32, 900.0);
        refused.api_refused = 3;
        report.one_worker_runs.push(refused);
        report.judge();
        assert_eq!(measured(&report, "errors, all loads"), Some("3"));
    }

    #[test]
    fn a_run_is_written_with_its_scenario_name_and_route() {
        let json = serde_json::to_value(run(Scenario::IridiumCurl, 32, 1.0)).unwrap();
        assert_eq!(json["name"], "iridium, curl body");
        assert_eq!(json["route"], "client → iridium → monolith → API");
        assert_eq!(json["connections"], 32);
    }
}
