//! The order feed: subscription confirmation, deliveries as SNS makes them,
//! signatures, retries.

use crate::support::{
    KEY, Subscriber, admin_client, binary_env, config, get_json, hq_binary, nobody_listening, publish,
    publish_answer, refusal, start_hq, subscribe, subscribe_confirmed, url,
};
use axum::http::StatusCode;
use base64::Engine;
use contracts::{Envelope, MessageType};
use hq::feed::Topic;
use hq::feed::generator::GeneratorConfig;
use platform::sns::CertificateKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use testkit::logs::CapturedLogs;
use testkit::process::ServiceProcess;
use testkit::wait_until;

const WAIT: Duration = Duration::from_secs(5);

/// HQ's settings for the data directory `dir`, subscribing `endpoint` to
/// the orders topic at start (`--subscribe`), a confirmation sent `every`.
fn config_subscribing(dir: &std::path::Path, endpoint: &str, every: Duration) -> hq::HqConfig {
    let mut config = config(dir);
    config.subscriptions = vec![(Topic::Orders, endpoint.parse().unwrap())];
    config.subscribe_every = every;
    config
}

#[tokio::test]
async fn a_subscription_is_live_only_once_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    let created = subscribe(&hq, "orders", &subscriber.endpoint()).await;
    assert_eq!(created["state"], "pending_confirmation");

    wait_until("the SubscriptionConfirmation", WAIT, async || {
        (!subscriber.received().is_empty()).then_some(())
    })
    .await;
    let confirmation = subscriber.received()[0].clone();
    let envelope = confirmation.envelope();
    assert_eq!(envelope.message_type, MessageType::SubscriptionConfirmation);
    assert_eq!(envelope.topic_arn, "arn:aws:sns:us-east-1:000000000000:orders");
    assert_eq!(
        confirmation.header("x-amz-sns-message-type"),
        Some("SubscriptionConfirmation")
    );
    assert_eq!(confirmation.header("x-amz-sns-subscription-arn"), None);
    let subscribe_url = envelope.subscribe_url.clone().unwrap();
    assert!(
        subscribe_url.starts_with(&url(&hq, "/?Action=ConfirmSubscription&")),
        "{subscribe_url}"
    );

    // Not confirmed: published orders reach nobody.
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    let reconciliation = hq.hq().reconcile().await.unwrap();
    assert_eq!(reconciliation.totals.unrouted, 1);

    // A wrong token confirms nothing; the SubscribeURL does, answering SNS' XML.
    let wrong = subscribe_url.replace("Token=", "Token=0");
    let message = refusal(reqwest::get(&wrong).await.unwrap(), 404).await;
    assert!(
        message.contains("no subscription awaits confirmation"),
        "{message}"
    );
    assert_eq!(
        hq.hq().feed().subscriptions()[0].state,
        hq::feed::SubscriptionState::PendingConfirmation
    );
    let confirmed = reqwest::get(&subscribe_url).await.unwrap();
    assert_eq!(confirmed.status(), 200);
    let xml = confirmed.text().await.unwrap();
    assert!(
        xml.contains("<ConfirmSubscriptionResponse") && xml.contains(":orders:"),
        "{xml}"
    );

    publish_and_see_it_delivered(&hq, &subscriber, "orders", r#"{"bundle": 2}"#).await;
    hq.shutdown(WAIT).await.unwrap();
}

