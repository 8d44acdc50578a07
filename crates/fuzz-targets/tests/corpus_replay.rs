//! Replays every committed fuzz input on the stable toolchain: the corpus
//! under `fuzz/corpus/<target>/` and the regressions (inputs that once
//! crashed a target) under `fuzz/regressions/<target>/`. A target whose
//! corpus is missing or empty fails, so a rename cannot silently drop it.

use std::{
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use tessera_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly in `dir`, sorted; empty if `dir` does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file, collecting failures rather than stopping at
/// the first, so one run names every input that fails.
fn replay(target: fn(&[u8]), files: &[PathBuf], failures: &mut Vec<String>) {
    for file in files {
        let data = fs::read(file).expect("a readable input");
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            failures.push(file.display().to_string());
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_it_passes() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name}/ is missing or empty: every target needs a committed corpus"
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        replay(*target, &corpus, &mut failures);
        replay(*target, &regressions, &mut failures);
        replayed += corpus.len() + regressions.len();
    }
    assert!(
        failures.is_empty(),
        "inputs that fail their target:\n{}",
        failures.join("\n")
    );
    eprintln!(
        "replayed {replayed} fuzz inputs over {} targets",
        TARGETS.len()
    );
}

#[test]
fn every_target_has_a_fuzz_binary() {
    // The list in the library and the binaries cargo-fuzz builds must agree.
    for (name, _) in TARGETS {
        let path = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let source =
            fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing", path.display()));
        assert!(
            source.contains(&format!("tessera_fuzz_targets::{name}(data)")),
            "{} does not call its target",
            path.display()
        );
    }
    let on_disk = inputs(&fuzz_dir().join("fuzz_targets")).len();
    assert_eq!(
        on_disk,
        TARGETS.len(),
        "a fuzz binary without a TARGETS entry"
    );
}

#[test]
fn regression_directories_name_known_targets() {
    for dir in fs::read_dir(fuzz_dir().join("regressions"))
        .into_iter()
        .flatten()
    {
        let name = dir.expect("an entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name}/ is not a target"
        );
    }
}
