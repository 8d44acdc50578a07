//! Issue #14, mutual TLS: Tessera serves HTTPS itself with certificates made
//! in the test. Every kind of client certificate reaches the handlers as
//! what it is (its CNs) or as nothing (another CA, no `clientAuth`, only
//! `serverAuth`, revoked, expired), and client authentication makes of it
//! `mtls:<CN>`, a refused certificate, or no certificate (Basic still
//! works beside any of them); the TLS listener keeps the connection
//! cap, load shedding and the header deadline, and drops a client that never
//! finishes its handshake; and unusable files stop start-up naming the
//! variable, never quoting a key.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{http::request::Parts, routing::get, Json, Router};
use rcgen::ExtendedKeyUsagePurpose;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_core::{audit::RequestContext, client::Capability};
use tessera_server::{
    config::TlsSettings,
    http::{
        connections::{self, ConnectionLimits},
        oauth_client::{client_credentials, peer_certificate},
        tls::Tls,
        watchdog::Deadlines,
    },
    service::clients::ClientService,
    Services,
};
use tessera_test_support::{tests, TestDb};
use tokio::{io::AsyncReadExt, net::TcpStream};

use crate::common::{
    self,
    pki::{https_client, write, Ca, Issued, Leaf},
    TestServer,
};

/// How late a close may come (a loaded CI machine, two cores).
const SLACK: Duration = Duration::from_millis(1500);
/// The handshake and header timeouts of the limits test.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A server CA and certificate, a client CA with a CRL revoking serial
/// [`REVOKED`], and another CA, as files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    server_ca: Ca,
    client_ca: Ca,
    other_ca: Ca,
    cert: PathBuf,
    key: PathBuf,
    client_ca_file: PathBuf,
    crl_pem: PathBuf,
    crl_der: PathBuf,
}

const REVOKED: u64 = 13;

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (server_ca, client_ca) = (Ca::new("test server CA"), Ca::new("test client CA"));
        let server = server_ca.issue(Leaf::server());
        let (crl_pem, crl_der) = client_ca.crl(&[REVOKED]);
        let d = dir.path();
        Self {
            cert: write(d, "server.pem", &server.cert_pem),
            key: write(d, "server.key", &server.key_pem),
            client_ca_file: write(d, "client-ca.pem", client_ca.pem()),
            crl_pem: write(d, "client-ca.crl.pem", crl_pem),
            crl_der: write(d, "client-ca.crl", crl_der),
            other_ca: Ca::new("test client CA"),
            server_ca,
            client_ca,
            dir,
        }
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: Some(self.client_ca_file.clone()),
            client_crl: Some(self.crl_pem.clone()),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let s = |p: &PathBuf| p.display().to_string();
        vec![
            ("TESSERA_TLS_CERT", s(&self.cert)),
            ("TESSERA_TLS_KEY", s(&self.key)),
            ("TESSERA_TLS_CLIENT_CA", s(&self.client_ca_file)),
            ("TESSERA_TLS_CLIENT_CRL", s(&self.crl_der)),
        ]
    }

    fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        https_client(&self.server_ca.pem(), identity.map(Issued::identity))
    }
}

/// The test route: the certificate `peer_certificate` finds on the
/// request, and what `ClientService::authenticate` makes of the caller for
/// introspection (the client id, or the reason kept in the log).
async fn peer(clients: Arc<ClientService>, parts: Parts) -> Json<Value> {
    let certificate = peer_certificate(&parts);
    let credentials = client_credentials(&parts.headers, certificate, None, None, None);
    let ctx = RequestContext::default();
    let outcome = clients
        .authenticate(&credentials, Capability::Introspect, &ctx)
        .await;
    Json(json!({
        "common_names": certificate.map(|p| p.common_names.clone()),
        "client": match outcome {
            Ok(client) => client.id,
            Err(reason) => reason.as_str().to_string(),
        },
    }))
}

/// Serves a router with only `/peer` over `tls` through the real accept
/// loop; returns its address.
async fn serve_peer_route(tls: Tls, clients: Arc<ClientService>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        deadlines: Deadlines {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        },
        body_timeout: Duration::from_secs(10),
        max_connections: 64,
    };
    let app = Router::new().route("/peer", get(move |parts| peer(clients, parts)));
    let never = std::future::pending::<()>();
    tokio::spawn(connections::serve(listener, app, limits, tls, never));
    addr
}

