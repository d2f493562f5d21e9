//! Benchmarks of the Interstella services: how fast, how small, how they scale.
//!
//! Starts the fulfillment side (a fake fulfillment API and SNS stand-in) in
//! this process and the services from their release binaries, all on
//! loopback, drives them with wrk, and prints the figures next to their
//! targets and writes them as JSON. Nothing here asserts a figure: CI does
//! not time anything.

pub mod cli;
pub mod error;
pub mod fulfillment;
pub mod procstat;
pub mod report;
pub mod services;
pub mod sns;
pub mod startup;
pub mod wrk;

pub use cli::Cli;
pub use error::BenchError;
pub use report::Report;

use crate::fulfillment::FulfillmentSide;
use crate::report::{Binary, Machine, Run, ServiceMemory, Settings};
use crate::services::{Binaries, Kind, Service, free_port, iridium_env, monolith_env};
use crate::sns::Delivery;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The connection counts each order load is run at.
const CONNECTIONS: [u32; 3] = [1, 32, 128];
/// Orders in flight for the slow-gather load.
const IN_FLIGHT: u32 = 1000;
/// The workshop's simulated work per resource.
const GATHER_DELAY_MS: u64 = 1000;
/// A request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// In-process SNS verifications timed per signature version.
const VERIFY_ITERATIONS: u32 = 2000;
/// Pause after a warm-up, for orders still in flight to finish.
const SETTLE: Duration = Duration::from_millis(300);
/// The slow-gather load lasts at least this long: each order takes 1 s.
const SLOW_LOAD_SECONDS: u64 = 5;
/// Phases, for the progress lines.
const PHASES: u32 = 7;

