//! Shared harness: a real server on 127.0.0.1:0 over a fresh database of
//! either backend, plus an admin token created through the service layer.
#![allow(dead_code)]

pub mod browser;
pub mod logs;
pub mod mfa;
pub mod people;
pub mod pki;
pub mod receiver;
pub mod smtp_sink;
pub mod sse;

use std::{collections::HashMap, future::Future, net::SocketAddr, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_core::audit::{Actor, RequestContext};
use tessera_server::{
    config::{Config, Overrides, Sources},
    service::tokens::CreateToken,
    Server, Services,
};
use tessera_test_support::TestDb;
use tokio::sync::oneshot;

pub const TEST_KEY: &str = "test-encryption-key-0123456789abcdef";

/// The request-rate settings of the route classes, off in tests by default.
pub const RATE_LIMIT_CLASSES: &[&str] = &[
    "TESSERA_RATE_LIMIT_LOGIN",
    "TESSERA_RATE_LIMIT_LOGIN_USER",
    "TESSERA_RATE_LIMIT_REFRESH",
    "TESSERA_RATE_LIMIT_INVITES",
    "TESSERA_RATE_LIMIT_AUTH_CODES",
];

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub db: TestDb,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub fn config(db_url: &str, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    config_with_file(db_url, data_dir, extra, None)
}

pub fn config_with_file(
    db_url: &str,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
    file: Option<std::path::PathBuf>,
) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db_url.to_string()),
        ("TESSERA_LISTEN".into(), "127.0.0.1:0".into()),
        ("TESSERA_ENC_KEY".into(), TEST_KEY.into()),
        ("TESSERA_DATA_DIR".into(), data_dir.display().to_string()),
        ("TESSERA_USAGE_FLUSH_INTERVAL".into(), "100ms".into()),
        // Test receivers listen on 127.0.0.1; tests of the SSRF rule set it to false.
        (
            "TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS".into(),
            "true".into(),
        ),
    ]);
    // Every test request comes from 127.0.0.1: the request rates of the
    // route classes are off unless a test sets one (it/rate_limits.rs). The
    // failure limits and the link limits keep their defaults.
    for class in RATE_LIMIT_CLASSES {
        env.insert(class.to_string(), "off".into());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let lookup = move |name: &str| env.get(name).cloned();
    Config::load(&Sources {
        file,
        env: &lookup,
        overrides: Overrides::default(),
    })
    .expect("test configuration is valid")
}

