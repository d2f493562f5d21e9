//! Real SNS deliveries: signatures v1 and v2 checked against a certificate
//! served locally through AWS_ENDPOINT_URL_SNS, confirmations, forgeries.

use contracts::MessageType;
use contracts::SignatureVersion::{self, V1, V2};
use contracts::fulfillment::HOOK_SECRET_HEADER;
use contracts::order_id::ORDER_ID_HEADER;
use contracts::{FulfillmentKind, IdempotencyKey};
use platform::TrustConfig;
use platform::reply::{ORDER_FULFILLED, SUBSCRIBED, UNSUBSCRIBED};
use resource::Resource;
use serde_json::json;
use testkit::TestSigner;
use testkit::fake_api::ApiBehaviour;
use testkit::fake_sns::{
    CERT_PATH, FakeSns, HANG_ACTION, HitCounter, ORDERS_TOPIC, deliver, delivery_headers,
};
use testkit::keys::{OTHER_KEY_PEM, TEST_KEY_PEM};
use testkit::logs::CapturedLogs;
use testkit::spawn::{TEST_HOOK_SECRET, monolith_config, resource_config};
use testkit::{FakeApi, TestApp, spawn_monolith, spawn_resource};

const BUNDLE: &str = "{\"bundle\": 1}";

struct Setup {
    monolith: TestApp,
    api: FakeApi,
    sns: FakeSns,
}

async fn setup(configure: impl FnOnce(&mut TrustConfig)) -> Setup {
    let api = FakeApi::start().await;
    let sns = FakeSns::start().await;
    let mut trust = TrustConfig {
        sns_stand_in: Some(sns.base.clone()),
        ..TrustConfig::default()
    };
    configure(&mut trust);
    let monolith = spawn_monolith(monolith_config(&api.url, trust)).await;
    Setup { monolith, api, sns }
}

#[tokio::test]
async fn signed_notifications_v1_and_v2_are_fulfilled_with_the_message_id() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    for version in [V1, V2, V1, V2] {
        let envelope = sns.notification(BUNDLE, version.clone());
        let (status, text) = deliver(&monolith, "/order/", &envelope).await;
        assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED), "{version:?}");
        let last = api.received().pop().unwrap();
        assert_eq!(
            last.fulfillment(),
            json!({"iridium": 1, "magnesite": 1, "produced_by": "monolith"})
        );
        let key = IdempotencyKey::derive(ORDERS_TOPIC, &envelope.message_id, FulfillmentKind::Bundle);
        assert_eq!(last.header("idempotency-key"), Some(key.as_str()));
    }
    assert_eq!(sns.cert_fetches(), 1, "the certificate is cached");
}

#[tokio::test]
async fn subject_when_present_is_signed_too() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let mut envelope = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
    envelope.subject = Some("New order".into());
    sns.sign(&mut envelope, V2);
    assert_eq!(deliver(&monolith, "/order/", &envelope).await.0, 200);
    envelope.subject = Some("Changed".into());
    assert_eq!(deliver(&monolith, "/order/", &envelope).await.0, 403);
    assert_eq!(api.count(), 1);
}

