//! The processes `shopmesh up` starts and the guard that stops them: every
//! child is registered in [`Platform`] the moment it is spawned, and the
//! guard's `Drop` stops them all, on every way out of `up` (Ctrl-C, SIGTERM,
//! a service that fails to start, an error, a panic). A SIGKILL runs no
//! code of ours: for that the kernel itself sends each child SIGTERM when
//! its parent dies ([`stop_with_parent`]). Also the start-up checks around
//! them: free ports, sibling binaries, log files, readiness.

use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long a service gets to drain (requests, outbox, snapshots) after
/// SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(15);

/// Has the kernel send the child SIGTERM when this process dies, however it
/// dies (`kill -9` runs no handler and no `Drop`): otherwise nats-server and
/// the services would outlive `up` or `bench`, holding their ports and data
/// folder. Linux ties the signal to the thread that spawns the child; both
/// commands spawn from the thread that runs their main future, which lives
/// as long as the process.
pub fn stop_with_parent(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    // SAFETY: between fork and exec the closure only makes async-signal-safe
    // system calls (prctl, getppid) and allocates nothing on success.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the request took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process has exited"));
            }
            Ok(())
        })
    }
}

/// A child process that is stopped with SIGTERM and waited for.
pub struct Managed {
    pub name: String,
    child: Child,
}

impl Managed {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status when the process has already ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal_term(&mut self) {
        if self.exited().is_none() {
            // std has no SIGTERM (only SIGKILL), and this crate has no libc
            // binding; kill(1) is on every Unix.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
    }

    /// Waits until `deadline` for the process to end, then kills it.
    fn reap(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if self.exited().is_none() {
            eprintln!("{} did not stop within {GRACE:?}; killing it", self.name);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Every process `up` started. Dropping it stops them: the services first,
/// together (each drains into NATS), then nats-server, which they need
/// until their last publish and snapshot.
#[derive(Default)]
pub struct Platform {
    nats: Option<Managed>,
    services: Vec<Managed>,
}

impl Platform {
    pub fn set_nats(&mut self, child: Child) -> &mut Managed {
        self.nats.insert(Managed {
            name: "nats-server".into(),
            child,
        })
    }

    pub fn add_service(&mut self, name: &str, child: Child) -> &mut Managed {
        self.services.push(Managed {
            name: name.to_owned(),
            child,
        });
        self.services.last_mut().expect("just pushed")
    }

    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut Managed> {
        self.nats.iter_mut().chain(self.services.iter_mut())
    }

    /// `name=pid` of every process, for people and for tests that check
    /// nothing is left behind.
    pub fn pids(&self) -> String {
        self.nats
            .iter()
            .chain(&self.services)
            .map(|p| format!("{}={}", p.name, p.pid()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Stops every process (also what `Drop` does).
    pub fn stop(&mut self) {
        for service in self.services.iter_mut().rev() {
            service.signal_term();
        }
        let deadline = Instant::now() + GRACE;
        for service in self.services.iter_mut().rev() {
            service.reap(deadline);
        }
        self.services.clear();
        if let Some(mut nats) = self.nats.take() {
            nats.signal_term();
            nats.reap(Instant::now() + GRACE);
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails with the port, its user and the flag that moves it when something
/// already listens there.
pub fn ensure_free(port: u16, what: &str, flag: &str) -> anyhow::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} (for {what}) is already taken; stop what uses it or choose other ports with {flag}"
        );
    }
    Ok(())
}

/// The HTTP port of each service in `services` (from `http_base` on, in
/// order), each checked free, and the service's binary beside this one.
pub fn service_ports_and_binaries(
    services: &[&str],
    http_base: u16,
) -> anyhow::Result<(Vec<u16>, Vec<PathBuf>)> {
    let ports: Vec<u16> = (0..services.len() as u16)
        .map(|i| {
            http_base
                .checked_add(i)
                .context("--http-base-port is too high")
        })
        .collect::<anyhow::Result<_>>()?;
    for (service, port) in services.iter().zip(&ports) {
        ensure_free(
            *port,
            service,
            "--http-base-port (the services use it and the next three ports)",
        )?;
    }
    let binaries = services
        .iter()
        .map(|service| sibling(&format!("shopmesh-{service}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((ports, binaries))
}

/// The service binaries sit beside this one.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found; build the services first (scripts/up.sh does: cargo build --release --workspace --bins)",
            path.display()
        );
    }
    Ok(path)
}

pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("logs").join(format!("{name}.log"))
}

pub fn log_file(dir: &Path, name: &str) -> anyhow::Result<fs::File> {
    let path = log_path(dir, name);
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Waits until something accepts connections on `port` (a nats-server
/// recovering a large store takes a moment), failing at once if the
/// process exits.
pub async fn wait_listening(process: &mut Managed, port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(exit) = process.exited() {
            bail!(
                "{} exited ({exit}) before listening on port {port}; the end of {}:\n{}",
                process.name,
                log.display(),
                log_tail(log)
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "{} did not listen on port {port} within 30s; see {}",
        process.name,
        log.display()
    )
}

/// Waits until `url/readyz` answers 2xx, failing at once (with the end of
/// its log) if the process exits.
pub async fn wait_ready(
    http: &reqwest::Client,
    process: &mut Managed,
    url: &str,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(exit) = process.exited() {
            bail!(
                "{} exited ({exit}) while starting; the end of {}:\n{}",
                process.name,
                log.display(),
                log_tail(log)
            );
        }
        if http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} was not ready within 60s; the end of {}:\n{}",
        process.name,
        log.display(),
        log_tail(log)
    )
}

/// The last 20 lines of a log, without backtrace frames, which would push
/// the panic message itself out of view.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("at ")
                || l.split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok()))
        })
        .rev()
        .take(20)
        .collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}
