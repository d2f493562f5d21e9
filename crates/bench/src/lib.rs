//! Benchmarks of the Interstella services: how fast, how small, how they scale.
//!
//! Starts the fulfillment side (a fake fulfillment API and SNS stand-in) in
//! this process and the services from their release binaries, all on
//! loopback, drives them with wrk, and prints the figures next to their
//! targets and writes them as JSON. Nothing here asserts a figure: CI does
//! not time anything.

mod chart;
pub mod cli;
mod compare;
mod error;
pub mod floor;
mod fulfillment;
mod procstat;
mod report;
mod scenario;
mod services;
pub mod sns;
mod startup;
mod wrk;

pub use cli::Cli;
pub use error::BenchError;
pub use report::Report;

use crate::compare::Previous;
use crate::fulfillment::FulfillmentSide;
use crate::report::{Binary, Machine, Run, SIZING_CONNECTIONS, ServiceMemory, Settings, WORKER_THREADS_VAR};
use crate::scenario::Scenario;
use crate::services::{Binaries, Kind, Service, free_port};
use crate::sns::{Delivery, VerifyCost};
use crate::startup::Startup;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

/// The connection counts each order load is run at.
const CONNECTIONS: [u32; 3] = [1, 32, 128];
/// The connection counts the 2-hop floor is measured at, each right after
/// the monolith's direct load at the same count.
pub const FLOOR_CONNECTIONS: [u32; 2] = [32, 128];
/// The connection count signed orders are held to direct ones at.
pub const SIGNED_RATIO_CONNECTIONS: u32 = 32;
/// Orders in flight for the slow-gather load.
pub const IN_FLIGHT: u32 = 1000;
/// The workshop's simulated work per resource.
const GATHER_DELAY_MS: u64 = 1000;
/// A request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// In-process SNS verifications timed per signature version.
const VERIFY_ITERATIONS: u32 = 2000;
/// Pause after a warm-up, for orders still in flight to finish.
const SETTLE: Duration = Duration::from_millis(300);
/// Phases, for the progress lines.
const PHASES: u32 = 8;

/// Runs the whole benchmark: prints progress to stderr, the tables to
/// stdout, writes the JSON to `cli.out`, and returns the figures.
pub async fn run(cli: Cli) -> Result<Report, BenchError> {
    // Read first: a wrong path should not cost a whole run.
    let previous = cli.compare.as_deref().map(Previous::read).transpose()?;
    let (before, binaries) = check_machine(&cli).await?;
    let bench = Bench::start(&cli, binaries).await?;
    let startup = measure_startup(&bench).await?;
    let started = start_services(&bench).await?;
    let OrderLoads {
        mut runs,
        second_pass,
        mut services,
    } = order_loads(&bench, started).await?;
    let one_worker_runs = one_worker_loads(&bench).await?;
    let (slow_run, slow_memory) = slow_gather_load(&bench).await?;
    runs.push(slow_run);
    services.push(slow_memory);
    let sns_verify = sns_verification(&bench).await?;

    let mut report = Report {
        machine: before.machine()?,
        settings: bench.settings(cli.quick),
        binaries: before.binaries,
        runs,
        services,
        startup,
        sns_verify,
        signed_ratio_ceiling: None,
        second_pass,
        one_worker_runs,
        sizing: Vec::new(),
        targets: Vec::new(),
    };
    report.judge();
    print_and_write(&report, previous.as_ref(), &cli.out)?;
    Ok(report)
}

/// The machine, the tools and the binaries before anything runs.
struct Before {
    load_generator: String,
    load_average: [f32; 3],
    others_cores: f64,
    binaries: Vec<Binary>,
}

impl Before {
    /// The machine: as it was before, and its load average now.
    fn machine(&self) -> Result<Machine, BenchError> {
        Ok(Machine {
            cores: procstat::cores(),
            cpu_model: procstat::cpu_model(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|release| release.trim().to_owned()),
            load_average_before: self.load_average,
            load_average_after: procstat::load_average()?,
            others_cores_before: self.others_cores,
            load_generator: self.load_generator.clone(),
        })
    }
}