#[tokio::test]
async fn tampered_or_forged_messages_do_nothing() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let original = sns.notification(BUNDLE, V2);
    let mut tampered = Vec::new();
    let mut message = original.clone();
    message.message = "{\"bundle\": 1000}".into();
    tampered.push(message);
    let mut topic = original.clone();
    topic.topic_arn = "arn:aws:sns:us-east-1:123456789012:other".into();
    tampered.push(topic);
    let mut id = original.clone();
    id.message_id = "another-id".into();
    tampered.push(id);
    let mut garbage = original.clone();
    garbage.signature = "not base64 at all!".into();
    tampered.push(garbage);
    let mut unsupported = original.clone();
    unsupported.signature_version = SignatureVersion::Unsupported("3".into());
    tampered.push(unsupported);
    let mut downgraded = original.clone();
    downgraded.signature_version = V1;
    tampered.push(downgraded);
    let mut other_key = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
    let forger = TestSigner::from_pem(OTHER_KEY_PEM, sns.base.join(CERT_PATH).unwrap().as_str()).unwrap();
    forger.sign(&mut other_key, V2);
    tampered.push(other_key);

    for envelope in &tampered {
        let (status, text) = deliver(&monolith, "/order/", envelope).await;
        assert_eq!(status, 403, "{envelope:?} answered {status} {text}");
    }
    // Claimed to be from SNS (a Type, or SNS' header) but no envelope at
    // all: it cannot be verified, so 403 as well.
    for (headers, body) in [
        (
            &[("x-amz-sns-message-type", "Notification")][..],
            r#"{"Message":{"bundle":"1"}}"#,
        ),
        (&[][..], r#"{"Type":"Notification","Message":{"bundle":"1"}}"#),
    ] {
        let (status, text) = monolith.post("/order/", None, headers, body).await;
        assert_eq!(status, 403, "{body} answered {status} {text}");
        assert!(text.contains("cannot be verified"), "{text}");
    }
    // SNS' header with a value that is not text claims it as surely (read
    // as no header, it went through as an unsigned order).
    for value in [&b"Notification\xff"[..], b"\xe2\x80\xae"] {
        let answer = reqwest::Client::new()
            .post(monolith.url("/order/"))
            .header(
                "x-amz-sns-message-type",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .body(r#"{"Message":{"bundle":"1"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{}", String::from_utf8_lossy(value));
    }
    assert_eq!(api.count(), 0, "a forged message reached the fulfillment API");
    assert_eq!(deliver(&monolith, "/order/", &original).await.0, 200);
}

#[tokio::test]
async fn certificates_outside_sns_are_never_fetched() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let attacker = HitCounter::start().await;
    for cert_url in [
        attacker.base.join(CERT_PATH).unwrap().to_string(),
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem".into(),
        "https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem".into(),
    ] {
        let mut envelope = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
        TestSigner::from_pem(TEST_KEY_PEM, cert_url.as_str())
            .unwrap()
            .sign(&mut envelope, V2);
        assert_eq!(
            deliver(&monolith, "/order/", &envelope).await.0,
            403,
            "{cert_url}"
        );
    }
    assert_eq!(attacker.hits(), 0);
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn unavailable_certificate_is_a_5xx_so_sns_retries() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let missing = sns
        .base
        .join("/SimpleNotificationService-00000000000000000000000000000000.pem")
        .unwrap();
    let mut envelope = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
    TestSigner::from_pem(TEST_KEY_PEM, missing.as_str())
        .unwrap()
        .sign(&mut envelope, V2);
    let (status, _) = deliver(&monolith, "/order/", &envelope).await;
    assert_eq!(status, 503, "a missing certificate may come back: SNS must retry");
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn subscription_confirmations_are_confirmed_once_verified() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    for version in [V1, V2] {
        let mut envelope = sns.envelope(
            MessageType::SubscriptionConfirmation,
            ORDERS_TOPIC,
            "You have chosen to subscribe",
        );
        sns.sign(&mut envelope, version.clone());
        let (status, text) = deliver(&monolith, "/order/", &envelope).await;
        assert_eq!((status, text.as_str()), (200, SUBSCRIBED), "{version:?}");
    }
    assert_eq!(sns.confirmations(), 2);

    let mut unsubscribe = sns.envelope(MessageType::UnsubscribeConfirmation, ORDERS_TOPIC, "unsubscribed");
    sns.sign(&mut unsubscribe, V2);
    let (status, text) = deliver(&monolith, "/order/", &unsubscribe).await;
    assert_eq!((status, text.as_str()), (200, UNSUBSCRIBED));
    assert_eq!(
        sns.confirmations(),
        2,
        "an unsubscribe confirmation does not resubscribe"
    );
    assert_eq!(api.count(), 0);
    // The topic is a field a query can match: the ARN, not a quotation of it.
    let confirmed = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("SNS subscription confirmed"))
        .collect::<Vec<_>>();
    assert_eq!(confirmed.len(), 2, "{confirmed:#?}");
    assert!(
        confirmed
            .iter()
            .all(|line| line.contains(&format!(" topic={ORDERS_TOPIC}"))),
        "{confirmed:#?}"
    );
    // The unsubscribe is logged too (SPEC: "log it"), with its topic.
    let ended = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("SNS subscription ended (UnsubscribeConfirmation)"))
        .collect::<Vec<_>>();
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert!(ended[0].contains(&format!(" topic={ORDERS_TOPIC}")), "{ended:#?}");
}

