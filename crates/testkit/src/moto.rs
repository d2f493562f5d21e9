//! moto's server, started for one test on a loopback port of its own and
//! killed with it.

use crate::process::ServiceProcess;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;
use url::Url;

/// How long moto may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running moto server; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    /// Its base URL, `http://127.0.0.1:<port>/`.
    pub base: Url,
    _server: ServiceProcess,
}

impl Moto {
    /// Starts `$MOTO_SERVER` (as `scripts/test` sets it; else the repository's
    /// `.venv`) on port 0 and waits until it says which port it bound
    /// (werkzeug's " * Running on http://127.0.0.1:PORT", once listening).
    pub async fn start() -> Self {
        let mut command = Command::new(moto_server());
        command.args(["-H", "127.0.0.1", "-p", "0"]);
        // Its output is read all along (each request is a line on stderr),
        // so a full pipe never stops it.
        let mut server = ServiceProcess::start_command(command);
        let addr = server.wait_address("Running on http://", START_DEADLINE).await;
        Self {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
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
