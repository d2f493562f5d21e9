//! The monolith: the workshop's flows, bad input and downstream failures.

use contracts::fulfillment::{HOOK_SECRET_HEADER, IDEMPOTENCY_KEY_HEADER};
use contracts::{FulfillmentKind, IdempotencyKey};
use monolith::MonolithConfig;
use monolith::routes::HEALTHY;
use platform::TrustConfig;
use platform::reply::{HOOK_DELIVERED, HOOK_FAILED, ORDER_FAILED, ORDER_FULFILLED};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use testkit::spawn::{TEST_API_KEY, TEST_HOOK_SECRET, monolith_config};
use testkit::{ApiBehaviour, FakeApi, TestApp, spawn_monolith};

const WORKSHOP_CURL_BODY: &str = r#"{"Message":{"bundle":"1"}}"#;
const JSON: Option<&str> = Some("application/json");

async fn monolith_with(configure: impl FnOnce(&mut MonolithConfig)) -> (TestApp, FakeApi) {
    let api = FakeApi::start().await;
    let mut config = monolith_config(&api.url, TrustConfig::default());
    configure(&mut config);
    (spawn_monolith(config).await, api)
}

#[tokio::test]
async fn workshop_curl_is_fulfilled_with_the_api_key() {
    let (app, api) = monolith_with(|_| {}).await;
    let (status, text) = app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    let received = api.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].fulfillment(),
        json!({"iridium": 1, "magnesite": 1, "produced_by": "monolith"})
    );
    assert_eq!(received[0].header("x-api-key"), Some(TEST_API_KEY));
    assert_eq!(received[0].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn body_is_json_whatever_the_content_type_and_path_slash() {
    let (app, api) = monolith_with(|_| {}).await;
    for (path, content_type) in [
        ("/order/", Some("text/plain; charset=UTF-8")),
        ("/order", None),
        ("/order", Some("application/x-www-form-urlencoded")),
    ] {
        let (status, text) = app
            .post(path, content_type, &[], r#"{"Message":{"bundle":2}}"#)
            .await;
        assert_eq!(
            (status, text.as_str()),
            (200, ORDER_FULFILLED),
            "{path} {content_type:?}"
        );
    }
    assert_eq!(api.count(), 3);
    assert!(
        api.received()
            .iter()
            .all(|r| r.fulfillment() == json!({"iridium": 2, "magnesite": 2, "produced_by": "monolith"}))
    );
}

#[tokio::test]
async fn message_may_be_a_json_string() {
    let (app, api) = monolith_with(|_| {}).await;
    let (status, _) = app
        .post("/order/", JSON, &[], r#"{"Message":"{\"bundle\": \"3\"}"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        api.received()[0].fulfillment(),
        json!({"iridium": 3, "magnesite": 3, "produced_by": "monolith"})
    );
}

#[tokio::test]
async fn health_check_unknown_path_and_wrong_method() {
    let (app, _api) = monolith_with(|_| {}).await;
    assert_eq!(app.get("/").await, (200, HEALTHY.to_owned()));
    let (not_found, wrong_method) = (
        "no such path; orders are POSTed to /order/",
        "this path does not take that method; orders are POSTed to /order/",
    );
    assert_eq!(app.get("/nowhere").await, (404, not_found.to_owned()));
    // A browser's GET of the order path.
    assert_eq!(app.get("/order/").await, (405, wrong_method.to_owned()));
    assert_eq!(
        app.post("/", JSON, &[], "{}").await,
        (405, wrong_method.to_owned())
    );
    // A method HTTP does not define is not one a route might take: 501, on
    // the order path and off it.
    for path in ["/order/", "/nowhere"] {
        let method = reqwest::Method::from_bytes(b"FETCH").unwrap();
        let answer = app.client.request(method, app.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 501, "{path}");
        assert_eq!(
            answer.text().await.unwrap(),
            "no such method is implemented here (RFC 9110, section 9.1)"
        );
    }
}

#[tokio::test]
async fn every_reply_forbids_sniffing_running_and_framing() {
    let (app, _api) = monolith_with(|_| {}).await;
    // Replies that quote what the client sent, and those that do not; the
    // routes' and the serve loop's own (a method, a host).
    let fetch = reqwest::Method::from_bytes(b"FETCH").unwrap();
    let requests = [
        (app.client.get(app.url("/")), 200),
        (app.client.get(app.url("/%3Cscript%3E")), 404),
        (
            app.client
                .post(app.url("/order/"))
                .body(r#"{"Message":{"bundle":"<b>x</b>"}}"#),
            400,
        ),
        (
            app.client
                .post(app.url("/order/"))
                .body(r#"{"Message":{"bundle":1}}"#),
            200,
        ),
        (app.client.request(fetch, app.url("/order/")), 501),
        (app.client.get(app.url("/")).header("host", "a%zz"), 400),
    ];
    for (request, expected) in requests {
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_eq!(status, expected);
        let said = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap_or("not text"))
        };
        assert_eq!(said("x-content-type-options"), Some("nosniff"), "{status}");
        assert_eq!(
            said("content-security-policy"),
            Some(platform::server::DATA_SECURITY_POLICY),
            "{status}"
        );
        assert_eq!(said("x-frame-options"), Some("DENY"), "{status}");
    }
}

#[tokio::test]
async fn bad_bodies_get_400_and_reach_nothing() {
    let (app, api) = monolith_with(|_| {}).await;
    let deeply_nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_order = format!(
        r#"{{"Message":{{"bundle":{}1{}}}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let bad_bodies = [
        "not json".to_owned(),
        "".to_owned(),
        "[1,2]".to_owned(),
        r#"{"bundle":1}"#.to_owned(),
        r#"{"Message":{"bundle":-1}}"#.to_owned(),
        r#"{"Message":{"bundle":"-1"}}"#.to_owned(),
        r#"{"Message":{"bundle":"lots"}}"#.to_owned(),
        r#"{"Message":{"bundle":1.5}}"#.to_owned(),
        r#"{"Message":{"bundle":true}}"#.to_owned(),
        r#"{"Message":{"bundle":0}}"#.to_owned(),
        r#"{"Message":{"iridium":1}}"#.to_owned(),
        r#"{"Message":{"bundle":1,"extra":2}}"#.to_owned(),
        r#"{"Message":"not json"}"#.to_owned(),
        r#"{"Message":42}"#.to_owned(),
        // A key written twice is two keys; a JSON parser keeping the last
        // would send 900 on. So are two Messages.
        r#"{"Message":{"bundle":1,"bundle":900}}"#.to_owned(),
        r#"{"Message":"{\"bundle\":1,\"bundle\":900}"}"#.to_owned(),
        r#"{"Message":{"bundle":1},"Message":{"bundle":900}}"#.to_owned(),
        // Whole only to a floating-point read.
        r#"{"Message":{"bundle":1.0000000000000001}}"#.to_owned(),
        r#"{"Message":{"bundle":999999.99999999999999}}"#.to_owned(),
        deeply_nested,
        deep_order,
    ];
    for body in &bad_bodies {
        let (status, text) = app.post("/order/", JSON, &[], body.clone()).await;
        assert_eq!(status, 400, "body {:.60} answered {status} {text}", body);
        assert!(!text.is_empty());
    }
    assert_eq!(api.count(), 0, "a bad order reached the fulfillment API");
    let (status, text) = app
        .post("/order/", JSON, &[], r#"{"Message":{"bundle":"x"}}"#)
        .await;
    assert_eq!(status, 400);
    assert!(
        text.contains(r#"{"bundle": 1}"#),
        "the error says what was expected: {text}"
    );
    assert_eq!(app.get("/").await.0, 200, "the service stays up");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (app, api) = monolith_with(|_| {}).await;
    let huge = format!(
        r#"{{"Message":{{"bundle":1}},"pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, _) = app.post("/order/", JSON, &[], huge).await;
    assert_eq!(status, 413);
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn failing_api_answers_502_and_never_echoes_the_key() {
    let (app, api) = monolith_with(|_| {}).await;
    // Its own 504 passes through: the caller sees the timeout behind the
    // monolith. Its 503 does not: ours says nothing was sent.
    for (failure, answered) in [(500, 502), (503, 502), (504, 504), (403, 502), (400, 502)] {
        api.behave(ApiBehaviour::Fail(failure));
        let (status, text) = app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await;
        assert_eq!(
            (status, text.as_str()),
            (answered, ORDER_FAILED),
            "API answered {failure}"
        );
        assert!(!text.contains(TEST_API_KEY));
    }
}

#[tokio::test]
async fn unreachable_api_answers_503() {
    // Bind then drop a listener: nothing listens on that port any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let api_url = url::Url::parse(&format!("http://{closed}/receiving/")).unwrap();
    let app = spawn_monolith(monolith_config(&api_url, TrustConfig::default())).await;
    let (status, text) = app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await;
    assert_eq!((status, text.as_str()), (503, ORDER_FAILED));
}

#[tokio::test]
async fn hanging_api_answers_504_within_the_timeout() {
    let (app, api) =
        monolith_with(|config| config.route.downstream_timeout = Duration::from_millis(300)).await;
    api.behave(ApiBehaviour::Hang);
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY),
    )
    .await;
    let (status, text) = answered.expect("the monolith hung past its own timeout");
    assert_eq!((status, text.as_str()), (504, ORDER_FAILED));
}

#[tokio::test]
async fn calls_to_the_api_are_bounded_and_the_rest_wait_their_turn() {
    let (app, api) = monolith_with(|config| config.route.downstream_max_connections = 2).await;
    api.behave(ApiBehaviour::Delay(Duration::from_millis(150)));
    let orders = (0..6).map(|_| app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY));
    let answers = futures_util::future::join_all(orders).await;
    for (status, text) in answers {
        assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    }
    assert_eq!(api.count(), 6);
    // Six orders at once, but never more than two calls at the API.
    assert_eq!(api.most_in_flight(), 2);
}

#[tokio::test]
async fn strangled_resources_are_not_gathered() {
    let (app, api) =
        monolith_with(|config| config.strangled = BTreeSet::from([contracts::Resource::Iridium])).await;
    assert_eq!(app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await.0, 200);
    assert_eq!(
        api.received()[0].fulfillment(),
        json!({"iridium": 0, "magnesite": 1, "produced_by": "monolith"})
    );
}

#[tokio::test]
async fn unsigned_orders_can_be_refused() {
    let (app, api) = monolith_with(|config| config.route.trust.accept_unsigned_orders = false).await;
    let (status, _) = app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await;
    assert_eq!(status, 403);
    assert_eq!(api.count(), 0);
}

/// The glue hook's header, carrying the test secret.
const HOOK_SECRET: (&str, &str) = (HOOK_SECRET_HEADER, TEST_HOOK_SECRET);

#[tokio::test]
async fn glue_hook_sends_one_resource_with_the_key_from_its_header() {
    let (app, api) = monolith_with(|_| {}).await;
    let key = IdempotencyKey::derive(
        "arn:t",
        "m",
        FulfillmentKind::Resource(contracts::Resource::Magnesite),
    );
    let from_microservice = [HOOK_SECRET, (IDEMPOTENCY_KEY_HEADER, key.as_str())];
    let (status, text) = app
        .post("/fulfill/", JSON, &from_microservice, r#"{"magnesite": 4}"#)
        .await;
    assert_eq!((status, text.as_str()), (200, HOOK_DELIVERED));
    let received = api.received();
    assert_eq!(
        received[0].fulfillment(),
        json!({"iridium": 0, "magnesite": 4, "produced_by": "magnesite"})
    );
    assert_eq!(received[0].header("idempotency-key"), Some(key.as_str()));
    assert_eq!(received[0].header("x-api-key"), Some(TEST_API_KEY));

    // The body is exactly one key (SPEC): the key goes in a header.
    let key_in_body = format!(r#"{{"iridium":1,"idempotency_key":"{key}"}}"#);
    for bad in [
        r#"{"iridium":1,"magnesite":1}"#,
        r#"{"bundle":1}"#,
        r#"{"Message":{"iridium":1}}"#,
        &key_in_body,
        "{}",
        "x",
    ] {
        assert_eq!(
            app.post("/fulfill", None, &[HOOK_SECRET], bad.to_owned()).await.0,
            400,
            "{bad}"
        );
    }
    let not_ours = [HOOK_SECRET, (IDEMPOTENCY_KEY_HEADER, "msg-42")];
    let (status, text) = app.post("/fulfill/", JSON, &not_ours, r#"{"iridium":1}"#).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(api.count(), 1);

    api.behave(ApiBehaviour::Fail(500));
    let (status, text) = app
        .post("/fulfill/", JSON, &[HOOK_SECRET], r#"{"iridium": 1}"#)
        .await;
    assert_eq!((status, text.as_str()), (502, HOOK_FAILED));
}

#[tokio::test]
async fn glue_hook_needs_the_shared_secret() {
    let (app, api) = monolith_with(|_| {}).await;
    let order = r#"{"iridium": 1000000}"#;
    let (status, text) = app.post("/fulfill/", JSON, &[], order).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains(HOOK_SECRET_HEADER), "says what is missing: {text}");
    let near_miss = &TEST_HOOK_SECRET[..TEST_HOOK_SECRET.len() - 1];
    for wrong in ["", "wrong", near_miss, &format!("{TEST_HOOK_SECRET}0")] {
        let (status, text) = app
            .post("/fulfill/", JSON, &[(HOOK_SECRET_HEADER, wrong)], order)
            .await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(!text.contains(TEST_HOOK_SECRET), "the secret was echoed: {text}");
    }
    assert_eq!(api.count(), 0, "an unauthenticated hook call reached the API");
    let response = app
        .client
        .post(app.url("/fulfill/"))
        .body(order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Interstella-Hook-Secret",
        "RFC 9110: a 401 names its scheme"
    );
    let (status, _) = app.post("/fulfill/", JSON, &[HOOK_SECRET], order).await;
    assert_eq!(status, 200);
    assert_eq!(api.count(), 1);
}

#[tokio::test]
async fn a_path_starting_with_two_slashes_reaches_no_route() {
    // The ALB refuses `/fulfill*` on the public listener; `//fulfill/` must
    // not reach the hook by another spelling.
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let (app, api) = monolith_with(|_| {}).await;
    for path in ["//fulfill/", "//fulfill", "///fulfill/", "//order/"] {
        let order = if path.contains("fulfill") {
            r#"{"iridium": 1}"#
        } else {
            WORKSHOP_CURL_BODY
        };
        let (status, text) = app.post(path, JSON, &[HOOK_SECRET], order).await;
        assert_eq!((status, text.as_str()), (404, "no such path"), "{path}");
    }
    assert_eq!(api.count(), 0, "a double-slash path reached the API");
    // As any path not ours, said by the access line alone: a scan of paths
    // is not a warning per probe.
    let said = logs.text();
    assert!(said.contains("uri=//order/"), "{said}");
    assert!(!said.contains("request not served"), "{said}");
    let (status, _) = app
        .post("/fulfill/", JSON, &[HOOK_SECRET], r#"{"iridium": 1}"#)
        .await;
    assert_eq!(status, 200, "the hook itself still answers");
}

#[tokio::test]
async fn a_callers_idempotency_key_is_ignored_on_orders() {
    // Only a microservice, with the hook's secret, passes a key on (the
    // glue hook test above); an order's key is derived here or absent.
    let (app, api) = monolith_with(|_| {}).await;
    // Malformed, and of the shape the services derive (64 hex digits).
    let well_formed = "a".repeat(64);
    for key in ["msg-42", well_formed.as_str()] {
        let claimed = [(IDEMPOTENCY_KEY_HEADER, key)];
        let (status, _) = app.post("/order/", JSON, &claimed, WORKSHOP_CURL_BODY).await;
        assert_eq!(status, 200, "{key}");
    }
    let received = api.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        assert_eq!(
            request.header(IDEMPOTENCY_KEY_HEADER),
            None,
            "a direct order carries no key"
        );
    }
}

#[tokio::test]
async fn a_huge_bad_quantity_is_quoted_short_and_escaped() {
    let (app, api) = monolith_with(|_| {}).await;
    let huge = format!("1\\n{}", "9".repeat(400 * 1024));
    let body = format!(r#"{{"Message":{{"bundle":"{huge}"}}}}"#);
    let (status, text) = app.post("/order/", JSON, &[], body).await;
    assert_eq!(status, 400);
    assert!(text.len() < 1024, "{} bytes echoed", text.len());
    assert!(!text.contains('\n'), "raw newline in {text:?}");
    assert!(text.contains("bytes)"), "says how long it was: {text}");
    assert!(
        text.contains(r#"{"bundle": 1}"#),
        "still says what was expected: {text}"
    );
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn a_long_message_type_is_quoted_short_and_escaped() {
    let (app, api) = monolith_with(|_| {}).await;
    let long = "\\\"X".repeat(2000);
    let body = format!(r#"{{"Type":"{long}","MessageId":"m","Message":"{{}}"}}"#);
    let (status, text) = app.post("/order/", JSON, &[], body).await;
    // A claimed SNS message that is not one: refused as one that fails its check.
    assert_eq!(status, 403, "{text}");
    assert!(text.len() < 400, "{} bytes echoed: {text}", text.len());
    assert!(
        text.contains(r#"unknown Type "\"X\"X"#),
        "quoted and escaped: {text}"
    );
    assert!(text.contains("…(4000 bytes)"), "says how long it was: {text}");
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn graceful_stop_finishes_in_flight_orders() {
    let (app, api) = monolith_with(|_| {}).await;
    api.behave(ApiBehaviour::Delay(Duration::from_millis(500)));
    let client = app.client.clone();
    let url = app.url("/order/");
    let in_flight = tokio::spawn(async move {
        let response = client.post(url).body(WORKSHOP_CURL_BODY).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    testkit::wait_until("the order to reach the API", Duration::from_secs(5), async || {
        (api.count() == 1).then_some(())
    })
    .await;
    let addr = app.addr;
    app.stop().await.unwrap();
    let (status, text) = in_flight.await.unwrap();
    assert_eq!(
        (status, text.as_str()),
        (200, ORDER_FULFILLED),
        "the in-flight order was cut off"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after stop"
    );
}

#[tokio::test]
async fn an_order_read_with_too_little_time_left_is_not_started() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 1.5 s to answer, up to 1 s for the API call: a body that took 0.7 s
    // to arrive leaves too little. Started anyway, the order could be
    // fulfilled after its caller was told 503, and a curl sent again would
    // be fulfilled twice. The same on the glue hook.
    let (app, api) = monolith_with(|config| {
        config.route.server.request_timeout = Duration::from_millis(1500);
        config.route.downstream_timeout = Duration::from_millis(1000);
    })
    .await;
    let hook_secret = format!("{HOOK_SECRET_HEADER}: {TEST_HOOK_SECRET}\r\n");
    // Each refusal names the settings its work is made of.
    for (path, extra, body, settings) in [
        (
            "/order/",
            String::new(),
            WORKSHOP_CURL_BODY,
            "(1s: GATHER_DELAY_MS and DOWNSTREAM_TIMEOUT_MS)",
        ),
        (
            "/fulfill/",
            hook_secret,
            r#"{"iridium": 1}"#,
            "(1s: DOWNSTREAM_TIMEOUT_MS)",
        ),
    ] {
        let body = body.as_bytes();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..5]).await.unwrap();
        // The slow client under test, not a wait for something to happen.
        tokio::time::sleep(Duration::from_millis(700)).await;
        stream.write_all(&body[5..]).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{path}: {answer}");
        assert!(
            answer.contains("it was not started, send it again") && answer.contains(settings),
            "{path}: {answer}"
        );
        assert_eq!(
            api.count(),
            0,
            "{path}: an order with too little time left was started"
        );
    }
    // Sent promptly, the same orders are carried out.
    let (status, text) = app.post("/order/", JSON, &[], WORKSHOP_CURL_BODY).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    let (status, _) = app
        .post("/fulfill/", JSON, &[HOOK_SECRET], r#"{"iridium": 1}"#)
        .await;
    assert_eq!(status, 200);
}
