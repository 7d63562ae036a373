//! `burrow login` and `burrow logout`: registry credentials in the files
//! Docker and podman already use.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::pull::RegistryArgs;
use super::Exit;
use crate::exit;
use crate::image::reference::DEFAULT_REGISTRY;
use crate::image::registry::auth::Credential;
use crate::image::registry::credentials::{self, AuthFiles};
use crate::image::registry::Client;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow login -u me docker.io\n  echo \"$TOKEN\" | burrow login -u me --password-stdin ghcr.io\n  burrow logout ghcr.io"
)]
pub struct LoginArgs {
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Registry [default: docker.io]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry [default: docker.io]
    pub server: Option<String>,
}

/// `docker.io`, `https://index.docker.io/v1/`, `host:5000/` all name a host.
fn registry_name(server: Option<&str>) -> String {
    let s = server.unwrap_or(DEFAULT_REGISTRY);
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => DEFAULT_REGISTRY.to_string(),
        h => h.to_string(),
    }
}

fn prompt(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Exit::new(
            exit::BURROW,
            format!(
                "no {what} given and standard input is not a terminal (use -u, --password-stdin)"
            ),
        )
        .into());
    }
    eprint!("{what}: ");
    let _ = std::io::stderr().flush();
    let hide = what == "Password";
    let guard = if hide {
        crate::linux::tty::Echo::off(std::io::stdin()).ok()
    } else {
        None
    };
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    drop(guard);
    if hide {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn run_login(_root: Option<PathBuf>, a: LoginArgs) -> anyhow::Result<i32> {
    if a.password.is_some() && a.password_stdin {
        return Err(Exit::new(
            exit::BURROW,
            "--password and --password-stdin are mutually exclusive",
        )
        .into());
    }
    let registry = registry_name(a.server.as_deref());
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let secret = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().lock().read_line(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password")?,
    };
    if username.is_empty() || secret.is_empty() {
        return Err(Exit::new(exit::BURROW, "user name and password must not be empty").into());
    }
    let cred = Credential { username, secret };
    // Checked against the registry before anything is saved.
    let mut client = Client::connect(&registry, Some(cred.clone()), &a.registry.client())
        .with_context(|| format!("logging in to {registry}"))?;
    client
        .check_login()
        .with_context(|| format!("logging in to {registry}"))?;
    let files = AuthFiles::from_process();
    let place = credentials::store(&files, &registry, &cred).context("saving credentials")?;
    tracing::info!("credentials for {registry} saved in {place}");
    println!("Login Succeeded");
    Ok(0)
}

pub fn run_logout(_root: Option<PathBuf>, a: LogoutArgs) -> anyhow::Result<i32> {
    let registry = registry_name(a.server.as_deref());
    let files = AuthFiles::from_process();
    if credentials::remove(&files, &registry)? {
        println!("Removing login credentials for {registry}");
        Ok(0)
    } else {
        Err(Exit::new(exit::BURROW, format!("not logged in to {registry}")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert_eq!(registry_name(None), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_name(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(
            registry_name(Some("http://localhost:5000/")),
            "localhost:5000"
        );
    }
}
