//! Driving a service with wrk, an established HTTP load generator (C,
//! epoll, little CPU per request: on two shared cores the load generator's
//! own cost matters), and reading its figures back as JSON.

use crate::error::BenchError;
use crate::sns::Delivery;
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// Marks the line wrk's `done` hook prints its figures on.
const MARKER: &str = "BENCH_JSON ";

/// Reports wrk's figures as one JSON line (latencies in microseconds).
const DONE_HOOK: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d},"
      .. "\"latency_us\":{\"p50\":%d,\"p90\":%d,\"p99\":%d,\"max\":%d,\"mean\":%.1f}}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"#;

/// One load: who, what, how hard, how long.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// The URL POSTed to.
    pub url: String,
    /// The request sent, over and over.
    pub delivery: &'a Delivery,
    /// Open connections, each with one request in flight.
    pub connections: u32,
    /// How long.
    pub duration: Duration,
    /// A request taking longer counts as a timeout error.
    pub timeout: Duration,
}

/// wrk's errors.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Errors {
    /// Connections that could not be made.
    pub connect: u64,
    /// Failed reads (e.g. connection closed by the server).
    pub read: u64,
    /// Failed writes.
    pub write: u64,
    /// Responses with a status of 400 or more.
    pub status: u64,
    /// Requests over the timeout.
    pub timeout: u64,
}

impl Errors {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

/// Latency figures, microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Responses received (any status).
    pub requests: u64,
    /// How long the load lasted, microseconds.
    pub duration_us: u64,
    /// Errors by kind.
    pub errors: Errors,
    /// Latency of the responses.
    pub latency_us: Latency,
}

impl Figures {
    /// Responses with a status under 400, per second.
    pub fn ok_per_second(&self) -> f64 {
        let ok = self.requests.saturating_sub(self.errors.status) as f64;
        ok / (self.duration_us.max(1) as f64 / 1e6)
    }
}

/// wrk's version line, or why it cannot run.
pub async fn version() -> Result<String, BenchError> {
    // `wrk -v` prints its banner and exits 1.
    let output = Command::new("wrk")
        .arg("-v")
        .output()
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => BenchError::NoWrk(e),
            _ => BenchError::io("running wrk -v")(e),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().next().unwrap_or("wrk").trim().to_owned())
}

/// Runs `load`, writing its script into `scratch`.
pub async fn run(load: &Load<'_>, scratch: &Path) -> Result<Figures, BenchError> {
    let script = scratch.join(format!("load-{}.lua", load.connections));
    tokio::fs::write(&script, lua_script(load.delivery))
        .await
        .map_err(BenchError::io("writing the wrk script"))?;
    let threads = load.connections.clamp(1, 2);
    let output = Command::new("wrk")
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={}", load.connections))
        .arg(format!("--duration={}s", load.duration.as_secs().max(1)))
        .arg(format!("--timeout={}s", load.timeout.as_secs().max(1)))
        .arg("--script")
        .arg(&script)
        .arg(&load.url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(BenchError::io("running wrk"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(MARKER))
        .ok_or_else(|| {
            BenchError::Wrk(format!(
                "{}; output: {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        })?;
    Ok(serde_json::from_str(line)?)
}

/// The Lua script: method, body and headers of every request, and the hook
/// that prints the figures.
fn lua_script(delivery: &Delivery) -> String {
    let mut script = String::from("wrk.method = \"POST\"\n");
    script.push_str(&format!("wrk.body = {}\n", lua_string(&delivery.body)));
    for (name, value) in &delivery.headers {
        // The spaces matter: `[[[` would open a long string.
        script.push_str(&format!(
            "wrk.headers[ {} ] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    script.push_str(DONE_HOOK);
    script
}

/// A Lua long string holding `text` verbatim: `[==[...]==]` with enough `=`
/// that the text cannot close it.
fn lua_string(text: &str) -> String {
    let mut level = 0;
    while text.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let equals = "=".repeat(level);
    // Lua drops a newline right after the opening bracket; keep a leading one.
    let newline = if text.starts_with('\n') { "\n" } else { "" };
    format!("[{equals}[{newline}{text}]{equals}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_cannot_be_closed_by_their_content() {
        assert_eq!(lua_string("{\"a\":1}"), "[[{\"a\":1}]]");
        assert_eq!(lua_string("x]]y"), "[=[x]]y]=]");
        assert_eq!(lua_string("x]]y]=]"), "[==[x]]y]=]]==]");
    }

    #[test]
    fn the_script_sets_body_headers_and_the_hook() {
        let script = lua_script(&Delivery::curl("{\"bundle\":\"1\"}"));
        assert!(script.contains("wrk.body = [[{\"Message\":{\"bundle\":\"1\"}}]]"));
        assert!(script.contains("wrk.headers[ [[Content-Type]] ] = [[application/json]]"));
        assert!(script.contains("done = function"));
    }

    #[test]
    fn figures_parse_from_the_hook_line() {
        let line = r#"{"requests":10,"duration_us":2000000,"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":0},"latency_us":{"p50":100,"p90":200,"p99":300,"max":400,"mean":150.5}}"#;
        let figures: Figures = serde_json::from_str(line).unwrap_or_default();
        assert_eq!(figures.ok_per_second(), 4.0);
        assert_eq!(figures.errors.total(), 2);
    }
}
