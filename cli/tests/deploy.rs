//! Keeps `deploy/` honest: the compose file, the Dockerfile, the Prometheus
//! and Grafana files and the Kubernetes manifests are parsed and checked
//! against the services' real settings (`Settings::variables()`,
//! `Settings::from_env`, the default port constants) and the metric names the
//! code exports; `deploy/nats/nats.conf` is started with a real nats-server
//! and each user is checked to do its job and nothing outside it.
//!
//! No Docker or Kubernetes is needed. Failures name the file, the service and
//! the variable (or subject) at fault.

use futures::StreamExt;
use serde_yaml::Value;
use shopmesh_shared::nats::{connect, jetstream_context, provision_streams};
use shopmesh_shared::settings::{BackboneSettings, Env, SettingsError};
use shopmesh_shared::telemetry::TelemetrySettings;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// ---------------------------------------------------------------------------
// What the code says about each service
// ---------------------------------------------------------------------------

/// One shopmesh service as its crate defines it.
struct Service {
    name: &'static str,
    port: u16,
    /// Everything the binary reads: its `Settings::variables()` (which
    /// include the telemetry variables its `main` reads).
    variables: BTreeSet<&'static str>,
    /// The binary's own start-up validation.
    validate: fn(&Env) -> Result<(), SettingsError>,
}

fn validate_telemetry(env: &Env, name: &str) -> Result<(), SettingsError> {
    TelemetrySettings::from_env(env, name, "0.0.0").map(drop)
}

fn services() -> Vec<Service> {
    vec![
        Service {
            name: "user",
            port: shopmesh_user::settings::DEFAULT_PORT,
            variables: shopmesh_user::settings::Settings::variables()
                .into_iter()
                .collect(),
            validate: |env| {
                shopmesh_user::settings::Settings::from_env(env)?;
                validate_telemetry(env, "user")
            },
        },
        Service {
            name: "product",
            port: shopmesh_product::settings::DEFAULT_PORT,
            variables: shopmesh_product::settings::Settings::variables()
                .into_iter()
                .collect(),
            validate: |env| {
                shopmesh_product::settings::Settings::from_env(env)?;
                validate_telemetry(env, "product")
            },
        },
        Service {
            name: "order",
            port: shopmesh_order::settings::DEFAULT_PORT,
            variables: shopmesh_order::settings::Settings::variables()
                .into_iter()
                .collect(),
            validate: |env| {
                shopmesh_order::settings::Settings::from_env(env)?;
                validate_telemetry(env, "order")
            },
        },
        Service {
            name: "analytics",
            port: shopmesh_analytics::settings::DEFAULT_PORT,
            variables: shopmesh_analytics::settings::Settings::variables()
                .into_iter()
                .collect(),
            validate: |env| {
                shopmesh_analytics::settings::Settings::from_env(env)?;
                validate_telemetry(env, "analytics")
            },
        },
    ]
}

/// What a `shopmesh` CLI container may be given: telemetry, the backbone
/// (provision, tail) and the admin token (seed).
fn cli_variables() -> BTreeSet<&'static str> {
    let mut names: BTreeSet<&str> = TelemetrySettings::VARIABLES.iter().copied().collect();
    names.extend(BackboneSettings::VARIABLES.iter().copied());
    names.insert("SHOPMESH_ADMIN_TOKEN");
    names
}

/// The variables a service cannot start without: start from an empty
/// environment and add each variable its validation names until it starts.
fn required_variables(service: &Service) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut required = Vec::new();
    for _ in 0..16 {
        match (service.validate)(&Env::from_pairs(env.clone())) {
            Ok(()) => return required,
            Err(error) => {
                assert!(
                    !required.contains(&error.variable),
                    "{}: a valid-looking {} is still refused: {error}",
                    service.name,
                    error.variable
                );
                required.push(error.variable.clone());
                env.push((error.variable, "x".repeat(48)));
            }
        }
    }
    panic!("{}: more than 16 required variables?", service.name)
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ sits in the workspace")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("{relative}: cannot read: {e}"))
}

fn yaml_docs(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{relative}: invalid YAML: {e}"))
        })
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

fn yaml(relative: &str) -> Value {
    let mut docs = yaml_docs(relative);
    assert_eq!(docs.len(), 1, "{relative}: expected one YAML document");
    docs.remove(0)
}

fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// Resolves compose's `${NAME:-default}` to its default, as `docker compose`
/// does with NAME unset; a bare `${NAME}` would be empty there, so it fails.
fn interpolate(file: &str, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("{file}: unclosed ${{ in {text:?}"))
            + start;
        let inner = &rest[start + 2..end];
        let (name, default) = inner.split_once(":-").unwrap_or_else(|| {
            panic!("{file}: ${{{inner}}} has no default, so an unset variable leaves it empty")
        });
        assert!(!name.is_empty(), "{file}: empty variable name in {text:?}");
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Memory sizes as compose writes them (`96m`, `1g`, `512k`, bytes).
fn memory_bytes(file: &str, service: &str, text: &str) -> u64 {
    let text = text.trim().to_ascii_lowercase();
    let text = text.trim_end_matches('b');
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("{file}: service {service}: memory limit {text:?} unreadable"));
    let factor: u64 = match unit {
        "" => 1,
        "k" | "ki" => 1 << 10,
        "m" | "mi" => 1 << 20,
        "g" | "gi" => 1 << 30,
        other => panic!("{file}: service {service}: unknown memory unit {other:?}"),
    };
    (number * factor as f64) as u64
}

// ---------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------

const COMPOSE: &str = "deploy/docker-compose.yml";
/// Containers that run once and exit: they have no service to probe.
const ONE_SHOT: &[&str] = &["seed", "load"];

fn compose_services() -> BTreeMap<String, Value> {
    let compose = yaml(COMPOSE);
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{COMPOSE}: no services"));
    services
        .iter()
        .map(|(k, v)| (str_of(k), v.clone()))
        .collect()
}

/// A compose service's environment (mapping or `NAME=value` list), with
/// `${..:-default}` resolved.
fn compose_env(name: &str, service: &Value) -> Vec<(String, String)> {
    let file = format!("{COMPOSE}: service {name}");
    match service.get("environment") {
        None => Vec::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| (str_of(k), interpolate(&file, &str_of(v))))
            .collect(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|item| {
                let item = str_of(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), interpolate(&file, v))
            })
            .collect(),
        Some(other) => panic!("{file}: environment is {other:?}"),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(str_of).collect(),
        Some(other) => vec![str_of(other)],
    }
}

