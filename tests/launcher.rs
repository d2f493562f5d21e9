//! The launcher binary as a user runs it from a checkout.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

use std::io::{BufRead, BufReader, Read};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The launcher on `data_dir`, every port chosen by the system.
fn launcher(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interstella"));
    without_the_settings_tests_run_with(&mut command)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--hq-port", "0", "--monolith-port", "0", "--gather-delay-ms", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `command` without the settings a test may run with that the launcher
/// reads or speaks of: it keeps its own defaults (warnings only, a new
/// admin credential) and says nothing of the services' settings.
fn without_the_settings_tests_run_with(command: &mut Command) -> &mut Command {
    for setting in [
        "RUST_LOG",
        "LOG_FORMAT",
        "METRICS_PORT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "HQ_ADMIN_TOKEN",
    ] {
        command.env_remove(setting);
    }
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

/// A launcher started by `command`, once it has said it is up (within
/// 60 s), with its stdout read past that line.
fn up(command: Command) -> (Running, BufReader<ChildStdout>) {
    until_said(command, "Interstella is running")
}

/// A launcher started by `command`, once it has written a line starting
/// with `said` (within 60 s), with its stdout read past that line.
fn until_said(mut command: Command, said: &'static str) -> (Running, BufReader<ChildStdout>) {
    let mut running = Running(command.spawn().unwrap());
    let mut stdout = BufReader::new(running.0.stdout.take().unwrap());
    let (said_up, up) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|read| read > 0) {
            if line.starts_with(said) {
                let _ = said_up.send(stdout);
                return;
            }
            line.clear();
        }
    });
    match up.recv_timeout(Duration::from_secs(60)) {
        Ok(stdout) => (running, stdout),
        Err(error) => panic!("the launcher did not say {said:?}: {error}"),
    }
}

/// Waits (`within` at most) for `running` to exit; its exit status.
fn exited(running: &mut Running, within: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < until, "the launcher still runs after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`exited`], with what it wrote on stderr.
fn exit_of(running: &mut Running, within: Duration) -> (std::process::ExitStatus, String) {
    let status = exited(running, within);
    let mut stderr = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// A second `cargo run` in the same checkout would run a second HQ on the
/// first one's ledger: it exits with one line saying so instead.
#[test]
fn a_second_launcher_on_the_same_ledger_exits_with_one_line_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _stdout) = up(launcher(dir.path()));

    let mut second = Running(launcher(dir.path()).spawn().unwrap());
    let (status, stderr) = exit_of(&mut second, Duration::from_secs(30));
    drop(first);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("interstella: HQ: another HQ is using the ledger in"),
        "{stderr}"
    );
}

/// A data directory that cannot be one (a file stands there) is said in
/// one line naming the flag that moves it.
#[test]
fn a_data_directory_that_is_a_file_is_said_with_the_flag_that_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a file");
    std::fs::write(&file, "").unwrap();
    let mut running = Running(launcher(&file).spawn().unwrap());
    let (status, stderr) = exit_of(&mut running, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot make the data directory") && stderr.contains("give --data-dir"),
        "{stderr}"
    );
}

/// An admin credential set blank (a secret stored empty) is refused in one
/// line, as `hq` refuses it, rather than the data directory's used unnoticed.
#[test]
fn a_blank_admin_credential_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = launcher(dir.path());
    command.env("HQ_ADMIN_TOKEN", " ");
    let mut running = Running(command.spawn().unwrap());
    let (status, stderr) = exit_of(&mut running, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HQ_ADMIN_TOKEN is set blank"), "{stderr}");
}

/// A port already taken: the one line names the part and the flag that
/// moves it (it said only "Address already in use"), and nothing is made
/// in the data directory (HQ had made its ledger and an API key).
#[test]
fn a_port_already_taken_is_named_with_the_flag_that_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut command = launcher(dir.path());
    command.args(["--microservice-port", &format!("iridium={port}")]);
    let mut running = Running(command.spawn().unwrap());
    let (status, stderr) = exit_of(&mut running, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = stderr.trim();
    assert!(
        line.starts_with(&format!(
            "interstella: cannot listen on 127.0.0.1:{port} for iridium: "
        )),
        "{stderr}"
    );
    assert!(
        line.ends_with("give it another port with --microservice-port iridium=<port> (0: any free port)"),
        "{stderr}"
    );
    // Refused before HQ made anything: no ledger, signing key or API key.
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(made.is_empty(), "{made:?}");
}

