//! moto's server, started for one test on a free loopback port and killed
//! with it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use url::Url;

/// How long moto may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running moto server; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    /// Its base URL, `http://127.0.0.1:<port>/`.
    pub base: Url,
    _server: Child,
}

impl Moto {
    /// Starts `$MOTO_SERVER` (as `scripts/test` sets it; else the repository's
    /// `.venv`) and waits until it answers.
    pub async fn start() -> Self {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        crate::wait::wait_until("moto to answer", START_DEADLINE, async || {
            reqwest::get(base.clone()).await.ok().map(drop)
        })
        .await;
        Self {
            base,
            _server: server,
        }
    }
}

/// moto's server executable: `$MOTO_SERVER`, else the repository's `.venv`.
fn moto_server() -> PathBuf {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server"));
    assert!(
        path.exists(),
        "moto_server not found at {} — run the README's test command (scripts/test), which installs it",
        path.display()
    );
    path
}
