//! The three replicas as the acceptance test calls them: an admin token
//! every request authenticates with, verify and introspection calls that
//! fail loudly on anything but a normal answer, the metrics that say
//! whether a replica shares its limits through Redis, a minimal
//! Server-Sent Events reader.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{post, Env, Served};

/// Three `tessera serve` processes on one database and one Redis.
pub struct Cluster {
    /// Kept for the processes' working directory.
    _env: Env,
    pub replicas: Vec<Served>,
    /// An admin token's secret: the authenticated caller of every check.
    pub admin: String,
    pub http: reqwest::Client,
}

/// A verify answer's outcome: `"VALID"` or its code.
pub fn outcome(v: &Value) -> String {
    if v["valid"] == true {
        "VALID".into()
    } else {
        v["code"].as_str().unwrap_or("?").to_string()
    }
}

impl Cluster {
    /// Starts `n` replicas of `env`, with an admin token made by the CLI.
    pub async fn start(env: Env, n: usize) -> Self {
        env.json(&["migrate", "--json"]);
        let created = env.json(&[
            "token", "create", "--name", "admin", "--scopes", "admin", "--json",
        ]);
        let admin = created["secret"].as_str().unwrap().to_string();
        let mut replicas = Vec::new();
        for _ in 0..n {
            replicas.push(env.serve().await);
        }
        // Plenty of connections, so concurrent requests are not queued here.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            _env: env,
            replicas,
            admin,
            http,
        }
    }

    /// Replica `i`'s base URL (replica 1 of the issue is index 0).
    pub fn base(&self, i: usize) -> &str {
        &self.replicas[i].base
    }

    /// POSTs JSON as the admin on replica `i`; the answer, which must be a success.
    pub async fn admin_post(&self, i: usize, path: &str, body: Value) -> Value {
        post(&self.http, self.base(i), &self.admin, path, body).await
    }

    /// Creates a token with `body` on replica 1; (id, secret).
    pub async fn token(&self, body: Value) -> (String, String) {
        let created = self.admin_post(0, "/v1/tokens", body).await;
        let id = created["token"]["id"].as_str().unwrap().to_string();
        (id, created["secret"].as_str().unwrap().to_string())
    }

    /// A token limited to `limit` per hour; its secret.
    pub async fn limited_token(&self, name: &str, limit: u32) -> String {
        let limits = json!([{"name": "default", "limit": limit, "period": "1h"}]);
        self.token(json!({"name": name, "ratelimits": limits}))
            .await
            .1
    }

    /// `POST /v1/tokens/verify` on replica `i` as the admin: the answer, or
    /// why it is not a normal one (a status other than 200, a connection
    /// error, a body that is not a verify answer).
    pub async fn try_verify(&self, i: usize, body: &Value) -> Result<Value, String> {
        let url = format!("{}/v1/tokens/verify", self.base(i));
        let r = self
            .http
            .post(url)
            .bearer_auth(&self.admin)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("replica {}: {e}", i + 1))?;
        let status = r.status();
        let text = r
            .text()
            .await
            .map_err(|e| format!("replica {}: {e}", i + 1))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != reqwest::StatusCode::OK || !v["valid"].is_boolean() {
            return Err(format!("replica {}: {status} {text}", i + 1));
        }
        Ok(v)
    }

    /// [`Cluster::try_verify`], which must give a normal answer.
    pub async fn verify(&self, i: usize, body: &Value) -> Value {
        self.try_verify(i, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// RFC 7662 introspection of `token` on replica `i` as client `(id, secret)`.
    pub async fn introspect(&self, i: usize, client: (&str, &str), token: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/oauth2/introspect", self.base(i)))
            .basic_auth(client.0, Some(client.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json().await.unwrap()
    }

    /// The value of one series (`name{labels}` exactly as exposed) in
    /// replica `i`'s `/metrics`, 0 when absent.
    pub async fn metric(&self, i: usize, series: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base(i)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// Each replica's `series`.
    pub async fn metrics(&self, series: &str) -> Vec<f64> {
        let mut values = Vec::new();
        for i in 0..self.replicas.len() {
            values.push(self.metric(i, series).await);
        }
        values
    }

    /// Waits (at most `within`) until every replica's fallback gauge is
    /// `value`: 0 when all share their limits through Redis, 1 when all
    /// decide on their own. How long it took.
    pub async fn until_fallback_is(&self, value: f64, within: Duration) -> Duration {
        let since = Instant::now();
        loop {
            let gauges = self.metrics("tokens_rate_limiter_fallback").await;
            if gauges.iter().all(|g| *g == value) {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < within,
                "tokens_rate_limiter_fallback is {gauges:?} after {within:?}, not {value} everywhere"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An open `GET /v1/events/stream`, read as a gateway would.
pub struct EventStream {
    res: reqwest::Response,
    buf: String,
}

/// One message's `event` and `data` (`None` for a position-only message).
pub type Event = (Option<String>, Option<String>);

impl EventStream {
    /// Opens the stream on replica `i` as the admin.
    pub async fn open(c: &Cluster, i: usize, query: &str) -> Self {
        let res = c
            .http
            .get(format!("{}/v1/events/stream?{query}", c.base(i)))
            .bearer_auth(&c.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next message (keep-alive comments skipped), or `None` when the
    /// stream ended or nothing came by `deadline`.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                        .map(str::to_string)
                };
                if block.lines().any(|l| !l.starts_with(':')) {
                    return Some((field("event"), field("data")));
                }
            }
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}