#[tokio::test]
async fn failed_confirmation_is_a_502() {
    let Setup { monolith, sns, .. } = setup(|_| {}).await;
    let mut envelope = sns.envelope(MessageType::SubscriptionConfirmation, ORDERS_TOPIC, "subscribe");
    envelope.subscribe_url = Some(sns.base.join("?Action=Nope").unwrap().to_string());
    sns.sign(&mut envelope, V2);
    assert_eq!(deliver(&monolith, "/order/", &envelope).await.0, 502);
}

/// A SubscribeURL that never answers is given up on within the
/// confirmation's timeout, well before the request's own (14 s) and SNS'
/// (15 s): a 502 that says so, which SNS retries.
#[tokio::test]
async fn a_confirmation_sns_never_answers_is_a_502_within_its_timeout() {
    let Setup { monolith, sns, .. } = setup(|_| {}).await;
    let mut envelope = sns.envelope(MessageType::SubscriptionConfirmation, ORDERS_TOPIC, "subscribe");
    let hanging = format!("?Action={HANG_ACTION}&Token=t");
    envelope.subscribe_url = Some(sns.base.join(&hanging).unwrap().to_string());
    sns.sign(&mut envelope, V2);
    let (status, text) = deliver(&monolith, "/order/", &envelope).await;
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("SNS SubscribeURL did not answer within 5s"),
        "{text}"
    );
    assert_eq!(sns.confirmations(), 0);
}

async fn forged_subscribe_url_is_never_fetched_with(verify: bool, sign: Option<SignatureVersion>) {
    let Setup { monolith, sns, .. } = setup(|trust| trust.verify_signatures = verify).await;
    let attacker = HitCounter::start().await;
    let mut envelope = sns.envelope(MessageType::SubscriptionConfirmation, ORDERS_TOPIC, "subscribe");
    envelope.subscribe_url = Some(
        attacker
            .base
            .join("?Action=ConfirmSubscription&Token=x")
            .unwrap()
            .to_string(),
    );
    if let Some(version) = sign {
        sns.sign(&mut envelope, version);
    }
    let (status, _) = deliver(&monolith, "/order/", &envelope).await;
    assert_eq!(status, 403);
    assert_eq!(attacker.hits(), 0, "the forged SubscribeURL was fetched");
    assert_eq!(sns.confirmations(), 0);
}

#[tokio::test]
async fn forged_subscribe_url_is_never_fetched() {
    forged_subscribe_url_is_never_fetched_with(true, Some(V2)).await;
    forged_subscribe_url_is_never_fetched_with(true, None).await;
    // Even with verification off, only SNS addresses are confirmed.
    forged_subscribe_url_is_never_fetched_with(false, None).await;
}

#[tokio::test]
async fn only_allowed_topics_are_accepted() {
    let Setup { monolith, api, sns } = setup(|trust| trust.topic_arns = vec![ORDERS_TOPIC.to_owned()]).await;
    let mut other = sns.envelope(
        MessageType::Notification,
        "arn:aws:sns:us-east-1:999999999999:elsewhere",
        BUNDLE,
    );
    sns.sign(&mut other, V2);
    assert_eq!(deliver(&monolith, "/order/", &other).await.0, 403);
    assert_eq!(api.count(), 0);
    assert_eq!(
        deliver(&monolith, "/order/", &sns.notification(BUNDLE, V2))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn verification_can_be_switched_off() {
    let Setup { monolith, api, sns } = setup(|trust| trust.verify_signatures = false).await;
    let unsigned = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
    assert_eq!(deliver(&monolith, "/order/", &unsigned).await.0, 200);
    assert_eq!(api.count(), 1);
    assert_eq!(sns.cert_fetches(), 0);
}

#[tokio::test]
async fn raw_message_delivery_is_refused_saying_how_to_fix_it() {
    // With RawMessageDelivery on, SNS sends the order alone: no envelope,
    // no signature, no MessageId. Unsigned orders allowed or not, and
    // verification on or off, it is refused, never fulfilled uncounted.
    for verify in [true, false] {
        let Setup { monolith, api, .. } = setup(|trust| trust.verify_signatures = verify).await;
        let (status, text) = monolith
            .post(
                "/order/",
                Some(contracts::sns::CONTENT_TYPE),
                &[
                    ("x-amz-sns-message-type", "Notification"),
                    ("x-amz-sns-rawdelivery", "true"),
                ],
                BUNDLE,
            )
            .await;
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("turn RawMessageDelivery off"), "{text}");
        assert_eq!(api.count(), 0);
    }
}

#[tokio::test]
async fn bad_order_inside_a_genuine_notification_is_a_400() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    for message in ["not json", "{\"bundle\": -2}", "{\"iridium\": 1}", "[]"] {
        assert_eq!(
            deliver(&monolith, "/order/", &sns.notification(message, V2))
                .await
                .0,
            400,
            "{message}"
        );
    }
    assert_eq!(api.count(), 0);
}

