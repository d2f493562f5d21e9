//! The serve loop's limits over real sockets: slow heads and bodies, too
//! many connections, oversized heads, slow handlers, and the drain deadline.
//! Raw TCP, because the clients under test misbehave on purpose.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

use axum::Router;
use axum::routing::{get, post};
use platform::server::{ServerLimits, serve_with};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How long a slow handler takes.
const SLOW_HANDLER: Duration = Duration::from_millis(800);

/// More than loopback's socket buffers hold, so a client that does not
/// read leaves the server's write waiting.
const BIG_BODY: usize = 32 * 1024 * 1024;

/// `GET /` answers at once (the health check), `GET /slow` after
/// [`SLOW_HANDLER`], `POST /echo` with its body's length, `GET /big` with
/// [`BIG_BODY`] bytes.
fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "healthy" }))
        .route("/big", get(|| async { vec![b'x'; BIG_BODY] }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW_HANDLER).await;
                "done"
            }),
        )
        .route(
            "/echo",
            post(|body: String| async move { body.len().to_string() }),
        )
}

/// Limits short enough for tests; each test shortens what it exercises.
fn limits() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_secs(30),
        body_read_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
        max_connections: 64,
        max_header_bytes: 16 * 1024,
        drain_timeout: Duration::from_secs(60),
    }
}

/// A server under test.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: ServerLimits) -> Server {
    start_routing(limits, router()).await
}

