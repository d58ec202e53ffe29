//! `shopmesh eval` on generated MovieLens-shaped files (the real MovieLens
//! may not be redistributed): planted tastes must beat popularity in both
//! protocols, the JSON carries the documented keys, bad input is named.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

fn eval(dataset: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args(["eval", "--dataset"])
        .arg(dataset)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run shopmesh eval")
}

/// 300 users in three taste groups of 10 items each; every user first rates
/// a few of 5 blockbusters (popular with everyone), then items of their own
/// group, in a per-user order. Deterministic (an LCG), tab-separated like
/// `u.data`.
fn planted_udata() -> String {
    let mut seed: u64 = 42;
    let mut next = |below: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % below
    };
    let mut text = String::new();
    let mut time = 880_000_000u64;
    for user in 1..=300u64 {
        let group = user % 3;
        for _ in 0..3 {
            let blockbuster = 900 + next(5);
            time += 1 + next(100);
            writeln!(text, "{user}\t{blockbuster}\t3\t{time}").unwrap();
        }
        let start = next(10);
        for i in 0..8 {
            let item = 100 * (group + 1) + (start + i) % 10;
            time += 1 + next(100);
            writeln!(text, "{user}\t{item}\t{}\t{time}", 4 + next(2)).unwrap();
        }
    }
    text
}

#[test]
fn planted_tastes_beat_popularity_in_both_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.data");
    std::fs::write(&path, planted_udata()).unwrap();
    for mode in ["offline", "prequential"] {
        let output = eval(dir.path(), &["--mode", mode, "--json"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for key in ["hr10", "ndcg10", "recall10", "seconds"] {
            assert!(report[key].is_number(), "{mode}: {key} in {report}");
        }
        for key in ["hr10", "ndcg10", "recall10"] {
            assert!(
                report["popularity"][key].is_number(),
                "{mode}: popularity.{key}"
            );
        }
        assert_eq!(report["events_scored"].is_number(), mode == "prequential");
        let ours = report["ndcg10"].as_f64().unwrap();
        let popularity = report["popularity"]["ndcg10"].as_f64().unwrap();
        assert!(ours > popularity + 0.1, "{mode}: {report}");
        assert!(report["hr10"].as_f64().unwrap() > 0.5, "{mode}: {report}");
    }
    // The human table names both rows.
    let table = eval(&path, &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("shopmesh") && text.contains("popularity"),
        "{text}"
    );
}

#[test]
fn ratings_csv_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.csv");
    let mut csv = String::from("userId,movieId,rating,timestamp\n");
    for line in planted_udata().lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        // Half stars, as ratings.csv has them.
        let rating = fields[2].parse::<f64>().unwrap() - 0.5;
        writeln!(csv, "{},{},{rating},{}", fields[0], fields[1], fields[3]).unwrap();
    }
    std::fs::write(&path, csv).unwrap();
    let output = eval(&path, &["--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ratings"], 300 * 11);
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = eval(&dir.path().join("nothing.data"), &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    let path = dir.path().join("u.data");
    std::fs::write(&path, "1\t2\t5\t100\n1\ttwo\t5\t101\n").unwrap();
    let bad = eval(&path, &[]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("item"),
        "{stderr}"
    );
    let mode = eval(&path, &["--mode", "online"]);
    assert!(!mode.status.success());
    assert!(String::from_utf8_lossy(&mode.stderr).contains("--mode"));
}