/// Phase 1: wrk is there, the binaries are, and how busy the machine is.
async fn check_machine(cli: &Cli) -> Result<(Before, Binaries), BenchError> {
    phase(
        1,
        "checking wrk, the release binaries and how busy the machine is",
    );
    let load_generator = wrk::version().await?;
    let located = Binaries::locate(cli.bin_dir.as_deref())?;
    let load_average = procstat::load_average()?;
    let others_cores = others_cores_over(Duration::from_secs(1)).await?;
    let binaries = Kind::ALL
        .map(|kind| Binary {
            name: kind.binary().into(),
            path: located.path(kind).display().to_string(),
            built_seconds_ago: located.age(kind).map(|age| age.as_secs()),
        })
        .to_vec();
    for binary in &binaries {
        progress(&format!(
            "{} built {} s ago",
            binary.path,
            binary.built_seconds_ago.unwrap_or_default()
        ));
    }
    progress(&format!(
        "{load_generator}; load average {load_average:?}; other processes use {others_cores:.2} cores"
    ));
    let before = Before {
        load_generator,
        load_average,
        others_cores,
        binaries,
    };
    Ok((before, located))
}

/// Phase 3: each binary's start-up, from exec to its first 200.
async fn measure_startup(bench: &Bench) -> Result<BTreeMap<String, Startup>, BenchError> {
    phase(
        3,
        "start-up: exec to first 200, configuration from the environment",
    );
    let mut startup = BTreeMap::new();
    for kind in Kind::ALL {
        let env = match kind {
            Kind::Monolith | Kind::Floor => bench.monolith_env(0, 0),
            Kind::Iridium => bench.iridium_env(0, free_port()?),
        };
        let measured = startup::measure(&bench.binaries, kind, &env, bench.startup_samples).await?;
        progress(&format!(
            "{}: median {:.1} ms (min {:.1}, max {:.1})",
            kind.binary(),
            measured.median_ms,
            measured.min_ms,
            measured.max_ms
        ));
        startup.insert(kind.binary().to_owned(), measured);
    }
    Ok(startup)
}

/// A service started for the loads, with its memory before any.
struct Started {
    service: Service,
    idle: procstat::Memory,
}

impl Started {
    async fn start(
        bench: &Bench,
        name: &str,
        kind: Kind,
        env: &HashMap<String, String>,
    ) -> Result<Self, BenchError> {
        let service = Service::start(name, &bench.binaries, kind, env).await?;
        let idle = settled_memory(&service).await?;
        Ok(Self { service, idle })
    }

    /// Its memory figures after `runs`.
    fn memory<'a>(&self, runs: impl IntoIterator<Item = &'a Run>) -> Result<ServiceMemory, BenchError> {
        service_memory(&self.service, self.idle, runs)
    }
}

/// The services the order loads are sent to.
struct Services {
    monolith: Started,
    iridium: Started,
    floor: Started,
}

/// Phase 4: the monolith, iridium sending to its glue hook, and the 2-hop floor.
async fn start_services(bench: &Bench) -> Result<Services, BenchError> {
    phase(4, "starting monolith, iridium and the 2-hop floor");
    let monolith_env = bench.monolith_env(free_port()?, 0);
    let monolith = Started::start(bench, Kind::Monolith.binary(), Kind::Monolith, &monolith_env).await?;
    let iridium_env = bench.iridium_env(free_port()?, monolith.service.port);
    let iridium = Started::start(bench, Kind::Iridium.binary(), Kind::Iridium, &iridium_env).await?;
    let floor_env = bench.monolith_env(free_port()?, 0);
    let floor = Started::start(bench, report::FLOOR, Kind::Floor, &floor_env).await?;
    Ok(Services {
        monolith,
        iridium,
        floor,
    })
}

