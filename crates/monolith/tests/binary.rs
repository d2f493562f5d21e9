//! The `monolith` binary as a process: configuration from the environment,
//! from SSM (moto's server standing in), the missing-configuration exit, and
//! the SIGTERM drain that `docker stop` and ECS rely on.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

use contracts::fulfillment::HOOK_SECRET_HEADER;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use testkit::fake_sns::FakeSns;
use testkit::moto::Moto;
use testkit::process::{exits_with_one_line_naming, run_to_exit, safe_aws_env};
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

/// Everything missing is named in the one line, not one setting a start.
#[tokio::test]
async fn missing_configuration_exits_with_one_line_naming_it() {
    let named = [
        "INTERSTELLA_API_KEY",
        "/interstella/apiKey",
        "INTERSTELLA_API_ENDPOINT",
        "/interstella/apiEndpoint",
        "GLUE_HOOK_SECRET",
        "/interstella/glueHookSecret",
        "AWS_REGION",
    ];
    exits_with_one_line_naming(monolith_exe(), &safe_aws_env(), &named).await;
}

/// Runs the monolith with `env` (JSON logs) and checks it exits 2 with
/// nothing on stderr and, among lines that are all JSON, one error event;
/// its message.
async fn exits_with_one_json_error_event(env: &HashMap<String, String>) -> String {
    let output = run_to_exit(monolith_exe(), env).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().is_empty(), "plain text beside the JSON: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let errors: Vec<&serde_json::Value> = events.iter().filter(|event| event["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    errors[0]["message"].as_str().unwrap_or_default().to_owned()
}

/// A value clap itself refuses (out of range) is one line like every other
/// refusal at start: on stderr naming the variable, or under JSON logs an
/// error event (clap wrote four plain lines, none of them an error event).
#[tokio::test]
async fn a_value_out_of_range_is_one_line_naming_its_variable_or_a_json_error_event() {
    let mut env = safe_aws_env();
    env.insert("MAX_CONNECTIONS".into(), "0".into());
    let named = ["monolith: ", "--max-connections", "1 to 4096", "MAX_CONNECTIONS"];
    exits_with_one_line_naming(monolith_exe(), &env, &named).await;
    env.insert("LOG_FORMAT".into(), "json".into());
    let message = exits_with_one_json_error_event(&env).await;
    assert!(message.contains("MAX_CONNECTIONS"), "{message}");
    // --help is still clap's, on stdout, exit 0.
    let help = tokio::process::Command::new(monolith_exe())
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("MAX_CONNECTIONS"));
    testkit::process::help_hides_the_value_of(monolith_exe(), "INTERSTELLA_API_ENDPOINT");
}

/// A setting set blank, as a compose file's `${X:-}` sets it, is not set:
/// the service starts on its defaults (a blank port, log format or metrics
/// port stopped it: "cannot parse integer from empty string"). But not a
/// switch of trust: blank, it is refused as a misspelling is, rather than
/// fall back to accepting unsigned orders unnoticed.
#[tokio::test]
async fn blank_settings_are_not_set_but_for_the_switches_of_trust() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    for blank in [
        "METRICS_PORT",
        "LOG_FORMAT",
        "MAX_CONNECTIONS",
        "AWS_ENDPOINT_URL_SNS",
        "STRANGLED",
    ] {
        env.insert(blank.into(), " ".into());
    }
    for switch in platform::settings::SWITCHES_OF_TRUST {
        let mut blank_switch = env.clone();
        blank_switch.insert(switch.into(), "".into());
        exits_with_one_line_naming(monolith_exe(), &blank_switch, &[switch]).await;
    }
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    assert_eq!(send_workshop_curl(addr).await.unwrap().0, 200);
}

/// Outside EC2 an instance metadata service may answer and refuse (403):
/// the AWS SDK warned twice, in lines of many hundred characters, before
/// the monolith's one line; by default they are not shown.
#[tokio::test]
async fn without_a_region_it_says_so_in_one_line_though_instance_metadata_refused() {
    let mut env = with_refusing_instance_metadata().await;
    env.insert("GLUE_HOOK_SECRET".into(), HOOK_SECRET.into());
    let said = exits_2_with_one_line(&env).await;
    assert!(said.contains("no AWS region (set AWS_REGION)"), "{said}");
}

