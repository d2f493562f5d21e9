//! Running a service binary as a real process, as ECS or Docker would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Environment every test process gets: no instance metadata lookups (they
/// would leave loopback) and an AWS endpoint on a closed loopback port, so
/// nothing a test starts can reach a real AWS host.
pub fn safe_aws_env() -> HashMap<String, String> {
    HashMap::from([
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), "http://127.0.0.1:9".to_owned()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_owned(), "/nonexistent".to_owned()),
    ])
}

/// Runs `exe` with exactly `env` to its exit (within 30 s); for start-up failures.
/// With `PORT=0` unless `env` names a port, and killed if it outlives the
/// wait: a service that starts when it should have refused must neither
/// take a port a user runs on (5000) nor outlive the test.
pub async fn run_to_exit(exe: &Path, env: &HashMap<String, String>) -> Output {
    let mut command = Command::new(exe);
    command
        .env_clear()
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !env.contains_key("PORT") {
        command.env("PORT", "0");
    }
    let output = command.output();
    tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the process did not exit within 30 s")
        .unwrap()
}

/// A running service process with its output lines collected.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every output line seen so far (stdout and stderr).
    pub seen: Vec<String>,
}

impl ServiceProcess {
    /// Starts `exe` with exactly `env` (nothing inherited) and `PORT=0`.
    pub fn start(exe: &Path, env: &HashMap<String, String>) -> Self {
        Self::spawn(Command::new(exe), env)
    }

    /// [`ServiceProcess::start`], with at most `open_files` descriptors
    /// (soft and hard limit: the shell's `ulimit -n`).
    pub fn start_with_open_files(exe: &Path, env: &HashMap<String, String>, open_files: u32) -> Self {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\""))
            .arg(exe);
        Self::spawn(command, env)
    }

    fn spawn(mut command: Command, env: &HashMap<String, String>) -> Self {
        command.env_clear().envs(env).env("PORT", "0");
        Self::start_command(command)
    }

    /// Starts `command` as it is set up (its environment included), with
    /// its output collected; killed when dropped. For the tools tests run
    /// beside the services, such as moto's server.
    pub fn start_command(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for reader in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(reader).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the "listening on ADDR" line; returns the loopback address.
    pub async fn wait_listening(&mut self) -> SocketAddr {
        self.wait_address("listening on ", Duration::from_secs(10)).await
    }

    /// Waits for a line where `said` is followed by an address, and returns
    /// that address's port on loopback; panics with the output if none comes
    /// within `deadline` or the process ends its output first (it exited).
    ///
    /// Told port 0, a process binds a port of its own and says which: no
    /// other process can hold it meanwhile, unlike a port found free,
    /// released and handed over, which another may take in between.
    pub async fn wait_address(&mut self, said: &str, deadline: Duration) -> SocketAddr {
        let what = format!("{said:?} and an address");
        let addr = self
            .wait_for(&what, deadline, |line| address_after(line, said))
            .await;
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    }

    /// Waits for a line containing `said`; panics with the output if none
    /// comes within `deadline` or the process ends its output first.
    pub async fn wait_line(&mut self, said: &str, deadline: Duration) {
        let what = format!("{said:?}");
        self.wait_for(&what, deadline, |line| line.contains(said).then_some(()))
            .await;
    }

    /// Waits for a line containing `said` unless one was already read (as
    /// [`ServiceProcess::wait_listening`] reads the lines before its own):
    /// for a line that may come before or after another awaited first.
    pub async fn said_or_wait_line(&mut self, said: &str, deadline: Duration) {
        if !self.seen.iter().any(|line| line.contains(said)) {
            self.wait_line(said, deadline).await;
        }
    }

    /// The first `found` of a line output from now on (every line kept in
    /// [`ServiceProcess::seen`]); panics, naming `what` was awaited, with
    /// the output if none comes within `deadline` or the output ends.
    async fn wait_for<T>(&mut self, what: &str, deadline: Duration, found: impl Fn(&str) -> Option<T>) -> T {
        let outcome = tokio::time::timeout(deadline, async {
            while let Some(line) = self.lines.recv().await {
                let seen = found(&line);
                self.seen.push(line);
                if seen.is_some() {
                    return seen;
                }
            }
            None
        })
        .await;
        match outcome {
            Ok(Some(seen)) => seen,
            Ok(None) => panic!(
                "the process ended its output (exited) before saying {what}; output: {:#?}",
                self.seen
            ),
            Err(_) => panic!(
                "no line saying {what} within {deadline:?}; output so far: {:#?}",
                self.seen
            ),
        }
    }

    /// Sends SIGTERM, as `docker stop` and ECS do.
    pub async fn terminate(&self) {
        let pid = self.child.id().expect("process already reaped");
        if let Err(error) = sigterm(pid) {
            panic!("SIGTERM to {pid} failed: {error}");
        }
    }

    /// Kills it with SIGKILL, as the kernel's out-of-memory killer or a lost
    /// machine stops it (no handler, no drain), and waits until it is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Waits for the process to exit; collects the rest of its output.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "process did not exit within {deadline:?}; output: {:#?}",
                    self.seen
                )
            })
            .unwrap();
        // The pipes close at exit: read to their end (a pause in the
        // readers, on a busy machine, is no end), or for 10 s if something
        // the process started still holds them.
        let seen = &mut self.seen;
        let lines = &mut self.lines;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = lines.recv().await {
                seen.push(line);
            }
        })
        .await;
        status
    }
}

