//! Running the services as ECS would: their release binaries as separate
//! processes, configured only through the environment, their log output
//! drained (and counted) as the awslogs driver would.

use crate::error::BenchError;
use crate::fulfillment::FulfillmentSide;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// How much of a service's first output is kept, to show when it fails to start.
const KEPT_OUTPUT: usize = 4096;
/// How long a service may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// How long a service may take to answer its health check.
const HEALTHY_WITHIN: Duration = Duration::from_secs(10);

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The monolith.
    Monolith,
    /// The iridium microservice.
    Iridium,
    /// The 2-hop floor: this bench binary, serving (see [`crate::floor`]).
    Floor,
}

impl Kind {
    /// Every service binary measured, in the order they are reported (the
    /// floor is the bench itself).
    pub const ALL: [Self; 2] = [Self::Monolith, Self::Iridium];

    /// The binary's name.
    pub const fn binary(self) -> &'static str {
        match self {
            Self::Monolith => "monolith",
            Self::Iridium => "iridium",
            Self::Floor => "bench",
        }
    }

    /// The arguments it is started with.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Self::Monolith | Self::Iridium => &[],
            Self::Floor => &[crate::floor::SERVE_FLAG],
        }
    }

    /// The path the ALB health check uses.
    pub fn health_path(self) -> &'static str {
        match self {
            Self::Monolith | Self::Floor => "/",
            Self::Iridium => "/iridium/",
        }
    }
}

/// Where the release binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
    bench: PathBuf,
}

impl Binaries {
    /// `dir`, or the directory of the running `bench` binary (target/release
    /// when run through cargo); both binaries must be there.
    pub fn locate(dir: Option<&Path>) -> Result<Self, BenchError> {
        let bench = std::env::current_exe().map_err(BenchError::io("locating the bench binary"))?;
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => bench.parent().map(Path::to_owned).unwrap_or_default(),
        };
        let binaries = Self { dir, bench };
        for kind in Kind::ALL {
            let path = binaries.path(kind);
            if !path.is_file() {
                return Err(BenchError::MissingBinary(path));
            }
        }
        Ok(binaries)
    }

    /// The binary of `kind`.
    pub fn path(&self, kind: Kind) -> PathBuf {
        match kind {
            Kind::Floor => self.bench.clone(),
            Kind::Monolith | Kind::Iridium => self.dir.join(kind.binary()),
        }
    }

    /// How long ago `kind` was built, to spot a stale binary.
    pub fn age(&self, kind: Kind) -> Option<Duration> {
        std::fs::metadata(self.path(kind))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|built| built.elapsed().ok())
    }
}

/// How many ports below the kernel's ephemeral range [`free_port`] draws from.
const PORTS_BELOW_EPHEMERAL: u16 = 8192;

/// A loopback port free now, for a service to be told to bind.
///
/// It comes from just below the kernel's ephemeral range
/// (`ip_local_port_range`), from which every connection's own port is drawn:
/// a port found by binding port 0 and released is in that range, and wrk's or
/// the API pool's next connection could take it before the service binds it.
/// Each call in a run starts after the last port given (from a place set by
/// the process id), so two services of one run never get the same port.
pub fn free_port() -> Result<u16, BenchError> {
    static GIVEN: AtomicU16 = AtomicU16::new(0);
    let below = ephemeral_range_start().filter(|start| *start >= 1024 + PORTS_BELOW_EPHEMERAL);
    let Some(below) = below else {
        // No room below the range: a port the kernel picks, as a last resort.
        return TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(BenchError::io("finding a free port"));
    };
    let first = below - PORTS_BELOW_EPHEMERAL;
    // The process id's share spreads two benches on one machine apart.
    let start = u16::try_from(std::process::id() % u32::from(PORTS_BELOW_EPHEMERAL)).unwrap_or(0);
    for _ in 0..PORTS_BELOW_EPHEMERAL {
        let offset = start.wrapping_add(GIVEN.fetch_add(1, Ordering::Relaxed)) % PORTS_BELOW_EPHEMERAL;
        let port = first + offset;
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return Ok(port);
        }
    }
    Err(BenchError::io("finding a free port")(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("every port from {first} to {below} is taken"),
    )))
}

/// The first port of the kernel's ephemeral range, if it can be read.
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The environment of a monolith that gathers with `gather_delay_ms` and
/// calls the fake fulfillment API, plus `extra`; nothing else is inherited.
pub fn monolith_env(
    side: &FulfillmentSide,
    extra: &[(String, String)],
    port: u16,
    gather_delay_ms: u64,
) -> HashMap<String, String> {
    let mut env = common_env(side, extra, port);
    env.insert("INTERSTELLA_API_KEY".into(), side.api_key().into());
    env.insert("INTERSTELLA_API_ENDPOINT".into(), side.api_url().to_string());
    env.insert("GATHER_DELAY_MS".into(), gather_delay_ms.to_string());
    env
}

