//! Starting a service: the listening socket, the shutdown signal and the
//! common body of a service binary's `main`. The serve loop itself is in
//! [`crate::server`].

use crate::settings::{ConfigError, LogFormat};
use crate::telemetry::LogGuard;
use std::future::Future;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// Why a service stopped with an error once its settings were accepted.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A port (the service's own or its metrics port) could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Listen {
        /// Which port, e.g. "port 5000" or "METRICS_PORT 9100".
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client for downstream calls could not be built.
    #[error("cannot build the HTTP client for downstream calls: {0}")]
    Client(#[source] reqwest::Error),
    /// Accepting connections failed.
    #[error("serving stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Connections the kernel may hold for us before we accept them (capped by
/// `net.core.somaxconn`, 4096 on current kernels).
///
/// `TcpListener::bind` asks for 128. When a load balancer or a burst opens
/// 1,000 connections at once, a 128-deep queue overflows, the kernel drops
/// handshakes and clients wait for a retransmission (200 ms and more): with
/// 1,000 orders arriving together, about 2% took 1.2–1.8 s instead of 1.0 s.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `port` on every interface (containers must), IPv6 and IPv4 alike
/// (`[::]`, taking IPv4 too whatever `net.ipv6.bindv6only` says: a curl of
/// `localhost` may try `::1` first, and dual-stack tasks have both), with a
/// [`LISTEN_BACKLOG`]-deep accept queue; `0.0.0.0` on a host without IPv6.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    match bind_addr(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
        Ok(listener) => Ok(listener),
        // The port is taken, or not ours to take: IPv4 would say the same,
        // or hide that another process holds IPv6.
        Err(error) if matches!(error.kind(), ErrorKind::AddrInUse | ErrorKind::PermissionDenied) => {
            Err(error)
        }
        Err(error) => {
            tracing::info!(%error, "no IPv6 here: listening on IPv4 only");
            bind_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await
        }
    }
}

/// Binds `addr` with a [`LISTEN_BACKLOG`]-deep accept queue; an IPv6
/// address takes IPv4 too (`IPV6_V6ONLY` off, which tokio does not expose).
pub async fn bind_addr(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    // As `TcpListener::bind` does: a restarted service can take its port
    // back while the old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(LISTEN_BACKLOG).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// `signal`, then the line that says the drain begins.
async fn announced(signal: impl Future<Output = ()>) {
    signal.await;
    tracing::info!("shutting down: no new connections, finishing in-flight orders");
}

/// SIGTERM and SIGINT for a process that drains: [`StopSignals::first`]
/// begins the drain, [`StopSignals::second`] stops at once. A second Ctrl-C
/// at a terminal is someone who will not wait the drain out (ECS sends one
/// signal, then SIGKILL); it was ignored, the handler still installed.
pub struct StopSignals {
    /// Resolves at the first signal (handlers installed at [`stop_signals`]).
    pub first: Shutdown,
    /// Resolves at a SIGTERM or SIGINT after the first signal; never before
    /// it, and never at a SIGHUP (see [`stop_signals`]).
    pub second: Shutdown,
}

/// The stop signals: SIGTERM (ECS, `docker stop`), SIGINT (Ctrl-C) or, on
/// Linux, SIGHUP (the terminal closed) unless the process was started to
/// ignore it (`nohup`).
///
/// The handlers are installed when this is called, not when a future is
/// first polled: a SIGTERM that arrives between "listening" and the first
/// poll must not kill the process with the default action (as PID 1 it would
/// even be ignored). One task counts the signals on the same handlers, so a
/// second signal however soon after the first is heard. SIGHUP counts only
/// as a first: a closed terminal sends two, and nobody is left to ask for
/// the drain to be cut short.
pub fn stop_signals() -> StopSignals {
    stop_signals_on(Signals::install(!hangup_ignored()))
}

/// [`stop_signals`] counted on `signals`.
fn stop_signals_on(mut signals: Signals) -> StopSignals {
    let (count_to, count) = tokio::sync::watch::channel(0_u8);
    tokio::spawn(async move {
        let mut received = 0;
        while received < 2 {
            let stop = signals.recv().await;
            // A hang-up is a first signal only: a closed terminal sends its
            // job SIGHUP twice (the shell, then the kernel as the session
            // ends), and there is nobody left there to want "stop now".
            if stop == Stop::HangUp && received > 0 {
                continue;
            }
            received += 1;
            if count_to.send(received).is_err() {
                break; // no one waits for signals any more
            }
        }
    });
    let nth = |n: u8| -> Shutdown {
        let mut count = count.clone();
        Box::pin(async move {
            if count.wait_for(|&received| received >= n).await.is_err() {
                // The counting task ended first (no runtime to run it): no stop.
                std::future::pending::<()>().await;
            }
        })
    };
    StopSignals {
        first: nth(1),
        second: nth(2),
    }
}

/// Whether this process was started with SIGHUP ignored (`nohup`, or a
/// supervisor that asks for it): then closing the terminal must not stop
/// it, and no handler for SIGHUP is installed. Read from Linux's
/// `/proc/self/status`; elsewhere taken as ignored, so SIGHUP keeps its
/// default there (the workspace forbids the unsafe call that would ask).
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status").map_or(true, |status| ignores_hangup(&status))
}

