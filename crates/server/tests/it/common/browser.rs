//! A real browser as a client: Debian's headless `chromium` loads a page
//! served from `http://localhost:<port>` (another site than Tessera's
//! `http://127.0.0.1:<port>`), runs a test's script there and reports what it
//! returned. So CORS, preflights, `Origin` and fetch metadata are the
//! browser's own, as a real front end meets them. Tests that use it declare
//! `#[needs(Command("chromium"))]`: skipped where it is missing, a failure
//! under CI (`.ci/run` installs it).

use std::{process::Stdio, time::Duration};

use axum::{response::Html, routing::get, Router};
use serde_json::Value;

/// How long chromium may take to load the page and run its script.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// The page's server, bound before Tessera starts so that its origin can
/// go into `TESSERA_ALLOWED_ORIGINS`.
pub struct Page {
    listener: tokio::net::TcpListener,
    origin: String,
}

impl Page {
    /// Binds a free port on 127.0.0.1; the page's origin names it `localhost`.
    pub async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        Self {
            listener,
            origin: format!("http://localhost:{port}"),
        }
    }

    /// `http://localhost:<port>`, as the browser sends it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Serves a page that runs `script`, the body of an `async` function in
    /// which `tessera` holds `tessera_base` (e.g. `http://127.0.0.1:1234`),
    /// loads it in headless chromium and returns what the function returned
    /// (through `JSON.stringify`); `{"error": "…"}` when it threw (a blocked
    /// `fetch` throws `TypeError: Failed to fetch`).
    pub async fn run(self, tessera_base: &str, script: &str) -> Value {
        let html = page(tessera_base, script);
        let app = Router::new().route("/", get(move || async move { Html(html) }));
        let server = tokio::spawn(async move { axum::serve(self.listener, app).await });
        let url = format!("{}/", self.origin);
        let dom = chromium_dump_dom(&url).await;
        server.abort();
        parse_result(&dom)
    }
}

/// The page: the script's result goes into `<pre id="out">` as JSON.
fn page(tessera_base: &str, script: &str) -> String {
    let base = serde_json::to_string(tessera_base).unwrap();
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tessera test page</title></head>
<body><pre id="out">pending</pre>
<script>
const tessera = {base};
const out = (v) => {{ document.getElementById("out").textContent = JSON.stringify(v); }};
(async () => {{
{script}
}})().then((v) => out(v === undefined ? null : v), (e) => out({{ error: String(e) }}));
</script>
</body></html>"#
    )
}

/// Runs chromium on `url` and returns the DOM once the page is idle: the
/// virtual time budget runs out only while no request is in flight, so every
/// `fetch` the script awaits completes first. Off the runtime's threads (the
/// servers under test share them), under coreutils' `timeout`, which kills
/// a browser that hangs.
async fn chromium_dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("timeout");
    command
        .args(["--kill-after=5", &BROWSER_TIMEOUT.as_secs().to_string()])
        .args([
            "chromium",
            "--headless",
            // As root (CI containers), chromium refuses to start sandboxed.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=60000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("timeout and chromium run");
    drop(profile);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !stdout.contains("id=\"out\"") {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        panic!(
            "chromium failed on {url} ({}; 124 is a timeout after {BROWSER_TIMEOUT:?}): \
             {stdout}\nstderr (last lines, newest first): {tail:#?}",
            out.status
        );
    }
    stdout
}

/// The JSON in `<pre id="out">`, its text unescaped.
fn parse_result(dom: &str) -> Value {
    let start = dom
        .find("<pre id=\"out\">")
        .expect("the page's output element")
        + 14;
    let end = start
        + dom[start..]
            .find("</pre>")
            .expect("the output element closes");
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    assert_ne!(text, "pending", "the page's script did not finish: {dom}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
