//! The fulfillment API's status line decides; its body, read after it, can
//! neither hold the handler nor fill our memory nor undo a fulfillment.

use platform::TrustConfig;
use platform::downstream::{BODY_TIMEOUT, BodyError, MAX_BODY_BYTES, read_body};
use platform::reply::ORDER_FULFILLED;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::spawn::monolith_config;
use testkit::spawn_monolith;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use url::Url;

const ORDER: &str = r#"{"Message":{"bundle":1}}"#;

/// How the raw API answers after its `200 OK` head.
#[derive(Clone, Copy)]
enum Body {
    /// Announces 1,000 bytes, sends 10, then holds the connection.
    Trickle,
    /// Sends chunks without end (no Content-Length) until the reader stops.
    Endless,
    /// Announces 400 MB, sends a chunk, then holds the connection.
    Announced400Mb,
}

/// A fulfillment API written at the socket level, so its body can misbehave
/// after an honest `200 OK`; counts the requests and the body bytes it got
/// out, and sees when the caller hangs up.
struct RawApi {
    url: Url,
    requests: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    /// How long the last connection stayed open from just before its head
    /// was written, once the caller hung up.
    held: Arc<Mutex<Option<Duration>>>,
}

impl RawApi {
    async fn start(body: Body) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/receiving/", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(None));
        let (counted, written, holding) = (Arc::clone(&requests), Arc::clone(&sent), Arc::clone(&held));
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (counted, written, holding) =
                    (Arc::clone(&counted), Arc::clone(&written), Arc::clone(&holding));
                tokio::spawn(async move {
                    let mut request = vec![0u8; 64 * 1024];
                    let _ = socket.read(&mut request).await;
                    counted.fetch_add(1, Ordering::SeqCst);
                    // Before the head: the caller cannot start reading the
                    // body any earlier.
                    let head_from = Instant::now();
                    let head = match body {
                        Body::Trickle => "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
                        Body::Endless => "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
                        Body::Announced400Mb => "HTTP/1.1 200 OK\r\ncontent-length: 400000000\r\n\r\n",
                    };
                    socket.write_all(head.as_bytes()).await.unwrap();
                    let chunk = vec![b'x'; 64 * 1024];
                    match body {
                        Body::Trickle => {
                            let _ = socket.write_all(b"{\"ok\":tru").await;
                            written.fetch_add(10, Ordering::SeqCst);
                        }
                        Body::Endless => {
                            // Up to 256 MiB; stops when the reader hangs up.
                            for _ in 0..4096 {
                                if socket.write_all(&chunk).await.is_err() {
                                    return;
                                }
                                written.fetch_add(chunk.len(), Ordering::SeqCst);
                            }
                        }
                        Body::Announced400Mb => {
                            let _ = socket.write_all(&chunk).await;
                            written.fetch_add(chunk.len(), Ordering::SeqCst);
                        }
                    }
                    // Held until the caller hangs up (reads what is left
                    // of its request, then end of stream), 60 s at most.
                    let hung_up = tokio::time::timeout(Duration::from_secs(60), async {
                        while matches!(socket.read(&mut request).await, Ok(n) if n > 0) {}
                    });
                    let _ = hung_up.await;
                    *holding.lock().unwrap() = Some(head_from.elapsed());
                });
            }
        });
        Self {
            url,
            requests,
            sent,
            held,
        }
    }

    /// How long the caller held the last connection after its head, once it hung up.
    fn held(&self) -> Option<Duration> {
        *self.held.lock().unwrap()
    }
}

/// Orders through the monolith against `api`; the answer and how long it took.
async fn order_against(api: &RawApi) -> ((u16, String), Duration) {
    order_against_within(api, Duration::from_secs(5)).await
}