/// Whether a `/proc/<pid>/status` text's `SigIgn` mask has SIGHUP (signal 1,
/// the mask's lowest bit); a text without a readable mask counts as yes.
fn ignores_hangup(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & 1 != 0)
}

/// The line for a process stopped by [`StopSignals::second`].
pub const STOPPED_AT_SECOND_SIGNAL: &str = "stopped at a second signal, without finishing the drain";

/// The handlers for SIGTERM, SIGINT and perhaps SIGHUP (Ctrl-C only where
/// there are no Unix signals, or they cannot be had).
struct Signals {
    #[cfg(unix)]
    unix: Option<UnixStops>,
}

/// The Unix stop signals' handlers.
#[cfg(unix)]
struct UnixStops {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    /// `None` where SIGHUP keeps its disposition (see [`hangup_ignored`]).
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers now, SIGHUP's only if `hangup`: a signal from
    /// here on is kept for [`Signals::recv`].
    #[cfg_attr(not(unix), allow(unused_variables))]
    fn install(hangup: bool) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(terminate), Ok(interrupt)) => Self {
                    unix: Some(UnixStops {
                        terminate,
                        interrupt,
                        hangup: hangup.then(|| signal(SignalKind::hangup()).ok()).flatten(),
                    }),
                },
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; falling back to Ctrl-C only");
                    Self { unix: None }
                }
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next stop signal.
    async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        if let Some(UnixStops {
            terminate,
            interrupt,
            hangup,
        }) = &mut self.unix
        {
            let hangup = async {
                match hangup {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            };
            return tokio::select! {
                _ = terminate.recv() => Stop::Asked,
                _ = interrupt.recv() => Stop::Asked,
                _ = hangup => Stop::HangUp,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Stop::Asked
    }
}

/// Which kind of stop signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM or SIGINT: someone asked (ECS, `docker stop`, Ctrl-C).
    Asked,
    /// SIGHUP: the terminal went away.
    HangUp,
}