/// Behind a proxy that strips a path, `HQ_PUBLIC_URL` carries the path, and
/// every link HQ signs or names is under it: services trust only those.
#[tokio::test]
async fn links_stay_under_the_public_urls_path() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::happy().await;
    let mut config = config_subscribing(dir.path(), &subscriber.endpoint(), WAIT);
    // Without a trailing slash: the rule is the services' own, either way.
    let public_url: url::Url = "http://127.0.0.1:9/hq".parse().unwrap();
    config.public_url = Some(public_url.clone());
    let hq = start_hq(config).await;
    wait_until("the SubscriptionConfirmation", WAIT, async || {
        (!subscriber.received().is_empty()).then_some(())
    })
    .await;
    let envelope = subscriber.received()[0].envelope();
    let trust = platform::sns::TrustedHosts::new(Some(public_url));
    let cert_url = &envelope.signing_cert_url;
    assert!(
        cert_url.starts_with("http://127.0.0.1:9/hq/SimpleNotificationService-"),
        "{cert_url}"
    );
    trust.check_cert_url(cert_url).unwrap();
    let subscribe_url = envelope.subscribe_url.as_deref().unwrap();
    assert!(
        subscribe_url.starts_with("http://127.0.0.1:9/hq/?Action=ConfirmSubscription&"),
        "{subscribe_url}"
    );
    trust.check_subscribe_url(subscribe_url).unwrap();
    assert_eq!(
        hq.hq().fulfillment_url().as_str(),
        "http://127.0.0.1:9/hq/receiving/"
    );
    // HQ's own index names its routes where services reach them.
    let index = reqwest::get(url(&hq, "/")).await.unwrap().text().await.unwrap();
    for route in [
        "POST http://127.0.0.1:9/hq/receiving/ ",
        "GET  http://127.0.0.1:9/hq/SimpleNotificationService-",
        "In a browser, http://127.0.0.1:9/hq/ is the key portal.",
    ] {
        assert!(index.contains(route), "{route:?} not in {index}");
    }
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn deliveries_are_what_sns_sends_and_verify_against_hqs_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "iridium", &subscriber.endpoint()).await;
    let message_id = publish(&hq, "iridium", r#"{"iridium": 3}"#).await;
    wait_until("the notification", WAIT, async || {
        (subscriber.notifications().len() == 1).then_some(())
    })
    .await;

    let delivery = subscriber.notifications()[0].clone();
    let envelope = delivery.envelope();
    assert_eq!(delivery.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(
        delivery.header("user-agent"),
        Some("Amazon Simple Notification Service Agent")
    );
    assert_eq!(delivery.header("x-amz-sns-message-type"), Some("Notification"));
    assert_eq!(delivery.header("x-amz-sns-message-id"), Some(message_id.as_str()));
    assert_eq!(
        delivery.header("x-amz-sns-topic-arn"),
        Some(Topic::Iridium.arn().as_str())
    );
    let subscription_arn = delivery.header("x-amz-sns-subscription-arn").unwrap();
    assert!(subscription_arn.starts_with(&format!("{}:", Topic::Iridium.arn())));

    // The body is the envelope in SNS' field order, Message as a string.
    let raw: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(raw["Message"], r#"{"iridium": 3}"#);
    assert_eq!(raw["SignatureVersion"], "2");
    assert!(raw.get("Subject").is_none());
    assert_eq!(serde_json::to_string(&envelope).unwrap(), delivery.body);
    assert!(
        envelope
            .unsubscribe_url
            .as_deref()
            .unwrap()
            .contains("Action=Unsubscribe")
    );

    let key = served_certificate_key(&envelope).await;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&envelope.signature)
        .unwrap();
    let version = &envelope.signature_version;
    key.verify(version, envelope.string_to_sign().as_bytes(), &signature)
        .unwrap();
    let mut tampered = envelope.clone();
    tampered.message = r#"{"iridium": 300}"#.into();
    assert!(
        key.verify(version, tampered.string_to_sign().as_bytes(), &signature)
            .is_err()
    );
    hq.shutdown(WAIT).await.unwrap();
}

/// The public key of the certificate served where the envelope's
/// SigningCertURL says, once the URL is checked to be HQ's with SNS' file name.
async fn served_certificate_key(envelope: &Envelope) -> CertificateKey {
    let cert_url = url::Url::parse(&envelope.signing_cert_url).unwrap();
    assert_eq!(cert_url.host_str(), Some("127.0.0.1"));
    let file = cert_url.path().trim_start_matches('/');
    assert!(
        file.starts_with("SimpleNotificationService-") && file.ends_with(".pem"),
        "{file}"
    );
    let response = reqwest::get(cert_url.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let pem = response.text().await.unwrap();
    CertificateKey::from_pem(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn publishing_checks_the_order_like_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = admin_client(&hq);
    // Valid JSON, but over what SNS publishes (whitespace is JSON too).
    let too_large = format!("{{\"bundle\": 1{}}}", " ".repeat(hq::feed::MAX_MESSAGE_BYTES));
    for (topic, body, status, says) in [
        ("orders", too_large.as_str(), 413, "SNS takes at most 262144"),
        ("orders", r#"{"iridium": 1}"#, 400, "not an order for this topic"),
        // The workshop curl's body, an order in a Message of its own.
        (
            "orders",
            r#"{"Message":{"bundle":"1"}}"#,
            400,
            r#"publish the order itself, such as {"bundle": 1}: SNS puts it in the Message field"#,
        ),
        ("orders", "{", 400, "not an order for this topic"),
        ("orders", r#"{"bundle": 0}"#, 400, "not an order for this topic"),
        (
            "iridium",
            r#"{"magnesite": 1}"#,
            400,
            "not an order for this topic",
        ),
        ("gold", r#"{"gold": 1}"#, 404, "unknown topic \"gold\""),
    ] {
        let response = client
            .post(url(&hq, &format!("/topics/{topic}/publish")))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let message = refusal(response, status).await;
        assert!(message.contains(says), "{topic} {body}: {message}");
    }
    // A quantity as a string is what the services take, so HQ takes it too.
    let accepted = client
        .post(url(&hq, "/topics/magnesite/publish"))
        .body(r#"{"magnesite": "2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(accepted["subscribers"], 0, "{accepted}");
    assert!(
        accepted["message_id"].as_str().is_some_and(|id| id.len() == 36),
        "{accepted}"
    );
    let reconciliation = hq.hq().reconcile().await.unwrap();
    assert_eq!(
        (reconciliation.totals.published, reconciliation.totals.unrouted),
        (1, 1),
        "only the accepted order was published"
    );

    let bad_endpoint = client
        .post(url(&hq, "/topics/orders/subscriptions"))
        .json(&serde_json::json!({"endpoint": "ftp://x/"}))
        .send()
        .await
        .unwrap();
    let message = refusal(bad_endpoint, 400).await;
    assert!(
        message.contains("endpoint must be an http:// or https:// URL"),
        "{message}"
    );
    assert!(hq.hq().feed().subscriptions().is_empty());
    hq.shutdown(WAIT).await.unwrap();
}

/// Also what HQ says: each failure with the retry it leads to, and the
/// delivery at the end of them, each line naming the MessageId.
#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    // Fails twice, then takes it.
    let flaky = Subscriber::start(
        Arc::new(|n| {
            if n < 2 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        }),
        true,
    )
    .await;
    // Refuses every order as bad.
    let picky = Subscriber::start(Arc::new(|_| StatusCode::BAD_REQUEST), true).await;
    // Fails every time.
    let broken = Subscriber::start(Arc::new(|_| StatusCode::INTERNAL_SERVER_ERROR), true).await;
    subscribe_confirmed(&hq, "orders", &flaky.endpoint()).await;
    subscribe_confirmed(&hq, "iridium", &picky.endpoint()).await;
    subscribe_confirmed(&hq, "magnesite", &broken.endpoint()).await;

    let flaky_id = publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    publish(&hq, "iridium", r#"{"iridium": 1}"#).await;
    publish(&hq, "magnesite", r#"{"magnesite": 1}"#).await;
    assert!(hq.hq().feed().drain(WAIT).await, "deliveries did not finish");

    let attempts = flaky.notifications();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.envelope().message_id == flaky_id));
    assert!(
        attempts.windows(2).all(|w| w[0].body == w[1].body),
        "a retry resends the same body"
    );
    assert_eq!(picky.notifications().len(), 1);
    assert_eq!(broken.notifications().len(), 4, "first attempt and 3 retries");

    let stats = hq.hq().feed().stats();
    let orders = stats[&Topic::Orders];
    assert_eq!((orders.delivered, orders.retried, orders.failed), (1, 2, 0));
    let about_flaky: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains(&format!("order_id={flaky_id}")))
        .collect();
    let said = |what: &str| about_flaky.iter().filter(|line| line.contains(what)).count();
    assert_eq!(said("retry 1 of 3 in"), 1, "{about_flaky:#?}");
    // The status a number of its own, as on the services' lines.
    assert_eq!(said("status=503"), 2, "{about_flaky:#?}");
    assert_eq!(said("retry 2 of 3 in"), 1, "{about_flaky:#?}");
    assert_eq!(said("delivered after 2 failed attempts"), 1, "{about_flaky:#?}");
    let iridium = stats[&Topic::Iridium];
    assert_eq!((iridium.rejected, iridium.retried), (1, 0));
    let magnesite = stats[&Topic::Magnesite];
    assert_eq!((magnesite.failed, magnesite.retried), (1, 3));

    // Nothing fulfilled these (the subscribers are not services): the
    // rejected one is rejected, the others lost, and none is pending.
    let reconciliation = hq.hq().reconcile().await.unwrap();
    assert_eq!(reconciliation.totals.published, 3);
    assert_eq!(reconciliation.totals.rejected, 1);
    assert_eq!(reconciliation.totals.lost, 2);
    assert_eq!(reconciliation.totals.pending, 0);
    // All three are named: the two lost, the order flaky never fulfilled
    // among them, and the refused one (a refusal is a wiring fault).
    let named: Vec<(&str, &str, &str)> = reconciliation
        .unaccounted
        .iter()
        .map(|u| (u.message_id.as_str(), u.topic.as_str(), u.outcome.as_str()))
        .collect();
    assert_eq!(named.len(), 3, "{named:?}");
    assert!(
        named.contains(&(flaky_id.as_str(), "orders", "lost")),
        "{named:?}"
    );
    assert!(
        named
            .iter()
            .any(|&(_, topic, outcome)| (topic, outcome) == ("iridium", "rejected")),
        "{named:?}"
    );
    assert!(!reconciliation.is_clean());
    hq.shutdown(WAIT).await.unwrap();
}

/// Two subscriptions of one topic: one fulfils the order and calls again
/// (as after an answer lost on the way back), the other refuses it. The
/// repeat is not the refusing subscription's fulfillment: while deliveries
/// are under way the order is pending, and then it is rejected, not
/// fulfilled, and the run is not clean.
#[tokio::test]
async fn a_repeat_never_stands_in_for_a_subscription_that_refused_or_is_still_being_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Retried for as long as the test takes (up to 100 s), 20 ms apart.
    config.feed.retry.num_retries = 5_000;
    let hq = start_hq(config).await;
    let taker = Subscriber::start(Arc::new(|_| StatusCode::OK), true).await;
    // Busy (503, retried) until told to refuse (400, never retried).
    let refused = Arc::new(AtomicBool::new(false));
    let picky = {
        let refused = Arc::clone(&refused);
        Subscriber::start(
            Arc::new(move |_| {
                if refused.load(Ordering::Acquire) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }),
            true,
        )
        .await
    };
    subscribe_confirmed(&hq, "iridium", &taker.endpoint()).await;
    subscribe_confirmed(&hq, "iridium", &picky.endpoint()).await;
    let message_id = publish(&hq, "iridium", r#"{"iridium": 1}"#).await;
    let key = contracts::IdempotencyKey::derive(
        &Topic::Iridium.arn(),
        &message_id,
        Topic::Iridium.fulfillment_kind(),
    );
    for _ in 0..2 {
        let answer = reqwest::Client::new()
            .post(url(&hq, "/receiving/"))
            .header("x-api-key", KEY)
            .header("idempotency-key", key.as_str())
            .body(r#"{"iridium": 1, "magnesite": 0}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    // The taker's delivery has ended; the other is still being retried.
    wait_until("the taker's delivery", WAIT, async || {
        (hq.hq().feed().stats()[&Topic::Iridium].delivered == 1).then_some(())
    })
    .await;
    let under_way = hq.hq().reconcile().await.unwrap();
    assert_eq!(
        (under_way.totals.fulfilled, under_way.totals.pending),
        (0, 1),
        "{under_way:?}"
    );
    refused.store(true, Ordering::Release);
    assert!(hq.hq().feed().drain(WAIT).await, "deliveries did not finish");
    let ended = hq.hq().reconcile().await.unwrap();
    assert_eq!(
        (ended.totals.fulfilled, ended.totals.rejected),
        (0, 1),
        "{ended:?}"
    );
    assert!(!ended.is_clean());
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn an_endpoint_that_is_down_gets_its_orders_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.retry.num_retries = 100;
    let hq = start_hq(config).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;

    subscriber.stop();
    let mut ids = Vec::new();
    for bundle in 1..=3 {
        ids.push(publish(&hq, "orders", &format!("{{\"bundle\": {bundle}}}")).await);
    }
    let feed = hq.hq().feed().clone();
    wait_until("refused deliveries to be retried", WAIT, async || {
        (feed.stats()[&Topic::Orders].retried >= 3).then_some(())
    })
    .await;
    assert!(subscriber.notifications().is_empty());

    let back = subscriber.restart().await;
    wait_until("all orders delivered", WAIT, async || {
        (feed.stats()[&Topic::Orders].delivered == 3).then_some(())
    })
    .await;
    let mut delivered: Vec<String> = back
        .notifications()
        .iter()
        .map(|n| n.envelope().message_id)
        .collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids);
    assert_eq!(feed.stats()[&Topic::Orders].failed, 0);
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn start_up_subscriptions_wait_for_their_endpoint_and_go_live_once_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::happy().await;
    subscriber.stop();
    let config = config_subscribing(dir.path(), &subscriber.endpoint(), Duration::from_millis(20));
    let hq = start_hq(config).await;
    let feed = hq.hq().feed().clone();

    // The endpoint is down: the subscription exists but stays pending.
    wait_until("the start-up subscription", WAIT, async || {
        (feed.subscriptions().len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        feed.subscriptions()[0].state,
        hq::feed::SubscriptionState::PendingConfirmation
    );
    assert!(subscriber.received().is_empty());

    // Once it is up, the confirmation is sent again and it confirms.
    let back = subscriber.restart().await;
    wait_until("the start-up subscription confirmed", WAIT, async || {
        (feed.subscriptions()[0].state == hq::feed::SubscriptionState::Confirmed).then_some(())
    })
    .await;
    assert_eq!(
        feed.subscriptions().len(),
        1,
        "one subscription, not one per attempt"
    );
    publish_and_see_it_delivered(&hq, &back, "orders", r#"{"bundle": 1}"#).await;
    hq.shutdown(WAIT).await.unwrap();
}

#[test]
fn settings_that_would_fail_every_delivery_or_that_sns_refuses_are_refused_at_start() {
    use clap::Parser;
    let parse =
        |args: &[&str]| hq::cli::Cli::try_parse_from(std::iter::once("hq").chain(args.iter().copied()));
    // Each alone is refused by the parser, naming the setting.
    for args in [
        &["--retries", "101"][..],
        &["--delivery-timeout-ms", "0"],
        &["--retry-min-delay-ms", "0"],
        &["--retry-max-delay-ms", "3600001"],
        &["--subscribe-every-ms", "99"],
        // The services refuse an order of more than 1,000,000, and 0 is none.
        &["--max-quantity", "0"],
        &["--max-quantity", "1000001"],
    ] {
        let error = parse(args).expect_err("refused").to_string();
        assert!(error.contains(args[0]), "{args:?}: {error}");
    }
    // The bounds themselves are fine.
    let bounds = parse(&[
        "--retries",
        "100",
        "--retry-max-delay-ms",
        "3600000",
        "--subscribe-every-ms",
        "100",
        "--max-quantity",
        "1000000",
    ])
    .unwrap();
    assert!(bounds.config().is_ok());
    // A first delay longer than the largest is a policy SNS refuses.
    let error = parse(&["--retry-min-delay-ms", "2000", "--retry-max-delay-ms", "1000"])
        .unwrap()
        .config()
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("HQ_RETRY_MIN_DELAY_MS (2000)") && error.contains("HQ_RETRY_MAX_DELAY_MS (1000)"),
        "{error}"
    );
}

#[test]
fn subscribe_flags_parse_repeated_or_comma_separated() {
    use clap::Parser;
    let cli = hq::cli::Cli::try_parse_from([
        "hq",
        "--subscribe",
        "orders=http://proxy/order/,iridium=http://proxy/iridium/",
        "--subscribe",
        "magnesite=http://proxy/magnesite/",
    ])
    .unwrap();
    let (config, _) = cli.config().unwrap();
    let wired: Vec<(Topic, String)> = config
        .subscriptions
        .iter()
        .map(|(topic, url)| (*topic, url.to_string()))
        .collect();
    assert_eq!(
        wired,
        [
            (Topic::Orders, "http://proxy/order/".to_owned()),
            (Topic::Iridium, "http://proxy/iridium/".to_owned()),
            (Topic::Magnesite, "http://proxy/magnesite/".to_owned()),
        ]
    );
    // Refused through clap, naming the setting and never quoting the value:
    // an endpoint may carry a password or a token.
    for refused in [
        "orders",
        "gold=http://ops:s3cret@proxy/gold/?token=s3cret",
        "orders=ftp://ops:s3cret@proxy/order/",
    ] {
        let error = hq::cli::Cli::try_parse_from(["hq", "--subscribe", refused])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("--subscribe: "), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}

#[tokio::test]
async fn hqs_drain_shows_on_its_metrics_while_deliveries_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.metrics_port = Some(0);
    config.feed.retry.num_retries = 1_000;
    let hq = start_hq(config).await;
    // On HQ's own address (127.0.0.1 here), not every interface: IPv6's
    // loopback, which a listener on every interface takes, is refused.
    let metrics_addr = hq.metrics_addr().unwrap();
    assert!(
        tokio::net::TcpStream::connect(("::1", metrics_addr.port()))
            .await
            .is_err(),
        "METRICS_PORT on every interface"
    );
    let metrics = format!("http://{metrics_addr}/metrics");
    // Fails every delivery until told to take them.
    let (subscriber, open) = Subscriber::gated().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;

    let feed = hq.hq().feed().clone();
    let shutdown = tokio::spawn(hq.shutdown(Duration::from_secs(30)));
    // The delivery is still being retried, so the drain is its: it must
    // show from its start, not once serving stops after it.
    let client = reqwest::Client::new();
    let text = wait_until("HQ's metrics to show the drain", WAIT, async || {
        let text = client.get(&metrics).send().await.ok()?.text().await.ok()?;
        // Whole lines: the HELP line reads "interstella_draining 1 while …".
        text.lines()
            .any(|line| line == "interstella_draining 1")
            .then_some(text)
    })
    .await;
    assert!(
        text.lines().any(|line| line == "interstella_drains_total 1"),
        "{text}"
    );
    assert_eq!(feed.in_flight(), 1, "the delivery is still under way");
    assert!(!shutdown.is_finished());

    open.store(true, std::sync::atomic::Ordering::SeqCst);
    let reconciliation = shutdown.await.unwrap().unwrap();
    assert_eq!(reconciliation.totals.pending, 0);
    assert!(subscriber.notifications().len() > 1, "retried until taken");
}

/// A stop that waits for nothing (the launcher's, which has waited for the
/// deliveries itself) says what it reconciles without, and no "after 0ns".
#[tokio::test]
async fn a_stop_that_waits_for_nothing_says_what_is_left_without_a_zero_wait() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.retry.num_retries = 1_000;
    let hq = start_hq(config).await;
    let (subscriber, _open) = Subscriber::gated().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    let reconciliation = hq.shutdown(Duration::ZERO).await.unwrap();
    assert_eq!(reconciliation.totals.pending, 1);
    let said = logs.text();
    assert!(
        said.lines().any(|line| line
            .contains("publishes or deliveries still under way; reconciling without them")
            && line.contains("in_flight=1")),
        "{said}"
    );
    assert!(!said.contains("after 0ns"), "{said}");
}

#[tokio::test]
async fn an_order_published_while_hq_stops_is_refused_not_lost() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.retry.num_retries = 1_000;
    let hq = start_hq(config).await;
    // Fails every delivery until told to take them, so that HQ's drain,
    // and its serving, last while the test publishes.
    let (subscriber, open) = Subscriber::gated().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;

    // A publish whose body is still on its way when the stop begins.
    let order = r#"{"bundle": 2}"#;
    let mut slow = tokio::net::TcpStream::connect(hq.addr()).await.unwrap();
    let head = format!(
        "POST /topics/orders/publish HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        hq.hq().admin_token().expose(),
        order.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&order.as_bytes()[..1]).await.unwrap();

    let client = admin_client(&hq);
    let publish_url = url(&hq, "/topics/orders/publish");
    let shutdown = tokio::spawn(hq.shutdown(Duration::from_secs(30)));
    let refused = wait_until("HQ to refuse publishes once stopping", WAIT, async || {
        let response = client.post(&publish_url).body(order).send().await.ok()?;
        (response.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(response)
    })
    .await;
    assert!(
        refusal(refused, 503).await.contains("NOT published"),
        "the refusal says the order was not taken"
    );
    slow.write_all(&order.as_bytes()[1..]).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = slow.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    open.store(true, std::sync::atomic::Ordering::SeqCst);
    let reconciliation = shutdown.await.unwrap().unwrap();
    // The one order HQ answered 201 for, and no other.
    assert_eq!(reconciliation.totals.published, 1, "{reconciliation:?}");
    assert_eq!(reconciliation.totals.pending, 0);
}

/// Holds the ledger in `dir` as another writer would (an exclusive lock)
/// until the returned connection is dropped.
fn hold_the_ledger(dir: &std::path::Path) -> rusqlite::Connection {
    let holder = rusqlite::Connection::open(dir.join("hq-ledger.sqlite3")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    holder
}

/// A publish the ledger cannot record (another writer holds it past the
/// ledger's wait) is refused as not published, so its caller sends it
/// again, and nothing of it is delivered.
#[tokio::test]
async fn a_publish_the_ledger_cannot_record_is_503_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), true).await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let lock = hold_the_ledger(dir.path());
    let said = refusal(publish_answer(&hq, "orders", r#"{"bundle": 1}"#).await, 503).await;
    assert!(
        said.contains("could not record the order") && said.contains("NOT published: publish it again"),
        "{said}"
    );
    drop(lock);
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.published, 0, "{reconciliation:?}");
    assert!(subscriber.notifications().is_empty());
}

/// A publish whose write found the ledger's WAL gone after it committed
/// may be kept (SQLite copies the WAL it had open at the stop): not
/// "NOT published", but a 500 saying why, and nothing delivered.
#[tokio::test]
async fn a_publish_into_a_replaced_ledger_is_500_not_said_unpublished() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), true).await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    std::fs::remove_file(dir.path().join("hq-ledger.sqlite3-wal")).unwrap();
    let said = refusal(publish_answer(&hq, "orders", r#"{"bundle": 1}"#).await, 500).await;
    assert!(
        said.contains("deleted or replaced") && !said.contains("NOT published"),
        "{said}"
    );
    let _ = hq.shutdown(WAIT).await;
    assert!(subscriber.notifications().is_empty());
}

#[tokio::test]
async fn a_publish_its_caller_gave_up_on_is_still_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), true).await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    // Another writer holds the ledger, so the publish waits to record the
    // order; its caller stops waiting first (as a request that timed out).
    let lock = hold_the_ledger(dir.path());
    let feed = hq.hq().feed().clone();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        feed.publish(Topic::Orders, r#"{"bundle": 1}"#),
    )
    .await;
    assert!(gave_up.is_err(), "the publish was still waiting for the ledger");
    drop(lock);
    let delivered = wait_until("the order delivered all the same", WAIT, async || {
        subscriber.notifications().first().cloned()
    })
    .await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.published, 1, "{reconciliation:?}");
    assert_eq!(reconciliation.totals.pending, 0);
    assert!(delivered.body.contains("bundle"));
}

#[tokio::test]
async fn an_admin_publish_that_outlasts_its_request_is_answered_202_and_published_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.server.request_timeout = Duration::from_millis(1_500);
    let hq = start_hq(config).await;
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), true).await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    // Another writer holds the ledger past the request's deadline, so the
    // publish cannot record the order in time.
    let lock = hold_the_ledger(dir.path());
    let response = admin_client(&hq)
        .post(url(&hq, "/topics/orders/publish"))
        .body(r#"{"bundle": 1}"#)
        .send()
        .await
        .unwrap();
    // Not the serve loop's 503 "send it again": that would make a second order.
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "publishing", "{answer}");
    drop(lock);
    wait_until("the order delivered all the same", WAIT, async || {
        (subscriber.notifications().len() == 1).then_some(())
    })
    .await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.published, 1, "{reconciliation:?}");
    assert_eq!(reconciliation.totals.fulfilled + reconciliation.totals.lost, 1);
    assert_eq!(subscriber.notifications().len(), 1);
}

