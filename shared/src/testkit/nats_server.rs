//! A real nats-server for one test: free port, own store folder, killed on drop.

use crate::nats::{MIN_SERVER_VERSION, ServerVersion};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The version a nats-server binary reports (`nats-server --version`).
pub fn nats_server_version(bin: &Path) -> Result<ServerVersion, String> {
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split_whitespace().last().unwrap_or_default();
    ServerVersion::parse(version)
        .ok_or_else(|| format!("{} printed no version: {text:?}", bin.display()))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ sits in the workspace")
        .to_path_buf()
}

/// `bin` itself when it is nats-server >= [`MIN_SERVER_VERSION`], else why not.
pub fn check_nats_server(bin: PathBuf) -> Result<PathBuf, String> {
    let version = nats_server_version(&bin)?;
    if version >= ServerVersion::minimum() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is nats-server {version}; shopmesh needs >= {MIN_SERVER_VERSION}. \
             Run scripts/ensure-nats.sh (it installs one into .tools/) or set NATS_SERVER_BIN",
            bin.display()
        ))
    }
}

/// Finds nats-server >= [`MIN_SERVER_VERSION`]: `NATS_SERVER_BIN`, then the
/// project's `.tools/bin` (where `scripts/ensure-nats.sh` installs it), then
/// `PATH`. A too-old binary is refused with its version and the one needed.
pub fn find_nats_server() -> Result<PathBuf, String> {
    let check = check_nats_server;
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
        return check(PathBuf::from(bin)).map_err(|e| format!("NATS_SERVER_BIN: {e}"));
    }
    let local = workspace_root().join(".tools/bin/nats-server");
    if local.is_file() {
        return check(local);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    match on_path {
        Some(bin) => check(bin),
        None => Err(format!(
            "no nats-server found; shopmesh needs >= {MIN_SERVER_VERSION}. \
             Run scripts/ensure-nats.sh or set NATS_SERVER_BIN"
        )),
    }
}

/// A running nats-server with JetStream, owned by one test.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    /// Options beyond port and store (a cluster node's name and routes),
    /// kept so that a restart starts the same node.
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server >= 2.10 with JetStream on a free loopback port. Panics
    /// with the reason when none can be started: a test without its broker
    /// must fail loudly, never pass by skipping.
    pub fn start() -> Self {
        let bin = find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        Self::start_with(bin)
    }

    /// Starts `bin` whatever its version; for tests of the version check.
    pub fn start_with(bin: PathBuf) -> Self {
        let mut last_error = String::new();
        // Another process can take the free port between our probe and the
        // server's bind: try a few ports before giving up.
        for _ in 0..5 {
            match Self::try_start(bin.clone(), free_port(), Vec::new()) {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("cannot start nats-server: {last_error}")
    }

    /// As [`Self::start`], on a server that admits only `user` with
    /// `password` (for tests that follow a NATS password through a service).
    pub fn start_with_password(user: &str, password: &str) -> Self {
        let bin = find_nats_server().unwrap_or_else(|e| panic!("{e}"));
        let args: Vec<String> = vec![
            "--user".into(),
            user.into(),
            "--pass".into(),
            password.into(),
        ];
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start(bin.clone(), free_port(), args.clone()) {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("cannot start nats-server: {last_error}")
    }

    /// One attempt at starting `bin` on `port` with `extra_args`, in a new
    /// store folder.
    pub(super) fn try_start(
        bin: PathBuf,
        port: u16,
        extra_args: Vec<String>,
    ) -> Result<Self, String> {
        let mut server = Self {
            bin,
            port,
            store: tempfile::tempdir().expect("temp dir for the JetStream store"),
            extra_args,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Spawns the process and waits until it logs that it is ready.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready_tx.send(Ok(()));
                    log.clear();
                } else if log.len() < 8192 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
            // The process ended (or closed stderr) before it was ready.
            let _ = ready_tx.send(Err(log));
        });
        match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => {
                self.child = Some(child);
                Ok(())
            }
            Ok(Err(log)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("nats-server exited before it was ready:\n{log}"))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("nats-server was not ready within 20s".into())
            }
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL), keeping its port and store for [`Self::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        let mut last_error = String::new();
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                // The port can linger for a moment after a kill.
                Err(error) => last_error = error,
            }
        }
        panic!(
            "cannot restart nats-server on port {}: {last_error}",
            self.port
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
