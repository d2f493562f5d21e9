//! The launcher binary as a user runs it from a checkout.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The launcher on `data_dir`, every port chosen by the system.
fn launcher(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interstella"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--hq-port", "0", "--monolith-port", "0", "--gather-delay-ms", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A launcher stopped when the test ends, also when an assertion fails
/// first: a failed test leaves no platform running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second `cargo run` in the same checkout would run a second HQ on the
/// first one's ledger: it exits with one line saying so instead.
#[test]
fn a_second_launcher_on_the_same_ledger_exits_with_one_line_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Running(launcher(dir.path()).spawn().unwrap());
    // Up once it says so on stdout.
    let (lines, said) = mpsc::channel();
    let stdout = BufReader::new(first.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) if line.starts_with("Interstella is running") => break,
            Ok(_) => {}
            Err(error) => panic!("the first launcher did not come up: {error}"),
        }
    }

    let mut second = Running(launcher(dir.path()).spawn().unwrap());
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < until,
            "the second launcher still runs after 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.0.stderr.take().unwrap(), &mut stderr).unwrap();
    drop(first);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("interstella: HQ: another HQ is using the ledger in"),
        "{stderr}"
    );
}
