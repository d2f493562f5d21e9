//! Starting the real services in-process on loopback.

use monolith::MonolithConfig;
use monolith::api::FulfillmentApi;
use platform::startup::RunError;
use platform::{ApiKey, HookSecret, TrustConfig};
use resource::{Resource, ResourceConfig};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The API key the tests configure.
pub const TEST_API_KEY: &str = "test-api-key-0123456789";
/// The glue hook secret the tests configure.
pub const TEST_HOOK_SECRET: &str = "test-hook-secret-0123456789abcdef";

/// A service running in the test's runtime.
#[derive(Debug)]
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client for talking to it.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RunError>>,
}

impl TestApp {
    /// The full URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `path` with `content_type` (or none) and extra headers;
    /// returns status and text.
    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// GETs `path`; returns status and text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Signals shutdown and waits for the server to finish draining.
    ///
    /// # Panics
    ///
    /// When the server's task panicked: the test has failed.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(served) => served,
            Err(join) => panic!("the server's task failed: {join}"),
        }
    }
}

/// A monolith config for tests: the given API, the test key, trust as given.
pub fn monolith_config(api: &url::Url, trust: TrustConfig) -> MonolithConfig {
    let mut config = MonolithConfig::new(
        FulfillmentApi {
            endpoint: api.clone().into(),
            api_key: ApiKey::new(TEST_API_KEY),
        },
        HookSecret::new(TEST_HOOK_SECRET),
    );
    config.route.trust = trust;
    config
}

/// A resource service config for tests: `resource`, calling the glue hook of
/// the monolith at `monolith` (host:port) with the test secret.
pub fn resource_config(resource: Resource, monolith: &str) -> ResourceConfig {
    let glue_hook = resource::config::glue_hook_url(monolith).unwrap();
    ResourceConfig::new(resource, glue_hook, HookSecret::new(TEST_HOOK_SECRET))
}

/// Starts the monolith on `127.0.0.1:0`.
pub async fn spawn_monolith(config: MonolithConfig) -> TestApp {
    spawn(|listener, stop| tokio::spawn(monolith::run(listener, config, stop))).await
}

/// Starts a resource service on `127.0.0.1:0`.
pub async fn spawn_resource(config: ResourceConfig) -> TestApp {
    spawn(|listener, stop| tokio::spawn(resource::run(listener, config, stop))).await
}

async fn spawn(
    start: impl FnOnce(TcpListener, ShutdownFuture) -> JoinHandle<Result<(), RunError>>,
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown: ShutdownFuture = Box::pin(async move {
        let _ = stopped.await;
    });
    let task = start(listener, shutdown);
    TestApp {
        addr,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task,
    }
}

type ShutdownFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
