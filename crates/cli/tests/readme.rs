//! The README runs as written: every fenced block marked ```` ```bash runnable ````
//! is run, in order, in one `bash -euo pipefail` session, in a fresh
//! directory with this build's `tessera` first on the PATH, exactly as a
//! newcomer pasting them one by one would. A ```` ```text output ```` (or
//! `json output`) block right after a runnable block is what that block must
//! print on stdout, line by line, where `…` stands for any text (ids, times,
//! secrets). The README's fixed ports (8080 for Tessera, 9099 for the
//! upstream stand-in) are swapped for free ones, so the test can run beside
//! anything else.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A whole walk-through must finish within this; a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(180);

/// The README's fixed ports, replaced by free ones.
const PORTS: [&str; 2] = ["8080", "9099"];

struct Block {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    code: String,
    expected: Option<String>,
}

fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let info = lines[i].trim_start().strip_prefix("```").map(str::trim);
        let Some(info) = info else {
            i += 1;
            continue;
        };
        let start = i;
        let body_end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .expect("every fence is closed");
        let body = lines[i + 1..body_end].join("\n");
        i = body_end + 1;
        match info.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["bash", "runnable"] => out.push(Block {
                line: start + 1,
                code: body,
                expected: None,
            }),
            [_, "output"] => {
                let previous = out.last_mut().filter(|b| b.expected.is_none());
                let previous = previous.unwrap_or_else(|| {
                    panic!(
                        "README line {}: an output block must follow a runnable block",
                        start + 1
                    )
                });
                previous.expected = Some(body);
            }
            _ => {}
        }
    }
    out
}

/// `line` matches `pattern` where each `…` in the pattern stands for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// `text` with each README port replaced where it stands as a number of its
/// own (`:8080`, `, 9099)`), not inside a longer one.
fn with_ports(text: &str, ports: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (from, to) in ports {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(from.as_str()) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + from.len()..].chars().next();
            let alone = !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit());
            out.push_str(&rest[..at]);
            out.push_str(if alone { to } else { from });
            rest = &rest[at + from.len()..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

/// The script: each block's stdout to its own file, a marker on stderr
/// before each, and every background job (the servers) stopped at the end.
fn script(blocks: &[Block], ports: &[(String, String)], outputs: &Path) -> String {
    let mut s = String::from(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT\n",
    );
    for (n, b) in blocks.iter().enumerate() {
        let code = with_ports(&b.code, ports);
        s.push_str(&format!(
            "echo '== README.md line {}' >&2\n{{\n{code}\n}} >{}/{n}.out\n",
            b.line,
            outputs.display()
        ));
    }
    s
}

/// Settings a developer's or CI's shell may hold that would change what the
/// README's commands do; the walk-through starts from none.
fn is_configuration(name: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "TESSERA_",
        "DB_",
        "TOTP_",
        "SMTP_",
        "INTROSPECTION_",
        "AUTH_",
    ];
    const NAMES: [&str; 6] = [
        "DATABASE_URL",
        "REDIS_URI",
        "RUST_LOG",
        "TOKENS_WEBHOOK_URL",
        "RESET_TOKEN_TTL",
        "EMAIL_VERIFICATION_TOKEN_TTL",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

fn run_bash(script: &str, dir: &Path, bin_dir: &Path, listen: &str) -> (bool, String) {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).current_dir(dir);
    for (name, _) in std::env::vars() {
        if is_configuration(&name) {
            cmd.env_remove(name);
        }
    }
    // `tessera serve` listens where the README's :8080 was moved to.
    cmd.env("PATH", path).env("TESSERA_LISTEN", listen);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("bash runs");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever the outcome, nothing the README started may outlive the test.
    let _ = Command::new("kill")
        .arg("--")
        .arg(format!("-{}", child.id()))
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let mut log = reader.join().unwrap_or_default();
    if status.is_none() {
        log.push_str(&format!("\n(timed out after {} s)", TIMEOUT.as_secs()));
    }
    (status.is_some_and(|s| s.success()), log)
}

fn compare(blocks: &[Block], outputs: &Path, ports: &[(String, String)]) -> Vec<String> {
    let mut differences = Vec::new();
    for (n, b) in blocks.iter().enumerate() {
        let Some(expected) = &b.expected else {
            continue;
        };
        let expected = with_ports(expected, ports);
        let actual = std::fs::read_to_string(outputs.join(format!("{n}.out"))).unwrap_or_default();
        let (want, got): (Vec<&str>, Vec<&str>) = (
            expected.lines().collect(),
            actual.lines().map(str::trim_end).collect(),
        );
        let same =
            want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| matches(w.trim_end(), g));
        if !same {
            differences.push(format!(
                "README.md line {}: the output differs\n--- expected\n{expected}\n--- actual\n{actual}",
                b.line
            ));
        }
    }
    differences
}

fn the_readme_runs_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 4, "the README has runnable blocks");
    let work = tempfile::tempdir().expect("temp dir");
    let (dir, bin_dir, outputs) = (
        work.path().join("walk"),
        work.path().join("bin"),
        work.path().join("out"),
    );
    for d in [&dir, &bin_dir, &outputs] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tessera"), bin_dir.join("tessera")).unwrap();
    let ports: Vec<(String, String)> = PORTS
        .iter()
        .map(|p| (p.to_string(), free_port().to_string()))
        .collect();
    let listen = format!("127.0.0.1:{}", ports[0].1);
    let (ok, log) = run_bash(&script(&blocks, &ports, &outputs), &dir, &bin_dir, &listen);
    let differences = compare(&blocks, &outputs, &ports);
    if !ok || !differences.is_empty() {
        let server_log = std::fs::read_to_string(dir.join("tessera.log")).unwrap_or_default();
        panic!(
            "the README's walk-through {}\n\n{}\n\n== stderr of the blocks\n{log}\n\n== tessera.log\n{server_log}",
            if ok { "printed something else" } else { "failed" },
            differences.join("\n\n")
        );
    }
}

fn wildcards_stand_for_any_text() {
    assert!(matches("id …", "id 0193-abc"));
    assert!(matches(
        "\"secret\": \"tsr_…\",",
        "\"secret\": \"tsr_abc\","
    ));
    assert!(matches("a…b…c", "a1b2c"));
    assert!(!matches("a…b…c", "a1c2b"));
    assert!(!matches("exact", "exact "));
}

fn ports_are_replaced_only_where_they_stand_alone() {
    let ports = [("8080".to_string(), "41000".to_string())];
    assert_eq!(
        with_ports("localhost:8080/x 18080 80801 (\"h\", 8080)", &ports),
        "localhost:41000/x 18080 80801 (\"h\", 41000)"
    );
}

// The walk-through needs what a newcomer needs; without one of them the test
// is reported as skipped, naming it (a failure when CI is set).
tessera_test_support::tests! {
    sync: #[needs(Command("bash"), Command("curl"), Command("jq"), Command("python3"), Command("openssl"))]
        the_readme_runs_as_written,
        wildcards_stand_for_any_text, ports_are_replaced_only_where_they_stand_alone;
}

fn main() -> std::process::ExitCode {
    tessera_test_support::harness::run(trials())
}
