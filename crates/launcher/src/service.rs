//! One service (the monolith, iridium or magnesite) running in the
//! launcher's process on its own loopback port, which a test can stop and
//! start again to see the feed retry and nothing lost.

use crate::LaunchError;
use contracts::Resource;
use platform::startup::RunError;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
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
    /// A second descriptor of the listening socket it runs on, for a
    /// service that replaces it ([`Service::replace_with`]); closed when it
    /// stops, so that its port then refuses.
    socket: Option<std::net::TcpListener>,
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
            socket: None,
        };
        service.run_on(listener);
        Ok(service)
    }

    fn run_on(&mut self, listener: TcpListener) {
        // Without one (out of descriptors), a replacement binds the port
        // again once this one has stopped.
        self.socket = listener
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::net::TcpListener::from);
        let stop = CancellationToken::new();
        let task = (self.start)(listener, stop.clone());
        self.running = Some((stop, task));
    }

    /// The URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it gracefully (in-flight requests finish); its port then refuses.
    pub async fn stop(&mut self) -> Result<(), LaunchError> {
        self.socket = None;
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

    /// Puts the service `launch` starts (by [`Service::launch`], on the
    /// address and listener it is given) in this one's place, as an ECS
    /// deployment replaces a task: the new one accepts on the same listening
    /// socket before this one drains (it answers what it is answering, then
    /// stops), so no connection finds the port closed. Stopping this one is
    /// logged, not returned, if it fails: the new one runs.
    pub(crate) async fn replace_with<Launching>(
        &mut self,
        launch: impl FnOnce((SocketAddr, TcpListener)) -> Launching,
    ) -> Result<(), LaunchError>
    where
        Launching: Future<Output = Result<Self, LaunchError>>,
    {
        let (part, addr) = (self.part, self.addr);
        let shared = match self.socket.take().map(TcpListener::from_std) {
            Some(Ok(listener)) => listener,
            // No second descriptor: the port is closed in between.
            Some(Err(_)) | None => self.stopped_and_bound_again().await?,
        };
        let replacement = launch((addr, shared)).await?;
        let mut replaced = std::mem::replace(self, replacement);
        if let Err(error) = replaced.stop().await {
            tracing::warn!("the {} it replaced: {error}", part.name());
        }
        Ok(())
    }

    /// Starts it again on the same address.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        let listener = self.stopped_and_bound_again().await?;
        self.run_on(listener);
        Ok(())
    }

    /// Stops it, then binds its address again, for what runs next there.
    async fn stopped_and_bound_again(&mut self) -> Result<TcpListener, LaunchError> {
        self.stop().await?;
        listen(self.part, self.addr).await
    }

    /// Whether it runs: not stopped, nor left stopped by a replacement
    /// that failed to start.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}