impl TestServer {
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: TestDb, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with_file(db, extra_env, None).await
    }

    /// Starts with a TOML configuration file holding `file_text`.
    pub async fn start_with_file(
        db: TestDb,
        extra_env: &[(&str, &str)],
        file_text: Option<&str>,
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let file = file_text.map(|text| {
            let p = data_dir.path().join("tessera.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let config = config_with_file(&db.url, data_dir.path(), extra_env, file);
        let admin = {
            let services = Services::open(&config).await.expect("services open");
            let issued = services
                .tokens
                .create(
                    CreateToken {
                        name: "test-admin".into(),
                        scopes: Some(vec!["admin".into()]),
                        ..Default::default()
                    },
                    &Actor::Cli,
                    &RequestContext::default(),
                )
                .await
                .expect("admin token");
            issued.secret.expose().to_string()
        };
        let server = Server::bind(config).await.expect("server binds");
        let base = format!("http://{}", server.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            base,
            http: reqwest::Client::new(),
            admin,
            db,
            data_dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// A second server (another replica) on this server's database.
    pub async fn replica(&self, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(TestDb::open(&self.db.url).await, extra_env).await
    }

    /// A server on a fresh PostgreSQL schema, for tests that need two
    /// replicas on one shared database (and declare `Need::Postgres`).
    pub async fn on_postgres(extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(TestDb::postgres().await, extra_env).await
    }

    /// Requests as the admin.
    pub fn as_admin(&self) -> Caller<'_> {
        Caller {
            server: self,
            bearer: Some(&self.admin),
        }
    }

    /// Requests without credentials.
    pub fn as_anonymous(&self) -> Caller<'_> {
        Caller {
            server: self,
            bearer: None,
        }
    }

    /// Requests with `token` as the bearer token.
    pub fn with_token<'a>(&'a self, token: &'a str) -> Caller<'a> {
        Caller {
            server: self,
            bearer: Some(token),
        }
    }

    /// `POST /v1/tokens/verify` without credentials; the reply unchecked.
    pub async fn verify_reply(&self, body: Value) -> Reply {
        self.as_anonymous()
            .post_json("/v1/tokens/verify", body)
            .await
    }

    /// `POST /v1/tokens/{id}/rotate` as the admin, with `body` if any.
    pub async fn rotate(&self, id: &str, body: Option<Value>) -> Reply {
        self.token_action(id, "rotate", body).await
    }

    /// `POST /v1/tokens/{id}/revoke` as the admin, with `body` if any.
    pub async fn revoke(&self, id: &str, body: Option<Value>) -> Reply {
        self.token_action(id, "revoke", body).await
    }

    async fn token_action(&self, id: &str, action: &str, body: Option<Value>) -> Reply {
        let path = format!("/v1/tokens/{id}/{action}");
        self.as_admin().send(Method::POST, &path, body).await
    }

    /// Sends `n` copies of one request at once (each from its own task, so
    /// they race on the server) and returns every reply, in order.
    pub async fn concurrently(
        &self,
        n: usize,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: impl Fn(usize) -> Option<Value>,
    ) -> Vec<Reply> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let mut req = self
                    .http
                    .request(method.clone(), format!("{}{}", self.base, path));
                if let Some(b) = bearer {
                    req = req.bearer_auth(b);
                }
                if let Some(b) = body(i) {
                    req = req.json(&b);
                }
                tokio::spawn(async move { Reply::from(req.send().await.unwrap()).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(n);
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        replies
    }

    /// Sends a request with the admin token; returns status, headers and JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body, Some(&self.admin)).await
    }

    /// Sends a request without credentials.
    pub async fn anonymous(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body, None).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    pub async fn verify(&self, token: &str) -> Value {
        let r = self
            .send(
                Method::POST,
                "/v1/tokens/verify",
                Some(json!({ "token": token })),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// The development message log: where messages go when no SMTP or SMS
    /// provider is configured.
    pub fn message_log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("messages.log")).unwrap()
    }

    /// The first one-time code in the development message log.
    pub fn logged_code(&self, digits: usize) -> String {
        self.message_log()
            .split("code is ")
            .nth(1)
            .unwrap()
            .chars()
            .take(digits)
            .collect()
    }

    /// Creates a token over HTTP; returns (id, secret).
    pub async fn create(&self, body: Value) -> (String, String) {
        let r = self.admin(Method::POST, "/v1/tokens", Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (
            r.body["token"]["id"].as_str().unwrap().to_string(),
            r.body["secret"].as_str().unwrap().to_string(),
        )
    }
}

/// Who a request goes out as: `s.as_admin().get(path)`,
/// `s.with_token(&t).post(path)`, `s.as_anonymous().post_json(path, body)`.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    server: &'a TestServer,
    bearer: Option<&'a str>,
}

impl Caller<'_> {
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// A POST without a body.
    pub async fn post(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch_json(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.server.send(method, path, body, self.bearer).await
    }
}

/// Serves `app` on 127.0.0.1 at a free port, in the background; returns the
/// address (for fake upstreams, webhook and SMS receivers).
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Polls `probe` every `every` until `done` holds for what it returns, at
/// most `tries` times; panics naming `what` when it never does.
pub async fn eventually<T: std::fmt::Debug, F: Future<Output = T>>(
    what: &str,
    tries: usize,
    every: Duration,
    mut probe: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut last = None;
    for _ in 0..tries {
        let got = probe().await;
        if done(&got) {
            return got;
        }
        last = Some(got);
        tokio::time::sleep(every).await;
    }
    panic!("timed out waiting for {what}; last {last:?}");
}

pub struct Reply {
    /// The path and query the request went to, for failure messages.
    pub request: String,
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub async fn from(res: reqwest::Response) -> Self {
        let url = res.url();
        let request = format!(
            "{}{}",
            url.path(),
            url.query().map_or(String::new(), |q| format!("?{q}"))
        );
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            request,
            status,
            headers,
            text,
            body,
        }
    }

    /// Asserts an RFC 9457 problem with this status and code.
    /// Failure messages name the request, so a table of cases says which
    /// case failed.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        let (request, text) = (&self.request, &self.text);
        assert_eq!(self.status, status, "{request}: body: {text}");
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{request}: body: {text}"
        );
        assert_eq!(self.body["code"], code, "{request}: body: {text}");
        assert_eq!(self.body["status"], status.as_u16(), "{request}");
        assert!(self.body["request_id"].is_string(), "{request}");
    }
}
