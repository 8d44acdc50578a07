//! Shared by the CLI tests that run the real binary: an environment that
//! points every command at one database and nothing else, a child server
//! that reports where it listens, is killed on drop (so a failing test leaks
//! nothing) and prints its log tail when the test panics, and small helpers
//! for JSON output and HTTP calls.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Every variable that could point the binary elsewhere or set a key.
const SCRUBBED: &[&str] = &[
    "DATABASE_URL",
    "TESSERA_DATABASE_URL",
    "DB_DRIVER",
    "TESSERA_CONFIG",
    "TESSERA_ENC_KEY",
    "TESSERA_ENC_KEY_PREVIOUS",
    "TOTP_ENC_KEY",
    "TESSERA_TOTP_ENC_KEY",
    "TOTP_ENC_KEY_PREVIOUS",
    "TESSERA_TOTP_ENC_KEY_PREVIOUS",
];

/// Variables for one command only, on top of the environment's.
pub type Vars<'a> = &'a [(&'a str, &'a str)];

/// A working directory and the variables every command of a test gets.
pub struct Env {
    pub dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    /// Set when the database is a PostgreSQL schema of this test.
    pub postgres_url: Option<String>,
}

impl Env {
    /// The embedded SQLite database (and generated key) in a fresh directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        Self {
            dir,
            vars: vec![("TESSERA_DATA_DIR".into(), data_dir)],
            postgres_url: None,
        }
    }

    /// A PostgreSQL database; `key` is the server's encryption key.
    pub fn postgres(url: String, key: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            vars: vec![
                ("DATABASE_URL".into(), url.clone()),
                ("TESSERA_ENC_KEY".into(), key.into()),
            ],
            postgres_url: Some(url),
        }
    }

    /// Adds a variable every command gets.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// `tessera ARGS` with the environment's variables, then `extra`; it logs JSON.
    pub fn cmd_with(&self, extra: Vars, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env("TESSERA_LOG_FORMAT", "json");
        for k in SCRUBBED {
            c.env_remove(k);
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&[], args)
    }

    pub fn run_with(&self, extra: Vars, args: &[&str]) -> Output {
        self.cmd_with(extra, args).output().expect("run tessera")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// Runs a `--json` command that must succeed; its one JSON object.
    pub fn json_with(&self, extra: Vars, args: &[&str]) -> Value {
        let out = self.run_with(extra, args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with(&[], args)
    }

    /// `tessera serve` in this environment.
    pub async fn serve(&self) -> Served {
        Served::start(self.cmd(&[])).await
    }
}

/// POSTs `body` with a bearer token; the response's JSON, which must be a success.
pub async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "POST {base}{path}: {status} {v}");
    v
}

pub struct Served {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Runs `cmd serve --listen 127.0.0.1:0` (the command must log JSON),
    /// reads the bound address from its "tessera is serving" line, and
    /// returns once `/healthz` answers.
    pub async fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let listen = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server exited before serving:\n{}", seen.join("\n"));
            };
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == "tessera is serving" {
                break v["listen"].as_str().unwrap().to_string();
            }
            seen.push(line);
        };
        let log = Arc::new(Mutex::new(seen));
        let sink = log.clone();
        // Keep draining so the server never blocks on a full pipe; the tail
        // is printed if the test fails.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                if l.len() > 200 {
                    l.remove(0);
                }
                l.push(line);
            }
        });
        let served = Self {
            child,
            base: format!("http://{listen}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reqwest::get(format!("{}/healthz", served.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "/healthz never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    }

    /// SIGKILL and wait: a crash, nothing flushed.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait, so buffered writes are flushed as in production.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "server {} log tail:\n{}",
                self.base,
                self.log.lock().unwrap().join("\n")
            );
        }
    }
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