/// The shutdown future handed to a service's `run`.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `command`'s settings from the process's arguments and environment. When
/// they cannot be read (a value out of range, a word it does not take, an
/// unknown flag), says so in one line where the logs go, as every other
/// refusal at start ([`LogGuard::fatal`]: an error event under
/// `LOG_FORMAT=json`), naming the environment variable beside the flag, and
/// gives the exit status (2) for `main` to return. `--help` and `--version`
/// print as clap prints them.
///
/// A variable set blank counts as not set: a compose file's
/// `METRICS_PORT: ${METRICS_PORT:-}` or a task definition's empty value
/// means the default, not a stop. Except the variables in `blank_refused`,
/// whose defaults must not be fallen back to unnoticed (the switches of
/// trust, [`crate::settings::SWITCHES_OF_TRUST`]; where HQ keeps its
/// ledger): set blank, they are refused, in a line that names them.
pub fn settings<C: clap::FromArgMatches>(
    name: &str,
    command: clap::Command,
    blank_refused: &[&str],
) -> Result<C, ExitCode> {
    let is_blank = |variable: &std::ffi::OsStr| {
        std::env::var_os(variable).is_some_and(|value| value.to_str().is_some_and(|v| v.trim().is_empty()))
    };
    let parsing = command.clone().mut_args(|arg| {
        if arg.get_env().is_some_and(is_blank) {
            arg.env(None::<&'static str>)
        } else {
            arg
        }
    });
    let refusal = match parsing.try_get_matches() {
        Ok(matches) => match C::from_arg_matches(&matches) {
            Ok(settings) => match blank_refused.iter().find(|variable| is_blank(variable.as_ref())) {
                None => return Ok(settings),
                Some(variable) => {
                    format!("{variable} is set blank: give it a value, or leave it unset for its default")
                }
            },
            Err(error) => refusal_in_a_line(&error, &command),
        },
        Err(error) if !error.use_stderr() => {
            // --help and --version, from the command as it is (its variables
            // all listed), as clap prints them.
            match command.try_get_matches() {
                Err(shown) if !shown.use_stderr() => shown.exit(),
                _ => error.exit(),
            }
        }
        Err(error) => refusal_in_a_line(&error, &command),
    };
    // The format this run asked for, if that much can be read (as the
    // setting itself reads it: lower case).
    let format = std::env::var("LOG_FORMAT")
        .ok()
        .and_then(|format| <LogFormat as clap::ValueEnum>::from_str(&format, false).ok())
        .unwrap_or_default();
    let logs = crate::telemetry::init_with(format, None);
    logs.fatal(&format_args!("{name}: {refusal}"));
    Err(ExitCode::from(2))
}

/// clap's refusal as one line: its first paragraph (the values it takes
/// included; a usage and a tip follow), with the variable that sets the
/// argument it names.
fn refusal_in_a_line(refused: &clap::Error, command: &clap::Command) -> String {
    let text = refused.to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let line = paragraph.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    // "--max-connections <MAX_CONNECTIONS>": the flag is its first word.
    let variable = match refused.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(arg)) => arg
            .split_whitespace()
            .next()
            .and_then(|flag| flag.strip_prefix("--"))
            .and_then(|long| command.get_arguments().find(|a| a.get_long() == Some(long)))
            .and_then(clap::Arg::get_env)
            .map(|variable| variable.to_string_lossy().into_owned()),
        _ => None,
    };
    match variable {
        Some(variable) => format!("{line} (its environment variable: {variable})"),
        None => line.to_owned(),
    }
}

