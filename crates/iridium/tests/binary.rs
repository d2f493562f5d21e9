//! The `iridium` binary as a process: start-up from the environment, the
//! missing-configuration exit, and SIGTERM as `docker stop` sends it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::path::Path;
use std::time::Duration;
use testkit::ServiceProcess;
use testkit::process::{run_to_exit, safe_aws_env};

fn iridium_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_iridium"))
}

#[tokio::test]
async fn missing_monolith_url_exits_with_one_line_naming_it() {
    let output = run_to_exit(iridium_exe(), &safe_aws_env()).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("monolithUrl") && stderr.contains("MONOLITH_URL"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serves_its_health_check_and_exits_0_on_sigterm() {
    let mut env = safe_aws_env();
    env.insert("monolithUrl".into(), "127.0.0.1:9".into());
    let mut iridium = ServiceProcess::start(iridium_exe(), &env);
    let addr = iridium.wait_listening().await;
    let health = reqwest::get(format!("http://{addr}/iridium/")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    iridium.terminate().await;
    let exit = iridium.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
}
