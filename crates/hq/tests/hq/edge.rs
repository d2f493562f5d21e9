//! HQ trusts no one: its admin credential on every route that acts for
//! others, its secret files private, secrets in subscription URLs masked
//! wherever they are shown, and subscribers' answers read only so far.

use crate::support::{
    KEY, Subscriber, admin_client, config, nobody_listening, publish, refusal, start_hq, subscribe,
    subscribe_confirmed, url,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use contracts::{Envelope, MessageType};
use hq::admin::TOKEN_FILE;
use hq::feed::{MAX_ANSWER_BYTES, Topic};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use testkit::logs::CapturedLogs;
use testkit::wait_until;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(5);

/// Sends `method path` with `body` and, if any, the header `(name, value)`.
async fn call(
    hq: &hq::RunningHq,
    method: &str,
    path: &str,
    body: &str,
    header: Option<(&str, &str)>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, url(hq, path))
        .body(body.to_owned());
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// `Some(("authorization", value))`, or `None` without a value.
fn authorization(value: Option<&str>) -> Option<(&str, &str)> {
    value.map(|value| ("authorization", value))
}

/// The routes that need the admin credential, each with a request that
/// succeeds with it and the status it then gets.
const ADMIN_ROUTES: [(&str, &str, &str, u16); 10] = [
    ("POST", "/keys", r#"{"owner": "mallory"}"#, 201),
    ("GET", "/totals", "", 200),
    ("POST", "/faults", r#"{"fail_fulfillments": 0}"#, 200),
    ("GET", "/faults", "", 200),
    ("DELETE", "/faults", "", 200),
    ("POST", "/topics/orders/subscriptions", "ENDPOINT", 201),
    ("POST", "/topics/orders/publish", r#"{"bundle": 1}"#, 201),
    ("GET", "/?Action=Unsubscribe&SubscriptionArn=ARN", "", 200),
    ("DELETE", "/subscriptions/OTHER_ARN", "", 204),
    ("GET", "/dashboard/data", "", 200),
];

#[tokio::test]
async fn admin_routes_refuse_anyone_without_the_credential_and_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    // Made at first start, in the data directory: the one HQ checks.
    let token = std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(token, hq.hq().admin_token().expose());

    // Two subscriptions exist, so that unsubscribing each is a real target.
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "iridium", &subscriber.endpoint()).await;
    subscribe_confirmed(&hq, "magnesite", &subscriber.endpoint()).await;
    let arns: Vec<String> = hq
        .hq()
        .feed()
        .subscriptions()
        .into_iter()
        .map(|s| s.subscription_arn)
        .collect();
    let (arn, other_arn) = (&arns[0], &arns[1]);
    let endpoint = json!({ "endpoint": subscriber.endpoint() }).to_string();
    let route = |path: &str, body: &str| {
        let path = path.replace("OTHER_ARN", other_arn).replace("ARN", arn);
        (path, body.replace("ENDPOINT", &endpoint))
    };

    let wrong = [
        None,
        Some("Bearer not-the-admin-token-0000".to_owned()),
        Some(format!("Basic {token}")),
        Some(format!("Bearer {token}x")),
        Some(token.clone()),
    ];
    for (method, path, body, _) in ADMIN_ROUTES {
        let (path, body) = route(path, body);
        for presented in &wrong {
            let response = call(&hq, method, &path, &body, authorization(presented.as_deref())).await;
            assert_eq!(response.status(), 401, "{method} {path} with {presented:?}");
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer realm=\"interstella-hq\""
            );
            let message = response.json::<Value>().await.unwrap()["message"].clone();
            assert!(
                message
                    .as_str()
                    .unwrap()
                    .starts_with("this needs HQ's admin credential: send Authorization: Bearer <token>"),
                "{message}"
            );
        }
    }
    // Nothing was done: no key, fault, subscription or order came of it.
    let feed = hq.hq().feed();
    assert_eq!(feed.subscriptions().len(), 2);
    assert_eq!(hq.hq().reconcile().await.unwrap().totals.published, 0);
    assert_eq!(hq.hq().ledger().totals().await.unwrap().len(), 1);

    let bearer = format!("bearer {token}");
    for (method, path, body, status) in ADMIN_ROUTES {
        let (path, body) = route(path, body);
        let response = call(&hq, method, &path, &body, authorization(Some(&bearer))).await;
        assert_eq!(response.status(), status, "{method} {path}");
    }
    assert_eq!(feed.subscriptions().len(), 1, "one subscribed, two unsubscribed");
    assert!(!arns.contains(&feed.subscriptions()[0].subscription_arn));
    assert_eq!(hq.hq().reconcile().await.unwrap().totals.published, 1);
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn the_fulfillment_api_the_sns_links_and_the_pages_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let cert = hq.hq().feed().cert_url();
    let cert = cert.rsplit_once('/').unwrap().1;
    for path in ["/", "/topics", "/reconciliation", &format!("/{cert}")] {
        assert_eq!(call(&hq, "GET", path, "", None).await.status(), 200, "{path}");
    }
    // The fulfillment API keeps its own check, the API key.
    let order = r#"{"iridium": 1, "magnesite": 1}"#;
    let key = Some(("x-api-key", KEY));
    let fulfilled = call(&hq, "POST", "/receiving/", order, key).await;
    assert_eq!(fulfilled.status(), 200);
    let mine = call(&hq, "GET", "/receiving/", "", key).await;
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.json::<Value>().await.unwrap()["fulfillments"], 1);
    // The admin credential is no API key.
    let bearer = format!("Bearer {}", hq.hq().admin_token().expose());
    let refused = call(&hq, "POST", "/receiving/", order, authorization(Some(&bearer))).await;
    assert_eq!(refused.status(), 403);
    // A path HQ does not have, and a method a path does not take: JSON
    // saying so (axum's own answers are empty), the 405 with its Allow.
    // One segment, where the certificate's path is, answers the same.
    // So does another method there, but on the certificate itself, and a
    // segment that is no UTF-8 where a route takes a name (axum's own
    // answer is a plain-text 400).
    for (method, path) in [
        ("GET", "/no/such/path"),
        ("GET", "/nowhere"),
        ("POST", "/nowhere"),
        ("GET", "/%FF"),
        ("POST", "/%FF"),
        ("GET", "/portal/%FF"),
    ] {
        let nowhere = call(&hq, method, path, "", None).await;
        assert_eq!(
            refusal(nowhere, 404).await,
            "not found: no such path; GET / lists HQ's routes",
            "{method} {path}"
        );
    }
    let certificate = format!("/{}", hq.hq().identity().cert_file_name());
    let wrong_method = call(&hq, "POST", &certificate, "", None).await;
    assert_eq!(wrong_method.headers()["allow"], "GET,HEAD");
    refusal(wrong_method, 405).await;
    let wrong_method = call(&hq, "DELETE", "/keys", "", None).await;
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert_eq!(
        refusal(wrong_method, 405).await,
        "this path does not take that method; GET / lists HQ's routes"
    );
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_given_credential_is_used_instead_of_the_file() {
    use clap::Parser;
    let given = "given-admin-token-0123456789";
    let cli =
        hq::cli::Cli::try_parse_from(["hq", "--admin-token", given, "--api-key", "k3y-s3cret"]).unwrap();
    let shown = format!("{cli:?}");
    assert!(!shown.contains(given) && !shown.contains("k3y-s3cret"), "{shown}");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.admin_token = cli.config().unwrap().0.admin_token;
    let hq = start_hq(config).await;
    assert!(!dir.path().join(TOKEN_FILE).exists());
    let authorized = call(
        &hq,
        "GET",
        "/totals",
        "",
        authorization(Some(&format!("Bearer {given}"))),
    )
    .await;
    assert_eq!(authorized.status(), 200);
    assert_eq!(call(&hq, "GET", "/totals", "", None).await.status(), 401);
    hq.shutdown(WAIT).await.unwrap();

    // A credential too short to protect anything is refused, unquoted.
    let error = hq::cli::Cli::try_parse_from(["hq", "--admin-token", "s3cret"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--admin-token: an admin credential is 16 to 512 visible ASCII characters"),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    // Its variable named once, by the setting's line.
    assert_eq!(error.matches("HQ_ADMIN_TOKEN").count(), 1, "{error}");

    // An API key no x-api-key header can carry could never match: refused
    // at start, unquoted. An empty entry (a trailing comma) is no key, and
    // a space inside one a header carries.
    for unusable in ["ünï-k3y-s3cret", "k3y\ts3cret"] {
        let error = hq::cli::Cli::try_parse_from(["hq", "--api-key", unusable])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--api-key: an API key holds characters the x-api-key header cannot carry"),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }
    for usable in ["k3y-s3cret,", "k3y s3cret"] {
        assert!(
            hq::cli::Cli::try_parse_from(["hq", "--api-key", usable]).is_ok(),
            "{usable}"
        );
    }
}

/// A credential file that holds no usable credential is named.
#[tokio::test]
async fn a_credential_file_holding_none_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TOKEN_FILE), "short").unwrap();
    let error = hq::admin::AdminToken::load_or_create(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(error.starts_with("admin credential file "), "{error}");
    assert!(
        error.contains(TOKEN_FILE) && error.contains("16 to 512"),
        "{error}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn secret_files_are_0600_and_wider_ones_are_tightened_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let key_file = dir.path().join(hq::signing::KEY_FILE);
    let token_file = dir.path().join(TOKEN_FILE);
    set_mode(&key_file, 0o644);

    let hq = start_hq(config.clone()).await;
    assert_eq!(mode(&key_file), 0o600, "signing key");
    assert_eq!(mode(&token_file), 0o600, "admin credential, made at start");
    hq.shutdown(WAIT).await.unwrap();

    set_mode(&key_file, 0o640);
    set_mode(&token_file, 0o604);
    let hq = start_hq(config).await;
    assert_eq!((mode(&key_file), mode(&token_file)), (0o600, 0o600));
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn a_data_directory_hq_makes_is_its_alone() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("hq").join("data");
    // Not `config`, which makes the directory to seed the signing identity.
    let hq = start_hq(hq::HqConfig::new(&data)).await;
    assert_eq!(mode(&data), 0o700, "the ledger holds the keys' digests");
    hq.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn the_ledger_is_hqs_alone_in_a_directory_open_to_others() {
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    let ledger = hq::ledger::path_in(dir.path());
    let hq = start_hq(config(dir.path())).await;
    let wal = dir
        .path()
        .join(format!("{}-wal", ledger.file_name().unwrap().to_string_lossy()));
    assert_eq!(mode(&ledger), 0o600, "made so");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "SQLite gives its files the database's mode");
    }
    hq.shutdown(WAIT).await.unwrap();
    // One made open to others (copied in, restored) is tightened.
    set_mode(&ledger, 0o644);
    let hq = start_hq(config(dir.path())).await;
    assert_eq!(mode(&ledger), 0o600, "tightened");
    hq.shutdown(WAIT).await.unwrap();
}

/// An admin call's lines say where it came from, as the ALB saw it (the
/// last X-Forwarded-For entry), granted or refused: without it, nothing
/// told where a leaked credential was used from.
#[tokio::test]
async fn an_admin_calls_lines_name_the_address_it_came_from() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let forwarded: [&[u8]; 3] = [
        b"203.0.113.9, 198.51.100.7",
        // Without a balancer in front it is the caller's own text: quoted.
        b"10.0.0.1, 1.2.3.4 status=200",
        // A byte that is not ASCII before the ALB's entry hides nothing.
        b"\xff, 192.0.2.44",
    ];
    for value in forwarded {
        let refused = reqwest::Client::new()
            .get(url(&hq, "/totals"))
            .header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    }
    hq.shutdown(WAIT).await.unwrap();
    let said = logs.text();
    let access = |client: &str| {
        said.lines().any(|line| {
            line.contains("uri=/totals")
                && line.contains(&format!("client={client}"))
                && line.contains("status=401")
        })
    };
    assert!(access("198.51.100.7"), "{said}");
    assert!(access(r#""1.2.3.4 status=200""#), "{said}");
    assert!(access("192.0.2.44"), "{said}");
    assert!(!said.contains("203.0.113.9"), "{said}");
}

/// What the pages poll (the dashboard's figures every 2 s, the portal's
/// subscriptions every second) writes its access line for a client once
/// in ten minutes when answered, so an open page does not bury the orders'
/// lines, while a credential used from somewhere new shows at once, and
/// where from; a refused poll, and other reads, keep every line.
#[tokio::test]
async fn the_pages_polls_write_an_access_line_once_a_while_per_client() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let admin = admin_client(&hq);
    let from = |client: &str, path: &str| {
        admin
            .get(url(&hq, path))
            .header("x-forwarded-for", format!("10.0.0.9, {client}"))
            .send()
    };
    for path in ["/dashboard/data", "/topics", "/totals"] {
        for client in ["198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.5"] {
            assert_eq!(from(client, path).await.unwrap().status(), 200, "{path}");
        }
    }
    let refused = || {
        reqwest::Client::new()
            .get(url(&hq, "/dashboard/data"))
            .bearer_auth("not-the-admin-credential")
            .header("x-forwarded-for", "198.51.100.7")
            .send()
    };
    for _ in 0..2 {
        assert_eq!(refused().await.unwrap().status(), 401);
    }
    hq.shutdown(WAIT).await.unwrap();
    let said = logs.text();
    let access = |path: &str, client: &str, status: u16| {
        said.lines()
            .filter(|line| line.contains("finished processing request"))
            .filter(|line| {
                line.contains(&format!("uri={path}"))
                    && line.contains(&format!("client={client}"))
                    && line.contains(&format!("status={status}"))
            })
            .count()
    };
    for path in ["/dashboard/data", "/topics"] {
        assert_eq!(access(path, "198.51.100.7", 200), 1, "{path}: {said}");
        assert_eq!(access(path, "203.0.113.5", 200), 1, "{path}: {said}");
    }
    assert_eq!(access("/dashboard/data", "198.51.100.7", 401), 2, "{said}");
    assert_eq!(access("/totals", "198.51.100.7", 200), 3, "{said}");
}

/// An admin publish's access line names the order it made: for an order
/// that reached nobody (unrouted), the only line that does.
#[tokio::test]
async fn an_admin_publishs_access_line_names_its_order() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let message_id = publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    hq.shutdown(WAIT).await.unwrap();
    let said = logs.text();
    assert!(
        said.lines()
            .any(|line| line.contains("uri=/topics/orders/publish")
                && line.contains(&format!("order_id={message_id}"))
                && line.contains("status=201")),
        "{said}"
    );
}

#[tokio::test]
async fn secrets_in_endpoints_are_never_listed_logged_or_echoed() {
    let logs = CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let (down, _held) = nobody_listening();
    config.subscriptions = vec![(
        Topic::Magnesite,
        format!("http://ops:s3cret@{down}/magnesite/?token=s3cret")
            .parse()
            .unwrap(),
    )];
    config.subscribe_every = Duration::from_millis(20);
    let shown_config = format!("{config:?}");
    let hq = start_hq(config).await;
    assert!(!shown_config.contains("s3cret"), "{shown_config}");
    assert!(!shown_config.contains(hq.hq().admin_token().expose()));

    // Delivered to the URL itself (the password reaches the subscriber as
    // Basic authorization), shown masked.
    let subscriber = Subscriber::happy().await;
    let secret_endpoint = format!("http://ops:s3cret@{}/order/?token=s3cret", subscriber.addr);
    let shown = format!("http://***@{}/order/?token=***", subscriber.addr);
    let created = subscribe(&hq, "orders", &secret_endpoint).await;
    assert_eq!(created["endpoint"], shown);
    wait_until("the confirmation", WAIT, async || {
        (hq.hq()
            .feed()
            .subscriptions()
            .iter()
            .any(|s| s.endpoint == shown && s.state == hq::feed::SubscriptionState::Confirmed))
        .then_some(())
    })
    .await;
    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    wait_until("the notification", WAIT, async || {
        (subscriber.notifications().len() == 1).then_some(())
    })
    .await;
    let delivery = subscriber.notifications()[0].clone();
    assert!(
        delivery
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    );
    // One that fails, so that its retries are logged too.
    subscribe(&hq, "iridium", &format!("http://ops:s3cret@{down}/iridium/")).await;
    wait_until(
        "retries of the start-up and the failing subscription",
        WAIT,
        async || {
            let logs = logs.text();
            (logs.contains("subscription not confirmed yet") && logs.contains("delivery failed"))
                .then_some(())
        },
    )
    .await;
    // Why, in the system's words (the URL, secrets and all, left out).
    assert!(
        logs.text()
            .contains("delivery failed (could not connect: Connection refused"),
        "{}",
        logs.text()
    );

    let topics = call(&hq, "GET", "/topics", "", None).await.text().await.unwrap();
    assert!(topics.contains(&shown), "{topics}");
    assert!(
        topics.contains(&format!("http://***@{down}/magnesite/?token=***")),
        "{topics}"
    );
    let refused = admin_client(&hq)
        .post(url(&hq, "/topics/orders/subscriptions"))
        .json(&json!({ "endpoint": "ftp://ops:s3cret@proxy/order/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused = refused.text().await.unwrap();
    hq.shutdown(WAIT).await.unwrap();

    let logs = logs.text();
    assert!(logs.contains("***@"), "the endpoints were logged, masked: {logs}");
    for shown in [&topics, &refused, &logs] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

/// Counts what a streamed answer sent, and notes when it was dropped.
struct Sent {
    bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Sent {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A subscriber that confirms, then answers each notification 200 with a
/// body of up to 1 GiB, streamed 64 KiB at a time as it is read.
async fn endless_answerer(bytes: Arc<AtomicUsize>, dropped: Arc<AtomicBool>) -> String {
    const LIMIT: usize = 1 << 30;
    let answer = move |body: Bytes| {
        let (bytes, dropped) = (Arc::clone(&bytes), Arc::clone(&dropped));
        async move {
            let envelope: Envelope = serde_json::from_slice(&body).unwrap();
            if envelope.message_type == MessageType::SubscriptionConfirmation {
                reqwest::get(envelope.subscribe_url.unwrap()).await.unwrap();
                return Body::from("confirmed");
            }
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let sent = Sent { bytes, dropped };
            Body::from_stream(futures_util::stream::unfold(sent, move |sent| {
                let chunk = chunk.clone();
                async move {
                    let so_far = sent.bytes.fetch_add(chunk.len(), Ordering::SeqCst);
                    (so_far < LIMIT).then_some((Ok::<_, std::io::Error>(chunk), sent))
                }
            }))
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/order/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/order/", post(answer))).await });
    endpoint
}

#[tokio::test]
async fn a_subscriber_answering_without_end_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let (bytes, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let endpoint = endless_answerer(Arc::clone(&bytes), Arc::clone(&dropped)).await;
    subscribe_confirmed(&hq, "orders", &endpoint).await;

    publish(&hq, "orders", r#"{"bundle": 1}"#).await;
    // Delivered on the status, at the first attempt, and the answer dropped
    // after little more than HQ's cap (plus what the sockets' buffers
    // took): not read on to the end.
    let feed = hq.hq().feed();
    wait_until("the delivery counted", WAIT, async || {
        (feed.stats()[&Topic::Orders].delivered == 1).then_some(())
    })
    .await;
    wait_until("the answer dropped", WAIT, async || {
        (dropped.load(Ordering::SeqCst)).then_some(())
    })
    .await;
    let sent = bytes.load(Ordering::SeqCst);
    assert!(sent >= MAX_ANSWER_BYTES, "{sent}");
    assert!(sent < 32 * 1024 * 1024, "HQ read {sent} bytes of the answer");
    assert_eq!(feed.stats()[&Topic::Orders].retried, 0);
    hq.shutdown(WAIT).await.unwrap();
}

/// The help texts that name a bound name the bound in force: written there
/// as text, they would not follow a change to it.
#[test]
fn help_texts_name_the_bounds_in_force() {
    use clap::CommandFactory;
    let help = hq::cli::Cli::command().render_long_help().to_string();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    // 1000000 as 1,000,000.
    let grouped = |n: u64| {
        let digits = n.to_string();
        let mut text = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                text.push(',');
            }
            text.push(digit);
        }
        text
    };
    let policy = hq::feed::RetryPolicy::MAX_RETRIES;
    for bound in [
        format!(
            "({} to {} visible ASCII characters)",
            hq::admin::MIN_LEN,
            hq::admin::MAX_LEN
        ),
        format!("(0 to {} each)", hq::cli::MAX_RATE),
        format!(
            "order: 1 to {}, the most",
            grouped(contracts::MAX_QUANTITY.into())
        ),
        format!("(SNS `numRetries`: 0 to {policy})"),
        format!(
            "at most {} s)",
            grouped(hq::feed::RetryPolicy::MAX_DELAY.as_secs())
        ),
        format!(
            "up to {} s [env: HQ_SUBSCRIBE]",
            hq::config::MAX_SUBSCRIBE_EVERY.as_secs()
        ),
        format!(
            "up to {} s (at least 100",
            hq::config::MAX_SUBSCRIBE_EVERY.as_secs()
        ),
    ] {
        assert!(help.contains(&bound), "{bound:?} in {help}");
    }
}

/// A metrics port that is HQ's own is refused with the services' line (it
/// failed to bind, exit 1), and a public URL that is no http(s) URL, or
/// holds more than an origin and a path, is refused without being quoted
/// (it is logged at start, and is the services' SNS stand-in address).
#[test]
fn settings_hq_cannot_serve_are_refused_at_start() {
    use clap::Parser;
    let cli =
        hq::cli::Cli::try_parse_from(["hq", "--listen", "127.0.0.1:4100", "--metrics-port", "4100"]).unwrap();
    let refused = cli.config().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("METRICS_PORT 4100 is the port the service itself listens on"),
        "{refused}"
    );
    let no_http_url = "not an http:// or https:// URL";
    let more_than_an_origin = "an http:// or https:// URL with a user name, password, query or fragment";
    for (url, refusal) in [
        ("hq.example.com:4000/?token=s3cret", no_http_url),
        ("ftp://ops:s3cret@hq.example.com/", no_http_url),
        ("http://ops:s3cret@hq.example.com/", more_than_an_origin),
        ("https://hq.example.com/?token=s3cret", more_than_an_origin),
        ("http://hq.example.com/#s3cret", more_than_an_origin),
    ] {
        let error = hq::cli::Cli::try_parse_from(["hq", "--public-url", url])
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("--public-url: {refusal}")), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
    hq::cli::Cli::try_parse_from(["hq", "--public-url", "https://hq.example.com:8443/interstella/"]).unwrap();
}

/// `GET /totals` with HQ's admin credential, naming `host` in `Host`.
async fn totals_naming(hq: &hq::RunningHq, host: &str) -> reqwest::Response {
    admin_client(hq)
        .get(url(hq, "/totals"))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_name_not_hqs_is_refused_before_any_route_so_a_page_cannot_rebind_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.allowed_hosts = vec!["hq.example.com".parse().unwrap()];
    let hq = start_hq(config).await;
    let port = hq.addr().port();

    // A page at evil.example that moved its name to HQ's address: its
    // script holds a guessed credential and a guessed key, and gets nothing.
    let evil = format!("evil.example:{port}");
    let refused = totals_naming(&hq, &evil).await;
    assert_eq!(refused.headers()["cache-control"], "no-store");
    assert_eq!(
        refused.headers()["content-security-policy"],
        platform::server::DATA_SECURITY_POLICY
    );
    let message = refusal(refused, 421).await;
    assert!(
        message.contains("\"evil.example\" is not one") && message.contains("HQ_ALLOWED_HOSTS"),
        "{message}"
    );
    // In absolute form, the target names the host (RFC 9112, 3.2.2), whatever `Host` says.
    let mut absolute = tokio::net::TcpStream::connect(hq.addr()).await.unwrap();
    let head = format!(
        "GET http://{evil}/totals HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
        hq.hq().admin_token().expose()
    );
    tokio::io::AsyncWriteExt::write_all(&mut absolute, head.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut absolute, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    let issued = admin_client(&hq)
        .post(url(&hq, "/keys"))
        .header("host", &evil)
        .json(&json!({"owner": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 421);
    let fulfilled = reqwest::Client::new()
        .post(url(&hq, "/receiving/"))
        .header("host", &evil)
        .header("x-api-key", KEY)
        .json(&json!({"iridium": 1, "magnesite": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(fulfilled.status(), 421);
    let totals: Value = totals_naming(&hq, "localhost").await.json().await.unwrap();
    // The test key alone, with nothing fulfilled.
    assert_eq!(
        (totals.as_array().map(Vec::len), &totals[0]["fulfillments"]),
        (Some(1), &json!(0)),
        "{totals}"
    );

    // HQ's own names: the given one, localhost and names under it, and
    // every address (a health check's, or a caller's that names HQ by its
    // address).
    for host in [
        format!("hq.example.com:{port}"),
        "HQ.Example.COM.".to_owned(),
        format!("localhost:{port}"),
        "portal.localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "10.0.0.7".to_owned(),
    ] {
        assert_eq!(totals_naming(&hq, &host).await.status(), 200, "{host}");
    }
    for host in ["hq.example.com.evil.example", "localhost.evil.example"] {
        assert_eq!(totals_naming(&hq, host).await.status(), 421, "{host}");
    }
    hq.shutdown(WAIT).await.unwrap();

    // `*` answers any name.
    let mut config = crate::support::config(dir.path());
    config.allowed_hosts = vec![hq::hosts::AllowedHost::Any];
    let hq = start_hq(config).await;
    assert_eq!(totals_naming(&hq, "evil.example").await.status(), 200);
    hq.shutdown(WAIT).await.unwrap();
}