#[test]
fn compose_gives_each_service_only_variables_it_reads() {
    let compose = compose_services();
    for service in services() {
        let definition = compose
            .get(service.name)
            .unwrap_or_else(|| panic!("{COMPOSE}: no service {}", service.name));
        for (name, _) in compose_env(service.name, definition) {
            assert!(
                service.variables.contains(name.as_str()),
                "{COMPOSE}: service {} sets {name}, which shopmesh-{} never reads \
                 (not in its Settings::variables())",
                service.name,
                service.name
            );
        }
    }
    let cli = cli_variables();
    for one_shot in ONE_SHOT {
        let definition = compose
            .get(*one_shot)
            .unwrap_or_else(|| panic!("{COMPOSE}: no service {one_shot}"));
        for (name, _) in compose_env(one_shot, definition) {
            assert!(
                cli.contains(name.as_str()),
                "{COMPOSE}: service {one_shot} (the shopmesh CLI) sets {name}, which the CLI never reads"
            );
        }
    }
}

#[test]
fn compose_sets_every_required_variable_with_a_valid_value() {
    let compose = compose_services();
    for service in services() {
        let env = compose_env(service.name, &compose[service.name]);
        let names: BTreeSet<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        for required in required_variables(&service) {
            assert!(
                names.contains(required.as_str()),
                "{COMPOSE}: service {} does not set {required}, which shopmesh-{} requires",
                service.name,
                service.name
            );
        }
        if let Err(error) = (service.validate)(&Env::from_pairs(env.clone())) {
            panic!(
                "{COMPOSE}: service {} would refuse to start: {} = {:?}: {error}",
                service.name, error.variable, error.value
            );
        }
        // Inside a container the default 127.0.0.1 would be unreachable.
        let host = env.iter().find(|(k, _)| k == "SHOPMESH_HTTP_HOST");
        assert_eq!(
            host.map(|(_, v)| v.as_str()),
            Some("0.0.0.0"),
            "{COMPOSE}: service {} must set SHOPMESH_HTTP_HOST=0.0.0.0",
            service.name
        );
        for (name, value) in [
            ("NATS_USER", service.name.to_owned()),
            ("NATS_URL", "nats://nats:4222".to_owned()),
            ("OTEL_SERVICE_NAME", service.name.to_owned()),
        ] {
            assert_eq!(
                env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                Some(value),
                "{COMPOSE}: service {}: {name}",
                service.name
            );
        }
    }
}

/// Every compose container that reaches NATS (it sets `NATS_URL`, or runs a
/// `shopmesh` command that connects) logs in as a user of nats.conf, with a
/// password taken from the same variable the nats container gives that user:
/// setting it (in the environment or deploy/.env) changes both.
#[test]
fn every_compose_nats_client_logs_in_as_a_nats_conf_user() {
    let compose = compose_services();
    let conf = nats_conf_users();
    let raw_env = |name: &str| -> BTreeMap<String, String> {
        match compose[name].get("environment") {
            Some(Value::Mapping(map)) => map.iter().map(|(k, v)| (str_of(k), str_of(v))).collect(),
            None => BTreeMap::new(),
            Some(other) => panic!("{COMPOSE}: service {name}: environment is {other:?}"),
        }
    };
    let server_raw = raw_env("nats");
    let server: BTreeMap<String, String> =
        compose_env("nats", &compose["nats"]).into_iter().collect();
    let mut clients = 0;
    for (name, definition) in &compose {
        if name == "nats" {
            continue;
        }
        let command = strings(definition.get("command"));
        let connects = ["provision", "tail"].contains(&command.first().map_or("", |c| c.as_str()));
        let env: BTreeMap<String, String> = compose_env(name, definition).into_iter().collect();
        if !connects && !env.contains_key("NATS_URL") {
            continue;
        }
        clients += 1;
        assert_eq!(
            env.get("NATS_URL").map(String::as_str),
            Some("nats://nats:4222"),
            "{COMPOSE}: service {name}: NATS_URL"
        );
        let user = env
            .get("NATS_USER")
            .unwrap_or_else(|| panic!("{COMPOSE}: service {name} reaches NATS without NATS_USER"));
        let (variable, _, _) = conf.get(user).unwrap_or_else(|| {
            panic!(
                "{COMPOSE}: service {name}: NATS_USER {user} is not a user of deploy/nats/nats.conf"
            )
        });
        let raw = raw_env(name)
            .get("NATS_PASSWORD")
            .cloned()
            .unwrap_or_default();
        assert!(
            raw.starts_with(&format!("${{{variable}:-")) || raw == format!("${{{variable}}}"),
            "{COMPOSE}: service {name}: NATS_PASSWORD must come from ${variable} \
             (the nats container's password of {user}), not {raw:?}"
        );
        assert!(
            server_raw
                .get(variable.as_str())
                .is_some_and(|v| v.starts_with(&format!("${{{variable}"))),
            "{COMPOSE}: the nats container does not take {variable} from the environment"
        );
        assert_eq!(
            env.get("NATS_PASSWORD"),
            server.get(variable.as_str()),
            "{COMPOSE}: service {name}: NATS_PASSWORD's default differs from the nats container's {variable}"
        );
    }
    assert_eq!(clients, 4, "{COMPOSE}: the four services reach NATS");
    // The nats container knows every user's password.
    for (user, (variable, _, _)) in &conf {
        assert!(
            server.get(variable.as_str()).is_some_and(|v| !v.is_empty()),
            "{COMPOSE}: the nats container has no {variable} (password of {user})"
        );
    }
}

#[test]
fn compose_ports_and_probes_match_the_default_ports() {
    let compose = compose_services();
    for service in services() {
        let definition = &compose[service.name];
        let env = compose_env(service.name, definition);
        if let Some((_, port)) = env.iter().find(|(k, _)| k == "SHOPMESH_HTTP_PORT") {
            assert_eq!(
                port,
                &service.port.to_string(),
                "{COMPOSE}: service {}: SHOPMESH_HTTP_PORT differs from DEFAULT_PORT {}",
                service.name,
                service.port
            );
        }
        let published = strings(definition.get("ports"));
        let expected = format!("{0}:{0}", service.port);
        assert!(
            published.contains(&expected),
            "{COMPOSE}: service {} publishes {published:?}, expected {expected}",
            service.name
        );
        let probe = strings(definition.get("healthcheck").and_then(|h| h.get("test"))).join(" ");
        assert!(
            probe.contains(&format!("127.0.0.1:{}/readyz", service.port)),
            "{COMPOSE}: service {}: healthcheck {probe:?} does not probe /readyz on port {}",
            service.name,
            service.port
        );
    }
}

/// `FROM <image> AS <stage>` stages of the Dockerfile, with their lines.
fn dockerfile_stages() -> BTreeMap<String, Vec<String>> {
    let text = read("deploy/Dockerfile");
    let mut stages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
        {
            let name = match words.as_slice() {
                [_, _, as_, name] if as_.eq_ignore_ascii_case("AS") => name.to_string(),
                _ => panic!("deploy/Dockerfile: stage without a name: {line}"),
            };
            stages.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if let Some(stage) = &current {
            stages.get_mut(stage).unwrap().push(line.to_owned());
        }
    }
    stages
}