async fn start_routing(limits: ServerLimits, router: Router) -> Server {
    // The services' own accept queue (4,096 deep), not tokio's 1,024.
    let listener = platform::startup::bind_addr((Ipv4Addr::LOCALHOST, 0).into())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_with(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    Server { addr, stop, serving }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Reads until a whole response head is in, the peer closes, or `deadline`
/// passes; returns what arrived ("" if closed without a word) or `None` if
/// the deadline passed with the connection still open and silent.
async fn read_response(stream: &mut TcpStream, deadline: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if received.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(()) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

/// Sends `request` (which asks for the connection to close) on a new
/// connection and reads all of the answer, within 5 s.
async fn exchange_whole(addr: SocketAddr, request: &str) -> String {
    let mut stream = connect(addr).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `head` (a request line and fields, without the blank line), then
/// `body`, then a second request pipelined after it, and returns all that
/// was answered. A request `refused` must close its connection, so that the
/// second is never read; one served asks for the close itself. Either way
/// exactly one answer comes.
async fn answer_before_a_pipelined_request(
    addr: SocketAddr,
    head: &str,
    body: &str,
    refused: bool,
) -> String {
    let close = if refused { "" } else { "Connection: close\r\n" };
    let answer = exchange_whole(
        addr,
        &format!("{head}{close}\r\n{body}GET / HTTP/1.1\r\nHost: test\r\n\r\n"),
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.").count(), 1, "{head:?}: {answer}");
    answer
}

/// Opens `count` connections that each send a head announcing a 100-byte
/// body and one byte of it, and no more.
async fn slow_bodies(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut slow = Vec::new();
    for _ in 0..count {
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        slow.push(stream);
    }
    slow
}

/// Sends `request` on a new connection and reads the response head.
async fn exchange(addr: SocketAddr, request: &str, deadline: Duration) -> Option<String> {
    let mut stream = connect(addr).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(&mut stream, deadline).await
}

const HEALTH_CHECK: &str = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
const HALF_A_HEAD: &str = "GET / HTTP/1.1\r\nHost: te";

#[tokio::test]
async fn a_head_sent_too_slowly_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(ServerLimits {
        header_read_timeout: timeout,
        ..limits()
    })
    .await;
    // Before connecting: the server's timer may start as soon as it
    // accepts, before the client sees its connection made.
    let started = Instant::now();
    let mut slow = connect(server.addr).await;
    slow.write_all(HALF_A_HEAD.as_bytes()).await.unwrap();
    let answer = read_response(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "the connection is closed without an answer"
    );
    assert!(
        started.elapsed() >= timeout,
        "closed only once the timeout passed"
    );
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_503_so_sns_sends_it_again() {
    let server = start(ServerLimits {
        body_read_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let mut slow = connect(server.addr).await;
    let head = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 20\r\n\r\nab";
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_response(&mut slow, Duration::from_secs(5)).await;
    let answer = answer.expect("an answer within the deadline");
    // SNS counts any 4xx (408 too) as delivered and never retries it.
    assert!(answer.starts_with("HTTP/1.1 503"), "got {answer:?}");
    assert!(answer.contains("send it again"), "says what to do: {answer:?}");

    let whole = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab";
    let answer = exchange(server.addr, whole, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "a body sent at once is served"
    );
}

#[tokio::test]
async fn a_request_slower_than_the_request_timeout_gets_503() {
    let server = start(ServerLimits {
        request_timeout: SLOW_HANDLER / 4,
        ..limits()
    })
    .await;
    let answer = exchange(
        server.addr,
        "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let answer = answer.expect("an answer within the deadline");
    assert!(answer.starts_with("HTTP/1.1 503"), "got {answer:?}");
    assert!(answer.contains("send it again"), "says what to do: {answer:?}");
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let server = start(ServerLimits {
        max_header_bytes: 8192,
        ..limits()
    })
    .await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(20_000)
    );
    let answer = exchange(server.addr, &big, Duration::from_secs(5)).await;
    let answer = answer.expect("an answer within the deadline");
    assert!(answer.starts_with("HTTP/1.1 431"), "got {answer:?}");

    let fits = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(4_000)
    );
    let answer = exchange(server.addr, &fits, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "a head that fits is served"
    );
}

#[tokio::test]
async fn at_the_bound_idle_connections_make_room_for_the_health_check() {
    let bound = 4;
    let server = start(ServerLimits {
        max_connections: bound,
        // Far longer than the health check may wait (an ALB waits 5 s).
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    // Every slot held by a client serving no request: two kept alive after
    // an answer, two still sending their heads (slow loris).
    let mut held = Vec::new();
    for _ in 0..bound / 2 {
        let mut kept_alive = connect(server.addr).await;
        kept_alive.write_all(HEALTH_CHECK.as_bytes()).await.unwrap();
        let answer = read_response(&mut kept_alive, Duration::from_secs(5)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        held.push(kept_alive);
    }
    for _ in 0..bound / 2 {
        let mut loris = connect(server.addr).await;
        loris.write_all(HALF_A_HEAD.as_bytes()).await.unwrap();
        held.push(loris);
    }
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(2)).await;
    let answer = answer.expect("the health check answers within 2 s with every slot held");
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
    // It got in because the server closed connections, not past the bound.
    let mut closed = 0;
    for stream in &mut held {
        if read_response(stream, Duration::from_millis(500)).await.is_some() {
            closed += 1;
        }
    }
    assert!(
        closed >= 1,
        "no held connection was closed: the bound of {bound} was not applied"
    );
}

/// A server at a bound of `bound` connections, each answering a request
/// that does not end until the test lets it (`release`): no slot frees
/// before that, however slow the machine.
struct Held {
    server: Server,
    in_flight: Vec<TcpStream>,
    release: watch::Sender<bool>,
}

/// Lets the held requests end, and checks each got its answer: none was
/// cut to make room.
async fn release_uncut(release: &watch::Sender<bool>, in_flight: &mut [TcpStream]) {
    release.send_replace(true);
    for stream in in_flight {
        let answer = read_response(stream, Duration::from_secs(5)).await;
        assert!(
            answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200")),
            "a request in flight was cut: {answer:?}"
        );
    }
}

async fn every_slot_held(bound: usize) -> Held {
    // `GET /held` says it arrived, then answers once released.
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<()>();
    let (release, released) = watch::channel(false);
    let held = move || {
        let (arrivals, mut released) = (arrivals.clone(), released.clone());
        async move {
            let _ = arrivals.send(());
            let _ = released.wait_for(|go| *go).await;
            "done"
        }
    };
    let server = start_routing(
        ServerLimits {
            max_connections: bound,
            ..limits()
        },
        router().route("/held", get(held)),
    )
    .await;
    let mut in_flight = Vec::new();
    for _ in 0..bound {
        let mut stream = connect(server.addr).await;
        stream
            .write_all(b"GET /held HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        in_flight.push(stream);
    }
    for _ in 0..bound {
        let arrival = tokio::time::timeout(Duration::from_secs(5), arrived.recv()).await;
        assert!(matches!(arrival, Ok(Some(()))), "every slot answers a request");
    }
    Held {
        server,
        in_flight,
        release,
    }
}

#[tokio::test]
async fn at_the_bound_with_every_slot_busy_the_health_check_is_answered_beside_them() {
    let Held {
        server,
        mut in_flight,
        release,
    } = every_slot_held(4).await;
    // No slot frees until the test lets them, and the health check is not
    // made to wait for that (an order may take 14 s, the ALB waits 5 s).
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(5)).await;
    let answer = answer.expect("the health check answers within 5 s, beside the requests held");
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
    // An order meanwhile is told to come back (SNS retries a 5xx), its
    // body unread, and the connection closed.
    let order = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab";
    let refused = exchange(server.addr, order, Duration::from_secs(5)).await;
    let refused = refused.expect("an order past the bound is answered, not left waiting");
    assert!(refused.starts_with("HTTP/1.1 503"), "got {refused:?}");
    assert!(
        refused.to_ascii_lowercase().contains("connection: close"),
        "{refused:?}"
    );
    // No request in flight was cut to make room.
    release_uncut(&release, &mut in_flight).await;
    // Their connections, kept alive, now hold every slot idle: the next
    // order gets one of them (idle connections are closed to make room),
    // not the side lane's 503.
    let served = exchange(server.addr, order, Duration::from_secs(5)).await;
    assert!(
        served.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "got {served:?}"
    );
    drop(in_flight);
}

/// With every slot answering a request, connections that send nothing,
/// queued ahead of a health check, pass through the side lane fast enough
/// that it is answered within the ALB's 5 s: a full side lane closes its
/// silent connections as soon as another waits. (Turned over on the
/// 50 ms calls to shed, the side lane took 160 a second, and 800 such
/// connections held the health check past 5 s.) The connections are opened
/// before the health check, so it waits behind whatever is still queued.
#[tokio::test]
async fn at_the_bound_connections_sending_nothing_do_not_hold_the_health_check() {
    let Held {
        server,
        mut in_flight,
        release,
    } = every_slot_held(4).await;
    // Within the accept queue (4,096), so each connects at once.
    let mut silent = Vec::new();
    for _ in 0..3_000 {
        silent.push(connect(server.addr).await);
    }
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(5)).await;
    let answer = answer.expect("the health check answers within 5 s behind 3,000 silent connections");
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
    release_uncut(&release, &mut in_flight).await;
    drop(silent);
}

#[tokio::test]
async fn at_the_bound_heads_still_being_sent_are_closed_at_once() {
    let bound = 2;
    let header_read_timeout = Duration::from_secs(30);
    let server = start(ServerLimits {
        max_connections: bound,
        header_read_timeout,
        ..limits()
    })
    .await;
    // Every slot held by a client that sent a few bytes of a head: hyper's
    // graceful shutdown would close them only at the header timeout.
    let mut lorises = Vec::new();
    for _ in 0..bound {
        let mut loris = connect(server.addr).await;
        loris.write_all(b"G").await.unwrap();
        lorises.push(loris);
    }
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(5)).await;
    assert!(
        answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "got {answer:?}"
    );
    for loris in &mut lorises {
        let closed = read_response(loris, Duration::from_secs(5)).await;
        assert_eq!(
            closed.as_deref(),
            Some(""),
            "a part-sent head kept its slot (closed only at the {header_read_timeout:?} header timeout)"
        );
    }
}

#[tokio::test]
async fn while_every_slot_answers_orders_arriving_fast_do_not_keep_the_health_check_out() {
    let Held {
        server,
        mut in_flight,
        release,
    } = every_slot_held(2).await;
    // Orders queue up in the kernel ahead of the health check. Taken one
    // by one, each after a call to close idle connections (50 ms), these
    // 200 held it for ten seconds; a load balancer waits five.
    let order = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab";
    let mut orders = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(server.addr).await;
        stream.write_all(order.as_bytes()).await.unwrap();
        orders.push(stream);
    }
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(5)).await;
    let answer = answer.expect("the health check answers within 5 s, behind 200 orders");
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
    // A GET with a body would hold a side-lane place while it trickled in.
    let with_body = "GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nab";
    let refused = exchange(server.addr, with_body, Duration::from_secs(5)).await;
    assert!(
        refused.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 503")),
        "got {refused:?}"
    );
    for stream in &mut orders {
        let refused = read_response(stream, Duration::from_secs(5)).await;
        assert!(
            refused.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 503")),
            "an order past the bound is told to come back: {refused:?}"
        );
    }
    release_uncut(&release, &mut in_flight).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_loses_its_connection() {
    let write_timeout = Duration::from_millis(500);
    let server = start(ServerLimits {
        max_connections: 1,
        write_timeout,
        ..limits()
    })
    .await;
    // Takes the one slot, asks for more than the socket buffers hold, and
    // never reads a byte of it.
    let mut stalled = connect(server.addr).await;
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // An order (the health check would be answered beside the bound): it
    // gets the slot once the stalled write times out, and is refused 503
    // until then.
    let order = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab";
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(5) {
        answer = exchange(server.addr, order, Duration::from_secs(5)).await;
        if answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
            break;
        }
        // Polling, with a pause so as not to spin.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = answer.expect("the order is answered within 5 s, once the stalled write times out");
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
    assert!(
        started.elapsed() >= write_timeout,
        "answered after {:?}: the stalled connection did not hold the one slot",
        started.elapsed()
    );
    drop(stalled);
}

#[tokio::test]
async fn the_drain_finishes_requests_in_flight_and_ends_by_its_deadline() {
    let drain = Duration::from_millis(2000);
    let server = start(ServerLimits {
        drain_timeout: drain,
        ..limits()
    })
    .await;
    // An idle keep-alive connection: closed as soon as the drain starts.
    let mut idle = connect(server.addr).await;
    idle.write_all(HEALTH_CHECK.as_bytes()).await.unwrap();
    let answer = read_response(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.unwrap_or_default().starts_with("HTTP/1.1 200"));
    // A request whose body never comes: only the deadline ends it.
    let mut half_sent = connect(server.addr).await;
    let head = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 20\r\n\r\nab";
    half_sent.write_all(head.as_bytes()).await.unwrap();
    // A slow request under way when the drain starts.
    let mut in_flight = connect(server.addr).await;
    in_flight
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // Let the server read both before the drain starts.
    let mut probe = connect(server.addr).await;
    probe.write_all(HEALTH_CHECK.as_bytes()).await.unwrap();
    assert!(read_response(&mut probe, Duration::from_secs(5)).await.is_some());

    let drain_started = Instant::now();
    server.stop.send(()).unwrap();

    let closed = read_response(&mut idle, drain / 2).await;
    assert_eq!(closed.as_deref(), Some(""), "the idle connection closes at once");
    let answer = read_response(&mut in_flight, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "the request in flight still gets its answer"
    );
    let served = tokio::time::timeout(drain + Duration::from_secs(3), server.serving).await;
    let drained_in = drain_started.elapsed();
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "serve returns Ok within the drain deadline, got {served:?}"
    );
    assert!(
        drained_in >= drain,
        "the half-sent request held the drain to its deadline"
    );
    let closed = read_response(&mut half_sent, Duration::from_secs(1)).await;
    assert!(closed.is_some(), "the half-sent request's connection is closed");
    let refused = TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "no new connections after the drain");
}

#[tokio::test]
async fn the_drain_does_not_wait_for_a_head_still_being_sent() {
    let header_read_timeout = Duration::from_secs(30);
    let server = start(ServerLimits {
        header_read_timeout,
        ..limits()
    })
    .await;
    let mut loris = connect(server.addr).await;
    loris.write_all(HALF_A_HEAD.as_bytes()).await.unwrap();
    // Let the server read it before the drain starts.
    let mut probe = connect(server.addr).await;
    probe.write_all(HEALTH_CHECK.as_bytes()).await.unwrap();
    assert!(read_response(&mut probe, Duration::from_secs(5)).await.is_some());
    drop(probe);

    server.stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), server.serving).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "the drain waited for a part-sent head (until the {header_read_timeout:?} header timeout): {served:?}"
    );
    let closed = read_response(&mut loris, Duration::from_secs(1)).await;
    assert_eq!(closed.as_deref(), Some(""), "its connection is closed");
}

