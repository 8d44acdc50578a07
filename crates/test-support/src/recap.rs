//! The skips of a whole `cargo test` run, not just of one binary: each harness
//! binary adds its own to a file named after the cargo process that started
//! it, and prints the sum so far. The last harness binary of `cargo test
//! --workspace` (tessera-upstream's) so closes the run's tests with every
//! skip, whichever binary it came from; only rustdoc's doc-test blocks follow.
//!
//! Linux only (`/proc` names the parent and its start time, which tells one
//! cargo run from a later one that reuses the process id); elsewhere, and
//! when the parent is not cargo, each binary reports its own skips only.

use std::{collections::BTreeMap, fs, io::Write, path::PathBuf};

/// The parent's process id and start time (in clock ticks since boot), when
/// the parent is cargo.
#[cfg(not(target_os = "linux"))]
fn cargo_parent() -> Option<(u32, String)> {
    None
}

#[cfg(target_os = "linux")]
fn cargo_parent() -> Option<(u32, String)> {
    let ppid = std::os::unix::process::parent_id();
    let stat = fs::read_to_string(format!("/proc/{ppid}/stat")).ok()?;
    // "pid (comm) state ppid …": the command may hold spaces; fields after
    // the last ')' start at the third, and the start time is the 22nd.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    let start = rest.split_whitespace().nth(19)?.to_string();
    (comm == "cargo").then_some((ppid, start))
}

fn dir() -> PathBuf {
    std::env::temp_dir().join("tessera-test-skips")
}

/// Removes the files of cargo runs that have ended.
fn forget_ended_runs() {
    let Ok(entries) = fs::read_dir(dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = name.split_once('-').is_some_and(|(pid, start)| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().nth(19)? == start))
                .unwrap_or(false)
        });
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Adds this binary's skips (reason → count) to the run's file and returns
/// the run's totals so far; `None` outside a cargo run or when the file
/// cannot be used (the binary's own report stands alone then).
pub(crate) fn add(skipped: &BTreeMap<String, usize>) -> Option<BTreeMap<String, usize>> {
    let (pid, start) = cargo_parent()?;
    forget_ended_runs();
    fs::create_dir_all(dir()).ok()?;
    let path = dir().join(format!("{pid}-{start}"));
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    for (reason, n) in skipped {
        writeln!(file, "{n}\t{reason}").ok()?;
    }
    let mut totals = BTreeMap::new();
    for line in fs::read_to_string(&path).ok()?.lines() {
        if let Some((n, reason)) = line.split_once('\t') {
            *totals.entry(reason.to_string()).or_default() += n.parse::<usize>().ok()?;
        }
    }
    Some(totals)
}
