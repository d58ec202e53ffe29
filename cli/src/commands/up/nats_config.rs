//! The NATS server configuration of `shopmesh up`: `deploy/nats/nats.conf`
//! itself, embedded at build time so that the users and their permissions
//! have one definition for compose, Kubernetes (checked against it by
//! `cli/tests/deploy.rs`) and the native platform. `up` writes a copy that
//! differs only in where the server listens and stores; the passwords stay
//! `$SHOPMESH_NATS_<USER>_PASSWORD` references that nats-server resolves from
//! its environment, so they are never in a file other than `secrets.env`, nor
//! on a command line.

use anyhow::{Context, bail};
use std::path::Path;

/// `deploy/nats/nats.conf`, as compose mounts it.
pub const DEPLOY_CONF: &str = include_str!("../../../../deploy/nats/nats.conf");

/// The compose-specific lines `up` moves, each of which must occur once.
const PORT_LINE: &str = "port: 4222";
const MONITOR_LINE: &str = "http_port: 8222";
const STORE_LINE: &str = "store_dir: \"/data/jetstream\"";

/// A NATS user of the configuration and the environment variable its
/// password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUser {
    pub name: String,
    pub password_variable: String,
}

/// The users of [`DEPLOY_CONF`], in file order.
pub fn users() -> Vec<NatsUser> {
    users_of(DEPLOY_CONF)
}

/// Reads `user: NAME` followed by `password: $VARIABLE` (the file keeps one
/// of each per user block).
fn users_of(conf: &str) -> Vec<NatsUser> {
    let mut users = Vec::new();
    let mut name: Option<&str> = None;
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(user) = line.strip_prefix("user:") {
            name = Some(user.trim());
        } else if let Some(variable) = line.strip_prefix("password:")
            && let (Some(user), Some(variable)) = (name.take(), variable.trim().strip_prefix('$'))
        {
            users.push(NatsUser {
                name: user.to_owned(),
                password_variable: variable.to_owned(),
            });
        }
    }
    users
}

/// The user named `name`.
pub fn user(name: &str) -> anyhow::Result<NatsUser> {
    users()
        .into_iter()
        .find(|u| u.name == name)
        .with_context(|| format!("deploy/nats/nats.conf defines no NATS user {name}"))
}

/// [`DEPLOY_CONF`] listening on 127.0.0.1 only (client port `port`,
/// monitoring `monitor_port`), with JetStream's store in `store`.
pub fn native(port: u16, monitor_port: u16, store: &Path) -> anyhow::Result<String> {
    rewrite(DEPLOY_CONF, port, monitor_port, store)
}

fn rewrite(conf: &str, port: u16, monitor_port: u16, store: &Path) -> anyhow::Result<String> {
    let store = store
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", store.display()))?;
    // Quoted: the NATS lexer reads a bare path with, say, a space as two tokens.
    let quoted = format!("{store:?}");
    let replacements = [
        (PORT_LINE, format!("host: 127.0.0.1\nport: {port}")),
        // `http: host:port` rather than `http_port`: monitoring must not
        // listen on every interface either.
        (MONITOR_LINE, format!("http: \"127.0.0.1:{monitor_port}\"")),
        (STORE_LINE, format!("store_dir: {quoted}")),
    ];
    let mut text = String::with_capacity(conf.len() + 64);
    let mut found = [0usize; 3];
    for line in conf.lines() {
        let (content, comment) = match line.find('#') {
            Some(at) => line.split_at(at),
            None => (line, ""),
        };
        let indent = &content[..content.len() - content.trim_start().len()];
        match replacements
            .iter()
            .position(|(from, _)| content.trim() == *from)
        {
            Some(index) => {
                found[index] += 1;
                for (i, new_line) in replacements[index].1.lines().enumerate() {
                    text.push_str(indent);
                    text.push_str(new_line);
                    if i == 0 && !comment.is_empty() {
                        text.push(' ');
                        text.push_str(comment);
                    }
                    text.push('\n');
                }
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    for ((from, _), count) in replacements.iter().zip(found) {
        if count != 1 {
            bail!(
                "deploy/nats/nats.conf has `{from}` {count} times; `shopmesh up` moves that line \
                 and needs it exactly once"
            );
        }
    }
    Ok(text)
}

/// Fails unless the configuration grants the snapshot bucket `up` will
/// use: a renamed bucket (`SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET`) would
/// otherwise start an analytics service that is refused its first snapshot.
/// (The events and dead-letter streams are granted by any name: there is a
/// stream per partition.)
pub fn ensure_grants(bucket: &str) -> anyhow::Result<()> {
    if !DEPLOY_CONF.contains(&format!("\"$O.{bucket}.>\"")) {
        bail!(
            "SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET={bucket}: the NATS permissions of `shopmesh up` \
             (deploy/nats/nats.conf) grant no access to {bucket}; unset \
             SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET or rename it in deploy/nats/nats.conf too"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_of_the_deploy_file_has_a_password_variable() {
        let users = users();
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["user", "product", "order", "analytics", "load", "admin"]
        );
        for user in &users {
            assert_eq!(
                user.password_variable,
                format!("SHOPMESH_NATS_{}_PASSWORD", user.name.to_uppercase())
            );
        }
        assert_eq!(user("admin").unwrap(), users[5]);
        assert!(user("nobody").is_err());
    }

    #[test]
    fn the_native_copy_moves_only_the_listeners_and_the_store() {
        let conf = native(14222, 18222, Path::new("/tmp/my data/nats")).unwrap();
        assert!(conf.contains("\nhost: 127.0.0.1\nport: 14222\n"), "{conf}");
        assert!(conf.contains("\nhttp: \"127.0.0.1:18222\"\n"), "{conf}");
        assert!(
            conf.contains("  store_dir: \"/tmp/my data/nats\"\n"),
            "{conf}"
        );
        for gone in [PORT_LINE, MONITOR_LINE, STORE_LINE] {
            assert!(
                !conf.lines().any(|l| l.trim() == gone),
                "{gone} is still there"
            );
        }
        // Everything else, the users and permissions above all, is the
        // deploy file's, line for line.
        let kept = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| {
                    let l = l.trim();
                    ![PORT_LINE, MONITOR_LINE, STORE_LINE].contains(&l)
                        && !l.starts_with("host:")
                        && !l.starts_with("port:")
                        && !l.starts_with("http:")
                        && !l.starts_with("store_dir:")
                })
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(kept(&conf), kept(DEPLOY_CONF));
        assert_eq!(users_of(&conf), users());
    }

    #[test]
    fn a_deploy_file_without_a_moved_line_or_with_two_is_refused() {
        let store = Path::new("/tmp/nats");
        let lost = DEPLOY_CONF.replace(PORT_LINE, "listen: 0.0.0.0:4222");
        let error = rewrite(&lost, 1, 2, store).unwrap_err().to_string();
        assert!(error.contains("`port: 4222` 0 times"), "{error}");
        let twice = DEPLOY_CONF.replace(MONITOR_LINE, "http_port: 8222\nhttp_port: 8222");
        let error = rewrite(&twice, 1, 2, store).unwrap_err().to_string();
        assert!(error.contains("`http_port: 8222` 2 times"), "{error}");
    }

    #[test]
    fn a_renamed_bucket_is_refused_with_its_variable() {
        ensure_grants("shopmesh-analytics").unwrap();
        let error = ensure_grants("mine").unwrap_err().to_string();
        assert!(
            error.contains("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET=mine"),
            "{error}"
        );
    }
}