#[test]
fn compose_builds_every_shopmesh_image_from_the_dockerfile_stages() {
    let stages = dockerfile_stages();
    let compose = compose_services();
    for (name, definition) in &compose {
        let image = definition.get("image").map(str_of).unwrap_or_default();
        let Some(build) = definition.get("build") else {
            assert!(
                !image.starts_with("shopmesh/"),
                "{COMPOSE}: service {name} uses {image} but does not build it"
            );
            continue;
        };
        let context = build.get("context").map(str_of).unwrap_or_default();
        let dockerfile = build.get("dockerfile").map(str_of).unwrap_or_default();
        let resolved = root().join("deploy").join(&context).join(&dockerfile);
        assert_eq!(
            resolved.canonicalize().ok(),
            root().join("deploy/Dockerfile").canonicalize().ok(),
            "{COMPOSE}: service {name} builds {context}/{dockerfile}, not deploy/Dockerfile \
             with the repository root as context"
        );
        let target = build
            .get("target")
            .map(str_of)
            .unwrap_or_else(|| panic!("{COMPOSE}: service {name} has no build.target"));
        assert!(
            stages.contains_key(&target),
            "{COMPOSE}: service {name} builds target {target}, which is no `FROM .. AS {target}` \
             stage of deploy/Dockerfile (stages: {:?})",
            stages.keys()
        );
    }
    for service in services() {
        let build = compose[service.name].get("build");
        let target = build.and_then(|b| b.get("target")).map(str_of);
        assert_eq!(
            target.as_deref(),
            Some(service.name),
            "{COMPOSE}: service {} must be built from the Dockerfile target {}",
            service.name,
            service.name
        );
        let stage = &stages[service.name];
        let binary = format!("shopmesh-{}", service.name);
        let has = |prefix: &str, needle: &str| {
            stage
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle))
        };
        assert!(
            has("ENTRYPOINT", &format!("\"{binary}\"")),
            "deploy/Dockerfile: stage {}: ENTRYPOINT is not {binary}",
            service.name
        );
        assert!(
            has("EXPOSE", &service.port.to_string()),
            "deploy/Dockerfile: stage {}: does not EXPOSE {}",
            service.name,
            service.port
        );
    }
    assert!(
        stages["cli"]
            .iter()
            .any(|l| l == "ENTRYPOINT [\"shopmesh\"]"),
        "deploy/Dockerfile: stage cli: ENTRYPOINT is not shopmesh"
    );
    // Every runtime stage runs as a non-root user (set in the shared base).
    assert!(
        stages["runtime"]
            .iter()
            .any(|l| l.starts_with("USER ") && !l.contains("root") && !l.starts_with("USER 0")),
        "deploy/Dockerfile: stage runtime sets no non-root USER"
    );
    for stage in ["user", "product", "order", "analytics", "cli"] {
        let from = read("deploy/Dockerfile")
            .lines()
            .find(|l| l.trim_end().ends_with(&format!(" AS {stage}")))
            .map(str::to_owned)
            .unwrap();
        assert!(
            from.starts_with("FROM runtime "),
            "deploy/Dockerfile: stage {stage} must build on the non-root runtime stage: {from}"
        );
    }
}

/// Files under deploy/ that the CLI embeds (`include_str!`): the Docker
/// build context, which leaves deploy/ out, must let each of them in.
#[test]
fn the_docker_build_context_holds_what_the_cli_embeds() {
    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&root().join("cli/src"), &mut files);
    let ignore = read("deploy/Dockerfile.dockerignore");
    let mut embedded = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for piece in text.split("include_str!(\"").skip(1) {
            let relative = piece.split('"').next().unwrap();
            let target = file
                .parent()
                .unwrap()
                .join(relative)
                .canonicalize()
                .unwrap();
            let Ok(inside) = target.strip_prefix(root().canonicalize().unwrap()) else {
                continue;
            };
            let inside = inside.to_string_lossy().into_owned();
            if inside.starts_with("deploy/") {
                embedded += 1;
                assert!(
                    ignore.lines().any(|l| l.trim() == format!("!{inside}")),
                    "deploy/Dockerfile.dockerignore leaves out {inside}, which {} embeds: add `!{inside}`",
                    file.display()
                );
            }
        }
    }
    assert!(embedded > 0, "cli/src embeds deploy/nats/nats.conf");
}

#[test]
fn compose_one_shots_use_flags_the_real_cli_accepts() {
    let compose = compose_services();
    for one_shot in ONE_SHOT {
        let command = strings(compose[*one_shot].get("command"));
        let subcommand = command
            .first()
            .unwrap_or_else(|| panic!("{COMPOSE}: service {one_shot} has no command"));
        let help = Command::new(env!("CARGO_BIN_EXE_shopmesh"))
            .args([subcommand, "--help"])
            .output()
            .expect("run shopmesh");
        assert!(
            help.status.success(),
            "{COMPOSE}: service {one_shot}: `shopmesh {subcommand}` is not a command: {}",
            String::from_utf8_lossy(&help.stderr)
        );
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        for argument in command.iter().filter(|a| a.starts_with("--")) {
            let flag = argument.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{COMPOSE}: service {one_shot} passes {flag}, which `shopmesh {subcommand}` does not take"
            );
        }
    }
}

#[test]
fn every_compose_container_has_a_memory_limit_and_all_fit_in_one_gib() {
    let mut total = 0;
    for (name, definition) in compose_services() {
        let limit = definition.get("mem_limit").map(str_of).or_else(|| {
            definition
                .get("deploy")
                .and_then(|d| d.get("resources"))
                .and_then(|r| r.get("limits"))
                .and_then(|l| l.get("memory"))
                .map(str_of)
        });
        let limit =
            limit.unwrap_or_else(|| panic!("{COMPOSE}: service {name} has no memory limit"));
        total += memory_bytes(COMPOSE, &name, &limit);
    }
    assert!(
        total <= 1 << 30,
        "{COMPOSE}: memory limits sum to {} MiB, over the 1024 MiB budget",
        total >> 20
    );
}