/// The environment of an iridium service that sends to the monolith on
/// `monolith_port`, given as the workshop does: a bare host in `monolithUrl`;
/// plus `extra`.
pub fn iridium_env(
    side: &FulfillmentSide,
    extra: &[(String, String)],
    port: u16,
    monolith_port: u16,
) -> HashMap<String, String> {
    let mut env = common_env(side, extra, port);
    env.insert("monolithUrl".into(), format!("127.0.0.1:{monolith_port}"));
    env
}

fn common_env(side: &FulfillmentSide, extra: &[(String, String)], port: u16) -> HashMap<String, String> {
    // testkit's: no instance metadata, AWS calls to a closed loopback port.
    let mut env = testkit::process::safe_aws_env();
    env.insert("PORT".into(), port.to_string());
    env.insert("GLUE_HOOK_SECRET".into(), testkit::spawn::TEST_HOOK_SECRET.into());
    env.insert("AWS_ENDPOINT_URL_SNS".into(), side.sns_base().to_string());
    env.extend(extra.iter().cloned());
    env
}

/// What a service wrote to stdout and stderr: its lines, counted, and its first few KiB.
#[derive(Debug, Default)]
pub struct Output {
    lines: AtomicU64,
    head: Mutex<Vec<u8>>,
}

impl Output {
    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// The first few KiB written, for error messages.
    pub fn head(&self) -> String {
        let head = self.head.lock().map(|h| h.clone()).unwrap_or_default();
        String::from_utf8_lossy(&head).into_owned()
    }

    fn record(&self, chunk: &[u8]) {
        let lines = chunk.iter().filter(|&&b| b == b'\n').count();
        self.lines.fetch_add(lines as u64, Ordering::Relaxed);
        if let Ok(mut head) = self.head.lock()
            && head.len() < KEPT_OUTPUT
        {
            let room = KEPT_OUTPUT - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
}

/// A service process running for the benchmark; killed when dropped.
#[derive(Debug)]
pub struct Service {
    /// Its name in the report.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it wrote.
    pub output: Arc<Output>,
    child: Child,
}

impl Service {
    /// Starts `kind` with exactly `env` (whose `PORT` it listens on), its
    /// output drained through pipes, and waits until it answers 200 on its
    /// health path.
    pub async fn start(
        name: &str,
        binaries: &Binaries,
        kind: Kind,
        env: &HashMap<String, String>,
    ) -> Result<Self, BenchError> {
        let port = env.get("PORT").and_then(|p| p.parse().ok()).unwrap_or_default();
        let mut child = Command::new(binaries.path(kind))
            .args(kind.args())
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::io(format!("starting {name}")))?;
        let output = Arc::new(Output::default());
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(drain(stdout, output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(drain(stderr, output.clone()));
        }
        let service = Self {
            name: name.to_owned(),
            pid: child.id().unwrap_or_default(),
            port,
            output,
            child,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while !is_healthy(&client, &service.url(kind.health_path())).await {
            if Instant::now() > deadline {
                return Err(BenchError::NotHealthy {
                    service: service.name.clone(),
                    path: kind.health_path(),
                    deadline: HEALTHY_WITHIN,
                    output: service.output.head(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(service)
    }

    /// The full URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops it as ECS does: SIGTERM, then SIGKILL if it has not exited
    /// within [`STOP_WITHIN`].
    pub async fn stop(mut self) {
        let terminated = testkit::process::sigterm(self.pid).is_ok();
        if !terminated
            || tokio::time::timeout(STOP_WITHIN, self.child.wait())
                .await
                .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// True when `url` answers 200.
pub async fn is_healthy(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
}

async fn drain(mut pipe: impl AsyncRead + Unpin, output: Arc<Output>) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        output.record(&buffer[..read]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn ports_given_are_below_the_ephemeral_range_and_never_the_same_twice() {
        let Some(below) = ephemeral_range_start() else {
            return; // no /proc: nothing to check against
        };
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port given twice: {ports:?}");
        if below >= 1024 + PORTS_BELOW_EPHEMERAL {
            assert!(
                ports
                    .iter()
                    .all(|port| (below - PORTS_BELOW_EPHEMERAL..below).contains(port)),
                "a port outside the {PORTS_BELOW_EPHEMERAL} below {below}: {ports:?}"
            );
        }
    }
}
