//! The keys `shopmesh up` generates on its first run (signing key, admin
//! token) and reuses afterwards, so that tokens and the admin token survive a
//! restart.

use anyhow::Context;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// The variables in `<dir>/secrets.env`, written first if missing.
pub fn load_or_create(dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    let path = dir.join("secrets.env");
    if !path.exists() {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        let text = format!(
            "SHOPMESH_AUTH_KEY={}{}\nSHOPMESH_ADMIN_TOKEN=admin-{}\n",
            random(),
            random(),
            random()
        );
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        restrict(&path)?;
    }
    let text = fs::read_to_string(&path)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> anyhow::Result<()> {
    Ok(())
}
