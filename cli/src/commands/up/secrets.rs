//! The secrets `shopmesh up` generates on its first run and reuses
//! afterwards, all in `<data>/secrets.env` (mode 0600): the token signing
//! key and the admin token, so that sessions and the admin token survive a
//! restart, and one password per NATS user of `deploy/nats/nats.conf`, so
//! that an operator's saved credentials (for `shopmesh tail`) keep working.
//! A data folder from before a user existed gets that user's password added.
//! None of them is ever printed or put on a command line.

use super::nats_config::NatsUser;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What every service is given (the product service reads the token, the
/// others the key; `shopmesh seed` the token).
const SERVICE_KEYS: [&str; 2] = ["SHOPMESH_AUTH_KEY", "SHOPMESH_ADMIN_TOKEN"];

/// The variables of `secrets.env`. No `Debug`: nothing here may reach a log.
pub struct Secrets {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

impl Secrets {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The signing key and the admin token, as environment variables.
    pub fn service_keys(&self) -> Vec<(&str, &str)> {
        SERVICE_KEYS
            .iter()
            .filter_map(|key| self.values.get(*key).map(|v| (*key, v.as_str())))
            .collect()
    }

    /// The password of a NATS user (present: `load_or_create` made it).
    pub fn nats_password(&self, user: &NatsUser) -> &str {
        self.values
            .get(&user.password_variable)
            .map(String::as_str)
            .expect("load_or_create adds every NATS user's password")
    }
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new value for `variable`.
fn generate(variable: &str) -> String {
    match variable {
        "SHOPMESH_AUTH_KEY" => format!("{}{}", random(), random()),
        "SHOPMESH_ADMIN_TOKEN" => format!("admin-{}", random()),
        // nats-server parses a variable's value as a configuration value: one
        // that starts with a digit is read as a number and refused, so every
        // password starts with letters.
        _ => format!("nats-{}{}", random(), random()),
    }
}

/// The variables in `<dir>/secrets.env`, after adding the missing ones: the
/// service keys and a password for each of `nats_users`.
pub fn load_or_create(dir: &Path, nats_users: &[NatsUser]) -> anyhow::Result<Secrets> {
    let path = dir.join("secrets.env");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut values: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let missing: Vec<String> = SERVICE_KEYS
        .iter()
        .map(|k| k.to_string())
        .chain(nats_users.iter().map(|u| u.password_variable.clone()))
        .filter(|k| values.get(k).is_none_or(String::is_empty))
        .collect();
    if !missing.is_empty() {
        let mut added = String::new();
        if !text.is_empty() && !text.ends_with('\n') {
            added.push('\n');
        }
        for variable in missing {
            let value = generate(&variable);
            added.push_str(&format!("{variable}={value}\n"));
            values.insert(variable, value);
        }
        append_private(&path, &added).with_context(|| format!("writing {}", path.display()))?;
    }
    restrict(&path).with_context(|| format!("restricting {}", path.display()))?;
    Ok(Secrets { path, values })
}

/// Appends to `path`, creating it readable by its owner only (never
/// briefly readable by others).
fn append_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Owner-only, also for a file an older `up` or a person made.
#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::up::nats_config::users;

    fn file(dir: &Path) -> String {
        fs::read_to_string(dir.join("secrets.env")).unwrap()
    }

    #[test]
    fn a_new_folder_gets_every_key_once_owner_only_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let users = users();
        let first = load_or_create(dir.path(), &users).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(first.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let passwords: std::collections::BTreeSet<&str> =
            users.iter().map(|u| first.nats_password(u)).collect();
        assert_eq!(passwords.len(), users.len(), "one password per user");
        for password in &passwords {
            assert!(password.starts_with("nats-") && password.len() > 60);
        }
        assert_eq!(first.service_keys().len(), 2);
        let text = file(dir.path());

        let again = load_or_create(dir.path(), &users).unwrap();
        assert_eq!(file(dir.path()), text, "nothing is rewritten");
        for user in &users {
            assert_eq!(again.nats_password(user), first.nats_password(user));
        }
        assert_eq!(again.service_keys(), first.service_keys());
    }

    #[test]
    fn an_older_folder_keeps_its_keys_and_gains_the_nats_passwords() {
        let dir = tempfile::tempdir().unwrap();
        // What `up` wrote before NATS had users (no final newline, even).
        fs::write(
            dir.path().join("secrets.env"),
            "SHOPMESH_AUTH_KEY=old-key-0123456789abcdef0123456789\nSHOPMESH_ADMIN_TOKEN=admin-old",
        )
        .unwrap();
        let users = users();
        let secrets = load_or_create(dir.path(), &users).unwrap();
        assert_eq!(
            secrets.service_keys(),
            [
                ("SHOPMESH_AUTH_KEY", "old-key-0123456789abcdef0123456789"),
                ("SHOPMESH_ADMIN_TOKEN", "admin-old")
            ]
        );
        let text = file(dir.path());
        assert!(text.starts_with(
            "SHOPMESH_AUTH_KEY=old-key-0123456789abcdef0123456789\nSHOPMESH_ADMIN_TOKEN=admin-old\n"
        ));
        for user in &users {
            assert!(
                text.contains(&format!(
                    "\n{}={}\n",
                    user.password_variable,
                    secrets.nats_password(user)
                )),
                "{text}"
            );
        }
    }
}
