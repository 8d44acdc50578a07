//! The integration tests' harness (libtest-mimic): libtest cannot skip a test
//! at run time, so a test that needs a missing service passed silently. Here
//! each binary probes what its tests need once, marks the tests that cannot
//! run as ignored, with the requirement as their kind, and ends its output
//! with how many were skipped and why. Under CI they fail instead.
//!
//! A binary sets `harness = false` and its `main` returns
//! `run(trials)`, the trials built by [`crate::tests!`] or
//! [`crate::backend_tests!`] in each module, or by [`Test`] directly.

use std::{collections::BTreeMap, future::Future, process::ExitCode};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::probe::{self, Missing};

/// Something a test needs besides the binary itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// A PostgreSQL server (`TESSERA_TEST_POSTGRES_URL` or the local default).
    Postgres,
    /// A Redis server (`TESSERA_TEST_REDIS_URL` or the local default).
    Redis,
    /// A Redis at a plain `redis://host:port` URL, for a test that proxies it.
    PlainRedis,
    /// An executable on `PATH`.
    Command(&'static str),
    /// A module Python's `python3` can import.
    PythonModule(&'static str),
}

impl Need {
    /// The short name shown as the test's kind (`[postgres] on_postgres::x`).
    fn label(self) -> String {
        match self {
            Need::Postgres => "postgres".into(),
            Need::Redis | Need::PlainRedis => "redis".into(),
            Need::Command(c) => c.into(),
            Need::PythonModule(m) => m.into(),
        }
    }

    fn probe(self, rt: &tokio::runtime::Runtime) -> Result<(), Missing> {
        match self {
            Need::Postgres => rt.block_on(probe::postgres()).map(drop),
            Need::Redis => rt.block_on(probe::redis()).map(drop),
            Need::PlainRedis => rt.block_on(probe::plain_redis()).map(drop),
            Need::Command(c) => probe::command(c).map(drop),
            Need::PythonModule(m) => probe::python_module(m).map(drop),
        }
    }
}

/// The runtime a test's async body runs on, one per test, as `#[tokio::test]`
/// would build it.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// `#[tokio::test]`.
    CurrentThread,
    /// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
    MultiThread,
}

fn runtime(flavor: Flavor) -> tokio::runtime::Runtime {
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    builder.enable_all().build().expect("test runtime")
}

type Body = Box<dyn FnOnce() + Send>;

/// One test: its name, what it needs, and its body.
pub struct Test {
    name: String,
    needs: Vec<Need>,
    body: Body,
}

impl Test {
    /// A plain `#[test]`.
    pub fn sync(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Self {
        Self {
            name: name.into(),
            needs: Vec::new(),
            body: Box::new(body),
        }
    }

    /// An async test on a fresh runtime of `flavor`.
    pub fn on<F, Fut>(flavor: Flavor, name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        Self::sync(name, move || runtime(flavor).block_on(body()))
    }

    /// Adds requirements: the test runs only when they are all there.
    pub fn needs(mut self, needs: impl IntoIterator<Item = Need>) -> Self {
        self.needs.extend(needs);
        self.needs.sort();
        self.needs.dedup();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The test name for `name` in the module `module_path` (what
/// `module_path!()` gives): without the crate, as libtest names tests.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// `CI` is set, and not to `false` or `0`: a missing requirement fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Probes each requirement the trials name, once.
fn probe_all(tests: &[Test]) -> BTreeMap<Need, Result<(), Missing>> {
    let rt = runtime(Flavor::CurrentThread);
    let mut found = BTreeMap::new();
    for need in tests.iter().flat_map(|t| t.needs.iter().copied()) {
        found.entry(need).or_insert_with(|| need.probe(&rt));
    }
    found
}

/// Runs the tests with the command line's arguments (filters, `--ignored`,
/// `--list`, `--test-threads`, …) and ends with the skipped totals.
pub fn run(tests: impl IntoIterator<Item = Test>) -> ExitCode {
    let tests: Vec<Test> = tests.into_iter().collect();
    let args = Arguments::from_args();
    let found = probe_all(&tests);
    let ci = in_ci();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut failing: BTreeMap<String, usize> = BTreeMap::new();
    let mut trials = Vec::with_capacity(tests.len());
    for test in tests {
        let missing: Vec<&Missing> = test
            .needs
            .iter()
            .filter_map(|n| found[n].as_ref().err())
            .collect();
        let kind = test
            .needs
            .iter()
            .map(|n| n.label())
            .collect::<Vec<_>>()
            .join(",");
        let must_fail = ci || missing.iter().any(|m| m.explicit);
        let trial = if missing.is_empty() {
            let body = test.body;
            Trial::test(test.name, move || {
                body();
                Ok(())
            })
        } else {
            let why = missing
                .iter()
                .map(|m| m.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            // Run anyway (`--ignored`), a test without its service fails
            // with the reason rather than with a connection error.
            let reason = why.clone();
            Trial::test(test.name, move || Err(Failed::from(reason))).with_ignored_flag(!must_fail)
        }
        .with_kind(kind);
        if !missing.is_empty() && !args.is_filtered_out(&trial) {
            let tally = if must_fail {
                &mut failing
            } else {
                &mut skipped
            };
            for m in &missing {
                *tally.entry(m.reason.clone()).or_default() += 1;
            }
        }
        trials.push(trial);
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        report(&args, ci, &skipped, &failing);
    }
    conclusion.exit_code()
}

/// The closing lines: per missing requirement, how many tests it kept from
/// running and why; then the same over the whole cargo run so far, when
/// earlier binaries skipped tests too.
fn report(
    args: &Arguments,
    ci: bool,
    skipped: &BTreeMap<String, usize>,
    failing: &BTreeMap<String, usize>,
) {
    let ran_ignored = args.ignored || args.include_ignored;
    for (reason, n) in failing {
        let why = if ci {
            "CI is set"
        } else {
            "its variable is set"
        };
        println!(
            "failed {n} {}: {reason} ({why}, so this is a failure, not a skip)",
            tests(*n)
        );
    }
    if ran_ignored {
        for (reason, n) in skipped {
            println!("failed {n} {} run with --ignored: {reason}", tests(*n));
        }
        return;
    }
    for (reason, n) in skipped {
        println!("skipped {n} {}: {reason}", tests(*n));
    }
    // The run's earlier binaries too, so its last lines hold every skip.
    match crate::recap::add(skipped) {
        Some(run) if run != *skipped => {
            for (reason, n) in run {
                println!(
                    "so far in this cargo run, skipped {n} {}: {reason}",
                    tests(n)
                );
            }
        }
        _ => {}
    }
}

fn tests(n: usize) -> &'static str {
    if n == 1 {
        "test"
    } else {
        "tests"
    }
}