/// The common body of a service binary's `main`, once its command line is
/// parsed: resolve the settings (`config`: the monolith's may wait on SSM),
/// exit 2 with its one line on a configuration error, otherwise bind
/// `port`, say where, and `run` until SIGTERM; exit 1 with one line if that
/// fails. The line goes where the logs go ([`LogGuard::fatal`]). `logs` is
/// kept until the end, so the last lines are written out.
///
/// The signal handlers come first: a service stopped while it still waits
/// for its settings exits 0 at once instead of starting to serve (as PID 1
/// in a container, a SIGTERM with no handler is dropped, and ECS would kill
/// it serving after its stop timeout). A second signal during the drain
/// exits 1 at once, with its line.
pub async fn run_service<C, Run, Serving>(
    name: &str,
    port: u16,
    config: impl Future<Output = Result<C, ConfigError>>,
    logs: LogGuard,
    run: Run,
) -> ExitCode
where
    Run: FnOnce(TcpListener, C, Shutdown) -> Serving,
    Serving: Future<Output = Result<(), RunError>>,
{
    let StopSignals { mut first, second } = stop_signals();
    let config = tokio::select! {
        config = config => config,
        () = &mut first => {
            tracing::info!("{name} stopped before it started serving");
            return ExitCode::SUCCESS;
        }
    };
    let shutdown: Shutdown = Box::pin(announced(first));
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            logs.fatal(&format_args!("{name}: {error}"));
            return ExitCode::from(2);
        }
    };
    let served = tokio::select! {
        served = serve(name, port, config, shutdown, run) => served,
        () = second => {
            logs.fatal(&format_args!("{name}: {STOPPED_AT_SECOND_SIGNAL}"));
            return ExitCode::FAILURE;
        }
    };
    match served {
        Ok(()) => {
            tracing::info!("{name} stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            logs.fatal(&format_args!("{name}: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// [`run_service`] once the settings are read: bind, say where, run.
async fn serve<C, Run, Serving>(
    name: &str,
    port: u16,
    config: C,
    shutdown: Shutdown,
    run: Run,
) -> Result<(), RunError>
where
    Run: FnOnce(TcpListener, C, Shutdown) -> Serving,
    Serving: Future<Output = Result<(), RunError>>,
{
    let listening = |source| RunError::Listen {
        what: format!("port {port}"),
        source,
    };
    let listener = bind(port).await.map_err(listening)?;
    tracing::info!(
        "{name} listening on {}",
        listener.local_addr().map_err(listening)?
    );
    run(listener, config, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpStream;

    /// Held by a test that signals this process: every handler installed
    /// in it hears every signal, so a SIGTERM of one test would stop
    /// another's wait for SIGHUP.
    static SIGNALLING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Sends SIGTERM to this process, as ECS or `kill` would.
    fn sigterm_self() {
        signal_self("-TERM");
    }

    /// Sends `signal` (`kill`'s spelling) to this process.
    fn signal_self(signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[tokio::test]
    async fn a_closed_terminal_stops_as_ctrl_c_does() {
        // SIGHUP's handler installed whatever this test process was started
        // with (under nohup, stop_signals itself would leave it ignored).
        let _alone = SIGNALLING.lock().await;
        let StopSignals { first, .. } = stop_signals_on(Signals::install(true));
        signal_self("-HUP");
        tokio::time::timeout(Duration::from_secs(10), first)
            .await
            .expect("SIGHUP was not heard as a stop");
    }

    #[tokio::test]
    async fn a_closed_terminals_second_hang_up_does_not_cut_the_drain_short() {
        let _alone = SIGNALLING.lock().await;
        let StopSignals { first, second } = stop_signals_on(Signals::install(true));
        // What a closed terminal sends: the shell's SIGHUP, then the
        // kernel's (the second sent once the first is heard: two pending
        // at once would be one).
        signal_self("-HUP");
        tokio::time::timeout(Duration::from_secs(10), first)
            .await
            .expect("SIGHUP was not heard as a stop");
        signal_self("-HUP");
        let mut second = second;
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut second)
                .await
                .is_err(),
            "a second SIGHUP stopped the drain"
        );
        // Someone who asks still can.
        sigterm_self();
        tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("SIGTERM after the hang-ups was not heard");
    }

    #[test]
    fn nohup_is_read_from_the_ignored_signals() {
        let status = |ignored: &str| {
            format!(
                "Name:\tinterstella\nSigBlk:\t0000000000000000\nSigIgn:\t{ignored}\nSigCgt:\t0000000180004002\n"
            )
        };
        // nohup: SIGHUP (bit 0) ignored, as is SIGPIPE (bit 12), which Rust ignores.
        assert!(ignores_hangup(&status("0000000000001001")));
        assert!(!ignores_hangup(&status("0000000000001000")));
        assert!(
            ignores_hangup("Name:\tinterstella\n"),
            "no mask: leave SIGHUP alone"
        );
    }

    #[tokio::test]
    async fn a_second_signal_is_heard_however_soon_after_the_first() {
        let _alone = SIGNALLING.lock().await;
        let StopSignals { first, second } = stop_signals();
        sigterm_self();
        tokio::time::timeout(Duration::from_secs(10), first)
            .await
            .expect("the first SIGTERM was not heard");
        // Sent before anything waits for it: handlers installed only now
        // (once the first was heard) would miss it.
        sigterm_self();
        tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the second SIGTERM was lost");
    }

    /// What `TcpListener::bind` asks for, and what the kernel allowed
    /// before Linux 5.4.
    const DEFAULT_BACKLOG: usize = 128;

    #[tokio::test]
    async fn a_service_is_reached_over_ipv4_and_ipv6() {
        let listener = bind(0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.unwrap();
        // Only where this host has IPv6 at all.
        if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
            TcpStream::connect((Ipv6Addr::LOCALHOST, port)).await.unwrap();
        } else {
            eprintln!("IPv6 part skipped: this host has no ::1");
        }
    }

    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_accept_queue() {
        // The kernel caps the queue at net.core.somaxconn: where that is no
        // more than the default, a deeper queue cannot be asked for, and a
        // burst that fits would prove nothing.
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        let Some(somaxconn) = somaxconn.filter(|&max| max > DEFAULT_BACKLOG) else {
            eprintln!(
                "skipped: net.core.somaxconn is {somaxconn:?}, not above {DEFAULT_BACKLOG}; \
                 the accept queue cannot be deeper than the default here"
            );
            return;
        };
        let listener = bind(0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Nothing accepts: every connection must fit in the kernel's queue.
        // With the default 128-deep queue, the 130th handshake is dropped.
        let burst = somaxconn.min(300);
        assert!(burst > DEFAULT_BACKLOG + 1);
        let mut open = Vec::new();
        for _ in 0..burst {
            let connect = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
            match tokio::time::timeout(Duration::from_secs(1), connect).await {
                Ok(Ok(stream)) => open.push(stream),
                _ => break,
            }
        }
        assert_eq!(
            open.len(),
            burst,
            "the accept queue held only {} connections",
            open.len()
        );
    }
}