/// With a region but no credentials (the instance metadata service refuses
/// them), SSM cannot be asked: one line saying why, not the SDK's warning
/// and its dump of the raw response.
#[tokio::test]
async fn without_credentials_it_says_why_in_one_short_line() {
    let mut env = with_refusing_instance_metadata().await;
    env.insert("AWS_REGION".into(), "us-east-1".into());
    env.insert("GLUE_HOOK_SECRET".into(), HOOK_SECRET.into());
    let stderr = exits_2_with_one_line(&env).await;
    assert!(
        stderr.contains("/interstella/apiKey") && stderr.contains("failed to load IMDS session token"),
        "{stderr}"
    );
    assert!(!stderr.contains("DispatchFailure("), "a Debug dump: {stderr}");
}

/// Runs the monolith with `env` to its exit: 2, nothing on stdout, one line
/// on stderr, which it returns.
async fn exits_2_with_one_line(env: &HashMap<String, String>) -> String {
    let output = run_to_exit(monolith_exe(), env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.is_empty(), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// The environment of [`safe_aws_env`] with an instance metadata service on
/// loopback that refuses everything (403), as one outside EC2 may.
async fn with_refusing_instance_metadata() -> HashMap<String, String> {
    let imds = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let imds_url = format!("http://{}", imds.local_addr().unwrap());
    let refusing = axum::Router::new().fallback(|| async { axum::http::StatusCode::FORBIDDEN });
    tokio::spawn(async move { axum::serve(imds, refusing).await });
    let mut env = safe_aws_env();
    env.remove("AWS_EC2_METADATA_DISABLED");
    env.insert("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), imds_url);
    env
}

/// The glue hook secret the process tests configure.
const HOOK_SECRET: &str = "env-hook-secret-value-0123456789";

/// Everything the monolith needs from the environment, for `api`.
fn monolith_env(api: &FakeApi) -> HashMap<String, String> {
    let mut env = safe_aws_env();
    env.insert("INTERSTELLA_API_KEY".into(), "env-secret-key-value".into());
    env.insert("INTERSTELLA_API_ENDPOINT".into(), api.url.to_string());
    env.insert("GLUE_HOOK_SECRET".into(), HOOK_SECRET.into());
    env
}

#[tokio::test]
async fn a_missing_hook_secret_or_sns_only_without_topics_exits_2_with_one_line() {
    let api = FakeApi::start().await;
    let mut no_secret = monolith_env(&api);
    no_secret.remove("GLUE_HOOK_SECRET");
    let named = ["GLUE_HOOK_SECRET", "/interstella/glueHookSecret"];
    exits_with_one_line_naming(monolith_exe(), &no_secret, &named).await;

    let mut sns_only = monolith_env(&api);
    sns_only.insert("ACCEPT_UNSIGNED_ORDERS".into(), "false".into());
    let named = ["ACCEPT_UNSIGNED_ORDERS=false", "SNS_TOPIC_ARNS"];
    exits_with_one_line_naming(monolith_exe(), &sns_only, &named).await;
    assert_eq!(
        run_to_exit(monolith_exe(), &sns_only).await.status.code(),
        Some(2)
    );
}

#[tokio::test]
async fn under_json_logs_the_line_saying_why_it_cannot_start_is_a_json_error_event() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.remove("GLUE_HOOK_SECRET");
    env.insert("LOG_FORMAT".into(), "json".into());
    let message = exits_with_one_json_error_event(&env).await;
    assert!(
        message.starts_with("monolith: ") && message.contains("GLUE_HOOK_SECRET"),
        "{message}"
    );
}

#[tokio::test]
async fn under_json_logs_an_orders_lines_are_json_naming_it_once_in_span() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert("LOG_FORMAT".into(), "json".into());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    let (status, _) = send_workshop_curl(addr).await.unwrap();
    assert_eq!(status, 200);
    let refused = reqwest::Client::new()
        .post(format!("http://{addr}/order/"))
        .body(r#"{"Message": {"bundle": "many"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let order_id = api.received()[0]
        .header("x-interstella-order-id")
        .expect("the order's id reaches the API")
        .to_string();
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());

    let lines: Vec<serde_json::Value> = monolith
        .seen
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    // What a CloudWatch Logs Insights query on `span.order_id` finds.
    let orders_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["span"]["order_id"] == order_id.as_str())
        .collect();
    // The workshop's lines for a bundle and the access line, at least.
    assert!(orders_lines.len() >= 3, "{:#?}", monolith.seen);
    for line in &lines {
        assert!(
            line.get("spans").is_none(),
            "the span is repeated in a list: {line}"
        );
    }
    // A status is a number on every line, the refusal's as the access
    // line's: a Logs Insights `filter status >= 400` finds both.
    let statuses: Vec<&serde_json::Value> = lines.iter().filter_map(|line| line.get("status")).collect();
    assert!(
        statuses
            .iter()
            .filter(|status| status.as_u64() == Some(400))
            .count()
            >= 2,
        "{:#?}",
        monolith.seen
    );
    assert!(
        statuses.iter().all(|status| status.is_u64()),
        "{:#?}",
        monolith.seen
    );
    // So is an access line's latency, in ms: `stats pct(latency_ms, 99)`.
    let access_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["message"] == "finished processing request")
        .collect();
    assert_eq!(access_lines.len(), 2, "{:#?}", monolith.seen);
    assert!(
        access_lines
            .iter()
            .all(|line| line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0)),
        "{:#?}",
        monolith.seen
    );
}

