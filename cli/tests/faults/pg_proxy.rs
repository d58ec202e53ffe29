//! A TCP proxy between a service and Postgres that the test can cut and
//! restore, standing in for a network partition or a database failover.
//!
//! Cut: every relayed connection is closed and new ones are closed as soon
//! as they are accepted, so the service's pool sees broken connections and
//! failed connects (at once, not after a timeout). Restore: connections are
//! relayed again; the service must recover on its own.
//!
//! `cut_after_next_commit` makes the worst moment deterministic: the next
//! simple-query `COMMIT` (how sqlx ends a transaction) is forwarded, the
//! proxy waits for Postgres's answer (so the commit has happened), swallows
//! it and cuts. The service then sees its commit fail although it took
//! effect: the ambiguous commit every client of a remote database faces.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A simple query message's text for a commit, with its terminating NUL.
const COMMIT: &[u8] = b"COMMIT\0";

struct Control {
    /// True while cut.
    cut: watch::Sender<bool>,
    cut_after_commit: AtomicBool,
    /// Set once an armed commit has been forwarded and answered.
    commit_swallowed: AtomicBool,
}

pub struct PgProxy {
    pub port: u16,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

impl PgProxy {
    /// Listens on a free loopback port and relays to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().unwrap().port();
        let control = Arc::new(Control {
            cut: watch::Sender::new(false),
            cut_after_commit: AtomicBool::new(false),
            commit_swallowed: AtomicBool::new(false),
        });
        let accepting = control.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *accepting.cut.borrow() {
                    // Refused the way a dead peer refuses: closed at once.
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, upstream.clone(), accepting.clone()));
            }
        });
        Self {
            port,
            control,
            accept,
        }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url(&self, database_url: &str) -> String {
        let scheme_end = database_url.find("://").map(|i| i + 3).unwrap();
        let rest = &database_url[scheme_end..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
        format!(
            "{}{}127.0.0.1:{}{}",
            &database_url[..scheme_end],
            &authority[..host_start],
            self.port,
            &rest[authority_end..]
        )
    }

    /// Severs every connection and refuses new ones.
    pub fn cut(&self) {
        self.control.cut.send_replace(true);
    }

    /// Relays again.
    pub fn restore(&self) {
        self.control.cut_after_commit.store(false, Ordering::SeqCst);
        self.control.cut.send_replace(false);
    }

    /// Forwards the next `COMMIT`, swallows its answer, then cuts.
    pub fn cut_after_next_commit(&self) {
        self.control.commit_swallowed.store(false, Ordering::SeqCst);
        self.control.cut_after_commit.store(true, Ordering::SeqCst);
    }

    /// Whether an armed commit went through to Postgres and its answer was
    /// swallowed.
    pub fn commit_swallowed(&self) -> bool {
        self.control.commit_swallowed.load(Ordering::SeqCst)
    }

    pub fn is_cut(&self) -> bool {
        *self.control.cut.borrow()
    }
}

/// The `host:port` a Postgres URL points at (5432 when it names none).
pub fn upstream_of(database_url: &str) -> String {
    let rest = &database_url[database_url.find("://").map_or(0, |i| i + 3)..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends every relay.
        self.control.cut.send_replace(true);
    }
}

async fn relay(mut client: TcpStream, upstream: String, control: Arc<Control>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let mut cut = control.cut.subscribe();
    if *cut.borrow_and_update() {
        return;
    }
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut to_server = vec![0u8; 16 * 1024];
    let mut to_client = vec![0u8; 16 * 1024];
    // The end of the previous chunk: a COMMIT may straddle two reads.
    let mut tail: Vec<u8> = Vec::new();
    let mut commit_forwarded = false;
    loop {
        tokio::select! {
            read = client_read.read(&mut to_server) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if server_write.write_all(&to_server[..n]).await.is_err() {
                    return;
                }
                if control.cut_after_commit.load(Ordering::SeqCst) {
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(&to_server[..n]);
                    if window.windows(COMMIT.len()).any(|w| w == COMMIT)
                        && control.cut_after_commit.swap(false, Ordering::SeqCst)
                    {
                        commit_forwarded = true;
                    }
                    tail = window[window.len().saturating_sub(COMMIT.len() - 1)..].to_vec();
                }
            }
            read = server_read.read(&mut to_client) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if commit_forwarded {
                    // Postgres answered the commit, so it has committed; the
                    // service never hears it.
                    control.commit_swallowed.store(true, Ordering::SeqCst);
                    control.cut.send_replace(true);
                    return;
                }
                if client_write.write_all(&to_client[..n]).await.is_err() {
                    return;
                }
            }
            changed = cut.changed() => {
                if changed.is_err() || *cut.borrow_and_update() {
                    return;
                }
            }
        }
    }
}