/// An iridium service trusting the fake SNS, wired to `monolith`.
async fn iridium_for(monolith: &TestApp, sns: &FakeSns) -> TestApp {
    let trust = TrustConfig {
        sns_stand_in: Some(sns.base.clone()),
        ..TrustConfig::default()
    };
    let mut config = resource_config(Resource::Iridium, &monolith.addr.to_string());
    config.route.trust = trust;
    spawn_resource(config).await
}

#[tokio::test]
async fn redeliveries_are_fulfilled_once_with_our_key_end_to_end() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let iridium = iridium_for(&monolith, &sns).await;
    let envelope = sns.notification("{\"iridium\": \"5\"}", V1);
    for _ in 0..2 {
        let (status, text) = deliver(&iridium, "/iridium/", &envelope).await;
        assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    }
    let key = IdempotencyKey::derive(
        ORDERS_TOPIC,
        &envelope.message_id,
        FulfillmentKind::Resource(Resource::Iridium),
    );
    let received = api.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        assert_eq!(
            request.fulfillment(),
            json!({"iridium": 5, "magnesite": 0, "produced_by": "iridium"})
        );
        assert_eq!(request.header("idempotency-key"), Some(key.as_str()));
    }
    assert_eq!(api.fulfillments(), 1, "a redelivered order was fulfilled twice");
}

/// An SNS order through iridium reaches the fulfillment API under its
/// MessageId as its order id: iridium passes the id on the glue hook, and
/// the monolith takes it from there rather than making its own, so the
/// order's log lines match on every service it passes through.
#[tokio::test]
async fn an_sns_orders_message_id_is_its_order_id_at_the_api_through_the_glue_hook() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let iridium = iridium_for(&monolith, &sns).await;
    let envelope = sns.notification("{\"iridium\": 1}", V2);
    let (status, text) = deliver(&iridium, "/iridium/", &envelope).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    let received = api.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header(ORDER_ID_HEADER),
        Some(envelope.message_id.as_str()),
        "the API got another id than the order's MessageId"
    );
}