async fn each_client_certificate_is_seen_or_ignored(db: TestDb) {
    let pki = Pki::new();
    let data_dir = tempfile::tempdir().unwrap();
    let env = [
        ("INTROSPECTION_MTLS_ALLOWED_CNS", "gateway.internal"),
        ("INTROSPECTION_CLIENTS", "api:0123456789abcdef"),
    ];
    let config = common::config(&db.url, data_dir.path(), &env);
    let services = Services::open(&config).await.unwrap();
    let tls = Tls::load(&pki.settings()).unwrap();
    let addr = serve_peer_route(tls, services.clients.clone()).await;
    let ca = &pki.client_ca;
    let no_eku = Leaf {
        usages: Vec::new(),
        ..Leaf::client("no-eku", 5)
    };
    let server_only = Leaf {
        usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..Leaf::client("server-only", 6)
    };
    let expired = Leaf {
        expired: true,
        ..Leaf::client("expired", 7)
    };
    let no_cn = Leaf {
        cn: None,
        ..Leaf::client("", 8)
    };
    let missing = "missing";
    let refused = "certificate_refused";
    let other_ca = || pki.other_ca.issue(Leaf::client("gateway.internal", 2));
    // (case, certificate, Basic credentials, CNs seen, client or failure)
    #[rustfmt::skip]
    let cases: Vec<(&str, Option<Issued>, bool, Value, &str)> = vec![
        ("no certificate", None, false, Value::Null, missing),
        ("allowed CN", Some(ca.issue(Leaf::client("gateway.internal", 2))), false, json!(["gateway.internal"]), "mtls:gateway.internal"),
        ("another CN", Some(ca.issue(Leaf::client("intruder", 3))), false, json!(["intruder"]), refused),
        ("another CN, with Basic", Some(ca.issue(Leaf::client("intruder", 4))), true, json!(["intruder"]), "api"),
        ("no CN", Some(ca.issue(no_cn)), false, json!([]), refused),
        ("another CA", Some(other_ca()), false, Value::Null, missing),
        ("another CA, with Basic", Some(other_ca()), true, Value::Null, "api"),
        ("no extended key usage", Some(ca.issue(no_eku)), false, Value::Null, missing),
        ("serverAuth only", Some(ca.issue(server_only)), false, Value::Null, missing),
        ("expired", Some(ca.issue(expired)), false, Value::Null, missing),
        ("revoked", Some(ca.issue(Leaf::client("gateway.internal", REVOKED))), false, Value::Null, missing),
    ];
    for (name, identity, basic, cns, client) in cases {
        let mut req = pki
            .client(identity.as_ref())
            .get(format!("https://{addr}/peer"));
        if basic {
            req = req.basic_auth("api", Some("0123456789abcdef"));
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["common_names"], cns, "{name}");
        assert_eq!(body["client"], client, "{name}");
    }
}

