//! A database that goes away gives 503s, not 500s or a dead process (the
//! reader of the invalidation log counts its failures and carries on), and
//! the server recovers by itself when it returns. PostgreSQL is reached through a
//! proxy the test can cut, so the shared server is never stopped.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::common::TestServer;
use reqwest::StatusCode;
use tessera_test_support::{postgres_schema_url, TestDb};
use tokio::{net::TcpListener, sync::Notify};

/// Forwards TCP to `target` while up; while down, drops every connection.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees a closed connection
                }
                let target = target.clone();
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Splits `postgres://user@host:port/db?…` into (authority host:port, rewritten URL).
fn via(url: &str, proxy: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = rest.split_once('@').unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest[..end].to_string();
    (
        authority,
        format!("{scheme}://{userinfo}@{proxy}{}", &rest[end..]),
    )
}

async fn postgres_outage_gives_503_and_recovers() {
    let url = postgres_schema_url().await;
    // Migrate directly, then let the server reach the database only through the proxy.
    let direct = tessera_store::connect(&url).await.unwrap();
    direct.migrate().await.unwrap();
    let placeholder: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let (authority, _) = via(&url, placeholder);
    let proxy = Proxy::start(authority).await;
    let (_, proxied) = via(&url, proxy.addr);
    let s = TestServer::start(TestDb::open(&proxied).await).await;

    assert_eq!(s.as_admin().get("/v1/tokens").await.status, StatusCode::OK);
    proxy.down();
    let r = s
        .as_admin()
        .get("/v1/tokens/01a20c4b-0000-7000-8000-000000000000")
        .await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    assert!(r.headers.get("retry-after").is_some());
    // A registry client cannot be checked: 503, not `invalid_client`
    // (which would tell a healthy resource server its secret is wrong).
    let r = s
        .http
        .post(format!("{}/oauth2/introspect", s.base))
        .basic_auth("cl_0193a7e5c2f07c3a8b1d2e3f4a5b6c7d", Some("tsc_anything"))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["cache-control"], "no-store");
    s.as_anonymous()
        .get("/readyz")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    assert_eq!(
        s.as_anonymous().get("/healthz").await.status,
        StatusCode::OK
    );
    // The reader of the invalidation log notices (and drops the caches,
    // once); it neither stops nor brings the process down.
    crate::common::eventually(
        "a failed read of the invalidation log",
        100,
        Duration::from_millis(100),
        || async {
            let text = crate::common::people::metrics(&s).await;
            crate::common::people::metric(&text, "tokens_invalidation_poll_failures_total")
        },
        |failures| *failures >= 1.0,
    )
    .await;

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if s.as_anonymous().get("/readyz").await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the server did not recover after the database returned"
    );
    assert_eq!(s.as_admin().get("/v1/tokens").await.status, StatusCode::OK);
}

tessera_test_support::tests! {
    multi_thread: #[needs(Postgres)] postgres_outage_gives_503_and_recovers;
}