/// The address right after `said` in `line`, if one is there: the word
/// after it (a JSON line's message ends at a quote), less a trailing `:` or
/// `,` (HQ's line goes on "ADDR: fulfillment API ..."). A line that says
/// `said` and no address ("listening on IPv4 only") has none.
fn address_after(line: &str, said: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(said)?;
    let word = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
    word.trim_end_matches([':', ',']).parse().ok()
}

/// Runs `exe` with `env` and checks it exits 2 with exactly one stderr line
/// that names each of `named`: a configuration error, as a person reads it
/// and as docs/contract.md promises (exit 2, which ECS shows as the
/// container's exit code).
pub async fn exits_with_one_line_naming(exe: &Path, env: &HashMap<String, String>, named: &[&str]) {
    exits_with_code_and_one_line_naming(exe, env, 2, named).await;
}

/// Runs `exe` with `env` and checks it exits `code` with exactly one stderr
/// line that names each of `named`.
pub async fn exits_with_code_and_one_line_naming(
    exe: &Path,
    env: &HashMap<String, String>,
    code: i32,
    named: &[&str],
) {
    let output = run_to_exit(exe, env).await;
    assert_eq!(output.status.code(), Some(code), "exited {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stderr:?}");
    for name in named {
        assert!(lines[0].contains(name), "{name} not named in {:?}", lines[0]);
    }
}

/// `exe --help` run with `variable` set to a URL carrying a password and a
/// token does not show them: clap shows a variable's value beside its flag
/// unless told not to, and an endpoint may carry credentials.
pub fn help_hides_the_value_of(exe: &Path, variable: &str) {
    let output = std::process::Command::new(exe)
        .arg("--help")
        .env(
            variable,
            "https://user:s3cret-password@api.example.com/x/?token=s3cret-token",
        )
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && help.contains(variable), "{help}");
    assert!(!help.contains("s3cret"), "{help}");
}

/// A resource binary refuses to start, exit 2 with one line, without the
/// glue hook's secret, and when it would take SNS orders from any topic.
pub async fn resource_binary_refuses_unsafe_configuration(exe: &Path) {
    let mut env = safe_aws_env();
    env.insert("monolithUrl".into(), "127.0.0.1:9".into());
    exits_with_one_line_naming(exe, &env, &["GLUE_HOOK_SECRET"]).await;
    env.insert("GLUE_HOOK_SECRET".into(), "short".into());
    exits_with_one_line_naming(exe, &env, &["GLUE_HOOK_SECRET", "16 characters"]).await;
    // A word clap refuses: one line too, with what it takes and the variable.
    let mut unknown_word = env.clone();
    unknown_word.insert("SNS_VERIFY".into(), "off".into());
    let named = [
        "invalid value 'off'",
        "[possible values: true, false]",
        "SNS_VERIFY",
    ];
    exits_with_one_line_naming(exe, &unknown_word, &named).await;
    env.insert("GLUE_HOOK_SECRET".into(), crate::spawn::TEST_HOOK_SECRET.into());
    env.insert("ACCEPT_UNSIGNED_ORDERS".into(), "false".into());
    exits_with_one_line_naming(exe, &env, &["ACCEPT_UNSIGNED_ORDERS=false", "SNS_TOPIC_ARNS"]).await;
    assert_eq!(run_to_exit(exe, &env).await.status.code(), Some(2));
}

