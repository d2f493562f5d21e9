//! The resource microservices: orders reach the API through the glue hook.

use platform::HookSecret;
use platform::TrustConfig;
use platform::reply::{ORDER_FAILED, ORDER_FULFILLED};
use platform::settings::{HOOK_SECRET_SETTING, hook_secrets};
use resource::Resource;
use serde_json::json;
use testkit::spawn::{monolith_config, resource_config};
use testkit::{ApiBehaviour, FakeApi, TestApp, spawn_monolith, spawn_resource};

const JSON: Option<&str> = Some("application/json");

/// A resource service wired to a monolith wired to a fake API.
async fn platform_for(resource: Resource) -> (TestApp, TestApp, FakeApi) {
    let api = FakeApi::start().await;
    let monolith = spawn_monolith(monolith_config(&api.url, TrustConfig::default())).await;
    let service = spawn_resource(resource_config(resource, &monolith.addr.to_string())).await;
    (service, monolith, api)
}

#[tokio::test]
async fn each_resource_reaches_the_api_through_the_glue_hook() {
    for (resource, expected) in [
        (
            Resource::Iridium,
            json!({"iridium": 2, "magnesite": 0, "produced_by": "iridium"}),
        ),
        (
            Resource::Magnesite,
            json!({"iridium": 0, "magnesite": 2, "produced_by": "magnesite"}),
        ),
    ] {
        let (service, _monolith, api) = platform_for(resource).await;
        let body = format!(r#"{{"Message":{{"{resource}":"2"}}}}"#);
        // With or without the path's slash, as SNS subscriptions are written.
        for path in [format!("/{resource}/"), format!("/{resource}")] {
            let (status, text) = service.post(&path, JSON, &[], body.clone()).await;
            assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED), "{path}");
        }
        assert_eq!(api.received().len(), 2);
        assert!(
            api.received().iter().all(|call| call.fulfillment() == expected),
            "{resource}"
        );
    }
}

