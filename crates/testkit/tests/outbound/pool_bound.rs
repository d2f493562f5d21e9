//! A burst of calls to one target leaves no more connections open to it
//! than its bound on calls in flight: hyper's pool races a new connection
//! against one coming back, so a burst opens a few more, and the pool must
//! not keep them.

use platform::downstream::{Downstream, http_client};
use std::time::Duration;
use testkit::fake_api::{ApiBehaviour, FakeApi};
use testkit::wait_until;

/// Connections from this machine to `port` that are established: the
/// client's side of each, as the kernel lists them (`/proc/net/tcp`).
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // rem_address is `HEXIP:HEXPORT`; state 01 is ESTABLISHED.
            let remote_port = fields[2].rsplit(':').next().unwrap();
            u16::from_str_radix(remote_port, 16).unwrap() == port && fields[3] == "01"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_leaves_no_more_connections_open_than_the_call_bound() {
    const BOUND: usize = 4;
    let api = FakeApi::start().await;
    api.behave(ApiBehaviour::Delay(Duration::from_millis(2)));
    let port = api.url.port().unwrap();
    let target = Downstream::new(
        http_client(BOUND).unwrap(),
        api.url.clone(),
        "fulfillment API",
        Duration::from_secs(20),
    )
    .with_max_connections(BOUND);
    let body = serde_json::json!({"iridium": 1});
    let calls = (0..400).map(|_| target.post_json(&body, &[]));
    for result in futures_util::future::join_all(calls).await {
        assert!(result.is_ok(), "{result:?}");
    }
    assert_eq!(api.count(), 400);
    // Connections the pool does not keep close as soon as they come back.
    let what = format!("no more than {BOUND} connections open to a target of {BOUND} calls in flight");
    wait_until(&what, Duration::from_secs(5), async || {
        (established_to(port) <= BOUND).then_some(())
    })
    .await;
}