/// `LOG_FORMAT=json` and `METRICS_PORT` are the services' settings, which
/// the launcher does not take: it says so rather than ignore them.
#[test]
fn log_format_metrics_port_and_otlp_endpoint_are_said_to_be_for_the_services_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = launcher(dir.path());
    command.env("LOG_FORMAT", "json").env("METRICS_PORT", "9100").env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://user:s3cret@collector.example:4318/?token=t0ken",
    );
    let (mut running, _stdout) = up(command);
    running.0.kill().unwrap();
    let (_, stderr) = exit_of(&mut running, Duration::from_secs(10));
    for said in [
        r#"LOG_FORMAT="json" is for a service run on its own"#,
        r#"METRICS_PORT="9100" is for a service run on its own (docker, ECS); the launcher serves no metrics"#,
        "OTEL_EXPORTER_OTLP_ENDPOINT is for a service run on its own (docker, ECS); the launcher exports no spans",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    // An endpoint's URL may hold a password or a token: never shown.
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("t0ken"),
        "{stderr}"
    );
}

/// The status `GET path` gets from `base` (`http://127.0.0.1:port`) with
/// `token` as the bearer credential.
fn status_of(base: &str, path: &str, token: &str) -> u16 {
    status_of_request(base, "GET", path, token, "")
}

/// The status `method path` with `body` gets from `base`
/// (`http://127.0.0.1:port`) with `token` as the bearer credential:
/// HTTP/1.1 over a plain socket, as the launcher's tests use no async
/// runtime.
fn status_of_request(base: &str, method: &str, path: &str, token: &str, body: &str) -> u16 {
    use std::io::Write;
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"))
}

/// HQ's address, from the banner `stdout` goes on with.
fn hq_of(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut banner = String::new();
    while !banner.contains("Ctrl-C stops everything") {
        assert_ne!(stdout.read_line(&mut banner).unwrap(), 0, "{banner}");
    }
    banner
        .lines()
        .find_map(|line| line.strip_prefix("HQ (AWS side of the workshop)"))
        .map(|hq| hq.trim().to_owned())
        .unwrap_or_else(|| panic!("no HQ line in {banner}"))
}

/// A run that ends with an order its drain could not deliver exits 1, and
/// so does a second stop that cuts the drain short: a script or a CI job
/// that runs the launcher sees an unclean run by its exit code.
#[test]
fn an_unclean_run_or_a_cut_drain_exits_1() {
    let token = "given-admin-token-0123456789";
    for cut_short in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = launcher(dir.path());
        // Cut short, the drain would last long enough for the second stop.
        let drain_secs = if cut_short { "60" } else { "1" };
        command
            .env("HQ_ADMIN_TOKEN", token)
            .args(["--drain-secs", drain_secs, "--rate", "orders=0"]);
        let (mut running, mut stdout) = up(command);
        let hq = hq_of(&mut stdout);
        // Every fulfillment fails, so the order's delivery is still being
        // retried when the drain ends.
        let faults = r#"{"fail_fulfillments": 1000}"#;
        assert_eq!(status_of_request(&hq, "POST", "/faults", token, faults), 200);
        let order = r#"{"bundle": 1}"#;
        assert_eq!(
            status_of_request(&hq, "POST", "/topics/orders/publish", token, order),
            201
        );
        testkit::process::sigterm(running.0.id()).unwrap();
        let mut said = String::new();
        if cut_short {
            // Once the first is heard: two at once are one signal.
            while !said.contains("Stopping: no new orders") {
                assert_ne!(stdout.read_line(&mut said).unwrap(), 0, "{said}");
            }
            testkit::process::sigterm(running.0.id()).unwrap();
        }
        let status = exited(&mut running, Duration::from_secs(30));
        stdout.read_to_string(&mut said).unwrap();
        assert_eq!(status.code(), Some(1), "cut short: {cut_short}; {said}");
        let why = if cut_short {
            "Stopped without draining or reconciling"
        } else {
            "Reconciliation (orders published this run"
        };
        assert!(said.contains(why), "{said}");
    }
}