/// Reads until the server closes; how long that took, `None` if not
/// within `limit`.
async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A TLS session to `addr` that then sends nothing.
async fn silent_tls_session(
    addr: &str,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

async fn https_keeps_the_connection_limits_and_timeouts(db: TestDb) {
    let pki = Pki::new();
    let mut env = pki.env();
    env.extend([
        ("TESSERA_HTTP_MAX_CONNECTIONS", "2".to_string()),
        ("TESSERA_TLS_HANDSHAKE_TIMEOUT", "3s".to_string()),
        ("TESSERA_HTTP_HEADER_TIMEOUT", "3s".to_string()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = TestServer::start_with(db, &env).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let healthz = format!("https://{addr}/healthz");
    // HTTPS without a client certificate.
    let once = pki.client(None).get(&healthz).header("connection", "close");
    let r = common::Reply::from(once.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok", "{:?}", r.body);
    // Plain HTTP on the TLS port gets no answer.
    assert!(s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .is_err());
    // Those connections close in the server's own time.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Two clients that open TCP and never shake hands hold both slots...
    let opened = Instant::now();
    let mut held = [
        TcpStream::connect(&addr).await.unwrap(),
        TcpStream::connect(&addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ... so a third is shed, with its 503 over TLS.
    let r = common::Reply::from(pki.client(None).get(&healthz).send().await.unwrap()).await;
    r.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    // The handshake timeout (3 s) drops them, freeing the slots.
    for conn in &mut held {
        let closed = closed_within(conn, TIMEOUT + SLACK).await;
        assert!(
            closed.is_some(),
            "a client that never shook hands was not dropped"
        );
        let closed = opened.elapsed();
        assert!(
            closed >= TIMEOUT.mul_f32(0.8) && closed <= TIMEOUT + SLACK,
            "{closed:?}"
        );
    }
    let r = pki.client(None).get(&healthz).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // After the handshake, the header deadline applies as on HTTP.
    let mut session = silent_tls_session(&addr, &pki.server_ca.pem()).await;
    let closed = closed_within(&mut session, TIMEOUT + SLACK + SLACK).await;
    let closed = closed.expect("a TLS session that sent no request was not closed");
    assert!(
        closed >= TIMEOUT.mul_f32(0.8) && closed <= TIMEOUT + SLACK,
        "closed after {closed:?}, expected about 3 s"
    );
}

/// `Tls::load` with `change` applied to good settings: the error's text.
fn refusal(pki: &Pki, change: impl FnOnce(&mut TlsSettings)) -> String {
    let mut settings = pki.settings();
    change(&mut settings);
    match Tls::load(&settings) {
        Ok(_) => "started".to_string(),
        Err(e) => e.to_string(),
    }
}

fn unusable_tls_files_stop_start_up_naming_the_variable() {
    let pki = Pki::new();
    let d = pki.dir.path();
    let missing = d.join("missing.pem");
    let garbage = write(d, "garbage.txt", "not a certificate\n");
    let pem_garbage = write(
        d,
        "bad.crl.pem",
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    );
    let other = pki.other_ca.issue(Leaf::server());
    let other_key = write(d, "other.key", &other.key_pem);
    let server_key = std::fs::read_to_string(&pki.key).unwrap();
    type Change<'a> = Box<dyn FnOnce(&mut TlsSettings) + 'a>;
    #[rustfmt::skip]
    let table: Vec<(&str, Change<'_>, &str)> = vec![
        ("good, PEM CRL", Box::new(|_| {}), "started"),
        ("good, DER CRL", Box::new(|t| t.client_crl = Some(pki.crl_der.clone())), "started"),
        ("good, no client CA", Box::new(|t| { t.client_ca = None; t.client_crl = None }), "started"),
        ("certificate missing", Box::new(|t| t.cert = missing.clone()), "TESSERA_TLS_CERT"),
        ("certificate not PEM", Box::new(|t| t.cert = garbage.clone()), "TESSERA_TLS_CERT"),
        ("certificate file is a key", Box::new(|t| t.cert = pki.key.clone()), "TESSERA_TLS_CERT"),
        ("key missing", Box::new(|t| t.key = missing.clone()), "TESSERA_TLS_KEY"),
        ("key file is a certificate", Box::new(|t| t.key = pki.cert.clone()), "TESSERA_TLS_KEY"),
        ("key of another certificate", Box::new(|t| t.key = other_key.clone()), "TESSERA_TLS_KEY"),
        ("client CA missing", Box::new(|t| t.client_ca = Some(missing.clone())), "TESSERA_TLS_CLIENT_CA"),
        ("client CA without a certificate", Box::new(|t| t.client_ca = Some(pki.key.clone())), "TESSERA_TLS_CLIENT_CA"),
        ("CRL missing", Box::new(|t| t.client_crl = Some(missing.clone())), "TESSERA_TLS_CLIENT_CRL"),
        ("CRL not DER", Box::new(|t| t.client_crl = Some(garbage.clone())), "TESSERA_TLS_CLIENT_CRL"),
        ("CRL PEM not a CRL", Box::new(|t| t.client_crl = Some(pem_garbage.clone())), "TESSERA_TLS_CLIENT_CRL"),
        ("CRL file is a certificate", Box::new(|t| t.client_crl = Some(pki.cert.clone())), "TESSERA_TLS_CLIENT_CRL"),
    ];
    let key_lines: Vec<&str> = server_key
        .lines()
        .chain(other.key_pem.lines())
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (name, change, naming) in table {
        let message = refusal(&pki, change);
        if naming == "started" {
            assert_eq!(message, "started", "{name}");
            continue;
        }
        assert!(message.starts_with(naming), "{name}: {message}");
        for line in &key_lines {
            assert!(!message.contains(line), "{name} quotes a key: {message}");
        }
    }
}

tests! {
    backends: https_keeps_the_connection_limits_and_timeouts, each_client_certificate_is_seen_or_ignored;
    sync: unusable_tls_files_stop_start_up_naming_the_variable;
}