/// [`order_against`], with the call to the API bounded by `timeout`.
async fn order_against_within(api: &RawApi, timeout: Duration) -> ((u16, String), Duration) {
    let mut config = monolith_config(&api.url, TrustConfig::default());
    config.route.downstream_timeout = timeout;
    let monolith = spawn_monolith(config).await;
    let started = Instant::now();
    let answer = monolith.post("/order/", None, &[], ORDER).await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_200_whose_body_trickles_is_fulfilled_without_waiting_for_it() {
    let api = RawApi::start(Body::Trickle).await;
    let ((status, text), took) = order_against(&api).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    assert_eq!(api.requests.load(Ordering::SeqCst), 1);
    // The body's own bound (1 s), well inside the call's timeout (5 s).
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn the_calls_timeout_bounds_the_body_too() {
    // The body's own bound is BODY_TIMEOUT (1 s); what is left of a 300 ms
    // call is less. So the route's work is its gather plus the call's
    // timeout, which the request timeout must outlast (checked at start).
    let api = RawApi::start(Body::Trickle).await;
    let ((status, text), _) = order_against_within(&api, Duration::from_millis(300)).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    // Timed where the body trickles, not around the whole order: a read
    // bound by BODY_TIMEOUT alone hangs up no sooner than that after the
    // head, however fast the machine; one bound by the call hangs up within
    // the call's 300 ms, leaving the rest of a second for a busy machine.
    let held = testkit::wait_until("the monolith to hang up", Duration::from_secs(5), async || {
        api.held()
    })
    .await;
    assert!(
        held < BODY_TIMEOUT,
        "held the body's connection {held:?} after its head"
    );
}

#[tokio::test]
async fn an_endless_body_is_not_read_past_the_cap() {
    let api = RawApi::start(Body::Endless).await;
    let ((status, text), took) = order_against(&api).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Past the 64 KiB cap we stop reading and hang up; what the API got out
    // is that plus what socket buffers hold, far from its 256 MiB.
    let sent = api.sent.load(Ordering::SeqCst);
    assert!(sent < 32 * 1024 * 1024, "{sent} bytes went out");
}

#[tokio::test]
async fn an_announced_huge_body_is_refused_unread() {
    let api = RawApi::start(Body::Announced400Mb).await;
    let ((status, text), took) = order_against(&api).await;
    assert_eq!((status, text.as_str()), (200, ORDER_FULFILLED));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Refused on its Content-Length alone. Read instead, its one chunk fits
    // the cap and the rest never comes: that read would end as too slow.
    let response = reqwest::Client::new()
        .post(api.url.clone())
        .body(ORDER)
        .send()
        .await
        .unwrap();
    let read = read_body(response, MAX_BODY_BYTES, Duration::from_secs(5)).await;
    assert!(matches!(read, Err(BodyError::TooLarge { .. })), "{read:?}");
}

#[tokio::test]
async fn a_connection_never_accepted_is_unreachable_not_a_slow_answer() {
    // A listener whose accept queue is full drops further SYNs, as a host
    // gone from the network does: the connect hangs until our connect
    // timeout (2 s), well inside the call's (5 s). Nothing was sent, so the
    // API is unreachable (503), not slow to answer (504).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    while let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
    {
        queued.push(stream);
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let client = platform::downstream::http_client(4).unwrap();
    let call = platform::Downstream::new(client, url, "fulfillment API", Duration::from_secs(5));
    let error = call.get(&[]).await.unwrap_err();
    assert!(
        matches!(error, platform::DownstreamError::Unreachable { .. }),
        "{error}"
    );
    // Given up at the connect timeout, not the call's 5 s.
    assert!(
        error.to_string()
            == format!("fulfillment API at http://{addr} is unreachable: no connection within 2s"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_cut_after_the_request_says_the_target_may_have_taken_it() {
    // An API that reads the request and hangs up without an answer, as one
    // killed mid-request does: it may have recorded the order first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
        }
    });
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let client = platform::downstream::http_client(4).unwrap();
    let call = platform::Downstream::new(client, url, "fulfillment API", Duration::from_secs(5));
    let error = call.get(&[]).await.unwrap_err();
    assert!(
        matches!(error, platform::DownstreamError::Transport { .. }),
        "{error}"
    );
    // The cause itself, not reqwest's "error sending request".
    assert_eq!(
        error.to_string(),
        "fulfillment API call failed midway, so it may have taken the request: connection closed before message completed"
    );
    assert_eq!(error.status(), 502);
}

/// A call still under way when its request's time runs out is its route's
/// to answer: 504, "may have taken it", as the call was sent. Cut off by
/// the serve loop instead, its caller heard 503 "send it again", and a
/// direct order sent again was fulfilled twice. Here the call's own timeout
/// (10 s) outlasts the request's (1 s), as a gather that overran leaves it.
#[tokio::test]
async fn a_call_under_way_at_the_requests_deadline_is_answered_504_by_its_route() {
    use axum::response::IntoResponse as _;
    let api = testkit::FakeApi::start().await;
    api.behave(testkit::ApiBehaviour::Hang);
    let client =
        platform::downstream::http_client(platform::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS).unwrap();
    let downstream = Arc::new(platform::Downstream::new(
        client,
        api.url.clone(),
        "fulfillment API",
        Duration::from_secs(10),
    ));
    let router = axum::Router::new().route(
        contracts::paths::route(contracts::paths::ORDER),
        axum::routing::post(
            async move || match downstream.post_json(&serde_json::json!({}), &[]).await {
                Ok(_) => (axum::http::StatusCode::OK, "sent").into_response(),
                Err(source) => platform::ServiceError::Downstream {
                    reply: platform::reply::ORDER_FAILED,
                    source,
                }
                .into_response(),
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = platform::ServerLimits {
        request_timeout: Duration::from_secs(1),
        ..platform::ServerLimits::default()
    };
    tokio::spawn(platform::serve_with(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/order/"))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    assert_eq!((status, text.as_str()), (504, platform::reply::ORDER_FAILED));
    assert_eq!(api.count(), 1, "the call was sent");
}
