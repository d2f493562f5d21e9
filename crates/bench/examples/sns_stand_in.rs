//! A signed SNS delivery to profile with, and the stand-in that serves its
//! certificate: prints `{"base", "body", "headers"}` as one JSON line, then
//! serves until killed. `scripts/profile-callgrind --signed` runs it (the
//! monolith trusts it through `AWS_ENDPOINT_URL_SNS=base`).

use bench::sns::Delivery;
use testkit::fake_sns::FakeSns;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let sns = FakeSns::start().await;
    // The body the bench's signed loads send.
    let delivery = Delivery::sns(&sns, "{\"bundle\": 1}")?;
    let line = serde_json::json!({
        "base": sns.base.as_str(),
        "body": delivery.body,
        "headers": delivery.headers,
    });
    println!("{line}");
    std::future::pending::<()>().await;
    Ok(())
}
