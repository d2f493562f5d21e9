//! moto's real SNS as the stand-in (AWS_ENDPOINT_URL_SNS): topics,
//! subscriptions of our endpoints, and publishes whose deliveries moto signs
//! with certificates it serves itself while naming the real SNS host, which
//! our services fetch from moto.
//!
//! moto (5.x) sends no SubscriptionConfirmation to HTTP endpoints, so the
//! confirmation GET is driven by a delivery of our own, with the SubscribeURL
//! in SNS's shape, to a service that skips signature checks.

use contracts::{FulfillmentKind, IdempotencyKey};
use platform::TrustConfig;
use platform::reply::SUBSCRIBED;
use resource::Resource;
use serde_json::json;
use std::time::Duration;
use testkit::moto::Moto;
use testkit::spawn::{monolith_config, resource_config};
use testkit::{FakeApi, TestApp, spawn_monolith, spawn_resource, wait_until};

/// moto picks the service by a SigV4 credential scope; it checks no signature.
const SNS_SCOPE: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0";

/// Calls an action of moto's SNS query API; its XML answer.
async fn sns(moto: &Moto, params: &[(&str, &str)]) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let response = reqwest::Client::new()
        .post(moto.base.clone())
        .header("authorization", SNS_SCOPE)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{params:?}: {status} {text}");
    text
}

/// The text of the first `<tag>` in moto's XML answer.
fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = start + xml[start..].find('<').unwrap();
    xml[start..end].to_owned()
}

async fn create_topic(moto: &Moto, name: &str) -> String {
    xml_field(
        &sns(moto, &[("Action", "CreateTopic"), ("Name", name)]).await,
        "TopicArn",
    )
}

async fn subscribe(moto: &Moto, topic_arn: &str, endpoint: &str) {
    sns(
        moto,
        &[
            ("Action", "Subscribe"),
            ("TopicArn", topic_arn),
            ("Protocol", "http"),
            ("Endpoint", endpoint),
        ],
    )
    .await;
}

/// Publishes `message`; moto delivers before it answers. The MessageId.
async fn publish(moto: &Moto, topic_arn: &str, message: &str) -> String {
    let xml = sns(
        moto,
        &[
            ("Action", "Publish"),
            ("TopicArn", topic_arn),
            ("Message", message),
        ],
    )
    .await;
    xml_field(&xml, "MessageId")
}

fn trusting(moto: &Moto) -> TrustConfig {
    TrustConfig {
        sns_stand_in: Some(moto.base.clone()),
        ..TrustConfig::default()
    }
}

#[tokio::test]
async fn orders_published_on_motos_sns_are_fulfilled() {
    let moto = Moto::start().await;
    let api = FakeApi::start().await;
    let monolith = spawn_monolith(monolith_config(&api.url, trusting(&moto))).await;
    let mut iridium_config = resource_config(Resource::Iridium, &monolith.addr.to_string());
    iridium_config.route.trust = trusting(&moto);
    let iridium: TestApp = spawn_resource(iridium_config).await;

    let orders = create_topic(&moto, "orders").await;
    let iridium_orders = create_topic(&moto, "iridium").await;
    subscribe(&moto, &orders, &monolith.url("/order/")).await;
    subscribe(&moto, &iridium_orders, &iridium.url("/iridium/")).await;

    let bundle_id = publish(&moto, &orders, "{\"bundle\": 1}").await;
    wait_until("the bundle at the API", Duration::from_secs(10), async || {
        (api.count() == 1).then_some(())
    })
    .await;
    let iridium_id = publish(&moto, &iridium_orders, "{\"iridium\": 5}").await;
    wait_until(
        "the iridium order at the API",
        Duration::from_secs(10),
        async || (api.count() == 2).then_some(()),
    )
    .await;

    let received = api.received();
    assert_eq!(
        received[0].fulfillment(),
        json!({"iridium": 1, "magnesite": 1, "produced_by": "monolith"})
    );
    // The keys are ours, derived from moto's topic and MessageId.
    let bundle_key = IdempotencyKey::derive(&orders, &bundle_id, FulfillmentKind::Bundle);
    assert_eq!(received[0].header("idempotency-key"), Some(bundle_key.as_str()));
    assert_eq!(
        received[1].fulfillment(),
        json!({"iridium": 5, "magnesite": 0, "produced_by": "iridium"})
    );
    let iridium_key = IdempotencyKey::derive(
        &iridium_orders,
        &iridium_id,
        FulfillmentKind::Resource(Resource::Iridium),
    );
    assert_eq!(received[1].header("idempotency-key"), Some(iridium_key.as_str()));

    // A forged delivery in moto's shape is not carried out (moto has no such
    // certificate: 503, so real SNS would retry; a bad signature would be 403).
    let forged = json!({
        "Type": "Notification",
        "MessageId": "forged",
        "TopicArn": orders,
        "Message": "{\"bundle\": 9}",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": "AAAA",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
    });
    let (status, _) = monolith.post("/order/", None, &[], forged.to_string()).await;
    assert_eq!(status, 503);
    assert_eq!(api.count(), 2);
}

#[tokio::test]
async fn an_sns_shaped_subscribe_url_is_confirmed_on_moto() {
    let moto = Moto::start().await;
    let api = FakeApi::start().await;
    let trust = TrustConfig {
        verify_signatures: false,
        ..trusting(&moto)
    };
    let monolith = spawn_monolith(monolith_config(&api.url, trust)).await;
    let orders = create_topic(&moto, "orders").await;
    let confirmation = |topic_arn: &str| {
        json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": topic_arn,
            "Message": "You have chosen to subscribe",
            "SubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token=2336412f37"),
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "2",
            "Signature": "AAAA",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        })
        .to_string()
    };
    let (status, text) = monolith.post("/order/", None, &[], confirmation(&orders)).await;
    assert_eq!((status, text.as_str()), (200, SUBSCRIBED));
    // moto answers 404 for a topic it does not have: the GET reached moto.
    let missing = orders.replace(":orders", ":no-such-topic");
    let (status, _) = monolith.post("/order/", None, &[], confirmation(&missing)).await;
    assert_eq!(status, 502);
}
