//! Shared by the CLI tests that run real `tessera serve` processes: a child
//! server that reports where it listens, is killed on drop (so a failing test
//! leaks nothing), and prints its log tail when the test panics.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

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