/// A resource binary serves its health check on `/<resource>/`, answers an
/// order the monolith refuses with 502 and logs the monolith's status, and
/// exits 0 on SIGTERM.
pub async fn resource_binary_serves_and_stops(exe: &Path, resource: contracts::Resource) {
    // A glue hook that answers 503, to see the monolith's status logged.
    let monolith = crate::FakeApi::start().await;
    monolith.behave(crate::ApiBehaviour::Fail(503));
    let mut env = safe_aws_env();
    env.insert("monolithUrl".into(), monolith.url.to_string());
    env.insert("GLUE_HOOK_SECRET".into(), crate::spawn::TEST_HOOK_SECRET.into());
    let mut service = ServiceProcess::start(exe, &env);
    let addr = service.wait_listening().await;
    let health = reqwest::get(format!("http://{addr}/{resource}/")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let text = health.text().await.unwrap();
    assert_eq!(text, resource::routes::health_text(resource));
    let order = reqwest::Client::new()
        .post(format!("http://{addr}/{resource}/"))
        .body(format!(r#"{{"Message": {{"{resource}": "1"}}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status().as_u16(), 502);
    service.terminate().await;
    let exit = service.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    // As the workshop printed it, whatever the status.
    let log = service.seen.join("\n");
    assert!(log.contains("Monolith Status Code: 503"), "{log}");
}

/// Starts a resource binary with 64 file descriptors, opens 100 idle
/// connections to it (so accepting runs out, EMFILE, well below
/// `MAX_CONNECTIONS`), and checks its health check still answers at once
/// and that it warned about the limit at start.
pub async fn resource_binary_sheds_idle_connections_out_of_descriptors(
    exe: &Path,
    resource: contracts::Resource,
) {
    let mut env = safe_aws_env();
    env.insert("monolithUrl".into(), "http://127.0.0.1:9/".into());
    env.insert("GLUE_HOOK_SECRET".into(), crate::spawn::TEST_HOOK_SECRET.into());
    // Idle connections would otherwise hold their descriptors this long.
    env.insert("HEADER_READ_TIMEOUT_MS".into(), "60000".into());
    // Busy ones (a body on its way) this long.
    env.insert("BODY_READ_TIMEOUT_MS".into(), "2000".into());
    let mut service = ServiceProcess::start_with_open_files(exe, &env, 64);
    let addr = service.wait_listening().await;
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Within 10 s: the idle connections were shed to make room, not held
    // until their 60 s header timeout.
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("http://{addr}/{resource}/")),
    )
    .await
    .unwrap_or_else(|_| panic!("no health check answer within 10 s; output: {:#?}", service.seen));
    assert_eq!(health.unwrap().status().as_u16(), 200);
    // A connection with a request in progress is not closed to make room,
    // so with every slot busy until the body timeout, accepting fails ten
    // times a second until their bodies time out and they close.
    drop(idle);
    let mut busy = Vec::new();
    for _ in 0..60 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /{resource}/ HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{");
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
            .await
            .unwrap();
        busy.push(stream);
    }
    let health = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::get(format!("http://{addr}/{resource}/")),
    )
    .await
    .unwrap_or_else(|_| panic!("no health check answer within 20 s; output: {:#?}", service.seen));
    assert_eq!(health.unwrap().status().as_u16(), 200);
    service.terminate().await;
    let exit = service.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    let log = service.seen.join("\n");
    assert!(
        log.contains("the open-file limit is 64"),
        "no warning at start:\n{log}"
    );
    // Accepting failed over and over, for seconds: one line says so, not
    // one per failure.
    let accept_lines = service
        .seen
        .iter()
        .filter(|line| line.contains("cannot accept connections"))
        .count();
    assert!(
        (1..=2).contains(&accept_lines),
        "{accept_lines} accept-failure lines in a run of a few seconds:\n{log}"
    );
}