/// Subscribes an endpoint to `topic` that confirms, then accepts every
/// connection and never answers (a security group dropping packets).
/// Returns how many connections it has taken: one per delivery attempt,
/// as none is ever answered.
async fn hanging_subscriber(hq: &hq::RunningHq, topic: &str) -> Arc<std::sync::atomic::AtomicUsize> {
    let hanging = Subscriber::happy().await;
    subscribe_confirmed(hq, topic, &hanging.endpoint()).await;
    hanging.stop();
    let listener = wait_until("the address to be free again", WAIT, async || {
        tokio::net::TcpListener::bind(hanging.addr).await.ok()
    })
    .await;
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    accepted
}

#[tokio::test]
async fn endpoints_that_never_answer_do_not_stall_the_other_topics() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Attempts that hang keep their slots this long: longer than the test.
    config.feed.delivery_timeout = Duration::from_secs(60);
    let slots = config.feed.max_concurrent_deliveries;
    let hq = start_hq(config).await;
    // Two of them: with half the pool each (as before), they took it all.
    hanging_subscriber(&hq, "iridium").await;
    hanging_subscriber(&hq, "orders").await;
    let healthy = Subscriber::happy().await;
    subscribe_confirmed(&hq, "magnesite", &healthy.endpoint()).await;

    // More hanging deliveries than the feed has slots, on each.
    for _ in 0..slots {
        publish(&hq, "iridium", r#"{"iridium": 1}"#).await;
        publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    }
    let feed = hq.hq().feed().clone();
    wait_until("the hanging deliveries to take their slots", WAIT, async || {
        (feed.in_flight() >= slots * 2).then_some(())
    })
    .await;
    publish(&hq, "magnesite", r#"{"magnesite": 1}"#).await;
    wait_until("the other topic's order delivered", WAIT, async || {
        healthy.notifications().first().cloned()
    })
    .await;
}

#[tokio::test]
async fn deliveries_beyond_what_an_endpoint_may_have_waiting_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.delivery_timeout = Duration::from_secs(60);
    config.feed.max_waiting_per_subscription = 3;
    let hq = start_hq(config).await;
    hanging_subscriber(&hq, "iridium").await;
    for _ in 0..5 {
        publish(&hq, "iridium", r#"{"iridium": 1}"#).await;
    }
    let feed = hq.hq().feed().clone();
    // Two over the bound failed without an attempt (and were recorded);
    // three still wait.
    let stats = wait_until("two deliveries failed at once", WAIT, async || {
        let stats = feed.stats()[&Topic::Iridium];
        (stats.failed == 2 && feed.in_flight() == 3).then_some(stats)
    })
    .await;
    assert_eq!(
        (stats.published, stats.in_flight, stats.retried),
        (5, 3, 0),
        "{stats:?}"
    );
    // The ledger has their outcome: lost, not pending.
    let reconciliation = hq.hq().reconcile().await.unwrap();
    assert_eq!(
        (reconciliation.totals.lost, reconciliation.totals.pending),
        (2, 3),
        "{reconciliation:?}"
    );
}

#[tokio::test]
async fn only_the_admin_sees_subscription_arns_on_topics() {
    // On SNS a subscription's ARN is all its UnsubscribeURL needs.
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let arn = hq.hq().feed().subscriptions()[0].subscription_arn.clone();
    let public: serde_json::Value = reqwest::get(url(&hq, "/topics"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &public["topics"][0]["subscriptions"][0];
    assert_eq!(listed["state"], "confirmed", "{public}");
    assert!(listed.get("subscription_arn").is_none(), "{public}");
    assert!(!public.to_string().contains(&arn), "{public}");
    let admin = get_json(&hq, "/topics").await;
    assert_eq!(
        admin["topics"][0]["subscriptions"][0]["subscription_arn"],
        arn.as_str()
    );
    // A wrong credential is refused, as anywhere else: no quiet answer to
    // tell a guess from the credential by.
    let wrong = reqwest::Client::new()
        .get(url(&hq, "/topics"))
        .bearer_auth("not-the-admin-credential-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    hq.shutdown(WAIT).await.unwrap();
}

/// The portal's Remove: the admin deletes a subscription by its ARN; no
/// more orders reach it. Nobody else may, and an ARN of another topic (or
/// of no topic of HQ's) is no subscription of HQ's.
#[tokio::test]
async fn the_admin_removes_a_subscription_and_it_gets_no_more_orders() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let arn = hq.hq().feed().subscriptions()[0].subscription_arn.clone();
    let remove = |arn: &str| url(&hq, &format!("/subscriptions/{arn}"));

    let anyone = reqwest::Client::new().delete(remove(&arn)).send().await.unwrap();
    assert_eq!(anyone.status(), 401);
    let (_, id) = arn.rsplit_once(':').unwrap();
    for not_hqs in [
        format!("{}:{id}", Topic::Iridium.arn()),
        format!("arn:aws:sns:us-east-1:111111111111:orders:{id}"),
    ] {
        let refused = admin_client(&hq).delete(remove(&not_hqs)).send().await.unwrap();
        assert_eq!(refused.status(), 404, "{not_hqs}");
    }
    assert_eq!(hq.hq().feed().subscriptions().len(), 1, "still subscribed");

    let removed = admin_client(&hq).delete(remove(&arn)).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    let topics = get_json(&hq, "/topics").await;
    assert_eq!(
        topics["topics"][0]["subscriptions"],
        serde_json::json!([]),
        "{topics}"
    );
    let again = admin_client(&hq).delete(remove(&arn)).send().await.unwrap();
    assert_eq!(again.status(), 404, "removed already");

    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.unrouted, 1, "{reconciliation:?}");
    assert!(subscriber.notifications().is_empty(), "delivered after removal");
}

/// A removed subscription's delivery under way stops, retries and all:
/// nothing more is sent to it, and the order is given up (lost), not left
/// pending. (Its retries went on to the end, for hours with long delays.)
#[tokio::test]
async fn a_removed_subscription_is_sent_no_more_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Retried for as long as the test takes (up to 100 s), 20 ms apart.
    config.feed.retry.num_retries = 5_000;
    let hq = start_hq(config).await;
    let (busy, _never_opened) = Subscriber::gated().await;
    subscribe_confirmed(&hq, "orders", &busy.endpoint()).await;
    let arn = hq.hq().feed().subscriptions()[0].subscription_arn.clone();
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    wait_until("a few attempts", WAIT, async || {
        (busy.notifications().len() >= 3).then_some(())
    })
    .await;

    let removed = admin_client(&hq)
        .delete(url(&hq, &format!("/subscriptions/{arn}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    // Ended, so nothing more can be sent (an attempt under way at the
    // removal may still have landed).
    let feed = hq.hq().feed().clone();
    wait_until("the delivery given up", WAIT, async || {
        (feed.in_flight() == 0).then_some(())
    })
    .await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(
        (reconciliation.totals.lost, reconciliation.totals.pending),
        (1, 0),
        "{reconciliation:?}"
    );
}

#[tokio::test]
async fn an_endpoint_subscribed_twice_keeps_one_subscription_as_on_sns() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let first = hq.hq().feed().subscriptions();
    let again = subscribe(&hq, "orders", &subscriber.endpoint()).await;
    assert_eq!(again["subscription_arn"], first[0].subscription_arn, "{again}");
    assert_eq!(hq.hq().feed().subscriptions(), first, "still one subscription");
    // Another topic is another subscription.
    subscribe_confirmed(&hq, "iridium", &subscriber.endpoint()).await;
    assert_eq!(hq.hq().feed().subscriptions().len(), 2);

    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.published, 1);
    assert_eq!(subscriber.notifications().len(), 1, "delivered once");
}

#[tokio::test]
async fn a_confirmation_retried_to_an_endpoint_not_up_does_not_hold_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Retries that would take 30 s for a confirmation nobody answers.
    config.feed.retry.min_delay = Duration::from_secs(10);
    config.feed.retry.max_delay = Duration::from_secs(10);
    let hq = start_hq(config).await;
    let (down, _held) = nobody_listening();
    let nobody = format!("http://{down}/order/");
    subscribe(&hq, "orders", &nobody).await;
    let feed = hq.hq().feed();
    assert_eq!(feed.in_flight(), 0, "a confirmation is not an order in flight");
    let started = std::time::Instant::now();
    assert!(feed.drain(WAIT).await, "the drain waited for a confirmation");
    assert!(started.elapsed() < WAIT, "took {:?}", started.elapsed());
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}
/// Publishes `order` on `topic` and waits until `subscriber`, which has had
/// nothing yet, has it: one notification, with the MessageId the publish gave.
async fn publish_and_see_it_delivered(hq: &hq::RunningHq, subscriber: &Subscriber, topic: &str, order: &str) {
    let message_id = publish(hq, topic, order).await;
    wait_until("the notification", WAIT, async || {
        (subscriber.notifications().len() == 1).then_some(())
    })
    .await;
    assert_eq!(subscriber.notifications()[0].envelope().message_id, message_id);
}

/// The subscriptions `GET /topics` lists: (topic, subscription ARN, state).
async fn listed(hq: &hq::RunningHq) -> Vec<(String, String, String)> {
    let topics = crate::support::get_json(hq, "/topics").await;
    let mut listed = Vec::new();
    for topic in topics["topics"].as_array().unwrap() {
        for s in topic["subscriptions"].as_array().unwrap() {
            listed.push((
                topic["name"].as_str().unwrap().to_owned(),
                s["subscription_arn"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            ));
        }
    }
    listed
}

/// The SubscribeURLs of the confirmations `subscriber` was sent, in order.
fn subscribe_urls(subscriber: &Subscriber) -> Vec<String> {
    subscriber
        .received()
        .iter()
        .filter(|r| r.envelope().message_type == MessageType::SubscriptionConfirmation)
        .map(|r| r.envelope().subscribe_url.unwrap())
        .collect()
}

#[tokio::test]
async fn a_subscription_not_confirmed_in_time_is_deleted_as_on_sns_and_its_token_refused() {
    const EXPIRY: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Three days on SNS and by default.
    assert_eq!(config.feed.pending_expiry, Duration::from_secs(3 * 24 * 3600));
    config.feed.pending_expiry = EXPIRY;
    let hq = start_hq(config).await;
    let silent = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    let confirming = Subscriber::happy().await;
    let pending = subscribe(&hq, "orders", &silent.endpoint()).await;
    // Made by the time the answer came: it expires by then plus the expiry.
    let expires_by = tokio::time::Instant::now() + EXPIRY;
    let pending_arn = pending["subscription_arn"].as_str().unwrap().to_owned();
    subscribe_confirmed(&hq, "iridium", &confirming.endpoint()).await;
    let subscribe_url = wait_until("the SubscriptionConfirmation", WAIT, async || {
        subscribe_urls(&silent).first().cloned()
    })
    .await;
    assert!(
        listed(&hq).await.contains(&(
            "orders".into(),
            pending_arn.clone(),
            "pending_confirmation".into()
        )),
        "listed while pending"
    );

    // What is waited for here is time itself: nothing may look at the
    // subscriptions before the token is tried, or that look, not the
    // confirmation's own check, would be what deletes the expired one.
    tokio::time::sleep_until(expires_by).await;
    // Its token confirms nothing now: the answer to a token never given.
    let message = refusal(reqwest::get(&subscribe_url).await.unwrap(), 404).await;
    assert!(
        message.contains("no subscription awaits confirmation"),
        "{message}"
    );
    // Deleted; the confirmed one, as old, stays.
    let left = listed(&hq).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].0.as_str(), left[0].2.as_str()), ("iridium", "confirmed"));
    assert!(!left.iter().any(|(_, arn, _)| *arn == pending_arn), "{left:?}");

    // Subscribing again makes a new subscription, with a new token.
    let again = subscribe(&hq, "orders", &silent.endpoint()).await;
    assert_ne!(again["subscription_arn"], pending_arn.as_str());
    let urls = wait_until("the new SubscriptionConfirmation", WAIT, async || {
        let urls = subscribe_urls(&silent);
        (urls.len() == 2).then_some(urls)
    })
    .await;
    assert_ne!(urls[1], subscribe_url);
    let confirmed = reqwest::get(&urls[1]).await.unwrap();
    assert_eq!(confirmed.status(), 200);
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_start_up_subscription_that_expired_unconfirmed_is_made_anew_and_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    // The first subscription expires while its confirmations are being sent.
    let mut config = config_subscribing(dir.path(), &subscriber.endpoint(), Duration::from_millis(50));
    config.feed.pending_expiry = Duration::from_millis(500);
    let hq = start_hq(config).await;

    // Sent again after its expiry: a new subscription with a new token.
    wait_until("a confirmation of a second subscription", WAIT, async || {
        let mut urls = subscribe_urls(&subscriber);
        urls.dedup();
        (urls.len() >= 2).then_some(())
    })
    .await;
    subscriber.set_confirming(true);
    wait_until("the start-up subscription confirmed", WAIT, async || {
        let listed = listed(&hq).await;
        (listed.len() == 1 && listed[0].2 == "confirmed").then_some(())
    })
    .await;
    publish_and_see_it_delivered(&hq, &subscriber, "orders", r#"{"bundle": 1}"#).await;
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn start_up_confirmations_come_ever_further_apart_and_confirm_once_the_endpoint_does() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    let mut config = config(dir.path());
    config.subscriptions = vec![(Topic::Orders, subscriber.endpoint().parse().unwrap())];
    let first = Duration::from_millis(50);
    config.subscribe_every = first;
    let hq = start_hq(config).await;

    // Sent at 0, 0.05, 0.15, 0.35, 0.75, 1.55 s: each wait twice the one
    // before (a sleep never ends early; a quarter off for the sends' own
    // time on a busy machine).
    let arrivals = wait_until("six confirmations", WAIT, async || {
        let received = subscriber.received();
        (received.len() >= 6).then(|| received.iter().map(|r| r.at).collect::<Vec<_>>())
    })
    .await;
    for (i, pair) in arrivals[..6].windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let wait = first * 2u32.pow(i as u32);
        assert!(gap >= wait * 3 / 4, "wait {i}: {gap:?}, expected about {wait:?}");
    }
    // Once the endpoint confirms, the next send (at most the wait reached
    // then, here 3.2 s) confirms it.
    subscriber.set_confirming(true);
    wait_until(
        "the start-up subscription confirmed",
        Duration::from_secs(10),
        async || {
            (hq.hq().feed().subscriptions()[0].state == hq::feed::SubscriptionState::Confirmed).then_some(())
        },
    )
    .await;
    hq.shutdown(WAIT).await.unwrap();
}