#[test]
fn compose_healthchecks_gate_every_dependency() {
    let compose = compose_services();
    for (name, definition) in &compose {
        let has_check = definition
            .get("healthcheck")
            .and_then(|h| h.get("test"))
            .is_some();
        assert!(
            has_check || ONE_SHOT.contains(&name.as_str()),
            "{COMPOSE}: service {name} has no healthcheck"
        );
        let Some(depends) = definition.get("depends_on") else {
            continue;
        };
        let depends = depends.as_mapping().unwrap_or_else(|| {
            panic!("{COMPOSE}: service {name}: depends_on must name conditions")
        });
        for (dependency, spec) in depends {
            let dependency = str_of(dependency);
            let condition = spec.get("condition").map(str_of).unwrap_or_default();
            let expected = if ONE_SHOT.contains(&dependency.as_str()) {
                "service_completed_successfully"
            } else {
                "service_healthy"
            };
            assert_eq!(
                condition, expected,
                "{COMPOSE}: service {name} depends on {dependency} without condition {expected}"
            );
            assert!(
                compose.contains_key(&dependency),
                "{COMPOSE}: service {name} depends on unknown service {dependency}"
            );
        }
    }
    for service in ["user", "product", "order", "analytics"] {
        let depends = compose[service].get("depends_on").unwrap();
        assert!(
            depends.get("nats").is_some(),
            "{COMPOSE}: service {service} does not wait for nats"
        );
    }
}

#[test]
fn prometheus_scrapes_exactly_the_four_services() {
    let file = "deploy/prometheus/prometheus.yml";
    let config = yaml(file);
    let mut targets = BTreeSet::new();
    for job in config["scrape_configs"].as_sequence().unwrap() {
        let path = job.get("metrics_path").map(str_of);
        assert_eq!(path.as_deref(), Some("/metrics"), "{file}: metrics_path");
        for group in job["static_configs"].as_sequence().unwrap() {
            targets.extend(strings(group.get("targets")));
        }
    }
    let compose = compose_services();
    let expected: BTreeSet<String> = services()
        .iter()
        .inspect(|s| assert!(compose.contains_key(s.name), "{COMPOSE}: no {}", s.name))
        .map(|s| format!("{}:{}", s.name, s.port))
        .collect();
    assert_eq!(targets, expected, "{file}: scrape targets");
}

/// Every Prometheus metric name the code registers (string literals that
/// start with `shopmesh_` in shared/ and the services).
fn exported_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut dirs = vec![root().join("shared/src"), root().join("services")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split('"').skip(1).step_by(2) {
                    if piece.starts_with("shopmesh_")
                        && piece.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    {
                        names.insert(piece.to_owned());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_the_code_exports() {
    let file = "deploy/grafana/dashboards/shopmesh.json";
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: invalid JSON: {e}"));
    let exported = exported_metric_names();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap_or_default();
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty()),
            "{file}: panel {title:?} has no queries"
        );
        for target in targets.unwrap() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let mut rest = expr;
            while let Some(start) = rest.find("shopmesh_") {
                let tail = &rest[start..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let metric = &tail[..end];
                // Histograms are exported as _bucket, _sum and _count series.
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| metric.strip_suffix(s).filter(|b| exported.contains(*b)))
                    .unwrap_or(metric);
                assert!(
                    exported.contains(base),
                    "{file}: panel {title:?} queries {metric}, which no code exports \
                     (exported: {exported:?})"
                );
                used.insert(base.to_owned());
                rest = &tail[end..];
            }
        }
    }
    for needed in [
        "shopmesh_events_published_total",
        "shopmesh_consumer_messages_total",
        "shopmesh_consumer_lag",
        "shopmesh_http_request_duration_seconds",
        "shopmesh_http_requests_total",
        "shopmesh_outbox_backlog",
        "shopmesh_pending_releases",
        "shopmesh_consumer_restarts_total",
        "shopmesh_cache_lookups_total",
        "shopmesh_db_write_wait_seconds",
    ] {
        assert!(used.contains(needed), "{file}: no panel shows {needed}");
    }
    let datasources = yaml("deploy/grafana/provisioning/datasources/shopmesh.yml");
    let kinds: BTreeSet<String> = datasources["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| str_of(&d["type"]))
        .collect();
    assert!(
        kinds.contains("prometheus") && kinds.contains("jaeger"),
        "deploy/grafana/provisioning/datasources/shopmesh.yml: datasources {kinds:?}"
    );
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

/// Every manifest listed by the kustomization, parsed.
fn k8s_documents() -> Vec<(String, Value)> {
    let kustomization = yaml("deploy/k8s/kustomization.yaml");
    let mut docs = Vec::new();
    for resource in strings(kustomization.get("resources")) {
        let file = format!("deploy/k8s/{resource}");
        for doc in yaml_docs(&file) {
            for field in ["apiVersion", "kind", "metadata"] {
                assert!(
                    doc.get(field).is_some(),
                    "{file}: a document has no {field}"
                );
            }
            docs.push((file.clone(), doc));
        }
    }
    docs
}

fn find_doc<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a (String, Value) {
    docs.iter()
        .find(|(_, d)| str_of(&d["kind"]) == kind && str_of(&d["metadata"]["name"]) == name)
        .unwrap_or_else(|| panic!("deploy/k8s: no {kind} {name}"))
}

#[test]
fn every_k8s_file_parses_and_is_listed() {
    let docs = k8s_documents();
    assert!(!docs.is_empty());
    let listed: BTreeSet<String> = strings(yaml("deploy/k8s/kustomization.yaml").get("resources"))
        .into_iter()
        .collect();
    for entry in std::fs::read_dir(root().join("deploy/k8s")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "kustomization.yaml" || name == "nats-values.yaml" {
            continue;
        }
        assert!(
            listed.contains(&name),
            "deploy/k8s/{name} is not listed in deploy/k8s/kustomization.yaml"
        );
    }
    for (kind, name) in [
        ("Namespace", "shopmesh"),
        ("ResourceQuota", "shopmesh"),
        ("LimitRange", "shopmesh-defaults"),
        ("ConfigMap", "shopmesh"),
        ("Secret", "shopmesh"),
        ("StatefulSet", "postgres"),
        ("StatefulSet", "analytics"),
        ("Service", "analytics-headless"),
    ] {
        find_doc(&docs, kind, name);
    }
    for service in ["user", "product", "order"] {
        for kind in ["Deployment", "Service", "HorizontalPodAutoscaler"] {
            find_doc(&docs, kind, service);
        }
    }
    yaml("deploy/k8s/nats-values.yaml");
}

/// The value a k8s env entry resolves to, from the ConfigMap and Secret.
fn k8s_env(file: &str, container: &Value, docs: &[(String, Value)]) -> Vec<(String, String)> {
    let lookup = |kind: &str, name: &str, key: &str, field: &str| {
        let (_, doc) = find_doc(docs, kind, name);
        doc[field]
            .get(key)
            .map(str_of)
            .unwrap_or_else(|| panic!("{file}: {kind} {name} has no key {key}"))
    };
    container
        .get("env")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|entry| {
            let name = str_of(&entry["name"]);
            let value = if let Some(value) = entry.get("value") {
                str_of(value)
            } else if let Some(r) = entry["valueFrom"].get("configMapKeyRef") {
                lookup("ConfigMap", &str_of(&r["name"]), &str_of(&r["key"]), "data")
            } else if let Some(r) = entry["valueFrom"].get("secretKeyRef") {
                lookup(
                    "Secret",
                    &str_of(&r["name"]),
                    &str_of(&r["key"]),
                    "stringData",
                )
            } else {
                panic!("{file}: env {name} has neither value nor a ConfigMap/Secret reference")
            };
            (name, value)
        })
        .collect()
}

