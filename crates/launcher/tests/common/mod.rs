//! What the launcher's test binaries share: a platform configuration with
//! a fast retry policy and one signing identity, and waiting for orders.

// Each test binary includes this file and uses some of it.
#![allow(dead_code)]

use hq::feed::{Backoff, RetryPolicy, Topic};
use launcher::{LaunchConfig, Platform, Stage, launch};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// How long a test waits for orders to go through.
pub const WAIT: Duration = Duration::from_secs(20);

/// One signing identity for the whole test binary: making RSA keys is slow.
pub fn identity_pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| hq::signing::generate().unwrap())
}

/// A platform at `stage` in `dir`, retrying fast.
pub fn config(stage: Stage, dir: &Path) -> LaunchConfig {
    let (key, cert) = identity_pems();
    std::fs::write(dir.join(hq::signing::KEY_FILE), key).unwrap();
    std::fs::write(dir.join(hq::signing::CERT_FILE), cert).unwrap();
    let mut config = LaunchConfig::new(stage, dir);
    config.feed.retry = RetryPolicy {
        num_retries: 60,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        backoff: Backoff::Exponential,
    };
    config.feed.delivery_timeout = Duration::from_secs(5);
    config
}

/// Whether every order published was fulfilled.
pub async fn all_fulfilled(platform: &Platform) -> bool {
    let r = platform.hq().reconcile().await.unwrap();
    r.totals.published > 0 && r.totals.fulfilled == r.totals.published
}

/// Launches the platform (every resource strangled) in `dir`, publishes
/// one order of 2 iridium and waits until it is fulfilled; returns the
/// platform and the order's MessageId.
pub async fn one_iridium_order(dir: &Path) -> (Platform, String) {
    let platform = launch(config(Stage::Both, dir)).await.unwrap();
    let published = platform
        .hq()
        .publisher()
        .publish(Topic::Iridium, &Topic::Iridium.order(2), &Default::default())
        .await
        .unwrap();
    testkit::wait::wait_until("the order fulfilled", WAIT, async || {
        all_fulfilled(&platform).await.then_some(())
    })
    .await;
    (platform, published.message_id)
}