/// A run stopped without its drain (killed, out of memory) leaves its
/// deliveries under retry unfinished and prints no reconciliation, and the
/// next run does not retry them: the next HQ on that ledger says so at
/// start, so those orders are not lost without a word.
#[tokio::test]
async fn the_next_hq_says_what_a_run_killed_left_unaccounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let token = "an-admin-token-for-this-test";
    let mut env = binary_env(dir.path());
    env.insert(hq::admin::TOKEN_ENV.into(), token.into());
    let exe = hq_binary();
    let mut killed = ServiceProcess::start(exe, &env);
    let base = format!("http://{}", killed.wait_listening().await);
    // Publishing itself, HQ names its stand-in, for the services' setting.
    let listening = killed.seen.iter().find(|line| line.contains("HQ listening on"));
    assert!(
        listening.is_some_and(|line| line.contains(&format!("SNS stand-in (AWS_ENDPOINT_URL_SNS) {base}/"))),
        "{listening:?}"
    );
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth(token).send();
    let client = reqwest::Client::new();

    // Answers 503 to every delivery, so each order is being retried.
    let (refusing, _never_opened) = Subscriber::gated().await;
    let subscribing = client
        .post(format!("{base}/topics/iridium/subscriptions"))
        .json(&serde_json::json!({ "endpoint": refusing.endpoint() }));
    assert_eq!(admin(subscribing).await.unwrap().status(), 201);
    // Published until two reach the subscription once it is confirmed
    // (those published before reached nobody: unrouted, not unaccounted for).
    let mut routed = 0;
    wait_until("two orders routed to the subscription", WAIT, async || {
        let publishing = client
            .post(format!("{base}/topics/iridium/publish"))
            .body(r#"{"iridium": 1}"#);
        let published: serde_json::Value = admin(publishing).await.unwrap().json().await.unwrap();
        routed += published["subscribers"].as_u64().unwrap();
        (routed >= 2).then_some(())
    })
    .await;
    wait_until("both orders refused once", WAIT, async || {
        (refusing.notifications().len() >= 2).then_some(())
    })
    .await;
    killed.kill().await;

    let mut next = ServiceProcess::start(exe, &env);
    next.wait_line(
        "the last run that published here left orders unaccounted for, as of this start: 2 never finished delivering",
        WAIT,
    )
    .await;
}

