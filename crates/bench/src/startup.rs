//! Start-up time: from exec to the first 200 on the health path, with the
//! configuration from the environment (no SSM), median of several runs.

use crate::error::BenchError;
use crate::services::{Binaries, Kind, free_port, is_healthy};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// How often the port is tried while the service starts.
const POLL: Duration = Duration::from_micros(100);
/// Longer than this is a failed start.
const GIVE_UP: Duration = Duration::from_secs(10);

/// Start-up times of one service, milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Startup {
    /// The median.
    pub median_ms: f64,
    /// The fastest.
    pub min_ms: f64,
    /// The slowest.
    pub max_ms: f64,
    /// Every sample, in order.
    pub samples_ms: Vec<f64>,
}

/// Measures `kind`'s start-up `samples` times; `env` must not set `PORT`
/// (each run gets a fresh one).
pub async fn measure(
    binaries: &Binaries,
    kind: Kind,
    env: &HashMap<String, String>,
    samples: usize,
) -> Result<Startup, BenchError> {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}{}", kind.health_path());
        let started = Instant::now();
        let mut child = Command::new(binaries.path(kind))
            .env_clear()
            .envs(env)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::io(format!("starting {}", kind.binary())))?;
        // Tokio's timer ticks in milliseconds, too coarse here: the port is
        // polled from a blocking thread, then the first request is timed.
        let accepting = tokio::task::spawn_blocking(move || wait_accepting(port)).await;
        let mut healthy = matches!(accepting, Ok(true));
        while healthy && !is_healthy(&client, &url).await {
            healthy = started.elapsed() < GIVE_UP;
        }
        let elapsed = started.elapsed();
        let _ = child.kill().await;
        if !healthy {
            return Err(BenchError::NotHealthy {
                service: kind.binary().to_owned(),
                path: kind.health_path(),
                deadline: GIVE_UP,
                output: "(start-up runs discard output; run the binary by hand to see it)".into(),
            });
        }
        times.push(elapsed.as_secs_f64() * 1e3);
    }
    Ok(summarise(times))
}

fn wait_accepting(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while started.elapsed() < GIVE_UP {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    false
}

fn summarise(samples_ms: Vec<f64>) -> Startup {
    let mut sorted = samples_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median_ms = if sorted.is_empty() {
        0.0
    } else if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    };
    Startup {
        median_ms,
        min_ms: sorted.first().copied().unwrap_or_default(),
        max_ms: sorted.last().copied().unwrap_or_default(),
        samples_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(summarise(vec![3.0, 1.0, 2.0]).median_ms, 2.0);
        assert_eq!(summarise(vec![4.0, 1.0, 2.0, 3.0]).median_ms, 2.5);
        let one = summarise(vec![5.0]);
        assert_eq!((one.min_ms, one.max_ms), (5.0, 5.0));
    }
}