/// A request announcing a `length`-byte body to `path` that waits for the
/// server's `100 Continue` before sending it: the head of what comes back.
async fn announce_body(addr: SocketAddr, path: &str, length: usize) -> (TcpStream, String) {
    let mut stream = connect(addr).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer to the head within the deadline");
    (stream, answer)
}

/// Large bodies share one budget (`BODY_BUDGET`): a client holding a
/// thousand connections, each announcing a body of up to 512 KiB, made
/// the services hold 512 MiB and more, and ECS killed the task with every
/// order in it. Past the budget a large body (announced or chunked) is
/// refused 503 before it is read (SNS sends it again), while orders, which
/// are small, and the health check, which has no body, are served; a body
/// keeps its share until its route has answered. The server asks for a
/// body (its `100 Continue`) only once it has its share, which the test
/// waits for.
#[tokio::test]
async fn large_bodies_share_a_budget_and_small_orders_never_wait_for_it() {
    // `/held` reads its body, says so, and answers once released.
    let (entered, mut in_route) = mpsc::channel::<()>(1);
    let (release, released) = watch::channel(false);
    let held = post(move |body: String| {
        let (entered, mut released) = (entered.clone(), released.clone());
        async move {
            entered.send(()).await.unwrap();
            released.wait_for(|&go| go).await.unwrap();
            body.len().to_string()
        }
    });
    let server = start_routing(
        ServerLimits {
            max_connections: 256,
            ..limits()
        },
        router().route("/held", held),
    )
    .await;
    let largest = platform::server::BODY_LIMIT;
    // One large body read whole and kept by its route, the rest announced.
    let (mut in_the_route, answer) = announce_body(server.addr, "/held", largest).await;
    assert!(answer.starts_with("HTTP/1.1 100"), "got {answer:?}");
    in_the_route.write_all(&vec![b'x'; largest]).await.unwrap();
    in_route.recv().await.unwrap();
    let mut holding = Vec::new();
    for _ in 1..platform::server::BODY_BUDGET / largest {
        let (stream, answer) = announce_body(server.addr, "/echo", largest).await;
        assert!(answer.starts_with("HTTP/1.1 100"), "got {answer:?}");
        holding.push(stream);
    }

    let (_refused, answer) = announce_body(server.addr, "/echo", 20_000).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "got {answer:?}");
    assert!(answer.contains("send it again"), "says what to do: {answer:?}");
    let chunked =
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    let answer = exchange(server.addr, chunked, Duration::from_secs(5)).await;
    let answer = answer.unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "a body of unknown length may be large: {answer:?}"
    );
    let (_too_large, answer) = announce_body(server.addr, "/echo", largest + 1).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "refused before it is read: {answer:?}"
    );
    let order = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 13\r\n\r\n{\"bundle\": 1}";
    let answer = exchange(server.addr, order, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "a small body needs no share of the budget"
    );
    let answer = exchange(server.addr, HEALTH_CHECK, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "a request without a body needs no share either"
    );

    // The route answers: its share is free, and the next large body fits.
    release.send(true).unwrap();
    let answer = read_response(&mut in_the_route, Duration::from_secs(5)).await;
    assert!(answer.unwrap_or_default().starts_with("HTTP/1.1 200"));
    let mut admitted = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while admitted.is_none() && Instant::now() < deadline {
        let (stream, answer) = announce_body(server.addr, "/echo", 20_000).await;
        if answer.starts_with("HTTP/1.1 100") {
            admitted = Some(stream);
        } else {
            assert!(answer.starts_with("HTTP/1.1 503"), "got {answer:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut admitted = admitted.expect("a large body admitted once another's route answered");
    admitted.write_all(&vec![b'x'; 20_000]).await.unwrap();
    let answer = read_response(&mut admitted, Duration::from_secs(5)).await;
    assert!(
        answer.unwrap_or_default().starts_with("HTTP/1.1 200"),
        "the admitted body is served"
    );
    drop(holding);
}

/// RFC 9112, 3.2: an HTTP/1.1 request without a `Host` line, with two, or
/// with one that names no host is answered 400, which hyper leaves to the
/// server; what the ALB, SNS and curl send is served.
#[tokio::test]
async fn a_request_must_name_its_host_once() {
    let server = start(limits()).await;
    for (head, status) in [
        ("GET / HTTP/1.1\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: user@a\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a:port\r\n", "400"),
        ("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: 10.0.1.23:8080\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: orders.example.com\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: [::1]:5000\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: [::1]\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: [::1]:x\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: []\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: :80\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a::80\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a<b\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a.b-c_d~e%41:\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]:443\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: a%zz\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a%4\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: %\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [example.com]\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [::1%25en1]\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [1::2::3]\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [v1.]\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [vg.a]\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: [2001:db8::10.0.0.1]:5000\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost: a,b\r\n", "200"),
        ("GET / HTTP/1.1\r\nHost:\r\n", "200"),
        ("GET / HTTP/1.0\r\n", "200"),
    ] {
        let answer = answer_before_a_pipelined_request(server.addr, head, "", status == "400").await;
        let status_line = answer.lines().next().unwrap_or_default();
        assert!(
            status_line.ends_with(&format!(" {status} OK"))
                || status_line.contains(&format!(" {status} Bad")),
            "{head:?}: {answer}"
        );
        if status == "400" {
            assert!(
                answer.ends_with(
                    "a request must name its host in exactly one Host header (RFC 9112, section 3.2)"
                ),
                "{head:?}: {answer}"
            );
        }
    }
    server.stop.send(()).unwrap();
    server.serving.await.unwrap().unwrap();
}

/// Posts a whole order on a new connection, closed after it, and returns
/// the whole answer.
async fn post_order(addr: SocketAddr) -> String {
    exchange_whole(
        addr,
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
    )
    .await
}

/// Bodies sent a byte at a time hold every slot; at the bound, those still
/// arriving a second after their head are cut (503), so that orders get in
/// again long before the body timeout (30 s here). Below the bound a slow
/// body is left its whole timeout.
#[tokio::test]
async fn at_the_bound_bodies_still_arriving_after_a_second_are_cut_for_orders() {
    let server = start(ServerLimits {
        max_connections: 4,
        ..limits()
    })
    .await;
    // Below the bound: a body finished 1.3 s after its head is served.
    let mut unhurried = connect(server.addr).await;
    unhurried
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    unhurried.write_all(b"cd").await.unwrap();
    let answer = read_response(&mut unhurried, Duration::from_secs(5)).await;
    assert!(
        answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
    drop(unhurried);

    let sent = Instant::now();
    let slow = slow_bodies(server.addr, 4).await;
    // Every slot is answering once an order is told so.
    let give_up = Instant::now() + Duration::from_secs(5);
    while !post_order(server.addr)
        .await
        .contains("is answering a request; send it again")
    {
        assert!(Instant::now() < give_up, "the slow bodies hold every slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Orders get in again within seconds, not after the 30 s body timeout.
    let give_up = Instant::now() + Duration::from_secs(10);
    while !post_order(server.addr).await.starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < give_up, "orders are still refused after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "no body was cut before its second"
    );
    for mut stream in slow {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.contains("took longer than 1s to arrive; send it again"),
            "{answer}"
        );
    }
    server.stop.send(()).unwrap();
    server.serving.await.unwrap().unwrap();
}

/// RFC 9112, 6.1: a transfer coding the services do not read is answered
/// 501. hyper takes any list ending in `chunked` as plain chunked, and would
/// hand on a body still gzipped, or one a front framed another way.
#[tokio::test]
async fn a_transfer_coding_other_than_chunked_alone_gets_501() {
    let server = start(limits()).await;
    let chunked_order = "2\r\nab\r\n0\r\n\r\n";
    for (codings, status) in [
        ("Transfer-Encoding: chunked\r\n", "200"),
        ("Transfer-Encoding: Chunked\r\n", "200"),
        ("Transfer-Encoding: gzip, chunked\r\n", "501"),
        ("Transfer-Encoding: bogus, chunked\r\n", "501"),
        ("Transfer-Encoding: chunked, chunked\r\n", "501"),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "501"),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "501",
        ),
    ] {
        let head = format!("POST /echo HTTP/1.1\r\nHost: test\r\n{codings}");
        let answer =
            answer_before_a_pipelined_request(server.addr, &head, chunked_order, status == "501").await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{codings:?}: {answer}"
        );
        if status == "501" {
            assert!(
                answer.ends_with("no Transfer-Encoding but chunked alone is implemented here"),
                "{codings:?}: {answer}"
            );
        } else {
            assert!(
                answer.ends_with("\r\n\r\n2"),
                "the body's two bytes were read: {answer}"
            );
        }
    }
    server.stop.send(()).unwrap();
    server.serving.await.unwrap().unwrap();
}

/// The cut needs no more than a full bound: with a slot left that connections
/// take and lose in turn (each closed, idle, for the next), slow bodies
/// holding the others are cut too, and do not keep the turnover to that one
/// slot for the whole body timeout.
#[tokio::test]
async fn bodies_are_cut_while_new_connections_find_no_slot_free() {
    let server = start(ServerLimits {
        max_connections: 4,
        ..limits()
    })
    .await;
    let mut slow = slow_bodies(server.addr, 3).await;
    // The fourth slot, taken by a connection that sends nothing, and an
    // order that must wait for it to be closed: again and again, until the
    // slow bodies are cut (30 s body timeout here).
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut cut = 0;
    while cut < slow.len() {
        assert!(Instant::now() < give_up, "{cut} of 3 slow bodies cut after 10 s");
        let _silent = connect(server.addr).await;
        let answer = post_order(server.addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        cut = 0;
        for stream in &mut slow {
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut buf)).await {
                let head = String::from_utf8_lossy(&buf[..n]);
                assert!(head.is_empty() || head.starts_with("HTTP/1.1 503"), "{head}");
                cut += usize::from(n > 0);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop.send(()).unwrap();
    server.serving.await.unwrap().unwrap();
}
