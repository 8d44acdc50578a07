//! Slow, idle and numerous clients cannot hold the server (issue 11, item 1),
//! and oversized request heads get problem+json (item 10): a connection that
//! sends nothing, half its headers, a short body, or goes idle is closed
//! within its configured timeout; past the connection cap new connections
//! get `503 overloaded`; and with 2,000 idle connections held open, health
//! and verify still answer quickly. On both backends.

use std::time::{Duration, Instant};

use crate::common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_test_support::{backend_tests, TestDb};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Short timeouts, so the tests are quick.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const BODY_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How late a close may come (a loaded CI machine, two cores).
const SLACK: Duration = Duration::from_millis(1500);

async fn start_with_short_timeouts(db: TestDb) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TESSERA_HTTP_HEADER_TIMEOUT", "1s"),
            ("TESSERA_HTTP_BODY_TIMEOUT", "1s"),
            ("TESSERA_HTTP_IDLE_TIMEOUT", "2s"),
        ],
    )
    .await
}

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Sends `bytes`, then reads until the server closes the connection; gives
/// up after `limit`. Returns what was read and when the close came (`None`
/// if it did not).
async fn send_and_wait_for_close(
    addr: &str,
    bytes: &[u8],
    limit: Duration,
) -> (String, Option<Duration>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// A slow client: its name, the bytes it sends before going quiet, the
/// timeout that should close it, and the status and body part it should get
/// first, if any.
type SlowCase = (
    &'static str,
    &'static str,
    Duration,
    Option<(&'static str, &'static str)>,
);

async fn slow_and_idle_connections_are_closed_in_time(db: TestDb) {
    let s = start_with_short_timeouts(db).await;
    let addr = addr(&s);
    let verify_head = "POST /v1/tokens/verify HTTP/1.1\r\nHost: t\r\n\
                       Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tok";
    // One case a line reads as a table; keep rustfmt from unfolding it.
    #[rustfmt::skip]
    let cases: [SlowCase; 4] = [
        ("sends nothing", "", HEADER_TIMEOUT, None),
        ("sends half its headers", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ", HEADER_TIMEOUT, None),
        ("sends 5 of 1000 body bytes", verify_head, BODY_TIMEOUT, Some(("408", "\"code\":\"request_timeout\""))),
        ("goes idle after a request", "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", IDLE_TIMEOUT, Some(("200", "\"status\":\"ok\""))),
    ];
    let runs = cases.map(|(name, bytes, timeout, expected)| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let limit = timeout + SLACK + Duration::from_secs(3);
            let (received, closed) = send_and_wait_for_close(&addr, bytes.as_bytes(), limit).await;
            (name, timeout, expected, received, closed)
        })
    });
    for run in runs {
        let (name, timeout, expected, received, closed) = run.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open; got {received:?}"));
        assert!(
            closed >= timeout.mul_f32(0.8) && closed <= timeout + SLACK,
            "{name}: closed after {closed:?}, expected about {timeout:?}"
        );
        match expected {
            None => assert!(received.is_empty(), "{name}: got {received:?}"),
            Some((status, body)) => {
                assert!(
                    received.starts_with(&format!("HTTP/1.1 {status} ")),
                    "{name}: got {received:?}"
                );
                assert!(received.contains(body), "{name}: got {received:?}");
                if status == "408" {
                    assert!(
                        received.contains("content-type: application/problem+json"),
                        "{name}: got {received:?}"
                    );
                }
            }
        }
    }
}

async fn past_the_connection_cap_new_connections_get_503(db: TestDb) {
    let s = TestServer::start_with(
        db,
        &[
            ("TESSERA_HTTP_MAX_CONNECTIONS", "4"),
            ("TESSERA_HTTP_HEADER_TIMEOUT", "30s"),
        ],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    // The server accepts them in its own time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let r = common::Reply::from(
        fresh()
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.headers["cache-control"], "no-store");
    // Room again once the held connections close.
    drop(held);
    let status = common::eventually(
        "room once the held connections closed",
        40,
        Duration::from_millis(50),
        || async {
            fresh()
                .get(format!("{}/healthz", s.base))
                .send()
                .await
                .unwrap()
                .status()
        },
        |status| *status == StatusCode::OK,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

async fn oversized_request_heads_get_problem_json(db: TestDb) {
    let s = TestServer::start(db).await;
    let long_uri = format!("/healthz?pad={}", "a".repeat(9 * 1024));
    let r = s.as_anonymous().get(&long_uri).await;
    r.assert_problem(StatusCode::URI_TOO_LONG, "uri_too_long");

    let big_value = "b".repeat(1024);
    let many_small: Vec<(String, String)> =
        (0..150).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let few_large: Vec<(String, String)> = (0..20)
        .map(|i| (format!("x-h{i}"), big_value.clone()))
        .collect();
    for (name, headers) in [
        ("20 KiB of headers", few_large),
        ("150 headers", many_small),
    ] {
        let mut req = s.http.get(format!("{}/healthz", s.base));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = common::Reply::from(req.send().await.unwrap()).await;
        assert_eq!(
            r.status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{name}"
        );
        r.assert_problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
        );
    }
}

/// The median of `n` timed requests from `send`, each on a new connection.
async fn median_latency<F, Fut>(n: usize, send: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let res = send().await;
        assert_eq!(res.status(), StatusCode::OK);
        let _ = res.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[n / 2]
}

/// The acceptance test of issue 11, item 1.
async fn two_thousand_idle_connections_do_not_stop_health_or_verify(db: TestDb) {
    // The test process holds both ends of every connection.
    tessera_server::http::fd_limit::raise();
    // Long enough that the idle connections stay open through the test.
    let s = TestServer::start_with(db, &[("TESSERA_HTTP_HEADER_TIMEOUT", "60s")]).await;
    let (_, token) = s.create(json!({"name": "probe", "scopes": ["read"]})).await;
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let health = median_latency(9, || async {
        fresh
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
    })
    .await;
    let verify = median_latency(9, || async {
        fresh
            .post(format!("{}/v1/tokens/verify", s.base))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    })
    .await;
    let answer: Value = fresh
        .post(format!("{}/v1/tokens/verify", s.base))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["valid"], true, "{answer}");
    let bound = Duration::from_millis(100);
    assert!(
        health < bound,
        "/healthz median {health:?} with 2,000 idle connections"
    );
    assert!(
        verify < bound,
        "verify median {verify:?} with 2,000 idle connections"
    );
    // The idle connections were still held, not closed to make room.
    let mut probe = [0u8; 1];
    for conn in idle.iter().step_by(100) {
        let read = tokio::time::timeout(Duration::from_millis(5), conn.peek(&mut probe)).await;
        assert!(read.is_err(), "an idle connection was closed: {read:?}");
    }
}

backend_tests!(
    slow_and_idle_connections_are_closed_in_time,
    past_the_connection_cap_new_connections_get_503,
    oversized_request_heads_get_problem_json,
    two_thousand_idle_connections_do_not_stop_health_or_verify,
);