/// What phase 5 measured.
struct OrderLoads {
    /// Every order load at every connection count, in the order run.
    runs: Vec<Run>,
    /// The loads the ratio targets compare, run again after all of them.
    second_pass: Vec<Run>,
    /// The services' memory over both.
    services: Vec<ServiceMemory>,
}

/// Phase 5: every order load at every connection count, then a second pass
/// of the loads the ratio targets compare; then the services are stopped
/// and their memory figures returned.
async fn order_loads(
    bench: &Bench,
    Services {
        monolith,
        iridium,
        floor,
    }: Services,
) -> Result<OrderLoads, BenchError> {
    phase(
        5,
        "order loads: bundle (curl and signed SNS bodies; the 2-hop floor), resource through the glue hook",
    );
    let mut runs = Vec::new();
    for scenario in [Scenario::BundleCurl, Scenario::BundleSns] {
        for connections in CONNECTIONS {
            let url = monolith.service.url(contracts::paths::ORDER);
            runs.push(
                bench
                    .measure(scenario, url, connections, &[&monolith.service])
                    .await?,
            );
            if scenario == Scenario::BundleCurl && FLOOR_CONNECTIONS.contains(&connections) {
                let url = floor.service.url(contracts::paths::ORDER);
                let sampled = [&floor.service];
                runs.push(
                    bench
                        .measure(Scenario::FloorCurl, url, connections, &sampled)
                        .await?,
                );
            }
        }
    }
    for connections in CONNECTIONS {
        let url = iridium.service.url("/iridium/");
        let sampled = [&iridium.service, &monolith.service];
        runs.push(
            bench
                .measure(Scenario::IridiumCurl, url, connections, &sampled)
                .await?,
        );
    }
    // A ratio holds two loads run seconds apart to the same machine; this
    // VM's pace moves by a third between days and sometimes within a run,
    // with nothing else running. The ratios measured again after the other
    // loads show whether it held (Report::judge).
    eprintln!("    second pass: the loads the ratio targets compare, again");
    let ratio_loads = FLOOR_CONNECTIONS
        .into_iter()
        .flat_map(|connections| {
            [
                (Scenario::BundleCurl, connections, &monolith.service),
                (Scenario::FloorCurl, connections, &floor.service),
            ]
        })
        .chain([(Scenario::BundleSns, SIGNED_RATIO_CONNECTIONS, &monolith.service)]);
    let mut second_pass = Vec::new();
    for (scenario, connections, service) in ratio_loads {
        let url = service.url(contracts::paths::ORDER);
        second_pass.push(bench.measure(scenario, url, connections, &[service]).await?);
    }
    let all = || runs.iter().chain(&second_pass);
    let services = vec![
        monolith.memory(all())?,
        iridium.memory(all())?,
        floor.memory(all())?,
    ];
    floor.service.stop().await;
    iridium.service.stop().await;
    monolith.service.stop().await;
    Ok(OrderLoads {
        runs,
        second_pass,
        services,
    })
}

/// Phase 6: the loads a task is sized from again, with the monolith and
/// iridium on one tokio worker each, as a task of up to one vCPU runs them
/// (tokio counts the task's CPU quota). Two workers sharing one process's
/// state cost more CPU per order than one (docs/bench.md, "Workers").
async fn one_worker_loads(bench: &Bench) -> Result<Vec<Run>, BenchError> {
    phase(
        6,
        &format!(
            "sizing for one vCPU: monolith and iridium with {WORKER_THREADS_VAR}=1, {SIZING_CONNECTIONS} connections"
        ),
    );
    let monolith = start_one_worker(bench, Kind::Monolith, bench.monolith_env(free_port()?, 0)).await?;
    let iridium_env = bench.iridium_env(free_port()?, monolith.port);
    let iridium = start_one_worker(bench, Kind::Iridium, iridium_env).await?;
    let mut runs = Vec::new();
    for scenario in [Scenario::BundleCurl, Scenario::BundleSns] {
        let url = monolith.url(contracts::paths::ORDER);
        runs.push(
            bench
                .measure(scenario, url, SIZING_CONNECTIONS, &[&monolith])
                .await?,
        );
    }
    let url = iridium.url("/iridium/");
    runs.push(
        bench
            .measure(
                Scenario::IridiumCurl,
                url,
                SIZING_CONNECTIONS,
                &[&iridium, &monolith],
            )
            .await?,
    );
    iridium.stop().await;
    monolith.stop().await;
    Ok(runs)
}

