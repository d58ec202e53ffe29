//! Replays every committed corpus file through its target, on stable and
//! without libFuzzer: the seeds and the crashes kept as regressions stay
//! harmless, and CI runs the harness code the fuzzer runs. Seeds named
//! `ok-*` must be accepted and `bad-*` refused, so the corpus keeps
//! reaching both sides of every check.

use shopmesh_fuzz::{Outcome, TARGETS};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn names_in(dir: &Path, keep: impl Fn(&Path) -> Option<String>) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| keep(&entry.unwrap().path()))
        .collect()
}

#[test]
fn every_target_has_an_entry_point_and_a_corpus() {
    let targets: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    let corpora = names_in(&fuzz_dir().join("corpus"), |path| {
        path.is_dir()
            .then(|| path.file_name().unwrap().to_string_lossy().into_owned())
    });
    assert_eq!(corpora, targets, "fuzz/corpus/ folders vs harness targets");
    let entries = names_in(&fuzz_dir().join("fuzz_targets"), |path| {
        Some(path.file_stem()?.to_string_lossy().into_owned())
    });
    assert_eq!(
        entries, targets,
        "fuzz/fuzz_targets/ files vs harness targets"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for target in &targets {
        let source =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{target}.rs"))).unwrap();
        assert!(
            source.contains(&format!("shopmesh_fuzz::{target}(data)")),
            "fuzz_targets/{target}.rs does not call its harness function"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target}"
        );
    }
}

#[test]
fn every_corpus_file_replays_without_a_finding() {
    let mut findings = Vec::new();
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target.name);
        let files = names_in(&dir, |path| {
            path.is_file()
                .then(|| path.file_name().unwrap().to_string_lossy().into_owned())
        });
        for prefix in ["ok-", "bad-"] {
            assert!(
                files.iter().any(|f| f.starts_with(prefix)),
                "{}: no {prefix}* seed",
                target.name
            );
        }
        for file in files {
            let input = std::fs::read(dir.join(&file)).unwrap();
            let expected = if file.starts_with("ok-") {
                Some(Outcome::Accepted)
            } else if file.starts_with("bad-") {
                Some(Outcome::Refused)
            } else {
                None
            };
            match catch_unwind(AssertUnwindSafe(|| (target.run)(&input))) {
                Ok(outcome) if expected.is_some_and(|e| e != outcome) => {
                    findings.push(format!("{}/{file}: {outcome:?}", target.name));
                }
                Ok(_) => {}
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    findings.push(format!("{}/{file}: panicked: {message}", target.name));
                }
            }
        }
    }
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n"));
}