#[test]
fn k8s_containers_get_only_variables_their_service_reads() {
    let docs = k8s_documents();
    for service in services() {
        let kind = if service.name == "analytics" {
            "StatefulSet"
        } else {
            "Deployment"
        };
        let (file, doc) = find_doc(&docs, kind, service.name);
        let containers = doc["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap();
        let container = containers
            .iter()
            .find(|c| str_of(&c["name"]) == service.name)
            .unwrap_or_else(|| panic!("{file}: no container {}", service.name));
        let mut env = k8s_env(file, container, &docs);
        for (name, _) in &env {
            assert!(
                service.variables.contains(name.as_str()),
                "{file}: {kind} {} sets {name}, which shopmesh-{} never reads",
                service.name,
                service.name
            );
        }
        if service.name == "analytics" {
            // The index comes from the pod ordinal, set by the container's shell.
            let command = strings(container.get("command")).join(" ");
            assert!(
                command.contains("SHOPMESH_ANALYTICS_INSTANCE_INDEX=\"${HOSTNAME##*-}\"")
                    && command.contains("exec shopmesh-analytics"),
                "{file}: StatefulSet analytics must set SHOPMESH_ANALYTICS_INSTANCE_INDEX \
                 from the pod ordinal: {command:?}"
            );
            env.push(("SHOPMESH_ANALYTICS_INSTANCE_INDEX".into(), "1".into()));
            let replicas = str_of(&doc["spec"]["replicas"]);
            let count = env
                .iter()
                .find(|(k, _)| k == "SHOPMESH_ANALYTICS_INSTANCE_COUNT")
                .map(|(_, v)| v.clone());
            assert_eq!(
                count,
                Some(replicas.clone()),
                "{file}: SHOPMESH_ANALYTICS_INSTANCE_COUNT must equal the StatefulSet's replicas ({replicas})"
            );
        }
        if let Err(error) = (service.validate)(&Env::from_pairs(env.clone())) {
            panic!(
                "{file}: {kind} {} would refuse to start: {} = {:?}: {error}",
                service.name, error.variable, error.value
            );
        }
        let ports: Vec<String> = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| str_of(&p["containerPort"]))
            .collect();
        assert_eq!(
            ports,
            vec![service.port.to_string()],
            "{file}: {} containerPort",
            service.name
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            let port = container[probe]["httpGet"]["port"].clone();
            assert_eq!(
                str_of(&port),
                service.port.to_string(),
                "{file}: {} {probe} port",
                service.name
            );
        }
        let http_port = env.iter().find(|(k, _)| k == "SHOPMESH_HTTP_PORT");
        if let Some((_, port)) = http_port {
            assert_eq!(
                port,
                &service.port.to_string(),
                "{file}: {} SHOPMESH_HTTP_PORT",
                service.name
            );
        }
        let nats_user = env
            .iter()
            .find(|(k, _)| k == "NATS_USER")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            nats_user,
            Some(service.name),
            "{file}: {} NATS_USER",
            service.name
        );
        assert!(
            container["resources"]["limits"].get("memory").is_some(),
            "{file}: {} has no memory limit",
            service.name
        );
    }
}

// ---------------------------------------------------------------------------
// NATS: users and permissions
// ---------------------------------------------------------------------------

/// The users of `deploy/nats/nats.conf` with their password variable and
/// their publish and subscribe lists, read line by line (the file keeps one
/// `user:` per block and one subject per quoted string). A subject of a deny
/// list is kept as `deny <subject>`.
fn nats_conf_users() -> BTreeMap<String, (String, BTreeSet<String>, BTreeSet<String>)> {
    let text = read("deploy/nats/nats.conf");
    let mut users = BTreeMap::new();
    let mut user: Option<String> = None;
    let mut section = "";
    let mut denied = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(name) = line.strip_prefix("user: ") {
            user = Some(name.trim().to_owned());
            users.insert(
                name.trim().to_owned(),
                (String::new(), BTreeSet::new(), BTreeSet::new()),
            );
            continue;
        }
        let Some(current) = &user else { continue };
        let entry = users.get_mut(current).unwrap();
        if let Some(variable) = line.strip_prefix("password: $") {
            entry.0 = variable.trim().to_owned();
        }
        if line.starts_with("publish:") {
            section = "publish";
        } else if line.starts_with("subscribe:") {
            section = "subscribe";
        }
        if line.starts_with("allow:") {
            denied = false;
        } else if line.starts_with("deny:") {
            denied = true;
        }
        for subject in line.split('"').skip(1).step_by(2) {
            let subject = if denied {
                format!("deny {subject}")
            } else {
                subject.to_owned()
            };
            match section {
                "publish" => entry.1.insert(subject),
                "subscribe" => entry.2.insert(subject),
                _ => panic!("deploy/nats/nats.conf: subject {subject} outside publish/subscribe"),
            };
        }
    }
    users
}

/// Every Kubernetes container that reaches NATS logs in as a nats.conf user
/// with the Secret key the NATS servers read that user's password from.
#[test]
fn every_k8s_nats_client_reads_its_users_password_from_the_servers_secret_key() {
    let docs = k8s_documents();
    let values = yaml("deploy/k8s/nats-values.yaml");
    let conf = nats_conf_users();
    let mut clients = 0;
    for (file, doc) in &docs {
        let containers = doc["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for container in containers {
            let entries = container
                .get("env")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            let find = |name: &str| entries.iter().find(|e| str_of(&e["name"]) == name).cloned();
            if find("NATS_URL").is_none() {
                continue;
            }
            clients += 1;
            let who = format!("{file}: container {}", str_of(&container["name"]));
            let user = find("NATS_USER")
                .and_then(|e| e.get("value").map(str_of))
                .unwrap_or_else(|| panic!("{who} reaches NATS without a NATS_USER value"));
            let (variable, _, _) = conf.get(&user).unwrap_or_else(|| {
                panic!("{who}: NATS_USER {user} is not a user of deploy/nats/nats.conf")
            });
            let key = find("NATS_PASSWORD")
                .map(|e| str_of(&e["valueFrom"]["secretKeyRef"]["key"]))
                .unwrap_or_else(|| panic!("{who}: no NATS_PASSWORD"));
            let server_key = str_of(
                &values["container"]["env"][variable.as_str()]["valueFrom"]["secretKeyRef"]["key"],
            );
            assert_eq!(
                key, server_key,
                "{who}: NATS_PASSWORD reads Secret key {key}, the NATS servers read {user}'s password ({variable}) from {server_key}"
            );
        }
    }
    assert_eq!(clients, 4, "deploy/k8s: the four services reach NATS");
}

