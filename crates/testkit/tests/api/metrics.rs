//! `GET /metrics` on a port of its own: orders by route and outcome, their
//! latency, calls downstream by target and outcome, calls in flight.

use contracts::fulfillment::HOOK_SECRET_HEADER;
use contracts::order_id::ORDER_ID_HEADER;
use platform::{Metrics, TrustConfig};
use testkit::spawn::{TEST_HOOK_SECRET, monolith_config};
use testkit::{ApiBehaviour, FakeApi};
use tokio::net::TcpListener;

const JSON: Option<&str> = Some("application/json");

/// Serves `router` and `metrics` on two loopback ports; returns their addresses.
async fn serve(router: axum::Router, metrics: &Metrics) -> (String, String) {
    let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = (
        format!("http://{}", service.local_addr().unwrap()),
        format!("http://{}", exporter.local_addr().unwrap()),
    );
    tokio::spawn(platform::serve(service, router, std::future::pending()));
    tokio::spawn(platform::metrics::serve(exporter, metrics.clone()));
    urls
}

/// A monolith calling `api` that trusts `sns` as its SNS stand-in, with
/// `metrics`; its address.
async fn monolith_trusting(sns: &testkit::fake_sns::FakeSns, api: &FakeApi, metrics: &Metrics) -> String {
    let trust = TrustConfig {
        sns_stand_in: Some(sns.base.clone()),
        ..TrustConfig::default()
    };
    let router = monolith::router_with_metrics(monolith_config(&api.url, trust), metrics).unwrap();
    serve(router, metrics).await.0
}

/// A monolith's router calling a fake API, counting in its own metrics.
async fn monolith_counting() -> (FakeApi, Metrics, axum::Router) {
    let api = FakeApi::start().await;
    let metrics = Metrics::new();
    let router =
        monolith::router_with_metrics(monolith_config(&api.url, TrustConfig::default()), &metrics).unwrap();
    (api, metrics, router)
}