/// A delivery refused before it is trusted is logged with the MessageId it
/// claims, as `claimed_order_id`, so whoever follows an order by its id in
/// the service's log sees why a delivery naming it failed (a tampered copy
/// here; a certificate that could not be fetched alike), and can tell it
/// from the order's own lines (`order_id`): anyone may send a copy naming
/// any order. A claimed id not of SNS' shape is not taken as an id. (A
/// process: a test's own subscriber in a test binary shares tracing's
/// interest in spans with the tests beside it.)
#[tokio::test]
async fn a_refused_delivery_is_logged_with_the_message_id_it_claims() {
    let api = FakeApi::start().await;
    let sns = FakeSns::start().await;
    let mut env = monolith_env(&api);
    env.insert("AWS_ENDPOINT_URL_SNS".into(), sns.base.to_string());
    env.insert("LOG_FORMAT".into(), "json".into());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    let deliver = async |envelope: &contracts::Envelope| {
        let mut request = reqwest::Client::new()
            .post(format!("http://{addr}/order/"))
            .header("content-type", contracts::sns::CONTENT_TYPE)
            .body(serde_json::to_string(envelope).unwrap());
        for (name, value) in testkit::fake_sns::delivery_headers(envelope) {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    };
    let mut tampered = sns.notification(r#"{"bundle": 1}"#, contracts::SignatureVersion::V2);
    tampered.message = r#"{"bundle": 1000}"#.into();
    assert_eq!(deliver(&tampered).await, 403);
    let mut odd_id = sns.notification(r#"{"bundle": 1}"#, contracts::SignatureVersion::V2);
    odd_id.message_id = "order-of-my-choosing".into();
    assert_eq!(deliver(&odd_id).await, 403);
    assert_eq!(api.count(), 0);
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());

    let refusals: Vec<serde_json::Value> = monolith
        .seen
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "request refused")
        .collect();
    assert_eq!(refusals.len(), 2, "{:#?}", monolith.seen);
    assert_eq!(
        refusals[0]["span"]["claimed_order_id"],
        tampered.message_id.as_str(),
        "{:#?}",
        monolith.seen
    );
    assert!(
        refusals[0]["span"].get("order_id").is_none(),
        "{:#?}",
        monolith.seen
    );
    assert!(
        refusals[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("verification failed"),
        "{:#?}",
        monolith.seen
    );
    assert_eq!(refusals[1]["span"]["uri"], "/order/", "{:#?}", monolith.seen);
    for id in ["order_id", "claimed_order_id"] {
        assert!(refusals[1]["span"].get(id).is_none(), "{:#?}", monolith.seen);
    }
}

#[tokio::test]
async fn the_hook_secret_is_checked_and_never_logged() {
    let api = FakeApi::start().await;
    let mut monolith = ServiceProcess::start(monolith_exe(), &monolith_env(&api));
    let addr = monolith.wait_listening().await;
    let client = reqwest::Client::new();
    let hook = async |secret: Option<&str>| {
        let mut request = client
            .post(format!("http://{addr}/fulfill/"))
            .body(r#"{"iridium": 1000000}"#);
        if let Some(secret) = secret {
            request = request.header(HOOK_SECRET_HEADER, secret);
        }
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(hook(None).await, 401);
    assert_eq!(hook(Some("wrong-hook-secret-value-0123456789")).await, 401);
    assert_eq!(api.count(), 0);
    assert_eq!(hook(Some(HOOK_SECRET)).await, 200);
    assert_eq!(api.count(), 1);
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let log = monolith.seen.join("\n");
    assert!(
        log.matches("status=401").count() >= 2,
        "both refusals are logged:\n{log}"
    );
    for secret in [HOOK_SECRET, "wrong-hook-secret-value"] {
        assert!(!log.contains(secret), "a hook secret reached the log:\n{log}");
    }
}

#[tokio::test]
async fn an_unverified_topic_arn_is_logged_short_on_one_line() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert(
        "SNS_TOPIC_ARNS".into(),
        "arn:aws:sns:us-east-1:123456789012:orders".into(),
    );
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    let topic = format!("arn:x\nERROR forged line{}", "A".repeat(400 * 1024));
    let envelope = json!({
        "Type": "Notification", "MessageId": "00000000-0000-4000-8000-000000000001",
        "TopicArn": topic, "Message": "{\"bundle\": 1}",
        "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "2", "Signature": "c2ln",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    });
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/order/"))
        .body(envelope.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        response.text().await.unwrap().len() < 1024,
        "the topic was echoed in full"
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let refused: Vec<&String> = monolith
        .seen
        .iter()
        .filter(|l| l.contains("not accepted"))
        .collect();
    assert_eq!(refused.len(), 1, "{:#?}", monolith.seen);
    assert!(refused[0].len() < 1024, "the topic was logged in full");
    for line in &monolith.seen {
        assert!(
            !line.contains("forged line") || line.contains("not accepted"),
            "a forged log line: {line:?}"
        );
        assert!(
            !line.contains("ANY topic"),
            "warned although topics are listed: {line}"
        );
    }
}

#[tokio::test]
async fn a_token_in_the_api_endpoint_is_masked_in_the_start_up_line() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    let mut endpoint = api.url.clone();
    endpoint.set_query(Some("token=s3cr3t-in-url"));
    env.insert("INTERSTELLA_API_ENDPOINT".into(), endpoint.to_string());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    monolith.wait_listening().await;
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let said: Vec<&String> = monolith
        .seen
        .iter()
        .filter(|l| l.contains("fulfillment API"))
        .collect();
    assert!(
        said.len() == 1 && said[0].contains("?token=***"),
        "{:#?}",
        monolith.seen
    );
    assert!(
        monolith.seen.iter().all(|l| !l.contains("s3cr3t-in-url")),
        "{:#?}",
        monolith.seen
    );
}

#[tokio::test]
async fn a_line_separator_or_direction_override_in_the_path_is_logged_escaped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = FakeApi::start().await;
    let mut monolith = ServiceProcess::start(monolith_exe(), &monolith_env(&api));
    let addr = monolith.wait_listening().await;
    // Raw bytes: an HTTP client would percent-encode them; hyper takes UTF-8.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            "POST /order/\u{2028}FORGED\u{202e} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let logged: Vec<&String> = monolith.seen.iter().filter(|l| l.contains("FORGED")).collect();
    assert!(
        !logged.is_empty()
            && logged
                .iter()
                .all(|l| l.contains(r"/order/\u{2028}FORGED\u{202e}")),
        "{logged:#?}"
    );
    for line in &monolith.seen {
        assert!(
            !line.contains(['\u{2028}', '\u{202e}']),
            "raw from the path: {line:?}"
        );
    }
}

/// Sends the workshop's curl to the monolith at `addr` with `api` behaving
/// as `behaviour`, once the order has reached the API; the answer to come.
async fn order_at_the_api(
    api: &FakeApi,
    behaviour: ApiBehaviour,
    addr: std::net::SocketAddr,
) -> tokio::task::JoinHandle<Result<(u16, String), reqwest::Error>> {
    api.behave(behaviour);
    let order = tokio::spawn(send_workshop_curl(addr));
    wait_until(
        "the order to reach the API",
        Duration::from_secs(10),
        async || (api.count() == 1).then_some(()),
    )
    .await;
    order
}

#[tokio::test]
async fn environment_configures_and_sigterm_drains_in_flight_orders() {
    let api = FakeApi::start().await;
    let env = monolith_env(&api);
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;

    let order = order_at_the_api(&api, ApiBehaviour::Delay(Duration::from_millis(500)), addr).await;
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
        // The drain says what it waits for, and how long it took.
        "draining: waiting up to 20s for the requests in flight connections=1",
        "drained in ",
    ] {
        assert!(log.contains(line), "log lacks {line:?}:\n{log}");
    }
    assert!(
        !log.contains("env-secret-key-value"),
        "the API key reached the log:\n{log}"
    );
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("ANY topic")).collect();
    assert_eq!(warnings.len(), 1, "one warning about accepting any topic:\n{log}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("SNS_TOPIC_ARNS"));
    assert!(
        !log.contains("NOT verified"),
        "warned of no verification with it on:\n{log}"
    );
}

/// Signatures left unchecked by `SNS_VERIFY=false` is said loudly at
/// start, once: anyone who can reach the service can then place orders.
#[tokio::test]
async fn sns_verify_false_is_warned_at_start() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert("SNS_VERIFY".into(), "false".into());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    monolith.wait_listening().await;
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let warnings: Vec<&String> = monolith
        .seen
        .iter()
        .filter(|line| line.contains("SNS_VERIFY=false: SNS signatures are NOT verified"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", monolith.seen);
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
}

#[tokio::test]
async fn a_second_sigterm_during_the_drain_stops_it_at_once() {
    let api = FakeApi::start().await;
    let mut monolith = ServiceProcess::start(monolith_exe(), &monolith_env(&api));
    let addr = monolith.wait_listening().await;
    // An order the API never answers holds the drain for its downstream timeout.
    let order = order_at_the_api(&api, ApiBehaviour::Hang, addr).await;
    monolith.terminate().await;
    monolith.wait_line("shutting down", Duration::from_secs(10)).await;
    // Someone who will not wait the drain out: a second Ctrl-C, or SIGTERM.
    monolith.terminate().await;
    let exit = monolith.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(exit.code(), Some(1), "{:#?}", monolith.seen);
    let log = monolith.seen.join("\n");
    assert!(log.contains("stopped at a second signal"), "{log}");
    order.abort();
}

#[tokio::test]
async fn the_apis_status_is_logged_whatever_it_is() {
    // As the workshop printed it; the answer is ours: 502, SNS retries.
    let api = FakeApi::start().await;
    api.behave(ApiBehaviour::Fail(500));
    let mut monolith = ServiceProcess::start(monolith_exe(), &monolith_env(&api));
    let addr = monolith.wait_listening().await;
    let (status, text) = send_workshop_curl(addr).await.unwrap();
    assert_eq!(
        (status, text.as_str()),
        (502, "Your order has NOT been fulfilled")
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let log = monolith.seen.join("\n");
    assert!(
        log.contains("INFO") && log.contains("API Status Code: 500"),
        "{log}"
    );
    assert!(!log.contains("Bundle fulfilled"), "{log}");
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
        use aws_sdk_ssm::types::ParameterType::{SecureString, String as Plain};
        let parameters = [
            ("/interstella/apiKey", "ssm-secret-key-value", SecureString),
            (
                "/interstella/glueHookSecret",
                "ssm-hook-secret-value-0123456789",
                SecureString,
            ),
            ("/interstella/apiEndpoint", api.url.as_str(), Plain),
        ];
        for (name, value, kind) in parameters {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(kind)
                .overwrite(true)
                .send()
                .await?;
        }
        Ok::<(), aws_sdk_ssm::error::SdkError<_, _>>(())
    };
    put_parameters().await.unwrap();

    let mut monolith = ServiceProcess::start(monolith_exe(), &aws_env);
    let addr = monolith.wait_listening().await;
    let (status, _) = send_workshop_curl(addr).await.unwrap();
    assert_eq!(status, 200);
    let received = api.received();
    assert_eq!(received[0].header("x-api-key"), Some("ssm-secret-key-value"));
    assert_eq!(
        received[0].fulfillment(),
        json!({"iridium": 1, "magnesite": 1, "produced_by": "monolith"})
    );
    let hook = reqwest::Client::new()
        .post(format!("http://{addr}/fulfill/"))
        .header(HOOK_SECRET_HEADER, "ssm-hook-secret-value-0123456789")
        .body(r#"{"iridium": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hook.status().as_u16(),
        200,
        "the hook secret from SSM is the one checked"
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let log = monolith.seen.join("\n");
    for secret in ["ssm-secret-key-value", "ssm-hook-secret-value"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }

    // Named as a shared parameter is (by ARN), with a version selector, and
    // one parameter for two settings: each finds its value.
    let key_arn = ssm
        .get_parameter()
        .name("/interstella/apiKey")
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|p| p.arn)
        .unwrap();
    let mut named_otherwise = aws_env.clone();
    named_otherwise.insert("SSM_API_KEY_PARAM".into(), key_arn);
    named_otherwise.insert(
        "SSM_GLUE_HOOK_SECRET_PARAM".into(),
        "/interstella/glueHookSecret:1".into(),
    );
    let mut monolith = ServiceProcess::start(monolith_exe(), &named_otherwise);
    let addr = monolith.wait_listening().await;
    assert_eq!(send_workshop_curl(addr).await.unwrap().0, 200);
    assert_eq!(
        api.received()[1].header("x-api-key"),
        Some("ssm-secret-key-value")
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    named_otherwise.insert("SSM_API_KEY_PARAM".into(), "/interstella/glueHookSecret".into());
    let mut monolith = ServiceProcess::start(monolith_exe(), &named_otherwise);
    monolith.wait_listening().await;
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());

    // A parameter SSM does not have: the one-line exit names it and SSM.
    aws_env.insert("SSM_API_KEY_PARAM".into(), "/interstella/missing".into());
    let named = ["/interstella/missing", "parameter not found"];
    exits_with_one_line_naming(monolith_exe(), &aws_env, &named).await;
}

/// A stand-in for SSM's `GetParameters` (the AWS JSON protocol): answers
/// An endpoint that is no URL is refused without being quoted: it may carry
/// a token, which the start-up line masks.
#[tokio::test]
async fn an_api_endpoint_that_is_no_url_is_refused_without_its_token() {
    let api = FakeApi::start().await;
    for (endpoint, said) in [
        (
            "api.example.com/prod/receiving?token=s3cr3t-in-url",
            "INTERSTELLA_API_ENDPOINT is not a URL",
        ),
        // A host and port without `http://` parses as a URL of the scheme
        // `localhost`: every order would have failed with a 502.
        (
            "localhost:4000/receiving/?token=s3cr3t-in-url",
            "INTERSTELLA_API_ENDPOINT is not an http:// or https:// URL",
        ),
    ] {
        let mut env = monolith_env(&api);
        env.insert("INTERSTELLA_API_ENDPOINT".into(), endpoint.into());
        let output = run_to_exit(monolith_exe(), &env).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(said), "{stderr}");
        assert!(!stderr.contains("s3cr3t-in-url"), "{stderr}");
    }
}

/// A key a header cannot carry failed every order; now it stops the start.
#[tokio::test]
async fn an_api_key_a_header_cannot_carry_is_refused_without_quoting_it() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert("INTERSTELLA_API_KEY".into(), "key-part-one\nkey-part-two".into());
    let output = run_to_exit(monolith_exe(), &env).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("INTERSTELLA_API_KEY holds characters an HTTP header cannot carry"),
        "{stderr}"
    );
    assert!(!stderr.contains("key-part"), "{stderr}");
}

/// `ThrottlingException` to the first `throttled` calls, then the
/// parameters the monolith asks for; with `hang`, never answers.
struct FakeSsm {
    url: String,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeSsm {
    async fn start(throttled: usize, hang: bool) -> Self {
        use axum::http::{StatusCode, header};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let answer = move |body: axum::body::Bytes| {
            let calls = counted.clone();
            async move {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                if hang {
                    std::future::pending::<()>().await;
                }
                let json = [(header::CONTENT_TYPE, "application/x-amz-json-1.1")];
                if call < throttled {
                    let refusal = json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
                    return (StatusCode::BAD_REQUEST, json, refusal.to_string());
                }
                let asked: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let values = HashMap::from([
                    ("/interstella/apiKey", "ssm-secret-key-value"),
                    ("/interstella/apiEndpoint", "http://127.0.0.1:9/"),
                    ("/interstella/glueHookSecret", "ssm-hook-secret-value-0123456789"),
                ]);
                let parameters: Vec<_> = asked["Names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|name| {
                        let name = name.as_str().unwrap();
                        json!({"Name": name, "Value": values[name], "Type": "String"})
                    })
                    .collect();
                let found = json!({"Parameters": parameters, "InvalidParameters": []});
                (StatusCode::OK, json, found.to_string())
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new().route("/", axum::routing::post(answer));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The monolith's environment, every setting left to this SSM.
    fn env(&self) -> HashMap<String, String> {
        let mut env = safe_aws_env();
        env.insert("AWS_ENDPOINT_URL".into(), self.url.clone());
        env.insert("AWS_REGION".into(), "us-east-1".into());
        env.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
        env
    }
}

#[tokio::test]
async fn a_throttled_ssm_is_asked_again_until_it_answers() {
    // Tasks starting together share SSM's 40 TPS: three refusals in a row
    // (one more than the SDK's default attempts allow) must not stop it.
    let ssm = FakeSsm::start(3, false).await;
    let mut monolith = ServiceProcess::start(monolith_exe(), &ssm.env());
    // The SDK's jittered backoff between the attempts may take up to 7 s.
    monolith
        .wait_address("listening on ", Duration::from_secs(30))
        .await;
    assert_eq!(ssm.calls(), 4, "three throttled calls, then the one answered");
}

#[tokio::test]
async fn a_sigterm_while_waiting_for_ssm_stops_it_without_serving() {
    // As PID 1 in a container a SIGTERM with no handler is dropped: the
    // handler must be there while the settings are still being read.
    let ssm = FakeSsm::start(0, true).await;
    let mut monolith = ServiceProcess::start(monolith_exe(), &ssm.env());
    wait_until("the monolith to ask SSM", Duration::from_secs(10), async || {
        (ssm.calls() == 1).then_some(())
    })
    .await;
    monolith.terminate().await;
    let exit = monolith.wait_exit(Duration::from_secs(5)).await;
    assert!(
        exit.success(),
        "exit after SIGTERM: {exit:?}; output: {:#?}",
        monolith.seen
    );
    let log = monolith.seen.join("\n");
    assert!(!log.contains("listening on"), "it started serving:\n{log}");
    assert!(log.contains("stopped before it started serving"), "{log}");
    assert!(
        !log.contains("finishing in-flight orders"),
        "no drain to announce:\n{log}"
    );
}

#[tokio::test]
async fn an_ssm_that_keeps_throttling_exits_2_with_one_short_line_saying_so() {
    let ssm = FakeSsm::start(usize::MAX, false).await;
    let output = run_to_exit(monolith_exe(), &ssm.env()).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("ThrottlingException: Rate exceeded") && lines[0].contains("/interstella/apiKey"),
        "{stderr}"
    );
    // The three settings SSM was asked for and why it did not answer, not
    // the SDK's dump of its error (thousands of characters).
    assert!(
        lines[0].len() < 500,
        "the SDK's dump is not a line for a person: {stderr}"
    );
    assert!(ssm.calls() > 3, "asked more often than the SDK's default 3 times");
}

/// A setting that is no URL, and a filter directive that does not parse, are
/// said once on stderr (the URL never quoted) and the service starts.
#[tokio::test]
async fn a_bad_trace_endpoint_or_log_directive_is_said_and_left_out() {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        "http://collector:otelpass@[::1".into(),
    );
    // No level: only the start's lines, to learn the port.
    env.insert(
        "RUST_LOG".into(),
        "platform::startup=info,platform::server=wrn,verbose".into(),
    );
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    assert_eq!(send_workshop_curl(addr).await.unwrap().0, 200);
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let log = monolith.seen.join("\n");
    assert!(
        log.contains("traces are not exported: OTEL_EXPORTER_OTLP_ENDPOINT is not a URL"),
        "{log}"
    );
    assert!(!log.contains("otelpass"), "{log}");
    assert!(
        log.contains(r#"RUST_LOG: "platform::server=wrn" is left out"#),
        "{log}"
    );
    // A word where a level was meant is a target's name: said, and kept.
    assert!(
        log.contains(r#"RUST_LOG: "verbose" names a target, not a level, and no level is given"#),
        "{log}"
    );
    assert_eq!(log.matches("names a target").count(), 1, "{log}");
}

/// `RUST_LOG` filters the log lines alone: turned off (to cut what
/// CloudWatch bills), or down to one module, the traces are exported as
/// ever. It filtered the whole subscriber, traces included.
#[tokio::test]
async fn log_filters_leave_the_traces_alone() {
    for filter in ["off", "monolith=debug"] {
        let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&posts);
        let collector = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(async move |body: axum::body::Bytes| {
                if !body.is_empty() {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                axum::http::StatusCode::OK
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let collector_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });
        let api = FakeApi::start().await;
        let mut env = monolith_env(&api);
        env.insert("RUST_LOG".into(), filter.into());
        env.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            format!("http://{collector_addr}"),
        );
        // No line says where it listens under these filters: a port of ours.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        env.insert("PORT".into(), port.to_string());
        let mut command = tokio::process::Command::new(monolith_exe());
        command.env_clear().envs(&env);
        let mut monolith = ServiceProcess::start_command(command);
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_until("the monolith listening", Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
        })
        .await;
        assert_eq!(send_workshop_curl(addr).await.unwrap().0, 200, "{filter}");
        // Stopping flushes the spans still batched.
        monolith.terminate().await;
        assert!(monolith.wait_exit(Duration::from_secs(30)).await.success());
        // A module alone at a level: said to take the order ids with it.
        let said = monolith
            .seen
            .iter()
            .any(|line| line.contains("lose their order_id") && line.contains("info,monolith=debug"));
        assert_eq!(said, filter == "monolith=debug", "{filter}: {:?}", monolith.seen);
        wait_until(
            "the order's spans at the collector",
            Duration::from_secs(10),
            async || (posts.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(()),
        )
        .await;
    }
}

/// Spans a collector does not take (none listening, or one that takes the
/// connection and never answers) are said to be lost, without the
/// endpoint: the SDK's own word on it is compiled out, and it waits on an
/// export with no timeout of its own, so every trace was lost unsaid.
#[tokio::test]
async fn spans_that_cannot_be_exported_are_said_to_be_lost() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let monolith = spans_for_collector_are_said_to_be_lost(closed, &[], "").await;
    assert!(
        !monolith.seen.iter().any(|line| line.contains("TIMEOUT")),
        "{:?}",
        monolith.seen
    );
    // The exporter's own variables set each export's timeout: it would
    // otherwise be the retries' deadline only, and each export 10 s. One
    // that is no number is passed over, as the exporter does, but said.
    let timeouts = [
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1.5s"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
    ];
    let monolith =
        spans_for_collector_are_said_to_be_lost(testkit::black_hole(), &timeouts, "no answer within 1.5s")
            .await;
    let passed_over =
        "traces: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT is not a whole number of milliseconds, and is passed over";
    assert!(
        monolith.seen.iter().any(|line| line.contains(passed_over)),
        "{:?}",
        monolith.seen
    );
}

/// A monolith exporting its spans to `collector`, which does not take them,
/// with the variables `env` set, says so (`why`) within the batch's 5 s
/// delay and the export's timeout; the monolith, stopped.
async fn spans_for_collector_are_said_to_be_lost(
    collector: std::net::SocketAddr,
    env_set: &[(&str, &str)],
    why: &str,
) -> ServiceProcess {
    let api = FakeApi::start().await;
    let mut env = monolith_env(&api);
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://{collector}/?token=otelpass"),
    );
    env.extend(
        env_set
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    assert_eq!(send_workshop_curl(addr).await.unwrap().0, 200);
    monolith
        .wait_line("spans not exported over OTLP", Duration::from_secs(45))
        .await;
    let said: Vec<&String> = monolith
        .seen
        .iter()
        .filter(|line| line.contains("spans not exported over OTLP"))
        .collect();
    assert!(
        said.iter()
            .all(|line| line.contains("WARN") && line.contains(why) && !line.contains("otelpass")),
        "{collector}: {said:?}"
    );
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(30)).await.success());
    monolith
}

