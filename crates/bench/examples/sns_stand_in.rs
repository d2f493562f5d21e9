//! A signed SNS delivery to profile with, and the stand-in that serves its
//! certificate: prints `{"base", "body", "headers"}` as one JSON line, then
//! serves until killed. `scripts/profile-callgrind --signed` runs it (the
//! monolith trusts it through `AWS_ENDPOINT_URL_SNS=base`).

use contracts::SignatureVersion;
use contracts::sns::CONTENT_TYPE;
use testkit::fake_sns::{FakeSns, delivery_headers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let sns = FakeSns::start().await;
    // SignatureVersion 1, as SNS signs unless a topic asks for 2.
    let envelope = sns.notification("{\"bundle\": 1}", SignatureVersion::V1);
    let mut headers = vec![("Content-Type".to_owned(), CONTENT_TYPE.to_owned())];
    headers.extend(
        delivery_headers(&envelope)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    let delivery = serde_json::json!({
        "base": sns.base.as_str(),
        "body": serde_json::to_string(&envelope)?,
        "headers": headers,
    });
    println!("{delivery}");
    std::future::pending::<()>().await;
    Ok(())
}