async fn post(client: &reqwest::Client, url: &str, body: &'static str) -> u16 {
    let request = client.post(url).header("content-type", JSON.unwrap_or_default());
    request.body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_monolith_counts_orders_and_api_calls() {
    let (api, metrics, router) = monolith_counting().await;
    let (service, exporter) = serve(router, &metrics).await;
    let client = reqwest::Client::new();
    let order = format!("{service}/order/");
    assert_eq!(post(&client, &order, r#"{"Message":{"bundle":"2"}}"#).await, 200);
    assert_eq!(post(&client, &order, r#"{"Message":{"gold":"2"}}"#).await, 400);
    api.behave(ApiBehaviour::Fail(500));
    assert_eq!(post(&client, &order, r#"{"Message":{"bundle":"1"}}"#).await, 502);
    // The id of a direct order went to the API with it.
    assert!(
        api.received()[0]
            .header(ORDER_ID_HEADER)
            .is_some_and(|id| id.len() == 36)
    );

    let scrape = client.get(format!("{exporter}/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let content_type = scrape.headers()["content-type"].to_str().unwrap().to_owned();
    // OpenMetrics, as written: counters typed without `_total`, `# UNIT`.
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = scrape.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE interstella_orders counter\n"), "{text}");
    for expected in [
        r#"interstella_orders_total{route="/order/",outcome="fulfilled"} 1"#,
        r#"interstella_orders_total{route="/order/",outcome="refused"} 1"#,
        r#"interstella_orders_total{route="/order/",outcome="failed"} 1"#,
        r#"interstella_orders_total{route="/fulfill/",outcome="fulfilled"} 0"#,
        r#"interstella_order_duration_seconds_count{route="/order/"} 3"#,
        r#"interstella_order_duration_seconds_bucket{le="+Inf",route="/order/"} 3"#,
        r#"interstella_downstream_calls_total{target="fulfillment API",outcome="ok"} 1"#,
        r#"interstella_downstream_calls_total{target="fulfillment API",outcome="status"} 1"#,
        r#"interstella_downstream_duration_seconds_count{target="fulfillment API"} 2"#,
        r#"interstella_downstream_in_flight{target="fulfillment API"} 0"#,
        "interstella_sns_verifications_total{result=\"verified\"} 0",
        "interstella_sns_certificate_fetches_total 0",
        "interstella_drains_total 0",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "no line {expected:?} in:\n{text}"
        );
    }
    // Only on its own port: the service's port (the ALB's) has no /metrics.
    let on_service = client.get(format!("{service}/metrics")).send().await.unwrap();
    assert_eq!(on_service.status(), 404);
}

#[tokio::test]
async fn a_call_the_drain_cuts_short_is_counted_failed_and_a_wrong_method_not_at_all() {
    let (api, metrics, router) = monolith_counting().await;
    api.behave(ApiBehaviour::Hang);
    let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fulfill/", service.local_addr().unwrap());
    // A drain shorter than the API call's timeout: the glue hook's call,
    // started with time enough (an order is not started without), is cut
    // short when the drain gives up on its connection.
    let limits = platform::ServerLimits {
        drain_timeout: std::time::Duration::from_millis(200),
        ..platform::ServerLimits::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(platform::serve_with(service, router, limits, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status().as_u16(), 405);
    let hook_call = client
        .post(&url)
        .header(HOOK_SECRET_HEADER, TEST_HOOK_SECRET)
        .body(r#"{"iridium": 1}"#)
        .send();
    let hook_call = tokio::spawn(hook_call);
    let in_flight = r#"interstella_downstream_in_flight{target="fulfillment API"} 1"#;
    testkit::wait_until(
        "the hook's call to the API",
        std::time::Duration::from_secs(5),
        async || {
            metrics
                .render()
                .lines()
                .any(|line| line == in_flight)
                .then_some(())
        },
    )
    .await;
    // The drain drops the hook's future, its call to the API with it.
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    assert!(hook_call.await.unwrap().is_err(), "the connection was closed");
    let text = metrics.render();
    for expected in [
        r#"interstella_orders_total{route="/fulfill/",outcome="failed"} 1"#,
        r#"interstella_orders_total{route="/fulfill/",outcome="refused"} 0"#,
        r#"interstella_order_duration_seconds_count{route="/fulfill/"} 1"#,
        r#"interstella_downstream_calls_total{target="fulfillment API",outcome="timeout"} 1"#,
        r#"interstella_downstream_in_flight{target="fulfillment API"} 0"#,
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "no line {expected:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn subscription_confirmations_count_their_call_to_the_subscribe_url() {
    let api = FakeApi::start().await;
    let sns = testkit::fake_sns::FakeSns::start().await;
    let metrics = Metrics::new();
    let service = monolith_trusting(&sns, &api, &metrics).await;
    let mut envelope = sns.envelope(
        contracts::MessageType::SubscriptionConfirmation,
        testkit::fake_sns::ORDERS_TOPIC,
        "You have chosen to subscribe",
    );
    sns.sign(&mut envelope, contracts::SignatureVersion::V2);
    let answer = reqwest::Client::new()
        .post(format!("{service}/order/"))
        .header("x-amz-sns-message-type", "SubscriptionConfirmation")
        .body(serde_json::to_string(&envelope).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(sns.confirmations(), 1);
    let text = metrics.render();
    for expected in [
        r#"interstella_downstream_calls_total{target="SNS SubscribeURL",outcome="ok"} 1"#,
        // A confirmation is no order.
        r#"interstella_orders_total{route="/order/",outcome="fulfilled"} 0"#,
        r#"interstella_order_duration_seconds_count{route="/order/"} 0"#,
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "no line {expected:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn sns_verifications_are_counted_verified_refused_or_unavailable() {
    use contracts::SignatureVersion::V2;
    use testkit::fake_sns::{FakeSns, ORDERS_TOPIC, delivery_headers};
    let api = FakeApi::start().await;
    let sns = FakeSns::start().await;
    let metrics = Metrics::new();
    let service = monolith_trusting(&sns, &api, &metrics).await;
    let genuine = sns.notification(r#"{"bundle": 1}"#, V2);
    // A forgery: the signed Message changed.
    let mut forged = sns.notification(r#"{"bundle": 1}"#, V2);
    forged.message = r#"{"bundle": 1000}"#.into();
    // Signed, but naming a certificate the stand-in does not have: a
    // certificate SNS may yet serve, not a forgery.
    let mut unavailable = sns.envelope(
        contracts::MessageType::Notification,
        ORDERS_TOPIC,
        r#"{"bundle": 1}"#,
    );
    let missing = sns
        .base
        .join("/SimpleNotificationService-00000000000000000000000000000000.pem")
        .unwrap();
    testkit::TestSigner::from_pem(testkit::keys::TEST_KEY_PEM, missing.as_str())
        .unwrap()
        .sign(&mut unavailable, V2);
    let client = reqwest::Client::new();
    for (envelope, status) in [(&genuine, 200), (&forged, 403), (&unavailable, 503)] {
        let mut request = client
            .post(format!("{service}/order/"))
            .header("content-type", contracts::sns::CONTENT_TYPE)
            .body(serde_json::to_string(envelope).unwrap());
        for (name, value) in delivery_headers(envelope) {
            request = request.header(name, value);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{envelope:?}");
    }
    assert_eq!(api.count(), 1);
    let text = metrics.render();
    for expected in [
        r#"interstella_sns_verifications_total{result="verified"} 1"#,
        r#"interstella_sns_verifications_total{result="refused"} 1"#,
        r#"interstella_sns_verifications_total{result="unavailable"} 1"#,
        // The forgery names the genuine certificate, cached by then; the
        // missing one is fetched (and fails), as the genuine one was.
        "interstella_sns_certificate_cache_hits_total 1",
        "interstella_sns_certificate_fetches_total 2",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "no line {expected:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn an_answer_marked_replayed_is_not_one_more_fulfillment() {
    use axum::response::IntoResponse as _;
    let metrics = Metrics::new();
    // As HQ's /receiving/ answers a repeated idempotency key.
    let answer = |replayed: bool| async move {
        let mut response = "recorded".into_response();
        if replayed {
            response.extensions_mut().insert(platform::metrics::Replayed);
        }
        response
    };
    let router = axum::Router::new()
        .route(
            "/first",
            metrics.order_route("/first/", axum::routing::post(move || answer(false))),
        )
        .route(
            "/again",
            metrics.order_route("/again/", axum::routing::post(move || answer(true))),
        );
    let (service, _) = serve(router, &metrics).await;
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &format!("{service}/first/"), "{}").await, 200);
    assert_eq!(post(&client, &format!("{service}/again/"), "{}").await, 200);
    let text = metrics.render();
    for expected in [
        r#"interstella_orders_total{route="/first/",outcome="fulfilled"} 1"#,
        r#"interstella_orders_total{route="/again/",outcome="fulfilled"} 0"#,
        r#"interstella_orders_total{route="/again/",outcome="replayed"} 1"#,
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "no line {expected:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_redelivery_the_api_had_is_answered_and_counted_as_a_repeat_on_every_hop() {
    use contracts::SignatureVersion::V2;
    use contracts::fulfillment::REPLAYED_HEADER;
    use platform::reply::ORDER_FULFILLED;
    use testkit::fake_sns::{FakeSns, delivery_headers};
    let api = FakeApi::start().await;
    let sns = FakeSns::start().await;
    let (monolith_metrics, iridium_metrics) = (Metrics::new(), Metrics::new());
    let monolith = monolith_trusting(&sns, &api, &monolith_metrics).await;
    let mut config =
        testkit::spawn::resource_config(contracts::Resource::Iridium, &monolith["http://".len()..]);
    config.route.trust = TrustConfig {
        sns_stand_in: Some(sns.base.clone()),
        ..TrustConfig::default()
    };
    let iridium = resource::router_with_metrics(config, &iridium_metrics).unwrap();
    let (iridium, _) = serve(iridium, &iridium_metrics).await;
    let client = reqwest::Client::new();
    // SNS delivers each order twice: the second time the API has it already.
    for (url, order) in [
        (format!("{monolith}/order/"), r#"{"bundle": 2}"#),
        (format!("{iridium}/iridium/"), r#"{"iridium": 3}"#),
    ] {
        let envelope = sns.notification(order, V2);
        let mut said_repeat = Vec::new();
        for _ in 0..2 {
            let mut request = client
                .post(&url)
                .header("content-type", contracts::sns::CONTENT_TYPE)
                .body(serde_json::to_string(&envelope).unwrap());
            for (name, value) in delivery_headers(&envelope) {
                request = request.header(name, value);
            }
            let answer = request.send().await.unwrap();
            said_repeat.push(answer.headers().get(REPLAYED_HEADER).cloned());
            assert_eq!(answer.status(), 200, "{url}");
            assert_eq!(answer.text().await.unwrap(), ORDER_FULFILLED, "{url}");
        }
        assert_eq!(said_repeat, [None, Some("true".parse().unwrap())], "{url}");
    }
    assert_eq!(api.fulfillments(), 2);
    let counted = |metrics: &Metrics, route: &str| {
        let text = metrics.render();
        let line = |outcome: &str| {
            let prefix = format!("interstella_orders_total{{route=\"{route}\",outcome=\"{outcome}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
                .to_owned()
        };
        (line("fulfilled"), line("replayed"))
    };
    let once_and_a_repeat = ("1".to_owned(), "1".to_owned());
    assert_eq!(counted(&monolith_metrics, "/order/"), once_and_a_repeat);
    // The hook's answer carried the API's word on to iridium.
    assert_eq!(counted(&monolith_metrics, "/fulfill/"), once_and_a_repeat);
    assert_eq!(counted(&iridium_metrics, "/iridium/"), once_and_a_repeat);
}

/// What the serve loop refuses before any route runs (a body too slow, too
/// large) is counted by reason: no order route sees it, and a service
/// refusing orders at its door must show.
#[tokio::test]
async fn requests_the_serve_loop_refuses_are_counted_by_reason() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (api, metrics, router) = monolith_counting().await;
    let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = service.local_addr().unwrap();
    let limits = platform::ServerLimits {
        body_read_timeout: std::time::Duration::from_millis(200),
        ..platform::ServerLimits::default()
    };
    let counting = metrics.clone();
    tokio::spawn(async move {
        platform::metrics::serve_with_metrics(
            service,
            router,
            limits,
            &counting,
            None,
            std::future::pending(),
        )
        .await
    });
    // A body that stops short of its announced length.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /order/ HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"Message\"")
        .await
        .unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // A body announced over the limit.
    let client = reqwest::Client::new();
    let too_large = client
        .post(format!("http://{addr}/order/"))
        .body(vec![b' '; platform::server::BODY_LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status().as_u16(), 413);
    // Heads hyper refuses itself: too many fields, and no HTTP at all.
    let many_fields: String = (0..101).map(|n| format!("x-{n}: y\r\n")).collect();
    for (head, status) in [
        (
            format!("GET / HTTP/1.1\r\nhost: x\r\n{many_fields}\r\n"),
            "HTTP/1.1 431",
        ),
        ("NOT HTTP\r\n\r\n".to_owned(), "HTTP/1.1 400"),
        // And one the serve loop refuses as malformed: two hosts.
        (
            "GET / HTTP/1.1\r\nhost: x\r\nhost: y\r\nconnection: close\r\n\r\n".to_owned(),
            "HTTP/1.1 400",
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(status), "{answer}");
    }
    let expected = [
        r#"interstella_requests_unserved_total{reason="slow_body"} 1"#,
        r#"interstella_requests_unserved_total{reason="too_large"} 1"#,
        r#"interstella_requests_unserved_total{reason="head_too_large"} 1"#,
        r#"interstella_requests_unserved_total{reason="bad_head"} 2"#,
    ];
    // A refused head is counted as its connection ends, which the client
    // may see first.
    let text = testkit::wait_until(
        "each refusal counted",
        std::time::Duration::from_secs(5),
        async || {
            let text = metrics.render();
            expected
                .iter()
                .all(|expected| text.lines().any(|line| line == *expected))
                .then_some(text)
        },
    )
    .await;
    assert!(
        text.lines()
            .filter(|line| line.starts_with(r#"interstella_orders_total{route="/order/""#))
            .all(|line| line.ends_with(" 0")),
        "an order route counted it:\n{text}"
    );
    assert_eq!(api.count(), 0);
}

/// A scrape is no request of the service's: no access line, nor any line
/// naming it (every scraper's every scrape would bury the orders' lines),
/// while the service's own requests keep theirs.
#[tokio::test]
async fn a_scrape_writes_no_access_line() {
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let (_api, metrics, router) = monolith_counting().await;
    let (service, exporter) = serve(router, &metrics).await;
    let client = reqwest::Client::new();
    let scrape = client.get(format!("{exporter}/metrics")).send().await.unwrap();
    assert_eq!(scrape.status().as_u16(), 200);
    let health = client.get(format!("{service}/")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let access = |line: &String| line.contains("finished processing request");
    testkit::wait_until(
        "the health check's access line",
        std::time::Duration::from_secs(5),
        async || {
            logs.lines()
                .iter()
                .any(|line| access(line) && line.contains("uri=/}"))
                .then_some(())
        },
    )
    .await;
    let lines = logs.lines();
    assert!(!lines.iter().any(|line| line.contains("/metrics")), "{lines:#?}");
}
