//! `shopmesh bench`, run as people run it (the binary, its own nats-server
//! and the four service binaries as processes): `--json --quick` prints one
//! object with every documented key, the figures are consistent (ordered
//! percentiles, positive rates, a ratio that is ours / raw, every process's
//! peak memory), and no process is left afterwards; a Ctrl-C in the middle
//! of a run also leaves nothing behind. No threshold on any speed: this
//! machine is shared and noisy; docs/benchmarks.md has the figures.
//!
//! Needs the service binaries beside `shopmesh`: `cargo build --workspace --bins`.

use shopmesh_shared::testkit::find_nats_server;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Five consecutive free ports (NATS, then user, product, order,
/// analytics), below the kernel's ephemeral range where other tests' port-0
/// binds land, and away from the blocks `up`'s tests take (20000 and up).
fn free_ports() -> u16 {
    let seed = std::process::id();
    for attempt in 0..500u32 {
        let base = 10_000 + 5 * ((seed + attempt * 7_919) % 1_900) as u16;
        if (0..5).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no five consecutive free ports")
}

/// Set on the bench alone: its children inherit it, so it finds every
/// process of one run, wherever it ended up.
const MARK: &str = "SHOPMESH_BENCH_TEST_MARK";

fn marked_processes(mark: &str) -> Vec<String> {
    let needle = format!("{MARK}={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Other users' processes are unreadable: they are not ours.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

fn bench_command(base: u16, mark: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .args(["bench", "--quick"])
        .args(["--nats-port", &base.to_string()])
        .args(["--http-base-port", &(base + 1).to_string()])
        .env("NATS_SERVER_BIN", find_nats_server().unwrap())
        .env("RUST_LOG", "warn")
        .env(MARK, mark)
        // Cheap hashing for the shoppers' sign-up: the production cost is
        // tested in the user service, and sign-up is not measured.
        .env("SHOPMESH_PASSWORD_MEMORY_KIB", "1024");
    command
}

fn assert_nothing_left(mark: &str, base: u16) {
    let left = marked_processes(mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    for port in base..base + 5 {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still held: a process was left behind"
        );
    }
}

fn number(value: &serde_json::Value, path: &str) -> f64 {
    let mut at = value;
    for key in path.split('.') {
        at = at
            .get(key)
            .unwrap_or_else(|| panic!("no key {path} in {value:#}"));
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {at}"))
}

/// `p50 <= p99 <= max`, all above zero, in the object at `path`.
fn assert_percentiles(report: &serde_json::Value, path: &str) {
    let [p50, p99, max] =
        ["p50_ms", "p99_ms", "max_ms"].map(|p| number(report, &format!("{path}.{p}")));
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= max,
        "{path}: p50 {p50}, p99 {p99}, max {max}"
    );
}

#[test]
fn quick_json_report_has_every_key_consistent_figures_and_leaves_no_process() {
    let base = free_ports();
    let mark = uuid::Uuid::new_v4().to_string();
    let output = bench_command(base, &mark)
        .arg("--json")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    // Every documented key (cli/src/commands/bench/mod.rs, docs/benchmarks.md).
    for key in [
        "cores",
        "partitions",
        "catalogue_products",
        "throughput.events",
        "throughput.users",
        "throughput.message_bytes",
        "throughput.ours_events_per_s",
        "throughput.raw_msgs_per_s",
        "throughput.ratio",
        "throughput.target_ratio",
        "latency.probes",
        "latency.probe_rate",
        "latency.background_target_rate",
        "latency.background_rate",
        "latency.timeouts",
        "http.duration_s",
        "http.shoppers",
    ] {
        number(&report, key);
    }
    assert_eq!(report["quick"], true);
    assert!(
        report["nats_server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2."))
    );

    // Throughput: the quick plan's one round, both sides positive, and the
    // ratio is ours / raw.
    let t = &report["throughput"];
    assert_eq!(number(&report, "throughput.events"), 5_000.0);
    let rounds = t["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 1);
    for key in ["ours_events_per_s", "raw_msgs_per_s", "ratio"] {
        assert!(rounds[0][key].as_f64().unwrap() > 0.0, "round {key}");
    }
    assert!(rounds[0]["ours_first"].is_boolean());
    let (ours, raw, ratio) = (
        number(&report, "throughput.ours_events_per_s"),
        number(&report, "throughput.raw_msgs_per_s"),
        number(&report, "throughput.ratio"),
    );
    assert!(ours > 0.0 && raw > 0.0 && ratio > 0.0);
    assert!(
        (ratio - ours / raw).abs() <= 0.01,
        "ratio {ratio} is not ours {ours} / raw {raw}"
    );
    assert!(number(&report, "throughput.message_bytes") > 100.0);

    // Latency probes: every one became visible, under a background rate.
    assert_eq!(number(&report, "latency.probes"), 20.0);
    assert_eq!(number(&report, "latency.timeouts"), 0.0);
    assert!(number(&report, "latency.background_rate") > 0.0);
    assert_percentiles(&report, "latency");

    // HTTP, open loop: the offered rates for the duration, no error.
    let duration = number(&report, "http.duration_s");
    assert!(number(&report, "http.shoppers") >= 1.0);
    for endpoint in ["recommendations", "orders"] {
        let path = format!("http.{endpoint}");
        let rate = number(&report, &format!("{path}.rate"));
        let requests = number(&report, &format!("{path}.requests"));
        assert_eq!(requests, (rate * duration).round(), "{endpoint} requests");
        assert_eq!(
            number(&report, &format!("{path}.errors")),
            0.0,
            "{endpoint}: {}",
            report["http"][endpoint]["error_kinds"]
        );
        assert!(report["http"][endpoint]["error_kinds"].is_object());
        assert_percentiles(&report, &path);
    }

    // Peak memory of every process, and every one of them gone now.
    let memory = report["memory"].as_object().expect("memory by process");
    let mut names: Vec<&str> = memory.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["analytics", "nats-server", "order", "product", "user"]
    );
    for (name, figures) in memory {
        assert!(
            figures["peak_rss_kib"].as_u64().unwrap() > 0,
            "{name}: {figures}"
        );
        let pid = figures["pid"].as_u64().unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} (pid {pid}) survived the bench"
        );
    }
    assert_nothing_left(&mark, base);
}

#[test]
fn ctrl_c_in_the_middle_stops_every_process() {
    let base = free_ports();
    let mark = uuid::Uuid::new_v4().to_string();
    let mut bench = bench_command(base, &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = bench.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Once the platform runs (the first measurement has begun).
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no throughput round started; saw {seen:#?}"));
        let started = line.contains("throughput round");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        !marked_processes(&mark).is_empty(),
        "the platform should be running"
    );
    Command::new("kill")
        .args(["-INT", &bench.id().to_string()])
        .status()
        .unwrap();
    let status = bench.wait().unwrap();
    assert!(!status.success(), "an interrupted bench reports failure");
    // The rest of its stderr, until the pipe closes.
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "the reason is printed: {rest:#?}"
    );
    assert_nothing_left(&mark, base);
}