/// `HQ_ADMIN_TOKEN=… cargo run --release`: HQ takes that credential, as
/// `hq` does, and keeps none of its own in the data directory; the banner
/// says where the credential came from, without writing it out again.
#[test]
fn an_admin_token_in_the_environment_is_hqs_credential() {
    let dir = tempfile::tempdir().unwrap();
    let given = "given-admin-token-0123456789";
    let mut command = launcher(dir.path());
    command.env("HQ_ADMIN_TOKEN", given);
    let (_running, mut stdout) = up(command);
    let mut banner = String::new();
    while !banner.contains("Ctrl-C stops everything") {
        assert_ne!(stdout.read_line(&mut banner).unwrap(), 0, "{banner}");
    }
    let hq = banner
        .lines()
        .find_map(|line| line.strip_prefix("HQ (AWS side of the workshop)"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no HQ line in {banner}"));
    assert!(
        banner.contains(
            "# HQ's admin credential is the one you gave (not shown); the curls read it from $HQ_ADMIN_TOKEN"
        ),
        "{banner}"
    );
    assert!(
        !banner.contains(given),
        "the credential given is written out again:\n{banner}"
    );
    assert_eq!(status_of(hq, "/totals", given), 200);
    assert_eq!(status_of(hq, "/totals", "another-token-0123456789"), 401);
    assert!(!dir.path().join("admin-token").exists());
}

/// `cargo run --release | tee run.log`: the credential HQ made is not
/// written into the log; the banner reads it from its file instead.
#[test]
fn into_a_pipe_the_banner_names_the_credentials_file_not_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    // A space in it, as in a home directory's "My Projects".
    let data_dir = dir.path().join("my data");
    let (_running, mut stdout) = up(launcher(&data_dir));
    let mut banner = String::new();
    while !banner.contains("Ctrl-C stops everything") {
        assert_ne!(stdout.read_line(&mut banner).unwrap(), 0, "{banner}");
    }
    let made = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
    assert!(
        !banner.contains(made.trim()),
        "the credential is written into the pipe:\n{banner}"
    );
    // The banner's line, pasted into a shell in another directory (a second
    // terminal), gives that shell the credential.
    let export = banner
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("export HQ_ADMIN_TOKEN=$(cat "))
        .and_then(|line| line.split("  #").next())
        .unwrap_or_else(|| panic!("no export line in:\n{banner}"));
    let shell = Command::new("sh")
        .arg("-c")
        .arg(format!("{export} && printf %s \"$HQ_ADMIN_TOKEN\""))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        made.trim(),
        "{export}: {}",
        String::from_utf8_lossy(&shell.stderr)
    );
}