/// Under `RUST_LOG=warn` (the launcher's console, a quiet `LogFilter` on
/// ECS) the lines that get through are the ones about orders that went
/// wrong, so they must still say which order: the request span was at INFO,
/// turned off by that filter, and its `order_id` with it.
#[tokio::test]
async fn under_a_warn_filter_an_orders_error_line_still_names_the_order() {
    let api = FakeApi::start().await;
    api.behave(ApiBehaviour::Fail(503));
    let mut env = monolith_env(&api);
    // And the start's lines, to learn the port.
    env.insert("RUST_LOG".into(), "warn,platform::startup=info".into());
    let mut monolith = ServiceProcess::start(monolith_exe(), &env);
    let addr = monolith.wait_listening().await;
    assert_eq!(send_workshop_curl(addr).await.unwrap().0, 502);
    monolith.terminate().await;
    assert!(monolith.wait_exit(Duration::from_secs(10)).await.success());
    let failed: Vec<&String> = monolith
        .seen
        .iter()
        .filter(|line| line.contains("request failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", monolith.seen);
    assert!(
        failed[0].contains("order_id=") && failed[0].contains("uri=/order/"),
        "{failed:?}"
    );
    assert!(
        !monolith
            .seen
            .iter()
            .any(|line| line.contains("finished processing request")),
        "the filter let the access log's info through: {:?}",
        monolith.seen
    );
}
