//! `burrow version`: what was built, Docker's `Client:` block (there is no
//! daemon, so no `Server:`), as text, json or a Go template.

use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde_json::json;

use super::format::Format;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow version\n  burrow version --format '{{.Client.Version}}'\n  burrow version --format json"
)]
pub struct VersionArgs {
    /// text, json, or a Go template ('{{.Client.Version}}')
    #[arg(short, long, default_value = "text")]
    pub format: String,
}

/// Go's names for the architectures, which Docker shows.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn info() -> serde_json::Value {
    let built = option_env!("BURROW_BUILD_EPOCH")
        .and_then(|e| e.parse::<u64>().ok())
        .map(|e| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(e)).to_string()
        });
    json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            // No daemon and no API: nothing to negotiate.
            "ApiVersion": "",
            "GitCommit": option_env!("BURROW_GIT_COMMIT").unwrap_or(""),
            "BuildTime": built.unwrap_or_default(),
            "Os": std::env::consts::OS,
            "Arch": go_arch(std::env::consts::ARCH),
        },
        "Server": null,
    })
}

pub fn run(a: VersionArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["text"])?;
    let v = info();
    if !format.is_default() {
        format.print(&[v], &[])?;
        return Ok(0);
    }
    let c = &v["Client"];
    let or_unknown = |s: &str| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s.to_string()
        }
    };
    println!("Client:");
    println!(
        " Version:           {}",
        c["Version"].as_str().unwrap_or("")
    );
    println!(" API version:       none (no daemon)");
    println!(
        " Git commit:        {}",
        or_unknown(c["GitCommit"].as_str().unwrap_or(""))
    );
    println!(
        " Built:             {}",
        or_unknown(c["BuildTime"].as_str().unwrap_or(""))
    );
    println!(
        " OS/Arch:           {}/{}",
        c["Os"].as_str().unwrap_or(""),
        c["Arch"].as_str().unwrap_or("")
    );
    Ok(0)
}