/// The tests every resource binary gets, all of its crate's
/// `tests/binary.rs`: `testkit::resource_binary_tests!(iridium);`. The one
/// name is both the binary's and the resource's, so a file copied for a
/// new resource and not renamed does not build (there is no such binary in
/// the new crate) rather than test another resource.
#[macro_export]
macro_rules! resource_binary_tests {
    ($name:ident) => {
        fn exe() -> &'static ::std::path::Path {
            ::std::path::Path::new(env!(concat!("CARGO_BIN_EXE_", stringify!($name))))
        }

        fn resource() -> ::contracts::Resource {
            match stringify!($name).parse() {
                Ok(resource) => resource,
                Err(error) => panic!("{error}"),
            }
        }

        /// With neither set, the one line names both.
        #[tokio::test]
        async fn missing_monolith_url_exits_with_one_line_naming_it() {
            $crate::process::exits_with_one_line_naming(
                exe(),
                &$crate::process::safe_aws_env(),
                &["monolithUrl", "MONOLITH_URL", "GLUE_HOOK_SECRET"],
            )
            .await;
        }

        #[tokio::test]
        async fn serves_its_health_check_and_exits_0_on_sigterm() {
            $crate::process::resource_binary_serves_and_stops(exe(), resource()).await;
        }

        #[tokio::test]
        async fn refuses_to_start_without_hook_secret_or_with_sns_from_any_topic() {
            $crate::process::resource_binary_refuses_unsafe_configuration(exe()).await;
        }

        #[test]
        fn its_help_hides_the_monolith_url() {
            $crate::process::help_hides_the_value_of(exe(), "monolithUrl");
        }

        #[test]
        fn says_its_name_and_version() {
            let output = ::std::process::Command::new(exe())
                .arg("--version")
                .output()
                .unwrap_or_else(|error| panic!("{error}"));
            let said = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{output:?}");
            assert_eq!(
                said.trim(),
                concat!(stringify!($name), " ", env!("CARGO_PKG_VERSION"))
            );
        }

        #[tokio::test]
        async fn out_of_descriptors_idle_connections_make_room_for_the_health_check() {
            $crate::process::resource_binary_sheds_idle_connections_out_of_descriptors(exe(), resource())
                .await;
        }
    };
}

/// Sends SIGTERM to process `pid`, as `docker stop` and ECS do.
pub fn sigterm(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("{pid} is not a process id")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::address_after;

    #[test]
    fn the_address_is_read_from_the_line_that_says_it() {
        let hq = "2026-12-04T23:55:35Z INFO HQ listening on 127.0.0.1:40001: fulfillment API http://127.0.0.1:40001/receiving/, ...";
        assert_eq!(
            address_after(hq, "listening on "),
            Some("127.0.0.1:40001".parse().unwrap())
        );
        let json = r#"{"level":"INFO","message":"monolith listening on [::]:40004","timestamp":"..."}"#;
        assert_eq!(
            address_after(json, "listening on "),
            Some("[::]:40004".parse().unwrap())
        );
        let monolith = "INFO monolith listening on [::]:40002";
        assert_eq!(
            address_after(monolith, "listening on "),
            Some("[::]:40002".parse().unwrap())
        );
        let moto = " * Running on http://127.0.0.1:40003";
        assert_eq!(
            address_after(moto, "Running on http://"),
            Some("127.0.0.1:40003".parse().unwrap())
        );
        // Said, but with no address after it: not the line waited for.
        let no_ipv6 = "INFO no IPv6 here: listening on IPv4 only error=...";
        assert_eq!(address_after(no_ipv6, "listening on "), None);
        assert_eq!(address_after("listening on ", "listening on "), None);
    }
}