/// HQ says where its ledger is, in full, and whether it is new: the data
/// directory's default is relative, and an HQ started elsewhere begins a
/// new ledger, without the idempotency keys of the old one. Then which
/// names it answers to.
#[tokio::test]
async fn hq_says_where_its_ledger_is_and_whether_it_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let env = binary_env(dir.path());
    let ledger = dir.path().join("hq-ledger.sqlite3");
    for said in ["(new)", "(kept from an earlier run)"] {
        let mut hq = ServiceProcess::start(hq_binary(), &env);
        hq.wait_listening().await;
        // And the names it answers to (a 421 says how to add one).
        let line = format!(
            "ledger {} {said}; answering to localhost, IP addresses",
            ledger.display()
        );
        assert!(
            hq.seen.iter().any(|seen| seen.contains(&line)),
            "no {line:?} in {:#?}",
            hq.seen
        );
        hq.terminate().await;
        assert!(hq.wait_exit(WAIT).await.success(), "{:#?}", hq.seen);
    }
}

/// Waits until the `hq` binary at `base` answers a `/reconciliation` for
/// which `done` holds.
async fn wait_for_reconciliation(base: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let client = reqwest::Client::new();
    wait_until(what, WAIT, async || {
        let reconciliation: serde_json::Value = client
            .get(format!("{base}/reconciliation"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        done(&reconciliation).then_some(())
    })
    .await;
}

/// A generator publishing to a topic nobody is subscribed to says so, once:
/// after a restart HQ's feed has forgotten the subscriptions made through
/// the portal, and its orders went to nobody without a word.
#[tokio::test]
async fn a_generator_whose_orders_reach_nobody_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = binary_env(dir.path());
    env.insert("HQ_RATES".into(), "orders=50".into());
    let mut hq = ServiceProcess::start(hq_binary(), &env);
    let base = format!("http://{}", hq.wait_listening().await);
    // The generator may say it before HQ says where it listens.
    hq.said_or_wait_line("generated orders reach nobody", WAIT).await;
    wait_for_reconciliation(&base, "ten generated orders published", |r| {
        r["unrouted"].as_u64() >= Some(10)
    })
    .await;
    hq.terminate().await;
    assert!(hq.wait_exit(WAIT).await.success(), "{:#?}", hq.seen);
    let said = hq
        .seen
        .iter()
        .filter(|line| line.contains("generated orders reach nobody"))
        .count();
    assert_eq!(said, 1, "{:#?}", hq.seen);
}

/// Under JSON logs (ECS' awslogs takes each line as one event), `hq`'s
/// stop says its reconciliation as events of their own, counts as fields,
/// and then that it stopped: every line JSON, none of the printed JSON's.
#[tokio::test]
async fn under_json_logs_the_reconciliation_at_the_stop_is_events_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = binary_env(dir.path());
    env.insert("LOG_FORMAT".into(), "json".into());
    env.insert("HQ_RATES".into(), "orders=50".into());
    let mut hq = ServiceProcess::start(hq_binary(), &env);
    let base = format!("http://{}", hq.wait_listening().await);
    wait_for_reconciliation(&base, "a generated order published", |r| {
        r["published"].as_u64() > Some(0)
    })
    .await;
    hq.terminate().await;
    assert!(hq.wait_exit(WAIT).await.success(), "{:#?}", hq.seen);

    let lines: Vec<serde_json::Value> = hq
        .seen
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event ({e}): {line:?}")))
        .collect();
    let message = |line: &serde_json::Value| line["message"].as_str().unwrap_or_default().to_owned();
    let all = lines
        .iter()
        .find(|line| message(line).starts_with("reconciliation of this run") && line["topic"] == "all")
        .unwrap_or_else(|| panic!("no reconciliation event: {:#?}", hq.seen));
    assert!(all["published"].as_u64() > Some(0), "{all}");
    assert!(all["lost"].is_u64(), "{all}");
    assert!(
        lines
            .iter()
            .any(|line| message(line).starts_with("reconciliation of this run") && line["topic"] == "orders"),
        "{:#?}",
        hq.seen
    );
    assert_eq!(
        lines.last().map(message).as_deref(),
        Some("HQ stopped"),
        "{:#?}",
        hq.seen
    );
}

