//! One service (the monolith, iridium or magnesite) running in the
//! launcher's process on its own loopback port, which a test can stop and
//! start again to see the feed retry and nothing lost.

use crate::LaunchError;
use contracts::Resource;
use platform::startup::RunError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Runs a service on a listener until its token is cancelled.
type StartFn = Arc<dyn Fn(TcpListener, CancellationToken) -> JoinHandle<Result<(), RunError>> + Send + Sync>;

/// One of the services, running in this process.
pub struct Service {
    part: Part,
    addr: SocketAddr,
    start: StartFn,
    running: Option<(CancellationToken, JoinHandle<Result<(), RunError>>)>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("part", &self.part)
            .field("addr", &self.addr)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

/// A part of the platform on a port of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// HQ.
    Hq,
    /// The monolith.
    Monolith,
    /// A resource's microservice.
    Microservice(Resource),
}

impl Part {
    /// Its name, as its lines (`service{name=…}`) and errors say it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hq => "hq",
            Self::Monolith => "monolith",
            Self::Microservice(resource) => resource.as_str(),
        }
    }

    /// The flag that gives it its port.
    pub fn port_flag(self) -> String {
        match self {
            Self::Hq => "--hq-port".to_owned(),
            Self::Monolith => "--monolith-port".to_owned(),
            Self::Microservice(resource) => format!("--microservice-port {resource}=<port>"),
        }
    }
}

/// Binds `addr` for `part` through the platform, with the services' deep
/// accept queue; a refusal names the part and the flag that moves it.
pub(crate) async fn listen(part: Part, addr: SocketAddr) -> Result<TcpListener, LaunchError> {
    platform::startup::bind_addr(addr)
        .await
        .map_err(|source| LaunchError::Bind { part, addr, source })
}

impl Service {
    /// Runs `run(listener, config, shutdown)` on `listener` (bound to
    /// `addr`: see [`listen`]), with a fresh clone of `config` at each
    /// (re)start.
    pub(crate) async fn launch<C, Run, Running>(
        part: Part,
        (addr, listener): (SocketAddr, TcpListener),
        config: C,
        run: Run,
    ) -> Result<Self, LaunchError>
    where
        C: Clone + Send + Sync + 'static,
        Run: Fn(TcpListener, C, tokio_util::sync::WaitForCancellationFutureOwned) -> Running
            + Send
            + Sync
            + 'static,
        Running: Future<Output = Result<(), RunError>> + Send + 'static,
    {
        let addr = listener
            .local_addr()
            .map_err(|source| LaunchError::Bind { part, addr, source })?;
        let start: StartFn = Arc::new(move |listener, stop: CancellationToken| {
            // Every line of the service in its span: in the one console of
            // four services, each line says whose it is.
            let serving = platform::telemetry::service_span(part.name());
            tokio::spawn(run(listener, config.clone(), stop.cancelled_owned()).instrument(serving))
        });
        let mut service = Self {
            part,
            addr,
            start,
            running: None,
        };
        service.run_on(listener);
        Ok(service)
    }

    fn run_on(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let task = (self.start)(listener, stop.clone());
        self.running = Some((stop, task));
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it gracefully (in-flight requests finish); its port then refuses.
    pub async fn stop(&mut self) -> Result<(), LaunchError> {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(LaunchError::Service(self.part.name(), error.to_string())),
                Err(error) => return Err(LaunchError::Service(self.part.name(), error.to_string())),
            }
        }
        Ok(())
    }

    /// Starts it again on the same address.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop().await?;
        let listener = listen(self.part, self.addr).await?;
        self.run_on(listener);
        Ok(())
    }
}