/// Starts `kind` with `env` and one tokio worker, named as its binary.
async fn start_one_worker(
    bench: &Bench,
    kind: Kind,
    mut env: HashMap<String, String>,
) -> Result<Service, BenchError> {
    env.insert(WORKER_THREADS_VAR.to_owned(), "1".to_owned());
    Service::start(kind.binary(), &bench.binaries, kind, &env).await
}

/// Phase 7: a monolith that takes 1 s per resource, 1,000 orders in flight.
async fn slow_gather_load(bench: &Bench) -> Result<(Run, ServiceMemory), BenchError> {
    phase(
        7,
        &format!("{IN_FLIGHT} orders in flight, GATHER_DELAY_MS={GATHER_DELAY_MS}"),
    );
    let slow_env = bench.monolith_env(free_port()?, GATHER_DELAY_MS);
    let slow = Started::start(bench, report::SLOW_MONOLITH, Kind::Monolith, &slow_env).await?;
    let url = slow.service.url(contracts::paths::ORDER);
    let run = bench
        .measure(Scenario::BundleSlowGather, url, IN_FLIGHT, &[&slow.service])
        .await?;
    let memory = slow.memory([&run])?;
    slow.service.stop().await;
    Ok((run, memory))
}

/// Phase 8: what verifying one SNS signature costs, in this process.
async fn sns_verification(bench: &Bench) -> Result<VerifyCost, BenchError> {
    phase(8, "SNS signature verification, in-process");
    sns::verify_cost(&bench.side.sns, VERIFY_ITERATIONS).await
}

/// What every phase after the first shares.
struct Bench {
    load_seconds: u64,
    warmup_seconds: u64,
    startup_samples: usize,
    service_env: Vec<(String, String)>,
    binaries: Binaries,
    side: FulfillmentSide,
    scratch: tempfile::TempDir,
    /// The workshop's curl body with a bundle order.
    curl_bundle: Delivery,
    /// A signed SNS Notification with a bundle order.
    sns_bundle: Delivery,
    /// The workshop's curl body with an iridium order.
    curl_iridium: Delivery,
}