/// `cargo run --release | tee run.log`, then Ctrl-C: tee stops with the
/// launcher, so the launcher's stdout has no reader when it says it is
/// stopping. It drains and reconciles all the same, and says so on stderr;
/// `println!` panicked there, and the release build aborted with orders in
/// flight and no reconciliation.
#[test]
fn a_stop_after_stdouts_reader_has_gone_still_drains_and_reconciles_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let (mut running, stdout) = up(launcher(dir.path()));
    drop(stdout);
    testkit::process::sigterm(running.0.id()).unwrap();
    let (status, stderr) = exit_of(&mut running, Duration::from_secs(90));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("\nStopping: no new orders"), "{stderr}");
    assert!(
        stderr.contains("Reconciliation (orders published this run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Nothing lost, nothing counted twice."),
        "{stderr}"
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// `cargo run --release 2>&1 | tee run.log` with `RUST_LOG=info`, and
/// Ctrl-C: neither stdout nor stderr has a reader, and every order writes a
/// log line. The launcher drains and reconciles all the same (exit 0: clean);
/// tracing's eprintln! of a line stderr could not take aborted it.
#[test]
fn a_stop_with_neither_stdout_nor_stderr_read_still_drains_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = launcher(dir.path());
    command.env("RUST_LOG", "info");
    let (mut running, stdout) = up(command);
    drop(stdout);
    drop(running.0.stderr.take());
    testkit::process::sigterm(running.0.id()).unwrap();
    let status = exited(&mut running, Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Ctrl-C while it starts (which may take up to the subscriptions'
/// confirmation deadline): nothing is published yet, so it stops there at
/// once and says so, instead of starting the feed first.
#[test]
fn a_stop_while_starting_ends_there_with_nothing_published() {
    let dir = tempfile::tempdir().unwrap();
    let (mut running, mut stdout) = until_said(launcher(dir.path()), "Starting Interstella");
    testkit::process::sigterm(running.0.id()).unwrap();
    let status = exited(&mut running, Duration::from_secs(30));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.trim(), "Stopped while starting: nothing was published.");
    assert_eq!(status.code(), Some(0));
}

/// At a terminal, a stage's key switches the running platform to it, and
/// the terminal is read key by key (no Enter, no echo) with Ctrl-C still
/// stopping; it is set back as it was at the end. Run under util-linux's
/// `script`, which gives the launcher a pseudo-terminal and passes on what
/// is written to its stdin as keys typed there. `script` runs the command
/// in `$SHELL`, set here to `/bin/sh`: the Ctrl-C typed reaches that shell
/// too, and a non-interactive dash dies of it (bash waits for its child),
/// so the shell traps it to go on and say how the launcher exited.
#[test]
fn at_a_terminal_a_stages_key_switches_to_it_and_ctrl_c_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("script");
    without_the_settings_tests_run_with(&mut command)
        .args(["--quiet", "--flush", "--return", "--command"])
        .arg(
            r#"trap : INT; "$LAUNCHER" --data-dir "$DATA_DIR" --hq-port 0 --monolith-port 0 --gather-delay-ms 0 --stage monolith; \
               echo "launcher exited $?"; stty -a"#,
        )
        .arg("/dev/null")
        .env("SHELL", "/bin/sh")
        .env("LAUNCHER", env!("CARGO_BIN_EXE_interstella"))
        .env("DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut running = Running(command.spawn().unwrap());
    let mut keys = running.0.stdin.take().unwrap();
    let mut terminal = BufReader::new(running.0.stdout.take().unwrap());
    let (seen, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut line = String::new();
        while terminal.read_line(&mut line).is_ok_and(|read| read > 0) {
            if seen.send(std::mem::take(&mut line)).is_err() {
                return;
            }
        }
    });
    // Every line up to the first that holds `said` (the block's cursor
    // moves come before a line written above it).
    let until = |said: &str| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(said) => {
                    before.push(line);
                    return before;
                }
                Ok(line) => before.push(line),
                Err(error) => panic!("no line saying {said:?} ({error}) after {before:#?}"),
            }
        }
    };
    use std::io::Write as _;
    // A key typed while it starts (during `cargo run`'s build) is no key:
    // typed knowing nothing of them.
    keys.write_all(b"b").unwrap();
    keys.flush().unwrap();
    let mut starting =
        until("Keys switch the stage as it runs, as the labs do: m monolith, i iridium, b both");
    starting.extend(until("stage monolith (keys m/i/b)"));
    // A key that is no stage's is passed over, and so are the Down arrow
    // (ESC [ B: its B is no b) and a paste longer than one read of the
    // terminal, ending in b. Each is read before the next is typed: the
    // block is drawn twice in between.
    let paste = [&[b'a'; 256][..], b"b"].concat();
    let mut typed = starting.split_off(starting.len() - 1);
    for key in [&b"q"[..], b"\x1b[B", &paste, b"i"] {
        keys.write_all(key).unwrap();
        keys.flush().unwrap();
        if key != b"i" {
            typed.extend(until("stage monolith (keys m/i/b)"));
            typed.extend(until("stage monolith (keys m/i/b)"));
        }
    }
    typed.extend(until(
        "Switching to stage iridium: a new monolith, strangled: iridium ...",
    ));
    assert!(
        starting
            .iter()
            .chain(&typed)
            .all(|line| !line.contains("stage both")),
        "a key typed while starting is taken: {starting:#?}"
    );
    assert!(
        typed.iter().all(|line| !line.contains('q')
            && !line.contains("[B")
            && !line.contains("aaa")
            && !line.contains("stage both")),
        "keys are neither echoed nor taken for another's: {typed:#?}"
    );
    until("Stage iridium: the monolith gathers magnesite; iridium from its microservice.");
    until("Generating: orders 0.5/s, iridium 0.5/s");
    until("stage iridium (keys m/i/b)");
    keys.write_all(b"i").unwrap();
    keys.flush().unwrap();
    until("Already at stage iridium.");
    // Ctrl-C, typed: the terminal still makes it a signal.
    keys.write_all(b"\x03").unwrap();
    keys.flush().unwrap();
    until("Nothing lost, nothing counted twice.");
    until("launcher exited 0");
    let settings = until("icanon").concat();
    let settings: Vec<&str> = settings.split([' ', ';', '\r', '\n']).collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(
            settings.contains(&mode) && !settings.contains(&format!("-{mode}").as_str()),
            "{mode} set back: {settings:?}"
        );
    }
    drop(keys);
    assert!(exited(&mut running, Duration::from_secs(30)).success());
}