#[test]
fn the_helm_values_carry_the_same_users_and_permissions() {
    let file = "deploy/k8s/nats-values.yaml";
    let values = yaml(file);
    assert_eq!(
        str_of(&values["config"]["cluster"]["replicas"]),
        "3",
        "{file}: cluster replicas"
    );
    assert_eq!(
        str_of(&values["config"]["jetstream"]["fileStore"]["enabled"]),
        "true",
        "{file}: JetStream file storage"
    );
    let conf = nats_conf_users();
    let secret_keys: BTreeSet<String> = {
        let docs = k8s_documents();
        let (_, secret) = find_doc(&docs, "Secret", "shopmesh");
        secret["stringData"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(str_of)
            .collect()
    };
    let env = &values["container"]["env"];
    let mut seen = BTreeSet::new();
    for user in values["config"]["merge"]["authorization"]["users"]
        .as_sequence()
        .unwrap()
    {
        let name = str_of(&user["user"]);
        let (variable, publish, subscribe) = conf
            .get(&name)
            .unwrap_or_else(|| panic!("{file}: user {name} is not in deploy/nats/nats.conf"));
        assert_eq!(
            str_of(&user["password"]),
            format!("<< ${variable} >>"),
            "{file}: user {name} password"
        );
        let key = str_of(&env[variable.as_str()]["valueFrom"]["secretKeyRef"]["key"]);
        assert!(
            secret_keys.contains(&key),
            "{file}: {variable} reads Secret key {key}, which deploy/k8s/config.yaml lacks"
        );
        let list = |which: &str| -> BTreeSet<String> {
            let denied = strings(user["permissions"][which].get("deny"))
                .into_iter()
                .map(|s| format!("deny {s}"));
            strings(user["permissions"][which].get("allow"))
                .into_iter()
                .chain(denied)
                .collect()
        };
        assert_eq!(
            &list("publish"),
            publish,
            "{file}: user {name} publish permissions"
        );
        assert_eq!(
            &list("subscribe"),
            subscribe,
            "{file}: user {name} subscribe permissions"
        );
        seen.insert(name);
    }
    let conf_users: BTreeSet<String> = conf.keys().cloned().collect();
    assert_eq!(
        seen, conf_users,
        "{file}: users differ from deploy/nats/nats.conf"
    );
}

const NATS_USERS: &[&str] = &["user", "product", "order", "analytics", "load", "admin"];

fn password_of(user: &str) -> String {
    format!("test-{user}-password")
}

/// nats-server running deploy/nats/nats.conf, with the listen and monitoring
/// ports moved by command-line flags and the store folder by a copy of the
/// file that differs in that one line.
struct ConfiguredNats {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl ConfiguredNats {
    fn start() -> Self {
        let bin = shopmesh_shared::testkit::find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        let mut last = String::new();
        // Another process can take a probed free port before the server binds.
        for _ in 0..5 {
            let store = tempfile::tempdir().unwrap();
            let (port, monitor) = (free_port(), free_port());
            // `-sd` cannot override a store_dir the file sets (the server
            // calls it a duplicate), so the copy differs in that line only.
            let conf = read("deploy/nats/nats.conf");
            let store_line = "store_dir: \"/data/jetstream\"";
            assert!(
                conf.contains(store_line),
                "deploy/nats/nats.conf: expected `{store_line}` (the compose volume)"
            );
            let copy = store.path().join("nats.conf");
            let jetstream_dir = store.path().join("jetstream");
            std::fs::write(
                &copy,
                conf.replace(store_line, &format!("store_dir: {:?}", jetstream_dir)),
            )
            .unwrap();
            let mut command = Command::new(&bin);
            command
                .arg("-c")
                .arg(&copy)
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(["-m", &monitor.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            for user in NATS_USERS {
                command.env(password_variable(user), password_of(user));
            }
            let mut child = command.spawn().expect("run nats-server");
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut log = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("Server is ready") {
                        let _ = tx.send(Ok(()));
                    } else if line.contains("Violation") {
                        // Shown with a failing test: which grant was missing.
                        eprintln!("nats-server: {line}");
                    } else if log.len() < 8192 {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
                let _ = tx.send(Err(log));
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Ok(())) => {
                    return Self {
                        child,
                        port,
                        _store: store,
                    };
                }
                Ok(Err(log)) => last = log,
                Err(_) => last = "not ready within 20s".into(),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("deploy/nats/nats.conf: nats-server did not start:\n{last}")
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for ConfiguredNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn password_variable(user: &str) -> String {
    nats_conf_users()
        .get(user)
        .unwrap_or_else(|| panic!("deploy/nats/nats.conf: no user {user}"))
        .0
        .clone()
}

/// A client of `user` whose server errors (permission violations) are
/// collected, so a test can wait for the one it provoked.
struct Watched {
    client: async_nats::Client,
    errors: tokio::sync::mpsc::UnboundedReceiver<String>,
    user: String,
}

impl Watched {
    async fn connect(server: &ConfiguredNats, user: &str) -> Self {
        let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password_of(user))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = tx.send(error.to_string());
                    }
                }
            })
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("deploy/nats/nats.conf: user {user} cannot connect: {e}"));
        Self {
            client,
            errors,
            user: user.into(),
        }
    }

    /// Waits for the server to report a violation on `subject`.
    async fn expect_violation(&mut self, action: &str, subject: &str) {
        let wanted = format!("permissions violation for {action} to \"{subject}\"");
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(error) = self.errors.recv().await {
                if error.to_lowercase().contains(&wanted.to_lowercase()) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            found,
            Ok(true),
            "deploy/nats/nats.conf: user {} may {action} to {subject}, which it must not",
            self.user
        );
    }

    async fn publish_denied(&mut self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "nope".into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        self.expect_violation("publish", subject).await;
    }

    async fn subscribe_denied(&mut self, subject: &str) {
        let _subscription = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.client.flush().await.unwrap();
        self.expect_violation("subscription", subject).await;
    }
}

/// The shopmesh connection path (`shopmesh_shared::nats::connect`) with the
/// user's credentials, then stream provisioning as every service does it.
async fn service_context(
    server: &ConfiguredNats,
    user: &str,
) -> (
    async_nats::Client,
    async_nats::jetstream::Context,
    BackboneSettings,
) {
    let settings = BackboneSettings::from_env(&Env::from_pairs([
        ("NATS_URL", server.url()),
        ("NATS_USER", user.to_owned()),
        ("NATS_PASSWORD", password_of(user)),
        ("SHOPMESH_PUBLISH_ACK_TIMEOUT", "5s".to_owned()),
    ]))
    .unwrap();
    let client = connect(&settings.nats, user)
        .await
        .unwrap_or_else(|e| panic!("deploy/nats/nats.conf: user {user} cannot connect: {e}"));
    let js = jetstream_context(client.clone(), &settings.publisher);
    provision_streams(&js, &settings.streams)
        .await
        .unwrap_or_else(|e| {
            panic!("deploy/nats/nats.conf: user {user} cannot provision the streams: {e:#}")
        });
    (client, js, settings)
}

async fn publish_acked(js: &async_nats::jetstream::Context, user: &str, subject: &str) {
    let ack = js
        .publish(subject.to_owned(), "event".into())
        .await
        .unwrap_or_else(|e| {
            panic!("deploy/nats/nats.conf: user {user} cannot publish {subject}: {e}")
        });
    ack.await.unwrap_or_else(|e| {
        panic!("deploy/nats/nats.conf: user {user}: {subject} was not stored by the stream: {e}")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_conf_refuses_wrong_passwords_and_unknown_users() {
    let server = ConfiguredNats::start();
    for (user, password) in [("user", "wrong"), ("product", ""), ("nobody", "x")] {
        let outcome = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password.into())
            .connect(server.url())
            .await;
        assert!(
            outcome.is_err(),
            "deploy/nats/nats.conf: user {user} connected with password {password:?}"
        );
    }
    let anonymous = async_nats::connect(server.url()).await;
    assert!(
        anonymous.is_err(),
        "deploy/nats/nats.conf: a client without credentials connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_conf_lets_producers_publish_only_their_own_events() {
    let server = ConfiguredNats::start();
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "user",
            &[
                "shopmesh.events.user.registered.0",
                "shopmesh.events.user.logged_in.7",
            ],
            &[
                "shopmesh.events.order.placed.0",
                "shopmesh.events.product.viewed.3",
                "shopmesh.deadletter.analytics",
            ],
        ),
        (
            "product",
            &[
                "shopmesh.events.product.created.0",
                "shopmesh.events.product.viewed.5",
                "shopmesh.events.product.rated.6",
            ],
            &[
                "shopmesh.events.user.registered.0",
                "shopmesh.events.cart.item_added.1",
                "shopmesh.rpc.product.lookup",
            ],
        ),
        (
            "order",
            &[
                "shopmesh.events.order.placed.2",
                "shopmesh.events.order.cancelled.2",
                "shopmesh.events.cart.item_added.4",
            ],
            &[
                "shopmesh.events.product.updated.0",
                "shopmesh.events.user.logged_in.1",
                "shopmesh.rpc.analytics.profile",
            ],
        ),
    ];
    for (user, allowed, denied) in cases {
        let (_client, js, _) = service_context(&server, user).await;
        for subject in *allowed {
            publish_acked(&js, user, subject).await;
        }
        let mut watched = Watched::connect(&server, user).await;
        for subject in *denied {
            watched.publish_denied(subject).await;
        }
        // Nobody but the operator and analytics may manage consumers, nor
        // delete a stream, nor touch the snapshot bucket's stream.
        watched
            .publish_denied("$JS.API.STREAM.DELETE.SHOPMESH_EVENTS_0")
            .await;
        watched
            .publish_denied("$JS.API.STREAM.PURGE.SHOPMESH_EVENTS_0")
            .await;
        watched
            .publish_denied("$JS.API.CONSUMER.CREATE.SHOPMESH_EVENTS_0")
            .await;
        watched
            .publish_denied("$JS.API.STREAM.CREATE.OBJ_shopmesh-analytics")
            .await;
        watched
            .publish_denied("$JS.API.STREAM.UPDATE.OBJ_shopmesh-analytics")
            .await;
        watched.subscribe_denied("shopmesh.events.>").await;
    }
    for user in ["load", "admin", "analytics"] {
        let mut watched = Watched::connect(&server, user).await;
        watched
            .publish_denied("shopmesh.events.order.placed.0")
            .await;
        watched
            .publish_denied("shopmesh.events.user.registered.1")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_conf_lets_order_call_product_and_nobody_else() {
    let server = ConfiguredNats::start();
    let (product, _, _) = service_context(&server, "product").await;
    // The product service's shape: the async-nats service API, group
    // shopmesh.rpc.product, a queue group.
    let service = {
        use async_nats::service::ServiceExt;
        product
            .service_builder()
            .queue_group("product")
            .start("product", "0.1.0")
            .await
            .expect("deploy/nats/nats.conf: product cannot start its NATS service")
    };
    let mut endpoint = service
        .group("shopmesh.rpc.product")
        .endpoint("lookup")
        .await
        .expect("deploy/nats/nats.conf: product cannot serve shopmesh.rpc.product.lookup");
    let server_task = tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            request.respond(Ok("found".into())).await.unwrap();
        }
    });
    product.flush().await.unwrap();

    let (order, _, _) = service_context(&server, "order").await;
    let reply = order
        .request("shopmesh.rpc.product.lookup", "{}".into())
        .await
        .expect("deploy/nats/nats.conf: order cannot call shopmesh.rpc.product.lookup");
    assert_eq!(&reply.payload[..], b"found");

    for user in ["user", "analytics", "load"] {
        let mut watched = Watched::connect(&server, user).await;
        watched.publish_denied("shopmesh.rpc.product.reserve").await;
    }
    let mut order = Watched::connect(&server, "order").await;
    order.subscribe_denied("shopmesh.rpc.product.lookup").await;
    // The operator can discover the service (nats micro ls) but not call it.
    let admin = Watched::connect(&server, "admin").await;
    let ping = admin
        .client
        .request("$SRV.PING.product", "".into())
        .await
        .expect("deploy/nats/nats.conf: admin cannot ping the product service");
    assert!(String::from_utf8_lossy(&ping.payload).contains("product"));
    let mut admin = admin;
    admin.publish_denied("shopmesh.rpc.product.release").await;
    server_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_conf_lets_analytics_consume_snapshot_and_serve() {
    use shopmesh_shared::subjects::{Partition, PartitionCount};
    let server = ConfiguredNats::start();
    let (_, user_js, _) = service_context(&server, "user").await;
    publish_acked(&user_js, "user", "shopmesh.events.user.registered.0").await;

    let (client, js, settings) = service_context(&server, "analytics").await;
    let partition = Partition::new(0, PartitionCount::default()).unwrap();
    // The analytics start-up path: recreate the durable consumer of an owned
    // partition, then pull and ack through it.
    shopmesh_analytics::snapshot::reset_consumer(
        &js,
        &settings.streams,
        &settings.consumer,
        partition,
        None,
    )
    .await
    .unwrap_or_else(|e| {
        panic!("deploy/nats/nats.conf: analytics cannot create its consumer: {e:#}")
    });
    let stream = js.get_stream("SHOPMESH_EVENTS_0").await.unwrap();
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&shopmesh_shared::nats::consumer_name(
            "analytics",
            partition,
        ))
        .await
        .expect("deploy/nats/nats.conf: analytics cannot look up its consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .expect("deploy/nats/nats.conf: analytics cannot pull");
    let message = batch
        .next()
        .await
        .expect("deploy/nats/nats.conf: analytics pulled nothing")
        .unwrap();
    assert_eq!(
        message.subject.as_str(),
        "shopmesh.events.user.registered.0"
    );
    message
        .double_ack()
        .await
        .expect("deploy/nats/nats.conf: analytics cannot ack an event");
    let lag = shopmesh_analytics::snapshot::consumer_lag(&js, &settings.streams, partition).await;
    assert_eq!(
        lag,
        Some(0),
        "deploy/nats/nats.conf: analytics cannot read its consumer's lag"
    );

    // Dead letters of its own group only.
    publish_acked(&js, "analytics", "shopmesh.deadletter.analytics").await;

    // Snapshots: the real store, a save and a load back.
    let store = shopmesh_analytics::snapshot::SnapshotStore::open(&js, "shopmesh-analytics")
        .await
        .unwrap_or_else(|e| {
            panic!("deploy/nats/nats.conf: analytics cannot open its bucket: {e:#}")
        });
    let state = shopmesh_analytics::state::PartitionState {
        last_sequence: 1,
        ..Default::default()
    };
    let bytes = shopmesh_shared::codec::encode_value(&state).unwrap();
    store.save(partition, &bytes).await.unwrap_or_else(|e| {
        panic!("deploy/nats/nats.conf: analytics cannot save a snapshot: {e:#}")
    });
    let (loaded, _) = store
        .load(partition)
        .await
        .unwrap_or_else(|e| {
            panic!("deploy/nats/nats.conf: analytics cannot load a snapshot: {e:#}")
        })
        .expect("the saved snapshot");
    assert_eq!(loaded.last_sequence, 1);
    // Raising the bucket's replicas at start (SnapshotStore::open_replicated);
    // on one server an update that changes nothing, which the grant allows.
    let config = js
        .get_stream("OBJ_shopmesh-analytics")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    js.update_stream(config).await.unwrap_or_else(|e| {
        panic!("deploy/nats/nats.conf: analytics cannot update its bucket's stream: {e}")
    });

    // Its RPC face, reachable by callers' inboxes and discoverable.
    let service = {
        use async_nats::service::ServiceExt;
        client
            .service_builder()
            .queue_group("analytics-0")
            .start("analytics", "0.1.0")
            .await
            .expect("deploy/nats/nats.conf: analytics cannot start its NATS service")
    };
    let mut endpoint = service
        .group("shopmesh.rpc.analytics")
        .endpoint("funnel")
        .await
        .expect("deploy/nats/nats.conf: analytics cannot serve shopmesh.rpc.analytics.funnel");
    let task = tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            request.respond(Ok("{}".into())).await.unwrap();
        }
    });
    client.flush().await.unwrap();
    let admin = Watched::connect(&server, "admin").await;
    let ping = admin
        .client
        .request("$SRV.PING.analytics", "".into())
        .await
        .expect("deploy/nats/nats.conf: analytics does not answer service discovery");
    assert!(String::from_utf8_lossy(&ping.payload).contains("analytics"));

    let mut watched = Watched::connect(&server, "analytics").await;
    watched.publish_denied("shopmesh.deadletter.other").await;
    watched
        .publish_denied("$JS.API.STREAM.DELETE.SHOPMESH_EVENTS_0")
        .await;
    watched.publish_denied("$O.other-bucket.C.x").await;
    watched.publish_denied("shopmesh.rpc.product.reserve").await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_conf_lets_the_operator_provision_and_tail_but_not_write() {
    let server = ConfiguredNats::start();
    let (_, user_js, _) = service_context(&server, "user").await;
    publish_acked(&user_js, "user", "shopmesh.events.user.logged_in.3").await;
    // shopmesh provision, then shopmesh tail --history: an ordered consumer
    // per partition's stream.
    let (_, js, _) = service_context(&server, "admin").await;
    let stream = js.get_stream("SHOPMESH_EVENTS_3").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "shopmesh.events.*.*.3".into(),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("deploy/nats/nats.conf: admin cannot create an ordered consumer (tail)");
    let mut messages = consumer
        .messages()
        .await
        .expect("deploy/nats/nats.conf: admin cannot pull (tail)");
    let first = messages.next().await.unwrap().unwrap();
    assert_eq!(first.subject.as_str(), "shopmesh.events.user.logged_in.3");
    // shopmesh provision --retire-single-stream deletes the single events
    // stream of earlier versions, by that name only (a stand-in here: the
    // partition streams hold the real subjects).
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "SHOPMESH_EVENTS".into(),
        subjects: vec!["shopmesh.retired.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.delete_stream("SHOPMESH_EVENTS")
        .await
        .expect("deploy/nats/nats.conf: admin cannot retire the single events stream");

    // shopmesh tail (live): a plain subscription to both streams' subjects.
    let admin = Watched::connect(&server, "admin").await;
    let mut live = admin.client.subscribe("shopmesh.events.>").await.unwrap();
    let mut dead = admin
        .client
        .subscribe("shopmesh.deadletter.>")
        .await
        .unwrap();
    // flush() only empties the client's buffer; a request answered by the
    // server proves it has read the subscriptions sent before it.
    admin
        .client
        .request("$JS.API.INFO", "".into())
        .await
        .unwrap();
    publish_acked(&user_js, "user", "shopmesh.events.user.logged_in.4").await;
    let (_, analytics_js, _) = service_context(&server, "analytics").await;
    publish_acked(&analytics_js, "analytics", "shopmesh.deadletter.analytics").await;
    for (subscription, subject) in [
        (&mut live, "shopmesh.events.user.logged_in.4"),
        (&mut dead, "shopmesh.deadletter.analytics"),
    ] {
        let message = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap_or_else(|_| {
                panic!("deploy/nats/nats.conf: admin cannot follow {subject} live (tail)")
            })
            .unwrap();
        assert_eq!(message.subject.as_str(), subject);
    }

    let mut admin = admin;
    // Listening to the services' RPC traffic is not tailing events.
    admin.subscribe_denied("shopmesh.rpc.product.>").await;
    admin
        .publish_denied("shopmesh.events.user.logged_in.3")
        .await;
    admin
        .publish_denied("$JS.API.STREAM.DELETE.SHOPMESH_EVENTS_3")
        .await;
    admin
        .publish_denied("$JS.API.STREAM.UPDATE.OBJ_shopmesh-analytics")
        .await;
    admin.publish_denied("shopmesh.deadletter.analytics").await;
    let mut load = Watched::connect(&server, "load").await;
    load.publish_denied("$JS.API.STREAM.CREATE.SHOPMESH_EVENTS_0")
        .await;
    load.subscribe_denied("shopmesh.events.>").await;
}