/// Every reply to an order names the order's id, whatever its status: a
/// caller answered 502, whose order may have gone through, can look for it
/// by id in the services' and HQ's logs. A body that is no order names none.
#[tokio::test]
async fn every_reply_to_an_order_names_its_order_id() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let iridium = iridium_for(&monolith, &sns).await;
    let named = |response: &reqwest::Response| {
        response
            .headers()
            .get(ORDER_ID_HEADER)
            .map(|id| id.to_str().unwrap().to_owned())
    };
    let post = |app: &TestApp, path: &str, headers: Vec<(&'static str, String)>, body: String| {
        let mut request = app.client.post(app.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };

    // An SNS order, through iridium and the glue hook: its MessageId.
    let envelope = sns.notification("{\"iridium\": 1}", V2);
    let body = serde_json::to_string(&envelope).unwrap();
    let response = post(&iridium, "/iridium/", delivery_headers(&envelope), body)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(named(&response).as_deref(), Some(envelope.message_id.as_str()));

    // The workshop's curl: the id the monolith made, the one the API was given.
    let curl = r#"{"Message": {"bundle": 1}}"#.to_owned();
    let response = post(&monolith, "/order/", vec![], curl.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let given = api.received().pop().unwrap();
    assert_eq!(named(&response).as_deref(), given.header(ORDER_ID_HEADER));

    // Refused by the API: 502, and the order it may yet have is named.
    api.behave(ApiBehaviour::Fail(500));
    let response = post(&monolith, "/order/", vec![], curl).await.unwrap();
    assert_eq!(response.status(), 502);
    let given = api.received().pop().unwrap();
    assert!(named(&response).is_some());
    assert_eq!(named(&response).as_deref(), given.header(ORDER_ID_HEADER));

    // A signed order with a bad quantity: refused, under its MessageId.
    let envelope = sns.notification("{\"iridium\": 0}", V2);
    let body = serde_json::to_string(&envelope).unwrap();
    let response = post(&iridium, "/iridium/", delivery_headers(&envelope), body)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(named(&response).as_deref(), Some(envelope.message_id.as_str()));

    // No order: nothing to name.
    let response = post(&monolith, "/order/", vec![], "{}".to_owned()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(named(&response), None);

    // The glue hook refusing a microservice's body names the order the
    // microservice sent it as; sent none, or one not well formed, it names
    // none, as the order is not known.
    for (sent, body) in [
        (Some("from-iridium-77"), r#"{"iridium": 0}"#),
        (None, r#"{"iridium": 0}"#),
        (Some("not well formed!"), r#"{"iridium": 1}"#),
    ] {
        let mut headers = vec![(HOOK_SECRET_HEADER, TEST_HOOK_SECRET.to_owned())];
        headers.extend(sent.map(|id| (ORDER_ID_HEADER, id.to_owned())));
        let response = post(&monolith, "/fulfill/", headers, body.to_owned())
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{sent:?}");
        let expected = sent.filter(|id| !id.contains(' '));
        assert_eq!(named(&response).as_deref(), expected, "{sent:?}");
    }
}

#[tokio::test]
async fn the_same_message_id_on_another_topic_is_another_order() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    let iridium = iridium_for(&monolith, &sns).await;
    let order = "{\"iridium\": 1}";
    let first = sns.notification(order, V2);
    // Someone else's topic reuses (or claims first) the same MessageId.
    let mut elsewhere = sns.envelope(
        MessageType::Notification,
        "arn:aws:sns:us-east-1:999999999999:other",
        order,
    );
    elsewhere.message_id = first.message_id.clone();
    sns.sign(&mut elsewhere, V2);
    for envelope in [&elsewhere, &first] {
        let (status, text) = deliver(&iridium, "/iridium/", envelope).await;
        assert_eq!(
            (status, text.as_str()),
            (200, ORDER_FULFILLED),
            "{}",
            envelope.topic_arn
        );
    }
    assert_eq!(api.fulfillments(), 2, "one topic's message blocked another's");
}

#[tokio::test]
async fn a_message_id_not_of_sns_shape_is_a_400_before_anything_is_called() {
    let Setup { monolith, api, sns } = setup(|_| {}).await;
    for message_id in [
        "msg-42",
        "00000000-0000-4000-8000-00000000000g",
        "not a uuid at all",
    ] {
        let mut envelope = sns.envelope(MessageType::Notification, ORDERS_TOPIC, BUNDLE);
        envelope.message_id = message_id.into();
        sns.sign(&mut envelope, V2);
        let (status, text) = deliver(&monolith, "/order/", &envelope).await;
        assert_eq!(status, 400, "{message_id:?}: {text}");
        assert!(!text.contains('\n'), "raw newline in {text:?}");
    }
    let mut confirmation = sns.envelope(MessageType::SubscriptionConfirmation, ORDERS_TOPIC, "subscribe");
    confirmation.message_id = "msg-42".into();
    sns.sign(&mut confirmation, V2);
    assert_eq!(deliver(&monolith, "/order/", &confirmation).await.0, 400);
    assert_eq!(sns.confirmations(), 0);
    assert_eq!(api.count(), 0);
}