/// `docker compose up`: HQ comes up before the services it subscribes. Its
/// generator waits until they confirm, so no order of the run reaches
/// nobody (unrouted, the dashboard amber).
#[tokio::test]
async fn the_generator_waits_for_the_start_up_subscriptions_to_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    let mut config = config_subscribing(dir.path(), &subscriber.endpoint(), Duration::from_millis(50));
    config.generator.rates = [(Topic::Orders, 50.0)].into();
    let hq = start_hq(config).await;

    // Not confirmed at first: two confirmations go unanswered meanwhile.
    wait_until("a second confirmation sent", WAIT, async || {
        (subscribe_urls(&subscriber).len() >= 2).then_some(())
    })
    .await;
    subscriber.set_confirming(true);
    wait_until("a generated order delivered", WAIT, async || {
        subscriber.notifications().first().cloned()
    })
    .await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert!(reconciliation.totals.published > 0, "{reconciliation:?}");
    assert_eq!(reconciliation.totals.unrouted, 0, "{reconciliation:?}");
}

/// A full disk fails every tick of the generator. One line says so at once,
/// the failures after it are counted into the next line, not a line each
/// (one per tick per topic was 32,000 lines an hour), and a line says when
/// it publishes again.
#[tokio::test]
async fn a_generator_that_cannot_publish_says_so_once_per_window_not_at_every_tick() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.generator.rates = [(Topic::Orders, 200.0)].into();
    config.generator.failures_reported_every = Duration::from_millis(300);
    let hq = start_hq(config).await;
    wait_until("a generated order published", WAIT, async || {
        (hq.hq().feed().stats()[&Topic::Orders].published > 0).then_some(())
    })
    .await;
    // The ledger refuses every write, as on a full disk (see fulfillment.rs).
    hq.hq().ledger().set_query_only(true).await.unwrap();
    let counted = |wanted: &str| -> Vec<u64> {
        logs.text()
            .lines()
            .filter(|line| line.contains(wanted))
            .map(|line| {
                let (_, count) = line.split_once(" failed=").expect(line);
                count.split(' ').next().unwrap().parse().expect(line)
            })
            .collect()
    };
    let failing = "could not publish a generated order";
    wait_until("a second line about the failures", WAIT, async || {
        (counted(failing).len() >= 2).then_some(())
    })
    .await;
    hq.hq().ledger().set_query_only(false).await.unwrap();
    let again = wait_until("the line saying it publishes again", WAIT, async || {
        counted("publishing generated orders again").first().copied()
    })
    .await;
    let lines = counted(failing);
    assert_eq!(lines[0], 1, "the first failure is said at once: {lines:?}");
    // 300 ms at 200 orders/s: about 60 held back into the second line
    // (fewer on a loaded machine, but never one a line).
    assert!(lines[1] >= 2, "failures held back, not a line each: {lines:?}");
    let failures: u64 = lines.iter().sum::<u64>() + again;
    assert!(
        (lines.len() as u64) * 2 <= failures,
        "{} lines for {failures} failures",
        lines.len()
    );
    hq.shutdown(WAIT).await.unwrap();
}

