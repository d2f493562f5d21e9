//! HQ as the admin stack runs it on AWS: the `hq` binary publishing through
//! the AWS SDK to moto's SNS (`HQ_PUBLISH_TO=aws`), its ledger in the
//! rollback-journal mode it uses on EFS (`HQ_JOURNAL_MODE=delete`; the mode
//! itself across a restart: `fulfillment.rs`).

use crate::support::{binary_env, hq_binary, seed_identity};
use platform::TrustConfig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use testkit::moto::Moto;
use testkit::process::{ServiceProcess, exits_with_one_line_naming};
use testkit::spawn::{TEST_API_KEY, monolith_config};
use testkit::{spawn_monolith, wait_until};

const ADMIN_TOKEN: &str = "aws-test-admin-token-0123456789";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// An SNS client of moto's, to create the topics the admin stack would.
async fn sns_client(moto: &Moto) -> aws_sdk_sns::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.base.as_str().trim_end_matches('/'))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_sns::Client::new(&config)
}

/// HQ's environment as its task definition sets it, but for the addresses:
/// its data in `dir` (with the tests' signing identity), publishing to
/// `topic_arns` (`orders=ARN,iridium=ARN,magnesite=ARN`) on the SNS at `sns`.
fn env_on_aws(dir: &std::path::Path, sns: &str, topic_arns: String) -> HashMap<String, String> {
    seed_identity(dir);
    let mut env = binary_env(dir);
    env.extend(
        [
            ("HQ_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("HQ_PUBLISH_TO", "aws".to_owned()),
            ("HQ_SNS_TOPIC_ARNS", topic_arns),
            ("AWS_ENDPOINT_URL_SNS", sns.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    env
}

/// GETs `path` on HQ at `base` as the admin; its JSON.
async fn admin_get(base: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// DELETEs `path` on HQ at `base` as the admin; its status.
async fn admin_delete(base: &str, path: &str) -> u16 {
    let response = reqwest::Client::new()
        .delete(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// POSTs `body` to `path` on HQ at `base` as the admin; status and JSON.
async fn admin_post(base: &str, path: &str, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn publishing_to_aws_without_every_topic_arn_exits_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = binary_env(dir.path());
    env.extend(
        [
            ("HQ_PUBLISH_TO", "aws".to_owned()),
            (
                "HQ_SNS_TOPIC_ARNS",
                "orders=arn:aws:sns:us-east-1:123456789012:o,magnesite=arn:aws:sns:us-east-1:123456789012:m"
                    .to_owned(),
            ),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    let hq = hq_binary();
    exits_with_one_line_naming(hq, &env, &["HQ_SNS_TOPIC_ARNS", "iridium has none"]).await;
    // A setting refused, as every other: exit 2.
    assert_eq!(
        testkit::process::run_to_exit(hq, &env).await.status.code(),
        Some(2)
    );
    // Refused before anything was made in the data directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn hq_publishes_through_the_aws_sdk_and_reconciles_what_sns_delivered() {
    let moto = Moto::start().await;
    let sns = sns_client(&moto).await;
    let mut arns = HashMap::new();
    for topic in ["orders", "iridium", "magnesite"] {
        let created = sns
            .create_topic()
            .name(format!("hq-{topic}"))
            .send()
            .await
            .unwrap();
        arns.insert(topic, created.topic_arn().unwrap().to_owned());
    }

    // HQ as its task definition runs it, but for the addresses.
    let dir = tempfile::tempdir().unwrap();
    let topic_arns = format!(
        "orders={},iridium={},magnesite={}",
        arns["orders"], arns["iridium"], arns["magnesite"]
    );
    let mut env = env_on_aws(dir.path(), moto.base.as_str(), topic_arns);
    env.insert("HQ_API_KEYS".into(), TEST_API_KEY.into());
    env.insert("HQ_JOURNAL_MODE".into(), "delete".into());
    let mut hq = ServiceProcess::start(hq_binary(), &env);
    // The port HQ bound and says it listens on: its own, unlike one found
    // free here and handed to it, which another process may take first.
    let base = format!("http://{}", hq.wait_listening().await);
    // Where its orders go, and no stand-in named: on AWS the services
    // trust SNS itself, not HQ.
    let listening = hq.seen.iter().find(|line| line.contains("HQ listening on"));
    assert!(
        listening.is_some_and(
            |line| line.contains("orders published to SNS (HQ_PUBLISH_TO=aws)") && !line.contains("stand-in")
        ),
        "{listening:?}"
    );

    // A real monolith, trusting moto's signatures on the orders topic only,
    // fulfilling through HQ's API.
    let trust = TrustConfig {
        topic_arns: vec![arns["orders"].clone()],
        sns_stand_in: Some(moto.base.clone()),
        ..TrustConfig::default()
    };
    let api = url::Url::parse(&format!("{base}/receiving/")).unwrap();
    let monolith = spawn_monolith(monolith_config(&api, trust)).await;

    // The portal's subscribe: SNS Subscribe; the listing is SNS' own.
    let endpoint = monolith.url("/order/");
    let (status, subscribed) = admin_post(
        &base,
        "/topics/orders/subscriptions",
        json!({ "endpoint": endpoint }).to_string(),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{subscribed}");
    let topics = admin_get(&base, "/topics").await;
    let orders = &topics["topics"][0];
    assert_eq!(orders["topicArn"], arns["orders"].as_str(), "{topics}");
    assert_eq!(
        orders["subscriptions"][0]["endpoint"],
        endpoint.as_str(),
        "{topics}"
    );
    // moto confirms HTTP subscriptions at once (real SNS: pending until the
    // monolith GETs its SubscribeURL).
    assert_eq!(orders["subscriptions"][0]["state"], "confirmed", "{topics}");
    assert!(orders["stats"].is_null(), "SNS delivers, not HQ: {topics}");
    // So the dashboard shows no delivery counters of its own, not zeros.
    let dashboard = admin_get(&base, "/dashboard/data").await;
    assert!(dashboard["topics"][0]["feed"].is_null(), "{dashboard}");

    // Published through SNS, delivered signed by moto, fulfilled through HQ's API.
    let (status, published) = admin_post(
        &base,
        "/topics/orders/publish",
        r#"{"bundle": 2}"#.to_owned(),
        &[("traceparent", TRACEPARENT)],
    )
    .await;
    assert_eq!(status, 201, "{published}");
    assert_eq!(published["subscribers"], 1, "{published}");
    let (status, refused) = admin_post(
        &base,
        "/topics/iridium/publish",
        r#"{"bundle": 1}"#.to_owned(),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{refused}");

    let reconciliation = wait_until(
        "the order fulfilled in HQ's ledger",
        Duration::from_secs(20),
        async || {
            let reconciliation = admin_get(&base, "/reconciliation").await;
            (reconciliation["fulfilled"] == 1).then_some(reconciliation)
        },
    )
    .await;
    assert_eq!(reconciliation["published"], 1, "{reconciliation}");
    assert_eq!(reconciliation["lost"], 0, "{reconciliation}");
    assert_eq!(reconciliation["duplicated"], 0, "{reconciliation}");
    let totals: Value = reqwest::Client::new()
        .get(format!("{base}/receiving/"))
        .header("x-api-key", TEST_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (totals["iridium"].as_u64(), totals["magnesite"].as_u64()),
        (Some(2), Some(2)),
        "{totals}"
    );
    assert!(
        !dir.path().join("hq-ledger.sqlite3-wal").exists(),
        "journal mode delete keeps no write-ahead log"
    );

    // The portal's Remove: SNS Unsubscribe, of HQ's topics' subscriptions
    // only. Another topic's, in the same account, is not HQ's to remove.
    let other = sns.create_topic().name("not-hq").send().await.unwrap();
    let foreign = sns
        .subscribe()
        .topic_arn(other.topic_arn().unwrap())
        .protocol("http")
        .endpoint(endpoint.as_str())
        .send()
        .await
        .unwrap();
    let foreign_arn = foreign.subscription_arn().unwrap();
    // An ARN's colons may stand in a path segment as they are.
    let path = |arn: &str| format!("/subscriptions/{arn}");
    assert_eq!(admin_delete(&base, &path(foreign_arn)).await, 404);
    let arn = orders["subscriptions"][0]["subscription_arn"].as_str().unwrap();
    assert_eq!(admin_delete(&base, &path(arn)).await, 204);
    let topics = admin_get(&base, "/topics").await;
    assert_eq!(topics["topics"][0]["subscriptions"], json!([]), "{topics}");
    let left = sns
        .list_subscriptions_by_topic()
        .topic_arn(other.topic_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(left.subscriptions().len(), 1, "{left:?}");

    // The ledger fails after SNS took an order: the answer names the
    // MessageId and says not to publish it again (which would be a second
    // order), rather than a bare 500 inviting a retry.
    let ledger = rusqlite::Connection::open(dir.path().join("hq-ledger.sqlite3")).unwrap();
    ledger
        .execute_batch("ALTER TABLE published RENAME TO published_elsewhere")
        .unwrap();
    let (status, failed) = admin_post(
        &base,
        "/topics/orders/publish",
        r#"{"bundle": 3}"#.to_owned(),
        &[],
    )
    .await;
    assert_eq!(status, 500, "{failed}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("published to SNS as MessageId ") && message.ends_with("do not publish it again"),
        "{failed}"
    );
}

#[tokio::test]
async fn an_sns_that_never_answers_holds_neither_a_publish_nor_hqs_stop() {
    let sns = format!("http://{}", testkit::black_hole());
    let dir = tempfile::tempdir().unwrap();
    let topic_arns = "orders=arn:aws:sns:us-east-1:123456789012:o,iridium=arn:aws:sns:us-east-1:123456789012:i,\
                      magnesite=arn:aws:sns:us-east-1:123456789012:m";
    let mut env = env_on_aws(dir.path(), &sns, topic_arns.to_owned());
    // The generator's publishes wait on SNS too.
    env.insert("HQ_RATES".into(), "orders=10".into());
    env.insert("HQ_DRAIN_SECS".into(), "1".into());
    let mut hq = ServiceProcess::start(hq_binary(), &env);
    let base = format!("http://{}", hq.wait_listening().await);

    // Answered with SNS' silence as an error, within HQ's request timeout
    // (14 s; the client's 30 s only keeps a hung HQ from hanging the test):
    // counting the subscriptions times out first, before anything is sent.
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("{base}/topics/orders/publish"))
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"bundle": 1}"#)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer = response.text().await.unwrap();
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("ListSubscriptionsByTopic"), "{answer}");

    // And the stop does not wait on SNS: the generator's publish under way
    // is left to the 1 s drain, then HQ reconciles and exits, well before
    // the 10 s an SNS call may take (`SNS_CALL_TIMEOUT`), which a stop
    // waiting on it would take.
    hq.terminate().await;
    let exited = hq.wait_exit(Duration::from_secs(6)).await;
    assert!(exited.success(), "{exited:?}");
}

/// A fake SNS query API (see [`fake_sns`]): its URL, how many
/// `ListSubscriptionsByTopic` and `Publish` requests it has had, and the
/// most listings it answered at once.
struct FakeSns {
    url: String,
    lists: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    publishes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most_lists_at_once: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeSns {
    fn lists(&self) -> usize {
        self.lists.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn publishes(&self) -> usize {
        self.publishes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn most_lists_at_once(&self) -> usize {
        self.most_lists_at_once.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A fake SNS query API: `ListSubscriptionsByTopic` answers no
/// subscriptions after `list_delay`, `Publish` gets `publish`'s status
/// (`None`: no answer ever; 200: a MessageId).
async fn fake_sns(publish: Option<u16>, list_delay: Duration) -> FakeSns {
    use axum::http::StatusCode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (lists, publishes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (listing_now, most_lists_at_once) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counters = (
        Arc::clone(&lists),
        Arc::clone(&publishes),
        Arc::clone(&listing_now),
        Arc::clone(&most_lists_at_once),
    );
    let answer = move |body: String| {
        let (lists, publishes, listing_now, most) = counters.clone();
        async move {
            if !body.contains("Action=Publish") {
                lists.fetch_add(1, Ordering::SeqCst);
                let at_once = listing_now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(at_once, Ordering::SeqCst);
                tokio::time::sleep(list_delay).await;
                listing_now.fetch_sub(1, Ordering::SeqCst);
                let listing = "<ListSubscriptionsByTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                    <ListSubscriptionsByTopicResult><Subscriptions/></ListSubscriptionsByTopicResult>\
                    <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListSubscriptionsByTopicResponse>";
                return (StatusCode::OK, listing.to_owned());
            }
            publishes.fetch_add(1, Ordering::SeqCst);
            let Some(status) = publish else {
                std::future::pending::<()>().await;
                unreachable!("a future that never ends ended");
            };
            if status == 200 {
                let published = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                    <PublishResult><MessageId>fake-message-id</MessageId></PublishResult>\
                    <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>";
                return (StatusCode::OK, published.to_owned());
            }
            let kind = if status < 500 { "Sender" } else { "Receiver" };
            let error = format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>Fake{status}</Code><Message>fake</Message></Error>\
                 <RequestId>r</RequestId></ErrorResponse>"
            );
            (StatusCode::from_u16(status).unwrap(), error)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/", axum::routing::post(answer));
    tokio::spawn(async move { axum::serve(listener, router).await });
    FakeSns {
        url: format!("http://{addr}"),
        lists,
        publishes,
        most_lists_at_once,
    }
}

/// HQ on AWS publishing to `sns`, its data in `dir`; HQ and its address.
async fn hq_on_fake_sns(
    dir: &std::path::Path,
    sns: &FakeSns,
    extra: &[(&str, &str)],
) -> (ServiceProcess, String) {
    let topic_arns = "orders=arn:aws:sns:us-east-1:123456789012:o,iridium=arn:aws:sns:us-east-1:123456789012:i,\
                      magnesite=arn:aws:sns:us-east-1:123456789012:m";
    let mut env = env_on_aws(dir, &sns.url, topic_arns.to_owned());
    env.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let mut hq = ServiceProcess::start(hq_binary(), &env);
    let base = format!("http://{}", hq.wait_listening().await);
    (hq, base)
}

/// On SNS as on HQ's feed: an order over what SNS publishes is refused
/// before SNS is asked (it would have answered an error, passed on as 502).
#[tokio::test]
async fn an_order_larger_than_sns_takes_is_413_before_sns_is_asked() {
    let sns = fake_sns(Some(200), Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hq, base) = hq_on_fake_sns(dir.path(), &sns, &[]).await;
    let too_large = format!("{{\"bundle\": 1{}}}", " ".repeat(hq::feed::MAX_MESSAGE_BYTES));
    let (got, answer) = admin_post(&base, "/topics/orders/publish", too_large, &[]).await;
    assert_eq!(got, 413, "{answer}");
    assert!(
        answer.to_string().contains("SNS takes at most 262144"),
        "{answer}"
    );
    assert_eq!(sns.publishes(), 0, "SNS was asked");
    hq.terminate().await;
    hq.wait_exit(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_publish_sns_may_have_taken_is_504_and_never_retried_one_it_refused_502() {
    // (SNS' answer to Publish, HQ's status, what HQ says)
    let cases = [
        (None, 504, "does not say whether it has the order"),
        (Some(500), 504, "does not say whether it has the order"),
        (Some(400), 502, "SNS: Publish: Fake400: fake"),
    ];
    for (sns_answer, status, says) in cases {
        let sns = fake_sns(sns_answer, Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let (mut hq, base) = hq_on_fake_sns(dir.path(), &sns, &[]).await;
        let (got, answer) = admin_post(&base, "/topics/orders/publish", r#"{"bundle": 1}"#.into(), &[]).await;
        assert_eq!(got, status, "SNS answered {sns_answer:?}: {answer}");
        assert!(
            answer.to_string().contains(says),
            "SNS answered {sns_answer:?}: {answer}"
        );
        // What SNS said, not the SDK's dump of its whole answer.
        assert!(
            !["RequestId", "request_id", "Response {", "{ "]
                .iter()
                .any(|dump| answer.to_string().contains(dump)),
            "SNS answered {sns_answer:?}: {answer}"
        );
        // Not retried: a retry after a Publish SNS took is a second order.
        assert_eq!(sns.publishes(), 1, "SNS answered {sns_answer:?}");
        hq.terminate().await;
        hq.wait_exit(Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn a_publish_not_yet_sent_when_hq_stops_is_refused_not_sent() {
    // Counting the subscriptions takes a while: HQ is told to stop meanwhile.
    let sns = fake_sns(Some(200), Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hq, base) = hq_on_fake_sns(dir.path(), &sns, &[("HQ_DRAIN_SECS", "8")]).await;
    let publish = tokio::spawn(async move {
        admin_post(&base, "/topics/orders/publish", r#"{"bundle": 1}"#.into(), &[]).await
    });
    wait_until(
        "the publish to count the subscriptions",
        Duration::from_secs(10),
        async || (sns.lists() == 1).then_some(()),
    )
    .await;
    hq.terminate().await;
    // HQ serves on through its drain, so the refusal reaches the caller.
    let (status, answer) = publish.await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert!(answer.to_string().contains("NOT published"), "{answer}");
    assert_eq!(sns.publishes(), 0);
    assert!(hq.wait_exit(Duration::from_secs(30)).await.success());
}

#[tokio::test]
async fn the_topics_are_listed_from_sns_all_at_once() {
    // One after another, three slow listings outlasted the request.
    let sns = fake_sns(Some(200), Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut hq, base) = hq_on_fake_sns(dir.path(), &sns, &[]).await;
    let topics = reqwest::get(format!("{base}/topics")).await.unwrap();
    assert_eq!(topics.status(), 200, "{}", topics.text().await.unwrap());
    assert_eq!(sns.lists(), 3);
    assert_eq!(sns.most_lists_at_once(), 3);
    // Listings are reused (SNS throttles them per account): more callers,
    // anyone's included, and a publish counting its subscribers ask SNS
    // nothing more.
    for _ in 0..5 {
        assert_eq!(
            reqwest::get(format!("{base}/topics")).await.unwrap().status(),
            200
        );
    }
    let (got, answer) = admin_post(&base, "/topics/orders/publish", r#"{"bundle": 1}"#.into(), &[]).await;
    assert_eq!(got, 201, "{answer}");
    assert_eq!(sns.lists(), 3);
    hq.terminate().await;
    hq.wait_exit(Duration::from_secs(30)).await;
}