/// A body over the limit is refused 413 by a resource service too, before
/// anything is called.
#[tokio::test]
async fn a_resource_service_refuses_a_body_over_the_limit() {
    let (iridium, _monolith, api) = platform_for(Resource::Iridium).await;
    let padding = " ".repeat(platform::server::BODY_LIMIT);
    let (status, _) = iridium
        .post(
            "/iridium/",
            JSON,
            &[],
            format!(r#"{{"Message":{{"iridium":1}}}}{padding}"#),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn health_checks_on_the_alb_paths() {
    let (iridium, _monolith, _api) = platform_for(Resource::Iridium).await;
    let healthy =
        r#"Iridium microservice is healthy. POST an SNS message or {"Message": {"iridium": 1}} here."#;
    assert_eq!(iridium.get("/iridium/").await, (200, healthy.to_owned()));
    assert_eq!(iridium.get("/iridium").await, (200, healthy.to_owned()));
    // What it says to POST is an order it takes.
    let advertised = healthy
        .strip_prefix("Iridium microservice is healthy. POST an SNS message or ")
        .and_then(|rest| rest.strip_suffix(" here."))
        .unwrap();
    let (status, text) = iridium.post("/iridium/", JSON, &[], advertised.to_owned()).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    // What axum answers empty says where orders go, and the 405 keeps
    // its Allow header.
    let not_found = "no such path; orders are POSTed to /iridium/".to_owned();
    assert_eq!(iridium.get("/magnesite/").await, (404, not_found.clone()));
    assert_eq!(iridium.get("/").await, (404, not_found));
    let response = iridium.client.put(iridium.url("/iridium/")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let allowed = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allowed.contains("GET") && allowed.contains("POST"), "{allowed}");
    assert_eq!(
        response.text().await.unwrap(),
        "this path does not take that method; orders are POSTed to /iridium/"
    );
}

/// A caller's `Idempotency-Key` on a direct order is not passed on, well
/// formed or not: a key is derived from an SNS message, or there is none
/// (the monolith's own route holds to the same, in monolith_orders).
#[tokio::test]
async fn a_callers_idempotency_key_is_ignored_by_a_resource_service() {
    let (iridium, _monolith, api) = platform_for(Resource::Iridium).await;
    let key = contracts::IdempotencyKey::derive(
        "arn:aws:sns:us-east-1:123456789012:iridium",
        "m",
        contracts::FulfillmentKind::Resource(contracts::Resource::Iridium),
    );
    let claimed = [(contracts::fulfillment::IDEMPOTENCY_KEY_HEADER, key.as_str())];
    for _ in 0..2 {
        let (status, text) = iridium
            .post("/iridium/", JSON, &claimed, r#"{"Message":{"iridium":1}}"#)
            .await;
        assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    }
    let received = api.received();
    assert_eq!(received.len(), 2, "both counted: no key made them one");
    assert!(
        received.iter().all(|call| call
            .header(contracts::fulfillment::IDEMPOTENCY_KEY_HEADER)
            .is_none()),
        "a direct order carries no key"
    );
}

#[tokio::test]
async fn a_service_takes_exactly_its_own_resource() {
    let (iridium, _monolith, api) = platform_for(Resource::Iridium).await;
    for bad in [
        r#"{"Message":{"magnesite":1}}"#,
        r#"{"Message":{"iridium":1,"magnesite":1}}"#,
        r#"{"Message":{"bundle":1}}"#,
        r#"{"Message":{"iridium":-3}}"#,
        r#"{"iridium":1}"#,
    ] {
        let (status, text) = iridium.post("/iridium/", JSON, &[], bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(text.contains(r#"{"iridium": 1}"#), "says what it expects: {text}");
    }
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn monolith_down_or_failing_is_a_5xx() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let orphan = spawn_resource(resource_config(Resource::Iridium, &closed.to_string())).await;
    let (status, text) = orphan
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await;
    assert_eq!((status, text.as_str()), (503, ORDER_FAILED));

    let (iridium, _monolith, api) = platform_for(Resource::Iridium).await;
    api.behave(ApiBehaviour::Fail(500));
    let (status, text) = iridium
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await;
    assert_eq!((status, text.as_str()), (502, ORDER_FAILED));
    // The API timed out behind the monolith: the monolith's 504 reaches
    // iridium's caller as a timeout, not as a bad gateway.
    api.behave(ApiBehaviour::Fail(504));
    let (status, text) = iridium
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await;
    assert_eq!((status, text.as_str()), (504, ORDER_FAILED));
}

/// A monolith that takes the call and never answers is given up on at the
/// glue hook call's timeout: 504, the order not fulfilled (SNS retries it).
#[tokio::test]
async fn a_monolith_that_never_answers_is_a_504_at_the_timeout() {
    let addr = testkit::black_hole();
    let mut config = resource_config(Resource::Iridium, &addr.to_string());
    config.route.downstream_timeout = std::time::Duration::from_millis(300);
    let iridium = spawn_resource(config).await;
    let (status, text) = iridium
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await;
    assert_eq!((status, text.as_str()), (504, ORDER_FAILED));
}

#[tokio::test]
async fn a_service_with_the_wrong_hook_secret_is_refused_by_the_monolith() {
    let api = FakeApi::start().await;
    let monolith = spawn_monolith(monolith_config(&api.url, TrustConfig::default())).await;
    let mut config = resource_config(Resource::Iridium, &monolith.addr.to_string());
    config.hook_secret = HookSecret::new("not-the-monolith-secret-0123456789");
    let iridium = spawn_resource(config).await;
    let (status, text) = iridium
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await;
    // The monolith's 401 is an error status downstream: the order failed.
    assert_eq!((status, text.as_str()), (502, ORDER_FAILED));
    assert_eq!(api.count(), 0);
}

/// An order through iridium, each service given the glue hook secret
/// setting `monolith` and `iridium`, as the services read it.
async fn order_with_hook_secrets(api: &FakeApi, monolith: &str, iridium: &str) -> (u16, String) {
    let secrets = |setting: &str| match hook_secrets(Some(setting), HOOK_SECRET_SETTING) {
        Ok(Some(secrets)) => secrets,
        refused => panic!("{refused:?}"),
    };
    let mut config = monolith_config(&api.url, TrustConfig::default());
    config.hook_secrets = secrets(monolith);
    let monolith = spawn_monolith(config).await;
    let mut config = resource_config(Resource::Iridium, &monolith.addr.to_string());
    config.hook_secret = secrets(iridium).sent().clone();
    let iridium = spawn_resource(config).await;
    iridium
        .post("/iridium/", JSON, &[], r#"{"Message":{"iridium":1}}"#)
        .await
}

#[tokio::test]
async fn rotating_the_hook_secret_refuses_no_order_at_any_step() {
    const OLD: &str = "old-glue-hook-secret-0123456789";
    const NEW: &str = "new-glue-hook-secret-0123456789";
    // The setting at each step of docs/aws.md's rotation. A rolling
    // deployment has tasks of one step meet tasks of the step before, in
    // either role: every such pair must carry orders.
    let steps = [
        OLD.to_owned(),
        format!("{OLD},{NEW}"),
        format!("{NEW},{OLD}"),
        NEW.to_owned(),
    ];
    let api = FakeApi::start().await;
    let mut orders = 0;
    for pair in steps.windows(2) {
        for (monolith, iridium) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            let (status, text) = order_with_hook_secrets(&api, monolith, iridium).await;
            assert_eq!(
                (status, text.as_str()),
                (200, ORDER_FULFILLED),
                "monolith at {monolith:?}, iridium at {iridium:?}"
            );
            orders += 1;
        }
    }
    assert_eq!(api.count(), orders);
    // Skipping the first step is what the three steps avoid: a monolith
    // still at OLD refuses an iridium already sending NEW.
    let (status, text) = order_with_hook_secrets(&api, OLD, &format!("{NEW},{OLD}")).await;
    assert_eq!((status, text.as_str()), (502, ORDER_FAILED));
    assert_eq!(api.count(), orders);
}