/// The bound is on deliveries waiting at once, not on all a subscription
/// ever had: each one that ends makes room again, or an endpoint would
/// fail every order once it had taken that many.
#[tokio::test]
async fn a_finished_delivery_makes_room_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.max_waiting_per_subscription = 2;
    let hq = start_hq(config).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let feed = hq.hq().feed().clone();
    for bundle in 1..=5 {
        publish(&hq, "orders", &format!("{{\"bundle\": {bundle}}}")).await;
        // Delivered and its task ended: nothing waits for the subscription.
        wait_until("the order delivered", WAIT, async || {
            let stats = feed.stats()[&Topic::Orders];
            (stats.delivered + stats.failed == bundle && feed.in_flight() == 0).then_some(())
        })
        .await;
    }
    let stats = feed.stats()[&Topic::Orders];
    assert_eq!((stats.delivered, stats.failed), (5, 0), "{stats:?}");
    assert_eq!(subscriber.notifications().len(), 5);
    hq.shutdown(WAIT).await.unwrap();
}

/// A feed told to stop publishing (the launcher's stop) refuses orders
/// rather than take ones its drain may not wait for.
#[tokio::test]
async fn a_feed_told_to_stop_publishing_refuses_orders() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let feed = hq.hq().feed().clone();
    feed.publish(Topic::Orders, r#"{"bundle": 1}"#).await.unwrap();
    feed.stop_publishing();
    let refused = feed.publish(Topic::Orders, r#"{"bundle": 2}"#).await;
    assert!(
        matches!(refused, Err(hq::feed::FeedError::Stopping)),
        "{refused:?}"
    );
    assert!(feed.drain(WAIT).await);
    assert_eq!(hq.hq().reconcile().await.unwrap().totals.published, 1);
    hq.shutdown(WAIT).await.unwrap();
}

/// One subscription's attempts run side by side, up to a quarter of the
/// feed's: one at a time, an endpoint slower than the orders coming falls
/// behind until its deliveries are turned away.
#[tokio::test]
async fn a_subscription_has_a_quarter_of_the_deliveries_under_way_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.feed.delivery_timeout = Duration::from_secs(60);
    // 12: a quarter is 3, where a third would be 4 and a half 6.
    config.feed.max_concurrent_deliveries = 12;
    let hq = start_hq(config).await;
    let attempts = hanging_subscriber(&hq, "iridium").await;
    for _ in 0..6 {
        publish(&hq, "iridium", r#"{"iridium": 1}"#).await;
    }
    let under_way = || attempts.load(std::sync::atomic::Ordering::SeqCst);
    wait_until("three attempts under way at once", WAIT, async || {
        (under_way() >= 3).then_some(())
    })
    .await;
    // And no fourth starts while they hang: watched for a while, since
    // what must not happen gives no sign to wait for.
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_millis(500) {
        assert_eq!(under_way(), 3, "more than a quarter of the slots");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The generator publishes at the rate it is given: at 50 orders/s on a
/// topic, twenty are published well within the wait (a period worked out
/// wrong, 1 s or 50 s instead of 20 ms, gave a handful at most).
#[tokio::test]
async fn the_generator_publishes_at_the_rate_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut hq = start_hq(config(dir.path())).await;
    let generator = GeneratorConfig {
        rates: [(Topic::Iridium, 50.0)].into(),
        max_quantity: 3,
        ..GeneratorConfig::default()
    };
    hq.generate(&generator).await;
    let feed = hq.hq().feed().clone();
    let started = std::time::Instant::now();
    wait_until("twenty generated orders", WAIT, async || {
        (feed.stats()[&Topic::Iridium].published >= 20).then_some(())
    })
    .await;
    // Twenty at 50/s take 0.4 s; at 4/s (a period worked out as 250 ms)
    // they took five. Generous for a loaded machine, and still a rate.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "twenty orders took {took:?}");
    hq.stop_generator().await;
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert!(reconciliation.totals.published >= 20, "{reconciliation:?}");
}

/// A topic at 0 orders/s gets no generated order, while the others get
/// theirs (a rate of 0 taken for a period of a day published one order at
/// once).
#[tokio::test]
async fn a_topic_at_zero_orders_a_second_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut hq = start_hq(config(dir.path())).await;
    let generator = GeneratorConfig {
        rates: [(Topic::Orders, 0.0), (Topic::Iridium, 50.0)].into(),
        max_quantity: 3,
        ..GeneratorConfig::default()
    };
    hq.generate(&generator).await;
    let feed = hq.hq().feed().clone();
    wait_until("five orders generated on the other topic", WAIT, async || {
        (feed.stats()[&Topic::Iridium].published >= 5).then_some(())
    })
    .await;
    hq.stop_generator().await;
    // Publishes the generator started are finished, and so counted.
    assert!(feed.drain(WAIT).await);
    assert_eq!(feed.stats()[&Topic::Orders].published, 0);
    hq.shutdown(WAIT).await.unwrap();
}

/// A start-up subscription unsubscribed while it waits for its endpoint is
/// abandoned: the generator, which waited for it, starts at once, and no
/// subscription is left. (Taken for one that expired meanwhile, its
/// confirmations, which no token confirms any more, went on being sent,
/// and the generator waited its full minute.)
#[tokio::test]
async fn a_start_up_subscription_unsubscribed_while_pending_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::start(Arc::new(|_| StatusCode::OK), false).await;
    let mut config = config_subscribing(dir.path(), &subscriber.endpoint(), Duration::from_millis(50));
    config.generator.rates = [(Topic::Orders, 50.0)].into();
    let hq = start_hq(config).await;
    let feed = hq.hq().feed().clone();
    wait_until("a confirmation sent", WAIT, async || {
        (!subscribe_urls(&subscriber).is_empty()).then_some(())
    })
    .await;
    let arn = feed.subscriptions()[0].subscription_arn.clone();

    let unsubscribe = url::Url::parse_with_params(
        &url(&hq, "/"),
        [("Action", "Unsubscribe"), ("SubscriptionArn", arn.as_str())],
    )
    .unwrap();
    let unsubscribed = admin_client(&hq).get(unsubscribe).send().await.unwrap();
    assert_eq!(unsubscribed.status(), 200);
    // Abandoned, so the generator no longer waits for it (a minute otherwise).
    wait_until("a generated order", WAIT, async || {
        (feed.stats()[&Topic::Orders].published > 0).then_some(())
    })
    .await;
    assert!(feed.subscriptions().is_empty(), "{:?}", feed.subscriptions());
    let reconciliation = hq.shutdown(WAIT).await.unwrap();
    assert_eq!(reconciliation.totals.unrouted, reconciliation.totals.published);
}