/// Runs the whole benchmark: prints progress to stderr, the tables to
/// stdout, writes the JSON to `cli.out`, and returns the figures.
pub async fn run(cli: Cli) -> Result<Report, BenchError> {
    phase(
        1,
        "checking wrk, the release binaries and how busy the machine is",
    );
    let load_generator = wrk::version().await?;
    let binaries = Binaries::locate(cli.bin_dir.as_deref())?;
    let load_average_before = procstat::load_average()?;
    let others_cores_before = others_cores_over(Duration::from_secs(1)).await?;
    let report_binaries = [Kind::Monolith, Kind::Iridium]
        .map(|kind| Binary {
            name: kind.binary().into(),
            path: binaries.path(kind).display().to_string(),
            built_seconds_ago: binaries.age(kind).map(|age| age.as_secs()),
        })
        .to_vec();
    for binary in &report_binaries {
        progress(&format!(
            "{} built {} s ago",
            binary.path,
            binary.built_seconds_ago.unwrap_or_default()
        ));
    }
    progress(&format!(
        "{load_generator}; load average {load_average_before:?}; other processes use {others_cores_before:.2} cores"
    ));

    phase(
        2,
        "starting the fake fulfillment API and SNS stand-in; signing an SNS delivery",
    );
    let side = FulfillmentSide::start().await?;
    let bench = Bench {
        load_seconds: cli.load_seconds(),
        warmup_seconds: cli.warmup_seconds(),
        side: side.clone(),
        scratch: tempfile::tempdir().map_err(BenchError::io("creating a scratch directory"))?,
    };
    let curl_bundle = Delivery::curl(r#"{"bundle":"1"}"#);
    let sns_bundle = Delivery::sns(&side.sns, r#"{"bundle": 1}"#)?;
    let curl_iridium = Delivery::curl(r#"{"iridium":"1"}"#);

    phase(
        3,
        "start-up: exec to first 200, configuration from the environment",
    );
    let mut startup = BTreeMap::new();
    for kind in [Kind::Monolith, Kind::Iridium] {
        let env = match kind {
            Kind::Monolith => monolith_env(&side, &cli.service_env, 0, 0),
            Kind::Iridium => iridium_env(&side, &cli.service_env, 0, free_port()?),
        };
        let measured = startup::measure(&binaries, kind, &env, cli.startup_samples()).await?;
        progress(&format!(
            "{}: median {:.1} ms (min {:.1}, max {:.1})",
            kind.binary(),
            measured.median_ms,
            measured.min_ms,
            measured.max_ms
        ));
        startup.insert(kind.binary().to_owned(), measured);
    }

    phase(4, "starting monolith and iridium");
    let monolith_env = monolith_env(&side, &cli.service_env, free_port()?, 0);
    let monolith = Service::start("monolith", &binaries, Kind::Monolith, &monolith_env).await?;
    let iridium_env = iridium_env(&side, &cli.service_env, free_port()?, monolith.port);
    let iridium = Service::start("iridium", &binaries, Kind::Iridium, &iridium_env).await?;
    let monolith_idle = settled_memory(&monolith).await?;
    let iridium_idle = settled_memory(&iridium).await?;

    phase(
        5,
        "order loads: bundle (curl and signed SNS bodies), resource through the glue hook",
    );
    let mut runs = Vec::new();
    for (name, delivery) in [
        ("bundle, curl body", &curl_bundle),
        ("bundle, signed SNS body", &sns_bundle),
    ] {
        for connections in CONNECTIONS {
            let scenario = Scenario {
                name,
                route: "client → monolith → API",
                url: monolith.url("/order/"),
                delivery,
                connections,
                warm_up: true,
                min_seconds: 1,
            };
            runs.push(bench.measure(&scenario, &[&monolith]).await?);
        }
    }
    for connections in CONNECTIONS {
        let scenario = Scenario {
            name: "iridium, curl body",
            route: "client → iridium → monolith → API",
            url: iridium.url("/iridium/"),
            delivery: &curl_iridium,
            connections,
            warm_up: true,
            min_seconds: 1,
        };
        runs.push(bench.measure(&scenario, &[&iridium, &monolith]).await?);
    }
    let mut services = vec![
        service_memory(&monolith, monolith_idle, &runs)?,
        service_memory(&iridium, iridium_idle, &runs)?,
    ];
    iridium.stop().await;
    monolith.stop().await;

    phase(
        6,
        &format!("{IN_FLIGHT} orders in flight, GATHER_DELAY_MS={GATHER_DELAY_MS}"),
    );
    let slow_env = services::monolith_env(&side, &cli.service_env, free_port()?, GATHER_DELAY_MS);
    let slow = Service::start("monolith (1 s gather)", &binaries, Kind::Monolith, &slow_env).await?;
    let slow_idle = settled_memory(&slow).await?;
    let scenario = Scenario {
        name: "bundle, curl body, 1 s gather",
        route: "client → monolith (1 s) → API",
        url: slow.url("/order/"),
        delivery: &curl_bundle,
        connections: IN_FLIGHT,
        warm_up: false,
        min_seconds: SLOW_LOAD_SECONDS,
    };
    let slow_run = bench.measure(&scenario, &[&slow]).await?;
    services.push(service_memory(&slow, slow_idle, std::slice::from_ref(&slow_run))?);
    runs.push(slow_run);
    slow.stop().await;

    phase(7, "SNS signature verification, in-process");
    let sns_verify = sns::verify_cost(&side.sns, VERIFY_ITERATIONS).await?;

    let mut report = Report {
        machine: Machine {
            cores: procstat::cores(),
            load_average_before,
            load_average_after: procstat::load_average()?,
            others_cores_before,
            load_generator,
        },
        settings: Settings {
            quick: cli.quick,
            load_seconds: bench.load_seconds,
            warmup_seconds: bench.warmup_seconds,
            startup_samples: cli.startup_samples(),
        },
        binaries: report_binaries,
        runs,
        services,
        startup,
        sns_verify,
        targets: Vec::new(),
    };
    report.judge();
    println!("{}", report.tables());
    write_json(&report, &cli.out)?;
    eprintln!("==> figures written to {}", cli.out.display());
    Ok(report)
}

/// One load to measure.
struct Scenario<'a> {
    name: &'static str,
    route: &'static str,
    url: String,
    delivery: &'a Delivery,
    connections: u32,
    warm_up: bool,
    /// The load lasts at least this many seconds.
    min_seconds: u64,
}

/// What every load shares.
struct Bench {
    load_seconds: u64,
    warmup_seconds: u64,
    side: FulfillmentSide,
    scratch: tempfile::TempDir,
}

impl Bench {
    /// Warms up (same load, not counted), then measures `scenario` while
    /// sampling `services` (the first is the one the load is sent to).
    async fn measure(&self, scenario: &Scenario<'_>, services: &[&Service]) -> Result<Run, BenchError> {
        progress(&format!(
            "{}, {} connections",
            scenario.name, scenario.connections
        ));
        let mut load = wrk::Load {
            url: scenario.url.clone(),
            delivery: scenario.delivery,
            connections: scenario.connections,
            duration: Duration::from_secs(self.warmup_seconds),
            timeout: REQUEST_TIMEOUT,
        };
        if scenario.warm_up {
            wrk::run(&load, self.scratch.path()).await?;
            // Orders cut off by the end of the warm-up finish (or fail) now,
            // not inside the measured window.
            tokio::time::sleep(SETTLE).await;
        }
        load.duration = Duration::from_secs(self.load_seconds.max(scenario.min_seconds));
        for service in services {
            procstat::reset_peak(service.pid);
        }
        let before = Sample::take(&self.side, services)?;
        let figures = wrk::run(&load, self.scratch.path()).await?;
        let after = Sample::take(&self.side, services)?;

        let orders = figures.requests.saturating_sub(figures.errors.status);
        let per_order = |seconds: f64| seconds * 1e6 / orders.max(1) as f64;
        let mut cpu_us_per_order = BTreeMap::new();
        let mut peak_rss_kib = BTreeMap::new();
        let mut threads = BTreeMap::new();
        let mut ours = after.own - before.own + after.children - before.children;
        let mut log_lines = 0;
        for (index, service) in services.iter().enumerate() {
            let cpu = after.services[index].0 - before.services[index].0;
            ours += cpu;
            log_lines += after.services[index].1 - before.services[index].1;
            cpu_us_per_order.insert(service.name.clone(), per_order(cpu));
            let memory = procstat::memory(service.pid)?;
            peak_rss_kib.insert(service.name.clone(), memory.peak_kib);
            threads.insert(service.name.clone(), memory.threads);
        }
        cpu_us_per_order.insert("bench".into(), per_order(after.own - before.own));
        cpu_us_per_order.insert("wrk".into(), per_order(after.children - before.children));
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let mut run = Run {
            name: scenario.name.to_owned(),
            route: scenario.route.to_owned(),
            connections: scenario.connections,
            seconds: figures.duration_us as f64 / 1e6,
            orders,
            orders_per_s: figures.ok_per_second(),
            errors: figures.errors,
            total_errors: 0,
            latency_ms: figures.latency_us.into(),
            api_fulfilled: after.fulfilled - before.fulfilled,
            api_refused: after.refused - before.refused,
            cpu_us_per_order,
            others_cores: ((after.machine - before.machine - ours) / wall).max(0.0),
            log_lines_per_order: log_lines as f64 / orders.max(1) as f64,
            peak_rss_kib,
            threads,
        };
        run.total_errors = run.error_count();
        progress(&format!(
            "  {:.0} orders/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, services {:.0} µs CPU/order, others used {:.2} cores",
            run.orders_per_s,
            run.latency_ms.p50,
            run.latency_ms.p99,
            run.error_count(),
            run.service_cpu_us(),
            run.others_cores
        ));
        Ok(run)
    }
}

/// Counters read at the start and end of a load.
struct Sample {
    at: Instant,
    /// CPU seconds and log lines, per service.
    services: Vec<(f64, u64)>,
    own: f64,
    children: f64,
    machine: f64,
    fulfilled: u64,
    refused: u64,
}

impl Sample {
    fn take(side: &FulfillmentSide, services: &[&Service]) -> Result<Self, BenchError> {
        let (own, children) = procstat::own_cpu_seconds()?;
        let services = services
            .iter()
            .map(|s| Ok((procstat::cpu_seconds(s.pid)?, s.output.lines())))
            .collect::<Result<_, BenchError>>()?;
        Ok(Self {
            at: Instant::now(),
            services,
            own,
            children,
            machine: procstat::machine_busy_seconds()?,
            fulfilled: side.fulfilled(),
            refused: side.refused(),
        })
    }
}

/// Cores' worth of CPU the machine spent outside this process over `window`.
async fn others_cores_over(window: Duration) -> Result<f64, BenchError> {
    let (own_before, children_before) = procstat::own_cpu_seconds()?;
    let machine_before = procstat::machine_busy_seconds()?;
    tokio::time::sleep(window).await;
    let (own_after, children_after) = procstat::own_cpu_seconds()?;
    let machine = procstat::machine_busy_seconds()? - machine_before;
    let ours = own_after - own_before + children_after - children_before;
    Ok(((machine - ours) / window.as_secs_f64()).max(0.0))
}

/// A service's memory once it has started and answered its health check.
async fn settled_memory(service: &Service) -> Result<procstat::Memory, BenchError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    procstat::memory(service.pid)
}

/// A service's memory figures after its loads.
fn service_memory(
    service: &Service,
    idle: procstat::Memory,
    runs: &[Run],
) -> Result<ServiceMemory, BenchError> {
    let peak_kib = runs
        .iter()
        .filter_map(|run| run.peak_rss_kib.get(&service.name).copied())
        .chain([idle.peak_kib])
        .max()
        .unwrap_or_default();
    Ok(ServiceMemory {
        name: service.name.clone(),
        idle,
        after_load: procstat::memory(service.pid)?,
        peak_kib,
    })
}

fn write_json(report: &Report, path: &Path) -> Result<(), BenchError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(BenchError::io(format!("creating {}", dir.display())))?;
    }
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").map_err(BenchError::io(format!("writing {}", path.display())))
}

fn phase(number: u32, what: &str) {
    eprintln!("==> [{number}/{PHASES}] {what}");
}

fn progress(what: &str) {
    eprintln!("    {what}");
}
