//! The `monolith` binary as a process: configuration from the environment,
//! from SSM (moto's server standing in), the missing-configuration exit, and
//! the SIGTERM drain that `docker stop` and ECS rely on.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use testkit::moto::Moto;
use testkit::process::{exits_with_one_line_naming, safe_aws_env};
use testkit::{ApiBehaviour, FakeApi, ServiceProcess, wait_until};

const WORKSHOP_CURL_BODY: &str = r#"{"Message":{"bundle":"1"}}"#;

fn monolith_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_monolith"))
}

async fn send_workshop_curl(addr: std::net::SocketAddr) -> Result<(u16, String), reqwest::Error> {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/order/"))
        .header("content-type", "application/json")
        .body(WORKSHOP_CURL_BODY)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn missing_configuration_exits_with_one_line_naming_it() {
    let named = ["INTERSTELLA_API_KEY", "/interstella/apiKey", "AWS_REGION"];
    exits_with_one_line_naming(monolith_exe(), &safe_aws_env(), &named).await;
}

#[tokio::test]
async fn environment_configures_and_sigterm_drains_in_flight_orders() {
    let api = FakeApi::start().await;
    let mut env = safe_aws_env();
    env.insert("INTERSTELLA_API_KEY".into(), "env-secret-key-value".into());
    env.insert("INTERSTELLA_API_ENDPOINT".into(), api.url.to_string());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;

    api.behave(ApiBehaviour::Delay(Duration::from_millis(500)));
    let order = tokio::spawn(send_workshop_curl(addr));
    wait_until(
        "the order to reach the API",
        Duration::from_secs(10),
        async || (api.count() == 1).then_some(()),
    )
    .await;
    monolith.terminate().await;
    let answer = order.await.unwrap();
    let exit = monolith.wait_exit(Duration::from_secs(10)).await;
    let (status, text) = answer.unwrap_or_else(|e| panic!("{e:?}; monolith output: {:#?}", monolith.seen));
    assert_eq!((status, text.as_str()), (200, "Your order has been fulfilled"));
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");

    assert_eq!(
        api.received()[0].header("x-api-key"),
        Some("env-secret-key-value")
    );
    let log = monolith.seen.join("\n");
    for line in [
        "Gathering Requested Items",
        "Getting Iridium",
        "Getting Magnesite",
        "Trying to send a request to the API",
        "API Status Code: 200",
        "Bundle fulfilled",
    ] {
        assert!(log.contains(line), "log lacks {line:?}:\n{log}");
    }
    assert!(
        !log.contains("env-secret-key-value"),
        "the API key reached the log:\n{log}"
    );
}

#[tokio::test]
async fn configuration_is_read_from_ssm_when_the_environment_lacks_it() {
    // Waits until moto answers; killed at the end of the test.
    let moto = Moto::start().await;
    let endpoint = moto.base.as_str().trim_end_matches('/').to_owned();
    let mut aws_env: HashMap<String, String> = safe_aws_env();
    aws_env.insert("AWS_ENDPOINT_URL".into(), endpoint.clone());
    aws_env.insert("AWS_REGION".into(), "us-east-1".into());
    aws_env.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    aws_env.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let api = FakeApi::start().await;
    let put_parameters = async || {
        ssm.put_parameter()
            .name("/interstella/apiKey")
            .value("ssm-secret-key-value")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await?;
        ssm.put_parameter()
            .name("/interstella/apiEndpoint")
            .value(api.url.as_str())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
    };
    put_parameters().await.unwrap();

    let mut monolith = ServiceProcess::start(monolith_exe(), &aws_env);
    let addr = monolith.wait_listening().await;
    let (status, _) = send_workshop_curl(addr).await.unwrap();
    assert_eq!(status, 200);
    let received = api.received();
    assert_eq!(received[0].header("x-api-key"), Some("ssm-secret-key-value"));
    assert_eq!(received[0].body, json!({"iridium": 1, "magnesite": 1}));
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        !monolith.seen.join("\n").contains("ssm-secret-key-value"),
        "the API key reached the log"
    );

    // A parameter SSM does not have: the one-line exit names it and SSM.
    aws_env.insert("SSM_API_KEY_PARAM".into(), "/interstella/missing".into());
    let named = ["/interstella/missing", "parameter not found"];
    exits_with_one_line_naming(monolith_exe(), &aws_env, &named).await;
}