/// A start-up subscription that expires while a confirmation is under way
/// (an endpoint slow to answer it) is made anew and confirms, not
/// abandoned: that send's own subscription is gone by its end, as one
/// unsubscribed would be, but it was deleted for its age.
#[tokio::test]
async fn a_start_up_subscription_that_expired_during_a_send_is_made_anew() {
    let dir = tempfile::tempdir().unwrap();
    // Holds its first confirmation until released, then confirms the next.
    let released = tokio_util::sync::CancellationToken::new();
    let confirmations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/order/",
        axum::routing::post({
            let (released, confirmations) = (released.clone(), Arc::clone(&confirmations));
            move |body: String| async move {
                let envelope: Envelope = serde_json::from_str(&body).unwrap();
                if confirmations.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    released.cancelled().await;
                } else {
                    reqwest::get(envelope.subscribe_url.unwrap()).await.unwrap();
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/order/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut config = config_subscribing(dir.path(), &endpoint, Duration::from_millis(50));
    config.feed.pending_expiry = Duration::from_millis(300);
    let hq = start_hq(config).await;
    let feed = hq.hq().feed().clone();

    wait_until("the first confirmation held", WAIT, async || {
        (confirmations.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    wait_until("its subscription expired and deleted", WAIT, async || {
        feed.subscriptions().is_empty().then_some(())
    })
    .await;
    released.cancel();
    wait_until("a new subscription confirmed", WAIT, async || {
        let listed = listed(&hq).await;
        (listed.len() == 1 && listed[0].2 == "confirmed").then_some(())
    })
    .await;
    hq.shutdown(WAIT).await.unwrap();
}

/// A trace context published with an order (the `traceparent` header of
/// `POST /topics/…/publish`) reaches the subscriber as SNS carries it, a
/// String MessageAttribute, and an order published without one carries no
/// `MessageAttributes` at all, as SNS omits the key.
#[tokio::test]
async fn a_published_trace_context_reaches_the_subscriber_as_a_message_attribute() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "orders", &subscriber.endpoint()).await;
    let traced = admin_client(&hq)
        .post(url(&hq, "/topics/orders/publish"))
        .header("traceparent", TRACEPARENT)
        .body(r#"{"bundle": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 201);
    publish(&hq, "orders", r#"{"bundle": 2}"#).await;
    let delivered = wait_until("both orders delivered", WAIT, async || {
        let notifications = subscriber.notifications();
        (notifications.len() == 2).then_some(notifications)
    })
    .await;
    let body_of = |bundle: &str| {
        let found = delivered.iter().find(|d| d.envelope().message.contains(bundle));
        let body: serde_json::Value = serde_json::from_str(&found.unwrap().body).unwrap();
        body
    };
    let with = body_of("\"bundle\": 1");
    assert_eq!(
        with["MessageAttributes"]["traceparent"],
        serde_json::json!({"Type": "String", "Value": TRACEPARENT}),
        "{with}"
    );
    let without = body_of("\"bundle\": 2");
    assert!(without.get("MessageAttributes").is_none(), "{without}");
    hq.shutdown(WAIT).await.unwrap();
}