impl Bench {
    /// Phase 2: the fake fulfillment API and SNS stand-in, and the bodies
    /// the loads send (the SNS one signed).
    async fn start(cli: &Cli, binaries: Binaries) -> Result<Self, BenchError> {
        phase(
            2,
            "starting the fake fulfillment API and SNS stand-in; signing an SNS delivery",
        );
        let side = FulfillmentSide::start().await?;
        Ok(Self {
            load_seconds: cli.load_seconds(),
            warmup_seconds: cli.warmup_seconds(),
            startup_samples: cli.startup_samples(),
            service_env: cli.service_env.clone(),
            binaries,
            scratch: tempfile::tempdir().map_err(BenchError::io("creating a scratch directory"))?,
            curl_bundle: Delivery::curl(r#"{"bundle":"1"}"#),
            sns_bundle: Delivery::sns(&side.sns, r#"{"bundle": 1}"#)?,
            curl_iridium: Delivery::curl(r#"{"iridium":"1"}"#),
            side,
        })
    }

    /// How the run was configured.
    fn settings(&self, quick: bool) -> Settings {
        Settings {
            quick,
            load_seconds: self.load_seconds,
            warmup_seconds: self.warmup_seconds,
            startup_samples: self.startup_samples,
            service_env: self
                .service_env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
            source_commit: source_commit(),
            ended_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        }
    }

    /// A monolith's environment: see [`services::monolith_env`].
    fn monolith_env(&self, port: u16, gather_delay_ms: u64) -> HashMap<String, String> {
        services::monolith_env(&self.side, &self.service_env, port, gather_delay_ms)
    }

    /// An iridium service's environment: see [`services::iridium_env`].
    fn iridium_env(&self, port: u16, monolith_port: u16) -> HashMap<String, String> {
        services::iridium_env(&self.side, &self.service_env, port, monolith_port)
    }

    /// The body `scenario` sends.
    fn delivery(&self, scenario: Scenario) -> &Delivery {
        match scenario {
            Scenario::BundleCurl | Scenario::BundleSlowGather | Scenario::FloorCurl => &self.curl_bundle,
            Scenario::BundleSns => &self.sns_bundle,
            Scenario::IridiumCurl => &self.curl_iridium,
        }
    }

    /// Warms up (same load, not counted) unless the scenario does not, then
    /// measures `scenario` sent to `url` over `connections` while sampling
    /// `services` (the first is the one the load is sent to).
    async fn measure(
        &self,
        scenario: Scenario,
        url: String,
        connections: u32,
        services: &[&Service],
    ) -> Result<Run, BenchError> {
        progress(&format!("{}, {connections} connections", scenario.name()));
        let mut load = wrk::Load {
            url,
            delivery: self.delivery(scenario),
            connections,
            duration: Duration::from_secs(self.warmup_seconds),
            timeout: REQUEST_TIMEOUT,
        };
        if scenario.warms_up() {
            wrk::run(&load, self.scratch.path()).await?;
            // Orders cut off by the end of the warm-up finish (or fail) now,
            // not inside the measured window.
            tokio::time::sleep(SETTLE).await;
        }
        load.duration = Duration::from_secs(self.load_seconds.max(scenario.min_seconds()));
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
        cpu_us_per_order.insert(report::BENCH_PROCESS.into(), per_order(after.own - before.own));
        cpu_us_per_order.insert(
            report::WRK_PROCESS.into(),
            per_order(after.children - before.children),
        );
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let mut run = Run {
            scenario,
            connections,
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
/// Not a wait for a condition: the reading is taken a fixed 300 ms later
/// so that every service's figure includes the same start-up settling (the
/// log writer's first batch, the runtime's idle workers).
async fn settled_memory(service: &Service) -> Result<procstat::Memory, BenchError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    procstat::memory(service.pid)
}

/// A service's memory figures after its loads.
fn service_memory<'a>(
    service: &Service,
    idle: procstat::Memory,
    runs: impl IntoIterator<Item = &'a Run>,
) -> Result<ServiceMemory, BenchError> {
    let peak_kib = runs
        .into_iter()
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

/// Prints the tables (and the changes since `previous`), writes the JSON
/// to `path` and the chart beside it.
fn print_and_write(report: &Report, previous: Option<&Previous>, path: &Path) -> Result<(), BenchError> {
    println!("{}", report.tables());
    if let Some(previous) = previous {
        println!(
            "Changes since the run compared with. {}\n\n{}\n",
            previous.note(report),
            compare::table(report, previous)
        );
    }
    write_json(report, path)?;
    let chart = path.with_extension("svg");
    std::fs::write(&chart, chart::svg(report, previous))
        .map_err(BenchError::io(format!("writing {}", chart.display())))?;
    eprintln!(
        "==> figures written to {} and {}",
        path.display(),
        chart.display()
    );
    Ok(())
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

/// The commit of the source tree the bench runs in, `-dirty` when it has
/// changes: what the figures were measured of (see `Settings::source_commit`).
fn source_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !commit.trim().is_empty()).then(|| commit.trim().to_owned())
}
